#include "proxy/cutover/coordinator.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/system_timer.hpp>
#include <map>

#include "proxy/http/metrics.hpp"
#include "proxy/session.hpp"
#include "proxy/verify/verifier.hpp"

namespace pgshift::proxy::cutover {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

std::string ms_text(double ms) { return fmt::format("{:.1f} ms", ms); }

// The value at quantile q of sorted values (nearest rank).
double quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const std::size_t rank = static_cast<std::size_t>(q * static_cast<double>(sorted.size()) + 0.999999);
  return sorted[std::min(sorted.size(), std::max<std::size_t>(rank, 1)) - 1];
}

std::string time_text(const config::Cutover::TimePoint& t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

bool is_held(const auto& m) { return m.held && !m.to_close; }
bool is_closing(const auto& m) { return m.held && m.to_close; }
bool any_member(const auto&) { return true; }

}  // namespace

std::string_view Coordinator::to_string(Step s) noexcept {
  static constexpr std::string_view names[] = {"idle",        "preparing", "pausing", "draining", "catching up",
                                               "sequences",   "staging",   "fencing", "swapping"};
  return names[static_cast<std::size_t>(s)];
}

Coordinator::Coordinator(ProxyContext& ctx, asio::io_context& io, State initial)
    : ctx_(ctx), io_(io), wake_(io), persisted_(std::move(initial)), phase_(persisted_.phase), cut_(ctx.cfg.cutover) {
  timeline_.push_back({now_rfc3339(), phase_, phase_, "pgshift started"});
}

// A reload's guardrails and timeouts, taken between switches only.
void Coordinator::refresh() {
  if (!busy_) cut_ = ctx_.settings.get()->cfg.cutover;
}

std::vector<Coordinator::PhaseChange> Coordinator::timeline() const {
  std::lock_guard lock(mutex_);
  return {timeline_.begin(), timeline_.end()};
}

std::vector<sync::DatabaseStatus> Coordinator::sync_status() const {
  if (!watch_) return {};
  return watch_->snapshot();
}

void Coordinator::start() {
  asio::co_spawn(io_, sample(), asio::detached);
  if (logical()) {
    watch_ = std::make_unique<sync::Watch>(ctx_);
    asio::co_spawn(io_, watch_->run(busy_), asio::detached);
  }
  if (ctx_.cfg.cutover.at || ctx_.cfg.cutover.when_ready) asio::co_spawn(io_, scheduled(), asio::detached);
}

State Coordinator::state() const {
  std::lock_guard lock(mutex_);
  State s = persisted_;
  s.phase = phase_;
  return s;
}

SwitchRecord Coordinator::last_switch() const {
  std::lock_guard lock(mutex_);
  return record_;
}

// ---------------------------------------------------------------------------
// Reports from sessions: each posted to the coordinator's thread.

void Coordinator::on_prepared(std::uint64_t id, bool ok, std::string why) {
  asio::post(io_, [this, id, ok, why = std::move(why)]() mutable {
    auto it = members_.find(id);
    if (it == members_.end()) return;
    it->second.prepared = true;
    if (!ok && failure_.empty()) failure_ = describe(id, it->second) + ": " + why;
    wake();
  });
}

void Coordinator::on_held(std::uint64_t id, Held h) {
  asio::post(io_, [this, id, h = std::move(h)]() mutable {
    auto it = members_.find(id);
    if (it == members_.end()) return;
    Member& m = it->second;
    m.held = true;
    m.blocked = false;
    m.why = h.why;
    auto session = m.session.lock();
    if (!h.ready && !paused_ && failure_.empty()) failure_ = describe(id, m) + ": " + h.why;
    if (!h.movable && !paused_) {
      if (cut_.unmovable == config::Unmovable::close) {
        m.to_close = true;
      } else {  // "wait": it runs on and asks again at its next boundary
        m.held = false;
        m.blocked = true;
        if (session) session->switch_decide(Decision::retry_later);
      }
    }
    wake();
  });
}

void Coordinator::on_done(std::uint64_t id, Done d) {
  asio::post(io_, [this, id, d = std::move(d)]() mutable {
    auto it = members_.find(id);
    if (it == members_.end()) return;
    Member& m = it->second;
    if (d.decision == Decision::stage) {
      m.staged = d.ok;
      if (!d.ok && failure_.empty()) failure_ = describe(id, m) + ": " + d.why;
    } else if (d.decision != Decision::retry_later) {
      m.finished = true;
      m.done = d;
    }
    wake();
  });
}

void Coordinator::on_left(std::uint64_t id) {
  asio::post(io_, [this, id] {
    members_.erase(id);
    wake();
  });
}

// ---------------------------------------------------------------------------
// Guardrails: what must hold before a switch starts.

// Logical mode: every database's subscription streams, without errors, within the lag.
void Coordinator::sync_guardrails(std::vector<Check>& out) const {
  const config::Cutover& c = cut_;
  for (const sync::DatabaseStatus& d : watch_->snapshot()) {
    const sync::Status& st = d.status;
    const std::string where = "database " + d.database;
    std::string state = !d.error.empty()     ? d.error
                        : !st.subscribed     ? "not replicating (pgshift sync start)"
                        : !st.worker         ? "apply worker stopped"
                                             : fmt::format("{} of {} table(s) streaming", st.streaming(), st.tables.size());
    out.push_back({where + ": subscription streams", state, "every table", d.error.empty() && st.ready()});
    out.push_back({where + ": replication errors", std::to_string(st.apply_errors + st.sync_errors), "0",
                   st.apply_errors + st.sync_errors == 0});
    out.push_back({where + ": replication lag", fmt::format("{} bytes, {:.1f} ms", st.lag_bytes, st.lag_seconds * 1000),
                   fmt::format("{} ms", c.max_lag.count()), st.lag_seconds * 1000 <= static_cast<double>(c.max_lag.count())});
  }
}

