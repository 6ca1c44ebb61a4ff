// Message views: field round trips over builder output, and rejection of
// truncated bodies, trailing bytes and wrong types.
#include "protocol/messages.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/builder.hpp"
#include "test_util.hpp"

namespace pgshift::protocol {
namespace {

using namespace std::string_literals;
using test::be16;
using test::be32;
using test::build;
using test::typed;

// A frame over complete message bytes (type, length, body).
Frame frame_of(std::string_view bytes) { return Frame{bytes[0], bytes.substr(header_size), bytes}; }

// The same frame with another type byte or body.
Frame with_type(Frame f, char type) {
  f.type = type;
  return f;
}
Frame with_body(Frame f, std::string_view body) {
  f.body = body;
  return f;
}

template <class View>
bool parses(const Frame& f) {
  View v;
  return v.parse(f);
}

// A view together with the bytes it borrows from, kept on the heap so the
// view stays valid when the pair is moved.
template <class View>
struct Parsed {
  std::unique_ptr<const std::string> bytes;
  View view;
  const View* operator->() const { return &view; }
};

// Parses `bytes` as View, expecting success.
template <class View>
Parsed<View> parsed(std::string bytes) {
  Parsed<View> p{std::make_unique<const std::string>(std::move(bytes)), {}};
  EXPECT_TRUE(p.view.parse(frame_of(*p.bytes))) << test::hex(*p.bytes);
  return p;
}

// ---- Reader ----

TEST(Reader, ReadsBigEndianIntegersAndCStrings) {
  const std::string body = "\x01"s + be16(0x0203) + be32(0x04050607) + "abc\0"s + "xyz";
  Reader r(body);
  std::uint8_t a = 0;
  std::uint16_t b = 0;
  std::uint32_t c = 0;
  std::string_view s, raw;
  ASSERT_TRUE(r.u8(a) && r.u16(b) && r.u32(c) && r.cstring(s) && r.bytes(3, raw));
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 0x0203);
  EXPECT_EQ(c, 0x04050607u);
  EXPECT_EQ(s, "abc");
  EXPECT_EQ(raw, "xyz");
  EXPECT_TRUE(r.done());
}

TEST(Reader, NeverReadsPastTheEndAndLeavesTheRestOnFailure) {
  const std::string body = "ab";
  Reader r(body);
  std::uint32_t v32 = 0;
  std::string_view s;
  EXPECT_FALSE(r.u32(v32));
  EXPECT_FALSE(r.cstring(s));
  EXPECT_FALSE(r.bytes(3, s));
  EXPECT_EQ(r.rest(), "ab");
  std::uint16_t v16 = 0;
  ASSERT_TRUE(r.u16(v16));
  std::uint8_t v8 = 0;
  EXPECT_FALSE(r.u8(v8));
  EXPECT_FALSE(r.u16(v16));
  EXPECT_TRUE(r.bytes(0, s));
  EXPECT_TRUE(r.done());
}

TEST(Reader, HighBitBytesAreUnsigned) {
  const std::string body = "\xff\xff\xff\xff\xff\xff\xff";
  Reader r(body);
  std::uint8_t a = 0;
  std::uint16_t b = 0;
  std::uint32_t c = 0;
  ASSERT_TRUE(r.u8(a) && r.u16(b) && r.u32(c));
  EXPECT_EQ(a, 0xff);
  EXPECT_EQ(b, 0xffff);
  EXPECT_EQ(c, 0xffffffffu);
}

// ---- fixed layouts: whole accepted, any truncation / extra byte / other type rejected ----

struct FixedCase {
  const char* name;
  std::string bytes;
  bool (*parse)(const Frame&);
  std::string_view accepted_types;
};

std::vector<FixedCase> fixed_cases() {
  return {
      {"Query", build([](auto& o) { append_query(o, "SELECT 1"); }), parses<QueryView>, "Q"},
      {"QueryEmpty", build([](auto& o) { append_query(o, ""); }), parses<QueryView>, "Q"},
      {"ParseNoTypes", build([](auto& o) { append_parse(o, "", "SELECT 1"); }), parses<ParseView>, "P"},
      {"ParseTwoTypes", build([](auto& o) {
         append_parse(o, "s", "SELECT $1, $2", {23, 25});
       }),
       parses<ParseView>, "P"},
      {"Execute", build([](auto& o) { append_execute(o, "p", 5); }), parses<ExecuteView>, "E"},
      {"Describe", build([](auto& o) { append_describe(o, 'S', "s1"); }), parses<TargetView>, "DC"},
      {"Close", build([](auto& o) { append_close(o, 'P', ""); }), parses<TargetView>, "DC"},
      {"AuthOk", build([](auto& o) { append_authentication_ok(o); }), parses<AuthenticationView>, "R"},
      {"AuthCleartext", typed('R', be32(3)), parses<AuthenticationView>, "R"},
      {"AuthMd5", typed('R', be32(5) + "salt"), parses<AuthenticationView>, "R"},
      {"AuthGss", typed('R', be32(7)), parses<AuthenticationView>, "R"},
      {"AuthSspi", typed('R', be32(9)), parses<AuthenticationView>, "R"},
      {"BackendKeyData", build([](auto& o) { append_backend_key_data(o, 7, 8); }), parses<BackendKeyDataView>,
       "K"},
      {"ReadyForQuery", build([](auto& o) { append_ready_for_query(o, 'T'); }), parses<ReadyForQueryView>,
       "Z"},
      {"ParameterStatus", build([](auto& o) { append_parameter_status(o, "TimeZone", "UTC"); }),
       parses<ParameterStatusView>, "S"},
      {"CommandComplete", typed('C', "INSERT 0 1\0"s), parses<CommandCompleteView>, "C"},
      {"ErrorResponse", build([](auto& o) {
         append_error_response(o, {"ERROR", "42601", "syntax", "d", "h"});
       }),
       parses<ErrorFieldsView>, "EN"},
      {"NoticeResponse", build([](auto& o) {
         append_notice_response(o, {"WARNING", "01000", "careful"});
       }),
       parses<ErrorFieldsView>, "EN"},
      {"ErrorWithoutSqlstate", typed('E', "SERROR\0Mno code\0\0"s), parses<ErrorFieldsView>, "EN"},
  };
}

class FixedLayout : public ::testing::TestWithParam<FixedCase> {};

TEST_P(FixedLayout, AcceptsTheWholeMessage) {
  const auto& c = GetParam();
  EXPECT_TRUE(c.parse(frame_of(c.bytes))) << test::hex(c.bytes);
}

TEST_P(FixedLayout, RejectsEveryTruncatedBody) {
  const auto& c = GetParam();
  const Frame whole = frame_of(c.bytes);
  for (std::size_t n = 0; n < whole.body.size(); ++n)
    EXPECT_FALSE(c.parse(with_body(whole, whole.body.substr(0, n)))) << "body prefix of " << n << " bytes";
}

TEST_P(FixedLayout, RejectsTrailingBytes) {
  const auto& c = GetParam();
  const Frame whole = frame_of(c.bytes);
  for (const std::string& extra : {"x"s, "\0"s, "\0\0\0\0"s, "garbage\0"s}) {
    const std::string body = std::string(whole.body) + extra;
    EXPECT_FALSE(c.parse(with_body(whole, body))) << test::hex(body);
  }
}

TEST_P(FixedLayout, RejectsOtherTypes) {
  const auto& c = GetParam();
  const Frame whole = frame_of(c.bytes);
  for (int v = 0; v < 256; ++v) {
    const char t = static_cast<char>(v);
    if (c.accepted_types.find(t) != std::string_view::npos) continue;
    EXPECT_FALSE(c.parse(with_type(whole, t))) << "type " << v;
  }
}

std::string fixed_name(const ::testing::TestParamInfo<FixedCase>& p) { return p.param.name; }

INSTANTIATE_TEST_SUITE_P(Views, FixedLayout, ::testing::ValuesIn(fixed_cases()), fixed_name);

// ---- frontend views ----

TEST(QueryView, RoundTrip) {
  const std::string sql = "SELECT 'a;b' FROM t WHERE x = $$\n$$";
  const auto v = parsed<QueryView>(build([&](auto& o) { append_query(o, sql); }));
  EXPECT_EQ(v->sql, sql);
}

TEST(QueryView, EmbeddedNulIsRejected) {
  EXPECT_FALSE(parses<QueryView>(frame_of(typed('Q', "SELECT 1\0; DROP\0"s))));
}

TEST(ParseView, RoundTrip) {
  const auto v = parsed<ParseView>(build([](auto& o) {
    append_parse(o, "stmt_1", "SELECT $1, $2", {23, 25});
  }));
  EXPECT_EQ(v->name, "stmt_1");
  EXPECT_EQ(v->sql, "SELECT $1, $2");
  EXPECT_EQ(v->param_count, 2);

  const auto unnamed = parsed<ParseView>(build([](auto& o) { append_parse(o, "", "BEGIN"); }));
  EXPECT_EQ(unnamed->name, "");
  EXPECT_EQ(unnamed->param_count, 0);
}

TEST(ParseView, ParameterCountMustMatchTheTypes) {
  EXPECT_FALSE(parses<ParseView>(frame_of(typed('P', "s\0q\0"s + be16(2) + be32(23)))));
  EXPECT_FALSE(parses<ParseView>(frame_of(typed('P', "s\0q\0"s + be16(1) + be32(23) + be32(25)))));
  EXPECT_FALSE(parses<ParseView>(frame_of(typed('P', "s\0q\0"s + be16(0xffff)))));
  EXPECT_TRUE(parses<ParseView>(frame_of(typed('P', "s\0q\0"s + be16(2) + be32(23) + be32(25)))));
}

TEST(BindView, RoundTripWithParameters) {
  const auto v = parsed<BindView>(build([](auto& o) { append_bind(o, "portal", "stmt", {"1", "", "abc"}); }));
  EXPECT_EQ(v->portal, "portal");
  EXPECT_EQ(v->statement, "stmt");

  const auto unnamed = parsed<BindView>(build([](auto& o) { append_bind(o, "", ""); }));
  EXPECT_EQ(unnamed->portal, "");
  EXPECT_EQ(unnamed->statement, "");
}

TEST(BindView, NamesMustBeTerminated) {
  const std::string bytes = build([](auto& o) { append_bind(o, "portal", "stmt", {"1"}); });
  const Frame whole = frame_of(bytes);
  const std::size_t names_end = std::string_view("portal\0stmt\0"s).size();
  for (std::size_t n = 0; n < names_end; ++n)
    EXPECT_FALSE(parses<BindView>(with_body(whole, whole.body.substr(0, n)))) << n;
  // Parameters are left in the bytes, so only the names are checked.
  for (std::size_t n = names_end; n <= whole.body.size(); ++n)
    EXPECT_TRUE(parses<BindView>(with_body(whole, whole.body.substr(0, n)))) << n;
  EXPECT_FALSE(parses<BindView>(with_type(whole, 'P')));
}

TEST(ExecuteView, RoundTrip) {
  for (std::uint32_t rows : {0u, 1u, 100u, 0xffffffffu}) {
    const auto v = parsed<ExecuteView>(build([&](auto& o) { append_execute(o, "c1", rows); }));
    EXPECT_EQ(v->portal, "c1");
    EXPECT_EQ(v->max_rows, rows);
  }
  EXPECT_EQ(parsed<ExecuteView>(build([](auto& o) { append_execute(o, ""); }))->max_rows, 0u);
}

TEST(TargetView, DescribeAndCloseForStatementsAndPortals) {
  for (char kind : {'S', 'P'}) {
    const auto d = parsed<TargetView>(build([&](auto& o) { append_describe(o, kind, "name"); }));
    EXPECT_EQ(d->kind, kind);
    EXPECT_EQ(d->name, "name");
    const auto c = parsed<TargetView>(build([&](auto& o) { append_close(o, kind, ""); }));
    EXPECT_EQ(c->kind, kind);
    EXPECT_EQ(c->name, "");
  }
}

TEST(TargetView, OtherKindsRejected) {
  for (char kind : {'s', 'p', 'X', '\0', '\xff'}) {
    EXPECT_FALSE(parses<TargetView>(frame_of(build([&](auto& o) { append_describe(o, kind, "n"); }))));
    EXPECT_FALSE(parses<TargetView>(frame_of(build([&](auto& o) { append_close(o, kind, "n"); }))));
  }
}

// ---- backend views ----

TEST(AuthenticationView, OkAndSasl) {
  const auto ok = parsed<AuthenticationView>(build([](auto& o) { append_authentication_ok(o); }));
  EXPECT_EQ(ok->code, static_cast<std::uint32_t>(AuthCode::ok));
  EXPECT_TRUE(ok->data.empty());
  EXPECT_FALSE(ok->expects_response());

  const auto sasl = parsed<AuthenticationView>(build([](auto& o) {
    append_authentication_sasl(o, {"SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"});
  }));
  EXPECT_EQ(sasl->code, static_cast<std::uint32_t>(AuthCode::sasl));
  EXPECT_EQ(sasl->data, "SCRAM-SHA-256\0SCRAM-SHA-256-PLUS\0\0"s);
  EXPECT_TRUE(sasl->expects_response());
}

TEST(AuthenticationView, Md5SaltIsFourBytes) {
  const auto v = parsed<AuthenticationView>(typed('R', be32(5) + "\x01\x02\x03\x04"));
  EXPECT_EQ(v->data, "\x01\x02\x03\x04");
  EXPECT_FALSE(parses<AuthenticationView>(frame_of(typed('R', be32(5) + "abc"))));
  EXPECT_FALSE(parses<AuthenticationView>(frame_of(typed('R', be32(5) + "abcde"))));
}

TEST(AuthenticationView, SaslContinueAndFinalCarryTheirData) {
  const std::string server_first = "r=abc,s=c2FsdA==,i=4096";
  const auto cont = parsed<AuthenticationView>(typed('R', be32(11) + server_first));
  EXPECT_EQ(cont->data, server_first);
  EXPECT_TRUE(cont->expects_response());
  const auto fin = parsed<AuthenticationView>(typed('R', be32(12) + "v=xyz"));
  EXPECT_EQ(fin->data, "v=xyz");
  EXPECT_FALSE(fin->expects_response());
}

struct AuthResponseCase {
  std::uint32_t code;
  bool expects;
};

class AuthExpectsResponse : public ::testing::TestWithParam<AuthResponseCase> {};

TEST_P(AuthExpectsResponse, MatchesTheCode) {
  AuthenticationView v;
  v.code = GetParam().code;
  EXPECT_EQ(v.expects_response(), GetParam().expects) << "code " << GetParam().code;
}

INSTANTIATE_TEST_SUITE_P(Codes, AuthExpectsResponse,
                         ::testing::Values(AuthResponseCase{0, false}, AuthResponseCase{2, false},
                                           AuthResponseCase{3, true}, AuthResponseCase{5, true},
                                           AuthResponseCase{6, false}, AuthResponseCase{7, true},
                                           AuthResponseCase{8, true}, AuthResponseCase{9, true},
                                           AuthResponseCase{10, true}, AuthResponseCase{11, true},
                                           AuthResponseCase{12, false}, AuthResponseCase{99, false}));

TEST(BackendKeyDataView, RoundTrip) {
  for (auto [pid, key] : {std::pair{0u, 0u}, std::pair{4242u, 0xdeadbeefu}, std::pair{0xffffffffu, 1u}}) {
    // (pid = pid: clang 14, the sanitizer build's compiler, cannot capture a structured binding.)
    const auto v =
        parsed<BackendKeyDataView>(build([pid = pid, key = key](auto& o) { append_backend_key_data(o, pid, key); }));
    EXPECT_EQ(v->pid, pid);
    EXPECT_EQ(v->key, key);
  }
}

TEST(ReadyForQueryView, TransactionStatuses) {
  for (char status : {'I', 'T', 'E'})
    EXPECT_EQ(parsed<ReadyForQueryView>(build([&](auto& o) { append_ready_for_query(o, status); }))->status,
              status);
  for (char status : {'X', 'i', '\0', '\xff'})
    EXPECT_FALSE(
        parses<ReadyForQueryView>(frame_of(build([&](auto& o) { append_ready_for_query(o, status); }))));
}

TEST(ParameterStatusView, RoundTrip) {
  const auto v = parsed<ParameterStatusView>(
      build([](auto& o) { append_parameter_status(o, "server_version", "16.2"); }));
  EXPECT_EQ(v->name, "server_version");
  EXPECT_EQ(v->value, "16.2");
  const auto empty = parsed<ParameterStatusView>(build([](auto& o) { append_parameter_status(o, "x", ""); }));
  EXPECT_EQ(empty->value, "");
}

TEST(CommandCompleteView, RoundTrip) {
  for (std::string tag : {"SELECT 42", "INSERT 0 1", "BEGIN", ""})
    EXPECT_EQ(parsed<CommandCompleteView>(typed('C', tag + '\0'))->tag, tag);
}

// ---- ErrorResponse / NoticeResponse ----

TEST(ErrorFieldsView, RoundTripFromBuilder) {
  const auto v = parsed<ErrorFieldsView>(build([](auto& o) {
    append_error_response(o, {"FATAL", "28P01", "password authentication failed"});
  }));
  EXPECT_EQ(v->severity, "FATAL");
  ASSERT_TRUE(v->sqlstate.has_value());
  EXPECT_EQ(*v->sqlstate, "28P01");
  EXPECT_EQ(v->message, "password authentication failed");
}

TEST(ErrorFieldsView, DetailAndHintDoNotDisturbTheOtherFields) {
  const auto v = parsed<ErrorFieldsView>(build([](auto& o) {
    append_notice_response(o, {"NOTICE", "00000", "msg", "the detail", "the hint"});
  }));
  EXPECT_EQ(v->severity, "NOTICE");
  EXPECT_EQ(v->sqlstate, "00000");
  EXPECT_EQ(v->message, "msg");
}

TEST(ErrorFieldsView, MissingSqlstateIsAnEmptyOptional) {
  const auto v = parsed<ErrorFieldsView>(typed('E', "SERROR\0VERROR\0Mno code here\0\0"s));
  EXPECT_FALSE(v->sqlstate.has_value());
  EXPECT_EQ(v->severity, "ERROR");
  EXPECT_EQ(v->message, "no code here");
}

TEST(ErrorFieldsView, EmptySqlstateIsPresentButEmpty) {
  const auto v = parsed<ErrorFieldsView>(typed('E', "SERROR\0C\0Mm\0\0"s));
  ASSERT_TRUE(v->sqlstate.has_value());
  EXPECT_EQ(*v->sqlstate, "");
}

TEST(ErrorFieldsView, OnlyLocalizedSeverity) {
  const auto v = parsed<ErrorFieldsView>(typed('E', "SFATAL\0\0"s));
  EXPECT_EQ(v->severity, "FATAL");
  EXPECT_FALSE(v->sqlstate.has_value());
  EXPECT_EQ(v->message, "");
}

TEST(ErrorFieldsView, NonLocalizedSeverityWinsInAnyOrder) {
  EXPECT_EQ(parsed<ErrorFieldsView>(typed('E', "SFEHLER\0VERROR\0\0"s))->severity, "ERROR");
  EXPECT_EQ(parsed<ErrorFieldsView>(typed('E', "VERROR\0SFEHLER\0\0"s))->severity, "ERROR");
}

TEST(ErrorFieldsView, NoFieldsAtAll) {
  const auto v = parsed<ErrorFieldsView>(typed('N', "\0"s));
  EXPECT_EQ(v->severity, "");
  EXPECT_FALSE(v->sqlstate.has_value());
  EXPECT_EQ(v->message, "");
}

TEST(ErrorFieldsView, UnknownFieldsAreSkipped) {
  const auto v =
      parsed<ErrorFieldsView>(typed('E', "Xwhatever\0Dd\0Hh\0P12\0Fparse.c\0L42\0Mm\0C22012\0\0"s));
  EXPECT_EQ(v->message, "m");
  EXPECT_EQ(v->sqlstate, "22012");
}

TEST(ErrorFieldsView, MalformedFieldListsRejected) {
  for (const std::string& body : {""s, "Mm"s, "Mm\0"s, "C"s, "\x01"s})
    EXPECT_FALSE(parses<ErrorFieldsView>(frame_of(typed('E', body)))) << test::hex(body);
}

TEST(ErrorFieldsView, ReusedViewDoesNotKeepOldFields) {
  ErrorFieldsView v;
  const std::string first = build([](auto& o) { append_error_response(o, {"ERROR", "42P01", "first"}); });
  ASSERT_TRUE(v.parse(frame_of(first)));
  ASSERT_EQ(v.sqlstate, "42P01");

  const std::string second = typed('E', "SFATAL\0\0"s);
  ASSERT_TRUE(v.parse(frame_of(second)));
  EXPECT_FALSE(v.sqlstate.has_value());
  EXPECT_EQ(v.severity, "FATAL");
  EXPECT_EQ(v.message, "");
}

}  // namespace
}  // namespace pgshift::protocol
