// Hostile and broken input, through pgshift: malformed startup packets and messages,
// oversized messages, protocol tricks around SSL negotiation (both legs), silent and
// truncating clients, a dead or lying primary, a bad config file. Whatever one
// connection does, pgshift must answer it the way PostgreSQL would (FATAL 08P01, then
// close), log one close line for it, and keep serving a healthy client.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "harness.hpp"
#include "protocol/builder.hpp"
#include "protocol/frame.hpp"
#include "raw_client.hpp"

namespace pgshift::it {
namespace {

using namespace std::chrono_literals;

// A typed message header (type, declared length) followed by `body`, as raw bytes:
// the length need not match the body.
std::string raw_message(char type, std::uint32_t declared_length, std::string_view body = {}) {
  std::string out;
  protocol::MessageWriter(out).u8(static_cast<std::uint8_t>(type)).u32(declared_length).raw(body);
  return out;
}

// An untyped (startup-style) packet declaring `declared_length`, followed by `rest`.
std::string raw_startup(std::uint32_t declared_length, std::string_view rest) {
  std::string out;
  protocol::MessageWriter(out).u32(declared_length).raw(rest);
  return out;
}

std::string ssl_request() {
  std::string out;
  protocol::append_ssl_request(out);
  return out;
}

std::string gssenc_request() {
  std::string out;
  protocol::append_gssenc_request(out);
  return out;
}

// The connection got exactly one FATAL ErrorResponse with `sqlstate` and a message
// containing `text`, then EOF.
void expect_fatal_then_eof(RawClient& client, const std::string& sqlstate, const std::string& text,
                           std::chrono::milliseconds limit = kRawReadTimeout) {
  const auto messages = client.read_until_eof(limit);
  ASSERT_EQ(messages.size(), 1u) << describe(messages);
  ASSERT_EQ(messages[0].type, 'E') << describe(messages);
  auto fields = error_fields(messages[0].body);
  EXPECT_EQ(fields['S'], "FATAL") << describe(messages);
  EXPECT_EQ(fields['C'], sqlstate) << describe(messages);
  EXPECT_TRUE(contains(fields['M'], text));
}

// How many sessions `proxy` logged as closed for `reason` (a prefix), once there are
// `expected` of them or the wait for the (asynchronous) log ends.
std::size_t closes_for(const Pgshift& proxy, const std::string& reason, std::size_t expected) {
  auto count = [&] { return count_occurrences(proxy.log(), " reason=" + reason); };
  eventually([&] { return count() >= expected; });
  return count();
}

// A fake primary on a loopback port: answers each connection's first 8 bytes (the
// SSLRequest pgshift sends) with `answer`, then waits for the peer to hang up.
class FakeSslServer {
 public:
  explicit FakeSslServer(std::string answer) : answer_(std::move(answer)) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(fd_, 16) != 0 || getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("FakeSslServer: cannot listen");
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeSslServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  FakeSslServer(const FakeSslServer&) = delete;
  FakeSslServer& operator=(const FakeSslServer&) = delete;

  std::uint16_t port() const { return port_; }
  int ssl_requests() const { return ssl_requests_; }

 private:
  // Waits (up to `ms`, in slices that notice stop_) until `fd` is readable.
  bool readable(int fd, int ms) const {
    for (int waited = 0; waited < ms && !stop_; waited += 100) {
      pollfd pfd{fd, POLLIN, 0};
      if (poll(&pfd, 1, 100) > 0) return true;
    }
    return false;
  }

  void serve() {
    while (!stop_) {
      if (!readable(fd_, 100)) continue;
      int conn = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) continue;
      char request[8];
      std::size_t got = 0;
      while (got < sizeof request && readable(conn, 10000)) {
        ssize_t n = recv(conn, request + got, sizeof request - got, 0);
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
      }
      if (got == sizeof request && std::string_view(request, 8) == ssl_request()) {
        ++ssl_requests_;
        [[maybe_unused]] auto n = ::send(conn, answer_.data(), answer_.size(), MSG_NOSIGNAL);
      }
      char sink[4096];
      while (readable(conn, 10000) && recv(conn, sink, sizeof sink, 0) > 0) {
      }
      ::close(conn);
    }
  }

