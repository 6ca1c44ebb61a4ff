// The value decoder of the comparison (shadow/compare.*). Input: a type byte,
// a flags byte, then two text values separated by a NUL. Value equality must
// be reflexive and symmetric, and a one-row result holding each value must
// compare equal exactly when values_equal says the values are equal (the
// digest of a DataRow and the decoder agree). Malformed DataRows built from
// the raw input must be reported as bad, never crash.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_util.hpp"
#include "shadow/compare.hpp"

namespace {

using namespace pgshift::shadow;
using pgshift::fuzz::require_that;

// bool, bytea, int8, int2, int4, numeric, json, float4, float8, bpchar, date,
// time, timestamp, timestamptz, timetz, uuid, jsonb, text.
constexpr std::array<std::uint32_t, 18> kTypes = {16,   17,   20,   21,   23,   1700, 114,  700,  701,
                                                   1042, 1082, 1083, 1114, 1184, 1266, 2950, 3802, 25};

void be16(std::string& s, std::uint16_t v) {
  s += static_cast<char>(v >> 8);
  s += static_cast<char>(v & 0xff);
}
void be32(std::string& s, std::uint32_t v) {
  be16(s, static_cast<std::uint16_t>(v >> 16));
  be16(s, static_cast<std::uint16_t>(v & 0xffff));
}

std::string message(char type, const std::string& body) {
  std::string m(1, type);
  be32(m, static_cast<std::uint32_t>(body.size() + 4));
  return m + body;
}

pgshift::protocol::Frame frame_of(const std::string& m) {
  return {m[0], std::string_view(m).substr(5), m};
}

std::string row_description(std::uint32_t type_oid) {
  std::string b;
  be16(b, 1);
  b += "v";
  b += '\0';
  be32(b, 0);         // table oid
  be16(b, 0);         // attnum
  be32(b, type_oid);  // type
  be16(b, 0xffff);    // typlen
  be32(b, 0xffffffff);  // typmod
  be16(b, 0);         // text format
  return message('T', b);
}

std::string data_row(std::optional<std::string_view> v) {
  std::string b;
  be16(b, 1);
  if (!v) {
    be32(b, 0xffffffff);
  } else {
    be32(b, static_cast<std::uint32_t>(v->size()));
    b += *v;
  }
  return message('D', b);
}

Outcome one_row(const CompareRules& rules, std::uint32_t type_oid, std::optional<std::string_view> v) {
  ResultCollector c(rules);
  c.feed(frame_of(row_description(type_oid)));
  require_that(c.feed(frame_of(data_row(v))) == ResultCollector::Feed::more, "a well-formed row is accepted");
  std::string tag("SELECT 1");
  tag += '\0';
  require_that(c.feed(frame_of(message('C', tag))) == ResultCollector::Feed::done, "CommandComplete ends it");
  return c.take();
}

// The raw bytes as a DataRow body of a one-column result: a bad layout must be "bad".
void raw_row(const CompareRules& rules, std::uint32_t type_oid, std::string_view body) {
  ResultCollector c(rules);
  c.feed(frame_of(row_description(type_oid)));
  c.feed(frame_of(message('D', std::string(body))));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint32_t type = kTypes[data[0] % kTypes.size()];
  const bool tolerant = data[1] & 1;
  const bool a_null = data[1] & 2;
  const bool b_null = data[1] & 4;
  const std::string_view rest = pgshift::fuzz::as_text(data + 2, size - 2);
  const std::size_t nul = rest.find('\0');
  std::optional<std::string_view> a = rest.substr(0, nul);
  std::optional<std::string_view> b;
  if (nul != std::string_view::npos) b = rest.substr(nul + 1);
  else b = a;
  if (a_null) a.reset();
  if (b_null) b.reset();

  CompareRules rules;
  rules.numeric_tolerance = tolerant ? 0.5 : 0;
  const double tol = rules.numeric_tolerance;
  require_that(values_equal(type, a, a, tol), "a value equals itself");
  const bool eq = values_equal(type, a, b, tol);
  require_that(eq == values_equal(type, b, a, tol), "equality is symmetric");

  const Outcome pa = one_row(rules, type, a);
  const Outcome pb = one_row(rules, type, b);
  require_that(compare(pa, pa, false, rules).match, "a result equals itself");
  require_that(compare(pa, pb, false, rules).match == eq, "row comparison agrees with values_equal");
  raw_row(rules, type, rest);
  return 0;
}
