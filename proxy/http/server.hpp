// pgshift's HTTP endpoint ([admin] http_listen): the JSON API, /metrics and
// the live status page, on its own thread. Every request becomes an admin
// command run through admin::run_command, as the SQL console's do; reading is
// open to whoever reaches the address (127.0.0.1 unless configured
// otherwise), and anything that changes state needs the bearer token of
// [admin] http_token_env.
//
//   GET  /                     the status page (refreshes itself every second)
//   GET  /api/status | sessions | shadow | mismatches | cutover | rules | config | version
//                              the SHOW command of that name, as JSON
//   GET  /api/overview         what the status page shows, in one request
//   POST /api/cutover          {"action": "dry-run"|"cutover"|"reads"|"abort"|"rollback"|"complete", "percent": N}
//   POST /api/reload, /api/clear-diverged
//   GET  /metrics              Prometheus text format
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "proxy/context.hpp"
#include "proxy/http/history.hpp"
#include "proxy/http/metrics.hpp"

namespace pgshift::proxy {

class HttpServer {
 public:
  HttpServer(ProxyContext& ctx, Metrics& metrics);
  ~HttpServer();

  // Binds [admin] http_listen; false (with `error`) when it cannot.
  bool listen(const config::Endpoint& at, std::string& error);
  // Serves (and samples the history) on a thread of its own until stop().
  void start();
  void stop();

  struct Request;
  struct Response;

 private:
  awaitable<void> accept_loop();
  awaitable<void> serve(tcp::socket socket);
  awaitable<Response> handle(const Request& req);
  awaitable<Response> command(const std::string& sql, bool changes_state, const Request& req);
  awaitable<Response> overview();
  awaitable<Response> post_cutover(const Request& req);

  ProxyContext& ctx_;
  Metrics& metrics_;
  History history_;
  asio::io_context io_{1};
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::thread thread_;
};

}  // namespace pgshift::proxy
