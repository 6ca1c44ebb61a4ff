// The operator interface, end to end: the SQL admin console's SHOW commands from
// psql and psycopg, the HTTP API against them, /metrics through promtool, the
// status page in headless Chromium while pgbench runs, hot reload (RELOAD and
// SIGHUP), KILL SESSION and `pgshift ctl`. A primary, a target (the [shadow])
// and pgshift in front with mirroring, the console and HTTP on.
#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "two_servers.hpp"

namespace pgshift::it {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kToken = "operator-test-token";
constexpr const char* kTokenEnv = "PGSHIFT_IT_HTTP_TOKEN";

bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

class Operator : public TwoServers {
 protected:
  void SetUp() override {
    setenv(kTokenEnv, kToken, 1);
    primary_ = std::make_unique<PgCluster>();
    target_ = std::make_unique<PgCluster>();
    for (const PgCluster* c : {primary_.get(), target_.get()})
      c->sql("CREATE TABLE users (id int PRIMARY KEY, email_address text); "
             "INSERT INTO users VALUES (1, 'a@example.com')");
  }

  // The configuration after [primary]; `extra` is appended (more sections).
  std::string config(const std::string& extra = "") const {
    std::ostringstream toml;
    toml << mirror_config(*target_, 1000, "read_sample_rate = 1.0\n")
         << "\n[shadow.compare]\nignore_columns = [\"pgbench_history.mtime\"]\n"
         << admin_config() << "http_listen = \"127.0.0.1:" << http_port_ << "\"\n"
         << "http_token_env = \"" << kTokenEnv << "\"\n"
         << "\n[cutover]\nstate_file = \"" << state_file() << "\"\n"
         << "max_lag_ms = 60000\ncatchup_timeout_ms = 30000\n"
         << extra;
    return toml.str();
  }

  Pgshift& start(const std::string& extra = "") {
    PgshiftOptions o;
    o.threads = 0;  // one I/O thread while mirroring, as by default
    o.extra_config = config(extra);
    proxy_ = std::make_unique<Pgshift>(*primary_, o);
    EXPECT_TRUE(wait_for([&] { return http_get("/api/version").ok(); }, 10s)) << "the HTTP endpoint does not answer";
    return *proxy_;
  }

  // Rewrites pgshift's configuration file: the harness's part as it was, then `extra`.
  void rewrite_config(const std::string& extra_sections, const std::string& log_level = "info") {
    std::string text = read_file(proxy_->config_file());
    text = std::regex_replace(text, std::regex("level = \"[a-z]+\""), "level = \"" + log_level + "\"");
    const auto cut = text.find("[[primary.login]]");
    ASSERT_NE(cut, std::string::npos);
    write_file(proxy_->config_file(), text.substr(0, cut) + config(extra_sections));
  }

  // Everything committed so far is applied on the shadow.
  bool mirrored() const {
    const auto s = show("SHADOW");
    return s.at("applied") != "0" && s.at("pending") == "0";
  }

  std::string base() const { return "http://127.0.0.1:" + std::to_string(http_port_); }

  RunResult http_get(const std::string& path, const fs::path& into = {}) const {
    const fs::path file = into.empty() ? state_dir_.path() / "body" : into;
    return python_client("operator_client.py", client(), {"fetch", base() + path, file.string()});
  }

