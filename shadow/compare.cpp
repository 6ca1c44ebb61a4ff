#include "shadow/compare.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>
#include <type_traits>
#include <utility>

#include "protocol/messages.hpp"

namespace pgshift::shadow {
namespace {

// ---------------------------------------------------------------------------
// Value kinds: how the text of a value is normalized before it is digested.

enum Kind : std::uint8_t {
  k_text, k_bpchar, k_number, k_float4, k_float8, k_bool, k_json, k_jsonb,
  k_timestamptz, k_timestamp, k_date, k_time, k_timetz, k_uuid, k_bytea, k_binary,
};

Kind kind_of(std::uint32_t type_oid, std::int16_t format) noexcept {
  if (format != 0) return k_binary;
  switch (type_oid) {
    case 16: return k_bool;
    case 17: return k_bytea;
    case 20: case 21: case 23: case 1700: return k_number;  // int8, int2, int4, numeric
    case 114: return k_json;
    case 700: return k_float4;
    case 701: return k_float8;
    case 1042: return k_bpchar;
    case 1082: return k_date;
    case 1083: return k_time;
    case 1114: return k_timestamp;
    case 1184: return k_timestamptz;
    case 1266: return k_timetz;
    case 2950: return k_uuid;
    case 3802: return k_jsonb;
    default: return k_text;  // text, varchar, name and every other type: exact text
  }
}

// Kinds whose values can be equal across them: bpchar compares with text
// (trailing spaces aside), float4 with float8.
Kind family(Kind k) noexcept {
  if (k == k_bpchar) return k_text;
  if (k == k_float4) return k_float8;
  return k;
}

const char* family_name(Kind k) noexcept {
  switch (family(k)) {
    case k_number: return "number";
    case k_float8: return "float";
    case k_bool: return "bool";
    case k_json: return "json";
    case k_jsonb: return "jsonb";
    case k_timestamptz: return "timestamptz";
    case k_timestamp: return "timestamp";
    case k_date: return "date";
    case k_time: return "time";
    case k_timetz: return "timetz";
    case k_uuid: return "uuid";
    case k_bytea: return "bytea";
    case k_binary: return "binary";
    default: return "text";
  }
}

bool tolerable(Kind k) noexcept { return k == k_number || k == k_float4 || k == k_float8; }

// ---------------------------------------------------------------------------
// A 64-bit streaming digest (not cryptographic: rows come from the two
// databases, not from an adversary choosing collisions).

class Hasher {
 public:
  void word(std::uint64_t w) noexcept { h_ = mix(h_ ^ w) + 0x9e3779b97f4a7c15ULL; }
  void bytes(std::string_view s) noexcept {
    word(s.size());
    std::size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
      std::uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      word(w);
    }
    if (i < s.size()) {
      std::uint64_t w = 0;
      std::memcpy(&w, s.data() + i, s.size() - i);
      word(w);
    }
  }
  std::uint64_t finish() const noexcept { return mix(h_); }

 private:
  static std::uint64_t mix(std::uint64_t x) noexcept {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  }
  std::uint64_t h_ = 0x243f6a8885a308d3ULL;
};

// ---------------------------------------------------------------------------
// Normalizers. Each writes a canonical form to `out` and returns false when
// the text does not parse (the raw text is then compared instead).

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

void put64(std::string& out, std::int64_t v) {
  char b[8];
  std::memcpy(b, &v, 8);
  out.append(b, 8);
}

// Decimal numbers (integers and numeric): sign, significant digits without
// leading or trailing zeros, and the decimal exponent, so 1.50, 1.5 and
// 0.15e1 are one value; -0 is 0.
bool canon_number(std::string_view s, std::string& out) {
  std::size_t i = 0;
  bool negative = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
  const std::string_view rest = s.substr(i);
  if (iequals(rest, "nan")) {
    out = "NaN";
    return true;
  }
  if (iequals(rest, "infinity") || iequals(rest, "inf")) {
    out = negative ? "-Inf" : "+Inf";
    return true;
  }
  out = "n-";  // the sign is patched below
  std::int64_t exponent = 0;
  bool any = false, point = false;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '.' && !point) {
      point = true;
    } else if (is_digit(c)) {
      any = true;
      if (out.size() == 2 && c == '0') {  // a leading zero
        if (point) --exponent;
      } else {
        out.push_back(c);
        if (!point) ++exponent;
      }
    } else {
      break;
    }
  }
  if (!any) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    bool exp_negative = false;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) exp_negative = s[i++] == '-';
    std::int64_t e = 0;
    const std::size_t digits_start = i;
    for (; i < s.size() && is_digit(s[i]); ++i) {
      e = e * 10 + (s[i] - '0');
      if (e > 1'000'000'000) return false;
    }
    if (i == digits_start) return false;
    exponent += exp_negative ? -e : e;
  }
  if (i != s.size()) return false;
  while (out.size() > 2 && out.back() == '0') out.pop_back();
  if (out.size() == 2) {
    out = "n0";
    return true;
  }
  if (!negative) out.erase(1, 1);
  out.push_back('e');
  out.append(std::to_string(exponent));
  return true;
}

