// Integration-test harness: real PostgreSQL clusters (scripts/pg-local), a real pgshift
// process, and real clients (psql, pgbench, Python scripts) run as child processes.
//
// Most suites are parameterized by Route: every test runs once straight against
// PostgreSQL ("direct", which validates the test itself) and once through pgshift.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pgshift::it {

namespace fs = std::filesystem;

// ---- paths -------------------------------------------------------------------

fs::path source_dir();      // the project checkout
fs::path pgshift_binary();  // the pgshift executable under test
// Whether that pgshift runs under a sanitizer (its allocator keeps freed memory in
// quarantine, so RSS says nothing): this harness built with one, or
// PGSHIFT_IT_SANITIZED set (scripts/test-sanitize runs build/'s plain harness
// against its sanitized pgshift).
bool pgshift_sanitized();
fs::path pg_bin(const std::string& program);  // a PostgreSQL 15 program (psql, pgbench, ...)
fs::path client_script(const std::string& name);  // tests/integration/clients/NAME

// ---- processes ---------------------------------------------------------------

// Extra environment for a child. A nullopt value removes the variable.
using Env = std::map<std::string, std::optional<std::string>>;

struct RunOptions {
  Env env;
  std::string input;  // written to the child's stdin, which is then closed
  std::chrono::seconds timeout{120};
  fs::path cwd;
  // When set and it turns true, the child gets stop_signal (once), and run() goes on
  // collecting its output until it exits: a load that lasts as long as a test needs it.
  std::shared_ptr<std::atomic<bool>> stop;
  int stop_signal = SIGALRM;
};

struct RunResult {
  std::vector<std::string> argv;
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  bool timed_out = false;
  std::string out;
  std::string err;

  bool ok() const { return exit_code == 0 && !timed_out; }
  // Command line, status and both output streams, for assertion messages.
  std::string describe() const;
};

// Runs argv[0] (an absolute path) to completion, capturing stdout and stderr. Every
// child gets a clean libpq environment: inherited PG* variables are dropped, messages
// are in English (LC_ALL=C.UTF-8). Kills the child's process group on timeout.
RunResult run(const std::vector<std::string>& argv, const RunOptions& opts = {});

// ---- small utilities -----------------------------------------------------------

// A fresh directory under /tmp, world-traversable (the postgres user must reach into
// it); removed with its contents when the object dies.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "pgshift-it");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// A TCP port on 127.0.0.1 nobody listens on right now (outside the ephemeral range,
// so outgoing client connections do not grab it before the server binds it).
std::uint16_t free_port();

std::string read_file(const fs::path& path);
void write_file(const fs::path& path, const std::string& content);
std::string tail_lines(const std::string& text, std::size_t lines);
std::string trim(const std::string& text);
std::size_t count_occurrences(const std::string& text, const std::string& needle);

// Passes when `text` contains `needle`; the message shows (the end of) the text otherwise.
::testing::AssertionResult contains(const std::string& text, const std::string& needle);

struct CertPair {
  fs::path cert;
  fs::path key;
};
// A self-signed certificate for CN=localhost (SAN localhost, 127.0.0.1), made with the
// openssl CLI in `dir`.
CertPair make_self_signed_cert(const fs::path& dir, const std::string& name);

// ---- connecting ------------------------------------------------------------------

// Where and as whom a client connects. Handed to every client as the standard libpq
// environment variables (PGHOST, PGPORT, ...), which psql, pgbench, psycopg and
// asyncpg all honour.
struct ConnParams {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::string user = "postgres";
  std::string dbname = "postgres";
  std::string password;         // PGPASSWORD
  std::string sslmode;          // PGSSLMODE; libpq's default (prefer) when empty
  std::string channel_binding;  // PGCHANNELBINDING
  std::string sslrootcert;      // PGSSLROOTCERT
  Env settings;                 // more libpq variables: PGOPTIONS, PGTZ, PGDATESTYLE...

  Env env() const;
  ConnParams as(const std::string& user, const std::string& password = "") const;
  ConnParams with_ssl(const std::string& mode) const;
};

// psql -X -w (no psqlrc, never prompt) plus `args`.
RunResult psql(const ConnParams& conn, const std::vector<std::string>& args,
               const RunOptions& opts = {});
// Runs one SQL string (-c) quietly, unaligned, tuples only, stopping at the first error.
RunResult psql_query(const ConnParams& conn, const std::string& sql);
// Runs a psql script fed on stdin (-f -), quietly, unaligned, tuples only.
RunResult psql_script(const ConnParams& conn, const std::string& script, bool stop_on_error);
RunResult pgbench(const ConnParams& conn, const std::vector<std::string>& args,
                  const RunOptions& opts = {});

