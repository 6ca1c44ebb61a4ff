// The untyped packets a client sends before the message stream begins:
// StartupMessage, SSLRequest, GSSENCRequest and CancelRequest. Each starts
// with a four-byte length (8 to 10000, counting itself) and a four-byte code.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace pgshift::protocol {

inline constexpr std::uint32_t startup_min_length = 8;
inline constexpr std::uint32_t startup_max_length = 10000;
inline constexpr std::uint32_t ssl_request_code = 80877103;     // 1234.5679
inline constexpr std::uint32_t gssenc_request_code = 80877104;  // 1234.5680
inline constexpr std::uint32_t cancel_request_code = 80877102;  // 1234.5678
inline constexpr std::uint16_t protocol_major = 3;
inline constexpr std::uint16_t protocol_minor = 0;  // what pgshift speaks

enum class StartupKind { startup, ssl_request, gssenc_request, cancel_request };

struct StartupPacket {
  StartupKind kind = StartupKind::startup;
  std::uint16_t major = 0;
  std::uint16_t minor = 0;
  // Startup: every parameter in the client's order, `_pq_.` options included.
  std::vector<std::pair<std::string, std::string>> params;
  // CancelRequest.
  std::uint32_t cancel_pid = 0;
  std::uint32_t cancel_key = 0;

  const std::string* param(std::string_view key) const noexcept;
};

// Reads the declared length from the first four bytes and checks its range.
// Returns 0 with `ec` set on a bad length.
std::uint32_t startup_length(std::string_view first4, std::error_code& ec) noexcept;

// Parses one complete packet (length prefix included).
std::error_code parse_startup(std::string_view packet, StartupPacket& out);

}  // namespace pgshift::protocol
