// Logical replication as pgshift's sync mode, end to end: a primary with data, an empty
// target, `pgshift sync start|stop` and the admin console driving PostgreSQL's own
// publication and subscription, clients through pgshift meanwhile, and a cutover and
// rollback that turn the replication around. Both servers start with
// wal_level = logical; the tables must end identical, every column of every row.
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "two_servers.hpp"

namespace pgshift::it {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Every column of every row, in key order.
const std::vector<std::pair<std::string, std::string>> kTables = {
    {"pgbench_accounts", "SELECT count(*) || ':' || md5(string_agg(t::text, ',' ORDER BY aid)) FROM pgbench_accounts t"},
    {"pgbench_branches", "SELECT count(*) || ':' || md5(string_agg(t::text, ',' ORDER BY bid)) FROM pgbench_branches t"},
    {"pgbench_tellers", "SELECT count(*) || ':' || md5(string_agg(t::text, ',' ORDER BY tid)) FROM pgbench_tellers t"},
    {"pgbench_history",
     "SELECT count(*) || ':' || md5(string_agg(t::text, ',' ORDER BY tid, bid, aid, delta, mtime)) FROM pgbench_history t"},
    {"volatile", "SELECT count(*) || ':' || md5(string_agg(t::text, ',' ORDER BY id)) FROM volatile t"},
};

constexpr const char* kVolatileTable =
    "CREATE TABLE volatile (id bigserial PRIMARY KEY, uid uuid DEFAULT gen_random_uuid(), "
    "created timestamptz DEFAULT now(), r float8 DEFAULT random(), note text)";

class Logical : public TwoServers {
 protected:
  static PgCluster::Options logical(std::vector<std::string> more = {}) {
    PgCluster::Options o;
    o.conf = {"wal_level=logical", "max_wal_senders=10", "max_replication_slots=10"};
    o.conf.insert(o.conf.end(), more.begin(), more.end());
    return o;
  }

  // `extra` goes into [cutover], `shadow` into [shadow].
  PgshiftOptions options(const std::string& extra = "", const std::string& shadow = "") const {
    std::ostringstream toml;
    toml << "[[primary.login]]\nclient_user = \"*\"\n\n"
         << "[shadow]\nhost = \"127.0.0.1\"\nport = " << target_->port() << "\nsync = \"logical\"\n"
         << "status_interval_ms = 1000\n" << shadow
         << "\n[[shadow.login]]\nclient_user = \"*\"\n"
         << admin_config()
         << "\n[cutover]\nstate_file = \"" << state_file() << "\"\n"
         << "catchup_timeout_ms = 30000\nmax_lag_ms = 60000\n"
         << extra;
    PgshiftOptions o;
    o.threads = 0;
    o.extra_config = toml.str();
    return o;
  }

  Pgshift& start_pgshift(const std::string& extra = "", const std::string& shadow = "") {
    proxy_ = std::make_unique<Pgshift>(*primary_, options(extra, shadow));
    return *proxy_;
  }

  RunResult sync(const std::string& verb, std::vector<std::string> more = {}) const {
    std::vector<std::string> argv{pgshift_binary().string(), "sync", verb, "--config", proxy_->config_file().string()};
    argv.insert(argv.end(), more.begin(), more.end());
    RunOptions o;
    o.timeout = 600s;
    return run(argv, o);
  }

  // Waits until every table is the same on both servers (the stream applies the last
  // changes), then checks each.
  void expect_identical(std::chrono::seconds timeout = 60s) const {
    const auto deadline = Clock::now() + timeout;
    auto same = [&] {
      for (const auto& [name, q] : kTables)
        if (primary_->sql(q) != target_->sql(q)) return false;
      return true;
    };
    while (!same() && Clock::now() < deadline) std::this_thread::sleep_for(250ms);
    for (const auto& [name, q] : kTables) EXPECT_EQ(primary_->sql(q), target_->sql(q)) << name << " differs";
  }

  std::string leftovers(const PgCluster& c) const {
    return c.sql("SELECT (SELECT count(*) FROM pg_replication_slots) || ' slots, ' || "
                 "(SELECT count(*) FROM pg_publication) || ' publications, ' || "
                 "(SELECT count(*) FROM pg_subscription) || ' subscriptions'");
  }

