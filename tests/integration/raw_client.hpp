// A tiny blocking PostgreSQL wire client for tests that must send what no real client
// would: raw bytes on a TCP socket to 127.0.0.1, messages built with
// protocol/builder.hpp, replies read back one backend message at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgshift::it {

inline constexpr std::chrono::milliseconds kRawReadTimeout{20000};

// One message from the server: its type byte and its body (without type and length).
struct BackendMessage {
  char type = 0;
  std::string body;
};

// The fields of an ErrorResponse or NoticeResponse body, by field code ('C', 'M', ...).
std::map<char, std::string> error_fields(const std::string& body);

// "E 08P01 <message>", "Z", ... for assertion texts.
std::string describe(const BackendMessage& message);
std::string describe(const std::vector<BackendMessage>& messages);
// The type bytes in order, e.g. "TDCZ" for a one-row simple query.
std::string message_types(const std::vector<BackendMessage>& messages);

// Whether something accepts TCP connections on 127.0.0.1:port right now.
bool accepts_connections(std::uint16_t port);

// Polls `condition` every 20 ms until it holds or `limit` passes; returns its last
// value. For things that happen asynchronously (a log line being written), not for
// measuring time.
bool eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds limit = std::chrono::seconds(15));

struct StartupOptions {
  std::string user = "postgres";
  std::string database = "postgres";
  std::vector<std::pair<std::string, std::string>> extra;  // more parameters, `_pq_.` options
  std::uint16_t minor = 0;                                  // protocol 3.minor
};

// A StartupMessage packet for `options`.
std::string startup_message(const StartupOptions& options = {});

class RawClient {
 public:
  // Connects to 127.0.0.1:port; throws std::runtime_error when that fails.
  explicit RawClient(std::uint16_t port);
  ~RawClient();
  RawClient(RawClient&& other) noexcept;
  RawClient& operator=(RawClient&&) = delete;
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  // This end's port: pgshift's log names the connection "client=127.0.0.1:PORT".
  std::uint16_t local_port() const { return local_port_; }

  // Writes all of `bytes`; false when the peer has already closed the connection.
  bool send(std::string_view bytes);
  void shutdown_write();  // half-close: the peer reads EOF
  void close();

  // One byte (the 'S'/'N' answer to an SSLRequest or GSSENCRequest); nullopt on EOF.
  std::optional<char> read_byte(std::chrono::milliseconds timeout = kRawReadTimeout);
  // The next whole message; nullopt once the peer closed the connection (EOF or reset).
  // Throws on timeout, and when the connection ends in the middle of a message.
  std::optional<BackendMessage> read(std::chrono::milliseconds timeout = kRawReadTimeout);
  // Every message up to and including ReadyForQuery; throws if the connection ends first.
  std::vector<BackendMessage> read_until_ready();
  // Every message until the peer closes the connection.
  std::vector<BackendMessage> read_until_eof(std::chrono::milliseconds timeout = kRawReadTimeout);

  // Sends a StartupMessage and reads until ReadyForQuery (trust authentication);
  // returns the messages. Throws when the server answers with an ErrorResponse.
  std::vector<BackendMessage> login(const StartupOptions& options = {});
  // Runs a simple query; returns the first column of the first row (NULL as "").
  // Throws on an ErrorResponse or when no row comes back.
  std::string query_value(std::string_view sql);
  // Sends Terminate and waits for the server to close the connection.
  void terminate();

  // BackendKeyData from login() (pgshift's key for this session).
  std::uint32_t backend_pid() const { return backend_pid_; }
  std::uint32_t backend_key() const { return backend_key_; }

 private:
  bool fill(std::size_t n, std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  std::uint16_t local_port_ = 0;
  std::string in_;  // received, not yet consumed
  std::uint32_t backend_pid_ = 0;
  std::uint32_t backend_key_ = 0;
};

}  // namespace pgshift::it