  RunResult ctl(const std::vector<std::string>& args, std::chrono::seconds timeout = 120s) const {
    std::vector<std::string> argv{pgshift_binary().string(), "ctl", "--config", proxy_->config_file().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    RunOptions o;
    o.timeout = timeout;
    return run(argv, o);
  }

  std::string config_version() {
    const RunResult r = console("SHOW CONFIG");
    EXPECT_RUN_OK(r);
    std::smatch m;
    return std::regex_search(r.out, m, std::regex("config\\.version\\|(\\d+)")) ? m[1].str() : "";
  }

  void pgbench_init() const {
    for (const PgCluster* c : {primary_.get(), target_.get()}) {
      auto r = pgbench(c->superuser(), {"-i", "-s", "1", "-q"});
      ASSERT_RUN_OK(r);
    }
  }

  std::uint16_t http_port_ = free_port();
  TempDir handshake_{"pgshift-it-handshake"};
};

// ---- the SQL console -----------------------------------------------------------------------

TEST_F(Operator, ShowCommandsFromPsqlAndPsycopg) {
  start("\n[[rename]]\ntable = \"users\"\nfrom = \"email\"\nto = \"email_address\"\nrenamed_on = \"both\"\n");
  // Some traffic to count: a read, a write (mirrored and compared), a rewritten read.
  ASSERT_RUN_OK(psql_query(client(), "SELECT email FROM users"));
  ASSERT_RUN_OK(psql_query(client(), "INSERT INTO users VALUES (2, 'b@example.com')"));

  const auto status = show("STATUS");
  EXPECT_EQ(status.at("version"), "pgshift 0.1.0");
  EXPECT_EQ(status.at("phase"), "shadowing");
  EXPECT_TRUE(contains(status.at("serving"), "primary (127.0.0.1:" + std::to_string(primary_->port())));
  EXPECT_GE(std::stoi(status.at("statements")), 2);
  EXPECT_GE(std::stoi(status.at("statements_write")), 1);
  EXPECT_GE(std::stoi(status.at("rewritten")), 1);
  EXPECT_EQ(status.at("config_version"), "1");

  ASSERT_TRUE(wait_for([&] { return mirrored(); }, 10s));
  const auto shadow = show("SHADOW");
  for (const char* k : {"committed", "applied", "pending", "pending_bytes", "lag_s", "dropped", "failed", "compared",
                        "mismatches", "connected", "diverged", "worst"})
    EXPECT_TRUE(shadow.contains(k)) << k;

  const RunResult rules = console("SHOW RULES");
  ASSERT_RUN_OK(rules);
  EXPECT_TRUE(contains(rules.out, "0|public.users|email|email_address|both|contract"));
  const RunResult cfg = console("SHOW CONFIG");
  ASSERT_RUN_OK(cfg);
  EXPECT_TRUE(contains(cfg.out, "config.version|1|"));
  EXPECT_TRUE(contains(cfg.out, "admin.password|(set)|no"));
  EXPECT_FALSE(contains(cfg.out, kAdminPassword)) << "SHOW CONFIG must not show passwords";
  EXPECT_TRUE(contains(cfg.out, "log.level|info|yes"));
  EXPECT_RUN_OK(console("SHOW MISMATCHES"));
  EXPECT_TRUE(contains(console("SHOW VERSION").out, "pgshift 0.1.0"));
  EXPECT_TRUE(contains(console("SHOW CUTOVER").out, "phase|shadowing"));

  // A session that stays open shows with its figures.
  auto held = std::async(std::launch::async, [c = client()] {
    return psql_query(c, "SELECT 1; SELECT 2; SELECT pg_sleep(3)");
  });
  ASSERT_TRUE(wait_for([&] { return contains(console("SHOW SESSIONS").out, "|forwarding|primary|"); }, 10s));
  const RunResult sessions = console("SHOW SESSIONS");
  EXPECT_TRUE(contains(sessions.out, "|postgres|postgres|forwarding|primary|idle|")) << sessions.out;
  EXPECT_TRUE(contains(sessions.out, "|pgshift|pgshift|admin console|")) << sessions.out;
  EXPECT_RUN_OK(held.get());

  // The same from a driver, and each HTTP endpoint against it.
  const RunResult py = python_client("operator_client.py", admin(), {"shows", base()});
  EXPECT_RUN_OK(py);
  EXPECT_TRUE(contains(py.out, "ok shows"));

  // Any other database still goes to the primary.
  const RunResult port = psql_query(client(), "SHOW port");
  ASSERT_RUN_OK(port);
  EXPECT_EQ(trim(port.out), std::to_string(primary_->port()));
}

TEST_F(Operator, ConsoleRefusesWrongPasswordAndOtherUsers) {
  start();
  ConnParams wrong = admin();
  wrong.password = "not the password";
  const RunResult r = psql(wrong, {"-c", "SHOW STATUS"});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.err, "password authentication failed for user \"pgshift\""));
  ConnParams other = admin();
  other.user = "postgres";
  const RunResult o = psql(other, {"-c", "SHOW STATUS"});
  EXPECT_FALSE(o.ok());
  EXPECT_TRUE(contains(o.err, "password authentication failed for user \"postgres\""));
  EXPECT_TRUE(contains(proxy_->log(), "authentication failed"));
  EXPECT_RUN_OK(console("SHOW STATUS"));
}

