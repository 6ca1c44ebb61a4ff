// A strict JSON validator (RFC 8259) for fuzz properties: objects, arrays,
// strings with their escapes, numbers, true/false/null; strings must be valid
// UTF-8 without raw control characters.
#pragma once

#include <cstdint>
#include <string_view>

namespace pgshift::fuzz {

class JsonCheck {
 public:
  explicit JsonCheck(std::string_view s) : s_(s) {}
  bool document() { return value(0) && (ws(), pos_ == s_.size()); }

 private:
  bool value(int depth) {
    if (depth > 64) return false;
    ws();
    if (pos_ >= s_.size()) return false;
    switch (s_[pos_]) {
      case '{': return container(depth, '}', true);
      case '[': return container(depth, ']', false);
      case '"': return string();
      case 't': return word("true");
      case 'f': return word("false");
      case 'n': return word("null");
      default: return number();
    }
  }
  bool container(int depth, char close, bool object) {
    ++pos_;
    ws();
    if (peek() == close) return ++pos_, true;
    for (;;) {
      if (object) {
        ws();
        if (!string()) return false;
        ws();
        if (peek() != ':') return false;
        ++pos_;
      }
      if (!value(depth + 1)) return false;
      ws();
      if (peek() == close) return ++pos_, true;
      if (peek() != ',') return false;
      ++pos_;
    }
  }
  bool string() {
    if (peek() != '"') return false;
    ++pos_;
    while (pos_ < s_.size()) {
      const auto c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') return ++pos_, true;
      if (c < 0x20) return false;
      if (c == '\\') {
        if (!escape()) return false;
      } else if (c >= 0x80) {
        if (!utf8()) return false;
      } else {
        ++pos_;
      }
    }
    return false;
  }
  bool escape() {
    ++pos_;
    const char e = peek();
    ++pos_;
    if (e == 'u') {
      for (int i = 0; i < 4; ++i, ++pos_)
        if (pos_ >= s_.size() || !is_hex(s_[pos_])) return false;
      return true;
    }
    return e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't';
  }
  bool utf8() {
    const auto c = static_cast<unsigned char>(s_[pos_]);
    int n = c >= 0xf0 && c <= 0xf4 ? 3 : c >= 0xe0 ? 2 : c >= 0xc2 && c < 0xe0 ? 1 : -1;
    if (n < 0 || c > 0xf4) return false;
    std::uint32_t cp = c & (0x3f >> n);
    for (int i = 1; i <= n; ++i) {
      if (pos_ + i >= s_.size()) return false;
      const auto k = static_cast<unsigned char>(s_[pos_ + i]);
      if ((k & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (k & 0x3f);
    }
    const bool overlong = (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000);
    if (overlong || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    pos_ += n + 1;
    return true;
  }
  bool number() {
    const std::size_t start = pos_;
    if (peek() == '-') ++pos_;
    if (peek() == '0') ++pos_;
    else if (!digits()) return false;
    if (peek() == '.' && (++pos_, !digits())) return false;
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!digits()) return false;
    }
    return pos_ > start;
  }
  bool digits() {
    const std::size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    return pos_ > start;
  }
  bool word(std::string_view w) {
    if (s_.substr(pos_, w.size()) != w) return false;
    pos_ += w.size();
    return true;
  }
  void ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  static bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

  std::string_view s_;
  std::size_t pos_ = 0;
};

inline bool valid_json(std::string_view s) { return JsonCheck(s).document(); }

}  // namespace pgshift::fuzz