// pgbench in the background for as long as a test needs traffic. `args` give an upper
// bound (-T); finish() ends the run early as its -T would (SIGALRM: every client stops
// after its current transaction and pgbench prints its summary), then waits for it.
// A test that returns early finishes it from the destructor.
class BackgroundPgbench {
 public:
  BackgroundPgbench(const ConnParams& conn, std::vector<std::string> args, RunOptions opts = {});
  ~BackgroundPgbench();
  BackgroundPgbench(const BackgroundPgbench&) = delete;
  BackgroundPgbench& operator=(const BackgroundPgbench&) = delete;
  RunResult finish();

 private:
  std::shared_ptr<std::atomic<bool>> stop_ = std::make_shared<std::atomic<bool>>(false);
  std::future<RunResult> run_;
};
// /usr/bin/python3 tests/integration/clients/SCRIPT args...
RunResult python_client(const std::string& script, const ConnParams& conn,
                        const std::vector<std::string>& args, const RunOptions& opts = {});

// A pgbench run that every client finished without a single failed transaction.
::testing::AssertionResult pgbench_clean(const RunResult& r);
// "number of transactions actually processed: N" -> N
std::uint64_t pgbench_processed(const RunResult& r);

// Runs clients/SCRIPT SCENARIO; passes when it exits 0 having printed "ok SCENARIO".
::testing::AssertionResult scenario_passes(const std::string& script, const std::string& scenario,
                                           const ConnParams& conn);

// ---- PostgreSQL ------------------------------------------------------------------

// A throwaway cluster (scripts/pg-local) on a free port in a fresh temp dir; stopped
// and removed by the destructor. Superuser "postgres", trust auth unless hba says more.
class PgCluster {
 public:
  struct Options {
    bool ssl = false;               // self-signed certificate, ssl = on
    std::vector<std::string> hba;   // pg_hba.conf lines placed before the defaults
    std::vector<std::string> conf;  // "name=value" settings appended to postgresql.conf
  };

  explicit PgCluster(Options options);
  PgCluster() : PgCluster(Options{}) {}
  ~PgCluster();
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  std::uint16_t port() const { return port_; }
  const fs::path& dir() const { return dir_.path(); }
  fs::path cert_file() const { return dir() / "cluster" / "server.crt"; }  // with ssl only
  ConnParams superuser() const;

  // Runs SQL (one or more statements) as the superuser, directly; returns the
  // unaligned, tuples-only output. Throws on any error.
  std::string sql(const std::string& sql) const;
  std::string log() const;  // the whole server log
  std::string log_tail(std::size_t lines = 40) const;

  // Stops the server: a fast shutdown, or with `immediate` a crash (pg_ctl -m immediate;
  // the next start runs crash recovery). Does nothing when it is not running.
  void stop(bool immediate = false);
  // Starts the stopped server again, same data, same port. Throws when it does not start.
  void start();
  bool running() const { return running_; }
  // The postmaster and every process it forked (backends, background workers), e.g. to
  // SIGSTOP the whole server; empty when it is not running.
  std::vector<pid_t> server_pids() const;

 private:
  TempDir dir_;
  std::uint16_t port_ = 0;
  bool running_ = false;
};

// SIGSTOPs processes; SIGCONTs them on resume() or destruction, so a failing test
// never leaves a frozen server behind.
class Frozen {
 public:
  explicit Frozen(std::vector<pid_t> pids);
  ~Frozen() { resume(); }
  Frozen(const Frozen&) = delete;
  Frozen& operator=(const Frozen&) = delete;
  void resume();

 private:
  std::vector<pid_t> pids_;
};

// Password-authenticated roles, each bound to one pg_hba method (loopback only).
struct Account {
  std::string user;
  std::string password;
  std::string method;  // pg_hba auth method
};
extern const Account kMd5User;    // md5, stored as an MD5 hash
extern const Account kScramUser;  // scram-sha-256
extern const Account kPlainUser;  // password (cleartext on the wire), stored as SCRAM
std::vector<std::string> password_hba_lines();  // for PgCluster::Options::hba
void create_password_accounts(const PgCluster& cluster);

// ---- pgshift ---------------------------------------------------------------------

struct PgshiftOptions {
  std::string client_tls_mode = "disable";  // disable | allow | require
  std::optional<CertPair> client_cert;      // required unless client_tls_mode is disable
  std::string server_tls_mode = "disable";  // disable | prefer | require | verify-ca | verify-full
  fs::path server_ca;                        // for verify-ca / verify-full
  unsigned threads = 2;
  std::optional<unsigned> login_timeout_ms;        // [proxy] login_timeout_ms; 10000 when unset
  std::optional<std::uint32_t> max_message_size;   // [proxy] max_message_size; pgshift's default when unset
  std::optional<std::uint64_t> max_buffered_bytes; // [proxy] max_buffered_bytes; pgshift's default when unset
  std::string extra_config;  // raw TOML appended to the generated file ([rewrite], [[rename]], ...)
};

