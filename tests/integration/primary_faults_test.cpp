// Faults on the primary's side, through pgshift: the primary killed in the middle of
// a transaction, restarted while sessions are idle, and a server that speaks some
// protocol and then sends garbage. Clients get a clear error and can connect again
// once the server is back; pgshift stays up; only the connections involved close.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <functional>
#include <thread>

#include "harness.hpp"
#include "protocol/builder.hpp"
#include "protocol/frame.hpp"
#include "raw_client.hpp"

namespace pgshift::it {
namespace {

using namespace std::chrono_literals;

// The last message is a FATAL ErrorResponse with `sqlstate`; returns its message.
std::string last_fatal(const std::vector<BackendMessage>& messages, const std::string& sqlstate) {
  EXPECT_FALSE(messages.empty());
  if (messages.empty()) return {};
  EXPECT_EQ(messages.back().type, 'E') << describe(messages);
  auto fields = error_fields(messages.back().body);
  EXPECT_EQ(fields['S'], "FATAL") << describe(messages);
  EXPECT_EQ(fields['C'], sqlstate) << describe(messages);
  return fields['M'];
}

// Sends a simple query; returns every message up to the end of the connection.
std::vector<BackendMessage> query_until_eof(RawClient& client, const std::string& sql) {
  std::string q;
  protocol::append_query(q, sql);
  client.send(q);
  return client.read_until_eof();
}

class PrimaryFaults : public SharedClusterTest<PrimaryFaults> {
 public:
  // The clusters run with synchronous_commit off: a crash loses what the WAL writer
  // had not written yet, so the table is checkpointed before anything crashes.
  static void prepare(PgCluster& cluster) { cluster.sql("CREATE TABLE t (id int); CHECKPOINT"); }
};

// The backend serving a transaction is killed (SIGKILL): PostgreSQL restarts all
// backends by itself. The client gets pgshift's 08006 (the server said nothing), a
// second idle session gets the server's own message, pgshift stays up, and once the
// server has recovered new sessions work and the transaction is gone.
TEST_F(PrimaryFaults, BackendKilledMidTransaction) {
  Pgshift proxy(cluster());
  RawClient in_txn(proxy.port()), idle(proxy.port());
  in_txn.login();
  idle.login();
  in_txn.query_value("BEGIN; INSERT INTO t VALUES (1); SELECT 1");
  ASSERT_EQ(kill(static_cast<pid_t>(in_txn.backend_pid()), SIGKILL), 0);

  const std::string why = last_fatal(query_until_eof(in_txn, "INSERT INTO t VALUES (2)"), "08006");
  EXPECT_TRUE(contains(why, "pgshift: lost the connection to the server"));
  // The other backend is told by PostgreSQL (crash of another server process); it
  // may come as a WARNING or a FATAL, and pgshift adds its 08006 only without a FATAL.
  const auto idle_messages = idle.read_until_eof();
  ASSERT_FALSE(idle_messages.empty());
  EXPECT_EQ(idle_messages.back().type, 'E') << describe(idle_messages);

  ASSERT_TRUE(eventually([&] { return psql_query(proxy.conn(), "SELECT count(*) FROM t").ok(); }, 60s));
  auto count = psql_query(proxy.conn(), "SELECT count(*) FROM t");
  EXPECT_RUN_OK(count);
  EXPECT_EQ(trim(count.out), "0");
  EXPECT_TRUE(contains(proxy.log(), "reason=server closed the connection"));
}

// The whole server stops hard (immediate shutdown) during a transaction, then comes
// back: meanwhile pgshift refuses new sessions cleanly, afterwards they work again.
TEST_F(PrimaryFaults, PrimaryCrashesAndComesBack) {
  Pgshift proxy(cluster());
  RawClient in_txn(proxy.port());
  in_txn.login();
  in_txn.query_value("BEGIN; INSERT INTO t VALUES (1); SELECT 1");
  cluster().stop(/*immediate=*/true);
  const auto messages = query_until_eof(in_txn, "INSERT INTO t VALUES (2)");
  EXPECT_TRUE(contains(last_fatal(messages, "08006"), "lost the connection to the server"));

  auto down = psql_query(proxy.conn(), "SELECT 1");
  EXPECT_EQ(down.exit_code, 2) << down.describe();
  EXPECT_TRUE(contains(down.err, "FATAL:  pgshift: could not connect to server"));

  cluster().start();
  auto back = psql_query(proxy.conn(), "SELECT count(*) FROM t");
  EXPECT_RUN_OK(back);
  EXPECT_EQ(trim(back.out), "0");
}

// A restart (fast shutdown) while sessions are idle: each gets the server's own FATAL
// (57P01), forwarded once, without a second error from pgshift; clients reconnect.
TEST_F(PrimaryFaults, PrimaryRestartsWhileSessionsAreIdle) {
  Pgshift proxy(cluster());
  std::vector<RawClient> idle;
  for (int i = 0; i < 4; ++i) {
    idle.emplace_back(proxy.port());
    idle.back().login();
  }
  cluster().stop();
  for (RawClient& c : idle) {
    const auto messages = c.read_until_eof();
    EXPECT_TRUE(contains(last_fatal(messages, "57P01"), "terminating connection due to administrator command"));
    EXPECT_EQ(std::count_if(messages.begin(), messages.end(), [](const BackendMessage& m) { return m.type == 'E'; }), 1)
        << describe(messages);
  }
  cluster().start();
  for (int i = 0; i < 4; ++i) {
    RawClient again(proxy.port());
    again.login();
    EXPECT_EQ(again.query_value("SELECT 'back'"), "back");
  }
}

// ---- a server that lies -------------------------------------------------------------

// A fake primary on loopback: logs every connection in (trust), answers each Query
// with CommandComplete and ReadyForQuery, except a Query naming a kind of garbage,
// which it answers with that garbage and nothing more.
class FakePrimary {
 public:
  FakePrimary() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd_, 16) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      throw std::runtime_error("FakePrimary: cannot listen");
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { accept_loop(); });
  }
  ~FakePrimary() {
    stop_ = true;
    thread_.join();
    for (std::thread& t : sessions_) t.join();
    ::close(fd_);
  }
  FakePrimary(const FakePrimary&) = delete;
  FakePrimary& operator=(const FakePrimary&) = delete;
  std::uint16_t port() const { return port_; }

  // What each kind of garbage is, as bytes after a well-behaved start.
  static std::string garbage(const std::string& kind) {
    std::string out;
    if (kind == "unknown-type") return std::string("\x01\0\0\0\x04", 5);
    if (kind == "short-length") return std::string("C\0\0\0\x02", 5);
    if (kind == "huge-length") return std::string("T\x7f\xff\xff\xff", 5);
    if (kind == "bad-ready") {
      protocol::MessageWriter(out).u8('Z').u32(5).u8('?');
      return out;
    }
    if (kind == "key-after-startup") {
      protocol::append_backend_key_data(out, 1, 2);
      return out;
    }
    return "\xff\xff\xff\xff garbage";
  }

 private:
  bool readable(int fd) const {
    for (int waited = 0; waited < 10000 && !stop_; waited += 100) {
      pollfd pfd{fd, POLLIN, 0};
      if (poll(&pfd, 1, 100) > 0) return true;
    }
    return false;
  }
  bool read_n(int fd, std::string& buf, std::size_t n) const {
    char chunk[4096];
    while (buf.size() < n) {
      if (!readable(fd)) return false;
      ssize_t got = recv(fd, chunk, sizeof chunk, 0);
      if (got <= 0) return false;
      buf.append(chunk, static_cast<std::size_t>(got));
    }
    return true;
  }
  static void send_all(int fd, const std::string& bytes) {
    [[maybe_unused]] auto n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  }

  void accept_loop() {
    while (!stop_) {
      if (!readable(fd_)) continue;
      int conn = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn >= 0) sessions_.emplace_back([this, conn] { serve(conn); });
    }
  }

  void serve(int conn) {
    std::string in;
    if (read_n(conn, in, 4) && read_n(conn, in, protocol::read_u32(in.data()))) {
      in.erase(0, protocol::read_u32(in.data()));
      std::string hello;
      protocol::append_authentication_ok(hello);
      protocol::append_parameter_status(hello, "server_version", "15.0 (fake)");
      protocol::append_backend_key_data(hello, 4242, 77);
      protocol::append_ready_for_query(hello, 'I');
      send_all(conn, hello);
      while (read_n(conn, in, protocol::header_size) && read_n(conn, in, protocol::read_u32(in.data() + 1) + 1)) {
        const std::size_t total = protocol::read_u32(in.data() + 1) + 1;
        const std::string message = in.substr(0, total);
        in.erase(0, total);
        if (message[0] == 'X') break;
        if (message[0] != 'Q') continue;
        const std::string sql = message.substr(protocol::header_size, total - protocol::header_size - 1);
        if (sql.rfind("GARBAGE ", 0) == 0) {
          send_all(conn, garbage(sql.substr(8)));
          continue;  // stays connected: pgshift must be the one to close
        }
        std::string reply;
        protocol::MessageWriter(reply).u8('C').u32(4 + 7).cstring("SELECT");
        protocol::append_ready_for_query(reply, 'I');
        send_all(conn, reply);
      }
    }
    ::close(conn);
  }

  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<std::thread> sessions_;
};

TEST(PrimaryGarbage, MalformedMessageClosesOnlyThatConnection) {
  FakePrimary fake;
  Pgshift proxy(fake.port());
  RawClient healthy(proxy.port());
  healthy.login();
  for (const std::string kind : {"unknown-type", "short-length", "huge-length", "bad-ready", "key-after-startup"}) {
    SCOPED_TRACE(kind);
    RawClient victim(proxy.port());
    victim.login();
    const auto messages = query_until_eof(victim, "GARBAGE " + kind);
    EXPECT_TRUE(contains(last_fatal(messages, "08P01"), "pgshift: the server sent an invalid message"));
    std::string ok;
    protocol::append_query(ok, "SELECT");
    healthy.send(ok);
    EXPECT_EQ(message_types(healthy.read_until_ready()), "CZ");
  }
  eventually([&] { return count_occurrences(proxy.log(), "reason=server protocol violation") >= 5; });
  EXPECT_EQ(count_occurrences(proxy.log(), "reason=server protocol violation"), 5u) << tail_lines(proxy.log(), 20);
}

}  // namespace
}  // namespace pgshift::it
