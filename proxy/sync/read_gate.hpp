// Logical mode: a read sampled on the primary is run on the target only once
// the target's subscription has applied everything the primary had written
// when that read finished, so a lagging stream never looks like a mismatch.
// The wait is bounded ([shadow] read_wait_ms); a read that waits longer is
// counted as skipped, not compared. Runs on the shadow applier's thread,
// with connections of its own to both servers, per database.
#pragma once

#include <array>
#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "protocol/frame.hpp"
#include "proxy/server_conn.hpp"
#include "shadow/transaction.hpp"

namespace pgshift::proxy::sync {

class ReadGate {
 public:
  ReadGate(const config::Config& cfg, std::array<ssl::context*, 2> tls, const protocol::Limits& limits)
      : cfg_(cfg), tls_(tls), limits_(limits) {}

  // True once the target has caught up with the read's moment; false after
  // read_wait_ms (or when the servers cannot be asked).
  awaitable<bool> caught_up(const shadow::Transaction& read, config::Side target);

 private:
  struct Pair {
    std::unique_ptr<ServerConn> primary, target;
  };
  awaitable<std::unique_ptr<ServerConn>> open(config::Side side, const std::string& database, const std::string& user);
  awaitable<bool> ready(Pair& p, const std::string& database, config::Side target,
                        std::chrono::steady_clock::time_point deadline);

  const config::Config& cfg_;
  std::array<ssl::context*, 2> tls_;
  protocol::Limits limits_;
  std::map<std::string, Pair> pairs_;  // by database
};

}  // namespace pgshift::proxy::sync
