#include "proxy/catalog_loader.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>

#include "protocol/builder.hpp"
#include "proxy/backend.hpp"
#include "proxy/server_conn.hpp"

namespace pgshift::proxy {

using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto kQueryTimeout = std::chrono::seconds(30);
constexpr auto kRetryAfterFailure = std::chrono::seconds(5);  // a failed load is not retried sooner by the tick

// Logging lives in plain functions: some spdlog calls inside coroutines
// miscompile with GCC 12.
void log_loaded(const CatalogLoader::Entry& e, const rewrite::Catalog& c, bool first, double ms) {
  if (first)
    spdlog::info("catalog: read database {} on the {} server: {} tables, {} columns, {} sequences in {:.1f} ms",
                 e.database(), config::to_string(e.side()), c.table_count(), c.column_count(), c.sequence_count(), ms);
  else
    spdlog::debug("catalog: read database {} on the {} server again (generation {}): {} tables", e.database(),
                  config::to_string(e.side()), c.generation(), c.table_count());
}

void log_failed(const CatalogLoader::Entry& e, const std::string& error, bool had_one) {
  if (had_one)
    spdlog::warn("catalog: cannot read database {} on the {} server again ({}): keeping the one read before",
                 e.database(), config::to_string(e.side()), error);
  else
    spdlog::warn("catalog: cannot read database {} on the {} server ({}): it is served without a catalog (renames "
                 "resolve as without one, unqualified tables are public, and writes to it are not mirrored exactly)",
                 e.database(), config::to_string(e.side()), error);
}

}  // namespace

rewrite::CatalogPtr CatalogLoader::Entry::current() const {
  // A session polls generation() first, so this runs only when a new
  // snapshot is there.
  std::lock_guard lock(catalog_mutex_);
  return catalog_;
}

CatalogLoader::CatalogLoader(ProxyContext& ctx) : ctx_(ctx) {}

CatalogLoader::~CatalogLoader() { stop(); }

void CatalogLoader::start() {
  work_.emplace(io_.get_executor());
  if (ctx_.cfg.rewrite.catalog_refresh.count() > 0) asio::co_spawn(io_, tick(), asio::detached);
  thread_ = std::thread([this] { io_.run(); });
}

void CatalogLoader::stop() {
  if (!thread_.joinable()) return;
  work_.reset();
  io_.stop();
  thread_.join();
}

CatalogLoader::Entry& CatalogLoader::entry(config::Side side, const std::string& database, const std::string& user,
                                           std::shared_ptr<const protocol::PassThrough> pass_through) {
  std::lock_guard lock(mutex_);
  auto key = std::make_pair(static_cast<int>(side), database);
  auto it = entries_.find(key);
  auto can_log_in = [&](const std::string& u, const std::shared_ptr<const protocol::PassThrough>& p) {
    return p || config::find_login(ctx_.cfg.logins(side), u);
  };
  if (it != entries_.end()) {
    Entry& e = *it->second;
    // Read before without a way to log in: this user may have one.
    if (!e.loading_ && !e.error_.empty() && e.user_ != user && can_log_in(user, pass_through) &&
        !can_log_in(e.user_, e.pass_through_)) {
      e.user_ = user;
      e.pass_through_ = std::move(pass_through);
      start_load(e);
    }
    return e;
  }
  auto e = std::make_unique<Entry>();
  e->side_ = side;
  e->database_ = database;
  e->user_ = user;
  e->pass_through_ = std::move(pass_through);
  Entry& ref = *e;
  entries_.emplace(std::move(key), std::move(e));
  start_load(ref);
  return ref;
}

std::uint64_t CatalogLoader::refresh(Entry& e) {
  std::lock_guard lock(mutex_);
  const std::uint64_t after = e.attempts() + (e.loading_ ? 1 : 0);
  start_load(e);
  return after;
}

void CatalogLoader::refresh(config::Side side, const std::string& database) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(std::make_pair(static_cast<int>(side), database));
  if (it != entries_.end()) start_load(*it->second);
}

