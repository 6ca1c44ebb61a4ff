// pgshift's log under hostile names: user, database and application names, server
// error messages and statement texts are the client's (or a server's) text. A client
// that puts a newline and a fake log line in them must not get that line into the log.
#include "harness.hpp"
#include "protocol/builder.hpp"
#include "raw_client.hpp"

namespace pgshift::it {
namespace {

constexpr const char* kForged = "2026-01-01 00:00:00.000 info close client=10.0.0.1:1 user=admin reason=forged";

// No line of `log` begins with the forged text.
bool has_forged_line(const std::string& log) {
  return log.find(std::string("\n") + kForged) != std::string::npos || log.starts_with(kForged);
}

class Log : public SharedClusterTest<Log> {
 public:
  static void prepare(PgCluster& cluster) { cluster.sql("CREATE TABLE users (id int, email text)"); }
};

// A logged-in session whose application_name carries a newline and terminal controls,
// and a login refused for a user whose name does (the server's message repeats it).
TEST_F(Log, ClientNamesAreEscaped) {
  Pgshift proxy(cluster());
  {
    RawClient client(proxy.port());
    client.login({.extra = {{"application_name", std::string("app\n") + kForged + "\x1b[2J"}}});
    client.terminate();
  }
  {
    RawClient client(proxy.port());
    client.send(startup_message({.user = std::string("evil\n") + kForged, .database = "db\r\nx", .extra = {}}));
    client.read_until_eof();
  }
  ASSERT_TRUE(eventually([&] { return proxy.log().find("reason=server refused") != std::string::npos; }));
  const std::string log = proxy.log();
  EXPECT_FALSE(has_forged_line(log)) << log;
  EXPECT_EQ(log.find('\x1b'), std::string::npos) << log;
  EXPECT_TRUE(contains(log, std::string("application_name=app\\n") + kForged + "\\x1b[2J tls=no"));
  EXPECT_TRUE(contains(log, std::string("user=evil\\n") + kForged + " database=db\\r\\nx"));
  EXPECT_TRUE(contains(log, "reason=server refused: role \"evil\\n"));
}

// The warning for a statement left unchanged quotes the statement: escaped too.
TEST_F(Log, StatementTextIsEscaped) {
  PgshiftOptions options;
  options.extra_config = "[[rename]]\ntable = \"users\"\nfrom = \"email\"\nto = \"email_address\"\nrenamed_on = \"primary\"\n";
  Pgshift proxy(cluster(), options);
  RawClient client(proxy.port());
  client.login();
  // A self-join of a renamed table: ambiguous, left unchanged with a warning.
  const std::string sql = std::string("SELECT email FROM users a, users b /*\n") + kForged + "\n*/";
  std::string query;
  protocol::append_query(query, sql);
  client.send(query);
  client.read_until_ready();
  ASSERT_TRUE(eventually([&] { return proxy.log().find("rewrite: left unchanged") != std::string::npos; }));
  const std::string log = proxy.log();
  EXPECT_FALSE(has_forged_line(log)) << log;
  EXPECT_TRUE(contains(log, std::string("users b /*\\n") + kForged + "\\n*/"));
}

}  // namespace
}  // namespace pgshift::it