  void seed_primary(int scale) const {
    ASSERT_RUN_OK(pgbench(primary_->superuser(), {"-i", "-q", "-s", std::to_string(scale)}));
    // Insert-only, but logical replication needs a key or a replica identity to publish it.
    primary_->sql("ALTER TABLE pgbench_history REPLICA IDENTITY FULL");
    primary_->sql(kVolatileTable);
    primary_->sql("INSERT INTO volatile (note) SELECT 'before ' || g FROM generate_series(1, 10000) g");
  }

  // pgbench tpcb-like and 4 clients inserting into the volatile table, through pgshift.
  std::vector<std::future<RunResult>> load(int seconds) const {
    const fs::path script = state_dir_.path() / "volatile.sql";
    write_file(script, "INSERT INTO volatile (note) VALUES ('through pgshift');\n");
    const ConnParams c = proxy_->conn();
    std::vector<std::future<RunResult>> out;
    out.push_back(std::async(std::launch::async, [c, seconds] {
      return pgbench(c, {"-n", "-c", "4", "-j", "2", "-T", std::to_string(seconds)});
    }));
    out.push_back(std::async(std::launch::async, [c, seconds, script] {
      return pgbench(c, {"-n", "-c", "4", "-T", std::to_string(seconds), "-f", script.string()});
    }));
    out.push_back(std::async(std::launch::async, [c, seconds] {  // reads, a sample of them compared
      return pgbench(c, {"-n", "-S", "-c", "1", "-T", std::to_string(seconds), "-R", "200"});
    }));
    return out;
  }

};

TEST_F(Logical, CopiesExistingRowsAndStreamsExactValues) {
  primary_ = std::make_unique<PgCluster>(logical());
  target_ = std::make_unique<PgCluster>(logical());
  seed_primary(10);
  start_pgshift("", "read_sample_rate = 0.5\n");
  auto clients = load(45);  // during the copy, and for a while after it
  const RunResult started = sync("start");
  ASSERT_RUN_OK(started);
  EXPECT_TRUE(contains(started.out, "copied the schema of 5 table(s)"));
  EXPECT_TRUE(contains(started.out, "every table is copied and streaming"));
  for (auto& f : clients) EXPECT_TRUE(pgbench_clean(f.get()));
  expect_identical();
  EXPECT_EQ(target_->sql("SELECT count(*) FROM pgbench_accounts"), "1000000");
  const RunResult shown = console("SHOW SYNC");
  ASSERT_RUN_OK(shown);
  EXPECT_EQ(count_occurrences(shown.out, "|streaming|"), 5u) << shown.out;
  // Sampled reads ran on the target once it had what the primary had: no false mismatch.
  const RunResult shadow = console("SHOW SHADOW");
  EXPECT_TRUE(contains(shadow.out, "mismatches|0")) << shadow.out;
  EXPECT_FALSE(contains(shadow.out, "compared|0\n")) << "no sampled read was compared:\n" << shadow.out;
  std::cout << "[logical] " << tail_lines(shadow.out, 20) << "\n";
}

TEST_F(Logical, CutoverAndRollbackTurnTheReplicationAround) {
  primary_ = std::make_unique<PgCluster>(logical());
  target_ = std::make_unique<PgCluster>(logical());
  seed_primary(1);
  start_pgshift();
  ASSERT_RUN_OK(sync("start"));
  const ConnParams c = proxy_->conn();
  auto bench = std::async(std::launch::async, [c] { return pgbench(c, {"-n", "-c", "8", "-j", "2", "-T", "24"}); });
  std::this_thread::sleep_for(6s);
  const RunResult cut = console("CUTOVER");
  ASSERT_RUN_OK(cut);
  EXPECT_TRUE(contains(cut.out, "result|done"));
  std::this_thread::sleep_for(8s);
  // The new primary's writes reach the old one, so the rollback keeps them.
  const RunResult back = console("CUTOVER ROLLBACK");
  ASSERT_RUN_OK(back);
  EXPECT_TRUE(contains(back.out, "result|done"));
  const RunResult r = bench.get();
  ASSERT_TRUE(pgbench_clean(r));
  EXPECT_EQ(primary_->sql("SELECT count(*) FROM pgbench_history"), std::to_string(pgbench_processed(r)))
      << "the old primary holds every transaction, those made on the new one included";
  expect_identical();
  // Sequences moved with the cutover: the target's are at least the primary's.
  EXPECT_EQ(target_->sql("SELECT last_value >= " + primary_->sql("SELECT last_value FROM volatile_id_seq") +
                         " FROM volatile_id_seq"),
            "t");
  EXPECT_TRUE(contains(proxy_->log(), "now replicates from the"));
}

TEST_F(Logical, PrerequisitesNameTheirFixAndChangeNothing) {
  primary_ = std::make_unique<PgCluster>(logical());
  target_ = std::make_unique<PgCluster>(logical());
  primary_->sql("CREATE TABLE keyed (id int PRIMARY KEY)");
  primary_->sql("CREATE TABLE loose (v int)");
  start_pgshift();
  RunResult r = sync("start");
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_TRUE(contains(r.out, "FAIL every table has a primary key or a replica identity: public.loose"));
  EXPECT_TRUE(contains(r.out, "REPLICA IDENTITY FULL"));
  EXPECT_EQ(leftovers(*primary_), "0 slots, 0 publications, 0 subscriptions");

  // Half the tables on the target.
  primary_->sql("ALTER TABLE loose ADD PRIMARY KEY (v)");
  target_->sql("CREATE TABLE keyed (id int PRIMARY KEY)");
  r = sync("start");
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_TRUE(contains(r.out, "has 1 of the 2 tables; missing: public.loose"));
  EXPECT_EQ(leftovers(*primary_), "0 slots, 0 publications, 0 subscriptions");
  EXPECT_EQ(leftovers(*target_), "0 slots, 0 publications, 0 subscriptions");
}

TEST_F(Logical, WalLevelReplicaIsRefused) {
  primary_ = std::make_unique<PgCluster>(logical({"wal_level=replica"}));
  target_ = std::make_unique<PgCluster>(logical());
  primary_->sql("CREATE TABLE keyed (id int PRIMARY KEY)");
  start_pgshift();
  const RunResult r = sync("start");
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_TRUE(contains(r.out, "FAIL wal_level on the primary server: replica"));
  EXPECT_TRUE(contains(r.out, "ALTER SYSTEM SET wal_level = logical"));
  EXPECT_EQ(leftovers(*primary_), "0 slots, 0 publications, 0 subscriptions");
}

TEST_F(Logical, AConflictOnTheTargetMarksItDiverged) {
  primary_ = std::make_unique<PgCluster>(logical());
  target_ = std::make_unique<PgCluster>(logical());
  primary_->sql("CREATE TABLE accounts (id int PRIMARY KEY, v text)");
  start_pgshift();
  ASSERT_RUN_OK(sync("start"));
  target_->sql("INSERT INTO accounts VALUES (7, 'put there by hand')");
  // The client's insert works; the stream then hits the row that is in the way.
  EXPECT_RUN_OK(psql_query(proxy_->conn(), "INSERT INTO accounts VALUES (7, 'through pgshift')"));
  const auto deadline = Clock::now() + 30s;
  while (!contains(console("SHOW SHADOW").out, "diverged|yes") && Clock::now() < deadline) std::this_thread::sleep_for(250ms);
  const RunResult shadow = console("SHOW SHADOW");
  EXPECT_TRUE(contains(shadow.out, "diverged|yes")) << shadow.out;
  EXPECT_TRUE(contains(proxy_->log(), "reports 1 error") || contains(proxy_->log(), "error(s)"));
  EXPECT_RUN_OK(psql_query(proxy_->conn(), "INSERT INTO accounts VALUES (8, 'still fine')"));
  const RunResult dry = console("CUTOVER DRY RUN");
  EXPECT_TRUE(contains(dry.out, "cutover would start|no"));
}

TEST_F(Logical, StopLeavesNothingBehind) {
  primary_ = std::make_unique<PgCluster>(logical());
  target_ = std::make_unique<PgCluster>(logical());
  primary_->sql("CREATE TABLE keyed (id int PRIMARY KEY)");
  start_pgshift();
  ASSERT_RUN_OK(sync("start"));
  EXPECT_EQ(leftovers(*primary_), "1 slots, 1 publications, 0 subscriptions");
  EXPECT_EQ(leftovers(*target_), "0 slots, 0 publications, 1 subscriptions");
  const RunResult stopped = sync("stop");
  ASSERT_RUN_OK(stopped);
  EXPECT_TRUE(contains(stopped.out, "removed subscription pgshift_postgres_from_primary on the shadow server"));
  EXPECT_TRUE(contains(stopped.out, "removed replication slot pgshift_postgres_from_primary on the primary server"));
  EXPECT_TRUE(contains(stopped.out, "removed publication pgshift_pub on the primary server"));
  EXPECT_EQ(leftovers(*primary_), "0 slots, 0 publications, 0 subscriptions");
  EXPECT_EQ(leftovers(*target_), "0 slots, 0 publications, 0 subscriptions");
}

}  // namespace
}  // namespace pgshift::it
