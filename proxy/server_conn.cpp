#include "proxy/server_conn.hpp"

#include <array>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include "protocol/builder.hpp"
#include "protocol/error.hpp"

namespace pgshift::proxy {

using namespace asio::experimental::awaitable_operators;

awaitable<std::tuple<error_code, tcp::endpoint>> resolve_endpoint(const config::Endpoint& ep) {
  error_code ec;
  auto addr = asio::ip::make_address(ep.host, ec);
  if (!ec) co_return std::tuple{error_code{}, tcp::endpoint(addr, ep.port)};
  tcp::resolver resolver(co_await asio::this_coro::executor);
  auto [rec, results] = co_await resolver.async_resolve(ep.host, std::to_string(ep.port), use_tuple);
  if (rec) co_return std::tuple{rec, tcp::endpoint{}};
  if (results.empty()) co_return std::tuple{make_error_code(asio::error::host_not_found), tcp::endpoint{}};
  co_return std::tuple{error_code{}, results.begin()->endpoint()};
}

namespace {

awaitable<error_code> connect_with_timeout(tcp::socket& socket, const tcp::endpoint& ep,
                                           std::chrono::milliseconds timeout) {
  asio::steady_timer timer(socket.get_executor(), timeout);
  auto result = co_await (socket.async_connect(ep, use_tuple) || timer.async_wait(use_tuple));
  if (result.index() == 1) co_return make_error_code(asio::error::timed_out);
  co_return std::get<0>(std::get<0>(result));
}

awaitable<ConnectResult> negotiate_tls(const config::Upstream& cfg, ssl::context& tls, ServerConn& conn) {
  std::string request;
  protocol::append_ssl_request(request);
  if (auto [ec, n] = co_await conn.stream.write(asio::buffer(request)); ec)
    co_return ConnectResult{ec, "sending SSLRequest: " + ec.message()};
  std::array<char, 1> answer{};
  if (auto [ec, n] = co_await conn.stream.read_exactly(asio::buffer(answer)); ec)
    co_return ConnectResult{ec, "reading the answer to SSLRequest: " + ec.message()};
  if (answer[0] == 'S') {
    // Anything already waiting behind the 'S' was not encrypted (CVE-2021-23222).
    error_code aec;
    if (conn.stream.socket().available(aec) != 0 || aec)
      co_return ConnectResult{protocol::errc::bad_ssl_response,
                              "server sent unencrypted data after accepting SSL"};
    // Named, not a temporary inside the co_await: GCC 12 destroys temporaries
    // of a conditional expression in a co_await twice.
    std::string verify_name;
    if (cfg.tls.mode == config::ServerTlsMode::verify_full) verify_name = cfg.address.host;
    if (auto ec = co_await conn.stream.connect_tls(tls, cfg.address.host, verify_name))
      co_return ConnectResult{ec, "TLS handshake with the server failed: " + ec.message()};
    co_return ConnectResult{};
  }
  if (answer[0] == 'N') {
    if (cfg.tls.mode == config::ServerTlsMode::prefer) co_return ConnectResult{};
    co_return ConnectResult{protocol::errc::bad_ssl_response, "server does not support SSL, but SSL was required"};
  }
  co_return ConnectResult{protocol::errc::bad_ssl_response,
                          "server sent an invalid response to SSL negotiation"};
}

}  // namespace

awaitable<ConnectResult> connect_server(const config::Upstream& cfg, ssl::context* tls, ServerConn& conn) {
  auto [rec, ep] = co_await resolve_endpoint(cfg.address);
  if (rec) co_return ConnectResult{rec, "could not resolve \"" + cfg.address.host + "\": " + rec.message()};
  conn.endpoint = ep;
  if (auto ec = co_await connect_with_timeout(conn.stream.socket(), ep, cfg.connect_timeout))
    co_return ConnectResult{ec, "could not connect to server " + cfg.address.host + ":" +
                                    std::to_string(cfg.address.port) + ": " + ec.message()};
  error_code ignored;
  conn.stream.socket().set_option(tcp::no_delay(true), ignored);
  if (tls && cfg.tls.mode != config::ServerTlsMode::disable) co_return co_await negotiate_tls(cfg, *tls, conn);
  co_return ConnectResult{};
}

}  // namespace pgshift::proxy
