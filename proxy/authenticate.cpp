#include "proxy/authenticate.hpp"

#include <openssl/ssl.h>

#include "proxy/frame_io.hpp"

namespace pgshift::proxy {

protocol::ServerAuth::Options server_auth_options(Stream& client) {
  protocol::ServerAuth::Options options;
  if (!client.is_tls()) return options;
  std::string error;
  if (X509* cert = SSL_get_certificate(client.tls_handle())) {
    // An Ed25519 certificate has no tls-server-end-point binding (RFC 5929):
    // then only SCRAM-SHA-256 is offered, as PostgreSQL does.
    if (auto cb = protocol::tls_server_end_point(cert, error)) options.channel_binding = std::move(*cb);
  }
  return options;
}

awaitable<std::optional<protocol::ServerAuth::Step>> serve_authentication(Stream& client, ReadBuffer& in,
                                                                          const protocol::Limits& limits,
                                                                          protocol::ServerAuth& auth,
                                                                          std::string& out) {
  using Step = protocol::ServerAuth::Step;
  out.clear();
  Step step = auth.start(out);
  while (step == Step::reply) {
    auto [ec, n] = co_await client.write(asio::buffer(out));
    if (ec) co_return std::nullopt;
    out.clear();
    protocol::Frame f;
    if (auto rec = co_await read_frame(client, in, protocol::Direction::frontend, limits, f)) co_return std::nullopt;
    step = auth.on_message(f, out);
    in.consume(f.bytes.size());
  }
  co_return step;
}

protocol::Secret secret_for(const config::Auth& cfg, const std::string& user) {
  const config::AuthFileEntry* e = cfg.find(user);
  return secret_from(e ? std::optional<std::string>(e->secret) : std::nullopt, user);
}

protocol::Secret secret_from(const std::optional<std::string>& stored, const std::string& user) {
  if (stored) {
    std::string error;
    if (std::optional<protocol::Secret> s = protocol::Secret::parse(*stored, error)) return std::move(*s);
  }
  return protocol::Secret::mock(user);
}

protocol::AuthMethod method_for(const config::Auth& cfg, const protocol::Secret& secret) noexcept {
  switch (cfg.method) {
    case config::ClientAuthMethod::password: return protocol::AuthMethod::cleartext;
    case config::ClientAuthMethod::md5: return protocol::choose_method(secret, true);
    case config::ClientAuthMethod::scram_sha_256: break;
  }
  return protocol::choose_method(secret, false);
}

std::shared_ptr<const protocol::PassThrough> pass_through_for(const protocol::ServerAuth& auth) {
  if (!auth.is_done() || auth.secret().is_mock()) return nullptr;
  const protocol::Secret& secret = auth.secret();
  // A plaintext secret logs in anywhere, whatever salt the server keeps.
  if (secret.kind() == protocol::Secret::Kind::plaintext)
    return std::make_shared<const protocol::PassThrough>(protocol::PassThrough::password(std::string(secret.plaintext())));
  if (!auth.cleartext_password().empty())
    return std::make_shared<const protocol::PassThrough>(
        protocol::PassThrough::password(std::string(auth.cleartext_password())));
  if (std::optional<protocol::ScramClientKeys> keys = auth.client_keys())
    return std::make_shared<const protocol::PassThrough>(protocol::PassThrough::scram(std::move(*keys)));
  if (secret.kind() == protocol::Secret::Kind::md5) {
    if (std::optional<std::string> hash = secret.md5_hash(auth.user())) {
      auto p = std::make_shared<const protocol::PassThrough>(protocol::PassThrough::md5(protocol::Md5Hash(*hash)));
      protocol::scram::wipe(*hash);
      return p;
    }
  }
  return nullptr;
}

std::string_view to_string(protocol::AuthMethod m) noexcept {
  switch (m) {
    case protocol::AuthMethod::scram_sha_256: return "SCRAM-SHA-256";
    case protocol::AuthMethod::md5: return "MD5";
    case protocol::AuthMethod::cleartext: return "password";
  }
  return "?";
}

}  // namespace pgshift::proxy
