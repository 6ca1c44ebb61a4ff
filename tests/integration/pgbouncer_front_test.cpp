// PgBouncer in transaction mode in front of pgshift, for applications that open a
// connection per request: PgBouncer takes the connection churn, pgshift sees only
// its few long-lived server connections and can move them at a switch, because
// between two transactions every one of them is idle. pgbench -C (a new connection
// per transaction) through PgBouncer while pgshift cuts over and rolls back behind
// it: no client may see an error, and every transaction counted is on both servers.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "two_servers.hpp"

namespace pgshift::it {
namespace {

using namespace std::chrono_literals;

// PgBouncer (Debian's /usr/sbin/pgbouncer) as the postgres user: it refuses root.
class Pgbouncer {
 public:
  Pgbouncer(std::uint16_t server_port, int pool_size) : port_(free_port()) {
    write_file(dir_.path() / "userlist.txt", "\"postgres\" \"\"\n");  // trust still needs the user listed
    write_file(ini(), "[databases]\n* = host=127.0.0.1 port=" + std::to_string(server_port) +
                          "\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = " + std::to_string(port_) +
                          "\nunix_socket_dir =\nauth_type = trust\nauth_file = " + (dir_.path() / "userlist.txt").string() +
                          "\npool_mode = transaction\ndefault_pool_size = " + std::to_string(pool_size) +
                          "\nmax_client_conn = 200\nlogfile = " + log_file().string() +
                          "\npidfile = " + pid_file().string() +
                          "\nignore_startup_parameters = extra_float_digits\n");
    std::vector<std::string> argv{"/usr/sbin/pgbouncer", "-d", ini().string()};
    if (geteuid() == 0) {
      const RunResult owned = run({"/usr/bin/chown", "-R", "postgres:postgres", dir_.path().string()});
      EXPECT_RUN_OK(owned);
      argv.insert(argv.begin(), {"/usr/sbin/runuser", "-u", "postgres", "--"});
    }
    const RunResult started = run(argv);  // -d: returns once PgBouncer runs in the background
    EXPECT_RUN_OK(started);
    for (int i = 0; i < 100 && !psql_query(conn(), "SELECT 1").ok(); ++i) std::this_thread::sleep_for(100ms);
  }
  ~Pgbouncer() {
    const std::string pid = fs::exists(pid_file()) ? trim(read_file(pid_file())) : "";
    if (!pid.empty()) ::kill(std::stoi(pid), SIGTERM);  // immediate shutdown
  }
  Pgbouncer(const Pgbouncer&) = delete;
  Pgbouncer& operator=(const Pgbouncer&) = delete;

  ConnParams conn() const {
    ConnParams c;
    c.port = port_;
    return c;
  }
  std::string log() const { return fs::exists(log_file()) ? read_file(log_file()) : ""; }

 private:
  fs::path ini() const { return dir_.path() / "pgbouncer.ini"; }
  fs::path log_file() const { return dir_.path() / "pgbouncer.log"; }
  fs::path pid_file() const { return dir_.path() / "pgbouncer.pid"; }

  TempDir dir_{"pgshift-it-pgbouncer"};
  std::uint16_t port_;
};

class PgbouncerFront : public TwoServers {
 protected:
  void SetUp() override {
    primary_ = std::make_unique<PgCluster>();
    target_ = std::make_unique<PgCluster>();
    for (const PgCluster* c : {primary_.get(), target_.get()}) {
      auto r = pgbench(c->superuser(), {"-i", "-s", "1", "-q"});
      ASSERT_RUN_OK(r);
    }
  }
  void TearDown() override {
    if (HasFailure() && bouncer_) std::cerr << "---- PgBouncer log ----\n" << tail_lines(bouncer_->log(), 40) << "\n----\n";
    bouncer_.reset();
    TwoServers::TearDown();
  }

  std::unique_ptr<Pgbouncer> bouncer_;
};

TEST_F(PgbouncerFront, ConnectionPerTransactionThroughCutoverAndRollback) {
  PgshiftOptions o;
  o.threads = 0;  // one I/O thread while mirroring, as by default
  // The switch waits for the mirror rather than fail a guardrail when CI's other
  // suites slow it down.
  o.extra_config = mirror_config(*target_, 200) + admin_config() + "\n[cutover]\nstate_file = \"" + state_file() +
                   "\"\nmax_lag_ms = 60000\ncatchup_timeout_ms = 30000\n";
  proxy_ = std::make_unique<Pgshift>(*primary_, o);
  bouncer_ = std::make_unique<Pgbouncer>(proxy_->port(), 4);
  const ConnParams via_bouncer = bouncer_->conn();
  ASSERT_EQ(trim(psql_query(via_bouncer, "SHOW port").out), std::to_string(primary_->port()));

  // Simple protocol: transaction pooling does not keep prepared statements.
  auto bench = std::async(std::launch::async, [via_bouncer] {
    return pgbench(via_bouncer, {"-n", "-C", "-c", "8", "-j", "2", "-M", "simple", "-T", "24"});
  });
  std::this_thread::sleep_for(8s);
  const RunResult cut = console("CUTOVER");
  EXPECT_RUN_OK(cut);
  EXPECT_TRUE(contains(cut.out, "result|done")) << cut.out;
  EXPECT_EQ(trim(psql_query(via_bouncer, "SHOW port").out), std::to_string(target_->port()))
      << "PgBouncer's server connections are pgshift sessions, moved to the new primary";
  std::this_thread::sleep_for(8s);
  const RunResult back = console("CUTOVER ROLLBACK");
  EXPECT_RUN_OK(back);
  EXPECT_TRUE(contains(back.out, "result|done")) << back.out;

  const RunResult r = bench.get();
  ASSERT_TRUE(pgbench_clean(r));
  const std::uint64_t processed = pgbench_processed(r);
  EXPECT_GT(processed, 100u) << r.describe();
  // pgshift saw PgBouncer's pool, not pgbench's connection per transaction.
  std::size_t sessions = 0;
  std::istringstream log(proxy_->log());
  for (std::string line; std::getline(log, line);)
    sessions += contains(line, " open client=") && contains(line, " database=postgres ");
  EXPECT_GT(sessions, 0u);
  EXPECT_LE(sessions, 6u) << "sessions pgshift opened for PgBouncer's pool of 4";

  const std::string history = "SELECT count(*) || ':' || coalesce(sum(delta), 0) FROM pgbench_history";
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (primary_->sql(history) != target_->sql(history) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(100ms);
  EXPECT_EQ(primary_->sql("SELECT count(*) FROM pgbench_history"), std::to_string(processed));
  EXPECT_EQ(primary_->sql(history), target_->sql(history)) << "both servers hold every transaction";
  const auto tps_at = r.out.find("tps = ");
  const std::string tps = tps_at == std::string::npos ? "" : r.out.substr(tps_at, r.out.find('\n', tps_at) - tps_at);
  std::cout << "[pgbouncer -> pgshift, pgbench -C] processed " << processed << ", " << tps << "\n";
}

}  // namespace
}  // namespace pgshift::it
