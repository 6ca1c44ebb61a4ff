// Applies committed transactions to the shadow database, one at a time, in
// the primary's commit order, on its own thread: each client session gets a
// shadow connection of its own (logged in with [[shadow.login]] credentials,
// with the session's prepared statements), each transaction is sent in one
// pipelined write, and every statement's outcome is compared with the
// primary's. A slow, dead or refusing shadow costs dropped transactions and
// the diverged mark, never a client error.
#pragma once

#include <atomic>
#include <memory>
#include <thread>
#include <unordered_map>

#include "config/config.hpp"
#include "proxy/server_conn.hpp"
#include "shadow/compare.hpp"
#include "shadow/mirror.hpp"
#include "shadow/mismatch_log.hpp"

namespace pgshift::proxy {

// [shadow.compare] as the comparison code wants it.
shadow::CompareRules compare_rules(const config::CompareRules& c);

class ShadowApplier {
 public:
  ShadowApplier(const config::Config& cfg, shadow::Mirror& mirror, ssl::context* tls, const protocol::Limits& limits);
  ~ShadowApplier();

  void start();
  void stop();

 private:
  struct Connection {
    std::unique_ptr<ServerConn> server;
    std::unordered_map<std::string, std::string> prepared;  // name -> Parse message sent
  };

  awaitable<void> run();
  awaitable<void> report_status();
  awaitable<void> apply(shadow::Transaction& t);
  awaitable<bool> apply_on(Connection& c, shadow::Transaction& t);
  awaitable<Connection*> connection_for(const shadow::Transaction& t, std::string& error);
  awaitable<bool> login(Connection& c, const std::string& user, const std::string& password,
                        const std::string& database, std::string& error);
  std::size_t compare(const shadow::Transaction& t, const std::vector<shadow::Outcome>& outcomes);

  const config::Config& cfg_;
  shadow::Mirror& mirror_;
  ssl::context* tls_;
  protocol::Limits limits_;
  shadow::CompareRules rules_;
  shadow::MismatchLog log_;

  asio::io_context io_{1};
  std::thread thread_;
  asio::steady_timer wake_{io_};
  std::atomic<bool> idle_{false};
  std::unordered_map<std::uint64_t, Connection> connections_;
  std::chrono::steady_clock::time_point retry_after_{};
};

}  // namespace pgshift::proxy
