// The server side of a session: one connection to a PostgreSQL server (the
// primary now; a shadow or the new primary later), with its own read buffer
// and the BackendKeyData the server gave it. A session owns it through a
// unique_ptr so it can be swapped at a transaction boundary.
#pragma once

#include <cstdint>
#include <string>

#include "config/config.hpp"
#include "proxy/buffer.hpp"
#include "proxy/stream.hpp"

namespace pgshift::proxy {

struct ServerConn {
  ServerConn(tcp::socket s, std::size_t buffer_size) : stream(std::move(s)), in(buffer_size) {}

  Stream stream;
  ReadBuffer in;
  tcp::endpoint endpoint;
  std::uint32_t pid = 0;  // from the server's BackendKeyData
  std::uint32_t key = 0;
};

struct ConnectResult {
  error_code ec;
  std::string detail;  // human-readable reason when ec is set
};

// Connects (with the configured timeout), negotiates TLS per the configured
// mode and leaves the connection ready for the StartupMessage. The server's
// answer to SSLRequest must be exactly one byte, 'S' or 'N'; an error message
// sent there is never relayed.
awaitable<ConnectResult> connect_server(const config::Upstream& cfg, ssl::context* tls, ServerConn& conn);

// Resolves the configured host (IP literals skip the resolver).
awaitable<std::tuple<error_code, tcp::endpoint>> resolve_endpoint(const config::Endpoint& ep);

}  // namespace pgshift::proxy