template <class F>
bool parse_float(std::string_view s, F& v) {
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  if constexpr (std::is_same_v<F, long double>) {
    // libstdc++ 12 parses long double with strtold, which reads on to a NUL,
    // past the end of the value (into the next one in the DataRow, or off the
    // buffer): give it a terminated copy (found by tests/fuzz/compare.cpp).
    thread_local std::string copy;
    copy.assign(s);
    s = copy;
  }
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// float4 and float8: the parsed value; NaN equals NaN, -0 equals 0. float4
// text is parsed as a float, so servers printing different digit counts of
// the same float agree.
bool canon_float(std::string_view s, bool single, std::string& out) {
  double v = 0;
  if (single) {
    float f = 0;
    if (!parse_float(s, f)) return false;
    v = f;
  } else if (!parse_float(s, v)) {
    return false;
  }
  if (std::isnan(v)) {
    out = "NaN";
    return true;
  }
  if (v == 0) v = 0;  // -0
  out = "f";
  std::int64_t bits;
  std::memcpy(&bits, &v, 8);
  put64(out, bits);
  return true;
}

bool canon_bool(std::string_view s, std::string& out) {
  for (std::string_view t : {"t", "true", "y", "yes", "on", "1"}) {
    if (iequals(s, t)) {
      out = "t";
      return true;
    }
  }
  for (std::string_view f : {"f", "false", "n", "no", "off", "0"}) {
    if (iequals(s, f)) {
      out = "f";
      return true;
    }
  }
  return false;
}

void ascii_lower(std::string_view s, std::string& out) {
  out.assign(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// bytea in hex (\x0aff) or escape (a\000\\) output: the bytes themselves.
bool canon_bytea(std::string_view s, std::string& out) {
  out = "b";
  if (s.size() >= 2 && s[0] == '\\' && s[1] == 'x') {
    if (s.size() % 2 != 0) return false;
    for (std::size_t i = 2; i < s.size(); i += 2) {
      const int hi = hex_value(s[i]), lo = hex_value(s[i + 1]);
      if (hi < 0 || lo < 0) return false;
      out.push_back(static_cast<char>(hi * 16 + lo));
    }
    return true;
  }
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out.push_back(s[i]);
    } else if (i + 1 < s.size() && s[i + 1] == '\\') {
      out.push_back('\\');
      ++i;
    } else if (i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' && s[i + 2] <= '7' &&
               s[i + 3] >= '0' && s[i + 3] <= '7') {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      return false;
    }
  }
  return true;
}

// ---- dates and times, as PostgreSQL prints them with DateStyle ISO ----

constexpr std::int64_t usecs_per_day = 86'400'000'000LL;

// Days since 1970-01-01 in the proleptic Gregorian calendar; `y` is the
// astronomical year (1 BC is 0).
std::int64_t days_from_civil(std::int64_t y, int m, int d) noexcept {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

class Scan {
 public:
  explicit Scan(std::string_view s) noexcept : s_(s) {}
  bool done() const noexcept { return i_ == s_.size(); }
  bool peek(char c) const noexcept { return i_ < s_.size() && s_[i_] == c; }
  bool lit(char c) noexcept { return peek(c) ? (++i_, true) : false; }
  bool lit(std::string_view t) noexcept {
    if (s_.substr(i_, t.size()) != t) return false;
    i_ += t.size();
    return true;
  }
  // Between `min` and `max` digits; `count` gets how many were read.
  bool number(std::size_t min, std::size_t max, std::int64_t& v, std::size_t* count = nullptr) noexcept {
    v = 0;
    std::size_t n = 0;
    while (n < max && i_ < s_.size() && is_digit(s_[i_])) {
      v = v * 10 + (s_[i_++] - '0');
      ++n;
    }
    if (count) *count = n;
    return n >= min && !(i_ < s_.size() && is_digit(s_[i_]));
  }

 private:
  std::string_view s_;
  std::size_t i_ = 0;
};

struct Date {
  std::int64_t year = 0;
  int month = 0, day = 0;
};

bool scan_date(Scan& sc, Date& d) {
  std::int64_t m = 0, day = 0;
  if (!sc.number(4, 7, d.year) || !sc.lit('-') || !sc.number(2, 2, m) || !sc.lit('-') || !sc.number(2, 2, day))
    return false;
  if (m < 1 || m > 12 || day < 1 || day > 31) return false;
  d.month = static_cast<int>(m);
  d.day = static_cast<int>(day);
  return true;
}

// The day number of a date, after an optional trailing " BC" (year N BC is
// astronomical year 1 - N).
bool finish_date(Scan& sc, const Date& d, std::int64_t& days) {
  std::int64_t year = d.year;
  if (sc.lit(" BC")) {
    if (year < 1) return false;
    year = 1 - year;
  }
  days = days_from_civil(year, d.month, d.day);
  return true;
}

bool scan_time(Scan& sc, std::int64_t& usecs) {
  std::int64_t h = 0, m = 0, s = 0, frac = 0;
  if (!sc.number(2, 2, h) || !sc.lit(':') || !sc.number(2, 2, m) || !sc.lit(':') || !sc.number(2, 2, s)) return false;
  if (h > 24 || m > 59 || s > 60) return false;
  if (sc.lit('.')) {
    std::size_t digits = 0;
    if (!sc.number(1, 6, frac, &digits)) return false;
    for (; digits < 6; ++digits) frac *= 10;
  }
  usecs = ((h * 60 + m) * 60 + s) * 1'000'000 + frac;
  return true;
}

// +HH, +HH:MM, +HH:MM:SS or Z, as seconds east of UTC.
bool scan_offset(Scan& sc, std::int64_t& seconds) {
  if (sc.lit('Z')) return seconds = 0, true;
  const bool minus = sc.peek('-');
  if (!sc.lit('+') && !sc.lit('-')) return false;
  std::int64_t h = 0, m = 0, s = 0;
  if (!sc.number(2, 2, h)) return false;
  if (sc.lit(':')) {
    if (!sc.number(2, 2, m)) return false;
    if (sc.lit(':') && !sc.number(2, 2, s)) return false;
  }
  seconds = (h * 60 + m) * 60 + s;
  if (minus) seconds = -seconds;
  return true;
}

bool canon_infinity(std::string_view s, std::string& out) {
  if (s == "infinity" || s == "-infinity") {
    out = s[0] == '-' ? "-inf" : "+inf";
    return true;
  }
  return false;
}

// timestamp and timestamptz: the instant as (day, microsecond of the day),
// after applying the offset; so 08:00:00.100+01 equals 07:00:00.1+00.
bool canon_timestamp(std::string_view s, bool with_zone, std::string& out) {
  if (canon_infinity(s, out)) return true;
  Scan sc(s);
  Date date;
  std::int64_t days = 0, usecs = 0, offset = 0;
  if (!scan_date(sc, date)) return false;
  if (!sc.lit(' ') && !sc.lit('T')) return false;
  if (!scan_time(sc, usecs)) return false;
  if (with_zone && !scan_offset(sc, offset)) return false;
  if (!finish_date(sc, date, days) || !sc.done()) return false;
  usecs -= offset * 1'000'000;
  days += usecs / usecs_per_day;
  usecs %= usecs_per_day;
  if (usecs < 0) {
    usecs += usecs_per_day;
    --days;
  }
  out = "t";
  put64(out, days);
  put64(out, usecs);
  return true;
}

bool canon_date(std::string_view s, std::string& out) {
  if (canon_infinity(s, out)) return true;
  Scan sc(s);
  Date date;
  std::int64_t days = 0;
  if (!scan_date(sc, date) || !finish_date(sc, date, days) || !sc.done()) return false;
  out = "d";
  put64(out, days);
  return true;
}

// time; timetz keeps its offset too, as PostgreSQL's timetz equality does.
bool canon_time(std::string_view s, bool with_zone, std::string& out) {
  Scan sc(s);
  std::int64_t usecs = 0, offset = 0;
  if (!scan_time(sc, usecs)) return false;
  if (with_zone && !scan_offset(sc, offset)) return false;
  if (!sc.done()) return false;
  out = "T";
  put64(out, usecs);
  if (with_zone) put64(out, offset);
  return true;
}

// ---- JSON ----

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

void append_u_escape(std::string& out, std::uint32_t unit) {
  static constexpr char hex[] = "0123456789abcdef";
  out += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4) out.push_back(hex[(unit >> shift) & 0xf]);
}

// Re-serializes JSON without whitespace, with strings in one escaping. For
// jsonb, object keys are also sorted (a later duplicate key wins, as in
// jsonb) and numbers compared by value.
class JsonCanon {
 public:
  JsonCanon(std::string_view s, bool jsonb) noexcept : s_(s), jsonb_(jsonb) {}

  bool run(std::string& out) {
    out.clear();
    if (!value(out, 0)) return false;
    space();
    return i_ == s_.size();
  }

 private:
  static constexpr int max_depth = 256;

  void space() noexcept {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool lit(std::string_view t) noexcept {
    if (s_.substr(i_, t.size()) != t) return false;
    i_ += t.size();
    return true;
  }

  bool value(std::string& out, int depth) {
    if (depth > max_depth) return false;
    space();
    if (i_ >= s_.size()) return false;
    switch (s_[i_]) {
      case '{': return object(out, depth);
      case '[': return array(out, depth);
      case '"': return string(out);
      case 't': return lit("true") && (out += "true", true);
      case 'f': return lit("false") && (out += "false", true);
      case 'n': return lit("null") && (out += "null", true);
      default: return number(out);
    }
  }

  bool array(std::string& out, int depth) {
    ++i_;
    out.push_back('[');
    space();
    if (lit("]")) return out.push_back(']'), true;
    for (;;) {
      if (!value(out, depth + 1)) return false;
      space();
      if (lit("]")) return out.push_back(']'), true;
      if (!lit(",")) return false;
      out.push_back(',');
    }
  }

  bool object(std::string& out, int depth) {
    ++i_;
    std::vector<std::pair<std::string, std::string>> members;  // jsonb only
    out.push_back('{');
    space();
    bool first = true;
    if (!lit("}")) {
      for (;;) {
        space();
        std::string key;
        if (i_ >= s_.size() || s_[i_] != '"' || !string(key)) return false;
        space();
        if (!lit(":")) return false;
        if (jsonb_) {
          std::string v;
          if (!value(v, depth + 1)) return false;
          members.emplace_back(std::move(key), std::move(v));
        } else {
          if (!first) out.push_back(',');
          out += key;
          out.push_back(':');
          if (!value(out, depth + 1)) return false;
        }
        first = false;
        space();
        if (lit("}")) break;
        if (!lit(",")) return false;
      }
    }
    if (jsonb_) {
      std::stable_sort(members.begin(), members.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      for (std::size_t k = 0; k < members.size(); ++k) {
        if (k + 1 < members.size() && members[k + 1].first == members[k].first) continue;  // the last one wins
        if (out.back() != '{') out.push_back(',');
        out += members[k].first;
        out.push_back(':');
        out += members[k].second;
      }
    }
    out.push_back('}');
    return true;
  }

  bool hex4(std::uint32_t& unit) noexcept {
    if (i_ + 4 > s_.size()) return false;
    unit = 0;
    for (int k = 0; k < 4; ++k) {
      const int h = hex_value(s_[i_++]);
      if (h < 0) return false;
      unit = unit * 16 + static_cast<std::uint32_t>(h);
    }
    return true;
  }

  // Decodes escapes; writes control characters, quotes, backslashes and lone
  // surrogates escaped, everything else as UTF-8 bytes.
  bool string(std::string& out) {
    ++i_;
    out.push_back('"');
    while (i_ < s_.size()) {
      const unsigned char c = static_cast<unsigned char>(s_[i_++]);
      if (c == '"') return out.push_back('"'), true;
      if (c < 0x20) return false;
      if (c != '\\') {
        out.push_back(static_cast<char>(c));
        continue;
      }
      if (i_ >= s_.size()) return false;
      std::uint32_t cp = 0;
      switch (s_[i_++]) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u': {
          if (!hex4(cp)) return false;
          if (cp >= 0xd800 && cp < 0xdc00 && s_.substr(i_, 2) == "\\u") {
            const std::size_t save = i_;
            i_ += 2;
            std::uint32_t low = 0;
            if (hex4(low) && low >= 0xdc00 && low < 0xe000) cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            else i_ = save;
          }
          break;
        }
        default: return false;
      }
      if (cp == '"' || cp == '\\') {
        out.push_back('\\');
        out.push_back(static_cast<char>(cp));
      } else if (cp < 0x20 || (cp >= 0xd800 && cp < 0xe000)) {
        append_u_escape(out, cp);
      } else {
        append_utf8(out, cp);
      }
    }
    return false;
  }

  bool number(std::string& out) {
    const std::size_t start = i_;
    lit("-");
    if (lit("0")) {
    } else if (i_ < s_.size() && is_digit(s_[i_])) {
      while (i_ < s_.size() && is_digit(s_[i_])) ++i_;
    } else {
      return false;
    }
    if (lit(".")) {
      if (i_ >= s_.size() || !is_digit(s_[i_])) return false;
      while (i_ < s_.size() && is_digit(s_[i_])) ++i_;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (i_ >= s_.size() || !is_digit(s_[i_])) return false;
      while (i_ < s_.size() && is_digit(s_[i_])) ++i_;
    }
    const std::string_view text = s_.substr(start, i_ - start);
    if (!jsonb_) {
      out += text;
      return true;
    }
    std::string canon;
    if (!canon_number(text, canon)) return false;
    out += canon;
    return true;
  }

  std::string_view s_;
  bool jsonb_;
  std::size_t i_ = 0;
};

// The canonical form of one non-NULL text value of kind `k`, tagged so that
// a value that did not parse (compared raw) never equals one that did.
void canonical(Kind k, std::string_view v, std::string& out) {
  bool ok = false;
  switch (k) {
    case k_bpchar: {
      std::size_t n = v.size();
      while (n > 0 && v[n - 1] == ' ') --n;
      out.assign(v.substr(0, n));
      return;
    }
    case k_text:
    case k_binary: out.assign(v); return;
    case k_number: ok = canon_number(v, out); break;
    case k_float4: ok = canon_float(v, true, out); break;
    case k_float8: ok = canon_float(v, false, out); break;
    case k_bool: ok = canon_bool(v, out); break;
    case k_json: ok = JsonCanon(v, false).run(out); break;
    case k_jsonb: ok = JsonCanon(v, true).run(out); break;
    case k_timestamptz: ok = canon_timestamp(v, true, out); break;
    case k_timestamp: ok = canon_timestamp(v, false, out); break;
    case k_date: ok = canon_date(v, out); break;
    case k_time: ok = canon_time(v, false, out); break;
    case k_timetz: ok = canon_time(v, true, out); break;
    case k_uuid: ascii_lower(v, out); return;
    case k_bytea: ok = canon_bytea(v, out); break;
  }
  if (ok) {
    out.insert(out.begin(), '=');
  } else {
    out.assign("~");
    out.append(v);
  }
}

// Whether `x` is finite and stays finite as the column's type: a float4 value
// of 1e+200 would become infinity (the cast itself is undefined behaviour),
// and infinity minus infinity equals nothing, not even itself (found by
// tests/fuzz/compare.cpp).
bool fits(Kind k, long double x) noexcept {
  if (!std::isfinite(x)) return false;
  if (k == k_float4) return std::fabs(x) <= std::numeric_limits<float>::max();
  if (k == k_float8) return std::fabs(x) <= std::numeric_limits<double>::max();
  return true;
}

// A number compared within the tolerance: finite values go to `approx`;
// NULL, NaN, infinities and unparsable text are digested instead.
void add_approx(Kind k, std::optional<std::string_view> v, Hasher& h, std::vector<long double>& approx,
                std::string& scratch) {
  long double x = 0;
  if (!v) {
    h.word(0);
    approx.push_back(0);
    return;
  }
  h.word(1 + static_cast<std::uint64_t>(family(k)));
  if (!parse_float(*v, x) || !fits(k, x)) {
    h.word(2);
    canonical(k, *v, scratch);  // NaN, infinities, out of the type's range, or raw text
    h.bytes(scratch);
    x = 0;
  } else {
    h.word(1);
    if (k == k_float4) x = static_cast<float>(x);  // float4 text is a float's digits
    else if (k == k_float8) x = static_cast<double>(x);
  }
  approx.push_back(x);
}

void add_value(Kind k, std::optional<std::string_view> v, Hasher& h, std::string& scratch) {
  if (!v) {
    h.word(0);
    return;
  }
  h.word(1 + static_cast<std::uint64_t>(family(k)));
  if (k == k_text || k == k_binary) {
    h.bytes(*v);  // compared as is: no copy
    return;
  }
  canonical(k, *v, scratch);
  h.bytes(scratch);
}

// ---- rendering rows for reports ----

constexpr std::size_t max_rendered_value = 200;

void render_value(Kind k, std::optional<std::string_view> v, std::string& out) {
  if (!v) {
    out += "NULL";
    return;
  }
  if (k == k_binary) {
    static constexpr char hex[] = "0123456789abcdef";
    out += "'\\x";
    const std::size_t n = std::min(v->size(), max_rendered_value / 2);
    for (std::size_t i = 0; i < n; ++i) {
      const auto b = static_cast<unsigned char>((*v)[i]);
      out.push_back(hex[b >> 4]);
      out.push_back(hex[b & 0xf]);
    }
    if (n < v->size()) out += "...";
    out.push_back('\'');
    return;
  }
  std::string_view text = *v;
  bool cut = false;
  if (text.size() > max_rendered_value) {
    std::size_t n = max_rendered_value;
    while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xc0) == 0x80) --n;  // a UTF-8 boundary
    text = text.substr(0, n);
    cut = true;
  }
  const bool quote = !(k == k_number || k == k_float4 || k == k_float8 || k == k_bool);
  if (quote) out.push_back('\'');
  for (char c : text) {
    if (quote && c == '\'') out.push_back('\'');
    out.push_back(c);
  }
  if (cut) out += "...";
  if (quote) out.push_back('\'');
}

