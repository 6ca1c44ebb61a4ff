// Live cutover and rollback, end to end: a primary and a target cluster (the [shadow]),
// pgshift in front with mirroring and its admin console, real clients through it, and
// CUTOVER / CUTOVER ROLLBACK issued on the console while they run. No client may see
// an error; afterwards the servers must hold the same data, and every transaction a
// client counted must be on the server that serves.
#include <signal.h>

#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "raw_client.hpp"
#include "two_servers.hpp"

namespace pgshift::it {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The tables pgbench writes, compared whole on both servers.
const std::vector<std::pair<std::string, std::string>> kPgbenchTables = {
    {"accounts", "SELECT md5(string_agg(aid || ':' || bid || ':' || abalance, ',' ORDER BY aid)) FROM pgbench_accounts"},
    {"branches", "SELECT md5(string_agg(bid || ':' || bbalance, ',' ORDER BY bid)) FROM pgbench_branches"},
    {"tellers", "SELECT md5(string_agg(tid || ':' || bid || ':' || tbalance, ',' ORDER BY tid)) FROM pgbench_tellers"},
    {"history", "SELECT count(*) || ':' || sum(delta) FROM pgbench_history"},
};

bool wait_for_file(const fs::path& path, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!fs::exists(path)) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

class Cutover : public TwoServers {
 protected:
  void SetUp() override {
    primary_ = std::make_unique<PgCluster>();
    target_ = std::make_unique<PgCluster>();
  }

  // pgshift with mirroring to the target, credentials for both servers, the admin
  // console, and `cutover` as the body of its [cutover] section.
  PgshiftOptions options(const std::string& cutover = "") const {
    PgshiftOptions o;
    o.threads = 0;  // one I/O thread while mirroring, as by default
    o.extra_config = mirror_config(*target_, 200) + admin_config() + "\n[cutover]\nstate_file = \"" + state_file() +
                     "\"\n" + cutover;
    return o;
  }

  Pgshift& start(const std::string& cutover = "") {
    proxy_ = std::make_unique<Pgshift>(*primary_, options(cutover));
    return *proxy_;
  }

  std::string port_via(const ConnParams& c) const {
    const RunResult r = psql_query(c, "SHOW port");
    EXPECT_RUN_OK(r);
    return trim(r.out);
  }

  void both(const std::string& sql) const {
    primary_->sql(sql);
    target_->sql(sql);
  }

  void pgbench_init_both() const {
    for (const PgCluster* c : {primary_.get(), target_.get()}) {
      auto r = pgbench(c->superuser(), {"-i", "-s", "1", "-q"});
      ASSERT_RUN_OK(r);
    }
  }

  // Waits until the pgbench tables are the same on both servers (the mirror, forward
  // or reverse, applies what was committed last), then checks each.
  void expect_pgbench_alike() const {
    const std::string history = kPgbenchTables.back().second;
    const auto deadline = Clock::now() + 30s;
    while (primary_->sql(history) != target_->sql(history) && Clock::now() < deadline) std::this_thread::sleep_for(100ms);
    for (const auto& [name, query] : kPgbenchTables)
      EXPECT_EQ(primary_->sql(query), target_->sql(query)) << "pgbench_" << name << " differs between the servers";
  }

  std::uint64_t history_rows(const PgCluster& c) const {
    return std::stoull(c.sql("SELECT count(*) FROM pgbench_history"));
  }

  // A client script's run in the background, and the handshake files it uses.
  std::future<RunResult> client_script(const std::string& scenario, const std::string& expected_port = "") const {
    std::vector<std::string> args{scenario, handshake_.path().string()};
    if (!expected_port.empty()) args.push_back(expected_port);
    const ConnParams c = client();
    return std::async(std::launch::async, [c, args] { return python_client("cutover_client.py", c, args); });
  }
  bool ready(const std::string& scenario) const { return wait_for_file(handshake_.path() / (scenario + ".ready"), 30s); }
  void go() const { write_file(handshake_.path() / "go", ""); }

