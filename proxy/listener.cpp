#include "proxy/listener.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/signal_set.hpp>

#include "proxy/catalog_loader.hpp"
#include "proxy/cutover/coordinator.hpp"
#include "proxy/http/server.hpp"
#include "proxy/reload.hpp"
#include "proxy/server_conn.hpp"
#include "proxy/session.hpp"
#include "proxy/shadow_applier.hpp"
#include "proxy/tls.hpp"

namespace pgshift::proxy {

namespace {

// With mirroring, commits are numbered in the order their confirmations are
// read; on several I/O threads one session's thread can get through a whole
// round trip before another's reads an earlier confirmation, so the default
// is then one thread.
unsigned io_threads(const config::Config& cfg) {
  const bool mirroring = cfg.shadow.enabled && cfg.shadow.mirror;
  if (cfg.threads) {
    if (mirroring && cfg.threads > 1)
      spdlog::warn("shadow: {} I/O threads: commits of different threads may reach the shadow out of order; "
                   "threads = 1 keeps the primary's order", cfg.threads);
    return cfg.threads;
  }
  return mirroring ? 1u : std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace

Listener::Listener(config::Config cfg) : ctx_(std::move(cfg)) {
  const unsigned n = io_threads(ctx_.cfg);
  std::vector<Reloader::Thread> reloaded;
  for (unsigned i = 0; i < n; ++i) {
    ios_.push_back(std::make_unique<asio::io_context>(1));
    threads_.push_back(std::make_unique<IoThread>());
    build_io_thread(*threads_.back(), ctx_.settings.get(), n);
    reloaded.push_back({ios_.back().get(), threads_.back().get()});
  }
  reloader_ = std::make_unique<Reloader>(ctx_, std::move(reloaded), [this](SettingsPtr s) {
    if (applier_) applier_->reconfigure(std::move(s));
  });
  ctx_.reloader = reloader_.get();
  metrics_ = std::make_unique<Metrics>(ctx_);
  ctx_.metrics = metrics_.get();
}

Listener::~Listener() {
  if (http_) http_->stop();
  if (applier_) applier_->stop();
  if (catalogs_) catalogs_->stop();
}

// A restart must not undo a cutover: the state file decides which server
// serves, whatever the configuration says.
bool Listener::restore_state(cutover::State& state) {
  std::string error;
  std::optional<cutover::State> saved = cutover::load_state(ctx_.cfg.cutover.state_file, error);
  if (!error.empty()) {
    spdlog::critical("cutover: {}", error);
    return false;
  }
  if (!saved) return true;
  if (!ctx_.cfg.shadow.enabled && saved->serving == config::Side::shadow) {
    spdlog::critical("cutover: {} says the [shadow] server serves (phase {}, epoch {}), but the configuration has no "
                     "[shadow]: refusing to serve the old primary",
                     ctx_.cfg.cutover.state_file, cutover::to_string(saved->phase), saved->epoch);
    return false;
  }
  state = *saved;
  if (state.serving == config::Side::shadow)
    spdlog::warn("cutover: {} says the cutover happened (phase {}, epoch {}, {}): serving the shadow server {}:{}",
                 ctx_.cfg.cutover.state_file, cutover::to_string(state.phase), state.epoch, state.changed,
                 ctx_.cfg.shadow.server.address.host, ctx_.cfg.shadow.server.address.port);
  else
    spdlog::info("cutover: state file {}: phase {}, epoch {}", ctx_.cfg.cutover.state_file,
                 cutover::to_string(state.phase), state.epoch);
  return true;
}

int Listener::run() {
  std::string error;
  ctx_.client_tls = make_client_tls(ctx_.cfg.client_tls, error);
  if (error.empty()) ctx_.server_tls = make_server_tls(ctx_.cfg.primary.tls, error);
  if (error.empty() && ctx_.cfg.shadow.enabled) ctx_.shadow_tls = make_server_tls(ctx_.cfg.shadow.server.tls, error);
  if (!error.empty()) {
    spdlog::critical("{}", error);
    return 2;
  }

  asio::io_context& main_io = *ios_[0];
  auto endpoint_ready = [&]() -> bool {
    error_code ec;
    auto addr = asio::ip::make_address(ctx_.cfg.listen.host, ec);
    if (ec) {
      spdlog::critical("listen address '{}' is not an IP address", ctx_.cfg.listen.host);
      return false;
    }
    tcp::endpoint ep(addr, ctx_.cfg.listen.port);
    acceptor_ = std::make_unique<tcp::acceptor>(main_io);
    acceptor_->open(ep.protocol(), ec);
    if (!ec) acceptor_->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_->bind(ep, ec);
    if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      spdlog::critical("cannot listen on {}:{}: {}", ctx_.cfg.listen.host, ctx_.cfg.listen.port, ec.message());
      return false;
    }
    return true;
  };
  if (!endpoint_ready()) return 2;

  spdlog::info("pgshift {} listening on {}:{}, primary {}:{}, {} I/O thread(s), {} rename rule(s){}", PGSHIFT_VERSION,
               ctx_.cfg.listen.host, ctx_.cfg.listen.port, ctx_.cfg.primary.address.host,
               ctx_.cfg.primary.address.port, ios_.size(), ctx_.cfg.renames.size(),
               ctx_.cfg.rewrite.strict ? " (strict)" : "");  // the state file may say the shadow serves: see below

  cutover::State state;
  if (!restore_state(state)) return 2;
  ctx_.serving = state.serving;
  // The catalog: needed by rename rules (to resolve as PostgreSQL does) and
  // by exact mirroring (to judge writes; in logical mode the subscription
  // carries the primary's rows, so there is nothing to capture).
  const bool exact = ctx_.cfg.shadow.enabled && ctx_.cfg.shadow.mirror && ctx_.cfg.shadow.exact &&
                     ctx_.cfg.shadow.sync != config::SyncMode::logical;
  if (!ctx_.cfg.renames.empty() || exact) {
    for (const config::RenameRule& r : ctx_.cfg.renames) ctx_.renamed_tables.emplace_back(r.schema, r.table);
    catalogs_ = std::make_unique<CatalogLoader>(ctx_);
    ctx_.catalogs = catalogs_.get();
    catalogs_->start();
    const std::string& user = ctx_.cfg.cutover.control_user.empty() ? std::string("postgres") : ctx_.cfg.cutover.control_user;
    for (const std::string& db : ctx_.cfg.cutover.databases) catalogs_->entry(state.serving, db, user);
    spdlog::info("catalog: read per database at first use{}{}", exact ? "; exact mirroring is on" : "",
                 ctx_.cfg.rewrite.catalog_refresh.count() > 0
                     ? fmt::format(", and again every {} ms", ctx_.cfg.rewrite.catalog_refresh.count())
                     : std::string());
  }
  if (state.phase == cutover::Phase::reads) ctx_.read_percent = state.read_percent;
  if (ctx_.cfg.shadow.enabled && ctx_.cfg.shadow.mirror && state.phase != cutover::Phase::completed) {
    const config::Shadow& sh = ctx_.cfg.shadow;
    const config::Side target = config::other(state.serving);
    const config::Upstream& up = ctx_.cfg.upstream(target);
    ctx_.mirror = std::make_unique<shadow::Mirror>(sh.queue_transactions, sh.queue_bytes);
    ctx_.compare_rules = compare_rules(sh.compare);
    applier_ = std::make_unique<ShadowApplier>(ctx_.cfg, *ctx_.mirror,
                                               std::array{ctx_.server_tls.get(), ctx_.shadow_tls.get()}, ctx_.limits,
                                               target);
    if (CatalogLoader* loader = catalogs_.get()) {
      applier_->on_schema_change = [loader, this](const std::string& database) {
        loader->refresh(config::other(ctx_.serving.load()), database);
      };
      applier_->catalog_summary = [loader] { return loader->summary(); };
    }
    applier_->start();
    ctx_.mismatches = &applier_->mismatch_log();
    spdlog::info("shadow: mirroring committed writes to the {} server {}:{} (mismatches to {})",
                 config::to_string(target), up.address.host, up.address.port, sh.mismatch_log);
  }
  if (ctx_.cfg.shadow.enabled) {
    verifier_ = std::make_unique<verify::Verifier>(ctx_);
    ctx_.verifier = verifier_.get();
    coordinator_ = std::make_unique<cutover::Coordinator>(ctx_, main_io, state);
    ctx_.coordinator = coordinator_.get();
    coordinator_->start();
  }

  if (ctx_.cfg.admin.http_listen) {
    http_ = std::make_unique<HttpServer>(ctx_, *metrics_);
    if (!http_->listen(*ctx_.cfg.admin.http_listen, error)) {
      spdlog::critical("{}", error);
      return 2;
    }
    http_->start();
  }

  asio::co_spawn(main_io, accept_loop(), asio::detached);
  asio::co_spawn(main_io, wait_for_signal(), asio::detached);
  asio::co_spawn(main_io, reload_on_signal(), asio::detached);
  if (ctx_.mirror) asio::co_spawn(main_io, clear_diverged_on_signal(), asio::detached);

  std::vector<std::thread> threads;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  for (auto& io : ios_) guards.emplace_back(io->get_executor());
  for (std::size_t i = 1; i < ios_.size(); ++i) threads.emplace_back([io = ios_[i].get()] { io->run(); });
  main_io.run();
  for (auto& g : guards) g.reset();
  for (auto& io : ios_) io->stop();
  for (auto& t : threads) t.join();
  spdlog::info("pgshift stopped");
  return 0;
}

awaitable<void> Listener::accept_loop() {
  for (;;) {
    const std::size_t slot = next_io_++ % ios_.size();
    asio::io_context& io = *ios_[slot];
    auto [ec, socket] = co_await acceptor_->async_accept(io, use_tuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_->is_open()) co_return;
      spdlog::warn("accept failed: {}", ec.message());
      // Out of file descriptors and similar: back off instead of spinning.
      asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds(50));
      co_await pause.async_wait(use_tuple);
      continue;
    }
    auto session = std::make_shared<Session>(std::move(socket), ctx_, *threads_[slot]);
    {
      std::lock_guard lock(ctx_.live_mutex);
      ctx_.live.insert(session);
    }
    asio::co_spawn(io, session->run(), asio::detached);
  }
}