std::string render_columns(const Outcome& o) {
  std::string s = "(";
  for (const Column& c : o.columns) {
    if (c.ignored) continue;
    if (s.size() > 1) s += ", ";
    s += c.name;
    s.push_back(' ');
    s += family_name(kind_of(c.type_oid, c.format));
  }
  s.push_back(')');
  return s;
}

std::string row_reference(const Outcome& o, std::size_t index) {
  std::string s = "#" + std::to_string(index + 1) + " ";
  s += index < o.sample_rows.size() ? o.sample_rows[index] : std::string("(not kept)");
  return s;
}

Comparison mismatch(std::string reason) {
  Comparison c;
  c.match = false;
  c.reason = std::move(reason);
  return c;
}

bool same_columns(const Outcome& p, const Outcome& s) {
  auto next = [](const std::vector<Column>& cs, std::size_t i) {
    while (i < cs.size() && cs[i].ignored) ++i;
    return i;
  };
  std::size_t i = next(p.columns, 0), j = next(s.columns, 0);
  for (; i < p.columns.size() && j < s.columns.size(); i = next(p.columns, i + 1), j = next(s.columns, j + 1)) {
    const Column &a = p.columns[i], &b = s.columns[j];
    if (a.name != b.name || family(kind_of(a.type_oid, a.format)) != family(kind_of(b.type_oid, b.format)))
      return false;
  }
  return i == p.columns.size() && j == s.columns.size();
}