std::vector<Coordinator::Check> Coordinator::guardrails(bool rollback) const {
  std::vector<Check> out;
  const config::Cutover& c = cut_;
  if (logical()) {
    const bool diverged = ctx_.mirror && ctx_.mirror->diverged();
    out.push_back({"target holds every write (not diverged)",
                   diverged ? "diverged: " + ctx_.mirror->status().diverged_reason : "yes", "yes", !diverged});
    sync_guardrails(out);
    if (rollback) return out;
  } else if (!ctx_.mirror) {
    out.push_back({"mirror", "off", "on", false});
    return out;
  }
  if (!ctx_.mirror) return out;
  const shadow::Status s = ctx_.mirror->status();
  if (!logical()) {
    out.push_back({"target connected", s.connected ? "yes" : (s.committed == 0 ? "no writes yet" : "no"), "yes",
                   s.connected || s.committed == 0});
    out.push_back({"target holds every write (not diverged)", s.diverged ? "diverged: " + s.diverged_reason : "yes",
                   "yes", !s.diverged});
    out.push_back({"mirror lag", ms_text(s.lag_seconds * 1000), fmt::format("{} ms", c.max_lag.count()),
                   s.lag_seconds * 1000 <= static_cast<double>(c.max_lag.count())});
    if (rollback) return out;
  }
  // Mismatches over the window: the first sample inside it against now.
  std::uint64_t compared = s.statements_compared, mismatched = s.mismatches;
  const auto since = Clock::now() - c.window;
  for (const Sample& x : samples_) {
    if (x.at < since) continue;
    compared = s.statements_compared - x.compared;
    mismatched = s.mismatches - x.mismatches;
    break;
  }
  const double rate = compared ? static_cast<double>(mismatched) / static_cast<double>(compared) : 0.0;
  out.push_back({fmt::format("mismatch rate over {} s", c.window.count()),
                 fmt::format("{:.5f} ({} of {})", rate, mismatched, compared), fmt::format("{}", c.max_mismatch_rate),
                 rate <= c.max_mismatch_rate});
  out.push_back({fmt::format("statements compared over {} s", c.window.count()), std::to_string(compared),
                 fmt::format(">= {}", c.min_compared), compared >= c.min_compared});
  if (c.require_verify_within.count() > 0) out.push_back(verify_guardrail());
  return out;
}

// [cutover] require_verify_within_s: the last VERIFY ended clean, recently.
Coordinator::Check Coordinator::verify_guardrail() const {
  const auto within = cut_.require_verify_within;
  Check check{fmt::format("clean VERIFY within {} s", within.count()), "none", "finished clean", false};
  if (!ctx_.verifier) return check;
  const verify::Verifier::Last v = ctx_.verifier->last();
  if (!v.finished) {
    check.value = v.running ? "none yet (one is running)" : "none";
    return check;
  }
  const auto age = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - *v.finished);
  check.value = fmt::format("{}, finished {} s ago{}", v.summary, age.count(), v.running ? " (another is running)" : "");
  check.ok = v.exit_code == 0 && age <= within;
  return check;
}

// ---------------------------------------------------------------------------
// Operator commands.

awaitable<admin::Answer> Coordinator::show() {
  refresh();
  const State st = state();
  const config::Side serving = ctx_.serving.load();
  std::vector<std::pair<std::string, std::string>> items;
  auto server = [&](config::Side s) {
    const config::Upstream& u = ctx_.cfg.upstream(s);
    return fmt::format("{} ({}:{})", config::to_string(s), u.address.host, u.address.port);
  };
  items.emplace_back("phase", std::string(cutover::to_string(st.phase)) +
                                  (busy_ && step_ != Step::idle ? " (" + std::string(to_string(step_)) + ")" : ""));
  items.emplace_back("serving", server(serving));
  const bool mirroring = ctx_.mirror && ctx_.mirror->enabled();
  items.emplace_back("receives mirrored writes", mirroring ? server(config::other(serving)) : "none");
  items.emplace_back("epoch", std::to_string(st.epoch));
  items.emplace_back("paused", paused_ ? "yes" : "no");
  if (st.phase == Phase::reads)
    items.emplace_back("reads served by the target",
                       fmt::format("{}% ({} units so far)", ctx_.read_percent.load(), ctx_.reads_routed.load()));
  items.emplace_back("sessions", std::to_string(ctx_.members.size()));
  if (!st.fenced.empty()) {
    std::string f;
    for (config::Side s : st.fenced) f += (f.empty() ? "" : ", ") + std::string(config::to_string(s));
    items.emplace_back("fenced (read-only)", f);
  }
  const config::Cutover& c = cut_;
  if (c.at) items.emplace_back("configured at", time_text(*c.at));
  if (c.when_ready) items.emplace_back("configured when ready", "yes");
  if (c.deadline) items.emplace_back("configured deadline", time_text(*c.deadline));
  const SwitchRecord r = last_switch();
  if (!r.kind.empty()) {
    items.emplace_back("last switch", fmt::format("{} from {} to {}", r.kind, config::to_string(r.from),
                                                  config::to_string(r.to)));
    items.emplace_back("started", r.started);
    items.emplace_back("finished", r.finished.empty() ? "(running)" : r.finished);
    items.emplace_back("result", r.result);
    for (const auto& [name, ms] : r.steps) items.emplace_back("step " + name, ms_text(ms));
    items.emplace_back("sessions moved", std::to_string(r.moved));
    items.emplace_back("sessions closed", std::to_string(r.closed));
    items.emplace_back("pause p50", ms_text(r.pause_p50_ms));
    items.emplace_back("pause p99", ms_text(r.pause_p99_ms));
    items.emplace_back("pause max", ms_text(r.pause_max_ms));
    items.emplace_back("sessions whose next message waited", std::to_string(r.waited));
    items.emplace_back("longest wait of a message", ms_text(r.wait_max_ms));
  }
  admin::Answer a;
  a.tag = "SHOW";
  a.table = admin::pairs(std::move(items));
  co_return a;
}

