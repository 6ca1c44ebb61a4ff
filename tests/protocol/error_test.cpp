// The protocol error category: every code has its own readable message and
// converts to std::error_code.
#include "protocol/error.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <system_error>

namespace pgshift::protocol {
namespace {

constexpr int first_errc = static_cast<int>(errc::message_too_short);
constexpr int last_errc = static_cast<int>(errc::bad_ssl_response);

class ErrcMessage : public ::testing::TestWithParam<int> {};

TEST_P(ErrcMessage, IsNonEmptyAndSpecific) {
  const auto e = static_cast<errc>(GetParam());
  const std::error_code ec = e;  // via is_error_code_enum
  EXPECT_TRUE(ec);
  EXPECT_EQ(ec.value(), GetParam());
  EXPECT_EQ(&ec.category(), &protocol_category());
  EXPECT_EQ(ec, make_error_code(e));
  EXPECT_EQ(ec, e);
  EXPECT_FALSE(ec.message().empty());
  EXPECT_NE(ec.message(), "unknown protocol error");
}

INSTANTIATE_TEST_SUITE_P(AllCodes, ErrcMessage, ::testing::Range(first_errc, last_errc + 1));

TEST(ProtocolCategory, MessagesAreDistinct) {
  std::set<std::string> seen;
  for (int v = first_errc; v <= last_errc; ++v)
    EXPECT_TRUE(seen.insert(protocol_category().message(v)).second) << "duplicate message for " << v;
}

TEST(ProtocolCategory, NameAndIdentity) {
  EXPECT_STREQ(protocol_category().name(), "pgshift.protocol");
  EXPECT_EQ(&protocol_category(), &protocol_category());
  EXPECT_NE(make_error_code(errc::message_too_long), std::make_error_code(std::errc::message_size));
}

TEST(ProtocolCategory, OutOfRangeValuesStillHaveAMessage) {
  for (int v : {0, last_errc + 1, -1, 1000}) EXPECT_FALSE(protocol_category().message(v).empty()) << v;
}

TEST(ProtocolCategory, DefaultErrorCodeIsNotAProtocolError) {
  const std::error_code ok;
  EXPECT_FALSE(ok);
  for (int v = first_errc; v <= last_errc; ++v) EXPECT_NE(ok, static_cast<errc>(v));
}

}  // namespace
}  // namespace pgshift::protocol
