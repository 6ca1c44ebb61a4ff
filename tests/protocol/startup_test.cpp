// Startup packets: length checks, the special request codes, protocol
// versions and the parameter list layout.
#include "protocol/startup.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/builder.hpp"
#include "protocol/error.hpp"
#include "test_util.hpp"

namespace pgshift::protocol {
namespace {

using namespace std::string_literals;
using test::be16;
using test::be32;
using test::build;
using Params = std::vector<std::pair<std::string, std::string>>;

// A startup packet built by hand: version code then the raw parameter bytes.
std::string startup_packet(std::uint16_t major, std::uint16_t minor, std::string_view params) {
  return test::untyped(be16(major) + be16(minor) + std::string(params));
}

std::error_code parse(std::string_view packet) {
  StartupPacket out;
  return parse_startup(packet, out);
}

// ---- startup_length ----

struct LengthCase {
  std::uint32_t length;
  bool ok;
};

class StartupLength : public ::testing::TestWithParam<LengthCase> {};

TEST_P(StartupLength, RangeIsEightToTenThousand) {
  const auto [length, ok] = GetParam();
  std::error_code ec = make_error_code(errc::malformed_message);  // must be overwritten
  const std::uint32_t got = startup_length(be32(length), ec);
  if (ok) {
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(got, length);
  } else {
    EXPECT_EQ(ec, make_error_code(errc::startup_bad_length));
    EXPECT_EQ(got, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Lengths, StartupLength,
                         ::testing::Values(LengthCase{0, false}, LengthCase{4, false}, LengthCase{7, false},
                                           LengthCase{8, true}, LengthCase{9, true}, LengthCase{16, true},
                                           LengthCase{10000, true}, LengthCase{10001, false},
                                           LengthCase{0x80000000u, false}, LengthCase{0xffffffffu, false}));

TEST(StartupPacketLength, DeclaredLengthMustMatchThePacket) {
  const std::string good = build([](auto& o) { append_startup_message(o, {{"user", "u"}}); });
  ASSERT_FALSE(parse(good));
  EXPECT_EQ(parse(good + "x"), make_error_code(errc::startup_bad_length));
  EXPECT_EQ(parse(std::string_view(good).substr(0, good.size() - 1)),
            make_error_code(errc::startup_bad_length));
  for (std::size_t n = 0; n < 4; ++n)
    EXPECT_EQ(parse(std::string_view(good).substr(0, n)), make_error_code(errc::startup_bad_length));
  EXPECT_EQ(parse(be32(7) + "abc"), make_error_code(errc::startup_bad_length));
  EXPECT_EQ(parse(be32(10001) + std::string(9997, 'x')), make_error_code(errc::startup_bad_length));
}

TEST(StartupPacketLength, TenThousandBytesIsTheLargestAccepted) {
  // 4 length + 4 version + "user\0u\0" (7) + "options\0" (8) + value + NUL + final NUL.
  const std::string at_limit = startup_packet(3, 0, "user\0u\0options\0"s + std::string(9975, 'o') + "\0\0"s);
  ASSERT_EQ(at_limit.size(), 10000u);
  StartupPacket out;
  EXPECT_FALSE(parse_startup(at_limit, out));
  ASSERT_NE(out.param("options"), nullptr);
  EXPECT_EQ(out.param("options")->size(), 9975u);

  const std::string over = startup_packet(3, 0, "user\0u\0options\0"s + std::string(9976, 'o') + "\0\0"s);
  ASSERT_EQ(over.size(), 10001u);
  EXPECT_EQ(parse(over), make_error_code(errc::startup_bad_length));
}

// ---- special requests ----

TEST(StartupRequest, SslRequest) {
  StartupPacket out;
  ASSERT_FALSE(parse_startup(build([](auto& o) { append_ssl_request(o); }), out));
  EXPECT_EQ(out.kind, StartupKind::ssl_request);
  EXPECT_TRUE(out.params.empty());
}

TEST(StartupRequest, GssencRequest) {
  StartupPacket out;
  ASSERT_FALSE(parse_startup(build([](auto& o) { append_gssenc_request(o); }), out));
  EXPECT_EQ(out.kind, StartupKind::gssenc_request);
}

TEST(StartupRequest, SslAndGssencRequestsMustBeEightBytes) {
  for (std::uint32_t code : {ssl_request_code, gssenc_request_code}) {
    EXPECT_EQ(parse(test::untyped(be32(code) + "\0\0\0\0"s)), make_error_code(errc::startup_bad_length));
    EXPECT_EQ(parse(test::untyped(be32(code) + "\0"s)), make_error_code(errc::startup_bad_length));
  }
}

class CancelRoundTrip : public ::testing::TestWithParam<std::pair<std::uint32_t, std::uint32_t>> {};

TEST_P(CancelRoundTrip, PidAndKeySurvive) {
  const auto [pid, key] = GetParam();
  StartupPacket out;
  ASSERT_FALSE(parse_startup(build([pid = pid, key = key](auto& o) { append_cancel_request(o, pid, key); }), out));
  EXPECT_EQ(out.kind, StartupKind::cancel_request);
  EXPECT_EQ(out.cancel_pid, pid);
  EXPECT_EQ(out.cancel_key, key);
}

INSTANTIATE_TEST_SUITE_P(Values, CancelRoundTrip,
                         ::testing::Values(std::pair{0u, 0u}, std::pair{1234u, 0xdeadbeefu},
                                           std::pair{0xffffffffu, 0xffffffffu}, std::pair{0x80000001u, 1u}));

TEST(StartupRequest, CancelRequestMustBeSixteenBytes) {
  const std::string code = be32(cancel_request_code);
  EXPECT_EQ(parse(test::untyped(code)), make_error_code(errc::startup_bad_length));
  EXPECT_EQ(parse(test::untyped(code + be32(1))), make_error_code(errc::startup_bad_length));
  EXPECT_EQ(parse(test::untyped(code + be32(1) + be32(2) + "x")), make_error_code(errc::startup_bad_length));
  EXPECT_EQ(parse(test::untyped(code + be32(1) + be32(2) + be32(3))),
            make_error_code(errc::startup_bad_length));
  EXPECT_FALSE(parse(test::untyped(code + be32(1) + be32(2))));
}

// ---- protocol versions ----

class StartupVersion : public ::testing::TestWithParam<std::uint16_t> {};

TEST_P(StartupVersion, MajorThreeAcceptedWithMinorRecorded) {
  const std::uint16_t minor = GetParam();
  StartupPacket out;
  ASSERT_FALSE(parse_startup(build([&](auto& o) {
                               append_startup_message(o, {{"user", "u"}}, minor);
                             }),
                             out));
  EXPECT_EQ(out.kind, StartupKind::startup);
  EXPECT_EQ(out.major, 3);
  EXPECT_EQ(out.minor, minor);
}

INSTANTIATE_TEST_SUITE_P(Minors, StartupVersion, ::testing::Values(0, 1, 2, 0xffff));

TEST(StartupBadVersion, OtherMajorsRejected) {
  for (std::uint16_t major : {0, 1, 2, 4, 1233, 1235, 0xffff}) {
    SCOPED_TRACE(major);
    EXPECT_EQ(parse(startup_packet(major, 0, "user\0u\0\0"s)), make_error_code(errc::startup_bad_version));
  }
  // 1234.5677 is not one of the special request codes.
  EXPECT_EQ(parse(startup_packet(1234, 5677, "user\0u\0\0"s)), make_error_code(errc::startup_bad_version));
}

// ---- parameters ----

TEST(StartupParams, RoundTripInClientOrder) {
  const Params params = {
      {"user", "alice"},
      {"database", "shop"},
      {"application_name", ""},
      {"options", "-c search_path=public"},
      {"_pq_.protocol_managed_params", "search_path"},
      {"_pq_.compression", "on"},
  };
  StartupPacket out;
  ASSERT_FALSE(parse_startup(build([&](auto& o) { append_startup_message(o, params, 2); }), out));
  EXPECT_EQ(out.kind, StartupKind::startup);
  EXPECT_EQ(out.minor, 2);
  EXPECT_EQ(out.params, params);
  ASSERT_NE(out.param("database"), nullptr);
  EXPECT_EQ(*out.param("database"), "shop");
  ASSERT_NE(out.param("_pq_.compression"), nullptr);
  EXPECT_EQ(*out.param("_pq_.compression"), "on");
  ASSERT_NE(out.param("application_name"), nullptr);
  EXPECT_EQ(*out.param("application_name"), "");
  EXPECT_EQ(out.param("missing"), nullptr);
  EXPECT_EQ(out.param("User"), nullptr);
}

TEST(StartupParams, ValuesMayContainAnyNonNulByte) {
  const Params params = {{"user", "\xc3\xa9t\xc3\xa9 \x01\xff"}, {"k=v", "a=b c"}};
  StartupPacket out;
  ASSERT_FALSE(parse_startup(build([&](auto& o) { append_startup_message(o, params); }), out));
  EXPECT_EQ(out.params, params);
}

TEST(StartupParams, ReparsingResetsThePacket) {
  StartupPacket out;
  ASSERT_FALSE(parse_startup(build([](auto& o) {
                               append_startup_message(o, {{"user", "a"}, {"x", "1"}});
                             }),
                             out));
  ASSERT_FALSE(parse_startup(build([](auto& o) { append_startup_message(o, {{"user", "b"}}); }), out));
  EXPECT_EQ(out.params, (Params{{"user", "b"}}));
  ASSERT_FALSE(parse_startup(build([](auto& o) { append_cancel_request(o, 1, 2); }), out));
  EXPECT_TRUE(out.params.empty());
}

struct LayoutCase {
  const char* name;
  std::string params;  // bytes after the version code
  errc expected;
};

class StartupLayout : public ::testing::TestWithParam<LayoutCase> {};

TEST_P(StartupLayout, Rejected) {
  const auto& c = GetParam();
  EXPECT_EQ(parse(startup_packet(3, 0, c.params)), make_error_code(c.expected));
}

std::string layout_name(const ::testing::TestParamInfo<LayoutCase>& p) { return p.param.name; }

INSTANTIATE_TEST_SUITE_P(
    Bad, StartupLayout,
    ::testing::Values(LayoutCase{"NoParamsNoTerminator", "", errc::startup_bad_layout},
                      LayoutCase{"MissingFinalNul", "user\0bob"s, errc::startup_bad_layout},
                      LayoutCase{"MissingTerminator", "user\0bob\0"s, errc::startup_bad_layout},
                      LayoutCase{"MissingTerminatorAfterEmptyValue", "user\0\0"s, errc::startup_bad_layout},
                      LayoutCase{"KeyWithoutNul", "user"s, errc::startup_bad_layout},
                      LayoutCase{"KeyWithoutValue", "user\0bob\0database\0"s, errc::startup_bad_layout},
                      LayoutCase{"KeyWithoutValueThenNothing", "user\0"s, errc::startup_bad_layout},
                      LayoutCase{"ByteAfterTerminator", "user\0bob\0\0x"s, errc::startup_bad_layout},
                      LayoutCase{"NulAfterTerminator", "user\0bob\0\0\0"s, errc::startup_bad_layout},
                      LayoutCase{"PairAfterTerminator", "user\0bob\0\0db\0x\0\0"s, errc::startup_bad_layout},
                      LayoutCase{"OnlyTerminator", "\0"s, errc::startup_no_user},
                      LayoutCase{"NoUser", "database\0db\0\0"s, errc::startup_no_user},
                      LayoutCase{"EmptyUser", "user\0\0\0"s, errc::startup_no_user},
                      LayoutCase{"UserIsCaseSensitive", "USER\0bob\0\0"s, errc::startup_no_user},
                      LayoutCase{"UserAsValueOnly", "name\0user\0\0"s, errc::startup_no_user}),
    layout_name);

TEST(StartupParams, MissingUserViaBuilder) {
  EXPECT_EQ(parse(build([](auto& o) { append_startup_message(o, {}); })),
            make_error_code(errc::startup_no_user));
  EXPECT_EQ(parse(build([](auto& o) {
              append_startup_message(o, {{"database", "d"}});
            })),
            make_error_code(errc::startup_no_user));
  EXPECT_EQ(parse(build([](auto& o) {
              append_startup_message(o, {{"user", ""}});
            })),
            make_error_code(errc::startup_no_user));
}

}  // namespace
}  // namespace pgshift::protocol