  std::string answer_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> ssl_requests_{0};
  std::thread thread_;
};

class BadInput : public SharedClusterTest<BadInput> {
 public:
  static void SetUpTestSuite() {
    SharedClusterTest<BadInput>::SetUpTestSuite();
    cert_dir_ = std::make_unique<TempDir>("pgshift-it-certs");
    proxy_cert_ = make_self_signed_cert(cert_dir_->path(), "pgshift");
  }
  static void TearDownTestSuite() {
    cert_dir_.reset();
    SharedClusterTest<BadInput>::TearDownTestSuite();
  }

 protected:
  static constexpr std::uint32_t kMaxMessageSize = 20000;

  // pgshift in front of the suite's cluster, and a healthy client connected through it
  // (checked to work) for the whole test.
  void start(PgshiftOptions options = {}) {
    options.max_message_size = kMaxMessageSize;
    proxy_ = std::make_unique<Pgshift>(cluster(), options);
    healthy_.emplace(proxy_->port());
    healthy_->login();
    expect_healthy();
  }

  // The healthy client's connection still works, and so does a new psql session.
  void expect_healthy() {
    SCOPED_TRACE("healthy client");
    EXPECT_EQ(healthy_->query_value("SELECT 'still here'"), "still here");
    auto result = psql_query(proxy_->conn(), "SELECT 40 + 2");
    EXPECT_RUN_OK(result);
    EXPECT_EQ(trim(result.out), "42");
  }

  RawClient connect() const { return RawClient(proxy_->port()); }
  RawClient logged_in() const {
    RawClient client(proxy_->port());
    client.login();
    return client;
  }

  // pgshift's close line for `client`'s connection, once it was written; the test fails
  // unless there is exactly one.
  std::string close_line(const RawClient& client) const {
    const std::string key = "close client=127.0.0.1:" + std::to_string(client.local_port()) + " ";
    eventually([&] { return proxy_->log().find(key) != std::string::npos; });
    const std::string log = proxy_->log();
    EXPECT_EQ(count_occurrences(log, key), 1u) << "close lines for " << key << "in:\n" << tail_lines(log, 40);
    const auto begin = log.find(key);
    if (begin == std::string::npos) return {};
    return log.substr(begin, log.find('\n', begin) - begin);
  }