// Compares row i of `p` with row j of `s` on their tolerance columns.
bool approx_equal(const Outcome& p, std::size_t i, const Outcome& s, std::size_t j, long double tolerance) {
  const std::size_t n = p.approx_columns;
  for (std::size_t k = 0; k < n; ++k)
    if (std::fabs(p.approx_values[i * n + k] - s.approx_values[j * n + k]) > tolerance) return false;
  return true;
}

bool approx_less(const Outcome& o, std::size_t i, std::size_t j) {
  const std::size_t n = o.approx_columns;
  return std::lexicographical_compare(o.approx_values.begin() + static_cast<std::ptrdiff_t>(i * n),
                                      o.approx_values.begin() + static_cast<std::ptrdiff_t>((i + 1) * n),
                                      o.approx_values.begin() + static_cast<std::ptrdiff_t>(j * n),
                                      o.approx_values.begin() + static_cast<std::ptrdiff_t>((j + 1) * n));
}

struct RowDiff {
  std::optional<std::size_t> primary, shadow;
  bool any() const noexcept { return primary || shadow; }
};

RowDiff sequence_diff(const Outcome& p, const Outcome& s, long double tolerance) {
  const std::size_t n = std::max(p.row_digests.size(), s.row_digests.size());
  for (std::size_t i = 0; i < n; ++i) {
    const bool in_p = i < p.row_digests.size(), in_s = i < s.row_digests.size();
    if (in_p && in_s && p.row_digests[i] == s.row_digests[i] && approx_equal(p, i, s, i, tolerance)) continue;
    RowDiff d;
    if (in_p) d.primary = i;
    if (in_s) d.shadow = i;
    return d;
  }
  return {};
}

