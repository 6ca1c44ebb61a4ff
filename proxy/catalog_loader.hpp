// Reads each served database's catalog (rewrite::Catalog) from the primary
// and from the shadow, on a thread of its own, so no session's thread ever
// waits on a catalog query: at the first use of a database, after DDL that
// committed through pgshift, every [rewrite] catalog_refresh_ms, and on the
// admin command REFRESH CATALOG. One connection and one query per load,
// logged in with the [[primary.login]] / [[shadow.login]] credentials of the
// database's first client user (as the cutover's control connections are), or,
// with [auth] mode = "pgshift" and no such login, as that user by pass-through.
// A server whose catalog cannot be read is served without one (renames
// resolve as without a catalog, writes are not mirrored exactly), and the
// log says so.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "protocol/client_auth.hpp"
#include "proxy/context.hpp"
#include "rewrite/catalog.hpp"

namespace pgshift::proxy {

class CatalogLoader {
 public:
  // One database on one server.
  class Entry {
   public:
    // The newest snapshot, or null while there is none.
    rewrite::CatalogPtr current() const;
    // Changes whenever current() does: cheap to poll per statement.
    std::uint64_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }
    // Loads finished so far, with or without success.
    std::uint64_t attempts() const noexcept { return attempts_.load(std::memory_order_acquire); }
    config::Side side() const noexcept { return side_; }
    const std::string& database() const noexcept { return database_; }

   private:
    friend class CatalogLoader;
    config::Side side_ = config::Side::primary;
    std::string database_;  // as clients name it
    std::atomic<std::uint64_t> generation_{0};
    std::atomic<std::uint64_t> attempts_{0};
    mutable std::mutex catalog_mutex_;  // current() against a new snapshot
    // Under the loader's mutex (catalog_ also under catalog_mutex_ when written):
    rewrite::CatalogPtr catalog_;
    std::string user_;   // whose login reads it
    // That user's pass-through, for when it has no [[X.login]]: kept while the
    // loader lives, since every refresh logs in again.
    std::shared_ptr<const protocol::PassThrough> pass_through_;
    std::string error_;  // of the last load, empty when it worked
    bool loading_ = false, again_ = false, announced_ = false;
    std::chrono::steady_clock::time_point last_attempt_{};
    std::vector<std::pair<std::uint64_t, std::function<void()>>> waiters_;  // attempts to wait for, callback
  };

  explicit CatalogLoader(ProxyContext& ctx);
  ~CatalogLoader();
  CatalogLoader(const CatalogLoader&) = delete;
  CatalogLoader& operator=(const CatalogLoader&) = delete;

  void start();
  void stop();

  // The entry of `database` on `side` (stable for the loader's life); its
  // first load starts now, logged in as `user`'s [[X.login]], else with
  // `pass_through` (may be null) as `user`.
  Entry& entry(config::Side side, const std::string& database, const std::string& user,
               std::shared_ptr<const protocol::PassThrough> pass_through = nullptr);
  // Reads it again (coalesced with a load in progress). Returns the count of
  // loads after which one that started after this call has finished (for
  // when_loaded).
  std::uint64_t refresh(Entry& e);
  void refresh(config::Side side, const std::string& database);
  void refresh_all();
  // refresh_all(), then waits (on the caller's executor) until every load it
  // started has finished, or `limit` passed.
  awaitable<void> refresh_all_and_wait(std::chrono::milliseconds limit);
  // Calls `done` (from the loader's thread: post it where it must run) once
  // more than `after` loads of `e` have finished.
  void when_loaded(Entry& e, std::uint64_t after, std::function<void()> done);
  // The same, with `done` posted to `executor`: how a session or the console waits.
  void when_loaded_on(Entry& e, std::uint64_t after, asio::any_io_executor executor, std::function<void()> done);

  struct Info {
    config::Side side;
    std::string database;
    std::size_t tables = 0, columns = 0, sequences = 0;
    std::uint64_t generation = 0;
    double age_seconds = -1;  // of the snapshot; -1 without one
    std::string error;
  };
  std::vector<Info> info() const;
  // For the shadow's status line: "TABLES tables/AGE s" over every snapshot.
  std::string summary() const;

 private:
  awaitable<void> load(Entry* e);
  awaitable<void> tick();
  void start_load(Entry& e);  // with mutex_ held
  void finished(Entry& e, rewrite::CatalogPtr catalog, std::string error);

  ProxyContext& ctx_;
  asio::io_context io_{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::map<std::pair<int, std::string>, std::unique_ptr<Entry>> entries_;
  std::atomic<std::uint64_t> next_generation_{0};
};

}  // namespace pgshift::proxy
