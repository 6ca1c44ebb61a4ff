// Password authentication relayed through the route under test: md5, SCRAM-SHA-256 and
// cleartext password, with libpq (psql) and with asyncpg's own implementation.
#include "harness.hpp"

namespace pgshift::it {
namespace {

class Auth : public RoutedTest<Auth> {
 public:
  static PgCluster::Options cluster_options() { return {.ssl = false, .hba = password_hba_lines(), .conf = {}}; }
  static void prepare(PgCluster& cluster) { create_password_accounts(cluster); }

 protected:
  void expect_login(const Account& account) {
    const ConnParams as_user = conn().as(account.user, account.password);
    auto result = psql_query(as_user, "SELECT current_user");
    EXPECT_RUN_OK(result);
    EXPECT_EQ(trim(result.out), account.user);
    EXPECT_TRUE(scenario_passes("connect_probe.py", "connect", as_user));
  }

  void expect_wrong_password_refused(const Account& account) {
    const ConnParams as_user = conn().as(account.user, account.password + "-wrong");
    const std::string message = "password authentication failed for user \"" + account.user + "\"";

    auto result = psql_query(as_user, "SELECT 1");
    EXPECT_EQ(result.exit_code, 2) << result.describe();
    EXPECT_TRUE(contains(result.err, message));

    // libpq does not show the SQLSTATE of a connection failure; asyncpg does.
    auto probe = python_client("connect_probe.py", as_user, {"connect"});
    EXPECT_EQ(probe.exit_code, 1) << probe.describe();
    EXPECT_TRUE(contains(probe.out, "refused sqlstate=28P01 message=" + message));
  }
};

TEST_P(Auth, Md5RightPassword) { expect_login(kMd5User); }
TEST_P(Auth, Md5WrongPassword) { expect_wrong_password_refused(kMd5User); }
TEST_P(Auth, ScramRightPassword) { expect_login(kScramUser); }
TEST_P(Auth, ScramWrongPassword) { expect_wrong_password_refused(kScramUser); }
TEST_P(Auth, CleartextRightPassword) { expect_login(kPlainUser); }
TEST_P(Auth, CleartextWrongPassword) { expect_wrong_password_refused(kPlainUser); }

// psql -w gives up when asked for a password it does not have: the client hangs up in
// the middle of authentication. Later logins are unaffected.
TEST_P(Auth, ClientWithoutPasswordGivesUp) {
  for (const Account* account : {&kMd5User, &kScramUser, &kPlainUser}) {
    SCOPED_TRACE(account->user);
    auto result = psql_query(conn().as(account->user), "SELECT 1");
    EXPECT_EQ(result.exit_code, 2) << result.describe();
    EXPECT_TRUE(contains(result.err, "no password supplied"));
  }
  expect_login(kScramUser);
}

// Many SCRAM logins in a row (each a full SASL exchange) all succeed.
TEST_P(Auth, RepeatedScramLogins) {
  const ConnParams as_user = conn().as(kScramUser.user, kScramUser.password);
  for (int i = 0; i < 20; ++i) {
    auto result = psql_query(as_user, "SELECT " + std::to_string(i));
    ASSERT_RUN_OK(result);
    EXPECT_EQ(trim(result.out), std::to_string(i));
  }
}

PGSHIFT_ROUTED_SUITE(Auth);

}  // namespace
}  // namespace pgshift::it