// Rows sorted by digest (then by their tolerance values) are merged. Within
// one digest, rows pair up in order of their tolerance values (exact for one
// tolerance column, a good approximation for several). Reported: the pair
// that differed only within tolerance columns, or else the first row (by
// position) of each side that found no partner, whichever comes first on
// the primary side.
RowDiff multiset_diff(const Outcome& p, const Outcome& s, long double tolerance) {
  auto sorted = [](const Outcome& o) {
    std::vector<std::size_t> idx(o.row_digests.size());
    std::iota(idx.begin(), idx.end(), std::size_t{0});
    std::sort(idx.begin(), idx.end(), [&o](std::size_t a, std::size_t b) {
      if (o.row_digests[a] != o.row_digests[b]) return o.row_digests[a] < o.row_digests[b];
      if (o.approx_columns != 0) {
        if (approx_less(o, a, b)) return true;
        if (approx_less(o, b, a)) return false;
      }
      return a < b;
    });
    return idx;
  };
  const std::vector<std::size_t> ip = sorted(p), is = sorted(s);
  std::optional<std::size_t> p_alone, s_alone;
  RowDiff pair;
  auto first = [](std::optional<std::size_t>& best, std::size_t i) {
    if (!best || i < *best) best = i;
  };
  std::size_t a = 0, b = 0;
  while (a < ip.size() || b < is.size()) {
    if (b == is.size() || (a < ip.size() && p.row_digests[ip[a]] < s.row_digests[is[b]])) {
      first(p_alone, ip[a++]);
    } else if (a == ip.size() || s.row_digests[is[b]] < p.row_digests[ip[a]]) {
      first(s_alone, is[b++]);
    } else {
      if (!approx_equal(p, ip[a], s, is[b], tolerance) && (!pair.primary || ip[a] < *pair.primary)) {
        pair.primary = ip[a];
        pair.shadow = is[b];
      }
      ++a;
      ++b;
    }
  }
  if (pair.primary && (!p_alone || *pair.primary < *p_alone)) return pair;
  return RowDiff{p_alone, s_alone};
}

}  // namespace