void CatalogLoader::refresh_all() {
  std::lock_guard lock(mutex_);
  for (auto& [key, e] : entries_) start_load(*e);
}

awaitable<void> CatalogLoader::refresh_all_and_wait(std::chrono::milliseconds limit) {
  std::vector<std::pair<Entry*, std::uint64_t>> targets;
  {
    std::lock_guard lock(mutex_);
    for (auto& [key, e] : entries_) {
      targets.emplace_back(e.get(), e->attempts() + (e->loading_ ? 1 : 0));
      start_load(*e);
    }
  }
  // One timer for all of them, shared with the callbacks, which may run after
  // this returns. Each finished load wakes it; the caller's io_context runs
  // on one thread, so a wake posted before the wait starts is not lost.
  auto executor = co_await asio::this_coro::executor;
  auto timer = std::make_shared<asio::steady_timer>(executor, std::chrono::steady_clock::now() + limit);
  for (const auto& [e, after] : targets)
    when_loaded_on(*e, after, executor, [timer] { timer->cancel(); });
  for (;;) {
    bool done = true;
    for (const auto& [e, after] : targets) done = done && e->attempts() > after;
    if (done) co_return;
    auto [ec] = co_await timer->async_wait(use_tuple);
    if (!ec) co_return;  // the limit passed
  }
}

void CatalogLoader::when_loaded(Entry& e, std::uint64_t after, std::function<void()> done) {
  {
    std::lock_guard lock(mutex_);
    if (e.attempts() <= after) {
      e.waiters_.emplace_back(after, std::move(done));
      return;
    }
  }
  done();
}

void CatalogLoader::when_loaded_on(Entry& e, std::uint64_t after, asio::any_io_executor executor,
                                   std::function<void()> done) {
  when_loaded(e, after, [executor = std::move(executor), done = std::move(done)] { asio::post(executor, done); });
}

void CatalogLoader::start_load(Entry& e) {
  if (e.loading_) {
    e.again_ = true;
    return;
  }
  e.loading_ = true;
  e.last_attempt_ = std::chrono::steady_clock::now();
  asio::post(io_, [this, p = &e] { asio::co_spawn(io_, load(p), asio::detached); });
}

void CatalogLoader::finished(Entry& e, rewrite::CatalogPtr catalog, std::string error) {
  std::vector<std::function<void()>> ready;
  bool first = false, had_one = false, announce_failure = false;
  double took_ms = 0;
  {
    std::lock_guard lock(mutex_);
    // Read under the lock: a session's refresh() may start the next load, and
    // set last_attempt_, while this one is being logged (ThreadSanitizer).
    took_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - e.last_attempt_).count();
    had_one = e.catalog_ != nullptr;
    if (catalog) {
      first = !had_one;
      {
        std::lock_guard guard(e.catalog_mutex_);
        e.catalog_ = catalog;
      }
      e.generation_.store(catalog->generation(), std::memory_order_release);
      e.error_.clear();
      e.announced_ = false;
    } else {
      announce_failure = !e.announced_ || e.error_ != error;
      e.announced_ = true;
      e.error_ = error;
    }
    e.loading_ = false;
    const std::uint64_t attempts = e.attempts_.fetch_add(1, std::memory_order_acq_rel) + 1;
    for (auto it = e.waiters_.begin(); it != e.waiters_.end();) {
      if (attempts > it->first) {
        ready.push_back(std::move(it->second));
        it = e.waiters_.erase(it);
      } else {
        ++it;
      }
    }
    if (e.again_) {
      e.again_ = false;
      start_load(e);
    }
  }
  if (catalog) {
    log_loaded(e, *catalog, first, took_ms);
  } else if (announce_failure) {
    log_failed(e, error, had_one);
  }
  for (auto& f : ready) f();
}

