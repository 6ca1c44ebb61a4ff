// PostgreSQL v3 framing: a one-byte type, a four-byte big-endian length that
// counts itself, then the body. A Frame is a view over the original bytes; it
// never owns or copies them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <system_error>

namespace pgshift::protocol {

// Which way a message travels: frontend messages go client -> server.
enum class Direction { frontend, backend };

inline constexpr std::size_t header_size = 5;

// Size limits by message type. PostgreSQL accepts at most 10000 bytes for most
// frontend messages and up to 1 GB only for Query, Parse, Bind, FunctionCall
// and CopyData. Backend messages are bounded like libpq does: rows, row
// descriptions, copy data, errors/notices and notifications may be large.
struct Limits {
  std::uint32_t small = 10000;
  std::uint32_t large = 1u << 30;   // configurable; 1 GiB like PostgreSQL
  std::uint32_t auth = 65535;       // PasswordMessage/SASL tokens (PG_MAX_AUTH_TOKEN_LENGTH)
  std::uint32_t backend_small = 30000;
};

// Big-endian helpers over raw bytes.
inline std::uint32_t read_u32(const char* p) noexcept {
  auto b = reinterpret_cast<const unsigned char*>(p);
  return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) |
         (std::uint32_t{b[2]} << 8) | std::uint32_t{b[3]};
}
inline std::uint16_t read_u16(const char* p) noexcept {
  auto b = reinterpret_cast<const unsigned char*>(p);
  return static_cast<std::uint16_t>((b[0] << 8) | b[1]);
}

struct Header {
  char type = 0;
  std::uint32_t length = 0;  // as declared: body + 4
  std::size_t total() const noexcept { return std::size_t{length} + 1; }
  std::size_t body_size() const noexcept { return std::size_t{length} - 4; }
};

struct Frame {
  char type = 0;
  std::string_view body;   // without type and length
  std::string_view bytes;  // the whole message as received
};

// True when `type` is a valid message type in that direction.
bool known_type(Direction dir, char type) noexcept;

// The largest declared length accepted for `type`, or 0 if the type is unknown.
std::uint32_t max_length(Direction dir, char type, const Limits& limits) noexcept;

// Checks a header's type and declared length.
std::error_code check_header(Direction dir, const Header& h, const Limits& limits) noexcept;

// Reads and checks the header at the start of `buf` (which must hold at least
// header_size bytes).
std::error_code decode_header(std::string_view buf, Direction dir, const Limits& limits,
                              Header& out) noexcept;

enum class ParseStatus { complete, need_more, error };

struct ParseResult {
  ParseStatus status = ParseStatus::need_more;
  Header header;          // valid once at least header_size bytes were seen
  Frame frame;            // valid when complete
  std::error_code error;  // set when status == error
};

// Incremental framing: looks at the start of `buf`. `need_more` is a normal
// result (the header or the body has not fully arrived yet); bounds are checked
// before any byte of the body is trusted.
ParseResult parse_frame(std::string_view buf, Direction dir, const Limits& limits) noexcept;

}  // namespace pgshift::protocol
