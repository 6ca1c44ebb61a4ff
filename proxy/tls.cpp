#include "proxy/tls.hpp"

namespace pgshift::proxy {
namespace {

constexpr auto base_options = ssl::context::default_workarounds | ssl::context::no_sslv2 |
                              ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                              ssl::context::no_tlsv1_1 | ssl::context::single_dh_use;

bool load(const char* what, const std::string& file, std::string& error, auto&& fn) {
  error_code ec;
  fn(ec);
  if (ec) error = std::string("cannot load ") + what + " '" + file + "': " + ec.message();
  return !ec;
}

}  // namespace

std::unique_ptr<ssl::context> make_client_tls(const config::ClientTls& cfg, std::string& error) {
  if (cfg.mode == config::ClientTlsMode::disable) return nullptr;
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  ctx->set_options(base_options);
  if (!load("certificate", cfg.cert_file, error,
            [&](error_code& ec) { ctx->use_certificate_chain_file(cfg.cert_file, ec); }) ||
      !load("private key", cfg.key_file, error,
            [&](error_code& ec) { ctx->use_private_key_file(cfg.key_file, ssl::context::pem, ec); }))
    return nullptr;
  return ctx;
}

std::unique_ptr<ssl::context> make_server_tls(const config::ServerTls& cfg, std::string& error) {
  using config::ServerTlsMode;
  if (cfg.mode == ServerTlsMode::disable) return nullptr;
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  ctx->set_options(base_options);
  const bool verify = cfg.mode == ServerTlsMode::verify_ca || cfg.mode == ServerTlsMode::verify_full;
  ctx->set_verify_mode(verify ? ssl::verify_peer : ssl::verify_none);
  if (verify && !load("CA file", cfg.ca_file, error,
                      [&](error_code& ec) { ctx->load_verify_file(cfg.ca_file, ec); }))
    return nullptr;
  if (!cfg.cert_file.empty() &&
      (!load("certificate", cfg.cert_file, error,
             [&](error_code& ec) { ctx->use_certificate_chain_file(cfg.cert_file, ec); }) ||
       !load("private key", cfg.key_file, error,
             [&](error_code& ec) { ctx->use_private_key_file(cfg.key_file, ssl::context::pem, ec); })))
    return nullptr;
  return ctx;
}

}  // namespace pgshift::proxy
