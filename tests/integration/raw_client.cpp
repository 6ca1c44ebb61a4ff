#include "raw_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "protocol/builder.hpp"
#include "protocol/frame.hpp"

namespace pgshift::it {

using Clock = std::chrono::steady_clock;

namespace {

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// A connected socket, or -1 with errno set.
int connect_loopback(std::uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno("socket");
  sockaddr_in addr = loopback(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int saved = errno;
    ::close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

std::string hex_preview(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < bytes.size() && i < 32; ++i) {
    auto u = static_cast<unsigned char>(bytes[i]);
    out += digits[u >> 4];
    out += digits[u & 15];
  }
  return bytes.size() > 32 ? out + "..." : out;
}

// The first column of a DataRow body.
std::string first_column(const std::string& body) {
  if (body.size() < 6 || protocol::read_u16(body.data()) == 0) return {};
  const std::uint32_t len = protocol::read_u32(body.data() + 2);
  if (len == 0xffffffffu) return {};
  return body.substr(6, len);
}

}  // namespace

std::map<char, std::string> error_fields(const std::string& body) {
  std::map<char, std::string> fields;
  std::size_t pos = 0;
  while (pos < body.size() && body[pos] != '\0') {
    const std::size_t end = body.find('\0', pos + 1);
    if (end == std::string::npos) break;
    fields[body[pos]] = body.substr(pos + 1, end - pos - 1);
    pos = end + 1;
  }
  return fields;
}

std::string describe(const BackendMessage& message) {
  std::string out(1, message.type);
  if (message.type == 'E' || message.type == 'N') {
    auto fields = error_fields(message.body);
    out += " " + fields['S'] + " " + fields['C'] + " " + fields['M'];
  }
  return out;
}

std::string describe(const std::vector<BackendMessage>& messages) {
  if (messages.empty()) return "(no messages)";
  std::string out;
  for (const auto& m : messages) out += (out.empty() ? "" : " | ") + describe(m);
  return out;
}

std::string message_types(const std::vector<BackendMessage>& messages) {
  std::string out;
  for (const auto& m : messages) out += m.type;
  return out;
}

bool accepts_connections(std::uint16_t port) {
  int fd = connect_loopback(port);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (!condition()) {
    if (Clock::now() >= deadline) return condition();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

std::string startup_message(const StartupOptions& options) {
  std::vector<std::pair<std::string, std::string>> params{{"user", options.user},
                                                          {"database", options.database}};
  params.insert(params.end(), options.extra.begin(), options.extra.end());
  std::string out;
  protocol::append_startup_message(out, params, options.minor);
  return out;
}

// ---- RawClient ---------------------------------------------------------------------

RawClient::RawClient(std::uint16_t port) {
  fd_ = connect_loopback(port);
  if (fd_ < 0) throw_errno("connecting to 127.0.0.1:" + std::to_string(port));
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in local{};
  socklen_t len = sizeof local;
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &len) != 0) throw_errno("getsockname");
  local_port_ = ntohs(local.sin_port);
}

RawClient::~RawClient() { close(); }

RawClient::RawClient(RawClient&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      local_port_(other.local_port_),
      in_(std::move(other.in_)),
      backend_pid_(other.backend_pid_),
      backend_key_(other.backend_key_) {}

void RawClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool RawClient::send(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EPIPE || errno == ECONNRESET) return false;
      throw_errno("send");
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

void RawClient::shutdown_write() { ::shutdown(fd_, SHUT_WR); }

// Reads until `in_` holds `n` bytes; false when the connection ends first.
bool RawClient::fill(std::size_t n, Clock::time_point deadline) {
  char buffer[65536];
  while (in_.size() < n) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      throw std::runtime_error("timed out waiting for the server (have " + std::to_string(in_.size()) +
                               " bytes: " + hex_preview(in_) + ")");
    }
    pollfd pfd{fd_, POLLIN, 0};
    int ready = poll(&pfd, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno != EINTR) throw_errno("poll");
    if (ready <= 0) continue;
    ssize_t got = recv(fd_, buffer, sizeof buffer, 0);
    if (got > 0) {
      in_.append(buffer, static_cast<std::size_t>(got));
    } else if (got == 0 || errno == ECONNRESET) {
      return false;
    } else if (errno != EINTR && errno != EAGAIN) {
      throw_errno("recv");
    }
  }
  return true;
}

std::optional<char> RawClient::read_byte(std::chrono::milliseconds timeout) {
  if (!fill(1, Clock::now() + timeout)) return std::nullopt;
  const char c = in_[0];
  in_.erase(0, 1);
  return c;
}

std::optional<BackendMessage> RawClient::read(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  if (!fill(protocol::header_size, deadline)) {
    if (in_.empty()) return std::nullopt;
    throw std::runtime_error("connection closed inside a message header: " + hex_preview(in_));
  }
  const std::uint32_t length = protocol::read_u32(in_.data() + 1);
  if (length < 4 || length > (1u << 30)) {
    throw std::runtime_error("invalid backend message length " + std::to_string(length) + ": " +
                             hex_preview(in_));
  }
  const std::size_t total = std::size_t{length} + 1;
  if (!fill(total, deadline)) {
    throw std::runtime_error("connection closed inside a message: " + hex_preview(in_));
  }
  BackendMessage message{in_[0], in_.substr(protocol::header_size, total - protocol::header_size)};
  in_.erase(0, total);
  return message;
}

std::vector<BackendMessage> RawClient::read_until_ready() {
  std::vector<BackendMessage> messages;
  for (;;) {
    auto message = read();
    if (!message) {
      throw std::runtime_error("connection closed before ReadyForQuery after: " + describe(messages));
    }
    messages.push_back(std::move(*message));
    if (messages.back().type == 'Z') return messages;
  }
}

std::vector<BackendMessage> RawClient::read_until_eof(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::vector<BackendMessage> messages;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    auto message = read(std::max(left, std::chrono::milliseconds(1)));
    if (!message) return messages;
    messages.push_back(std::move(*message));
  }
}

std::vector<BackendMessage> RawClient::login(const StartupOptions& options) {
  if (!send(startup_message(options))) throw std::runtime_error("connection closed before startup");
  auto messages = read_until_ready();
  for (const auto& m : messages) {
    if (m.type == 'E') throw std::runtime_error("login failed: " + describe(messages));
    if (m.type == 'K' && m.body.size() == 8) {
      backend_pid_ = protocol::read_u32(m.body.data());
      backend_key_ = protocol::read_u32(m.body.data() + 4);
    }
  }
  return messages;
}

std::string RawClient::query_value(std::string_view sql) {
  std::string out;
  protocol::append_query(out, sql);
  if (!send(out)) throw std::runtime_error("connection closed before the query");
  auto messages = read_until_ready();
  std::optional<std::string> value;
  for (const auto& m : messages) {
    if (m.type == 'E') throw std::runtime_error("query failed: " + describe(messages));
    if (m.type == 'D' && !value) value = first_column(m.body);
  }
  if (!value) throw std::runtime_error("query returned no row: " + describe(messages));
  return *value;
}

void RawClient::terminate() {
  std::string out;
  protocol::append_terminate(out);
  send(out);
  read_until_eof();
}

}  // namespace pgshift::it