  // pgbench through pgshift for `seconds`, with CUTOVER after `cutover_at` and CUTOVER
  // ROLLBACK after `rollback_at`.
  void pgbench_through_switches(const std::string& mode, int seconds, std::chrono::seconds cutover_at,
                                std::chrono::seconds rollback_at) {
    pgbench_init_both();
    // CI runs other suites beside this one on two cores: the mirror may lag behind
    // pgbench for a while. The switch waits for it (the pause figures show the cost)
    // rather than fail a guardrail.
    Pgshift& proxy = start("max_lag_ms = 60000\ncatchup_timeout_ms = 30000\n");
    const ConnParams c = client();
    auto bench = std::async(std::launch::async, [c, mode, seconds] {
      return pgbench(c, {"-n", "-c", "8", "-j", "2", "-M", mode, "-T", std::to_string(seconds)});
    });
    const auto began = Clock::now();
    std::this_thread::sleep_until(began + cutover_at);
    const RunResult cut = console("CUTOVER");
    EXPECT_RUN_OK(cut);
    EXPECT_TRUE(contains(cut.out, "result|done"));
    EXPECT_TRUE(contains(cut.out, "sessions moved|8")) << cut.out;
    const std::string cut_pause = cut.out;
    std::this_thread::sleep_until(began + rollback_at);
    const RunResult back = console("CUTOVER ROLLBACK");
    EXPECT_RUN_OK(back);
    EXPECT_TRUE(contains(back.out, "result|done"));
    EXPECT_TRUE(contains(back.out, "sessions moved|8")) << back.out;
    const RunResult r = bench.get();
    ASSERT_TRUE(pgbench_clean(r));
    const std::uint64_t processed = pgbench_processed(r);
    EXPECT_GT(processed, 1000u) << r.describe();

    // Every transaction pgbench counted is on both servers: each was written on one
    // and mirrored to the other, in both directions.
    EXPECT_EQ(history_rows(*primary_), processed) << "pgbench_history on the serving server";
    expect_pgbench_alike();
    EXPECT_EQ(history_rows(*target_), processed) << "pgbench_history on the target";

    const auto shown = show_cutover();
    EXPECT_EQ(shown.at("phase"), "shadowing");
    EXPECT_EQ(shown.at("result"), "done");
    EXPECT_TRUE(shown.contains("pause p50") && shown.contains("pause p99") && shown.contains("pause max"));
    auto figures = [](const std::string& answer) {
      std::string out;
      std::istringstream in(answer);
      for (std::string line; std::getline(in, line);)
        if (line.starts_with("pause ") || line.starts_with("step ")) out += " " + line.substr(0, line.find('|')) + " " +
                                                                           line.substr(line.find('|') + 1) + ",";
      return out;
    };
    std::cout << "[pgbench -M " << mode << "] processed " << processed << "\n  cutover:" << figures(cut_pause)
              << "\n  rollback:" << figures(back.out) << "\n";
    EXPECT_TRUE(contains(proxy.log(), "phase cutover -> cut_over"));
    EXPECT_TRUE(contains(proxy.log(), "phase rollback -> shadowing"));
  }