awaitable<admin::Answer> Coordinator::dry_run() {
  refresh();
  const State st = state();
  const bool rollback = st.phase == Phase::cut_over;
  admin::Answer a;
  a.tag = "CUTOVER";
  a.table.columns = {"check", "value", "limit", "result"};
  bool ok = st.phase == Phase::shadowing || st.phase == Phase::reads || rollback;
  a.table.rows.push_back({"phase", std::string(cutover::to_string(st.phase)),
                          rollback ? "cut_over (rollback)" : "shadowing or reads", ok ? "ok" : "FAILS"});
  for (const Check& c : guardrails(rollback)) {
    a.table.rows.push_back({c.name, c.value, c.limit, c.ok ? "ok" : "FAILS"});
    ok = ok && c.ok;
  }
  const config::Side to = config::other(ctx_.serving.load());
  if (ctx_.cfg.logins(config::other(to)).empty())
    a.table.rows.push_back({"reverse mirroring credentials",
                            fmt::format("no [[{}.login]]", config::to_string(config::other(to))), "",
                            "warning: a rollback would not keep the writes made after the switch"});
  // Sessions that would block the switch, or be closed by it.
  const auto now = Clock::now();
  for (const auto& [id, weak] : ctx_.members.snapshot()) {
    auto s = weak.lock();
    if (!s) continue;
    const SessionInfo i = s->info();
    const std::string who = fmt::format("session {} ({}, user {}, database {})", id, i.peer, i.user, i.database);
    if (!i.pass_through && !config::find_login(ctx_.cfg.logins(to), i.user)) {
      a.table.rows.push_back({who, fmt::format("no [[{}.login]] for user {}", config::to_string(to), i.user), "",
                              "would block"});
      ok = false;
    }
    if (i.transaction != 'I') {
      const double age = std::chrono::duration<double>(now - i.status_since).count();
      const bool blocks = age * 1000 > static_cast<double>(cut_.drain_timeout.count());
      a.table.rows.push_back({who, fmt::format("in a transaction for {:.1f} s", age),
                              fmt::format("{} ms (drain_timeout_ms)", cut_.drain_timeout.count()),
                              blocks ? "would block" : "waited for"});
      ok = ok && !blocks;
    }
    if (!i.state.empty())
      a.table.rows.push_back(
          {who, "ran " + i.state, "",
           cut_.unmovable == config::Unmovable::close
               ? "checked at the switch: temporary tables, WITH HOLD cursors and advisory locks close it"
               : "checked at the switch: temporary tables, WITH HOLD cursors and advisory locks block it"});
  }
  a.table.rows.push_back({"cutover would start", ok ? "yes" : "no", "", ok ? "ok" : "FAILS"});
  co_return a;
}

awaitable<admin::Answer> Coordinator::cutover() {
  refresh();
  const Phase p = state().phase;
  if (p != Phase::shadowing && p != Phase::reads)
    co_return admin::Answer::error("55000", fmt::format("CUTOVER needs the shadowing phase; the phase is {}{}",
                                                        cutover::to_string(p),
                                                        p == Phase::cut_over ? " (CUTOVER ROLLBACK switches back)" : ""));
  co_return co_await run_switch(false);
}

awaitable<admin::Answer> Coordinator::rollback() {
  refresh();
  const Phase p = state().phase;
  if (p != Phase::cut_over)
    co_return admin::Answer::error("55000", fmt::format("CUTOVER ROLLBACK needs the cut_over phase; the phase is {}",
                                                        cutover::to_string(p)));
  co_return co_await run_switch(true);
}

awaitable<admin::Answer> Coordinator::complete() {
  State st = state();
  if (st.phase != Phase::cut_over)
    co_return admin::Answer::error("55000", fmt::format("CUTOVER COMPLETE needs the cut_over phase; the phase is {}",
                                                        cutover::to_string(st.phase)));
  if (busy_) co_return admin::Answer::error("55000", "a switch or a PAUSE is in progress");
  st.phase = Phase::completed;
  std::string error;
  if (!persist(st, error)) co_return admin::Answer::error("58030", "cannot write the state file: " + error);
  if (ctx_.mirror) {
    ctx_.mirror->disable();
    ctx_.mirror->retarget(static_cast<std::uint8_t>(config::other(ctx_.serving.load())));  // closes its connections
  }
  std::vector<std::string> notes;
  if (logical()) {  // the reverse subscriptions, their slots and the publications go
    for (const std::string& db : ctx_.cfg.shadow.sync_databases) {
      sync::Replication reverse(ctx_, db, ctx_.serving.load());
      std::vector<std::string> removed;
      bool ok = co_await reverse.connect(error);
      if (ok) ok = co_await reverse.remove(true, removed, error);
      if (!ok) notes.push_back("database " + db + ": could not remove the reverse replication: " + error);
      for (const std::string& r : removed) notes.push_back("database " + db + ": removed " + r);
    }
  }
  move_to(Phase::completed, Step::idle, "CUTOVER COMPLETE: reverse mirroring stopped");
  admin::Answer a = co_await show();
  a.notices = std::move(notes);
  co_return a;
}

awaitable<admin::Answer> Coordinator::abort() {
  if (!busy_ || paused_) co_return admin::Answer::error("55000", "no switch is in progress");
  abort_requested_ = true;
  wake();
  admin::Answer a;
  a.tag = "CUTOVER";
  a.notices.push_back("abort requested: the switch resumes every session on the " +
                      std::string(config::to_string(ctx_.serving.load())) + " server");
  co_return a;
}