TEST_F(Operator, KillSession) {
  start();
  auto victim = std::async(std::launch::async, [c = client()] { return psql_query(c, "SELECT pg_sleep(30)"); });
  std::string id;
  ASSERT_TRUE(wait_for(
      [&] {
        std::smatch m;
        const std::string out = console("SHOW SESSIONS").out;
        if (!std::regex_search(out, m, std::regex("(\\d+)\\|[^|]*\\|postgres\\|postgres\\|forwarding"))) return false;
        id = m[1].str();
        return true;
      },
      10s));
  const auto began = Clock::now();
  EXPECT_RUN_OK(console("KILL SESSION " + id));
  const RunResult r = victim.get();
  EXPECT_FALSE(r.ok()) << "the killed session's client must see its connection end";
  EXPECT_LT(Clock::now() - began, 10s);
  EXPECT_TRUE(contains(proxy_->log(), "killed by the admin console"));
  const RunResult again = console("KILL SESSION " + id);
  EXPECT_FALSE(again.ok());
  EXPECT_TRUE(contains(again.err, "no session " + id));
}

// ---- HTTP and metrics ------------------------------------------------------------------------

TEST_F(Operator, HttpNeedsTheTokenToChangeState) {
  start();
  const RunResult r = python_client("operator_client.py", client(), {"http_auth", base(), kToken});
  EXPECT_RUN_OK(r);
  EXPECT_TRUE(contains(proxy_->log(), "refused without a valid bearer token"));
}

TEST_F(Operator, MetricsPassPromtool) {
  start();
  const ConnParams c = client();
  ASSERT_RUN_OK(psql_query(c, "SELECT 1"));
  ASSERT_RUN_OK(psql_query(c, "INSERT INTO users VALUES (3, 'c@example.com')"));
  ASSERT_TRUE(wait_for([&] { return mirrored(); }, 10s));
  const fs::path file = state_dir_.path() / "metrics.txt";
  ASSERT_RUN_OK(http_get("/metrics", file));
  const std::string text = read_file(file);
  RunOptions o;
  o.input = text;
  const RunResult check = run({"/usr/bin/promtool", "check", "metrics"}, o);
  EXPECT_RUN_OK(check);
  for (const char* name :
       {"pgshift_build_info{version=\"0.1.0\"} 1", "pgshift_sessions ", "pgshift_statements_total{kind=\"write\"}",
        "pgshift_statements_total{kind=\"read_only\"}", "pgshift_transactions_total ",
        "pgshift_statements_rewritten_total ", "pgshift_statements_refused_total ", "pgshift_mirror_committed_total ",
        "pgshift_mirror_applied_total ", "pgshift_mirror_dropped_total 0", "pgshift_mirror_pending_transactions 0",
        "pgshift_mirror_lag_seconds ", "pgshift_shadow_comparisons_total ", "pgshift_shadow_mismatches_total 0",
        "pgshift_shadow_diverged 0", "pgshift_cutover_phase{phase=\"shadowing\"} 1",
        "pgshift_cutover_pause_seconds_bucket", "pgshift_client_bytes_received_total ",
        "pgshift_client_bytes_sent_total ", "pgshift_config_version 1"})
    EXPECT_TRUE(contains(text, name)) << name;
  EXPECT_FALSE(contains(text, "fingerprint")) << "no fingerprint labels";
}

// ---- the status page -------------------------------------------------------------------------

// Headless Chromium's DOM of the page (after `budget` of virtual time: the page's
// requests and timers run), and optionally a screenshot.
RunResult chromium(const std::string& url, const fs::path& profile, const std::string& what,
                   const fs::path& screenshot = {}) {
  std::vector<std::string> argv{"/usr/bin/chromium",
                                "--headless",
                                "--no-sandbox",
                                "--disable-gpu",
                                "--disable-quic",
                                "--no-first-run",
                                "--disable-background-networking",
                                "--disable-component-update",
                                "--disable-sync",
                                "--disable-dev-shm-usage",
                                "--user-data-dir=" + profile.string(),
                                "--window-size=1400,1250",
                                "--virtual-time-budget=4000",
                                "--run-all-compositor-stages-before-draw"};
  if (what == "screenshot") argv.push_back("--screenshot=" + screenshot.string());
  else argv.push_back("--dump-dom");
  argv.push_back(url);
  RunOptions o;
  o.timeout = 90s;
  return run(argv, o);
}