  TempDir handshake_{"pgshift-it-handshake"};
};

// ---- under load ----------------------------------------------------------------------------
// Each run switches twice: CUTOVER 10 s in (every session to the target, writes mirrored
// back), CUTOVER ROLLBACK 20 s in; pgbench must see no error, both servers must hold
// every transaction it counted, and both switches' pause figures are reported.

TEST_F(Cutover, PgbenchSimpleProtocol) { pgbench_through_switches("simple", 30, 10s, 20s); }

TEST_F(Cutover, PgbenchPreparedStatements) { pgbench_through_switches("prepared", 30, 10s, 20s); }

// A session that only binds and executes what it prepared when it began (pgbench
// -M prepared) did not look at the target's catalog again: when that was read after
// the session's Parse, the statements moved without exact mirroring's capture column,
// and every write after the switch reached the old primary as nothing. Here the
// target's catalog is held back (pg_depend locked there) while the sessions prepare.
TEST_F(Cutover, PreparedWritesMoveWhenTheTargetsCatalogWasReadLate) {
  both("CREATE TABLE stamped (id bigserial PRIMARY KEY, at timestamptz NOT NULL)");
  const ConnParams target_super = target_->superuser();
  auto locked = std::async(std::launch::async, [target_super] {
    return psql_script(target_super, "BEGIN;\nLOCK TABLE pg_catalog.pg_depend IN ACCESS EXCLUSIVE MODE;\n"
                                     "SELECT pg_sleep(3);\nCOMMIT;\n", true);
  });
  std::this_thread::sleep_for(300ms);
  start("max_lag_ms = 60000\n");
  const fs::path script = handshake_.path() / "stamp.sql";
  write_file(script, "INSERT INTO stamped (at) VALUES (now());\n");
  const ConnParams c = client();
  auto bench = std::async(std::launch::async, [c, script] {
    return pgbench(c, {"-n", "-M", "prepared", "-c", "2", "-j", "1", "-R", "100", "-T", "9", "-f", script.string()});
  });
  ASSERT_RUN_OK(locked.get());  // the target's catalog is read from now on
  std::this_thread::sleep_for(2s);
  const RunResult cut = console("CUTOVER");
  ASSERT_RUN_OK(cut);
  EXPECT_TRUE(contains(cut.out, "sessions moved|2")) << cut.out;
  const RunResult r = bench.get();
  ASSERT_TRUE(pgbench_clean(r));
  const std::string processed = std::to_string(pgbench_processed(r));
  const std::string count = "SELECT count(*) FROM stamped";
  const auto deadline = Clock::now() + 30s;
  while (primary_->sql(count) != processed && Clock::now() < deadline) std::this_thread::sleep_for(100ms);
  EXPECT_EQ(target_->sql(count), processed) << "on the target, which serves";
  EXPECT_EQ(primary_->sql(count), processed) << "mirrored back to the old primary";
  const std::string rows = "SELECT md5(string_agg(id || ':' || at, ',' ORDER BY id)) FROM stamped";
  EXPECT_EQ(primary_->sql(rows), target_->sql(rows)) << "the same ids and times on both";
  EXPECT_FALSE(contains(show("SHADOW").at("diverged"), "yes")) << proxy_->log();
}

// ---- what moves with a session ---------------------------------------------------------------

TEST_F(Cutover, DriversKeepTheirSessionState) {
  start();
  const std::string target_port = std::to_string(target_->port());
  auto psycopg_client = client_script("psycopg", target_port);
  auto asyncpg_client = client_script("asyncpg", target_port);
  ASSERT_TRUE(ready("psycopg"));
  ASSERT_TRUE(ready("asyncpg"));
  ASSERT_TRUE(target_connected());

  const RunResult dry = console("CUTOVER DRY RUN");
  ASSERT_RUN_OK(dry);
  EXPECT_TRUE(contains(dry.out, "cutover would start|yes"));
  EXPECT_EQ(show_cutover().at("phase"), "shadowing") << "a dry run changes nothing";

  const RunResult cut = console("CUTOVER");
  ASSERT_RUN_OK(cut);
  EXPECT_TRUE(contains(cut.out, "sessions moved|2"));
  go();

  // The LISTEN session receives a NOTIFY sent on the new primary.
  ASSERT_TRUE(wait_for_file(handshake_.path() / "listening", 30s));
  EXPECT_EQ(port_via(client()), target_port) << "a new connection lands on the new primary";
  EXPECT_RUN_OK(psql_query(client(), "NOTIFY cutover_channel, 'after the switch'"));

  const RunResult p = psycopg_client.get();
  EXPECT_TRUE(p.ok() && contains(p.out, "ok psycopg")) << p.describe();
  const RunResult a = asyncpg_client.get();
  EXPECT_TRUE(a.ok() && contains(a.out, "ok asyncpg")) << a.describe();
}

// ---- aborts: nothing moves, no client sees an error -----------------------------------------------

TEST_F(Cutover, OpenTransactionPastDrainTimeoutAborts) {
  both("CREATE TABLE cutover_probe (id bigserial PRIMARY KEY, note text)");
  start("drain_timeout_ms = 1000\n");
  const ConnParams c = client();
  auto held = std::async(std::launch::async, [c] {
    return psql_script(c, "BEGIN;\nINSERT INTO cutover_probe (note) VALUES ('held open');\n"
                          "SELECT pg_sleep(3);\nCOMMIT;\n", true);
  });
  std::this_thread::sleep_for(500ms);
  const RunResult cut = console("CUTOVER");
  EXPECT_FALSE(cut.ok()) << "a cutover with a transaction open past drain_timeout_ms must fail";
  EXPECT_TRUE(contains(cut.err, "did not reach a transaction boundary within 1000 ms"));
  EXPECT_TRUE(contains(cut.err, "in a transaction for"));

  const RunResult r = held.get();
  EXPECT_RUN_OK(r);
  EXPECT_EQ(primary_->sql("SELECT count(*) FROM cutover_probe WHERE note = 'held open'"), "1")
      << "the held transaction committed on the old primary";
  EXPECT_EQ(port_via(client()), std::to_string(primary_->port()));
  const auto shown = show_cutover();
  EXPECT_EQ(shown.at("phase"), "shadowing");
  EXPECT_TRUE(contains(shown.at("result"), "aborted: "));
}

TEST_F(Cutover, StalledTargetAbortsCatchUp) {
  pgbench_init_both();
  start("catchup_timeout_ms = 1000\nmax_lag_ms = 600000\n");
  ASSERT_RUN_OK(psql_query(client(), "UPDATE pgbench_branches SET bbalance = bbalance + 1"));  // opens the mirror's connection
  std::this_thread::sleep_for(500ms);
  // The mirror's backends stop; the target itself still accepts connections.
  std::vector<pid_t> mirror_pids;
  std::istringstream pids(target_->sql("SELECT pid FROM pg_stat_activity WHERE application_name = 'pgshift-shadow'"));
  for (std::string pid; std::getline(pids, pid);) mirror_pids.push_back(std::stoi(pid));
  ASSERT_FALSE(mirror_pids.empty());
  Frozen frozen(mirror_pids);

  const ConnParams c = client();
  auto bench = std::async(std::launch::async, [c] { return pgbench(c, {"-n", "-c", "4", "-T", "6"}); });
  std::this_thread::sleep_for(2s);
  const RunResult cut = console("CUTOVER");
  EXPECT_FALSE(cut.ok());
  EXPECT_TRUE(contains(cut.err, "did not catch up within 1000 ms"));
  const RunResult r = bench.get();
  EXPECT_TRUE(pgbench_clean(r));
  EXPECT_EQ(history_rows(*primary_), pgbench_processed(r)) << "every session kept working on the old primary";
  EXPECT_EQ(show_cutover().at("phase"), "shadowing");
  frozen.resume();
  expect_pgbench_alike();
}

// ---- sessions that cannot move -------------------------------------------------------------------

TEST_F(Cutover, TemporaryTableBlocksWithWait) {
  start("drain_timeout_ms = 1500\n");
  auto temp = client_script("temp_table");
  ASSERT_TRUE(ready("temp_table"));
  const RunResult dry = console("CUTOVER DRY RUN");
  ASSERT_RUN_OK(dry);
  EXPECT_TRUE(contains(dry.out, "temporary tables")) << "the dry run names the session";
  const RunResult cut = console("CUTOVER");
  EXPECT_FALSE(cut.ok());
  EXPECT_TRUE(contains(cut.err, "holds 1 temporary object")) << cut.describe();
  go();
  const RunResult t = temp.get();
  EXPECT_TRUE(contains(t.out, "works on port " + std::to_string(primary_->port()))) << t.describe();
  EXPECT_EQ(show_cutover().at("phase"), "shadowing");
}

TEST_F(Cutover, TemporaryTableClosedWithClose) {
  pgbench_init_both();
  start("unmovable = \"close\"\n");
  auto temp = client_script("temp_table");
  ASSERT_TRUE(ready("temp_table"));
  const ConnParams c = client();
  // pgbench must still run when the sessions move: preparing waits up to 2 s for the
  // mirror's backlog, and on a loaded machine more. Once in CI a 4-s run had ended
  // before the swap ("sessions moved|0").
  auto bench = std::async(std::launch::async, [c] { return pgbench(c, {"-n", "-c", "4", "-T", "10"}); });
  std::this_thread::sleep_for(1s);
  const RunResult cut = console("CUTOVER");
  ASSERT_RUN_OK(cut);
  EXPECT_TRUE(contains(cut.out, "sessions moved|4")) << cut.out;
  EXPECT_TRUE(contains(cut.out, "sessions closed|1"));
  go();
  const RunResult t = temp.get();
  EXPECT_TRUE(contains(t.out, "closed: ") && contains(t.out, "moved to another server")) << t.describe();
  EXPECT_TRUE(pgbench_clean(bench.get()));
}

// ---- what the switch sets up -----------------------------------------------------------------------

TEST_F(Cutover, SequencesAreAheadOfExistingRows) {
  both("CREATE TABLE numbered (id bigserial PRIMARY KEY, v text)");
  start();
  ASSERT_RUN_OK(psql_query(client(), "INSERT INTO numbered (v) SELECT 'row ' || g FROM generate_series(1, 20) g"));
  std::this_thread::sleep_for(500ms);
  // The target's sequence behind its rows, as after a copy that does not carry sequences.
  target_->sql("SELECT setval('numbered_id_seq', 1)");
  ASSERT_RUN_OK(console("CUTOVER"));
  const RunResult r = psql_query(client(), "INSERT INTO numbered (v) VALUES ('after') RETURNING id");
  ASSERT_RUN_OK(r);
  EXPECT_GT(std::stoll(trim(r.out)), 20) << "a new id collides with an existing row";
}

TEST_F(Cutover, NewConnectionsWaitAndLandOnTheNewPrimary) {
  start("drain_timeout_ms = 10000\n");
  const ConnParams c = client();
  auto held = std::async(std::launch::async, [c] {
    return psql_script(c, "BEGIN;\nSELECT pg_sleep(4);\nCOMMIT;\n", true);
  });
  // States, not sleeps: on a busy machine psql can take longer to start than a
  // fixed wait, and the new connection then came before the switch paused.
  eventually([&] {
    return primary_->sql("SELECT count(*) FROM pg_stat_activity"
                         " WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(4)%'") == "1";
  });
  auto cut = std::async(std::launch::async, [this] { return console("CUTOVER"); });
  // The switch waits for the open transaction: paused, new connections held.
  eventually([&] { return contains(show_cutover().at("phase"), "(draining)"); });
  const auto asked = Clock::now();
  const std::string port = port_via(client());
  const auto answered = Clock::now();
  const RunResult done = cut.get();
  ASSERT_RUN_OK(done);
  EXPECT_RUN_OK(held.get());
  EXPECT_EQ(port, std::to_string(target_->port())) << "the new connection was served by the new primary";
  EXPECT_GT(answered - asked, 500ms) << "the new connection did not wait for the switch";
}

TEST_F(Cutover, RestartServesTheNewPrimary) {
  start();
  ASSERT_RUN_OK(console("CUTOVER"));
  EXPECT_EQ(port_via(client()), std::to_string(target_->port()));
  EXPECT_EQ(proxy_->stop(), "");
  proxy_ = std::make_unique<Pgshift>(*primary_, options());  // the same configuration
  EXPECT_EQ(port_via(client()), std::to_string(target_->port())) << "a restart undid the cutover";
  EXPECT_TRUE(contains(proxy_->log(), "says the cutover happened"));
  EXPECT_EQ(show_cutover().at("phase"), "cut_over");
}

TEST_F(Cutover, ConsoleRefusesOthers) {
  start();
  ConnParams wrong = admin();
  wrong.password = "not the password";
  const RunResult r = psql(wrong, {"-c", "SHOW CUTOVER"});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.err, "password authentication failed for user \"pgshift\""));
  ConnParams other = admin();
  other.user = "postgres";
  const RunResult o = psql(other, {"-c", "SHOW CUTOVER"});
  EXPECT_FALSE(o.ok());
  EXPECT_TRUE(contains(o.err, "password authentication failed for user \"postgres\""));
  EXPECT_RUN_OK(console("SHOW VERSION"));
}

}  // namespace
}  // namespace pgshift::it