awaitable<admin::Answer> Coordinator::pause() {
  refresh();
  if (busy_) co_return admin::Answer::error("55000", paused_ ? "already paused" : "a switch is in progress");
  busy_ = paused_ = true;
  failure_.clear();
  members_.clear();
  add_members(ctx_.members.close_gate());
  spdlog::info("cutover: PAUSE: holding {} session(s) at their next transaction boundary", members_.size());
  for (auto& [id, m] : members_)
    if (auto s = m.session.lock()) s->switch_pause();
  const bool all = co_await wait_until([this] { return std::all_of(members_.begin(), members_.end(), [](auto& kv) {
                                          return kv.second.held;
                                        }); },
                                       cut_.drain_timeout, milliseconds(20));
  std::size_t held = 0;
  for (auto& [id, m] : members_) held += m.held ? 1 : 0;
  admin::Answer a;
  a.tag = "PAUSE";
  a.table = admin::pairs({{"held", std::to_string(held)},
                          {"still in a transaction", std::to_string(members_.size() - held)},
                          {"new connections", "wait until RESUME"}});
  if (!all)
    a.notices.push_back(fmt::format("{} session(s) still in a transaction after {} ms; they hold when it ends",
                                    members_.size() - held, cut_.drain_timeout.count()));
  co_return a;
}

awaitable<admin::Answer> Coordinator::resume() {
  if (!paused_) co_return admin::Answer::error("55000", "not paused");
  decide_all(Decision::release, any_member);
  members_.clear();
  ctx_.members.open_gate();
  busy_ = paused_ = false;
  spdlog::info("cutover: RESUME: sessions go on");
  admin::Answer a;
  a.tag = "RESUME";
  co_return a;
}

// CUTOVER READS <percent>: a share of read-only units goes to the target
// (session_reads.cpp); 0 sends every read back to the primary.
awaitable<admin::Answer> Coordinator::reads(int percent) {
  State st = state();
  if (st.phase != Phase::shadowing && st.phase != Phase::reads)
    co_return admin::Answer::error("55000", fmt::format("CUTOVER READS needs the shadowing or reads phase; the phase is {}",
                                                        cutover::to_string(st.phase)));
  if (busy_) co_return admin::Answer::error("55000", "a switch or a PAUSE is in progress");
  if (percent > 0) {
    if (logical())
      co_return admin::Answer::error("0A000", "CUTOVER READS is not offered in logical mode (a session's own writes "
                                              "could not be told apart from the stream's lag)");
    if (!ctx_.cfg.renames.empty())
      co_return admin::Answer::error("0A000", "CUTOVER READS does not route reads while [[rename]] rules are configured");
    if (!ctx_.mirror || !ctx_.mirror->enabled())
      co_return admin::Answer::error("55000", "no mirror to the target: its data would be stale");
    for (const Check& c : guardrails(true))
      if (!c.ok)
        co_return admin::Answer::error("55000", fmt::format("guardrail failed: {} is {} (limit {})", c.name, c.value, c.limit));
  }
  st.phase = percent > 0 ? Phase::reads : Phase::shadowing;
  st.read_percent = percent;
  std::string error;
  if (!persist(st, error)) co_return admin::Answer::error("58030", "cannot write the state file: " + error);
  ctx_.read_percent = percent;
  move_to(st.phase, Step::idle, fmt::format("{}% of read-only units go to the {} server", percent,
                                            config::to_string(config::other(ctx_.serving.load()))));
  admin::Answer a;
  a.tag = "CUTOVER";
  a.table = admin::pairs({{"phase", std::string(cutover::to_string(st.phase))},
                          {"reads served by the target", fmt::format("{}%", percent)},
                          {"read-only units served by the target so far", std::to_string(ctx_.reads_routed.load())}});
  co_return a;
}

// ---------------------------------------------------------------------------
// The switch.

awaitable<admin::Answer> Coordinator::run_switch(bool rollback) {
  if (busy_) co_return admin::Answer::error("55000", paused_ ? "paused: RESUME first" : "a switch is already running");
  if (!logical() && (!ctx_.mirror || !ctx_.mirror->enabled()))
    co_return admin::Answer::error("55000", "no mirror to the other server: nothing would hold its writes");
  busy_ = true;
  abort_requested_ = false;
  // The lag comes and goes with the load: give it the time a catch-up may take.
  auto all_hold = [&] {
    const std::vector<Check> checks = guardrails(rollback);
    return std::all_of(checks.begin(), checks.end(), [](const Check& c) { return c.ok; });
  };
  if (!all_hold()) co_await wait_until(all_hold, cut_.catchup_timeout, milliseconds(20));
  for (const Check& c : guardrails(rollback)) {
    if (c.ok && !abort_requested_) continue;
    busy_ = false;
    if (abort_requested_) co_return admin::Answer::error("55000", "CUTOVER ABORT before the switch began");
    co_return admin::Answer::error("55000", fmt::format("guardrail failed: {} is {} (limit {}); see CUTOVER DRY RUN",
                                                        c.name, c.value, c.limit));
  }
  const config::Side from = ctx_.serving.load(), to = config::other(from);
  const int read_percent = ctx_.read_percent.exchange(0);  // reads go back to the serving server meanwhile
  failure_.clear();
  members_.clear();
  {
    std::lock_guard lock(mutex_);
    record_ = SwitchRecord{};
    record_.kind = rollback ? "rollback" : "cutover";
    record_.from = from;
    record_.to = to;
    record_.started = now_rfc3339();
    record_.began = Clock::now();
  }
  move_to(rollback ? Phase::rollback : Phase::cutover, Step::preparing,
          fmt::format("switching from the {} server to the {} server", config::to_string(from), config::to_string(to)));

  std::string why;
  bool ok = co_await prepare(to, why);
  if (ok) {
    step(Step::pausing);
    add_members(ctx_.members.close_gate());
    for (auto& [id, m] : members_)
      if (auto s = m.session.lock()) {
        if (!m.prepared) s->switch_prepare(to);  // joined since: prepared when it holds
        s->switch_pause();
      }
    step(Step::draining);
    ok = co_await drain(why);
  }
  if (ok) {
    step(Step::catching_up);
    ok = co_await catch_up(why);
  }
  bool lifted = false;  // the target was fenced as an earlier switch's old server
  if (ok) {
    step(Step::sequences);
    ok = co_await lift_fence(to, lifted, why);  // one co_await per statement (GCC 12)
    if (ok) ok = co_await copy_sequences_to(to, why);
  }
  if (ok) {
    step(Step::staging);
    ok = co_await stage(why);
  }
  const State before = state();
  if (ok) {
    State next = before;
    next.epoch += 1;
    next.serving = to;
    next.phase = rollback ? Phase::shadowing : Phase::cut_over;
    next.read_percent = 0;
    std::erase(next.fenced, to);
    const bool fence_old = cut_.fence_old == config::Fence::read_only;
    if (fence_old && std::find(next.fenced.begin(), next.fenced.end(), from) == next.fenced.end())
      next.fenced.push_back(from);
    std::string error;
    if (!persist(next, error)) {
      ok = false;
      why = "cannot write the state file: " + error;
    } else if (fence_old) {
      step(Step::fencing);
      ok = co_await raise_fence(from, why);
      if (!ok) {
        State back = before;
        back.phase = rollback ? Phase::cut_over : Phase::shadowing;
        persist(back, error);
      }
    }
  }
  if (!ok) {
    if (lifted) {  // leave the target as it was found
      std::string ignored;
      co_await set_read_only(ctx_, *controls_[1], true, ignored);
    }
    ctx_.read_percent = read_percent;
    co_await abort_switch(why);
    co_return report(false, why);
  }
  co_await swap(from, to);
  co_return report(true, {});
}

