// TLS contexts built once from the config: one for clients (pgshift as the
// TLS server) and one for the primary (pgshift as the TLS client).
#pragma once

#include <memory>
#include <string>

#include "config/config.hpp"
#include "proxy/asio.hpp"

namespace pgshift::proxy {

// nullptr with `error` set when the certificate or key cannot be loaded.
// Returns nullptr without an error when the mode is disable.
std::unique_ptr<ssl::context> make_client_tls(const config::ClientTls& cfg, std::string& error);
std::unique_ptr<ssl::context> make_server_tls(const config::ServerTls& cfg, std::string& error);

}  // namespace pgshift::proxy
