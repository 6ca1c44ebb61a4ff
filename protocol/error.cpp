#include "protocol/error.hpp"

#include <string>

namespace pgshift::protocol {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "pgshift.protocol"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::message_too_short: return "invalid message length (below 4)";
      case errc::message_too_long: return "message length exceeds the limit for its type";
      case errc::unknown_message_type: return "invalid message type";
      case errc::malformed_message: return "malformed message body";
      case errc::startup_bad_length: return "invalid length of startup packet";
      case errc::startup_bad_layout: return "invalid startup packet layout";
      case errc::startup_bad_version: return "unsupported frontend protocol version";
      case errc::startup_no_user: return "no PostgreSQL user name specified in startup packet";
      case errc::plaintext_after_ssl: return "received unencrypted data after SSL request";
      case errc::bad_ssl_response: return "server sent an invalid response to SSL negotiation";
    }
    return "unknown protocol error";
  }
};

}  // namespace

const std::error_category& protocol_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace pgshift::protocol
