// Builders: exact wire bytes as the PostgreSQL protocol documentation gives
// them, and correct appending to a buffer that already holds data.
#include "protocol/builder.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "protocol/frame.hpp"
#include "test_util.hpp"

namespace pgshift::protocol {
namespace {

using namespace std::string_literals;
using test::build;
using test::unhex;

struct BytesCase {
  const char* name;
  std::string built;
  std::string expected;
};

class BuilderBytes : public ::testing::TestWithParam<BytesCase> {};

TEST_P(BuilderBytes, ExactWireFormat) {
  EXPECT_EQ(test::hex(GetParam().built), test::hex(GetParam().expected));
}

std::string bytes_name(const ::testing::TestParamInfo<BytesCase>& p) { return p.param.name; }

// ---- untyped packets ----
INSTANTIATE_TEST_SUITE_P(
    Untyped, BuilderBytes,
    ::testing::Values(
        BytesCase{"SslRequest", build([](auto& o) { append_ssl_request(o); }),
                  unhex("00 00 00 08 04 d2 16 2f")},
        BytesCase{"GssencRequest", build([](auto& o) { append_gssenc_request(o); }),
                  unhex("00 00 00 08 04 d2 16 30")},
        BytesCase{"CancelRequest", build([](auto& o) { append_cancel_request(o, 0x01020304, 0xa1b2c3d4); }),
                  unhex("00 00 00 10 04 d2 16 2e 01 02 03 04 a1 b2 c3 d4")},
        BytesCase{"StartupMessage", build([](auto& o) {
                    append_startup_message(o, {{"user", "bob"}});
                  }),
                  unhex("00 00 00 12 00 03 00 00") + "user\0bob\0\0"s},
        BytesCase{"StartupMessageWithOptions", build([](auto& o) {
                    append_startup_message(o, {{"user", "u"}, {"database", "d"}, {"_pq_.x", "1"}}, 2);
                  }),
                  unhex("00 00 00 24 00 03 00 02") + "user\0u\0database\0d\0_pq_.x\0"
                                                     "1\0\0"s},
        BytesCase{"StartupMessageEmpty", build([](auto& o) { append_startup_message(o, {}); }),
                  unhex("00 00 00 09 00 03 00 00 00")}),
    bytes_name);

// ---- backend messages ----
INSTANTIATE_TEST_SUITE_P(
    Backend, BuilderBytes,
    ::testing::Values(
        BytesCase{"AuthenticationOk", build([](auto& o) { append_authentication_ok(o); }),
                  unhex("52 00 00 00 08 00 00 00 00")},
        BytesCase{"AuthenticationSasl",
                  build([](auto& o) { append_authentication_sasl(o, {"SCRAM-SHA-256"}); }),
                  unhex("52 00 00 00 17 00 00 00 0a") + "SCRAM-SHA-256\0\0"s},
        BytesCase{"AuthenticationSaslTwoMechanisms", build([](auto& o) {
                    append_authentication_sasl(o, {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"});
                  }),
                  unhex("52 00 00 00 2a 00 00 00 0a") + "SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"s},
        BytesCase{"AuthenticationSaslNoMechanisms", build([](auto& o) { append_authentication_sasl(o, {}); }),
                  unhex("52 00 00 00 09 00 00 00 0a 00")},
        BytesCase{"ErrorResponseDefaults",
                  build([](auto& o) { append_error_response(o, {.message = "boom"}); }),
                  unhex("45 00 00 00 20") + "SFATAL\0VFATAL\0C08P01\0Mboom\0\0"s},
        BytesCase{"ErrorResponseAllFields", build([](auto& o) {
                    append_error_response(o, {"ERROR", "53300", "too many", "detail", "hint"});
                  }),
                  unhex("45 00 00 00 32") + "SERROR\0VERROR\0C53300\0Mtoo many\0Ddetail\0Hhint\0\0"s},
        BytesCase{"ErrorResponseHintOnly", build([](auto& o) {
                    append_error_response(o, {"ERROR", "XX000", "m", {}, "h"});
                  }),
                  unhex("45 00 00 00 20") + "SERROR\0VERROR\0CXX000\0Mm\0Hh\0\0"s},
        BytesCase{"NoticeResponse", build([](auto& o) {
                    append_notice_response(o, {"WARNING", "01000", "w"});
                  }),
                  unhex("4e 00 00 00 21") + "SWARNING\0VWARNING\0C01000\0Mw\0\0"s},
        BytesCase{"NegotiateProtocolVersion", build([](auto& o) {
                    append_negotiate_protocol_version(o, 0, {"_pq_.a", "_pq_.b"});
                  }),
                  unhex("76 00 00 00 1a 00 00 00 00 00 00 00 02") + "_pq_.a\0_pq_.b\0"s},
        BytesCase{"NegotiateProtocolVersionNoOptions",
                  build([](auto& o) { append_negotiate_protocol_version(o, 2, {}); }),
                  unhex("76 00 00 00 0c 00 00 00 02 00 00 00 00")},
        BytesCase{"ReadyForQuery", build([](auto& o) { append_ready_for_query(o, 'E'); }),
                  unhex("5a 00 00 00 05 45")},
        BytesCase{"BackendKeyData", build([](auto& o) { append_backend_key_data(o, 1, 0xffffffff); }),
                  unhex("4b 00 00 00 0c 00 00 00 01 ff ff ff ff")},
        BytesCase{"ParameterStatus", build([](auto& o) { append_parameter_status(o, "a", "b"); }),
                  unhex("53 00 00 00 08 61 00 62 00")}),
    bytes_name);

// ---- frontend messages ----
INSTANTIATE_TEST_SUITE_P(
    Frontend, BuilderBytes,
    ::testing::Values(
        BytesCase{"Query", build([](auto& o) { append_query(o, "SELECT 1"); }),
                  unhex("51 00 00 00 0d") + "SELECT 1\0"s},
        BytesCase{"Terminate", build([](auto& o) { append_terminate(o); }), unhex("58 00 00 00 04")},
        BytesCase{"Sync", build([](auto& o) { append_sync(o); }), unhex("53 00 00 00 04")},
        BytesCase{"CopyDone", build([](auto& o) { append_copy_done(o); }), unhex("63 00 00 00 04")},
        BytesCase{"CopyData", build([](auto& o) { append_copy_data(o, "xy"); }),
                  unhex("64 00 00 00 06 78 79")},
        BytesCase{"Password", build([](auto& o) { append_password(o, "pw"); }),
                  unhex("70 00 00 00 07 70 77 00")},
        BytesCase{"Parse", build([](auto& o) {
                    append_parse(o, "s", "q", {23, 0xffffffff});
                  }),
                  unhex("50 00 00 00 12 73 00 71 00 00 02 00 00 00 17 ff ff ff ff")},
        BytesCase{"ParseNoTypes", build([](auto& o) { append_parse(o, "", "q"); }),
                  unhex("50 00 00 00 09 00 71 00 00 00")},
        BytesCase{"BindWithParams", build([](auto& o) {
                    append_bind(o, "p", "s", {"ab", ""});
                  }),
                  unhex("42 00 00 00 18 70 00 73 00"  // portal, statement
                        "00 00"                       // no parameter format codes (all text)
                        "00 02 00 00 00 02 61 62"     // two parameters: "ab"
                        "00 00 00 00"                 //   and ""
                        "00 00")},                    // no result format codes
        BytesCase{"BindNoParams", build([](auto& o) { append_bind(o, "", ""); }),
                  unhex("42 00 00 00 0c 00 00 00 00 00 00 00 00")},
        BytesCase{"Execute", build([](auto& o) { append_execute(o, "", 0); }),
                  unhex("45 00 00 00 09 00 00 00 00 00")},
        BytesCase{"ExecuteMaxRows", build([](auto& o) { append_execute(o, "c", 256); }),
                  unhex("45 00 00 00 0a 63 00 00 00 01 00")},
        BytesCase{"Describe", build([](auto& o) { append_describe(o, 'P', "c"); }),
                  unhex("44 00 00 00 07 50 63 00")},
        BytesCase{"Close", build([](auto& o) { append_close(o, 'S', ""); }), unhex("43 00 00 00 06 53 00")}),
    bytes_name);

TEST(Builder, ErrorSpecDefaultsToFatalProtocolViolation) {
  const ErrorSpec e;
  EXPECT_EQ(e.severity, "FATAL");
  EXPECT_EQ(e.sqlstate, "08P01");
  EXPECT_TRUE(e.detail.empty());
  EXPECT_TRUE(e.hint.empty());
}

TEST(Builder, AppendsAfterExistingBytes) {
  std::string out = "already here";
  append_query(out, "SELECT 1");
  append_sync(out);
  append_ssl_request(out);
  append_ready_for_query(out, 'I');
  EXPECT_EQ(test::hex(out),
            test::hex("already here"s + unhex("51 00 00 00 0d") + "SELECT 1\0"s + unhex("53 00 00 00 04") +
                      unhex("00 00 00 08 04 d2 16 2f") + unhex("5a 00 00 00 05 49")));
}

TEST(Builder, LargeBindParameterLengths) {
  const std::string big(100000, 'v');
  const std::string out = build([&](auto& o) { append_bind(o, "", "", {big}); });
  ASSERT_EQ(out.size(), 1 + 4 + 2 + 2 + 2 + 4 + big.size() + 2);
  EXPECT_EQ(read_u32(out.data() + 1), out.size() - 1);
  EXPECT_EQ(read_u16(out.data() + 9), 1);            // parameter count
  EXPECT_EQ(read_u32(out.data() + 11), big.size());  // its length
  EXPECT_EQ(out.substr(15, big.size()), big);
}

TEST(MessageWriter, WritesEveryFieldKindBigEndian) {
  std::string out;
  MessageWriter(out).begin('x').u8(0xab).u16(0x0102).u32(0x03040506).cstring("hi").raw("\0z"s).end();
  EXPECT_EQ(test::hex(out), "78 00 00 00 10 ab 01 02 03 04 05 06 68 69 00 00 7a");
}

TEST(MessageWriter, OneWriterSeveralMessages) {
  std::string out = "pre";
  MessageWriter w(out);
  w.begin('a').raw("123").end();
  w.begin_untyped().u32(7).end();
  w.begin('b').end();
  EXPECT_EQ(test::hex(out),
            test::hex("pre"s + unhex("61 00 00 00 07 31 32 33 00 00 00 08 00 00 00 07 62 00 00 00 04")));
}

}  // namespace
}  // namespace pgshift::protocol