awaitable<void> Listener::wait_for_signal() {
  asio::signal_set signals(co_await asio::this_coro::executor, SIGINT, SIGTERM);
  auto [ec, sig] = co_await signals.async_wait(use_tuple);
  if (ec) co_return;
  spdlog::info("received {}: no longer accepting; waiting up to {} ms for {} session(s)",
               sig == SIGINT ? "SIGINT" : "SIGTERM", ctx_.settings.get()->cfg.shutdown_timeout.count(),
               ctx_.sessions.load());
  error_code ignored;
  acceptor_->close(ignored);
  co_await drain();
  for (auto& io : ios_) io->stop();
}

// SIGUSR1: the operator has brought the shadow back in line (a fresh copy of
// the primary, say) and clears the diverged mark.
awaitable<void> Listener::clear_diverged_on_signal() {
  asio::signal_set signals(co_await asio::this_coro::executor, SIGUSR1);
  for (;;) {
    auto [ec, sig] = co_await signals.async_wait(use_tuple);
    if (ec) co_return;
    const shadow::Status s = ctx_.mirror->status();
    ctx_.mirror->clear_diverged();
    spdlog::warn("shadow: diverged mark cleared by SIGUSR1 (was {}{})", s.diverged ? "set: " : "not set",
                 s.diverged_reason);
  }
}

