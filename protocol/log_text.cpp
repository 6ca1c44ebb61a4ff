#include "protocol/log_text.hpp"

#include <cstdint>

namespace pgshift::protocol {

namespace {

constexpr char kHex[] = "0123456789abcdef";

void hex_byte(std::string& out, unsigned char b) {
  out += "\\x";
  out += kHex[b >> 4];
  out += kHex[b & 15];
}

// Length of the valid UTF-8 sequence at the start of `s` and its code point;
// 0 when it is not one (overlong forms and surrogates included).
std::size_t utf8_sequence(std::string_view s, std::uint32_t& cp) {
  const auto b0 = static_cast<unsigned char>(s[0]);
  const std::size_t n = b0 >= 0xc2 && b0 <= 0xdf ? 2 : b0 >= 0xe0 && b0 <= 0xef ? 3 : b0 >= 0xf0 && b0 <= 0xf4 ? 4 : 0;
  if (n == 0 || s.size() < n) return 0;
  cp = b0 & (0x7f >> n);
  for (std::size_t i = 1; i < n; ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if ((b & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  const bool overlong = (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
  if (overlong || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

// Characters that change how a line reads rather than what it says.
bool acts_on_display(std::uint32_t cp) {
  return (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 || (cp >= 0x202a && cp <= 0x202e) ||
         (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200e || cp == 0x200f;
}

// Appends the first character of `s`, escaped; returns the bytes it took.
std::size_t escape_one(std::string& out, std::string_view s) {
  const auto b = static_cast<unsigned char>(s[0]);
  if (b < 0x80) {
    switch (b) {
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\\': out += "\\\\"; break;
      default:
        if (b < 0x20 || b == 0x7f) hex_byte(out, b);
        else out += static_cast<char>(b);
    }
    return 1;
  }
  std::uint32_t cp = 0;
  const std::size_t n = utf8_sequence(s, cp);
  if (n == 0) {
    hex_byte(out, b);
    return 1;
  }
  if (acts_on_display(cp)) {
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(cp >> shift) & 15];
  } else {
    out.append(s.substr(0, n));
  }
  return n;
}

}  // namespace

std::string log_text(std::string_view s, std::size_t max_bytes) {
  std::string out;
  out.reserve(s.size() < max_bytes ? s.size() : max_bytes);
  std::size_t pos = 0;
  while (pos < s.size() && pos < max_bytes) pos += escape_one(out, s.substr(pos));
  if (pos < s.size()) {
    out += "... (";
    out += std::to_string(s.size());
    out += " bytes)";
  }
  return out;
}

}  // namespace pgshift::protocol
