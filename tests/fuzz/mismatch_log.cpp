// The mismatch log's redaction and JSON writing (shadow/mismatch_log.*). The
// input up to the first NUL is a statement, the pieces after it are Bind
// parameters, and they also stand in for tags, errors and rows. Every line,
// redacted or not, must be one valid JSON object on one line; a redacted
// statement may hold only bytes of the original plus '?' and ' '.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.hpp"
#include "json_check.hpp"
#include "shadow/mismatch_log.hpp"

using namespace pgshift::shadow;
using pgshift::fuzz::require_that;

namespace {

std::vector<std::string_view> split_nul(std::string_view s) {
  std::vector<std::string_view> parts;
  for (;;) {
    const std::size_t nul = s.find('\0');
    parts.push_back(s.substr(0, nul));
    if (nul == std::string_view::npos) return parts;
    s.remove_prefix(nul + 1);
  }
}

Outcome outcome_from(std::string_view text) {
  Outcome o;
  o.tag = std::string(text);
  o.error = Error{std::string(text.substr(0, 5)), std::string(text)};
  o.columns.push_back(Column{.name = std::string(text)});
  o.sample_rows.emplace_back(text);
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in = pgshift::fuzz::as_text(data, size);
  const std::vector<std::string_view> parts = split_nul(in);
  const std::string_view text = parts[0];

  const std::string redacted = redact_statement(text);
  bool present[256] = {};
  for (char c : text) present[static_cast<unsigned char>(c)] = true;
  for (char c : redacted)
    require_that(c == '?' || c == ' ' || present[static_cast<unsigned char>(c)], "redaction adds no bytes");

  std::vector<Parameter> params;
  for (std::size_t i = 1; i < parts.size(); ++i) params.push_back({parts[i], (i % 2) == 0});
  if (params.size() > 1) params[1].value.reset();
  const Statement st{.session = size, .fingerprint = 0x0123456789abcdefULL, .text = text, .parameters = params};
  const std::string_view other = parts.size() > 1 ? parts[1] : text;
  const Outcome primary = outcome_from(text);
  const Outcome shadow = outcome_from(other);
  Comparison c{.match = false, .reason = std::string(other), .primary_row = std::string(text), .shadow_row = {}};

  for (bool redact : {true, false}) {
    MismatchLog log({.path = "", .redact = redact});
    const std::string line = log.format(st, primary, shadow, c, {});
    require_that(line.find('\n') == std::string::npos, "one line");
    require_that(pgshift::fuzz::valid_json(line), "valid JSON");
  }
  return 0;
}