awaitable<void> CatalogLoader::load(Entry* e) {
  std::string user;
  std::shared_ptr<const protocol::PassThrough> pass_through;
  {
    std::lock_guard lock(mutex_);
    user = e->user_;
    pass_through = e->pass_through_;
  }
  const config::Side side = e->side();
  std::string error;
  rewrite::CatalogPtr catalog;
  const config::ServerLogin* credentials = config::find_login(ctx_.cfg.logins(side), user);
  if (!credentials && !pass_through) {
    error = fmt::format("no [[{}.login]] for user {}", config::to_string(side), user);
    finished(*e, nullptr, std::move(error));
    co_return;
  }
  ServerConn conn(tcp::socket(io_), ctx_.cfg.buffer_size);
  const ConnectResult r = co_await connect_server(ctx_.cfg.upstream(side), ctx_.tls(side), conn);
  if (r.ec) {
    finished(*e, nullptr, r.detail);
    co_return;
  }
  const std::string& as = credentials && !credentials->user.empty() ? credentials->user : user;
  const Params params{{"user", as},
                      {"database", ctx_.cfg.database_on(side, e->database())},
                      {"application_name", "pgshift-catalog"}};
  LoginInfo info;
  std::unique_ptr<protocol::ClientAuth> auth = credentials ? std::make_unique<protocol::ClientAuth>(as, credentials->password)
                                                           : pass_through->client_auth(as);
  asio::steady_timer login_timer(io_, ctx_.cfg.upstream(side).connect_timeout);
  auto logged_in = co_await (login(conn, ctx_.limits, params, *auth, info, error) || login_timer.async_wait(use_tuple));
  if (logged_in.index() == 1) error = "the server did not answer the login in time";
  if (logged_in.index() == 1 || !std::get<0>(logged_in)) {
    conn.stream.close();
    finished(*e, nullptr, std::move(error));
    co_return;
  }
  // format_type() and pg_get_expr() qualify every name outside the path.
  std::string sql = "SET search_path = pg_catalog; ";
  sql.append(rewrite::catalog_query());
  QueryResult result;
  asio::steady_timer query_timer(io_, kQueryTimeout);
  auto answered = co_await (simple_query(conn, ctx_.limits, sql, result) || query_timer.async_wait(use_tuple));
  if (answered.index() == 1) error = "the catalog query did not finish in time";
  else if (!std::get<0>(answered)) error = "the connection was lost";
  else if (!result.ok()) error = "the catalog query failed: " + result.error;
  else catalog = rewrite::Catalog::build(result.rows, next_generation_.fetch_add(1) + 1);
  std::string bye;
  protocol::append_terminate(bye);
  co_await conn.stream.write(asio::buffer(bye));
  conn.stream.close();
  finished(*e, std::move(catalog), std::move(error));
}

awaitable<void> CatalogLoader::tick() {
  asio::steady_timer timer(io_);
  for (;;) {
    timer.expires_after(ctx_.cfg.rewrite.catalog_refresh);
    co_await timer.async_wait(use_tuple);
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mutex_);
    for (auto& [key, e] : entries_) {
      if (!e->error_.empty() && now - e->last_attempt_ < kRetryAfterFailure) continue;
      start_load(*e);
    }
  }
}

std::vector<CatalogLoader::Info> CatalogLoader::info() const {
  std::vector<Info> out;
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  for (const auto& [key, e] : entries_) {
    Info i;
    i.side = e->side();
    i.database = e->database();
    i.error = e->error_;
    if (e->catalog_) {
      i.tables = e->catalog_->table_count();
      i.columns = e->catalog_->column_count();
      i.sequences = e->catalog_->sequence_count();
      i.generation = e->catalog_->generation();
      i.age_seconds = std::chrono::duration<double>(now - e->catalog_->loaded_at()).count();
    }
    out.push_back(std::move(i));
  }
  return out;
}

std::string CatalogLoader::summary() const {
  std::size_t tables = 0, missing = 0;
  double oldest = -1;
  for (const Info& i : info()) {
    if (i.age_seconds < 0) {
      ++missing;
      continue;
    }
    tables += i.tables;
    oldest = std::max(oldest, i.age_seconds);
  }
  if (oldest < 0 && missing == 0) return {};
  std::string s = fmt::format("{}tables/{:.1f}s", tables, std::max(oldest, 0.0));
  if (missing) s += fmt::format("/{}unread", missing);
  return s;
}

}  // namespace pgshift::proxy