awaitable<bool> Coordinator::prepare(config::Side to, std::string& why) {
  // The control connections first: a target that cannot be reached stops
  // the switch before any session is touched.
  controls_.clear();
  for (const auto& [db, user] : databases()) {
    for (config::Side side : {config::other(to), to}) {
      std::string error;
      std::unique_ptr<Control> c = co_await open_control(ctx_, side, db, user, error);
      if (!c) {
        why = "control connection: " + error;
        co_return false;
      }
      controls_.push_back(std::move(c));
    }
  }
  if (logical()) {  // the co_await out of &&: GCC 12 pitfall
    const bool prepared = co_await prepare_replication(config::other(to), why);
    if (!prepared) co_return false;
  }
  add_members(ctx_.members.snapshot());
  for (auto& [id, m] : members_)
    if (auto s = m.session.lock()) s->switch_prepare(to);
  const bool done = co_await wait_until(
      [this] {
        return !failure_.empty() ||
               std::all_of(members_.begin(), members_.end(), [](auto& kv) { return kv.second.prepared; });
      },
      cut_.prepare_timeout);
  if (!failure_.empty()) why = failure_;
  else if (abort_requested_) why = "CUTOVER ABORT";
  else if (!done) why = fmt::format("sessions were not prepared within {} ms", cut_.prepare_timeout.count());
  if (!done || !failure_.empty()) co_return false;
  // The pause lasts as long as the mirror needs to apply what is queued:
  // start it when little is, so that a momentary backlog passes first. Not
  // for long: a mirror that is behind all the time would keep the switch
  // waiting while its clients still run.
  constexpr std::uint64_t small_backlog = 100;
  const milliseconds backlog_wait = std::min(cut_.catchup_timeout, milliseconds(2000));
  bool small = true;  // not `logical() || co_await ...`: GCC 12 miscompiles a co_await inside ||
  if (!logical())
    small = co_await wait_until([this] { return ctx_.mirror->status().pending <= small_backlog; }, backlog_wait,
                                milliseconds(2));
  if (abort_requested_) {
    why = "CUTOVER ABORT";
    co_return false;
  }
  if (!small)
    spdlog::info("cutover: the mirror still has {} transaction(s) to apply; pausing anyway",
                 ctx_.mirror->status().pending);
  co_return true;
}

awaitable<bool> Coordinator::drain(std::string& why) {
  const bool done = co_await wait_until(
      [this] {
        return !failure_.empty() ||
               std::all_of(members_.begin(), members_.end(), [](auto& kv) { return kv.second.held; });
      },
      cut_.drain_timeout, milliseconds(20));
  if (!failure_.empty()) {
    why = failure_;
    co_return false;
  }
  if (abort_requested_) {
    why = "CUTOVER ABORT";
    co_return false;
  }
  if (done) co_return true;
  std::string blockers;
  std::size_t n = 0;
  for (auto& [id, m] : members_) {
    if (m.held) continue;
    if (++n <= 10) blockers += (blockers.empty() ? "" : "; ") + describe(id, m);
  }
  why = fmt::format("{} session(s) did not reach a transaction boundary within {} ms (drain_timeout_ms): {}{}", n,
                    cut_.drain_timeout.count(), blockers, n > 10 ? "; ..." : "");
  co_return false;
}

// Every transaction the old server committed is applied on the target: the
// mirror has nothing pending, and none was dropped or failed there.
awaitable<bool> Coordinator::catch_up(std::string& why) {
  if (logical()) co_return co_await catch_up_replication(why);
  shadow::Mirror& mirror = *ctx_.mirror;
  const bool done = co_await wait_until(
      [&] {
        const shadow::Status s = mirror.status();
        return s.diverged || s.pending == 0;
      },
      cut_.catchup_timeout, milliseconds(2));
  const shadow::Status s = mirror.status();
  if (s.diverged) why = "the target no longer holds every write: " + s.diverged_reason;
  else if (abort_requested_) why = "CUTOVER ABORT";
  else if (!done)
    why = fmt::format("the target did not catch up within {} ms (catchup_timeout_ms): {} transaction(s) pending",
                      cut_.catchup_timeout.count(), s.pending);
  co_return done && !s.diverged && !abort_requested_;
}

awaitable<bool> Coordinator::copy_sequences_to(config::Side to, std::string& why) {
  std::size_t total = 0;
  for (std::size_t i = 0; i + 1 < controls_.size(); i += 2) {  // pairs: (from, to) per database
    std::size_t copied = 0;
    if (!co_await copy_sequences(ctx_, *controls_[i], *controls_[i + 1], copied, why)) {
      why = fmt::format("database {}: {}", controls_[i]->database, why);
      co_return false;
    }
    total += copied;
  }
  spdlog::info("cutover: {} sequence(s) set on the {} server", total, config::to_string(to));
  co_return true;
}

