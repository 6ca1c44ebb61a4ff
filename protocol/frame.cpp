#include "protocol/frame.hpp"

#include "protocol/error.hpp"

namespace pgshift::protocol {
namespace {

enum class Size : unsigned char { unknown, small, large, auth, backend_small };

constexpr Size frontend_size(char type) noexcept {
  switch (type) {
    case 'Q': case 'P': case 'B': case 'F': case 'd':
      return Size::large;
    case 'p':
      return Size::auth;
    case 'C': case 'c': case 'f': case 'D': case 'E': case 'H': case 'S': case 'X':
      return Size::small;
    default:
      return Size::unknown;
  }
}

constexpr Size backend_size(char type) noexcept {
  switch (type) {
    case 'D': case 'd': case 'T': case 'V': case 'E': case 'N': case 'A': case 't': case 'S':
      return Size::large;
    case 'R': case 'K': case '1': case '2': case '3': case 'C': case 'c': case 'G': case 'H':
    case 'W': case 'I': case 'n': case 's': case 'Z': case 'v':
      return Size::backend_small;
    default:
      return Size::unknown;
  }
}

}  // namespace

bool known_type(Direction dir, char type) noexcept {
  return (dir == Direction::frontend ? frontend_size(type) : backend_size(type)) != Size::unknown;
}

std::uint32_t max_length(Direction dir, char type, const Limits& limits) noexcept {
  switch (dir == Direction::frontend ? frontend_size(type) : backend_size(type)) {
    case Size::small: return limits.small;
    case Size::large: return limits.large;
    case Size::auth: return limits.auth;
    case Size::backend_small: return limits.backend_small;
    case Size::unknown: break;
  }
  return 0;
}

std::error_code check_header(Direction dir, const Header& h, const Limits& limits) noexcept {
  const std::uint32_t max = max_length(dir, h.type, limits);
  if (max == 0) return errc::unknown_message_type;
  if (h.length < 4) return errc::message_too_short;
  if (h.length > max) return errc::message_too_long;
  return {};
}

std::error_code decode_header(std::string_view buf, Direction dir, const Limits& limits,
                              Header& out) noexcept {
  out.type = buf[0];
  out.length = read_u32(buf.data() + 1);
  return check_header(dir, out, limits);
}

ParseResult parse_frame(std::string_view buf, Direction dir, const Limits& limits) noexcept {
  ParseResult r;
  if (buf.size() < header_size) return r;
  if (auto ec = decode_header(buf, dir, limits, r.header)) {
    r.status = ParseStatus::error;
    r.error = ec;
    return r;
  }
  // The length was bounded above; compare against what is available, never
  // by adding to a position.
  if (r.header.total() > buf.size()) return r;
  r.status = ParseStatus::complete;
  r.frame.type = r.header.type;
  r.frame.bytes = buf.substr(0, r.header.total());
  r.frame.body = buf.substr(header_size, r.header.body_size());
  return r;
}

}  // namespace pgshift::protocol
