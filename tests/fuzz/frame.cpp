// The frame parser in both directions: the input is read as a stream of
// frontend messages and, separately, of backend messages. Every frame found
// must lie inside the input, match its declared length and respect the
// type's size limit; the typed views must stay inside the body; and a stream
// cut anywhere must frame identically up to the cut (need_more, never a
// different frame or an error the whole stream does not have).
#include <cstdint>
#include <string_view>

#include "fuzz_util.hpp"
#include "protocol/frame.hpp"
#include "protocol/messages.hpp"

namespace {

using namespace pgshift::protocol;
using pgshift::fuzz::inside;
using pgshift::fuzz::require_that;

void check_views(const Frame& f, Direction dir) {
  if (dir == Direction::frontend) {
    switch (f.type) {
      case 'Q': { QueryView v; if (v.parse(f)) require_that(inside(v.sql, f.body), "Query sql inside"); break; }
      case 'P': {
        ParseView v;
        if (v.parse(f)) require_that(inside(v.sql, f.body) && inside(v.name, f.body) && inside(v.types, f.body), "Parse inside");
        break;
      }
      case 'B': { BindView v; if (v.parse(f)) require_that(inside(v.portal, f.body) && inside(v.statement, f.body), "Bind inside"); break; }
      case 'E': { ExecuteView v; if (v.parse(f)) require_that(inside(v.portal, f.body), "Execute inside"); break; }
      case 'D':
      case 'C': { TargetView v; if (v.parse(f)) require_that(inside(v.name, f.body), "Describe/Close inside"); break; }
      default: break;
    }
    return;
  }
  switch (f.type) {
    case 'R': { AuthenticationView v; if (v.parse(f)) require_that(inside(v.data, f.body), "Authentication inside"); break; }
    case 'K': { BackendKeyDataView v; v.parse(f); break; }
    case 'Z': { ReadyForQueryView v; if (v.parse(f)) require_that(v.status == 'I' || v.status == 'T' || v.status == 'E', "RFQ status"); break; }
    case 'S': { ParameterStatusView v; if (v.parse(f)) require_that(inside(v.name, f.body) && inside(v.value, f.body), "ParameterStatus inside"); break; }
    case 'C': { CommandCompleteView v; if (v.parse(f)) require_that(inside(v.tag, f.body), "CommandComplete inside"); break; }
    case 'E':
    case 'N': {
      ErrorFieldsView v;
      if (v.parse(f)) {
        require_that(inside(v.message, f.body) && inside(v.severity, f.body), "ErrorResponse inside");
        if (v.sqlstate) require_that(inside(*v.sqlstate, f.body), "SQLSTATE inside");
      }
      break;
    }
    default: break;
  }
}

// Frames the whole stream; returns the offset where framing stopped.
std::size_t frame_stream(std::string_view in, Direction dir, const Limits& limits) {
  std::size_t pos = 0;
  while (pos < in.size()) {
    const std::string_view rest = in.substr(pos);
    const ParseResult r = parse_frame(rest, dir, limits);
    if (r.status == ParseStatus::error) return pos;
    if (r.status == ParseStatus::need_more) {
      if (rest.size() >= header_size) {
        require_that(r.header.total() > rest.size(), "need_more with the whole frame present");
        require_that(r.header.length <= max_length(dir, r.header.type, limits), "need_more past the limit");
      }
      return pos;
    }
    const Frame& f = r.frame;
    require_that(f.bytes.data() == rest.data(), "frame starts at the input");
    require_that(f.bytes.size() == r.header.total() && f.bytes.size() <= rest.size(), "frame size");
    require_that(f.body.size() == r.header.body_size() && f.body.data() == f.bytes.data() + header_size, "body");
    require_that(r.header.length <= max_length(dir, f.type, limits), "length within the limit");
    require_that(known_type(dir, f.type), "known type");
    check_views(f, dir);
    pos += f.bytes.size();
  }
  return pos;
}

// A prefix of the stream frames the same messages, then asks for more or
// stops at the same error.
void check_prefix(std::string_view in, std::size_t cut, Direction dir, const Limits& limits) {
  const std::string_view prefix = in.substr(0, cut);
  std::size_t pos = 0;
  while (pos < prefix.size()) {
    const ParseResult whole = parse_frame(in.substr(pos), dir, limits);
    const ParseResult part = parse_frame(prefix.substr(pos), dir, limits);
    if (part.status == ParseStatus::complete) {
      require_that(whole.status == ParseStatus::complete && whole.frame.bytes.size() == part.frame.bytes.size(),
                   "prefix frames like the whole");
      pos += part.frame.bytes.size();
      continue;
    }
    if (part.status == ParseStatus::error) {
      require_that(whole.status == ParseStatus::error && whole.error == part.error, "prefix fails like the whole");
    } else {
      require_that(whole.status != ParseStatus::complete || whole.frame.bytes.size() > prefix.size() - pos,
                   "need_more although the frame is there");
    }
    return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in = pgshift::fuzz::as_text(data, size);
  Limits limits;
  limits.large = 1u << 20;  // the configurable limit, small enough to be crossed
  for (Direction dir : {Direction::frontend, Direction::backend}) {
    frame_stream(in, dir, limits);
    if (size > 0) check_prefix(in, data[0] % (size + 1), dir, limits);
  }
  return 0;
}
