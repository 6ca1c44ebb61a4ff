// [auth] mode = "pgshift": pgshift authenticates clients itself from an auth_file made
// of the primary's own pg_authid secrets, then logs in to the primary as the same user by
// SCRAM or MD5 pass-through. TLS on both legs and a server with
// password_encryption = scram-sha-256, as in production: libpq's defaults
// (channel_binding=prefer) must work, and channel_binding=require too (pgshift offers
// SCRAM-SHA-256-PLUS bound to its own certificate). Only meaningful through pgshift.
#include <chrono>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>
#include <thread>

#include <future>

#include <signal.h>

#include "harness.hpp"
#include "pgshift_auth.hpp"
#include "raw_client.hpp"
#include "two_servers.hpp"

namespace pgshift::it {
namespace {

constexpr const char* kClientSideTls = "SSL connection (protocol: TLS";

// Whether one line of `log` contains every one of `parts`.
bool has_line(const std::string& log, const std::vector<std::string>& parts) {
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    bool all = true;
    for (const std::string& p : parts) all = all && line.find(p) != std::string::npos;
    if (all) return true;
  }
  return false;
}

class PgshiftAuth : public SharedClusterTest<PgshiftAuth> {
 public:
  static PgCluster::Options cluster_options() {
    return scram_tls_cluster({"host all authchecker 127.0.0.1/32 scram-sha-256"});
  }
  static void prepare(PgCluster& cluster) {
    create_password_accounts(cluster);
    cluster.sql(std::string("CREATE ROLE authchecker SUPERUSER LOGIN PASSWORD '") + kAuthPassword + "'");
  }
  static constexpr const char* kAuthPassword = "auth-checker-secret";

  static void SetUpTestSuite() {
    SharedClusterTest<PgshiftAuth>::SetUpTestSuite();
    dir_ = std::make_unique<TempDir>("pgshift-it-auth");
    proxy_cert_ = make_self_signed_cert(dir_->path(), "pgshift");
    auth_file_ = write_auth_file(cluster(), dir_->path());
  }
  static void TearDownTestSuite() {
    dir_.reset();
    SharedClusterTest<PgshiftAuth>::TearDownTestSuite();
  }

 protected:
  static std::unique_ptr<Pgshift> start_pgshift(const std::string& client_mode = "require",
                                                const std::string& extra = "") {
    return std::make_unique<Pgshift>(cluster(), pgshift_auth_options(proxy_cert_, auth_file_, client_mode, extra));
  }

  // Logs in with psql and checks both legs: the client's (TLS or not), and that
  // the primary serves the session as the client's own user over TLS.
  static void expect_session(const ConnParams& conn, bool client_tls) {
    auto result = psql(conn, {"-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", "\\conninfo", "-c",
                              "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"});
    ASSERT_RUN_OK(result);
    EXPECT_EQ(result.out.find(kClientSideTls) != std::string::npos, client_tls) << result.out;
    EXPECT_TRUE(contains(result.out, "\n" + conn.user + "|t\n"));
  }

  // psql and asyncpg are both refused with 28P01, as PostgreSQL refuses them.
  static void expect_refused(const ConnParams& conn, const std::string& user) {
    const std::string message = "password authentication failed for user \"" + user + "\"";
    auto result = psql(conn, {"-A", "-t", "-c", "SELECT 1"});
    EXPECT_EQ(result.exit_code, 2) << result.describe();
    EXPECT_TRUE(contains(result.err, message));
    auto probe = python_client("connect_probe.py", conn, {"connect"});
    EXPECT_EQ(probe.exit_code, 1) << probe.describe();
    EXPECT_TRUE(contains(probe.out, "refused sqlstate=28P01 message=" + message));
  }

