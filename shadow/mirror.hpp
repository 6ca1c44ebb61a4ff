// The hand-over between the sessions (I/O threads) and the shadow applier.
//
// Each committed transaction gets the next sequence number the moment its
// session sees the primary confirm it, and goes into a lock-free queue.
// The applier takes transactions out strictly in sequence order (a small
// reorder buffer absorbs producers racing between numbering and enqueueing).
//
// The primary path never waits here: over the bounds, or while the applier
// is behind a dead shadow, a transaction is dropped whole and only a
// tombstone keeps its place in the order; every drop marks the shadow
// diverged (it no longer holds every write) until an operator clears it.
#pragma once

#include <atomic>
#include <chrono>
#include <concurrentqueue/concurrentqueue.h>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "shadow/transaction.hpp"

namespace pgshift::shadow {

struct Status {
  std::uint64_t committed = 0;      // committed on the primary: applied + pending + dropped
  std::uint64_t applied = 0;
  std::uint64_t dropped = 0;
  std::uint64_t pending = 0;        // queued, not yet applied
  std::uint64_t failed = 0;         // applied, but failed or rolled back on the shadow
  std::uint64_t reads_skipped = 0;  // sampled reads not compared: the shadow was behind
  std::uint64_t pending_bytes = 0;
  std::uint64_t statements_compared = 0;
  std::uint64_t mismatches = 0;
  std::uint64_t captured = 0;       // statements the shadow got as the primary's rows (exact mirroring)
  std::uint64_t not_exact = 0;      // statements mirrored that may leave the shadow other than the primary
  double lag_seconds = 0;           // age of the oldest transaction not yet applied
  bool diverged = false;
  std::string diverged_reason;
  bool connected = false;           // the applier reaches the shadow
};

class Mirror {
 public:
  Mirror(std::size_t max_transactions, std::size_t max_bytes);

  // Producer side (any thread, never blocks).
  std::uint64_t open_session() noexcept { return next_session_.fetch_add(1) + 1; }
  // Returns the transaction's position in the commit order (0 when mirroring is off).
  std::uint64_t submit(TransactionPtr t);
  void close_session(std::uint64_t session);  // lets the applier drop its shadow connection, in order
  // A cutover swapped the servers: every transaction submitted from now on
  // goes to `target` (config::Side's value), everything before to the old one.
  void retarget(std::uint8_t target);

  // Applier side (one thread).
  TransactionPtr next();                       // the next in order, or null
  // `failed`: it committed on the primary but not on the shadow.
  void applied(const Transaction& t, std::size_t compared, std::size_t mismatched, bool failed = false,
               std::size_t not_exact = 0);
  void dropped(const Transaction& t, const std::string& why);
  // A sampled read not compared: the shadow had not caught up in time (logical mode).
  void skipped(const Transaction& t);
  void set_connected(bool up) noexcept { connected_ = up; }
  // Called when something was queued, to wake an idle applier (may be empty).
  void on_work(std::function<void()> wake) { wake_ = std::move(wake); }

  // Mirroring stops for good (a completed cutover): submissions are ignored.
  void disable() noexcept { enabled_ = false; }
  bool enabled() const noexcept { return enabled_.load(); }

  // Every transaction up to this position has been applied or dropped (a
  // reader that committed at or before it can read its writes on the shadow).
  std::uint64_t done_through() const noexcept { return done_through_.load(std::memory_order_acquire); }
  bool diverged() const noexcept { return diverged_flag_.load(std::memory_order_relaxed); }

  void mark_diverged(const std::string& why);
  void clear_diverged();
  Status status() const;

 private:
  void account_out(const Transaction& t);
  // A drop: the first of a run of drops is logged at once, later ones are
  // summed up at most every few seconds, and the end of the run is logged.
  void note_drop(const std::string& why);
  void end_drop_run();

  moodycamel::ConcurrentQueue<TransactionPtr> queue_;
  const std::size_t max_transactions_, max_bytes_;
  std::atomic<std::uint64_t> next_seq_{0};
  std::atomic<std::uint64_t> next_session_{0};
  std::atomic<std::uint64_t> pending_{0}, pending_bytes_{0}, committed_{0}, applied_{0}, dropped_{0}, failed_{0},
      skipped_{0};
  std::atomic<std::uint64_t> compared_{0}, mismatches_{0}, captured_{0}, not_exact_{0};
  std::atomic<bool> dropping_{false};  // in a run of drops
  std::atomic<bool> connected_{false};
  std::atomic<bool> enabled_{true};
  std::atomic<std::uint64_t> done_through_{0};
  std::atomic<bool> diverged_flag_{false};  // diverged_, readable without the lock
  std::function<void()> wake_;

  // Applier-only: the reorder buffer.
  std::map<std::uint64_t, TransactionPtr> early_;
  std::uint64_t expected_ = 1;

  mutable std::mutex mutex_;  // diverged reason, oldest pending commit times
  bool diverged_ = false;
  std::string diverged_reason_;
  std::map<std::uint64_t, std::chrono::steady_clock::time_point> commit_times_;
  std::uint64_t run_drops_ = 0, run_unreported_ = 0;  // drops in this run, not yet logged
  std::chrono::steady_clock::time_point run_reported_{};
};

}  // namespace pgshift::shadow
