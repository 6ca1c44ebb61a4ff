// TLS on each leg: client -> pgshift ([client_tls]) and pgshift -> PostgreSQL
// ([primary.tls]), separately and together. Only meaningful through pgshift, so not
// routed; every test starts its own pgshift with the modes it needs.
#include "harness.hpp"

namespace pgshift::it {
namespace {

constexpr const char* kClientSideTls = "SSL connection (protocol: TLS";

class Tls : public SharedClusterTest<Tls> {
 public:
  static PgCluster::Options cluster_options() { return {.ssl = true, .hba = password_hba_lines(), .conf = {}}; }
  static void prepare(PgCluster& cluster) { create_password_accounts(cluster); }

  static void SetUpTestSuite() {
    SharedClusterTest<Tls>::SetUpTestSuite();
    cert_dir_ = std::make_unique<TempDir>("pgshift-it-certs");
    proxy_cert_ = make_self_signed_cert(cert_dir_->path(), "pgshift");
  }
  static void TearDownTestSuite() {
    cert_dir_.reset();
    SharedClusterTest<Tls>::TearDownTestSuite();
  }

 protected:
  static std::unique_ptr<Pgshift> start_pgshift(const std::string& client_mode,
                                                const std::string& server_mode,
                                                const fs::path& server_ca = {},
                                                const PgCluster* primary = nullptr) {
    PgshiftOptions options;
    options.client_tls_mode = client_mode;
    if (client_mode != "disable") options.client_cert = proxy_cert_;
    options.server_tls_mode = server_mode;
    options.server_ca = server_ca;
    return std::make_unique<Pgshift>(primary ? *primary : cluster(), options);
  }

  // psql's \conninfo (shows whether the client leg is TLS) and, from the server,
  // "user|ssl" for the backend (whether the server leg is TLS).
  static RunResult session_info(const ConnParams& conn) {
    return psql(conn, {"-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", "\\conninfo", "-c",
                       "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"});
  }

  // Connects and checks both legs: `client_tls` for client -> pgshift, `server_ssl`
  // ("t"/"f") as PostgreSQL sees pgshift's connection.
  static void expect_session(const ConnParams& conn, bool client_tls, const std::string& server_ssl) {
    auto result = session_info(conn);
    ASSERT_RUN_OK(result);
    EXPECT_EQ(result.out.find(kClientSideTls) != std::string::npos, client_tls)
        << "client-side TLS expected: " << client_tls << "\n" << result.out;
    EXPECT_TRUE(contains(result.out, "\n" + conn.user + "|" + server_ssl + "\n"));
  }

  static void expect_refused(const ConnParams& conn) {
    auto result = session_info(conn);
    EXPECT_EQ(result.exit_code, 2) << result.describe();
    EXPECT_FALSE(result.timed_out);
  }

  static inline std::unique_ptr<TempDir> cert_dir_;
  static inline CertPair proxy_cert_;
};

// (a) client -> pgshift

TEST_F(Tls, ClientTlsRequiredAcceptsTlsClients) {
  auto proxy = start_pgshift("require", "disable");
  expect_session(proxy->conn().with_ssl("require"), true, "f");
  expect_session(proxy->conn().with_ssl("prefer"), true, "f");
}

TEST_F(Tls, ClientTlsRequiredRefusesPlaintextClients) {
  auto proxy = start_pgshift("require", "disable");
  expect_refused(proxy->conn().with_ssl("disable"));
  // pgshift keeps serving TLS clients afterwards.
  expect_session(proxy->conn().with_ssl("require"), true, "f");
}

TEST_F(Tls, ClientTlsAllowedAcceptsBoth) {
  auto proxy = start_pgshift("allow", "disable");
  expect_session(proxy->conn().with_ssl("disable"), false, "f");
  expect_session(proxy->conn().with_ssl("require"), true, "f");
}

TEST_F(Tls, ClientVerifiesPgshiftCertificate) {
  auto proxy = start_pgshift("require", "disable");
  ConnParams conn = proxy->conn().with_ssl("verify-full");
  conn.sslrootcert = proxy_cert_.cert.string();
  expect_session(conn, true, "f");

  // The cluster's certificate is not the one pgshift presents.
  conn.sslrootcert = cluster().cert_file().string();
  expect_refused(conn);
}

TEST_F(Tls, ClientTlsWithPasswordAuthentication) {
  auto proxy = start_pgshift("require", "disable");
  for (const Account* account : {&kMd5User, &kScramUser, &kPlainUser}) {
    SCOPED_TRACE(account->user);
    expect_session(proxy->conn().as(account->user, account->password).with_ssl("require"), true, "f");
  }
}

// (b) pgshift -> PostgreSQL

TEST_F(Tls, ServerTlsRequired) {
  auto proxy = start_pgshift("disable", "require");
  expect_session(proxy->conn().with_ssl("disable"), false, "t");
}

TEST_F(Tls, ServerTlsPreferredUsesTlsWhenOffered) {
  auto proxy = start_pgshift("disable", "prefer");
  expect_session(proxy->conn().with_ssl("disable"), false, "t");
}

TEST_F(Tls, ServerTlsVerifiesCertificate) {
  for (const char* mode : {"verify-ca", "verify-full"}) {
    SCOPED_TRACE(mode);
    auto proxy = start_pgshift("disable", mode, cluster().cert_file());
    expect_session(proxy->conn().with_ssl("disable"), false, "t");
  }
}

TEST_F(Tls, ServerTlsRejectsUnknownCertificateAuthority) {
  auto proxy = start_pgshift("disable", "verify-ca", proxy_cert_.cert);
  expect_refused(proxy->conn().with_ssl("disable"));
}

TEST_F(Tls, ServerTlsRequiredButServerWithoutTls) {
  PgCluster plain;
  auto proxy = start_pgshift("disable", "require", {}, &plain);
  expect_refused(proxy->conn().with_ssl("disable"));
}

TEST_F(Tls, ServerTlsWithPasswordAuthentication) {
  auto proxy = start_pgshift("disable", "require");
  for (const Account* account : {&kMd5User, &kScramUser, &kPlainUser}) {
    SCOPED_TRACE(account->user);
    expect_session(proxy->conn().as(account->user, account->password).with_ssl("disable"), false, "t");
  }
}

// (c) both legs

TEST_F(Tls, BothLegsTrustAndMd5) {
  auto proxy = start_pgshift("require", "require");
  expect_session(proxy->conn().with_ssl("require"), true, "t");
  expect_session(proxy->conn().as(kMd5User.user, kMd5User.password).with_ssl("require"), true, "t");
  expect_session(proxy->conn().as(kPlainUser.user, kPlainUser.password).with_ssl("require"), true, "t");
}

// SCRAM with TLS on both legs needs channel_binding=disable: with libpq's default
// (prefer) the client would bind to pgshift's certificate, which the server cannot
// verify (a documented limitation).
TEST_F(Tls, BothLegsScramWithoutChannelBinding) {
  auto proxy = start_pgshift("require", "require");
  ConnParams conn = proxy->conn().as(kScramUser.user, kScramUser.password).with_ssl("require");
  conn.channel_binding = "disable";
  expect_session(conn, true, "t");
}

}  // namespace
}  // namespace pgshift::it
