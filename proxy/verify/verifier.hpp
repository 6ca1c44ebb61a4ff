// The admin console's VERIFY: the same run as `pgshift verify`, in the
// background on a thread of its own (so the I/O threads never wait for it),
// with its figures for SHOW VERIFY, and the last clean run's time for the
// cutover's guardrail ([cutover] require_verify_within_s).
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "proxy/admin/table.hpp"
#include "proxy/context.hpp"
#include "proxy/verify/runner.hpp"

namespace pgshift::proxy::verify {

class Verifier {
 public:
  explicit Verifier(ProxyContext& ctx);
  ~Verifier();
  Verifier(const Verifier&) = delete;
  Verifier& operator=(const Verifier&) = delete;

  // Starts a run of these tables (empty: all); false with `why` while one runs.
  bool start(std::vector<std::string> tables, const std::string& who, std::string& why);

  // SHOW VERIFY: a first row for the whole run, then one per table.
  admin::Answer show() const;

  struct Last {
    bool running = false;
    std::optional<std::chrono::system_clock::time_point> finished;  // of the last run that ended
    int exit_code = 2;  // of that run
    std::string summary;
  };
  Last last() const;  // thread-safe

 private:
  ProxyContext& ctx_;
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;

  mutable std::mutex mutex_;
  bool running_ = false;
  std::string who_, started_;
  pgshift::verify::Options options_;  // of the run under way
  std::unique_ptr<Status> status_;
  std::optional<pgshift::verify::Report> report_;  // of the last run that ended
  std::chrono::system_clock::time_point finished_at_;
};

}  // namespace pgshift::proxy::verify
