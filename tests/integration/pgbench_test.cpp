// pgbench through the route under test, in every query mode, with reconnects, select-only.
#include "harness.hpp"

namespace pgshift::it {
namespace {

constexpr int kClients = 4;
constexpr int kTransactionsPerClient = 200;
constexpr int kTotal = kClients * kTransactionsPerClient;

class Pgbench : public RoutedTest<Pgbench> {
 protected:
  // pgbench -i -s 1 (through the route: it uses COPY and a few DDL statements).
  void SetUp() override {
    RoutedTest<Pgbench>::SetUp();
    if (HasFatalFailure()) return;
    auto init = pgbench(conn(), {"-i", "-s", "1", "-q"});
    ASSERT_RUN_OK(init);
    ASSERT_EQ(cluster().sql("SELECT count(*) FROM pgbench_accounts"), "100000");
  }

  // Runs 4 clients x 200 transactions with `extra` options and checks pgbench's report.
  void run_bench(const std::vector<std::string>& extra) {
    std::vector<std::string> args{"-n", "-c", std::to_string(kClients), "-j", "2", "-t",
                                  std::to_string(kTransactionsPerClient)};
    args.insert(args.end(), extra.begin(), extra.end());
    auto result = pgbench(conn(), args);
    ASSERT_RUN_OK(result);
    const std::string total = std::to_string(kTotal);
    EXPECT_TRUE(contains(result.out, "number of transactions actually processed: " + total + "/" + total));
    EXPECT_TRUE(contains(result.out, "number of failed transactions: 0 "));
  }

  // Every TPC-B-like transaction inserts one pgbench_history row, committed.
  void expect_history_rows(int rows) {
    EXPECT_EQ(cluster().sql("SELECT count(*) FROM pgbench_history"), std::to_string(rows));
  }
};

TEST_P(Pgbench, SimpleProtocol) {
  run_bench({"-M", "simple"});
  expect_history_rows(kTotal);
}

TEST_P(Pgbench, ExtendedProtocol) {
  run_bench({"-M", "extended"});
  expect_history_rows(kTotal);
}

TEST_P(Pgbench, PreparedStatements) {
  run_bench({"-M", "prepared"});
  expect_history_rows(kTotal);
}

TEST_P(Pgbench, NewConnectionPerTransaction) {
  run_bench({"-C", "-M", "extended"});
  expect_history_rows(kTotal);
}

TEST_P(Pgbench, SelectOnly) {
  run_bench({"-S", "-M", "prepared"});
  expect_history_rows(0);
}

PGSHIFT_ROUTED_SUITE(Pgbench);

}  // namespace
}  // namespace pgshift::it
