// MismatchLog: redaction, JSON escaping, the exact line format, the file
// (every line valid JSON), counters, write failures and concurrent writers.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "shadow/mismatch_log.hpp"

namespace pgshift::shadow {
namespace {

using namespace std::chrono_literals;

// A small JSON validator (RFC 8259 grammar; no semantics): enough to check
// that every line the log writes parses.
class JsonCheck {
 public:
  static bool valid(std::string_view s) {
    JsonCheck c(s);
    return c.value(0) && (c.ws(), c.i_ == s.size());
  }

 private:
  explicit JsonCheck(std::string_view s) : s_(s) {}
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool eat(char c) {
    ws();
    if (i_ < s_.size() && s_[i_] == c) return ++i_, true;
    return false;
  }
  bool word(std::string_view w) {
    if (s_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }
  bool digits() {
    const std::size_t start = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    return i_ > start;
  }
  bool value(int depth) {
    if (depth > 64) return false;
    ws();
    if (i_ >= s_.size()) return false;
    const char c = s_[i_];
    if (c == '{') {
      ++i_;
      if (eat('}')) return true;
      do {
        ws();
        if (!string() || !eat(':') || !value(depth + 1)) return false;
      } while (eat(','));
      return eat('}');
    }
    if (c == '[') {
      ++i_;
      if (eat(']')) return true;
      do {
        if (!value(depth + 1)) return false;
      } while (eat(','));
      return eat(']');
    }
    if (c == '"') return string();
    if (c == 't') return word("true");
    if (c == 'f') return word("false");
    if (c == 'n') return word("null");
    if (c == '-') ++i_;
    if (!digits()) return false;
    if (i_ < s_.size() && s_[i_] == '.' && (++i_, !digits())) return false;
    return true;
  }
  bool string() {
    if (i_ >= s_.size() || s_[i_] != '"') return false;
    for (++i_; i_ < s_.size(); ++i_) {
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') return ++i_, true;
      if (c < 0x20) return false;
      if (c == '\\') {
        if (++i_ >= s_.size()) return false;
        const char e = s_[i_];
        if (e == 'u') {
          for (int k = 0; k < 4; ++k)
            if (++i_ >= s_.size() || !std::isxdigit(static_cast<unsigned char>(s_[i_]))) return false;
        } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
          return false;
        }
      }
    }
    return false;
  }
  std::string_view s_;
  std::size_t i_ = 0;
};

struct Pair {
  std::string in, out;
};

std::ostream& operator<<(std::ostream& os, const Pair& p) { return os << p.in; }

class Redact : public ::testing::TestWithParam<Pair> {};

TEST_P(Redact, Literals) { EXPECT_EQ(redact_statement(GetParam().in), GetParam().out); }

INSTANTIATE_TEST_SUITE_P(
    Statements, Redact,
    ::testing::Values(
        Pair{"SELECT * FROM users WHERE email = 'a@b.c' AND age > 42", "SELECT * FROM users WHERE email = ? AND age > ?"},
        Pair{"UPDATE t SET v = $1 WHERE id = $2", "UPDATE t SET v = $1 WHERE id = $2"},
        Pair{"INSERT INTO t VALUES (1.5e10, -7, E'it\\'s', $$dollar 'quoted'$$, B'0101', X'ff')",
             "INSERT INTO t VALUES (?, -?, ?, ?, ?, ?)"},
        Pair{"SELECT \"Secret Name\" FROM t -- where x = 'hidden'\n WHERE /* 'c' */ a='b'",
             "SELECT \"Secret Name\" FROM t WHERE a=?"},
        Pair{"SELECT 0x1F, 1_000_000, x1 FROM t", "SELECT ?, ?, x1 FROM t"},
        Pair{"SELECT DATE '2026-11-21', 'a' 'b'", "SELECT DATE ?, ? ?"},
        Pair{"SELECT 'unterminated", "SELECT ?"},
        Pair{"SELECT 1 /* unterminated", "SELECT ? ?"},
        Pair{"", ""}));

class JsonString : public ::testing::TestWithParam<Pair> {};

TEST_P(JsonString, Escapes) {
  std::string out;
  append_json_string(out, GetParam().in);
  EXPECT_EQ(out, GetParam().out);
  EXPECT_TRUE(JsonCheck::valid(out));
}

INSTANTIATE_TEST_SUITE_P(
    Strings, JsonString,
    ::testing::Values(Pair{"plain", R"("plain")"}, Pair{"say \"hi\"", R"("say \"hi\"")"},
                      Pair{"back\\slash", R"("back\\slash")"}, Pair{"a\nb\tc\rd", R"("a\nb\tc\rd")"},
                      Pair{std::string("nul\0x\x1f", 6), R"("nul\u0000x\u001f")"},
                      Pair{"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
                      Pair{"bad \xff byte", R"("bad \ufffd byte")"},
                      Pair{"overlong \xc0\x80", R"("overlong \ufffd\ufffd")"},
                      Pair{"surrogate \xed\xa0\x80", R"("surrogate \ufffd\ufffd\ufffd")"},
                      Pair{"cut \xe2\x82", R"("cut \ufffd\ufffd")"}));

TEST(MismatchLog, Iso8601) {
  using std::chrono::system_clock;
  EXPECT_EQ(iso8601_utc(system_clock::time_point(1795244400123ms)), "2026-11-21T07:00:00.123Z");
  EXPECT_EQ(iso8601_utc(system_clock::time_point(-1ms)), "1969-12-31T23:59:59.999Z");
}

struct Fixture : ::testing::Test {
  std::string dir = ::testing::TempDir() + "shadow_log_" + std::to_string(::getpid()) + "_" +
                    ::testing::UnitTest::GetInstance()->current_test_info()->name();
  std::string path = dir + "/mismatch.jsonl";
  const std::chrono::system_clock::time_point when{1795244400123ms};

  void SetUp() override { std::filesystem::create_directories(dir); }
  void TearDown() override { std::filesystem::remove_all(dir); }

  std::vector<std::string> lines() const {
    std::ifstream in(path);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }

  static Outcome write(std::string tag, std::uint64_t rows) {
    Outcome o;
    o.tag = std::move(tag);
    o.rows = rows;
    o.complete = true;
    return o;
  }
  static Outcome failed(std::string sqlstate, std::string message) {
    Outcome o;
    o.error = Error{std::move(sqlstate), std::move(message)};
    o.complete = true;
    return o;
  }
  static Comparison mismatch(std::string reason, std::optional<std::string> p = {},
                             std::optional<std::string> s = {}) {
    return Comparison{false, std::move(reason), std::move(p), std::move(s)};
  }
};

using MismatchLogFile = Fixture;

TEST_F(MismatchLogFile, RedactedLine) {
  MismatchLog log({path});
  const Parameter params[] = {{"secret"}};
  const Statement st{7, 0xab, "UPDATE users SET name = 'Bob' WHERE id = $1", params};
  const std::string line =
      log.format(st, write("UPDATE 3", 3), write("UPDATE 2", 2), mismatch("tag"), when);
  EXPECT_EQ(line,
            R"({"time":"2026-11-21T07:00:00.123Z","session":7,"fingerprint":"00000000000000ab",)"
            R"("statement":"UPDATE users SET name = ? WHERE id = $1","reason":"tag",)"
            R"("primary":{"tag":"UPDATE 3","rows":3},"shadow":{"tag":"UPDATE 2","rows":2},)"
            R"("primary_row":null,"shadow_row":null})");
  EXPECT_TRUE(JsonCheck::valid(line));
}

TEST_F(MismatchLogFile, UnredactedLineWithParametersErrorAndRows) {
  MismatchLog log({path, false});
  const Parameter params[] = {{"it's \"x\""}, {std::nullopt}, {std::string_view("\x00\xff", 2), true}};
  const Statement st{1, 0xfedcba9876543210ULL, "SELECT * FROM t WHERE a = $1 AND b = 'lit'", params};
  const std::string line = log.format(st, failed("23505", "duplicate key\nvalue"), write("SELECT 1", 1),
                                      mismatch("error", std::nullopt, "#1 (a='x')"), when);
  EXPECT_EQ(line,
            R"({"time":"2026-11-21T07:00:00.123Z","session":1,"fingerprint":"fedcba9876543210",)"
            R"("statement":"SELECT * FROM t WHERE a = $1 AND b = 'lit'",)"
            R"("parameters":["it's \"x\"",null,"\\x00ff"],"reason":"error",)"
            R"("primary":{"error":{"sqlstate":"23505","message":"duplicate key\nvalue"}},)"
            R"j("shadow":{"tag":"SELECT 1","rows":1},"primary_row":null,"shadow_row":"#1 (a='x')"})j");
  EXPECT_TRUE(JsonCheck::valid(line));
}

TEST_F(MismatchLogFile, RecordWritesMismatchesAndCountsAll) {
  {
    MismatchLog log({path});
    const Statement a{1, 10, "SELECT 1", {}}, b{2, 20, "SELECT \xff 'x'", {}};
    log.record(a, write("SELECT 1", 1), write("SELECT 1", 1), Comparison{}, when);
    log.record(a, write("SELECT 1", 1), write("SELECT 2", 2), mismatch("rows", "#1 (n=1)", std::nullopt), when);
    log.record(b, write("SELECT 1", 1), write("SELECT 1", 1), Comparison{}, when);
    log.record(b, write("UPDATE 1", 1), failed("40001", "serialization"), mismatch("error"), when);
    EXPECT_EQ(log.lines_written(), 2u);
    EXPECT_EQ(log.write_failures(), 0u);

    const auto snap = log.snapshot();
    ASSERT_EQ(snap.by_fingerprint.size(), 2u);
    EXPECT_EQ(snap.by_fingerprint[0].first, 10u);
    EXPECT_EQ(snap.by_fingerprint[0].second.compared, 2u);
    EXPECT_EQ(snap.by_fingerprint[0].second.mismatched, 1u);
    EXPECT_EQ(snap.by_fingerprint[1].first, 20u);
    EXPECT_EQ(snap.total.compared, 4u);
    EXPECT_EQ(snap.total.mismatched, 2u);
  }
  const auto written = lines();
  ASSERT_EQ(written.size(), 2u);
  for (const auto& l : written) EXPECT_TRUE(JsonCheck::valid(l)) << l;
  EXPECT_NE(written[1].find(R"("statement":"SELECT \ufffd ?")"), std::string::npos) << written[1];

  // Appends: a second log on the same file keeps the earlier lines.
  MismatchLog again({path});
  again.record({3, 30, "DELETE FROM t", {}}, write("DELETE 1", 1), write("DELETE 0", 0), mismatch("tag"), when);
  EXPECT_EQ(lines().size(), 3u);
}

TEST_F(MismatchLogFile, FingerprintsBeyondTheCapAreCountedTogether) {
  MismatchLog log({"", true, 2});
  for (std::uint64_t fp : {1, 2, 3, 4, 1}) log.record({0, fp, "", {}}, {}, {}, Comparison{});
  const auto snap = log.snapshot();
  ASSERT_EQ(snap.by_fingerprint.size(), 2u);
  EXPECT_EQ(snap.by_fingerprint[0].second.compared, 2u);
  EXPECT_EQ(snap.other.compared, 2u);
  EXPECT_EQ(snap.total.compared, 5u);
}

TEST_F(MismatchLogFile, WriteFailuresAreCountedNotThrown) {
  MismatchLog log({dir + "/missing/dir/mismatch.jsonl"});
  for (int i = 0; i < 3; ++i)
    EXPECT_NO_THROW(log.record({0, 1, "SELECT 1", {}}, write("SELECT 1", 1), write("SELECT 0", 0), mismatch("rows")));
  EXPECT_EQ(log.write_failures(), 3u);
  EXPECT_EQ(log.lines_written(), 0u);
  EXPECT_EQ(log.snapshot().total.mismatched, 3u);

  std::filesystem::create_directories(dir + "/missing/dir");
  ASSERT_TRUE(log.reopen());
  log.record({0, 1, "SELECT 1", {}}, write("SELECT 1", 1), write("SELECT 0", 0), mismatch("rows"));
  EXPECT_EQ(log.lines_written(), 1u);
}

TEST_F(MismatchLogFile, ConcurrentWritersKeepLinesWhole) {
  MismatchLog log({path, false});
  const std::string long_text(5000, 'x');
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const Statement st{static_cast<std::uint64_t>(t), static_cast<std::uint64_t>(i % 10), long_text, {}};
        log.record(st, write("UPDATE 1", 1), write("UPDATE 0", 0),
                   i % 2 ? mismatch("tag") : Comparison{});
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(log.snapshot().total.compared, 1600u);
  EXPECT_EQ(log.snapshot().total.mismatched, 800u);
  const auto written = lines();
  ASSERT_EQ(written.size(), 800u);
  for (const auto& l : written) ASSERT_TRUE(JsonCheck::valid(l));
}

}  // namespace
}  // namespace pgshift::shadow