awaitable<bool> Coordinator::stage(std::string& why) {
  decide_all(Decision::stage, is_held);
  const bool done = co_await wait_until(
      [this] {
        return !failure_.empty() || std::all_of(members_.begin(), members_.end(), [](auto& kv) {
                 return kv.second.to_close || kv.second.staged;
               });
      },
      cut_.catchup_timeout, milliseconds(5));
  if (!failure_.empty()) why = failure_;
  else if (abort_requested_) why = "CUTOVER ABORT";
  else if (!done) why = "sessions did not replay their state on the target in time";
  co_return done && failure_.empty() && !abort_requested_;
}

// The target was an earlier switch's old server and pgshift fenced it: it
// must take writes again before its sequences are set.
awaitable<bool> Coordinator::lift_fence(config::Side to, bool& lifted, std::string& why) {
  const State st = state();
  if (std::find(st.fenced.begin(), st.fenced.end(), to) == st.fenced.end()) co_return true;
  if (!co_await set_read_only(ctx_, *controls_[1], false, why)) co_return false;
  lifted = true;
  spdlog::info("cutover: the {} server takes writes again (fence lifted)", config::to_string(to));
  co_return true;
}

// Outside the coroutine: GCC 12 compiled this call, inside raise_fence, into
// a trap at the coroutine's first resume (seen at -O0 and -O2).
void Coordinator::log_fenced(config::Side from) {
  spdlog::warn("cutover: the {} server is fenced (default_transaction_read_only = on); to undo it there: "
               "ALTER SYSTEM RESET default_transaction_read_only; SELECT pg_reload_conf();",
               config::to_string(from));
}

// fence_old = "read_only": writes that bypass pgshift must not reach the old
// server once the other serves (split brain). Mirrored writes still do.
awaitable<bool> Coordinator::raise_fence(config::Side from, std::string& why) {
  const bool ok = co_await set_read_only(ctx_, *controls_[0], true, why);
  if (ok) log_fenced(from);
  co_return ok;
}

// Nothing here can fail: the state file already says `to` serves.
awaitable<void> Coordinator::swap(config::Side from, config::Side to) {
  step(Step::swapping);
  if (ctx_.mirror) ctx_.mirror->retarget(static_cast<std::uint8_t>(from));  // after every old transaction, before any new one
  ctx_.serving = to;
  decide_all(Decision::commit, is_held);
  decide_all(Decision::close, is_closing);
  ctx_.members.open_gate();
  if (logical()) finish_replication();
  co_await wait_until(
      [this] { return std::all_of(members_.begin(), members_.end(), [](auto& kv) { return kv.second.finished; }); },
      milliseconds(2000), milliseconds(5));
  std::vector<double> held;
  SwitchRecord r = last_switch();
  for (auto& [id, m] : members_) {
    if (!m.finished) continue;
    if (m.done.decision == Decision::close) {
      ++r.closed;
      continue;
    }
    ++r.moved;
    held.push_back(std::chrono::duration<double, std::milli>(m.done.held).count());
    if (m.done.waited.count() > 0) {
      ++r.waited;
      r.wait_max_ms = std::max(r.wait_max_ms, std::chrono::duration<double, std::milli>(m.done.waited).count());
    }
  }
  // Now that every session runs on `to`, the old connections close. A session
  // that has not reported yet still gets its commit first (same executor).
  for (auto& [id, m] : members_)
    if (auto s = m.session.lock(); s && !m.to_close) s->retire_old_server();
  std::sort(held.begin(), held.end());
  if (ctx_.metrics) ctx_.metrics->observe_pauses(held);
  r.pause_p50_ms = quantile(held, 0.50);
  r.pause_p99_ms = quantile(held, 0.99);
  r.pause_max_ms = held.empty() ? 0 : held.back();
  r.steps.emplace_back(std::string(to_string(Step::swapping)), ms_since(step_began_));
  r.finished = now_rfc3339();
  r.result = "done";
  {
    std::lock_guard lock(mutex_);
    record_ = r;
  }
  members_.clear();
  controls_.clear();
  busy_ = false;
  move_to(persisted_phase(), Step::idle,
          fmt::format("the {} server serves: {} session(s) moved, {} closed; pause p50 {:.1f} ms, p99 {:.1f} ms, "
                      "max {:.1f} ms",
                      config::to_string(to), r.moved, r.closed, r.pause_p50_ms, r.pause_p99_ms, r.pause_max_ms));
}

awaitable<void> Coordinator::abort_switch(const std::string& why) {
  if (frozen_) {  // the old direction streams again before anyone writes
    for (auto& rep : replications_) {
      std::string error;
      if (!co_await rep->unfreeze(error))
        spdlog::error("sync: database {}: cannot resume replication after the abort: {}", rep->database(), error);
    }
    frozen_ = false;
  }
  replications_.clear();
  decide_all(Decision::release, any_member);
  ctx_.members.open_gate();
  {
    std::lock_guard lock(mutex_);
    record_.steps.emplace_back(std::string(to_string(step_)), ms_since(step_began_));
    record_.finished = now_rfc3339();
    record_.result = "aborted: " + why;
  }
  members_.clear();
  controls_.clear();
  busy_ = false;
  abort_requested_ = false;
  move_to(persisted_phase(), Step::idle, "aborted, every session resumes on the " +
                                std::string(config::to_string(ctx_.serving.load())) + " server: " + why);
  co_return;
}

