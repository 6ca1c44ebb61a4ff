#include "proxy/stream.hpp"

#include <boost/asio/ssl/host_name_verification.hpp>

#include "protocol/error.hpp"

namespace pgshift::proxy {

bool is_protocol_error(const error_code& ec) noexcept {
  return static_cast<std::error_code>(ec).category() == protocol::protocol_category();
}

bool is_expected_close(const error_code& ec) noexcept {
  return ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::operation_aborted || ec == asio::error::broken_pipe ||
         ec == ssl::error::stream_truncated;
}

awaitable<error_code> Stream::accept_tls(ssl::context& ctx) {
  tls_ = std::make_unique<ssl::stream<tcp::socket>>(std::move(plain_), ctx);
  auto [ec] = co_await tls_->async_handshake(ssl::stream_base::server, use_tuple);
  co_return ec;
}

awaitable<error_code> Stream::connect_tls(ssl::context& ctx, const std::string& sni,
                                          const std::string& verify_name) {
  tls_ = std::make_unique<ssl::stream<tcp::socket>>(std::move(plain_), ctx);
  if (!sni.empty()) SSL_set_tlsext_host_name(tls_->native_handle(), sni.c_str());
  if (!verify_name.empty()) tls_->set_verify_callback(ssl::host_name_verification(verify_name));
  auto [ec] = co_await tls_->async_handshake(ssl::stream_base::client, use_tuple);
  co_return ec;
}

void Stream::cancel() noexcept {
  error_code ignored;
  socket().cancel(ignored);
}

void Stream::close() noexcept {
  error_code ignored;
  socket().shutdown(tcp::socket::shutdown_both, ignored);
  socket().close(ignored);
}

}  // namespace pgshift::proxy
