// Protocol errors: an enum with an error category, so callers can carry them in
// std::error_code next to Asio's I/O errors. "Need more bytes" is not an error.
#pragma once

#include <system_error>

namespace pgshift::protocol {

enum class errc {
  message_too_short = 1,  // declared length below 4
  message_too_long,       // declared length above the limit for its type
  unknown_message_type,   // type byte not valid in this direction
  malformed_message,      // body does not match the message's layout
  startup_bad_length,     // startup packet shorter than 8 or longer than 10000
  startup_bad_layout,     // parameters not NUL-terminated key/value pairs
  startup_bad_version,    // protocol major version other than 3
  startup_no_user,        // no "user" parameter
  plaintext_after_ssl,    // bytes arrived with an SSLRequest, before the handshake
  bad_ssl_response,       // server's answer to SSLRequest is not exactly one byte S/N
};

const std::error_category& protocol_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), protocol_category()};
}

}  // namespace pgshift::protocol

template <>
struct std::is_error_code_enum<pgshift::protocol::errc> : std::true_type {};
