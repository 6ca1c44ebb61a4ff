#include "proxy/http/history.hpp"

#include "proxy/stats.hpp"

namespace pgshift::proxy {

awaitable<void> History::run() {
  asio::steady_timer t(co_await asio::this_coro::executor);
  auto next = std::chrono::steady_clock::now();
  for (;;) {
    take();
    next += std::chrono::seconds(1);
    t.expires_at(next);
    if (auto [ec] = co_await t.async_wait(use_tuple); ec) co_return;
  }
}

void History::take() {
  const auto now = std::chrono::steady_clock::now();
  const stats::Figures f = stats::totals();
  const std::uint64_t statements = f.all_statements();
  shadow::Status s;
  if (ctx_.mirror) s = ctx_.mirror->status();
  Sample x;
  x.at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
  x.sessions = static_cast<double>(ctx_.sessions.load());
  x.lag_s = s.lag_seconds;
  x.pending = static_cast<double>(s.pending);
  if (last_ != std::chrono::steady_clock::time_point{}) {
    const double dt = std::max(1e-3, std::chrono::duration<double>(now - last_).count());
    x.tps = static_cast<double>(f.transactions - transactions_) / dt;
    x.statements = static_cast<double>(statements - statements_) / dt;
    const std::uint64_t compared = s.statements_compared - compared_;
    x.compared = static_cast<double>(compared) / dt;
    x.mismatch_rate = compared ? static_cast<double>(s.mismatches - mismatches_) / static_cast<double>(compared) : 0;
  }
  last_ = now;
  transactions_ = f.transactions;
  statements_ = statements;
  compared_ = s.statements_compared;
  mismatches_ = s.mismatches;
  std::lock_guard lock(mutex_);
  ring_[next_] = x;
  next_ = (next_ + 1) % kSamples;
  count_ = std::min(count_ + 1, kSamples);
}

std::vector<Sample> History::samples() const {
  std::lock_guard lock(mutex_);
  std::vector<Sample> out;
  out.reserve(count_);
  for (std::size_t i = 0; i < count_; ++i) out.push_back(ring_[(next_ + kSamples - count_ + i) % kSamples]);
  return out;
}

}  // namespace pgshift::proxy