// The text of the first element whose tag holds `marker`, up to its next '<'.
std::string element_text(const std::string& dom, const std::string& marker) {
  const auto at = dom.find(marker);
  if (at == std::string::npos) return "";
  const auto open = dom.find('>', at);
  const auto close = dom.find('<', open);
  return open == std::string::npos || close == std::string::npos ? "" : dom.substr(open + 1, close - open - 1);
}

// The value of the first attribute `name="` after `marker`.
std::string attribute_after(const std::string& dom, const std::string& marker, const std::string& name) {
  const auto at = dom.find(marker);
  if (at == std::string::npos) return "";
  const auto value = dom.find(name, at);
  if (value == std::string::npos) return "";
  const auto end = dom.find('"', value + name.size());
  return end == std::string::npos ? "" : dom.substr(value + name.size(), end - value - name.size());
}

TEST_F(Operator, StatusPageInChromiumUnderPgbench) {
  if (!fs::exists("/usr/bin/chromium")) GTEST_SKIP() << "Debian chromium is not installed (scripts/deps)";
  pgbench_init();
  start();
  // Three Chromium runs follow; on a loaded machine each may take 10 s or more,
  // so pgbench runs until they are done (and lightly: the page needs traffic, not load).
  BackgroundPgbench bench(client(), {"-n", "-c", "4", "-j", "2", "-R", "200", "-T", "120"});
  std::this_thread::sleep_for(8s);  // samples to draw
  TempDir profile("pgshift-it-chromium");
  const RunResult first = chromium(base() + "/", profile.path(), "dom");
  ASSERT_RUN_OK(first);
  std::this_thread::sleep_for(2s);
  const RunResult second = chromium(base() + "/", profile.path(), "dom");
  ASSERT_RUN_OK(second);
  const fs::path artifacts = fs::path(PGSHIFT_BINARY).parent_path() / "test-artifacts";
  fs::create_directories(artifacts);
  const fs::path png = artifacts / "status-page.png";
  const RunResult shot = chromium(base() + "/", profile.path(), "screenshot", png);
  EXPECT_RUN_OK(shot);
  EXPECT_TRUE(fs::exists(png) && fs::file_size(png) > 10000) << png;
  std::cout << "[status page] screenshot: " << png.string() << "\n";

  // (Plain searches: std::regex recurses per character and overflows the stack
  // on a page this size.)
  const std::string& dom = first.out;
  EXPECT_TRUE(contains(dom, "<span id=\"phase\" class=\"shadowing\">shadowing</span>"));
  EXPECT_EQ(element_text(dom, "id=\"sessions\""), "4") << "pgbench's four sessions";
  const std::string points = attribute_after(dom, "id=\"chart-tps\"", "points=\"");
  EXPECT_GT(std::count(points.begin(), points.end(), ','), 3) << "a chart with points: " << points;
  EXPECT_TRUE(contains(dom, "pgshift started")) << "the phase timeline";
  EXPECT_NE(first.out, second.out) << "the page keeps updating";
  const std::string a = element_text(first.out, "id=\"samples\""), b = element_text(second.out, "id=\"samples\"");
  ASSERT_FALSE(a.empty() || b.empty());
  EXPECT_GT(std::stoi(b), std::stoi(a)) << "one sample a second";
  ASSERT_TRUE(pgbench_clean(bench.finish()));
}

// ---- reload ----------------------------------------------------------------------------------

TEST_F(Operator, ReloadAddsARenameRuleForOpenSessions) {
  start();
  auto session = std::async(std::launch::async, [this] {
    return python_client("operator_client.py", client(), {"renamed", handshake_.path().string()});
  });
  ASSERT_TRUE(wait_for([&] { return fs::exists(handshake_.path() / "renamed.ready"); }, 30s));
  rewrite_config("\n[[rename]]\ntable = \"users\"\nfrom = \"email\"\nto = \"email_address\"\nrenamed_on = \"both\"\n");
  const RunResult r = console("RELOAD");
  ASSERT_RUN_OK(r);
  EXPECT_TRUE(contains(r.out, "version|1|2|yes"));
  EXPECT_TRUE(contains(r.out, "rename[0]|(not set)|public.users: email -> email_address"));
  write_file(handshake_.path() / "go", "");
  const RunResult s = session.get();
  EXPECT_RUN_OK(s);
  EXPECT_TRUE(contains(s.out, "ok renamed"));
  EXPECT_TRUE(contains(console("SHOW RULES").out, "public.users|email|email_address"));
  EXPECT_EQ(config_version(), "2");
  EXPECT_TRUE(contains(proxy_->log(), "reload: configuration version 2"));
  // A new session too, and the shadow gets the rewritten write.
  ASSERT_RUN_OK(psql_query(client(), "UPDATE users SET email = 'new@example.com' WHERE id = 1"));
  EXPECT_TRUE(wait_for([&] { return target_->sql("SELECT email_address FROM users WHERE id = 1") == "new@example.com"; },
                       10s));
}