  static inline std::unique_ptr<TempDir> dir_;
  static inline CertPair proxy_cert_;
  static inline fs::path auth_file_;
};

// libpq's defaults (sslmode=require here, channel_binding=prefer): SCRAM-SHA-256-PLUS
// with pgshift, SCRAM pass-through to the primary.
TEST_F(PgshiftAuth, ScramWithDefaultChannelBinding) {
  auto proxy = start_pgshift();
  expect_session(proxy->conn().as(kScramUser.user, kScramUser.password).with_ssl("require"), true);
  EXPECT_TRUE(contains(proxy->log(), "user=" + kScramUser.user + ": logged in to the primary with SCRAM pass-through"));
  // psycopg 3 with its defaults (libpq: channel binding preferred); a cancel request
  // reaches the primary with the key pgshift gave the client.
  const ConnParams as_user = proxy->conn().as(kScramUser.user, kScramUser.password).with_ssl("require");
  EXPECT_TRUE(scenario_passes("psycopg_client.py", "pipeline", as_user));
  EXPECT_TRUE(scenario_passes("psycopg_client.py", "cancel", as_user));
}

TEST_F(PgshiftAuth, ScramWithChannelBindingRequired) {
  auto proxy = start_pgshift();
  ConnParams conn = proxy->conn().as(kScramUser.user, kScramUser.password).with_ssl("require");
  conn.channel_binding = "require";
  expect_session(conn, true);
  // asyncpg (no channel binding) logs in too.
  auto probe = python_client("connect_probe.py", proxy->conn().as(kScramUser.user, kScramUser.password).with_ssl("require"),
                             {"connect"});
  EXPECT_TRUE(probe.ok()) << probe.describe();
  EXPECT_TRUE(contains(probe.out, "connected as " + kScramUser.user + " ssl=true"));
}

TEST_F(PgshiftAuth, ScramWithoutClientTls) {
  auto proxy = start_pgshift("allow");
  expect_session(proxy->conn().as(kScramUser.user, kScramUser.password).with_ssl("disable"), false);
  // Channel binding needs TLS: libpq refuses to go on without it.
  ConnParams conn = proxy->conn().as(kScramUser.user, kScramUser.password).with_ssl("disable");
  conn.channel_binding = "require";
  auto result = psql(conn, {"-c", "SELECT 1"});
  EXPECT_EQ(result.exit_code, 2) << result.describe();
}

// An MD5 hash in the auth_file: MD5 with the client, MD5 pass-through to the primary.
TEST_F(PgshiftAuth, Md5PassThrough) {
  auto proxy = start_pgshift();
  expect_session(proxy->conn().as(kMd5User.user, kMd5User.password).with_ssl("require"), true);
  EXPECT_TRUE(contains(proxy->log(), "user=" + kMd5User.user + ": logged in to the primary with MD5 pass-through"));
}

TEST_F(PgshiftAuth, WrongPasswordAndUnknownUserRefused) {
  auto proxy = start_pgshift();
  expect_refused(proxy->conn().as(kScramUser.user, "not-the-password").with_ssl("require"), kScramUser.user);
  expect_refused(proxy->conn().as(kMd5User.user, "not-the-password").with_ssl("require"), kMd5User.user);
  expect_refused(proxy->conn().as("nobody", "whatever").with_ssl("require"), "nobody");
  const std::string log = proxy->log();
  EXPECT_TRUE(contains(log, "auth: client="));
  EXPECT_TRUE(contains(log, "user=nobody authentication failed (SCRAM-SHA-256, no such user)"));
  EXPECT_EQ(log.find("not-the-password"), std::string::npos);
  EXPECT_EQ(log.find("SCRAM-SHA-256$"), std::string::npos);
  // The right password still works afterwards.
  expect_session(proxy->conn().as(kScramUser.user, kScramUser.password).with_ssl("require"), true);
}

// The primary asks pwuser for a cleartext password, which SCRAM keys cannot give:
// without a [[primary.login]] the client is told; with one, pgshift uses it and says so.
TEST_F(PgshiftAuth, FallsBackToPrimaryLogin) {
  {
    auto proxy = start_pgshift();
    auto result = psql(proxy->conn().as(kPlainUser.user, kPlainUser.password).with_ssl("require"), {"-c", "SELECT 1"});
    EXPECT_EQ(result.exit_code, 2) << result.describe();
    EXPECT_TRUE(contains(result.err, "pgshift could not log in to the primary as user \"" + kPlainUser.user + "\""));
  }
  auto proxy = start_pgshift("require", "\n[[primary.login]]\nclient_user = \"" + kPlainUser.user +
                                            "\"\npassword = \"" + kPlainUser.password + "\"\n");
  expect_session(proxy->conn().as(kPlainUser.user, kPlainUser.password).with_ssl("require"), true);
  EXPECT_TRUE(contains(proxy->log(), "using [[primary.login]]"));
  EXPECT_TRUE(contains(proxy->log(), "logged in to the primary with [[primary.login]] user " + kPlainUser.user));
  EXPECT_EQ(proxy->log().find(kPlainUser.password), std::string::npos);
}

// The shadow's roles copied as pg_dumpall --roles-only copies them (the same
// verifiers): mirrored writes run there as the client's own user, with no
// [[shadow.login]] at all.
TEST_F(PgshiftAuth, MirroredWritesRunAsTheClientsOwnUser) {
  PgCluster shadow(cluster_options());
  shadow.sql(cluster().sql("SELECT string_agg(format('CREATE ROLE %I LOGIN PASSWORD %L;', rolname, rolpassword), E'\\n')"
                           " FROM pg_authid WHERE rolname IN ('" + kScramUser.user + "', '" + kMd5User.user + "')"));
  const std::string table =
      "CREATE TABLE who_wrote (n int, who text DEFAULT current_user); GRANT ALL ON who_wrote TO PUBLIC;";
  cluster().sql("DROP TABLE IF EXISTS who_wrote; " + table);
  shadow.sql(table);
  auto proxy = start_pgshift("require", "\n[shadow]\nhost = \"127.0.0.1\"\nport = " + std::to_string(shadow.port()) +
                                            "\n\n[shadow.tls]\nmode = \"require\"\n");
  int n = 0;
  for (const Account* account : {&kScramUser, &kMd5User}) {
    auto r = psql_query(proxy->conn().as(account->user, account->password).with_ssl("require"),
                        "INSERT INTO who_wrote (n) VALUES (" + std::to_string(++n) + ")");
    EXPECT_RUN_OK(r);
  }
  const std::string expected = "1:" + kScramUser.user + ",2:" + kMd5User.user;
  const std::string query = "SELECT coalesce(string_agg(n || ':' || who, ',' ORDER BY n), '') FROM who_wrote";
  EXPECT_EQ(cluster().sql(query), expected);
  std::string on_shadow;
  for (int i = 0; i < 100 && on_shadow != expected; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    on_shadow = shadow.sql(query);
  }
  EXPECT_EQ(on_shadow, expected) << tail_lines(proxy->log(), 40);
  EXPECT_TRUE(has_line(proxy->log(), {"shadow: opened", "user=" + kScramUser.user + " ", "with SCRAM pass-through"}));
  EXPECT_TRUE(has_line(proxy->log(), {"shadow: opened", "user=" + kMd5User.user + " ", "with MD5 pass-through"}));
}

// Exact mirroring needs each database's catalog, which pgshift reads as the session's
// user by pass-through when no [[primary.login]] / [[shadow.login]] is configured: a
// clock_timestamp() written through pgshift reaches the shadow as the primary's value.
TEST_F(PgshiftAuth, ExactMirroringReadsTheCatalogByPassThrough) {
  PgCluster shadow(cluster_options());
  shadow.sql(cluster().sql("SELECT format('CREATE ROLE %I LOGIN PASSWORD %L;', rolname, rolpassword)"
                           " FROM pg_authid WHERE rolname = '" + kScramUser.user + "'"));
  const std::string table = "CREATE TABLE stamped (n int PRIMARY KEY, at timestamptz); GRANT ALL ON stamped TO PUBLIC;";
  cluster().sql("DROP TABLE IF EXISTS stamped; " + table);
  shadow.sql(table);
  auto proxy = start_pgshift("require", "\n[shadow]\nhost = \"127.0.0.1\"\nport = " + std::to_string(shadow.port()) +
                                            "\n\n[shadow.tls]\nmode = \"require\"\n");
  EXPECT_RUN_OK(psql_query(proxy->conn().as(kScramUser.user, kScramUser.password).with_ssl("require"),
                           "INSERT INTO stamped VALUES (1, clock_timestamp())"));
  const std::string query = "SELECT coalesce(string_agg(n || '@' || at, ','), '') FROM stamped";
  const std::string on_primary = cluster().sql(query);
  EXPECT_TRUE(eventually([&] { return !shadow.sql(query).empty(); })) << tail_lines(proxy->log(), 40);
  EXPECT_EQ(shadow.sql(query), on_primary) << "the shadow ran clock_timestamp() itself";
  EXPECT_TRUE(contains(proxy->log(), "catalog: read database postgres on the primary server"));
}

// A shadow that refuses one user's pass-through (its MD5 hash differs there, and no
// [[shadow.login]] stands in) costs only that user's transactions: the shadow works,
// so the other users' writes keep being mirrored right after each refusal.
TEST_F(PgshiftAuth, ShadowRefusingOneUserMirrorsTheOthers) {
  PgCluster shadow(cluster_options());
  shadow.sql(cluster().sql("SELECT format('CREATE ROLE %I LOGIN PASSWORD %L;', rolname, rolpassword)"
                           " FROM pg_authid WHERE rolname = '" + kScramUser.user + "'"));
  shadow.sql("SET password_encryption = 'md5'; CREATE ROLE " + kMd5User.user + " LOGIN PASSWORD 'another-password'");
  const std::string table = "CREATE TABLE mirrored_for (n int, who text DEFAULT current_user);"
                            " GRANT ALL ON mirrored_for TO PUBLIC;";
  cluster().sql("DROP TABLE IF EXISTS mirrored_for; " + table);
  shadow.sql(table);
  auto proxy = start_pgshift("require", "\n[shadow]\nhost = \"127.0.0.1\"\nport = " + std::to_string(shadow.port()) +
                                            "\n\n[shadow.tls]\nmode = \"require\"\n");
  for (int round = 1; round <= 2; ++round) {
    for (const Account* account : {&kMd5User, &kScramUser}) {
      const int n = round * 10 + (account == &kMd5User ? 1 : 2);
      EXPECT_RUN_OK(psql_query(proxy->conn().as(account->user, account->password).with_ssl("require"),
                               "INSERT INTO mirrored_for (n) VALUES (" + std::to_string(n) + ")"));
    }
  }
  const std::string query = "SELECT coalesce(string_agg(n || ':' || who, ',' ORDER BY n), '') FROM mirrored_for";
  EXPECT_EQ(cluster().sql(query), "11:md5user,12:scramuser,21:md5user,22:scramuser");
  const std::string expected = "12:" + kScramUser.user + ",22:" + kScramUser.user;
  EXPECT_TRUE(eventually([&] { return shadow.sql(query) == expected; })) << shadow.sql(query) << "\n"
                                                                          << tail_lines(proxy->log(), 40);
  EXPECT_TRUE(has_line(proxy->log(), {"shadow: cannot open a connection", "password authentication failed"})) << tail_lines(proxy->log(), 40);
}

// A cutover moves each session as its own user (SCRAM pass-through to the new
// primary), and later sessions log in there the same way. The logins below
// (postgres, trusted) serve only the cutover's control connections: were they used
// for the session, it would run as postgres.
TEST_F(PgshiftAuth, CutoverMovesSessionsAsTheirOwnUser) {
  PgCluster target(cluster_options());
  target.sql(cluster().sql("SELECT string_agg(format('CREATE ROLE %I LOGIN PASSWORD %L;', rolname, rolpassword), E'\\n')"
                           " FROM pg_authid WHERE rolname = '" + kScramUser.user + "'"));
  TempDir state("pgshift-it-state");
  auto proxy = start_pgshift(
      "require", "\n[[primary.login]]\nclient_user = \"*\"\nuser = \"postgres\"\n\n[shadow]\nhost = \"127.0.0.1\"\nport = " +
                     std::to_string(target.port()) +
                     "\n\n[shadow.tls]\nmode = \"require\"\n\n[[shadow.login]]\nclient_user = \"*\"\nuser = \"postgres\"\n" + admin_config() +
                     "\n[cutover]\nstate_file = \"" + (state.path() / "state.json").string() + "\"\n");
  const ConnParams as_user = proxy->conn().as(kScramUser.user, kScramUser.password).with_ssl("require");
  const std::string where = "SELECT current_user || '@' || current_setting('port');\n";
  auto session = std::async(std::launch::async, [&] {
    return psql_script(as_user, where + "SELECT pg_sleep(2);\n" + where, true);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  ConnParams admin = proxy->conn("pgshift").with_ssl("require");
  admin.dbname = "pgshift";
  admin.password = kAdminPassword;
  const RunResult cut = psql(admin, {"-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", "CUTOVER"});
  EXPECT_RUN_OK(cut);
  const RunResult moved = session.get();
  ASSERT_RUN_OK(moved);
  const std::string before = kScramUser.user + "@" + std::to_string(cluster().port());
  const std::string after = kScramUser.user + "@" + std::to_string(target.port());
  EXPECT_TRUE(contains(moved.out, before + "\n"));
  EXPECT_TRUE(contains(moved.out, after + "\n")) << "the session was not moved as its own user";
  EXPECT_TRUE(has_line(proxy->log(), {"user=" + kScramUser.user, "the cutover's connection to the shadow with SCRAM pass-through"}));
  // A new session logs in to the new primary as its own user too.
  const RunResult fresh = psql_query(as_user, where);
  EXPECT_RUN_OK(fresh);
  EXPECT_EQ(trim(fresh.out), after);
}

// RELOAD and SIGHUP read the auth_file again, checked as at start: a user added to it
// logs in without a restart; a broken file is refused, naming file and reason, and
// the secrets already loaded keep working.
TEST_F(PgshiftAuth, AuthFileReloaded) {
  TempDir dir("pgshift-it-reload");
  const fs::path file = dir.path() / "userlist.txt";
  fs::copy_file(auth_file_, file);  // made before the role below existed
  cluster().sql("DROP ROLE IF EXISTS latecomer; SET password_encryption = 'scram-sha-256';"
                " CREATE ROLE latecomer LOGIN PASSWORD 'late-secret'");
  Pgshift proxy(cluster(), pgshift_auth_options(proxy_cert_, file, "require", admin_config()));
  const ConnParams late = proxy.conn().as("latecomer", "late-secret").with_ssl("require");
  expect_refused(late, "latecomer");

  ConnParams admin = proxy.conn("pgshift").with_ssl("require");
  admin.dbname = "pgshift";
  admin.password = kAdminPassword;
  auto console = [&](const std::string& sql) { return psql(admin, {"-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql}); };

  write_auth_file(cluster(), dir.path());  // now with latecomer
  const RunResult added = console("RELOAD");
  ASSERT_RUN_OK(added);
  EXPECT_TRUE(contains(added.out, "auth.users|")) << added.out;
  EXPECT_TRUE(contains(added.out, "1 added, 0 changed, 0 removed|yes")) << added.out;
  expect_session(late, true);

  // A malformed line: refused with the file, the line and the reason; nothing changes.
  write_file(file, read_file(file) + "\"broken\" \"md5" + std::string(32, 'z') + "\"\n");
  const RunResult bad = console("RELOAD");
  EXPECT_FALSE(bad.ok()) << bad.describe();
  EXPECT_TRUE(contains(bad.err, "auth.auth_file: " + file.string() + " line "));
  EXPECT_TRUE(contains(bad.err, "malformed MD5 hash"));
  EXPECT_TRUE(contains(bad.err, proxy.config_file().string()));
  expect_session(late, true);

  // SIGHUP, with a file others may read: refused in the log, the secrets stay.
  write_auth_file(cluster(), dir.path());
  fs::permissions(file, fs::perms::group_read | fs::perms::others_read, fs::perm_options::add);
  ASSERT_EQ(kill(proxy.pid(), SIGHUP), 0);
  EXPECT_TRUE(eventually([&] { return contains(proxy.log(), "reload by SIGHUP refused"); }));
  // Its reason is the next log line, which the asynchronous logger may write a moment later.
  EXPECT_TRUE(eventually([&] { return contains(proxy.log(), "is readable or writable by others than its owner"); }));
  expect_session(late, true);

  // Fixed and without latecomer again: after SIGHUP it is refused, as if never added.
  fs::copy_file(auth_file_, file, fs::copy_options::overwrite_existing);
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  ASSERT_EQ(kill(proxy.pid(), SIGHUP), 0);
  EXPECT_TRUE(eventually([&] { return contains(proxy.log(), "by SIGHUP: applied auth.users"); }));
  expect_refused(late, "latecomer");
  EXPECT_EQ(proxy.log().find("late-secret"), std::string::npos);
  cluster().sql("DROP ROLE latecomer");
}

// Users missing from the auth_file are looked up with auth_query on the primary,
// and the answer is kept cache_ttl_ms: a changed password counts once it expires.
TEST_F(PgshiftAuth, AuthQueryWithCache) {
  cluster().sql("DROP ROLE IF EXISTS rotating; CREATE ROLE rotating LOGIN PASSWORD 'first-password'");
  auto proxy = start_pgshift("require", std::string("auth_user = \"authchecker\"\nauth_password = \"") + kAuthPassword +
                                            "\"\ncache_ttl_ms = 1500\n");
  const ConnParams first = proxy->conn().as("rotating", "first-password").with_ssl("require");
  const ConnParams second = proxy->conn().as("rotating", "second-password").with_ssl("require");
  expect_session(first, true);
  cluster().sql("ALTER ROLE rotating PASSWORD 'second-password'");
  const auto changed = std::chrono::steady_clock::now();
  auto cached = psql(first, {"-A", "-t", "-c", "SELECT current_user"});
  const bool still_cached = std::chrono::steady_clock::now() - changed < std::chrono::milliseconds(1000);
  if (still_cached) {
    EXPECT_RUN_OK(cached);  // the cached answer still holds
  }
  std::this_thread::sleep_until(changed + std::chrono::milliseconds(1700));
  expect_refused(first, "rotating");
  expect_session(second, true);
  // A user nobody knows: asked, refused like a wrong password.
  expect_refused(proxy->conn().as("nobody_at_all", "x").with_ssl("require"), "nobody_at_all");
  const std::string log = proxy->log();
  for (const char* secret : {kAuthPassword, "first-password", "second-password", "SCRAM-SHA-256$"})
    EXPECT_EQ(log.find(secret), std::string::npos) << secret;
  cluster().sql("DROP ROLE rotating");
}

}  // namespace
}  // namespace pgshift::it
