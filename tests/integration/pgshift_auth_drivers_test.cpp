// [auth] mode = "pgshift" with drivers that do not use libpq: pgjdbc (JDBC) and
// node-postgres, each with its own SCRAM and MD5 code and its default settings, against
// the set-up production runs (TLS on both legs, password_encryption = scram-sha-256).
// pgshift requires TLS from clients here, so every login that works went over TLS.
// Only meaningful through pgshift.
#include <memory>
#include <string>

#include "drivers.hpp"
#include "harness.hpp"
#include "pgshift_auth.hpp"

namespace pgshift::it {
namespace {

class PgshiftAuthDrivers : public SharedClusterTest<PgshiftAuthDrivers> {
 public:
  static PgCluster::Options cluster_options() { return scram_tls_cluster(); }
  static void prepare(PgCluster& cluster) { create_password_accounts(cluster); }

  static void SetUpTestSuite() {
    SharedClusterTest<PgshiftAuthDrivers>::SetUpTestSuite();
    dir_ = std::make_unique<TempDir>("pgshift-it-drivers");
    cert_ = make_self_signed_cert(dir_->path(), "pgshift");
    proxy_ = std::make_unique<Pgshift>(cluster(), pgshift_auth_options(cert_, write_auth_file(cluster(), dir_->path())));
  }
  static void TearDownTestSuite() {
    proxy_.reset();
    dir_.reset();
    SharedClusterTest<PgshiftAuthDrivers>::TearDownTestSuite();
  }

 protected:
  void TearDown() override {
    if (HasFailure() && proxy_) std::cerr << "---- pgshift log ----\n" << tail_lines(proxy_->log(), 60) << "\n----\n";
    SharedClusterTest<PgshiftAuthDrivers>::TearDown();
  }

  // As `user` with `password`. node-postgres needs to be asked for TLS: it gets pgshift's
  // certificate to verify against (its sslmode=require); pgjdbc's default (prefer)
  // takes TLS by itself.
  static ConnParams as(const std::string& user, const std::string& password) {
    ConnParams conn = proxy_->conn().as(user, password);
    conn.sslrootcert = cert_.cert.string();
    return conn;
  }

  // Both drivers log in as `account` and run a query; the primary serves them over TLS.
  static void expect_login(const Account& account) {
    const std::string expected = "connected as " + account.user + " ssl=true answer=42\n";
    for (const RunResult& r : {jdbc_probe(as(account.user, account.password)), node_probe(as(account.user, account.password))}) {
      EXPECT_RUN_OK(r);
      EXPECT_TRUE(contains(r.out, expected)) << r.describe();
    }
  }

  // Both drivers are refused with 28P01, as PostgreSQL refuses them.
  static void expect_refused(const std::string& user, const std::string& password) {
    const std::string expected =
        "refused sqlstate=28P01 message=FATAL: password authentication failed for user \"" + user + "\"";
    const RunResult jdbc = jdbc_probe(as(user, password));
    EXPECT_EQ(jdbc.exit_code, 1) << jdbc.describe();
    EXPECT_TRUE(contains(jdbc.out, expected)) << jdbc.describe();
    const RunResult node = node_probe(as(user, password));
    EXPECT_EQ(node.exit_code, 1) << node.describe();
    // node-postgres's message is the server's, without the severity.
    EXPECT_TRUE(contains(node.out, "refused sqlstate=28P01 message=password authentication failed for user \"" + user + "\""))
        << node.describe();
  }

  static inline std::unique_ptr<TempDir> dir_;
  static inline CertPair cert_;
  static inline std::unique_ptr<Pgshift> proxy_;
};

// SCRAM with the client (pgjdbc and node-postgres send no channel binding), SCRAM
// pass-through to the primary.
TEST_F(PgshiftAuthDrivers, ScramUserLogsIn) {
  expect_login(kScramUser);
  EXPECT_TRUE(contains(proxy_->log(), "user=" + kScramUser.user + ": logged in to the primary with SCRAM pass-through"));
}

// An MD5 hash in the auth_file: MD5 with the drivers, MD5 pass-through to the primary.
TEST_F(PgshiftAuthDrivers, Md5UserLogsIn) {
  expect_login(kMd5User);
  EXPECT_TRUE(contains(proxy_->log(), "user=" + kMd5User.user + ": logged in to the primary with MD5 pass-through"));
}

// MD5 and SCRAM users one after the other on the same pgshift: each gets its own method.
TEST_F(PgshiftAuthDrivers, Md5AndScramUsersMixed) {
  for (const Account* account : {&kMd5User, &kScramUser, &kMd5User}) {
    SCOPED_TRACE(account->user);
    expect_login(*account);
  }
}

TEST_F(PgshiftAuthDrivers, WrongPasswordRefused) {
  expect_refused(kScramUser.user, "not-the-password");
  expect_refused(kMd5User.user, "not-the-password");
  expect_refused("nobody", "whatever");
  EXPECT_EQ(proxy_->log().find("not-the-password"), std::string::npos);
  expect_login(kScramUser);  // the right password still works afterwards
}

}  // namespace
}  // namespace pgshift::it