admin::Answer Coordinator::report(bool ok, const std::string& why) const {
  const SwitchRecord r = last_switch();
  admin::Answer a;
  a.tag = "CUTOVER";
  std::vector<std::pair<std::string, std::string>> items;
  items.emplace_back("result", r.result);
  for (const auto& [name, ms] : r.steps) items.emplace_back("step " + name, ms_text(ms));
  if (ok) {
    items.emplace_back("serving", std::string(config::to_string(r.to)));
    items.emplace_back("sessions moved", std::to_string(r.moved));
    items.emplace_back("sessions closed", std::to_string(r.closed));
    items.emplace_back("pause p50", ms_text(r.pause_p50_ms));
    items.emplace_back("pause p99", ms_text(r.pause_p99_ms));
    items.emplace_back("pause max", ms_text(r.pause_max_ms));
  } else {
    // An error, so that scripts (psql -v ON_ERROR_STOP=1, pgshift ctl) see it;
    // the steps go along as notices.
    for (const auto& [k, v] : items) a.notices.push_back(k + ": " + v);
    a.sqlstate = "55000";
    a.message = fmt::format("{} aborted, every session resumed on the {} server: {}", r.kind,
                            config::to_string(r.from), why);
    return a;
  }
  a.table = admin::pairs(std::move(items));
  return a;
}

// ---------------------------------------------------------------------------
// Logical mode: the subscriptions turn around.

// Before the pause: a connection pair per database, and on the target the
// publication the reverse direction will need (it must exist before that
// direction's slot, or the slot would not see the tables).
awaitable<bool> Coordinator::prepare_replication(config::Side from, std::string& why) {
  replications_.clear();
  frozen_ = false;
  for (const std::string& db : ctx_.cfg.shadow.sync_databases) {
    auto rep = std::make_unique<sync::Replication>(ctx_, db, from);
    std::string error;
    bool ok = co_await rep->connect(error);
    if (ok) ok = co_await rep->prepare_reverse(error);
    if (!ok) {
      why = "database " + db + ": " + error;
      co_return false;
    }
    replications_.push_back(std::move(rep));
  }
  co_return true;
}

// The target has applied everything the old server wrote; then that
// direction stops and the reverse one gets its slot, at this very point.
awaitable<bool> Coordinator::catch_up_replication(std::string& why) {
  for (auto& rep : replications_) {
    std::string error;
    if (!co_await rep->wait_applied(cut_.catchup_timeout, error)) {
      why = "database " + rep->database() + ": " + error;
      co_return false;
    }
  }
  frozen_ = true;
  for (auto& rep : replications_) {
    std::string error;
    if (!co_await rep->freeze_and_reverse_slot(error)) {
      why = "database " + rep->database() + ": " + error;
      co_return false;
    }
  }
  co_return true;
}

// After the swap, in the background: the old direction goes, and the old
// server subscribes to the new one from the slot made during the pause.
void Coordinator::finish_replication() {
  frozen_ = false;
  asio::co_spawn(io_, [this, reps = std::move(replications_)]() mutable -> awaitable<void> {
    for (auto& rep : reps) {
      std::string error;
      if (co_await rep->finish_reverse(error)) {
        spdlog::info("sync: database {}: the {} server now replicates from the {} server ({})", rep->database(),
                     config::to_string(rep->from()), config::to_string(rep->to()),
                     sync::subscription_name(rep->to(), rep->database()));
        continue;
      }
      const std::string why = "database " + rep->database() + ": reverse replication could not start: " + error;
      spdlog::error("sync: {}", why);
      if (ctx_.mirror) ctx_.mirror->mark_diverged(why);
    }
  }, asio::detached);
}

awaitable<admin::Answer> Coordinator::show_sync() {
  admin::Answer a;
  a.tag = "SHOW";
  a.table.columns = {"database", "table", "state", "rows", "bytes", "lag_bytes", "lag_s", "errors"};
  if (!watch_) co_return admin::Answer::error("55000", "[shadow] sync is \"mirror\": no logical replication to show");
  for (const sync::DatabaseStatus& d : watch_->snapshot()) {
    const sync::Status& st = d.status;
    const std::string errors = std::to_string(st.apply_errors + st.sync_errors);
    if (!d.error.empty() || !st.subscribed) {
      a.table.rows.push_back({d.database, std::nullopt, d.error.empty() ? "not replicating" : d.error, std::nullopt,
                              std::nullopt, std::nullopt, std::nullopt, errors});
      continue;
    }
    for (const sync::TableState& t : st.tables)
      a.table.rows.push_back({d.database, t.table, std::string(t.label()),
                              std::to_string(t.state == 'd' ? t.rows : t.estimated_rows), std::to_string(t.bytes),
                              std::to_string(st.lag_bytes), fmt::format("{:.3f}", st.lag_seconds), errors});
  }
  co_return a;
}

// SYNC START from the console: the same steps as `pgshift sync start`, in the
// background; SHOW SYNC follows the copy.
awaitable<admin::Answer> Coordinator::sync_start() {
  if (!logical())
    co_return admin::Answer::error("55000", "set [shadow] sync = \"logical\" first (and restart pgshift): with statement "
                                            "mirroring every write would reach the new database twice");
  if (busy_) co_return admin::Answer::error("55000", "a switch or a PAUSE is in progress");
  admin::Answer a;
  a.tag = "SYNC START";
  a.table.columns = {"database", "step"};
  for (const std::string& db : ctx_.cfg.shadow.sync_databases) {
    sync::Replication rep(ctx_, db, ctx_.serving.load());
    std::string error;
    if (!co_await rep.connect(error)) {
      a.table.rows.push_back({db, "cannot connect: " + error});
      continue;
    }
    std::vector<std::string> lines;
    co_await sync::start_database(rep, [&](const std::string& line) { lines.push_back(line); });
    for (std::string& l : lines) {
      spdlog::info("sync: {}", l);
      a.table.rows.push_back({db, std::move(l)});
    }
  }
  co_return a;
}

// ---------------------------------------------------------------------------
// Helpers.

// The one place the phase changes; every change is logged.
void Coordinator::move_to(Phase p, Step s, std::string_view why) {
  Phase before;
  {
    std::lock_guard lock(mutex_);
    before = phase_;
    phase_ = p;
    if (before != p) {
      timeline_.push_back({now_rfc3339(), before, p, std::string(why)});
      if (timeline_.size() > 100) timeline_.pop_front();
    }
  }
  step_ = s;
  step_began_ = Clock::now();
  if (before != p)
    spdlog::warn("cutover: phase {} -> {}{}{}", cutover::to_string(before), cutover::to_string(p),
                 why.empty() ? "" : ": ", why);
  else if (!why.empty())
    spdlog::info("cutover: {}", why);
}

