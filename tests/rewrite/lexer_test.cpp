// The cache lexer must never be coarser than PostgreSQL's scanner, and must
// tell apart texts that PostgreSQL lexes differently.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <toml++/toml.h>

#include "rewrite/lexer.hpp"
#include "rewrite/pg_query.hpp"

namespace {

using pgshift::rewrite::pg::Token;

// Every boundary of libpg_query's tokens is a boundary of the lexer's.
::testing::AssertionResult finer_than_postgres(const std::string& sql) {
  std::vector<Token> ours, theirs;
  std::string key;
  const bool lexed = pgshift::rewrite::lex::normalize(sql, ours, key);
  const bool scanned = pgshift::rewrite::pg::scan(sql, theirs);
  if (!lexed)  // then PostgreSQL's scanner must reject it too
    return scanned ? ::testing::AssertionFailure() << "does not lex: " << sql : ::testing::AssertionSuccess();
  if (!scanned) return ::testing::AssertionSuccess();
  std::vector<std::uint32_t> starts, ends;
  for (const Token& t : ours) {
    starts.push_back(t.start);
    ends.push_back(t.end);
  }
  // Sorted and searched, not scanned: the corpus's deeply nested statements have
  // tens of thousands of tokens, and a linear search made this test quadratic.
  std::sort(starts.begin(), starts.end());
  std::sort(ends.begin(), ends.end());
  for (const Token& t : theirs) {
    if (t.start == t.end) continue;  // libpg_query's empty marker after U&'...'
    if (!std::binary_search(starts.begin(), starts.end(), t.start) ||
        !std::binary_search(ends.begin(), ends.end(), t.end))
      return ::testing::AssertionFailure() << "token [" << t.start << "," << t.end << ") of " << sql;
  }
  return ::testing::AssertionSuccess();
}

std::string key_of(const std::string& sql) {
  std::vector<Token> t;
  std::string key;
  EXPECT_TRUE(pgshift::rewrite::lex::normalize(sql, t, key)) << sql;
  return key;
}

TEST(Lexer, FinerThanPostgresOnTrickyText) {
  for (const char* sql : {
           "SELECT 'it''s', E'it\\'s', $$a$b$$, $tag$x$$y$tag$, $1, 1.5e3, .5, 5., 1e, a$b, \"q\"\"x\"",
           "SELECT a<>b, a<=b, a::int, a->>'k', a @- b, a @ - b, -1, x[1:2], B'101', X'ff', N'n', U&'d\\0061'",
           "SELECT /* a /* nested */ comment */ 1 -- tail\n, 'a'\n'b', 'c' /* x */ ",
           "INSERT INTO t VALUES (1, 'x'), (2, E'\\n') RETURNING *; SELECT 1",
           "SELECT 1abc, $1abc, \"Email\", EMAIL, émail FROM users",
       })
    EXPECT_TRUE(finer_than_postgres(sql));
}

TEST(Lexer, KeyIgnoresLiteralValuesOnly) {
  EXPECT_EQ(key_of("SELECT * FROM t WHERE a = 1 AND b = 'x'"), key_of("SELECT * FROM t WHERE a = 42 AND b = 'yy'"));
  EXPECT_NE(key_of("SELECT * FROM t WHERE a = 1"), key_of("SELECT * FROM t WHERE a = '1'"));
  EXPECT_NE(key_of("SELECT a @- b"), key_of("SELECT a @ - b"));        // one operator or two
  EXPECT_NE(key_of("SELECT 'a'\n'b'"), key_of("SELECT 'a' 'b'"));      // joined, or a syntax error
  EXPECT_NE(key_of("SELECT email FROM t"), key_of("SELECT EMAIL FROM t"));
  EXPECT_NE(key_of("SELECT $1"), key_of("SELECT $2"));
}

TEST(Lexer, RejectsUnterminatedText) {
  std::vector<Token> t;
  std::string key;
  for (const char* sql : {"SELECT 'open", "SELECT \"open", "SELECT $x$ open", "SELECT /* open"})
    EXPECT_FALSE(pgshift::rewrite::lex::normalize(sql, t, key)) << sql;
}

TEST(Lexer, FinerThanPostgresOverTheCorpus) {
  std::size_t checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(PGSHIFT_SOURCE_DIR "/tests/rewrite/corpus")) {
    if (entry.path().extension() != ".toml") continue;
    const toml::table file = toml::parse_file(entry.path().string());
    const toml::array* cases = file["case"].as_array();
    if (!cases) continue;
    for (const toml::node& c : *cases) {
      const auto sql = c.as_table()->get_as<std::string>("sql");
      if (!sql) continue;
      EXPECT_TRUE(finer_than_postgres(sql->get()));
      ++checked;
    }
  }
  EXPECT_GT(checked, 300u);
}

}  // namespace