TEST_F(Operator, BrokenFileChangesNothing) {
  start("\n[[rename]]\ntable = \"users\"\nfrom = \"email\"\nto = \"email_address\"\nrenamed_on = \"both\"\n");
  const std::string good = read_file(proxy_->config_file());
  write_file(proxy_->config_file(), good + "\n[proxy_typo]\nx = 1\n");
  std::string text = read_file(proxy_->config_file());
  text = std::regex_replace(text, std::regex("max_lag_ms = 60000"), "max_lag_ms = -5");
  write_file(proxy_->config_file(), text);
  const RunResult r = console("RELOAD");
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.err, "problem(s) in " + proxy_->config_file().string() + "; nothing changed"));
  EXPECT_TRUE(contains(r.err, proxy_->config_file().string() + ": proxy_typo: unknown section"));
  EXPECT_TRUE(contains(r.err, proxy_->config_file().string() + ": cutover.max_lag_ms: must be between"));
  EXPECT_EQ(config_version(), "1");
  EXPECT_TRUE(contains(console("SHOW RULES").out, "public.users|email|email_address"));
  ASSERT_RUN_OK(psql_query(client(), "SELECT email FROM users"));  // still rewritten

  // SIGHUP: the same, in the log.
  ASSERT_EQ(kill(proxy_->pid(), SIGHUP), 0);
  EXPECT_TRUE(wait_for([&] { return contains(proxy_->log(), "reload by SIGHUP refused"); }, 10s));
  EXPECT_EQ(config_version(), "1");

  // ctl reload prints every problem and fails.
  const RunResult c = ctl({"reload"});
  EXPECT_EQ(c.exit_code, 2) << c.describe();  // ctl reads the same broken file itself
  EXPECT_TRUE(contains(c.err, "proxy_typo: unknown section"));

  // Fixed, it applies; the listen address cannot change and is named.
  text = std::regex_replace(good, std::regex("listen = \"127.0.0.1:\\d+\""), "listen = \"127.0.0.1:1\"");
  write_file(proxy_->config_file(), text);
  const RunResult ok = console("RELOAD");
  ASSERT_RUN_OK(ok);
  EXPECT_TRUE(contains(ok.out, "proxy.listen|127.0.0.1:" + std::to_string(proxy_->port()) +
                                   "|127.0.0.1:1|no: needs a restart"));
  EXPECT_EQ(config_version(), "2");
  EXPECT_EQ(trim(psql_query(client(), "SHOW port").out), std::to_string(primary_->port()));
  write_file(proxy_->config_file(), good);  // for ctl and the harness's shutdown
}

TEST_F(Operator, LogLevelChangesLive) {
  start();
  ASSERT_RUN_OK(psql_query(client(), "SELECT 1"));
  EXPECT_TRUE(contains(proxy_->log(), " info open client="));
  rewrite_config("", "warn");
  const RunResult r = ctl({"reload"});
  ASSERT_RUN_OK(r);
  EXPECT_TRUE(contains(r.out, "log.level: info -> warn"));
  const std::size_t opens = count_occurrences(proxy_->log(), " open client=");
  ASSERT_RUN_OK(psql_query(client(), "SELECT 1"));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(count_occurrences(proxy_->log(), " open client="), opens) << "info lines after the switch to warn";
  rewrite_config("", "debug");
  ASSERT_EQ(kill(proxy_->pid(), SIGHUP), 0);
  EXPECT_TRUE(wait_for([&] { return contains(proxy_->log(), "reload: configuration version 3"); }, 10s));
  ASSERT_RUN_OK(psql_query(client(), "SELECT 1"));
  EXPECT_TRUE(wait_for([&] { return count_occurrences(proxy_->log(), " open client=") > opens; }, 5s))
      << "info lines again after SIGHUP";
  ASSERT_RUN_OK(console("SHOW STATUS"));
  EXPECT_TRUE(wait_for([&] { return contains(proxy_->log(), " debug admin: console"); }, 5s)) << "debug lines";
}

