// log_text: client- and server-controlled text in a log line can neither end
// the line nor carry terminal controls, and long texts are cut with their length.
#include "protocol/log_text.hpp"

#include <gtest/gtest.h>

#include <string>

namespace pgshift::protocol {
namespace {

using namespace std::string_literals;

TEST(LogText, PlainTextIsUnchanged) {
  EXPECT_EQ(log_text("SELECT * FROM users WHERE id = 1"), "SELECT * FROM users WHERE id = 1");
  EXPECT_EQ(log_text("café ünïcode 日本"), "café ünïcode 日本");
  EXPECT_EQ(log_text(""), "");
}

TEST(LogText, LineBreaksAndControlsAreEscaped) {
  EXPECT_EQ(log_text("a\nb\r\nc\td"), "a\\nb\\r\\nc\\td");
  EXPECT_EQ(log_text("\x1b[2J\x07"), "\\x1b[2J\\x07");
  EXPECT_EQ(log_text("nul\0x"s), "nul\\x00x");
  EXPECT_EQ(log_text("\x7f"), "\\x7f");
}

// A literal backslash is doubled, so "\n" typed by a client cannot pass for an escape.
TEST(LogText, BackslashIsDoubled) { EXPECT_EQ(log_text("a\\nb"), "a\\\\nb"); }

TEST(LogText, ForgedLogLineStaysOnOneLine) {
  const std::string forged = "x\n2026-01-01 12:00:00.000 info close client=1.2.3.4:5 user=admin";
  const std::string out = log_text(forged);
  EXPECT_EQ(out.find('\n'), std::string::npos);
  EXPECT_EQ(out, "x\\n2026-01-01 12:00:00.000 info close client=1.2.3.4:5 user=admin");
}

TEST(LogText, InvalidUtf8BytesAreHex) {
  EXPECT_EQ(log_text("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(log_text("\xc3"), "\\xc3");              // cut sequence
  EXPECT_EQ(log_text("\xc0\xaf"), "\\xc0\\xaf");     // overlong '/'
  EXPECT_EQ(log_text("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // surrogate
}

TEST(LogText, DisplayControllingCharactersAreEscaped) {
  EXPECT_EQ(log_text("\xc2\x9b" "2J"), "\\u009b2J");        // C1 CSI
  EXPECT_EQ(log_text("a\xe2\x80\xa8" "b"), "a\\u2028b");     // line separator
  EXPECT_EQ(log_text("\xe2\x80\xae" "txt"), "\\u202etxt");   // right-to-left override
}

TEST(LogText, LongTextIsCutWithItsLength) {
  const std::string long_text(5000, 'a');
  EXPECT_EQ(log_text(long_text, 10), "aaaaaaaaaa... (5000 bytes)");
  EXPECT_EQ(log_text(std::string(10, 'a'), 10), std::string(10, 'a'));
  // The cut never splits a character.
  EXPECT_EQ(log_text("aé" "bc", 2), "aé... (5 bytes)");
}

}  // namespace
}  // namespace pgshift::protocol