// ---------------------------------------------------------------------------

bool CompareRules::ignores(std::uint64_t fingerprint) const noexcept {
  return std::find(ignore_fingerprints.begin(), ignore_fingerprints.end(), fingerprint) != ignore_fingerprints.end();
}

bool parse_row_description(std::string_view body, std::vector<Column>& out) {
  out.clear();
  protocol::Reader r(body);
  std::uint16_t n = 0;
  if (!r.u16(n)) return false;
  out.reserve(n);
  for (std::uint16_t i = 0; i < n; ++i) {
    std::string_view name;
    std::uint32_t table = 0, type = 0, typmod = 0;
    std::uint16_t attnum = 0, typlen = 0, format = 0;
    if (!r.cstring(name) || !r.u32(table) || !r.u16(attnum) || !r.u32(type) || !r.u16(typlen) || !r.u32(typmod) ||
        !r.u16(format))
      return false;
    out.push_back(Column{std::string(name), table, static_cast<std::int16_t>(attnum), type,
                         static_cast<std::int16_t>(format), false});
  }
  return r.done();
}

Tag parse_tag(std::string_view tag) noexcept {
  // The command is the leading words; the count is the last word when it is
  // a number (INSERT's middle word, the OID, is ignored).
  Tag t;
  std::size_t end = tag.size();
  while (end > 0 && tag[end - 1] == ' ') --end;
  tag = tag.substr(0, end);
  std::size_t cut = tag.size();
  bool last = true;
  while (cut > 0) {
    const std::size_t space = tag.rfind(' ', cut - 1);
    const std::size_t start = space == std::string_view::npos ? 0 : space + 1;
    const std::string_view word = tag.substr(start, cut - start);
    if (word.empty() || !std::all_of(word.begin(), word.end(), is_digit)) break;
    if (last) {
      std::uint64_t v = 0;
      const auto r = std::from_chars(word.data(), word.data() + word.size(), v);
      if (r.ec == std::errc()) t.count = v;
      last = false;
    }
    cut = space == std::string_view::npos ? 0 : space;
  }
  t.command = tag.substr(0, cut);
  return t;
}

