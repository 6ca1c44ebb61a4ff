// psql through the route under test: transactions, errors, \copy, multi-statement strings.
#include <sstream>

#include "harness.hpp"

namespace pgshift::it {
namespace {

class Psql : public RoutedTest<Psql> {};

TEST_P(Psql, CommitRollbackAndSavepoint) {
  auto result = psql_script(conn(), R"sql(
CREATE TEMP TABLE accounts (id int PRIMARY KEY, owner text NOT NULL);
BEGIN;
INSERT INTO accounts VALUES (1, 'committed');
COMMIT;
BEGIN;
INSERT INTO accounts VALUES (2, 'rolled back');
SELECT 'inside', count(*) FROM accounts;
ROLLBACK;
BEGIN;
INSERT INTO accounts VALUES (3, 'kept');
SAVEPOINT before_four;
INSERT INTO accounts VALUES (4, 'undone');
ROLLBACK TO SAVEPOINT before_four;
COMMIT;
SELECT id, owner FROM accounts ORDER BY id;
)sql",
                            true);
  ASSERT_RUN_OK(result);
  EXPECT_EQ(result.out, "inside|2\n1|committed\n3|kept\n");
}

TEST_P(Psql, ErrorInsideTransactionThenRollback) {
  auto result = psql_script(conn(), R"sql(
CREATE TEMP TABLE items (id int);
BEGIN;
INSERT INTO items VALUES (1);
SELECT 1/0;
INSERT INTO items VALUES (2);
ROLLBACK;
SELECT 'rows', count(*) FROM items;
SELECT 'still usable';
)sql",
                            false);
  ASSERT_RUN_OK(result);
  EXPECT_TRUE(contains(result.err, "division by zero"));
  EXPECT_TRUE(contains(result.err, "current transaction is aborted, commands ignored until end of "
                                   "transaction block"));
  EXPECT_EQ(result.out, "rows|0\nstill usable\n");
}

TEST_P(Psql, OnErrorStopAbortsTheScript) {
  auto result = psql_script(conn(), "SELECT 'before';\nSELECT 1/0;\nSELECT 'after';\n", true);
  EXPECT_EQ(result.exit_code, 3) << result.describe();
  EXPECT_EQ(result.out, "before\n");
  EXPECT_TRUE(contains(result.err, "division by zero"));
}

// Text-format COPY data in canonical form (what COPY TO writes back byte for byte):
// escaped tabs, newlines and backslashes, NULLs, multi-byte UTF-8, and one field much
// larger than any socket buffer.
std::string copy_input(int rows) {
  std::ostringstream data;
  for (int i = 1; i <= rows; ++i) {
    data << i << '\t' << "row " << i;
    if (i % 3 == 0) data << "\\ttab";
    if (i % 5 == 0) data << "\\\\backslash";
    if (i % 7 == 0) data << " \xc3\xbc" "n\xc3\xaf" "c\xc3\xb8" "de \xe2\x9c\x93";
    if (i % 11 == 0) data << "\\nsecond line";
    if (i == rows / 2) data << std::string(200000, 'x');
    data << '\t';
    if (i % 4 == 0) {
      data << "\\N";
    } else {
      data << static_cast<long long>(i) * i * 1000003;
    }
    data << '\n';
  }
  return data.str();
}

TEST_P(Psql, CopyInFromFileAndOutToFile) {
  TempDir dir("pgshift-it-copy");
  const auto in_file = dir.path() / "in.tsv";
  const auto out_file = dir.path() / "out.tsv";
  const std::string input = copy_input(5000);
  write_file(in_file, input);

  auto result = psql_script(conn(),
                            "CREATE TEMP TABLE copy_demo (id int PRIMARY KEY, label text, score bigint);\n"
                            "\\copy copy_demo FROM '" + in_file.string() + "'\n"
                            "SELECT count(*), count(score) FROM copy_demo;\n"
                            "\\copy (SELECT * FROM copy_demo ORDER BY id) TO '" + out_file.string() + "'\n",
                            true);
  ASSERT_RUN_OK(result);
  EXPECT_EQ(result.out, "5000|3750\n");
  const std::string output = read_file(out_file);
  EXPECT_EQ(output.size(), input.size());
  EXPECT_TRUE(output == input) << "COPY TO output differs from the COPY FROM input";
}

TEST_P(Psql, MultiStatementQueryString) {
  auto result = psql(conn(), {"-A", "-t", "-c", "SELECT 1; SELECT 2;"});
  ASSERT_RUN_OK(result);
  EXPECT_EQ(result.out, "1\n2\n");
}

TEST_P(Psql, MultiStatementQueryStringStopsAtError) {
  auto result = psql(conn(), {"-A", "-t", "-c", "SELECT 'first'; SELECT 1/0; SELECT 'third';"});
  EXPECT_EQ(result.exit_code, 1) << result.describe();
  EXPECT_EQ(result.out, "first\n");
  EXPECT_TRUE(contains(result.err, "division by zero"));

  // The session after the error is usable: a later query string in the same psql run.
  result = psql(conn(), {"-A", "-t", "-c", "SELECT 1/0;", "-c", "SELECT 'recovered';"});
  EXPECT_TRUE(contains(result.out, "recovered")) << result.describe();
}

PGSHIFT_ROUTED_SUITE(Psql);

}  // namespace
}  // namespace pgshift::it