  std::unique_ptr<Pgshift> proxy_;
  std::optional<RawClient> healthy_;
  static inline std::unique_ptr<TempDir> cert_dir_;
  static inline CertPair proxy_cert_;
};

// ---- before the message stream: startup packets -------------------------------------

TEST_F(BadInput, StartupPacketLengthOutOfRange) {
  start();
  for (std::uint32_t length : {7u, 10001u}) {
    SCOPED_TRACE("declared startup length " + std::to_string(length));
    RawClient bad = connect();
    const std::string protocol_3_0("\x00\x03\x00\x00", 4);  // 7 bytes in all, or a header only
    bad.send(raw_startup(length, length == 7 ? protocol_3_0.substr(0, 3) : protocol_3_0));
    expect_fatal_then_eof(bad, "08P01", "invalid length of startup packet");
    EXPECT_TRUE(contains(close_line(bad), "reason=invalid startup packet length"));
  }
  expect_healthy();
}

TEST_F(BadInput, TruncatedPacketThenClose) {
  start();
  const std::string body_start(10, 'x');
  struct Case {
    const char* name;
    bool log_in_first;
    std::string bytes;
    const char* reason;
  };
  for (const Case& c : {Case{"startup packet", false, raw_startup(100, body_start), "client closed during startup"},
                        Case{"query", true, raw_message('Q', 100, body_start), "client disconnected"}}) {
    SCOPED_TRACE(c.name);
    RawClient bad = c.log_in_first ? logged_in() : connect();
    bad.send(c.bytes);
    bad.shutdown_write();
    EXPECT_EQ(describe(bad.read_until_eof()), "(no messages)");
    EXPECT_TRUE(contains(close_line(bad), std::string("reason=") + c.reason));
  }
  expect_healthy();
}

TEST_F(BadInput, SilentClientIsClosedAfterLoginTimeout) {
  PgshiftOptions options;
  options.login_timeout_ms = 1000;
  start(options);
  RawClient silent = connect();
  // 15 s only bounds a hang; the timeout is 1 s.
  expect_fatal_then_eof(silent, "08P01", "login timed out", 15s);
  EXPECT_TRUE(contains(close_line(silent), "reason=login timeout"));
  expect_healthy();
}

TEST_F(BadInput, ProtocolNegotiation) {
  start();
  RawClient client = connect();
  const auto messages = client.login({.extra = {{"_pq_.test_option", "on"}}, .minor = 2});
  ASSERT_FALSE(messages.empty());
  ASSERT_EQ(messages[0].type, 'v') << describe(messages);
  // NegotiateProtocolVersion: newest minor version, count, then the option names.
  std::string expected;
  protocol::MessageWriter(expected).u32(0).u32(1).cstring("_pq_.test_option");
  EXPECT_EQ(messages[0].body, expected);
  EXPECT_EQ(client.query_value("SELECT 'negotiated'"), "negotiated");
  expect_healthy();
}

TEST_F(BadInput, CancelWithUnknownKeyIsIgnored) {
  start();
  // The healthy client runs a query while cancel requests that must not reach it
  // arrive: a random pid and key, and its own pid with a wrong key.
  std::string sleep;
  protocol::append_query(sleep, "SELECT pg_sleep(1), 'not cancelled'");
  ASSERT_TRUE(healthy_->send(sleep));
  for (auto [pid, key] : {std::pair{0x1234567u, 0x89abcdefu},
                          std::pair{healthy_->backend_pid(), healthy_->backend_key() + 1}}) {
    RawClient cancel = connect();
    std::string request;
    protocol::append_cancel_request(request, pid, key);
    cancel.send(request);
    EXPECT_EQ(describe(cancel.read_until_eof()), "(no messages)");
    EXPECT_TRUE(contains(close_line(cancel), "reason=cancel request for an unknown key"));
  }
  const auto reply = healthy_->read_until_ready();
  EXPECT_EQ(message_types(reply), "TDCZ") << describe(reply);
  expect_healthy();
}

// ---- SSL negotiation ----------------------------------------------------------------

// CVE-2021-23214: bytes sent in the same write as the SSLRequest were never encrypted
// and must not be taken as part of the session. PostgreSQL 15 answers the request
// first, then refuses; the same bytes go to the suite's server (no SSL) to check.
TEST_F(BadInput, PlaintextAfterSslRequest) {
  start();
  for (std::uint16_t port : {proxy_->port(), cluster().port()}) {
    SCOPED_TRACE(port == proxy_->port() ? "through pgshift" : "PostgreSQL itself");
    RawClient bad(port);
    bad.send(ssl_request() + startup_message());
    EXPECT_EQ(bad.read_byte(), 'N');
    expect_fatal_then_eof(bad, "08P01", "received unencrypted data after SSL request");
  }
  RawClient bad = connect();
  bad.send(ssl_request() + startup_message());
  EXPECT_EQ(bad.read_byte(), 'N');
  bad.read_until_eof();
  EXPECT_TRUE(contains(close_line(bad), "reason=plaintext after SSLRequest"));
  expect_healthy();
}

TEST_F(BadInput, PlaintextAfterGssencRequest) {
  start();
  RawClient bad = connect();
  bad.send(gssenc_request() + startup_message());
  EXPECT_EQ(bad.read_byte(), 'N');
  expect_fatal_then_eof(bad, "08P01", "received unencrypted data after GSSAPI encryption request");
  EXPECT_TRUE(contains(close_line(bad), "reason=plaintext after GSSENCRequest"));
  expect_healthy();
}

// PostgreSQL 15 refuses a negotiation request right after the same one was refused
// as an unsupported protocol version (0A000). The server (built with GSSAPI) would
// accept a GSSENCRequest, so only the SSL case is checked against it.
TEST_F(BadInput, RepeatedEncryptionRequestAfterRefusal) {
  start();
  struct Case {
    std::string request;
    std::string version;
    bool compare_with_server;
  };
  for (const Case& c : {Case{ssl_request(), "1234.5679", true}, Case{gssenc_request(), "1234.5680", false}}) {
    for (std::uint16_t port : {proxy_->port(), cluster().port()}) {
      if (port == cluster().port() && !c.compare_with_server) continue;
      SCOPED_TRACE(c.version + (port == proxy_->port() ? " through pgshift" : " PostgreSQL itself"));
      RawClient bad(port);
      bad.send(c.request);
      ASSERT_EQ(bad.read_byte(), 'N');
      bad.send(c.request);
      expect_fatal_then_eof(bad, "0A000", "unsupported frontend protocol " + c.version + ": server supports 3.0 to 3.0");
    }
  }
  expect_healthy();
}

// Either order of SSL and GSS negotiation, each refused once, then a normal login,
// as libpq does with gssencmode=prefer and sslmode=prefer.
TEST_F(BadInput, SslThenGssRefusedThenLogin) {
  start();
  RawClient client = connect();
  client.send(ssl_request());
  ASSERT_EQ(client.read_byte(), 'N');
  client.send(gssenc_request());
  ASSERT_EQ(client.read_byte(), 'N');
  client.login();
  EXPECT_EQ(client.query_value("SELECT 'negotiated'"), "negotiated");
}

// Inside TLS, an SSLRequest is an unsupported protocol version, and plaintext that
// came with the first SSLRequest is refused after the handshake, over TLS (as
// PostgreSQL 15 does; checked by hand against a server with ssl = on).
TEST_F(BadInput, EncryptionRequestsWithTls) {
  PgshiftOptions options;
  options.client_tls_mode = "allow";
  options.client_cert = proxy_cert_;
  start(options);
  const ConnParams conn = proxy_->conn();
  auto inside = python_client("negotiation_probe.py", conn, {"ssl-inside-tls"});
  EXPECT_RUN_OK(inside);
  EXPECT_TRUE(contains(inside.out, "error sqlstate=0A000 message=unsupported frontend protocol 1234.5679: server supports 3.0 to 3.0"));
  auto plaintext = python_client("negotiation_probe.py", conn, {"plaintext-with-ssl"});
  EXPECT_RUN_OK(plaintext);
  EXPECT_TRUE(contains(plaintext.out, "error sqlstate=08P01 message=received unencrypted data after SSL request"));
  EXPECT_TRUE(contains(proxy_->log(), "reason=repeated SSLRequest"));
  EXPECT_TRUE(contains(proxy_->log(), "reason=plaintext after SSLRequest"));
  expect_healthy();
}

// CVE-2021-23222 and friends: a primary that answers pgshift's SSLRequest with
// something other than a plain 'S' or 'N'. The client gets pgshift's own FATAL error
// (never the server's bytes) and pgshift keeps going; the primary is fake, so the
// "healthy client" here is the next connection getting the same clean refusal.
TEST_F(BadInput, PrimaryWithBadSslAnswer) {
  std::string error_answer;
  protocol::append_error_response(error_answer, {.sqlstate = "XX000", .message = "FAKE-SERVER-SECRET"});
  const std::pair<const char*, std::string> answers[] = {
      {"S then N", "SN"},
      {"S then garbage", "S\x16\x03\x01garbage"},
      {"ErrorResponse", error_answer},
  };
  PgshiftOptions options;
  options.server_tls_mode = "require";
  for (const auto& [name, answer] : answers) {
    SCOPED_TRACE(name);
    FakeSslServer fake(answer);
    Pgshift proxy(fake.port(), options);
    for (int attempt = 1; attempt <= 2; ++attempt) {
      auto result = psql_query(proxy.conn(), "SELECT 1");
      EXPECT_FALSE(result.timed_out) << result.describe();
      EXPECT_EQ(result.exit_code, 2) << result.describe();
      EXPECT_TRUE(contains(result.err, "FATAL:  pgshift: "));
      EXPECT_FALSE(contains(result.err, "FAKE-SERVER-SECRET")) << result.describe();
    }
    EXPECT_EQ(fake.ssl_requests(), 2);
    EXPECT_EQ(closes_for(proxy, "server sent ", 2), 2u) << tail_lines(proxy.log(), 20);
  }
}

// ---- after login: the message stream --------------------------------------------------

TEST_F(BadInput, MessageLengthBelowFour) {
  start();
  RawClient bad = logged_in();
  bad.send(raw_message('Q', 3));
  expect_fatal_then_eof(bad, "08P01", "invalid message length");
  EXPECT_TRUE(contains(close_line(bad), "reason=client protocol violation"));
  expect_healthy();
}

TEST_F(BadInput, SmallMessageOverItsLimit) {
  start();
  RawClient bad = logged_in();
  bad.send(raw_message('D', 10001, "S"));  // Describe may be at most 10000 bytes
  expect_fatal_then_eof(bad, "08P01", "exceeds the limit");
  EXPECT_TRUE(contains(close_line(bad), "(message type 0x44)"));
  expect_healthy();
}

TEST_F(BadInput, QueryOverMaxMessageSize) {
  start();
  // SELECT length('xxx...') sized so that its Query message declares `length`.
  const std::string head = "SELECT length('", tail = "')";
  auto literal_size = [&](std::uint32_t length) { return length - 4 - 1 - head.size() - tail.size(); };
  auto sql_of_length = [&](std::uint32_t length) {
    return head + std::string(literal_size(length), 'x') + tail;
  };

  RawClient client = logged_in();
  EXPECT_EQ(client.query_value(sql_of_length(kMaxMessageSize)),
            std::to_string(literal_size(kMaxMessageSize)));

  std::string too_long;
  protocol::append_query(too_long, sql_of_length(kMaxMessageSize + 1));
  ASSERT_EQ(protocol::read_u32(too_long.data() + 1), kMaxMessageSize + 1);
  client.send(too_long);
  expect_fatal_then_eof(client, "08P01", "exceeds the limit");
  EXPECT_TRUE(contains(close_line(client), "(message type 0x51)"));
  expect_healthy();
}

TEST_F(BadInput, UnknownMessageType) {
  start();
  RawClient bad = logged_in();
  bad.send(raw_message('z', 4));
  expect_fatal_then_eof(bad, "08P01", "invalid frontend message type 0x7a");
  EXPECT_TRUE(contains(close_line(bad), "reason=client protocol violation"));
  expect_healthy();
}

// ---- the primary and the config ---------------------------------------------------------

// A statement nested deeper than pgshift can unpack (5,000 and 9,000 unary plus
// signs) once overflowed the stack of pgshift's parser and crashed the whole
// proxy (tests/fuzz). Now pgshift passes it on, and the client gets PostgreSQL's
// own answer on a session that goes on.
TEST_F(BadInput, DeeplyNestedStatementGetsThePostgresError) {
  start();
  for (std::size_t n : {5000u, 9000u}) {
    SCOPED_TRACE(std::to_string(n) + " plus signs");
    const RunResult r = psql_script(proxy_->conn(), "SELECT " + std::string(n, '+') + "1;\nSELECT 'after';\n", false);
    EXPECT_TRUE(contains(r.err, "stack depth limit exceeded")) << r.err;
    EXPECT_TRUE(contains(r.out, "after")) << r.out;
  }
  expect_healthy();
}

TEST_F(BadInput, PrimaryDown) {
  const std::uint16_t nobody = free_port();
  Pgshift proxy(nobody);
  for (int attempt = 1; attempt <= 2; ++attempt) {
    auto result = psql_query(proxy.conn(), "SELECT 1");
    EXPECT_FALSE(result.timed_out) << result.describe();
    EXPECT_EQ(result.exit_code, 2) << result.describe();
    EXPECT_TRUE(contains(result.err, "FATAL:  pgshift: could not connect to server 127.0.0.1:" +
                                         std::to_string(nobody)));
  }
  EXPECT_EQ(closes_for(proxy, "could not connect to server", 2), 2u) << tail_lines(proxy.log(), 20);
}

TEST_F(BadInput, BadConfigFile) {
  TempDir dir;
  const fs::path file = dir.path() / "bad.toml";
  const std::uint16_t listen_port = free_port();
  write_file(file, "[proxy]\nlisten = \"127.0.0.1:" + std::to_string(listen_port) +
                       "\"\n\n[primary]\nhost = \"127.0.0.1\"\nport = 70000\n");

  RunOptions bounded;
  bounded.timeout = 30s;
  auto check = run({pgshift_binary().string(), "--check-config", file.string()}, bounded);
  EXPECT_EQ(check.exit_code, 1) << check.describe();
  const std::string prefix = file.string() + ": primary.port: ";
  ASSERT_TRUE(contains(check.err, prefix)) << check.describe();
  const std::string reason = check.err.substr(check.err.find(prefix) + prefix.size());
  EXPECT_NE(trim(reason.substr(0, reason.find('\n'))), "") << check.describe();

  auto start = run({pgshift_binary().string(), "--config", file.string()}, bounded);
  EXPECT_FALSE(start.timed_out) << start.describe();
  EXPECT_NE(start.exit_code, 0) << start.describe();
  EXPECT_TRUE(contains(start.err, prefix));
  EXPECT_FALSE(accepts_connections(listen_port));
}

}  // namespace
}  // namespace pgshift::it
