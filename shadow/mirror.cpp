#include "shadow/mirror.hpp"

#include <spdlog/spdlog.h>

namespace pgshift::shadow {

namespace {
constexpr auto kDropReportInterval = std::chrono::seconds(10);
}

Mirror::Mirror(std::size_t max_transactions, std::size_t max_bytes)
    : max_transactions_(max_transactions), max_bytes_(max_bytes) {}

// Every transaction the primary committed counts in `committed`, whether it
// is then queued or dropped.
std::uint64_t Mirror::submit(TransactionPtr t) {
  if (!enabled_) return 0;
  committed_.fetch_add(1);
  const char* why = "a transaction was too large to mirror";  // or the Recorder's own reason
  if (t->kind == Transaction::Kind::apply &&
      (pending_.load() + 1 > max_transactions_ || pending_bytes_.load() + t->bytes() > max_bytes_)) {
    why = "the shadow queue was full: transactions were dropped";
    t->kind = Transaction::Kind::dropped;
    t->why.clear();
  }
  t->seq = next_seq_.fetch_add(1) + 1;
  if (t->kind == Transaction::Kind::dropped) {
    const std::string reason = t->why.empty() ? std::string(why) : t->why;
    dropped_.fetch_add(1);
    mark_diverged(reason);
    note_drop(reason);
    t->messages.clear();
    t->statements.clear();
    t->primary.clear();
  } else {
    pending_.fetch_add(1);
    pending_bytes_.fetch_add(t->bytes());
    std::lock_guard lock(mutex_);
    commit_times_.emplace(t->seq, std::chrono::steady_clock::now());
  }
  const std::uint64_t seq = t->seq;
  queue_.enqueue(std::move(t));
  if (wake_) wake_();
  return seq;
}

void Mirror::close_session(std::uint64_t session) {
  auto t = std::make_unique<Transaction>();
  t->session = session;
  t->kind = Transaction::Kind::close_session;
  t->seq = next_seq_.fetch_add(1) + 1;
  queue_.enqueue(std::move(t));
  if (wake_) wake_();
}

void Mirror::retarget(std::uint8_t target) {
  auto t = std::make_unique<Transaction>();
  t->kind = Transaction::Kind::retarget;
  t->target = target;
  t->seq = next_seq_.fetch_add(1) + 1;
  queue_.enqueue(std::move(t));
  if (wake_) wake_();
}

TransactionPtr Mirror::next() {
  TransactionPtr t;
  while (queue_.try_dequeue(t)) early_.emplace(t->seq, std::move(t));
  auto it = early_.find(expected_);
  if (it == early_.end()) return nullptr;
  t = std::move(it->second);
  early_.erase(it);
  ++expected_;
  return t;
}

void Mirror::account_out(const Transaction& t) {
  // The applier finishes transactions in commit order.
  if (t.seq > done_through_.load(std::memory_order_relaxed)) done_through_.store(t.seq, std::memory_order_release);
  if (t.kind != Transaction::Kind::apply) return;
  pending_.fetch_sub(1);
  pending_bytes_.fetch_sub(t.bytes());
  std::lock_guard lock(mutex_);
  commit_times_.erase(t.seq);
}

void Mirror::applied(const Transaction& t, std::size_t compared, std::size_t mismatched, bool failed,
                     std::size_t not_exact) {
  account_out(t);
  applied_.fetch_add(1);
  if (failed) failed_.fetch_add(1);
  compared_.fetch_add(compared);
  mismatches_.fetch_add(mismatched);
  if (t.captured) captured_.fetch_add(t.captured);
  if (not_exact) not_exact_.fetch_add(not_exact);
  if (dropping_.load(std::memory_order_relaxed)) end_drop_run();
}

void Mirror::skipped(const Transaction& t) {
  account_out(t);
  skipped_.fetch_add(1);
}

void Mirror::dropped(const Transaction& t, const std::string& why) {
  account_out(t);
  dropped_.fetch_add(1);
  mark_diverged(why);
  note_drop(why);
}

void Mirror::note_drop(const std::string& why) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  ++run_drops_;
  if (!dropping_.exchange(true)) {
    run_drops_ = 1;
    run_unreported_ = 0;
    run_reported_ = now;
    spdlog::warn("shadow: a committed transaction was dropped ({}): the shadow is now diverged; further drops are "
                 "counted and reported every {} s",
                 why, std::chrono::duration_cast<std::chrono::seconds>(kDropReportInterval).count());
    return;
  }
  ++run_unreported_;
  if (now - run_reported_ < kDropReportInterval) return;
  spdlog::warn("shadow: {} more transactions dropped ({} in this run); the last: {}", run_unreported_, run_drops_, why);
  run_unreported_ = 0;
  run_reported_ = now;
}

void Mirror::end_drop_run() {
  std::lock_guard lock(mutex_);
  if (!dropping_.exchange(false)) return;
  spdlog::warn("shadow: transactions are applied again after {} were dropped; the shadow stays diverged until "
               "cleared",
               run_drops_);
  run_drops_ = run_unreported_ = 0;
}

void Mirror::mark_diverged(const std::string& why) {
  std::lock_guard lock(mutex_);
  if (!diverged_) diverged_reason_ = why;
  diverged_ = true;
  diverged_flag_ = true;
}

void Mirror::clear_diverged() {
  std::lock_guard lock(mutex_);
  diverged_ = false;
  diverged_flag_ = false;
  diverged_reason_.clear();
}

Status Mirror::status() const {
  Status s;
  s.committed = committed_.load();
  s.applied = applied_.load();
  s.dropped = dropped_.load();
  s.pending = pending_.load();
  s.failed = failed_.load();
  s.reads_skipped = skipped_.load();
  s.pending_bytes = pending_bytes_.load();
  s.statements_compared = compared_.load();
  s.mismatches = mismatches_.load();
  s.captured = captured_.load();
  s.not_exact = not_exact_.load();
  s.connected = connected_.load();
  std::lock_guard lock(mutex_);
  s.diverged = diverged_;
  s.diverged_reason = diverged_reason_;
  if (!commit_times_.empty())
    s.lag_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - commit_times_.begin()->second).count();
  return s;
}

}  // namespace pgshift::shadow
