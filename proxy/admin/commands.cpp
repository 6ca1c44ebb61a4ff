#include "proxy/admin/commands.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "proxy/catalog_loader.hpp"
#include "proxy/cutover/coordinator.hpp"
#include "proxy/reload.hpp"
#include "proxy/session.hpp"
#include "proxy/stats.hpp"
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

std::string fingerprint_text(std::uint64_t fp) { return fp ? fmt::format("{:016x}", fp) : std::string(); }

std::string server_text(const ProxyContext& ctx, config::Side s) {
  const config::Upstream& u = ctx.cfg.upstream(s);
  return fmt::format("{} ({}:{})", config::to_string(s), u.address.host, u.address.port);
}

Answer show_version() {
  Answer a;
  a.tag = "SHOW";
  a.table.columns = {"version"};
  a.table.rows.push_back({std::string("pgshift ") + PGSHIFT_VERSION});
  return a;
}

// The session table, for SHOW SESSIONS and KILL SESSION.
std::vector<std::shared_ptr<Session>> live_sessions(ProxyContext& ctx) {
  std::lock_guard lock(ctx.live_mutex);
  std::vector<std::shared_ptr<Session>> out(ctx.live.begin(), ctx.live.end());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a->id() < b->id(); });
  return out;
}

Answer show_sessions(ProxyContext& ctx) {
  Answer a;
  a.tag = "SHOW";
  a.table.columns = {"id",          "client", "user",       "database",   "state",           "server",
                     "transaction", "age_s",  "statements", "last_statement", "state_for_s", "holds"};
  for (const auto& s : live_sessions(ctx)) {
    const SessionInfo i = s->status();
    const std::string state = !i.logged_in ? "logging in" : i.admin ? "admin console" : "forwarding";
    a.table.rows.push_back({std::to_string(i.session), i.peer, i.user, i.database, state,
                            i.admin || !i.logged_in ? "" : std::string(config::to_string(i.server)),
                            std::string(transaction_text(i.transaction)), seconds_since(i.started),
                            std::to_string(i.statements), fingerprint_text(i.last_fingerprint),
                            seconds_since(i.status_since), i.state});
  }
  return a;
}

awaitable<Answer> kill_session(ProxyContext& ctx, const Caller& caller, std::uint64_t id) {
  for (const auto& s : live_sessions(ctx)) {
    if (s->id() != id) continue;
    const SessionInfo i = s->status();
    spdlog::warn("admin: {} runs KILL SESSION {} ({}, user {}, database {})", caller.who, id, i.peer, i.user,
                 i.database);
    s->terminate("killed by the admin console (KILL SESSION)");
    Answer a;
    a.tag = "KILL SESSION";
    co_return a;
  }
  co_return Answer::error("42704", fmt::format("KILL SESSION: no session {} (see SHOW SESSIONS)", id));
}

// The figures of the shadow's status line, the worst statements among them.
std::string worst(const ProxyContext& ctx) {
  if (!ctx.mismatches) return "";
  std::string out;
  const auto m = ctx.mismatches->mismatched();
  for (std::size_t i = 0; i < m.size() && i < 3; ++i)
    out += fmt::format("{}{:016x} {}/{}", out.empty() ? "" : ", ", m[i].fingerprint, m[i].counts.mismatched,
                       m[i].counts.compared);
  return out;
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
                   {"target", server_text(ctx, config::other(ctx.serving.load()))},
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
                   {"not_exact", std::to_string(s.not_exact)},
                   {"worst", worst(ctx)}});
  if (ctx.catalogs) add_catalog_rows(*ctx.catalogs, a.table);
  return a;
}

Answer show_mismatches(ProxyContext& ctx) {
  if (!ctx.mismatches) return Answer::error("55000", "no [shadow] is mirrored to");
  Answer a;
  a.tag = "SHOW";
  a.table.columns = {"fingerprint", "statement", "compared", "mismatched", "last_reason", "last_seen"};
  for (const auto& m : ctx.mismatches->mismatched())
    a.table.rows.push_back({fingerprint_text(m.fingerprint), m.statement, std::to_string(m.counts.compared),
                            std::to_string(m.counts.mismatched), m.reason, shadow::iso8601_utc(m.last_seen)});
  return a;
}

