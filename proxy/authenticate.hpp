// pgshift as the server of a client's authentication: a protocol::ServerAuth
// exchange run over the client's connection. Used by the admin console's login
// and, with [auth] mode = "pgshift", by every client session.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "protocol/client_auth.hpp"
#include "protocol/server_auth.hpp"
#include "proxy/buffer.hpp"
#include "proxy/stream.hpp"

namespace pgshift::proxy {

// ServerAuth options for this client connection: on TLS, the tls-server-end-point
// data of the certificate pgshift presented (so SCRAM-SHA-256-PLUS is offered).
protocol::ServerAuth::Options server_auth_options(Stream& client);

// Sends the first request, then feeds the client's replies until the exchange
// ends. done: `out` holds SASLFinal (SCRAM) and AuthenticationOk, not yet sent,
// so the caller may still refuse (e.g. when no server accepts the user).
// failed: `out` holds the ErrorResponse to send (empty if the client left).
// nullopt: the connection failed (nothing to send).
awaitable<std::optional<protocol::ServerAuth::Step>> serve_authentication(Stream& client, ReadBuffer& in,
                                                                          const protocol::Limits& limits,
                                                                          protocol::ServerAuth& auth,
                                                                          std::string& out);

// The secret pgshift checks `user` against: its auth_file entry, or a mock
// secret for a user without one, so that an unknown user fails exactly like a
// wrong password.
protocol::Secret secret_for(const config::Auth& cfg, const std::string& user);
// The same from stored text (auth_file, auth_query): a mock secret when there
// is none or it cannot be read.
protocol::Secret secret_from(const std::optional<std::string>& stored, const std::string& user);

// The method [auth] method asks for with this secret (see config::ClientAuthMethod).
protocol::AuthMethod method_for(const config::Auth& cfg, const protocol::Secret& secret) noexcept;

// After a successful exchange: what pgshift can log in to servers with as the
// same user (SCRAM keys recovered from the proof, the stored MD5 hash, or the
// plaintext password); nullptr when there is nothing.
std::shared_ptr<const protocol::PassThrough> pass_through_for(const protocol::ServerAuth& auth);

std::string_view to_string(protocol::AuthMethod m) noexcept;

}  // namespace pgshift::proxy
