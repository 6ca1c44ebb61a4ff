// The client side of authentication (protocol/client_auth.*), which talks to a
// server pgshift does not control: the input is a stream of backend messages
// fed to one ClientAuth in order, as the shadow applier does. A reply must be
// one complete PasswordMessage; once done or failed, every later message
// fails; an error text never holds the password.
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.hpp"
#include "protocol/client_auth.hpp"
#include "protocol/frame.hpp"

using namespace pgshift::protocol;
using pgshift::fuzz::require_that;

namespace {

constexpr std::string_view kPassword = "pencil-not-in-seeds";

// The SCRAM iteration count costs PBKDF2 rounds by design (up to 10 million,
// seconds per input): the fuzzer would only report slow units. Inputs that
// ask for more than the RFC's example 4096 are skipped.
bool too_many_iterations(std::string_view in) {
  for (std::size_t at = in.find("i="); at != std::string_view::npos; at = in.find("i=", at + 1)) {
    std::uint64_t n = 0;
    const char* first = in.data() + at + 2;
    auto [end, err] = std::from_chars(first, in.data() + in.size(), n);
    if (end != first && (err != std::errc{} || n > 4096)) return true;
  }
  return false;
}

void check_reply(std::string_view reply) {
  const Limits limits;
  const ParseResult r = parse_frame(reply, Direction::frontend, limits);
  require_that(r.status == ParseStatus::complete && r.frame.type == 'p' && r.frame.bytes.size() == reply.size(),
               "a reply is exactly one PasswordMessage");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in = pgshift::fuzz::as_text(data, size);
  if (too_many_iterations(in)) return 0;
  ClientAuth auth("user", std::string(kPassword), {.client_nonce = "rOprNGfwEbeRWgbNEkqO"});
  const Limits limits;
  std::string out;
  bool ended = false;
  for (std::size_t pos = 0; pos < in.size();) {
    const ParseResult r = parse_frame(in.substr(pos), Direction::backend, limits);
    if (r.status != ParseStatus::complete) break;
    pos += r.frame.bytes.size();
    out.clear();
    const ClientAuth::Step step = auth.on_message(r.frame, out);
    if (ended) require_that(step == ClientAuth::Step::failed, "nothing after done or failed");
    if (step == ClientAuth::Step::reply) check_reply(out);
    else require_that(out.empty(), "output only with a reply");
    if (step == ClientAuth::Step::failed) require_that(!auth.error().empty(), "a failure says why");
    if (step == ClientAuth::Step::done || step == ClientAuth::Step::failed) ended = true;
  }
  if (in.find(kPassword) == std::string_view::npos)
    require_that(auth.error().find(kPassword) == std::string::npos, "the error shows no password");
  return 0;
}
