#include "proxy/sync/watch.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace pgshift::proxy::sync {

using Clock = std::chrono::steady_clock;

awaitable<void> Watch::run(const bool& paused) {
  const auto& dbs = ctx_.cfg.shadow.sync_databases;
  {
    std::lock_guard lock(mutex_);
    status_.resize(dbs.size());
    for (std::size_t i = 0; i < dbs.size(); ++i) status_[i].database = dbs[i];
  }
  reps_.resize(dbs.size());
  errors_seen_.assign(dbs.size(), 0);
  asio::steady_timer tick(co_await asio::this_coro::executor);
  for (;;) {
    if (!paused) {
      const config::Side from = ctx_.serving.load();
      for (std::size_t i = 0; i < dbs.size(); ++i) co_await poll(i, from);
      if (Clock::now() - last_log_ >= ctx_.cfg.shadow.status_interval) {
        log_status();
        last_log_ = Clock::now();
      }
    }
    tick.expires_after(std::chrono::seconds(1));
    co_await tick.async_wait(use_tuple);
  }
}

// One database: (re)connects when needed or when the direction changed.
awaitable<void> Watch::poll(std::size_t i, config::Side from) {
  const std::string& db = ctx_.cfg.shadow.sync_databases[i];
  DatabaseStatus d;
  d.database = db;
  d.from = from;
  d.at = Clock::now();
  bool ok = true;
  if (!reps_[i] || reps_[i]->from() != from) {
    reps_[i] = std::make_unique<Replication>(ctx_, db, from);
    ok = co_await reps_[i]->connect(d.error);
  }
  if (ok) ok = co_await reps_[i]->status(d.status, d.error);
  if (!ok) reps_[i].reset();  // connect again next time
  else check_errors(d, errors_seen_[i]);
  std::lock_guard lock(mutex_);
  status_[i] = std::move(d);
}

void Watch::check_errors(DatabaseStatus& d, std::uint64_t& seen) {
  const std::uint64_t errors = d.status.apply_errors + d.status.sync_errors;
  if (errors <= seen) return;
  const std::string why = fmt::format(
      "the {} server's subscription {} reports {} error(s) (a row that conflicts there, or a schema change on the {} "
      "server): its stream stopped; see its server log",
      config::to_string(config::other(d.from)), subscription_name(d.from, d.database), errors, config::to_string(d.from));
  spdlog::error("sync: {}", why);
  if (ctx_.mirror) ctx_.mirror->mark_diverged(why);
  seen = errors;
}

void Watch::log_status() const {
  for (const DatabaseStatus& d : snapshot()) {
    if (!d.error.empty()) {
      spdlog::warn("sync: database {}: {}", d.database, d.error);
    } else if (!d.status.subscribed) {
      spdlog::info("sync: database {}: not replicating (pgshift sync start)", d.database);
    } else {
      spdlog::info("sync: database {}: {} of {} table(s) streaming, lag {} bytes ({:.2f}s), worker {}, errors {}",
                   d.database, d.status.streaming(), d.status.tables.size(), d.status.lag_bytes, d.status.lag_seconds,
                   d.status.worker ? "running" : "stopped", d.status.apply_errors + d.status.sync_errors);
    }
  }
}

std::vector<DatabaseStatus> Watch::snapshot() const {
  std::lock_guard lock(mutex_);
  return status_;
}

}  // namespace pgshift::proxy::sync
