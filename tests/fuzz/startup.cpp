// The startup packet parser: the first four bytes give the length (checked
// alone, as the session does before reading the rest), then the packet is
// parsed. An accepted StartupMessage must name a user and speak protocol 3,
// and building it again from its parameters must parse to the same ones.
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "fuzz_util.hpp"
#include "protocol/builder.hpp"
#include "protocol/startup.hpp"

using namespace pgshift::protocol;
using pgshift::fuzz::require_that;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in = pgshift::fuzz::as_text(data, size);
  if (in.size() < 4) return 0;
  std::error_code ec;
  const std::uint32_t len = startup_length(in, ec);
  if (ec) {
    require_that(len == 0, "a bad length reads as 0");
    return 0;
  }
  require_that(len >= startup_min_length && len <= startup_max_length, "length range");
  if (len > in.size()) return 0;
  StartupPacket pkt;
  if (parse_startup(in.substr(0, len), pkt)) return 0;
  if (pkt.kind != StartupKind::startup) return 0;
  require_that(pkt.major == protocol_major, "major version");
  const std::string* user = pkt.param("user");
  require_that(user && !user->empty(), "a user");

  std::string rebuilt;
  append_startup_message(rebuilt, pkt.params);
  require_that(rebuilt.size() == len, "the same layout, byte for byte but the minor version");
  StartupPacket again;
  require_that(!parse_startup(rebuilt, again), "a rebuilt packet parses");
  require_that(again.params == pkt.params, "the same parameters");
  return 0;
}