ResultCollector::ResultCollector(const CompareRules& rules, TableNames tables)
    : rules_(rules), tables_(std::move(tables)) {}

void ResultCollector::reset() {
  out_ = Outcome{};
  kinds_.clear();
  approx_.clear();
}

Outcome ResultCollector::take() {
  Outcome o = std::move(out_);
  reset();
  return o;
}

bool ResultCollector::column_ignored(const Column& c) {
  std::optional<std::string> table_name;  // looked up at most once
  for (const std::string& rule : rules_.ignore_columns) {
    const std::size_t dot = rule.rfind('.');
    if (dot == std::string::npos) {
      if (rule == c.name) return true;
      continue;
    }
    if (std::string_view(rule).substr(dot + 1) != c.name || c.table_oid == 0 || !tables_) continue;
    if (!table_name) table_name = tables_(c.table_oid);
    // "users.token" matches a table named "users" or "<schema>.users".
    const std::string& name = *table_name;
    const std::string_view table = std::string_view(rule).substr(0, dot);
    if (name == table ||
        (name.size() > table.size() && name.compare(name.size() - table.size(), table.size(), table) == 0 &&
         name[name.size() - table.size() - 1] == '.'))
      return true;
  }
  return false;
}

bool ResultCollector::describe(std::string_view body) {
  if (out_.complete || !out_.row_digests.empty()) return false;
  if (!parse_row_description(body, out_.columns)) return false;
  return set_columns();
}

bool ResultCollector::set_columns() {
  const bool tolerance = rules_.numeric_tolerance > 0;
  kinds_.clear();
  approx_.clear();
  out_.approx_columns = 0;
  for (Column& c : out_.columns) {
    const Kind k = kind_of(c.type_oid, c.format);
    c.ignored = !rules_.ignore_columns.empty() && column_ignored(c);
    kinds_.push_back(k);
    approx_.push_back(tolerance && !c.ignored && tolerable(k));
    if (approx_.back()) ++out_.approx_columns;
  }
  return true;
}

