// Value normalization by type: one table of (type, a, b, tolerance, equal?)
// cases, each checked both ways round.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <ostream>
#include <string>

#include "shadow/compare.hpp"

namespace pgshift::shadow {
namespace {

enum Oid : std::uint32_t {
  bool_ = 16, bytea = 17, int8 = 20, int2 = 21, int4 = 23, text = 25, json = 114, float4 = 700, float8 = 701,
  bpchar = 1042, varchar = 1043, date = 1082, time = 1083, timestamp = 1114, timestamptz = 1184,
  interval = 1186, timetz = 1266, numeric = 1700, uuid = 2950, jsonb = 3802,
};

struct Case {
  std::uint32_t oid;
  std::optional<std::string> a, b;
  bool equal;
  double tolerance = 0;
};

std::ostream& operator<<(std::ostream& os, const Case& c) {
  return os << "oid " << c.oid << ": " << (c.a ? "'" + *c.a + "'" : "NULL") << (c.equal ? " == " : " != ")
            << (c.b ? "'" + *c.b + "'" : "NULL") << " (tolerance " << c.tolerance << ")";
}

class Normalize : public ::testing::TestWithParam<Case> {};

TEST_P(Normalize, EqualityBothWays) {
  const Case& c = GetParam();
  auto view = [](const std::optional<std::string>& s) -> std::optional<std::string_view> {
    if (!s) return std::nullopt;
    return std::string_view(*s);
  };
  EXPECT_EQ(values_equal(c.oid, view(c.a), view(c.b), c.tolerance), c.equal);
  EXPECT_EQ(values_equal(c.oid, view(c.b), view(c.a), c.tolerance), c.equal);
  EXPECT_TRUE(values_equal(c.oid, view(c.a), view(c.a), c.tolerance)) << "a value equals itself";
}

const Case cases[] = {
    // numeric: scale, sign of zero, exponents, specials, tolerance
    {numeric, "1.50", "1.5", true},
    {numeric, "-0", "0", true},
    {numeric, "0.000", "0", true},
    {numeric, "100", "1e2", true},
    {numeric, "0.015", "1.5e-2", true},
    {numeric, "1.5", "1.51", false},
    {numeric, "1.5", "-1.5", false},
    {numeric, "10", "1", false},
    {numeric, "NaN", "NaN", true},
    {numeric, "NaN", "0", false},
    {numeric, "Infinity", "Infinity", true},
    {numeric, "Infinity", "-Infinity", false},
    {numeric, "1.5", "1.51", true, 0.02},
    {numeric, "1.5", "1.53", false, 0.02},
    {numeric, "NaN", "NaN", true, 0.5},
    {numeric, "NaN", "0", false, 0.5},
    {numeric, "12345678901234567890.5", "12345678901234567890.50", true},
    {numeric, "12345678901234567890.5", "12345678901234567890.6", false},
    // integers
    {int2, "7", "07", true},
    {int4, "-0", "0", true},
    {int4, "42", "43", false},
    {int8, "9223372036854775807", "9223372036854775807", true},
    {int8, "9223372036854775807", "9223372036854775806", false},
    {int8, "9223372036854775807", "9223372036854775806", false, 0.5},  // exact even with a tolerance
    // float4 / float8
    {float8, "0.1", "1e-1", true},
    {float8, "-0", "0", true},
    {float8, "NaN", "NaN", true},
    {float8, "NaN", "Infinity", false},
    {float8, "Infinity", "Infinity", true},
    {float8, "Infinity", "-Infinity", false},
    {float8, "1.0000001", "1", false},
    {float8, "1.0000001", "1", true, 1e-6},
    {float8, "1.1", "1", false, 0.01},
    {float4, "0.1", "0.100000001", true},  // the same float printed with more digits
    {float4, "1.5", "1.25", false},
    {float4, "NaN", "NaN", true, 0.1},
    // bool
    {bool_, "t", "true", true},
    {bool_, "f", "false", true},
    {bool_, "t", "f", false},
    // text types
    {text, "abc", "abc", true},
    {text, "abc", "abc ", false},
    {text, "abc", "ABC", false},
    {varchar, "abc", "abd", false},
    {bpchar, "abc  ", "abc", true},
    {bpchar, " abc", "abc", false},
    // NULL is not the empty string
    {text, std::nullopt, "", false},
    {text, std::nullopt, std::nullopt, true},
    {numeric, std::nullopt, "0", false},
    {numeric, std::nullopt, "0", false, 0.5},
    {numeric, std::nullopt, std::nullopt, true, 0.5},
    // json: whitespace and escapes, key order kept; jsonb: key order and number scale ignored
    {json, R"({"a": 1, "b": [1, 2 ]})", R"({"a":1,"b":[1,2]})", true},
    {json, R"({"s": "\u0041\n"})", R"({"s":"A\u000a"})", true},
    {json, R"({"s": "\ud83d\ude00"})", "{\"s\":\"\xf0\x9f\x98\x80\"}", true},
    {json, R"({"a":1,"b":2})", R"({"b":2,"a":1})", false},
    {json, R"({"a":1.0})", R"({"a":1})", false},
    {json, R"([1,2])", R"([2,1])", false},
    {json, "{", "{", true},     // not JSON: compared as text
    {json, "{", "{ ", false},
    {jsonb, R"({"a": 1, "b": {"c": [true, null]}})", R"({"b":{"c":[true,null]},"a":1})", true},
    {jsonb, R"({"a": 1.0})", R"({"a": 1.00})", true},
    {jsonb, R"({"a": 1, "a": 2})", R"({"a": 2})", true},
    {jsonb, R"({"a": 1})", R"({"a": 2})", false},
    {jsonb, R"({"a": "1"})", R"({"a": 1})", false},
    // timestamptz: instants, whatever the offset
    {timestamptz, "2026-11-21 07:00:00.1+00", "2026-11-21 08:00:00.100+01", true},
    {timestamptz, "2026-11-21 00:30:00+01", "2026-11-20 23:30:00+00", true},
    {timestamptz, "2026-11-21 12:30:00+05:30", "2026-11-21 07:00:00+00", true},
    {timestamptz, "1900-01-01 00:00:00+00:09:21", "1899-12-31 23:50:39+00", true},
    {timestamptz, "2026-11-21 07:00:00+00", "2026-11-21 07:00:00+01", false},
    {timestamptz, "2026-11-21 07:00:00.000001+00", "2026-11-21 07:00:00+00", false},
    {timestamptz, "infinity", "infinity", true},
    {timestamptz, "infinity", "-infinity", false},
    {timestamptz, "0044-03-15 12:00:00+00 BC", "0044-03-15 12:00:00+00", false},
    {timestamptz, "0044-03-15 12:00:00+00 BC", "0044-03-15 13:00:00+01 BC", true},
    // timestamp, date, time, timetz
    {timestamp, "2026-11-21 07:00:00.1", "2026-11-21 07:00:00.100000", true},
    {timestamp, "2026-11-21 07:00:00.1", "2026-11-21 07:00:00.2", false},
    {date, "2026-11-21", "2026-11-21", true},
    {date, "2026-11-21", "2026-11-22", false},
    {date, "0001-01-01 BC", "0001-01-01", false},
    {date, "2024-02-29", "2024-03-01", false},
    {time, "07:00:00.5", "07:00:00.500", true},
    {time, "07:00:00", "07:00:01", false},
    {timetz, "10:00:00.10+01", "10:00:00.1+01:00", true},
    {timetz, "10:00:00+01", "09:00:00+00", false},  // timetz equality keeps the offset
    // uuid, bytea
    {uuid, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", true},
    {uuid, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12", false},
    {bytea, "\\x00FF", "\\x00ff", true},
    {bytea, "\\x00ff", "\\x00fe", false},
    {bytea, "\\000\\377", "\\x00ff", true},  // bytea_output = escape
    {bytea, "a\\\\", "\\x615c", true},
    {bytea, "\\x", "", true},
    // everything else: exact text
    {interval, "1 day", "1 day", true},
    {interval, "1 day", "24:00:00", false},
};

INSTANTIATE_TEST_SUITE_P(Types, Normalize, ::testing::ValuesIn(cases));

// Arbitrary text never breaks a normalizer, and every value equals itself.
TEST(NormalizeFuzz, ArbitraryTextIsHandled) {
  const std::string alphabet = "0123456789.-+eE:TZ BCinfatyNI\\x\"{}[],u\xc3\xa9\xff";
  std::mt19937 rng(12345);
  for (std::uint32_t oid : {bool_, bytea, int4, json, jsonb, float4, float8, bpchar, date, time, timestamp,
                            timestamptz, timetz, numeric, uuid}) {
    for (int i = 0; i < 3000; ++i) {
      std::string v(rng() % 24, ' ');
      for (char& c : v) c = alphabet[rng() % alphabet.size()];
      EXPECT_TRUE(values_equal(oid, v, v)) << oid << " '" << v << "'";
      EXPECT_TRUE(values_equal(oid, v, v, 0.5)) << oid << " '" << v << "'";
    }
  }
}

// A value is a view into the DataRow, with no NUL after it. libstdc++ 12
// parses "nan" and "inf" as long double with strlen on the text, reading past
// the value (and past the buffer: a heap overread that the sanitizer build
// reports; found by tests/fuzz/compare.cpp). The value here ends its allocation.
TEST(NormalizeTolerance, ReadsOnlyTheValue) {
  for (std::string_view text : {"NaN", "nan", "inf", "1.5"}) {
    auto exact = std::make_unique<char[]>(text.size());
    std::memcpy(exact.get(), text.data(), text.size());
    const std::string_view v(exact.get(), text.size());
    EXPECT_TRUE(values_equal(1700, v, text, 0.001)) << text;
    EXPECT_TRUE(values_equal(701, v, text, 0.001)) << text;
  }
}

// Text a float4 cannot hold (no server sends it, a broken one might) still
// equals itself within a tolerance (found by tests/fuzz/compare.cpp).
TEST(NormalizeTolerance, OutOfRangeFloatEqualsItself) {
  EXPECT_TRUE(values_equal(700, std::string_view("1e+200"), std::string_view("1e+200"), 0.5));
  EXPECT_TRUE(values_equal(701, std::string_view("1e+400"), std::string_view("1e+400"), 0.5));
  EXPECT_FALSE(values_equal(700, std::string_view("1e+200"), std::string_view("1e+201"), 0.5));
}

struct TagCase {
  std::string tag;
  std::string command;
  std::optional<std::uint64_t> count;
};

class Tags : public ::testing::TestWithParam<TagCase> {};

TEST_P(Tags, Parse) {
  const Tag t = parse_tag(GetParam().tag);
  EXPECT_EQ(t.command, GetParam().command);
  EXPECT_EQ(t.count, GetParam().count);
}

INSTANTIATE_TEST_SUITE_P(Commands, Tags,
                         ::testing::Values(TagCase{"INSERT 0 1", "INSERT", 1}, TagCase{"UPDATE 3", "UPDATE", 3},
                                           TagCase{"SELECT 0", "SELECT", 0}, TagCase{"CREATE TABLE", "CREATE TABLE", {}},
                                           TagCase{"MERGE 12", "MERGE", 12}, TagCase{"", "", {}},
                                           TagCase{"BEGIN", "BEGIN", {}}));

}  // namespace
}  // namespace pgshift::shadow