// pgshift in front of `primary`: writes a config file, starts the binary, waits until
// it accepts TCP connections. The destructor sends SIGTERM, waits, and records a test
// failure unless pgshift exits with status 0. Output goes to a log file.
class Pgshift {
 public:
  Pgshift(const PgCluster& primary, PgshiftOptions options = {})
      : Pgshift(primary.port(), std::move(options)) {}
  // In front of whatever listens (or nothing) on 127.0.0.1:primary_port.
  explicit Pgshift(std::uint16_t primary_port, PgshiftOptions options = {});
  ~Pgshift();
  Pgshift(const Pgshift&) = delete;
  Pgshift& operator=(const Pgshift&) = delete;

  std::uint16_t port() const { return port_; }
  ConnParams conn(const std::string& user = "postgres") const;
  std::string log() const;
  fs::path config_file() const { return dir_.path() / "pgshift.toml"; }
  pid_t pid() const { return pid_; }  // -1 once stopped

  // SIGTERM and wait; returns a description of what went wrong, empty when pgshift
  // exited with status 0. Idempotent.
  std::string stop();

 private:
  TempDir dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

// The TOML config pgshift gets for `options` (listening on `listen_port`).
std::string pgshift_config(std::uint16_t listen_port, std::uint16_t primary_port,
                           const PgshiftOptions& options);

// ---- fixtures ----------------------------------------------------------------------

enum class Route { direct, pgshift };
std::string route_name(const ::testing::TestParamInfo<Route>& info);
void PrintTo(Route route, std::ostream* os);

// One cluster per test suite, plus (on first use) one pgshift in front of it. With
// PGSHIFT_IT_MIRROR=1 in the environment (the integration.<Suite>.mirrored ctest
// entries), pgshift also mirrors to a shadow cluster of its own, exactly: the client
// suites must pass unchanged while their writes are captured.
class SuiteEnv {
 public:
  explicit SuiteEnv(PgCluster::Options options) : cluster_(std::move(options)) {}
  ~SuiteEnv();
  PgCluster& cluster() { return cluster_; }
  // Connection parameters (superuser) for `route`. Starting pgshift is attempted once;
  // if it failed, every later call fails the same way.
  ConnParams endpoint(Route route);
  void print_logs() const;

 private:
  PgCluster cluster_;
  std::unique_ptr<PgCluster> shadow_;  // with PGSHIFT_IT_MIRROR=1
  std::unique_ptr<Pgshift> pgshift_;
  std::string pgshift_error_;
};

// Whether PGSHIFT_IT_MIRROR=1 asks the routed suites to mirror.
bool mirrored_run();

// Base fixture: `Suite` may define `static PgCluster::Options cluster_options()` and
// `static void prepare(PgCluster&)` (users, tables) to customise the shared cluster.
template <class Suite>
class SharedClusterTest : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    auto env = std::make_unique<SuiteEnv>(Suite::cluster_options());
    Suite::prepare(env->cluster());
    env_ = std::move(env);
  }
  static void TearDownTestSuite() { env_.reset(); }

 protected:
  static PgCluster::Options cluster_options() { return {}; }
  static void prepare(PgCluster&) {}

  void SetUp() override { ASSERT_TRUE(env_) << "the suite's PostgreSQL cluster did not start"; }
  void TearDown() override {
    if (HasFailure() && env_) env_->print_logs();
  }
  static PgCluster& cluster() { return env_->cluster(); }

  static inline std::unique_ptr<SuiteEnv> env_;
};

// Parameterized by Route; `conn()` is the superuser on the route under test.
template <class Suite>
class RoutedTest : public SharedClusterTest<Suite>, public ::testing::WithParamInterface<Route> {
 protected:
  void SetUp() override {
    SharedClusterTest<Suite>::SetUp();
    if (::testing::Test::HasFatalFailure()) return;
    try {
      conn_ = this->env_->endpoint(GetParam());
    } catch (const std::exception& e) {
      FAIL() << e.what();
    }
  }
  const ConnParams& conn() const { return conn_; }

 private:
  ConnParams conn_;
};

}  // namespace pgshift::it

// Instantiates a RoutedTest suite: tests are named SUITE.TEST/direct and SUITE.TEST/pgshift.
#define PGSHIFT_ROUTED_SUITE(suite)                                                         \
  INSTANTIATE_TEST_SUITE_P(, suite,                                                         \
                           ::testing::Values(::pgshift::it::Route::direct,                 \
                                             ::pgshift::it::Route::pgshift),               \
                           ::pgshift::it::route_name)

// Asserts a client process succeeded, printing everything it said otherwise.
#define EXPECT_RUN_OK(result) EXPECT_TRUE((result).ok()) << (result).describe()
#define ASSERT_RUN_OK(result) ASSERT_TRUE((result).ok()) << (result).describe()