// SIGHUP: read the configuration file again (as RELOAD does).
awaitable<void> Listener::reload_on_signal() {
  asio::signal_set signals(co_await asio::this_coro::executor, SIGHUP);
  for (;;) {
    auto [ec, sig] = co_await signals.async_wait(use_tuple);
    if (ec) co_return;
    // Logs what it did, or why it changed nothing. (Kept in a variable: GCC 12
    // destroys a discarded co_await result twice.)
    const admin::Answer done = co_await reloader_->reload("SIGHUP");
    (void)done;
  }
}

awaitable<void> Listener::drain() {
  auto live_count = [this] {
    std::lock_guard lock(ctx_.live_mutex);
    return ctx_.live.size();
  };
  const auto deadline = std::chrono::steady_clock::now() + ctx_.settings.get()->cfg.shutdown_timeout;
  asio::steady_timer tick(co_await asio::this_coro::executor);
  bool forced = false;
  while (live_count() > 0) {
    if (!forced && std::chrono::steady_clock::now() >= deadline) {
      forced = true;
      std::vector<std::shared_ptr<Session>> left;
      {
        std::lock_guard lock(ctx_.live_mutex);
        left.assign(ctx_.live.begin(), ctx_.live.end());
      }
      spdlog::warn("shutdown timeout: closing {} session(s)", left.size());
      for (auto& s : left) s->terminate();
    }
    tick.expires_after(std::chrono::milliseconds(20));
    co_await tick.async_wait(use_tuple);
    if (forced && std::chrono::steady_clock::now() >= deadline + std::chrono::seconds(5)) break;
  }
}

}  // namespace pgshift::proxy
