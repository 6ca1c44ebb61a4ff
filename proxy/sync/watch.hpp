// Watches logical replication while pgshift runs ([shadow] sync = "logical"):
// once a second, per database, the subscription's state, lag and errors, for
// SHOW SYNC, the cutover's guardrails and the log. A subscription whose apply
// worker reports errors (a conflicting row, a schema change on the primary)
// marks the shadow diverged, loudly: a stopped stream is never "lag".
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "proxy/sync/logical.hpp"

namespace pgshift::proxy::sync {

struct DatabaseStatus {
  std::string database;
  config::Side from = config::Side::primary;
  Status status;
  std::string error;  // why the status could not be read
  std::chrono::steady_clock::time_point at;
};

class Watch {
 public:
  explicit Watch(ProxyContext& ctx) : ctx_(ctx) {}

  // Runs on the caller's executor until the process ends; `paused` says a
  // switch is turning the replication around (nothing is read meanwhile).
  awaitable<void> run(const bool& paused);
  std::vector<DatabaseStatus> snapshot() const;

 private:
  awaitable<void> poll(std::size_t i, config::Side from);
  void check_errors(DatabaseStatus& d, std::uint64_t& seen);
  void log_status() const;

  ProxyContext& ctx_;
  mutable std::mutex mutex_;
  std::vector<DatabaseStatus> status_;
  std::vector<std::unique_ptr<Replication>> reps_;  // coordinator thread only
  std::vector<std::uint64_t> errors_seen_;
  std::chrono::steady_clock::time_point last_log_{};
};

}  // namespace pgshift::proxy::sync