// ---- pgshift ctl -----------------------------------------------------------------------------

TEST_F(Operator, CtlAgainstARunningInstance) {
  pgbench_init();
  start();
  const RunResult status = ctl({"status"});
  ASSERT_RUN_OK(status);
  EXPECT_TRUE(contains(status.out, "phase"));
  EXPECT_TRUE(contains(status.out, "shadowing"));
  EXPECT_TRUE(contains(status.out, "uptime_s"));
  EXPECT_TRUE(contains(status.out, "shadow\n"));

  auto open = std::async(std::launch::async, [c = client()] { return psql_query(c, "SELECT pg_sleep(2)"); });
  ASSERT_TRUE(wait_for([&] { return contains(ctl({"sessions"}).out, "forwarding"); }, 10s));
  const RunResult sessions = ctl({"sessions"});
  EXPECT_TRUE(contains(sessions.out, "id  client")) << sessions.out;
  EXPECT_RUN_OK(open.get());

  const RunResult mismatches = ctl({"mismatches"});
  EXPECT_RUN_OK(mismatches);
  EXPECT_TRUE(contains(mismatches.out, "fingerprint"));

  const RunResult reload = ctl({"reload"});
  EXPECT_RUN_OK(reload);
  EXPECT_TRUE(contains(reload.out, "configuration version 2 in effect"));

  const RunResult dry = ctl({"cutover", "--dry-run"});
  EXPECT_RUN_OK(dry);
  EXPECT_TRUE(contains(dry.out, "a cutover would start now"));

  const RunResult abort = ctl({"abort"});
  EXPECT_EQ(abort.exit_code, 1) << abort.describe();
  EXPECT_TRUE(contains(abort.err, "no switch is in progress"));

  // A cutover under pgbench, each step printed with its duration, then back.
  // Throttled, so that the mirror keeps up on a busy machine and the switch
  // finds pgbench's sessions still there; it runs until the rollback is done.
  BackgroundPgbench bench(client(), {"-n", "-c", "4", "-j", "2", "-R", "200", "-T", "120"});
  std::this_thread::sleep_for(5s);
  const RunResult cut = ctl({"cutover"});
  ASSERT_RUN_OK(cut);
  for (const char* step : {"preparing", "pausing", "draining", "catching up", "sequences", "staging", "swapping"})
    EXPECT_TRUE(std::regex_search(cut.out, std::regex(std::string("\\n  ") + step + " +[0-9.]+ ms"))) << step << "\n"
                                                                                                   << cut.out;
  EXPECT_TRUE(contains(cut.out, "serving shadow; 4 session(s) moved"));
  std::this_thread::sleep_for(3s);
  const RunResult back = ctl({"rollback"});
  ASSERT_RUN_OK(back);
  EXPECT_TRUE(contains(back.out, "serving primary"));
  ASSERT_TRUE(pgbench_clean(bench.finish()));

  // A switch that aborts: a transaction stays open past drain_timeout_ms.
  rewrite_config("drain_timeout_ms = 500\n");
  ASSERT_RUN_OK(ctl({"reload"}));
  auto txn = std::async(std::launch::async, [c = client()] {
    return psql_query(c, "BEGIN; SELECT pg_sleep(6); COMMIT");
  });
  std::this_thread::sleep_for(1s);
  const RunResult aborted = ctl({"cutover"});
  EXPECT_EQ(aborted.exit_code, 1) << aborted.describe();
  EXPECT_TRUE(contains(aborted.err, "cutover aborted"));
  EXPECT_TRUE(contains(aborted.err, "drain_timeout_ms")) << aborted.err;
  EXPECT_RUN_OK(txn.get());

  const RunResult complete = ctl({"complete"});
  EXPECT_EQ(complete.exit_code, 1) << "COMPLETE needs the cut_over phase";
  EXPECT_TRUE(contains(complete.err, "needs the cut_over phase"));
}

}  // namespace
}  // namespace pgshift::it