namespace pgshift::it {
namespace {

// ---- reads first ---------------------------------------------------------------------------------

TEST_F(Cutover, ReadsGoToTheTargetAndComeBack) {
  pgbench_init_both();
  start();
  const std::string target_port = std::to_string(target_->port());
  const RunResult on = console("CUTOVER READS 100");
  ASSERT_RUN_OK(on);
  EXPECT_TRUE(contains(on.out, "phase|reads"));
  EXPECT_EQ(port_via(client()), target_port) << "a read-only statement is served by the target";
  // Read-only load, simple and prepared, and writes beside it: no error.
  for (const char* mode : {"simple", "prepared"}) {
    const RunResult r = pgbench(client(), {"-n", "-S", "-c", "4", "-T", "3", "-M", mode});
    EXPECT_TRUE(pgbench_clean(r)) << mode;
  }
  const RunResult writes = pgbench(client(), {"-n", "-c", "2", "-T", "2"});
  EXPECT_TRUE(pgbench_clean(writes));
  EXPECT_EQ(history_rows(*primary_), pgbench_processed(writes)) << "writes still go to the primary";
  const auto shown = show_cutover();
  EXPECT_EQ(shown.at("phase"), "reads");
  EXPECT_TRUE(contains(shown.at("reads served by the target"), "100%"));
  EXPECT_FALSE(contains(shown.at("reads served by the target"), "(0 units")) << "no read reached the target";

  ASSERT_RUN_OK(console("CUTOVER READS 0"));
  EXPECT_EQ(port_via(client()), std::to_string(primary_->port()));
  EXPECT_EQ(show_cutover().at("phase"), "shadowing");
}

TEST_F(Cutover, ReadsSeeTheSessionsOwnWrites) {
  both("CREATE TABLE mine (id int PRIMARY KEY)");
  start();
  ASSERT_RUN_OK(console("CUTOVER READS 100"));
  // Each INSERT is read back at once: from the primary while the target has not
  // applied it yet, from the target once it has.
  std::string script;
  for (int i = 1; i <= 200; ++i)
    script += "INSERT INTO mine VALUES (" + std::to_string(i) + ");\nSELECT count(*) FROM mine WHERE id = " +
              std::to_string(i) + ";\n";
  const RunResult r = psql_script(client(), script, true);
  ASSERT_RUN_OK(r);
  EXPECT_EQ(count_occurrences(r.out, "1\n"), 200u) << "a session did not see its own write:\n" << r.out;
  EXPECT_EQ(count_occurrences(r.out, "0\n"), 0u);
}

// ---- configured cutover, fence, completion ------------------------------------------------------------

TEST_F(Cutover, WhenReadyCutsOverByItself) {
  start("when_ready = true\n");
  const auto deadline = Clock::now() + 30s;
  while (show_cutover().at("phase") != "cut_over" && Clock::now() < deadline) std::this_thread::sleep_for(200ms);
  EXPECT_EQ(show_cutover().at("phase"), "cut_over");
  EXPECT_EQ(port_via(client()), std::to_string(target_->port()));
}

TEST_F(Cutover, FenceMakesTheOldPrimaryReadOnlyAndRollbackLiftsIt) {
  both("CREATE TABLE fenced (id serial PRIMARY KEY, v text)");
  start("fence_old = \"read_only\"\n");
  ASSERT_RUN_OK(console("CUTOVER"));
  // A write that bypasses pgshift fails on the old primary ...
  const RunResult direct = psql_query(primary_->superuser(), "INSERT INTO fenced (v) VALUES ('bypass')");
  EXPECT_FALSE(direct.ok());
  EXPECT_TRUE(contains(direct.err, "read-only transaction"));
  // ... while the mirrored writes still land there.
  ASSERT_RUN_OK(psql_query(client(), "INSERT INTO fenced (v) VALUES ('through pgshift')"));
  const auto deadline = Clock::now() + 10s;
  while (primary_->sql("SELECT count(*) FROM fenced") != "1" && Clock::now() < deadline) std::this_thread::sleep_for(100ms);
  EXPECT_EQ(primary_->sql("SELECT count(*) FROM fenced"), "1") << "the reverse mirror wrote to the fenced server";
  EXPECT_TRUE(contains(show_cutover().at("fenced (read-only)"), "primary"));

  ASSERT_RUN_OK(console("CUTOVER ROLLBACK"));
  EXPECT_RUN_OK(psql_query(primary_->superuser(), "INSERT INTO fenced (v) VALUES ('direct again')"));
  const RunResult on_target = psql_query(target_->superuser(), "INSERT INTO fenced (v) VALUES ('bypass')");
  EXPECT_FALSE(on_target.ok()) << "the server switched away from is fenced in turn";
}

TEST_F(Cutover, CompleteStopsReverseMirroring) {
  both("CREATE TABLE done (v text)");
  start();
  ASSERT_RUN_OK(console("CUTOVER"));
  const RunResult early = console("CUTOVER ROLLBACK; CUTOVER");  // back and forth is allowed
  ASSERT_RUN_OK(early);
  const RunResult c = console("CUTOVER COMPLETE");
  ASSERT_RUN_OK(c);
  EXPECT_TRUE(contains(c.out, "phase|completed"));
  EXPECT_TRUE(contains(c.out, "receives mirrored writes|none"));
  ASSERT_RUN_OK(psql_query(client(), "INSERT INTO done VALUES ('only on the new primary')"));
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(target_->sql("SELECT count(*) FROM done"), "1");
  EXPECT_EQ(primary_->sql("SELECT count(*) FROM done"), "0") << "nothing is mirrored after COMPLETE";
  const RunResult again = console("CUTOVER ROLLBACK");
  EXPECT_FALSE(again.ok()) << "no rollback once completed";
}

}  // namespace
}  // namespace pgshift::it