void Coordinator::step(Step s) {
  {
    std::lock_guard lock(mutex_);
    record_.steps.emplace_back(std::string(to_string(step_)), ms_since(step_began_));
  }
  spdlog::info("cutover: {} ({:.1f} ms) -> {}", to_string(step_), ms_since(step_began_), to_string(s));
  step_ = s;
  step_began_ = Clock::now();
}

// Writes the state file; the phase in memory follows only through move_to().
bool Coordinator::persist(State next, std::string& error) {
  next.changed = now_rfc3339();
  if (!save_state(ctx_.cfg.cutover.state_file, next, error)) return false;
  std::lock_guard lock(mutex_);
  persisted_ = next;
  return true;
}

Phase Coordinator::persisted_phase() const {
  std::lock_guard lock(mutex_);
  return persisted_.phase;
}

void Coordinator::add_members(const std::vector<Members::Member>& members) {
  for (const auto& [id, weak] : members) members_[id].session = weak;
}

void Coordinator::decide_all(Decision d, bool (*which)(const Member&)) {
  for (auto& [id, m] : members_) {
    if (!which(m)) continue;
    if (auto s = m.session.lock()) s->switch_decide(d);
  }
}

// Waits until `done()` holds, the timeout passes, or an abort is requested;
// reports wake it, and conditions that no report announces are polled.
awaitable<bool> Coordinator::wait_until(const std::function<bool()>& done, milliseconds timeout, milliseconds poll) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (abort_requested_) co_return false;
    if (done()) co_return true;
    const auto now = Clock::now();
    if (now >= deadline) co_return false;
    wake_.expires_at(std::min(deadline, now + poll));
    co_await wake_.async_wait(use_tuple);
  }
}

// The databases whose sequences move: those sessions use now, and those
// configured; each with the client user whose [[X.login]] logs in there
// (control_user, else a session's user, else "postgres").
std::vector<std::pair<std::string, std::string>> Coordinator::databases() const {
  const std::string& fixed = cut_.control_user;
  std::map<std::string, std::string> dbs;
  for (const auto& [id, weak] : ctx_.members.snapshot())
    if (auto s = weak.lock()) {
      const SessionInfo i = s->info();
      dbs.try_emplace(i.database, fixed.empty() ? i.user : fixed);
    }
  const std::string fallback = fixed.empty() ? std::string("postgres") : fixed;
  for (const std::string& db : cut_.databases) dbs.try_emplace(db, fallback);
  if (dbs.empty()) dbs.emplace("postgres", fallback);  // the fence needs one connection anyway
  return {dbs.begin(), dbs.end()};
}

std::string Coordinator::describe(std::uint64_t id, const Member& m) const {
  auto s = m.session.lock();
  if (!s) return fmt::format("session {}", id);
  const SessionInfo i = s->info();
  std::string text = fmt::format("session {} ({}, user {}, database {}", id, i.peer, i.user, i.database);
  if (m.blocked) text += ", holds " + m.why;
  else if (i.transaction != 'I')
    text += fmt::format(", in a transaction for {:.1f} s",
                        std::chrono::duration<double>(Clock::now() - i.status_since).count());
  return text + ")";
}

// One sample a second of what the guardrails look at over a window.
awaitable<void> Coordinator::sample() {
  asio::steady_timer t(io_);
  for (;;) {
    if (ctx_.mirror) {
      const shadow::Status s = ctx_.mirror->status();
      samples_.push_back({Clock::now(), s.statements_compared, s.mismatches});
      const auto keep = std::max<std::chrono::seconds>(cut_.window, std::chrono::seconds(900));
      while (!samples_.empty() && samples_.front().at < Clock::now() - keep - std::chrono::seconds(2))
        samples_.pop_front();
    }
    t.expires_after(std::chrono::seconds(1));
    co_await t.async_wait(use_tuple);
  }
}

void Coordinator::log_missed_deadline(const std::string& last) const {
  spdlog::error("cutover: the configured cutover did not happen before its deadline {}{}",
                time_text(*ctx_.cfg.cutover.deadline), last.empty() ? "" : ": " + last);
}

// [cutover] at / when_ready: the same CUTOVER as the command, at the
// configured point, tried again every second while a guardrail fails or the
// switch aborts, until it succeeds or the deadline passes.
awaitable<void> Coordinator::scheduled() {
  const config::Cutover& c = ctx_.cfg.cutover;
  asio::system_timer t(io_);
  if (c.at) {
    spdlog::info("cutover: configured for {}", time_text(*c.at));
    t.expires_at(*c.at);
    co_await t.async_wait(use_tuple);
  }
  std::string last;
  for (;;) {
    refresh();
    const Phase p = state().phase;
    if (p != Phase::shadowing && p != Phase::reads) co_return;  // done, or done by hand
    if (c.deadline && std::chrono::system_clock::now() > *c.deadline) {
      log_missed_deadline(last);
      co_return;
    }
    std::string failing;
    for (const Check& g : guardrails(false))
      if (!g.ok) failing += (failing.empty() ? "" : "; ") + fmt::format("{} is {} (limit {})", g.name, g.value, g.limit);
    if (failing.empty() && !busy_) {
      const admin::Answer a = co_await run_switch(false);
      if (state().phase == Phase::cut_over) co_return;
      failing = a.notices.empty() ? a.message : a.notices.front();
    }
    if (failing != last) spdlog::warn("cutover: configured cutover waits: {}", failing.empty() ? "busy" : failing);
    last = failing;
    t.expires_after(std::chrono::seconds(1));
    co_await t.async_wait(use_tuple);
  }
}

}  // namespace pgshift::proxy::cutover
