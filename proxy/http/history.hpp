// The last 15 minutes, one sample a second, for the status page's charts:
// throughput, the mirror's lag, the mismatch rate and the session count.
// Sampled on the HTTP thread; read by requests (one mutex, touched once a
// second and once per request).
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <vector>

#include "proxy/context.hpp"

namespace pgshift::proxy {

struct Sample {
  std::int64_t at_ms = 0;       // Unix time
  double tps = 0;               // transactions per second over the last second
  double statements = 0;        // statements per second
  double lag_s = 0;             // mirror lag
  double pending = 0;           // mirror backlog, transactions
  double compared = 0;          // comparisons per second
  double mismatch_rate = 0;     // mismatches / comparisons over the last second
  double sessions = 0;
};

class History {
 public:
  static constexpr std::size_t kSamples = 900;

  explicit History(ProxyContext& ctx) : ctx_(ctx) {}
  // Samples once a second until the executor stops.
  awaitable<void> run();
  std::vector<Sample> samples() const;  // oldest first

 private:
  void take();

  ProxyContext& ctx_;
  mutable std::mutex mutex_;
  std::array<Sample, kSamples> ring_{};
  std::size_t next_ = 0, count_ = 0;
  // The previous totals, for rates (sampler only).
  std::uint64_t transactions_ = 0, statements_ = 0, compared_ = 0, mismatches_ = 0;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace pgshift::proxy
