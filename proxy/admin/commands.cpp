#include "proxy/admin/commands.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "proxy/catalog_loader.hpp"
#include "proxy/cutover/coordinator.hpp"
#include "proxy/session.hpp"
#include "proxy/verify/verifier.hpp"

namespace pgshift::proxy::admin {

namespace {

using Clock = std::chrono::steady_clock;
using Kind = Command::Kind;

std::string seconds_since(Clock::time_point t) {
  return fmt::format("{:.1f}", std::chrono::duration<double>(Clock::now() - t).count());
}

std::string_view transaction_text(char status) {
  switch (status) {
    case 'I': return "idle";
    case 'T': return "in transaction";
    case 'E': return "in failed transaction";
    default: return "?";
  }
}

Answer show_version() {
  Answer a;
  a.tag = "SHOW";
  a.table.columns = {"version"};
  a.table.rows.push_back({std::string("pgshift ") + PGSHIFT_VERSION});
  return a;
}

Answer show_sessions(ProxyContext& ctx) {
  Answer a;
  a.tag = "SHOW";
  a.table.columns = {"id", "client", "user", "database", "server", "transaction", "state_for_s", "age_s", "ran"};
  for (const auto& [id, weak] : ctx.members.snapshot()) {
    auto s = weak.lock();
    if (!s) continue;
    const SessionInfo i = s->info();
    a.table.rows.push_back({std::to_string(id), i.peer, i.user, i.database, std::string(config::to_string(i.server)),
                            std::string(transaction_text(i.transaction)), seconds_since(i.status_since),
                            seconds_since(i.started), i.state});
  }
  return a;
}

// One row per catalog snapshot: its size and age.
void add_catalog_rows(const CatalogLoader& loader, Table& t) {
  for (const CatalogLoader::Info& i : loader.info()) {
    std::string v = i.age_seconds < 0
                        ? "not read: " + i.error
                        : fmt::format("{} tables, {} columns, {} sequences, generation {}, read {:.1f} s ago{}", i.tables,
                                      i.columns, i.sequences, i.generation, i.age_seconds,
                                      i.error.empty() ? "" : " (the last read failed: " + i.error + ")");
    t.rows.push_back({fmt::format("catalog {}/{}", config::to_string(i.side), i.database), std::move(v)});
  }
}

Answer show_shadow(ProxyContext& ctx) {
  if (!ctx.mirror) return Answer::error("55000", "no [shadow] is mirrored to");
  const shadow::Status s = ctx.mirror->status();
  Answer a;
  a.tag = "SHOW";
  a.table = pairs({{"mirror", ctx.mirror->enabled() ? "on" : "stopped (cutover completed)"},
                   {"committed", std::to_string(s.committed)},
                   {"applied", std::to_string(s.applied)},
                   {"pending", std::to_string(s.pending)},
                   {"pending_bytes", std::to_string(s.pending_bytes)},
                   {"lag_s", fmt::format("{:.3f}", s.lag_seconds)},
                   {"dropped", std::to_string(s.dropped)},
                   {"failed", std::to_string(s.failed)},
                   {"reads_skipped", std::to_string(s.reads_skipped)},
                   {"compared", std::to_string(s.statements_compared)},
                   {"mismatches", std::to_string(s.mismatches)},
                   {"connected", s.connected ? "yes" : "no"},
                   {"diverged", s.diverged ? "yes: " + s.diverged_reason : "no"},
                   {"captured", std::to_string(s.captured)},
                   {"not_exact", std::to_string(s.not_exact)}});
  if (ctx.catalogs) add_catalog_rows(*ctx.catalogs, a.table);
  return a;
}

// REFRESH CATALOG: every database's catalog is read again; answers once
// the loads finished (or after a few seconds), one row per server and database.
awaitable<Answer> refresh_catalog(ProxyContext& ctx, const Caller& caller) {
  if (!ctx.catalogs) co_return Answer::error("55000", "no catalog is kept: there are no rename rules and no exact mirroring");
  spdlog::info("admin: {} runs REFRESH CATALOG", caller.who);
  co_await ctx.catalogs->refresh_all_and_wait(std::chrono::seconds(10));
  Answer a;
  a.tag = "REFRESH CATALOG";
  a.table.columns = {"server", "database", "tables", "columns", "sequences", "generation", "age_s", "error"};
  for (const CatalogLoader::Info& i : ctx.catalogs->info())
    a.table.rows.push_back({std::string(config::to_string(i.side)), i.database, std::to_string(i.tables),
                            std::to_string(i.columns), std::to_string(i.sequences), std::to_string(i.generation),
                            i.age_seconds < 0 ? std::string("-") : fmt::format("{:.1f}", i.age_seconds), i.error});
  co_return a;
}

Answer clear_diverged(ProxyContext& ctx, const Caller& caller) {
  if (!ctx.mirror) return Answer::error("55000", "no [shadow] is mirrored to");
  const shadow::Status s = ctx.mirror->status();
  ctx.mirror->clear_diverged();
  spdlog::warn("shadow: diverged mark cleared by {} (was {}{})", caller.who, s.diverged ? "set: " : "not set",
               s.diverged_reason);
  Answer a;
  a.tag = "CLEAR DIVERGED";
  return a;
}

// VERIFY [table, ...]: starts verify in the background; SHOW VERIFY follows it.
Answer start_verify(ProxyContext& ctx, const Caller& caller, const Command& c) {
  if (!ctx.verifier) return Answer::error("55000", "no [shadow] configured: there is nothing to verify against");
  std::string why;
  if (!ctx.verifier->start(c.tables, caller.who, why)) return Answer::error("55006", why);
  Answer a;
  a.tag = "VERIFY";
  a.table = pairs({{"verify", "started in the background; SHOW VERIFY shows its progress and result"}});
  return a;
}

// Runs a coordinator command on the coordinator's thread.
awaitable<Answer> on_coordinator(cutover::Coordinator& c, awaitable<Answer> (cutover::Coordinator::*f)()) {
  co_return co_await asio::co_spawn(c.executor(), (c.*f)(), asio::use_awaitable);
}

}  // namespace

awaitable<Answer> run_command(ProxyContext& ctx, const Caller& caller, const Command& c) {
  if (!caller.admin) co_return Answer::error("42501", "permission denied: not logged in as the [admin] user");
  using Coord = cutover::Coordinator;
  cutover::Coordinator* coord = ctx.coordinator;
  auto needs_target = [&]() { return Answer::error("55000", "no [shadow] configured: there is nothing to cut over to"); };
  switch (c.kind) {
    case Kind::empty: {
      Answer a;
      a.tag = "";
      co_return a;
    }
    case Kind::unknown:
      co_return Answer::error("42601", "pgshift admin console: " + c.what +
                                           " (commands: SHOW CUTOVER | SESSIONS | SHADOW | SYNC | VERIFY | VERSION, CUTOVER [DRY "
                                           "RUN | READS n | ABORT | ROLLBACK | COMPLETE], PAUSE, RESUME, CLEAR DIVERGED, SYNC START, "
                                           "VERIFY [table, ...], REFRESH CATALOG)");
    case Kind::verify:
      co_return start_verify(ctx, caller, c);
    case Kind::show:
      if (c.what == "version") co_return show_version();
      if (c.what == "sessions") co_return show_sessions(ctx);
      if (c.what == "shadow") co_return show_shadow(ctx);
      if (c.what == "verify") co_return ctx.verifier ? ctx.verifier->show() : needs_target();
      if (c.what == "cutover") {
        if (!coord) co_return needs_target();
        co_return co_await on_coordinator(*coord, &Coord::show);
      }
      if (c.what == "sync") {
        if (!coord) co_return needs_target();
        co_return co_await on_coordinator(*coord, &Coord::show_sync);
      }
      co_return Answer::error("42704", "SHOW " + c.what + ": unknown (try SHOW CUTOVER, SESSIONS, SHADOW, SYNC, VERIFY, VERSION)");
    case Kind::clear_diverged:
      co_return clear_diverged(ctx, caller);
    case Kind::refresh_catalog:
      co_return co_await refresh_catalog(ctx, caller);
    default:
      break;
  }
  if (!coord) co_return needs_target();
  spdlog::info("admin: {} runs {}", caller.who,
               c.kind == Kind::cutover    ? std::string("CUTOVER")
               : c.kind == Kind::dry_run  ? "CUTOVER DRY RUN"
               : c.kind == Kind::abort    ? "CUTOVER ABORT"
               : c.kind == Kind::rollback ? "CUTOVER ROLLBACK"
               : c.kind == Kind::complete ? "CUTOVER COMPLETE"
               : c.kind == Kind::pause    ? "PAUSE"
               : c.kind == Kind::reads    ? "CUTOVER READS " + std::to_string(c.number)
               : c.kind == Kind::sync_start ? std::string("SYNC START")
                                          : "RESUME");
  switch (c.kind) {
    case Kind::cutover: co_return co_await on_coordinator(*coord, &Coord::cutover);
    case Kind::dry_run: co_return co_await on_coordinator(*coord, &Coord::dry_run);
    case Kind::abort: co_return co_await on_coordinator(*coord, &Coord::abort);
    case Kind::rollback: co_return co_await on_coordinator(*coord, &Coord::rollback);
    case Kind::complete: co_return co_await on_coordinator(*coord, &Coord::complete);
    case Kind::pause: co_return co_await on_coordinator(*coord, &Coord::pause);
    case Kind::resume: co_return co_await on_coordinator(*coord, &Coord::resume);
    case Kind::sync_start: co_return co_await on_coordinator(*coord, &Coord::sync_start);
    case Kind::reads:
      co_return co_await asio::co_spawn(coord->executor(), coord->reads(static_cast<int>(c.number)), asio::use_awaitable);
    default: co_return Answer::error("XX000", "unhandled command");
  }
}

}  // namespace pgshift::proxy::admin