Answer show_status(ProxyContext& ctx) {
  const stats::Figures f = stats::totals();
  const SettingsPtr settings = ctx.settings.get();
  std::vector<std::pair<std::string, std::string>> items;
  items.emplace_back("version", std::string("pgshift ") + PGSHIFT_VERSION);
  items.emplace_back("uptime_s", seconds_since(ctx.started));
  items.emplace_back("phase", ctx.coordinator ? std::string(cutover::to_string(ctx.coordinator->state().phase))
                                              : std::string("proxy (no [shadow])"));
  const config::Side serving = ctx.serving.load();
  items.emplace_back("serving", server_text(ctx, serving));
  items.emplace_back("receives mirrored writes", ctx.mirror && ctx.mirror->enabled()
                                                     ? server_text(ctx, config::other(serving))
                                                     : std::string("none"));
  std::size_t admin = 0, total = 0;
  for (const auto& s : live_sessions(ctx)) {
    ++total;
    admin += s->status().admin ? 1 : 0;
  }
  items.emplace_back("sessions", std::to_string(ctx.sessions.load()));
  items.emplace_back("admin_sessions", std::to_string(admin));
  items.emplace_back("connections", std::to_string(total));
  items.emplace_back("transactions", std::to_string(f.transactions));
  items.emplace_back("statements", std::to_string(f.all_statements()));
  for (std::size_t k = 0; k < stats::kKinds; ++k)
    items.emplace_back("statements_" + std::string(rewrite::to_string(static_cast<rewrite::StatementKind>(k))),
                       std::to_string(f.statements[k]));
  items.emplace_back("rewritten", std::to_string(f.rewritten));
  items.emplace_back("refused", std::to_string(f.refused));
  items.emplace_back("client_bytes_in", std::to_string(f.client_bytes_in));
  items.emplace_back("client_bytes_out", std::to_string(f.client_bytes_out));
  items.emplace_back("rename_rules", std::to_string(settings->cfg.renames.size()));
  items.emplace_back("config_version", std::to_string(settings->version));
  Answer a;
  a.tag = "SHOW";
  a.table = pairs(std::move(items));
  if (ctx.catalogs) add_catalog_rows(*ctx.catalogs, a.table);
  return a;
}

Answer show_rules(ProxyContext& ctx) {
  const SettingsPtr settings = ctx.settings.get();
  Answer a;
  a.tag = "SHOW";
  a.table.columns = {"rule", "table", "from", "to", "renamed_on", "phase"};
  const auto& rules = settings->cfg.renames;
  for (std::size_t i = 0; i < rules.size(); ++i) {
    const config::RenameRule& r = rules[i];
    const char* side = r.renamed_on == config::RenameSide::primary  ? "primary"
                       : r.renamed_on == config::RenameSide::shadow ? "shadow"
                                                                    : "both";
    a.table.rows.push_back({std::to_string(i), r.schema + "." + r.table, r.from, r.to, std::string(side),
                            std::string(r.expand ? "expand" : "contract")});
  }
  return a;
}

Answer show_config(ProxyContext& ctx) {
  const SettingsPtr settings = ctx.settings.get();
  Answer a;
  a.tag = "SHOW";
  a.table.columns = {"setting", "value", "reloadable"};
  a.table.rows.push_back({"config.version", std::to_string(settings->version), ""});
  a.table.rows.push_back({"config.file", ctx.cfg.source, ""});
  a.table.rows.push_back({"config.applied", settings->applied_at.empty()
                                                ? std::string("at start")
                                                : settings->applied_at + " by " + settings->applied_by,
                          ""});
  for (auto& [k, v] : config::describe(settings->cfg))
    a.table.rows.push_back({k, std::move(v), std::string(config::reloadable(k) ? "yes" : "no")});
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
                                           " (commands: SHOW STATUS | SESSIONS | SHADOW | MISMATCHES | RULES | CONFIG | "
                                           "CUTOVER | SYNC | VERIFY | VERSION, CUTOVER [DRY RUN | READS n | ABORT | ROLLBACK | "
                                           "COMPLETE], PAUSE, RESUME, RELOAD, CLEAR DIVERGED, KILL SESSION id, SYNC START, "
                                           "VERIFY [table, ...], REFRESH CATALOG)");
    case Kind::verify:
      co_return start_verify(ctx, caller, c);
    case Kind::show:
      spdlog::debug("admin: {} runs SHOW {}", caller.who, c.what);
      if (c.what == "version") co_return show_version();
      if (c.what == "status") co_return show_status(ctx);
      if (c.what == "sessions") co_return show_sessions(ctx);
      if (c.what == "shadow") co_return show_shadow(ctx);
      if (c.what == "mismatches") co_return show_mismatches(ctx);
      if (c.what == "rules") co_return show_rules(ctx);
      if (c.what == "config") co_return show_config(ctx);
      if (c.what == "verify") co_return ctx.verifier ? ctx.verifier->show() : needs_target();
      if (c.what == "cutover") {
        if (!coord) co_return needs_target();
        co_return co_await on_coordinator(*coord, &Coord::show);
      }
      if (c.what == "sync") {
        if (!coord) co_return needs_target();
        co_return co_await on_coordinator(*coord, &Coord::show_sync);
      }
      co_return Answer::error("42704", "SHOW " + c.what +
                                           ": unknown (try SHOW STATUS, SESSIONS, SHADOW, MISMATCHES, RULES, CONFIG, "
                                           "CUTOVER, SYNC, VERIFY, VERSION)");
    case Kind::clear_diverged:
      co_return clear_diverged(ctx, caller);
    case Kind::reload:
      if (!ctx.reloader) co_return Answer::error("55000", "reload is not available");
      spdlog::info("admin: {} runs RELOAD", caller.who);
      co_return co_await ctx.reloader->reload(caller.who);
    case Kind::kill_session:
      co_return co_await kill_session(ctx, caller, static_cast<std::uint64_t>(c.number));
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