bool ResultCollector::data_row(std::string_view body) {
  protocol::Reader r(body);
  std::uint16_t n = 0;
  if (!r.u16(n)) return false;
  const bool described = !kinds_.empty() || !out_.columns.empty();
  if (described && n != kinds_.size()) return false;
  const bool keep = out_.sample_rows.size() < rules_.max_kept_rows;
  render_.clear();
  if (keep) render_.push_back('(');
  Hasher h;
  std::uint64_t compared = 0;  // ignored columns leave no trace in the digest
  for (std::uint16_t i = 0; i < n; ++i) {
    std::uint32_t len = 0;
    if (!r.u32(len)) return false;
    std::optional<std::string_view> v;
    if (len != 0xffffffffu) {
      if (len > 0x7fffffffu) return false;
      std::string_view bytes;
      if (!r.bytes(len, bytes)) return false;
      v = bytes;
    }
    const Kind k = described ? static_cast<Kind>(kinds_[i]) : k_text;
    const bool ignored = described && out_.columns[i].ignored;
    if (!ignored) {
      ++compared;
      if (described && approx_[i]) add_approx(k, v, h, out_.approx_values, scratch_);
      else add_value(k, v, h, scratch_);
    }
    if (keep && !ignored) {
      if (render_.size() > 1) render_ += ", ";
      if (described) render_ += out_.columns[i].name;
      else render_ += "$" + std::to_string(i + 1);
      render_.push_back('=');
      render_value(k, v, render_);
    }
  }
  if (!r.done()) return false;
  h.word(compared);
  out_.row_digests.push_back(h.finish());
  if (keep) {
    render_.push_back(')');
    out_.sample_rows.push_back(render_);
  }
  return true;
}

void ResultCollector::complete(std::string_view tag) {
  out_.tag.assign(tag);
  out_.rows = parse_tag(tag).count.value_or(out_.row_digests.size());
  out_.complete = true;
}

ResultCollector::Feed ResultCollector::feed(const protocol::Frame& f) {
  switch (f.type) {
    case 'T':
      return describe(f.body) ? Feed::more : Feed::bad;
    case 'D':
      if (out_.complete) return Feed::bad;
      return data_row(f.body) ? Feed::more : Feed::bad;
    case 'C': {
      protocol::CommandCompleteView v;
      if (out_.complete || !v.parse(f)) return Feed::bad;
      complete(v.tag);
      return Feed::done;
    }
    case 'E': {
      protocol::ErrorFieldsView v;
      if (out_.complete || !v.parse(f)) return Feed::bad;
      out_.error = Error{std::string(v.sqlstate.value_or("")), std::string(v.message)};
      complete({});
      out_.rows = out_.row_digests.size();
      return Feed::done;
    }
    case 'I':
      if (out_.complete) return Feed::bad;
      complete({});
      return Feed::done;
    case 's':  // a suspended portal: the same outcome on both sides, as the recorder writes it
      if (out_.complete) return Feed::bad;
      complete("(suspended)");
      return Feed::done;
    default:
      return out_.complete ? Feed::done : Feed::more;
  }
}

Comparison compare(const Outcome& primary, const Outcome& shadow, bool ordered, const CompareRules& rules) {
  if (primary.error || shadow.error) {
    if (primary.error && shadow.error && primary.error->sqlstate == shadow.error->sqlstate) return {};
    return mismatch("error");
  }
  const Tag tp = parse_tag(primary.tag), ts = parse_tag(shadow.tag);
  if (tp.command != ts.command) return mismatch("tag");
  const bool rows = !primary.columns.empty() || !shadow.columns.empty() || !primary.row_digests.empty() ||
                    !shadow.row_digests.empty();
  if (!rows) return tp.count == ts.count ? Comparison{} : mismatch("tag");

  const bool both_described = !primary.columns.empty() && !shadow.columns.empty();
  if ((both_described && !same_columns(primary, shadow)) || primary.approx_columns != shadow.approx_columns) {
    Comparison c = mismatch("columns");
    c.primary_row = render_columns(primary);
    c.shadow_row = render_columns(shadow);
    return c;
  }
  const long double tolerance = rules.numeric_tolerance > 0 ? rules.numeric_tolerance : 0;
  const RowDiff d = ordered ? sequence_diff(primary, shadow, tolerance) : multiset_diff(primary, shadow, tolerance);
  if (d.any()) {
    Comparison c = mismatch("rows");
    if (d.primary) c.primary_row = row_reference(primary, *d.primary);
    if (d.shadow) c.shadow_row = row_reference(shadow, *d.shadow);
    return c;
  }
  return tp.count == ts.count ? Comparison{} : mismatch("tag");
}

bool values_equal(std::uint32_t type_oid, std::optional<std::string_view> a, std::optional<std::string_view> b,
                  double tolerance) {
  const Kind k = kind_of(type_oid, 0);
  Hasher ha, hb;
  std::string scratch;
  if (tolerance > 0 && tolerable(k)) {
    std::vector<long double> va, vb;
    add_approx(k, a, ha, va, scratch);
    add_approx(k, b, hb, vb, scratch);
    return ha.finish() == hb.finish() && std::fabs(va[0] - vb[0]) <= static_cast<long double>(tolerance);
  }
  add_value(k, a, ha, scratch);
  add_value(k, b, hb, scratch);
  return ha.finish() == hb.finish();
}

}  // namespace pgshift::shadow
