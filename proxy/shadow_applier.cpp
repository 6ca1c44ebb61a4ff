#include "proxy/shadow_applier.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <algorithm>
#include <cstdlib>

#include "protocol/builder.hpp"
#include "protocol/log_text.hpp"
#include "protocol/messages.hpp"
#include "proxy/backend.hpp"
#include "proxy/frame_io.hpp"
#include "proxy/live.hpp"

namespace pgshift::proxy {

using namespace asio::experimental::awaitable_operators;
using protocol::Direction;

namespace {

constexpr auto reconnect_backoff = std::chrono::seconds(1);
constexpr std::size_t max_in_flight = 256;       // transactions sent and not yet answered
constexpr std::size_t batch_bytes = 64 * 1024;   // written at once, at most (about)

// Outcomes of writes compare by command tag (with its row count) and by
// error against success (SQLSTATE); with `count_only` (a captured statement,
// which the shadow ran as pgshift's own) by the row count alone.
shadow::Comparison compare_outcome(const shadow::Outcome& p, const shadow::Outcome& s, bool count_only = false) {
  shadow::Comparison c;
  if (p.error.has_value() != s.error.has_value() || (p.error && p.error->sqlstate != s.error->sqlstate)) {
    c.match = false;
    c.reason = "error";
  } else if (!p.error && !count_only && p.tag != s.tag) {
    c.match = false;
    c.reason = "tag";
  } else if (!p.error && count_only && shadow::parse_tag(p.tag).count != shadow::parse_tag(s.tag).count) {
    c.match = false;
    c.reason = "tag";
  }
  return c;
}

// A transaction the shadow rolled back: its COMMIT came back as ROLLBACK.
bool rolled_back(const shadow::StatementOutcome& p, const shadow::Outcome& s) {
  return !p.sqlstate && p.tag == "COMMIT" && !s.error && s.tag == "ROLLBACK";
}

shadow::Outcome outcome_of(const shadow::StatementOutcome& o) {
  shadow::Outcome out;
  out.tag = o.tag;
  if (o.sqlstate) out.error = shadow::Error{*o.sqlstate, {}};
  out.complete = true;
  return out;
}

}  // namespace

shadow::CompareRules compare_rules(const config::CompareRules& c) {
  shadow::CompareRules r;
  r.ignore_columns = c.ignore_columns;
  for (const std::string& f : c.ignore_fingerprints) r.ignore_fingerprints.push_back(std::strtoull(f.c_str(), nullptr, 16));
  r.numeric_tolerance = c.numeric_tolerance;
  return r;
}

ShadowApplier::ShadowApplier(const config::Config& cfg, shadow::Mirror& mirror, std::array<ssl::context*, 2> tls,
                             const protocol::Limits& limits, config::Side target)
    : cfg_(cfg),
      apply_timeout_(cfg.shadow.apply_timeout),
      idle_timeout_(cfg.shadow.idle_timeout),
      status_interval_(cfg.shadow.status_interval),
      mirror_(mirror),
      tls_(tls),
      target_(target),
      limits_(limits),
      rules_(compare_rules(cfg.shadow.compare)),
      log_(shadow::MismatchLog::Options{cfg.shadow.mismatch_log, cfg.shadow.redact}) {
  if (cfg.shadow.sync == config::SyncMode::logical) gate_ = std::make_unique<sync::ReadGate>(cfg, tls, limits);
}

ShadowApplier::~ShadowApplier() { stop(); }

// ignore_columns stays: the sessions' recorders digest the primary's rows
// with it, and both sides must leave out the same columns.
void ShadowApplier::reconfigure(std::shared_ptr<const Settings> s) {
  asio::post(io_, [this, s = std::move(s)] {
    const config::Shadow& sh = s->cfg.shadow;
    apply_timeout_ = sh.apply_timeout;
    idle_timeout_ = sh.idle_timeout;
    status_interval_ = sh.status_interval;
    const shadow::CompareRules fresh = compare_rules(sh.compare);
    rules_.ignore_fingerprints = fresh.ignore_fingerprints;
    rules_.numeric_tolerance = fresh.numeric_tolerance;
  });
}

void ShadowApplier::start() {
  // Producers wake the applier only when it sleeps; one post per idle period.
  mirror_.on_work([this] {
    if (idle_.exchange(false)) asio::post(io_, [this] { wake_.cancel(); });
  });
  asio::co_spawn(io_, run(), asio::detached);
  asio::co_spawn(io_, watch(), asio::detached);
  asio::co_spawn(io_, report_status(), asio::detached);
  thread_ = std::thread([this] { io_.run(); });
}

void ShadowApplier::stop() {
  if (!thread_.joinable()) return;
  mirror_.on_work({});
  io_.stop();
  thread_.join();
}

// ---------------------------------------------------------------------------
// Dispatch: take transactions in commit order, send them pipelined.

awaitable<void> ShadowApplier::run() {
  for (;;) {
    while (shadow::TransactionPtr t = mirror_.next()) co_await dispatch(std::move(t));
    co_await flush_batch();  // the queue is empty: what is batched goes out now
    idle_ = true;
    if (shadow::TransactionPtr t = mirror_.next()) {  // queued while idle_ was still false
      idle_ = false;
      co_await dispatch(std::move(t));
      continue;
    }
    wake_.expires_after(std::chrono::seconds(1));
    co_await wake_.async_wait(use_tuple);
  }
}

awaitable<void> ShadowApplier::dispatch(shadow::TransactionPtr t) {
  using Kind = shadow::Transaction::Kind;
  if (t->kind == Kind::close_session) {
    if (batch_to_ && batch_to_->session == t->session) co_await flush_batch();
    co_await close_session(t->session);
    co_return;
  }
  if (t->kind == Kind::dropped) co_return;  // counted when it was dropped
  if (t->kind == Kind::retarget) {
    co_await retarget(static_cast<config::Side>(t->target));
    co_return;
  }
  if (t->read && gate_) {  // compare like with like: the stream must have brought the read's moment
    const bool ready = co_await gate_->caught_up(*t, target_);
    if (!ready) {
      mirror_.skipped(*t);
      co_return;
    }
  }
  std::string error;
  ConnectionPtr c = co_await connection_for(*t, error);
  if (!c) {
    mirror_.dropped(*t, error);
    co_return;
  }
  // Commit order: another connection gets transactions only once every one
  // sent before is answered.
  if (active_ && active_ != c) {
    co_await flush_batch();
    co_await wait_in_flight(0);
  }
  if (in_flight_ >= max_in_flight) {
    co_await flush_batch();
    co_await wait_in_flight(max_in_flight - 1);
  }
  if (c->broken) {  // while we waited
    mirror_.dropped(*t, "the shadow connection failed");
    co_return;
  }
  if (c->key.empty()) stop_using(t->session);
  else use(c, t->session);
  co_await send(c, std::move(t));
}

// Appends the transaction to the batch for its connection, preceded by its
// session's settings when the connection has others (RESET ALL, then each
// SET; before any Parse, which resolves names with search_path) and by the
// named statements the connection does not have yet (each Parse with its own
// Sync, so that one failing does not hide the others).
awaitable<void> ShadowApplier::send(const ConnectionPtr& c, shadow::TransactionPtr t) {
  if (batch_to_ && batch_to_ != c) co_await flush_batch();
  InFlight f;
  append_transaction(*c, *t, batch_, f);
  f.t = std::move(t);
  f.sent = std::chrono::steady_clock::now();
  c->in_flight.push_back(std::move(f));
  ++in_flight_;
  active_ = c;
  batch_to_ = c;
  if (!c->reading) {
    c->reading = true;
    asio::co_spawn(io_, read_replies(c), asio::detached);
  }
  if (batch_.size() >= batch_bytes) co_await flush_batch();
}

void ShadowApplier::append_transaction(Connection& c, const shadow::Transaction& t, std::string& out, InFlight& f) {
  if (!shadow::same_settings(c.settings, t.settings)) {
    protocol::append_query(out, "RESET ALL");
    f.setup = 1;
    const std::size_t n = t.settings ? t.settings->statements.size() : 0;
    for (std::size_t i = 0; i < n; ++i) protocol::append_query(out, t.settings->statements[i].second);
    f.setup += static_cast<std::uint32_t>(n);
  }
  c.settings = t.settings_after;
  for (const auto& [name, parse] : t.statements) {
    auto it = c.prepared.find(name);
    if (it != c.prepared.end() && it->second == parse) continue;
    if (it != c.prepared.end()) protocol::append_close(out, 'S', name);
    out += parse;
    protocol::append_sync(out);
    c.prepared[name] = parse;
    f.prepared.emplace_back(name, parse);
  }
  out += t.messages;
}

awaitable<void> ShadowApplier::flush_batch() {
  if (!batch_to_) co_return;
  const ConnectionPtr c = std::move(batch_to_);
  batch_to_.reset();
  auto [ec, n] = co_await c->server->stream.write(asio::buffer(batch_));
  batch_.clear();
  if (ec) break_connection(*c);  // its reader drops what is in flight
}

awaitable<void> ShadowApplier::wait_in_flight(std::size_t at_most) {
  while (in_flight_ > at_most) {
    progress_.expires_at(std::chrono::steady_clock::time_point::max());
    co_await progress_.async_wait(use_tuple);
  }
}

// A shared connection counts the open sessions that use it; one that has
// had none for a while is closed (see close_idle).
void ShadowApplier::use(const ConnectionPtr& c, std::uint64_t session) {
  ConnectionPtr& used = user_of_[session];
  if (used == c) return;
  if (used) release(*used);
  used = c;
  ++c->users;
}

void ShadowApplier::stop_using(std::uint64_t session) {
  auto it = user_of_.find(session);
  if (it == user_of_.end()) return;
  release(*it->second);
  user_of_.erase(it);
}

void ShadowApplier::release(Connection& c) {
  if (--c.users == 0) c.idle_since = std::chrono::steady_clock::now();
}

awaitable<void> ShadowApplier::close_idle() {
  const auto now = std::chrono::steady_clock::now();
  std::vector<ConnectionPtr> idle;
  for (const auto& [key, c] : shared_) {
    if (c->users == 0 && c->in_flight.empty() && now - c->idle_since > idle_timeout_) idle.push_back(c);
  }
  for (const ConnectionPtr& c : idle) {
    forget(*c);  // before the write below: the dispatcher must not pick it meanwhile
    co_await terminate(c);
    spdlog::info("shadow: closed a shared connection no session has used for {} ms",
                 idle_timeout_.count());
  }
  // Logical mode's connections to the primary for re-run reads (moved_on).
  std::vector<ConnectionPtr> rereads;
  for (auto it = rereads_.begin(); it != rereads_.end();) {
    const ConnectionPtr& c = it->second;
    if (c && c->reading) {
      ++it;
    } else if (!c || now - c->idle_since > idle_timeout_) {
      if (c) rereads.push_back(c);
      it = rereads_.erase(it);
    } else {
      ++it;
    }
  }
  for (const ConnectionPtr& c : rereads) co_await terminate(c);
}

awaitable<void> ShadowApplier::close_session(std::uint64_t session) {
  stop_using(session);
  auto it = own_.find(session);
  if (it == own_.end()) co_return;  // it used a shared connection, or none
  const ConnectionPtr c = std::move(it->second);
  own_.erase(it);
  c->closing = true;
  if (!c->reading) co_await terminate(c);  // otherwise its reader does, once all is answered
}

// A cutover swapped the servers. Everything before this point in the queue
// goes to the old target, so it is answered before any connection moves; the
// connections are then closed, and later transactions open new ones to `to`.
awaitable<void> ShadowApplier::retarget(config::Side to) {
  co_await flush_batch();
  co_await wait_in_flight(0);
  std::vector<ConnectionPtr> all;
  for (auto& [k, c] : shared_) all.push_back(c);
  for (auto& [k, c] : own_) all.push_back(c);
  for (auto& [k, c] : rereads_)
    if (c) all.push_back(c);
  shared_.clear();
  own_.clear();
  rereads_.clear();
  user_of_.clear();
  active_.reset();
  for (const ConnectionPtr& c : all) co_await terminate(c);
  target_ = to;
  retry_after_ = {};
  refused_until_.clear();
  spdlog::info("shadow: mirroring to the {} server from now on ({}:{})", config::to_string(to),
               cfg_.upstream(to).address.host, cfg_.upstream(to).address.port);
}

awaitable<void> ShadowApplier::terminate(ConnectionPtr c) {
  if (c->broken) co_return;
  std::string bye;
  protocol::append_terminate(bye);
  co_await c->server->stream.write(asio::buffer(bye));
  c->server->stream.close();
  c->broken = true;
}

// A connection that fails or times out is closed; its reader then drops
// every transaction in flight on it.
void ShadowApplier::break_connection(Connection& c) {
  if (c.broken) return;
  c.broken = true;
  c.server->stream.close();
  forget(c);
  mirror_.set_connected(false);
}

void ShadowApplier::forget(const Connection& c) {
  if (auto it = shared_.find(c.key); !c.key.empty() && it != shared_.end() && it->second.get() == &c) shared_.erase(it);
  if (auto it = own_.find(c.session); c.session && it != own_.end() && it->second.get() == &c) own_.erase(it);
}

awaitable<void> ShadowApplier::watch() {
  asio::steady_timer timer(io_);
  for (;;) {
    timer.expires_after(std::chrono::seconds(1));
    co_await timer.async_wait(use_tuple);
    if (active_ && !active_->in_flight.empty() &&
        std::chrono::steady_clock::now() - active_->in_flight.front().sent > apply_timeout_) {
      active_->timed_out = true;
      break_connection(*active_);
    }
    co_await close_idle();
  }
}

awaitable<void> ShadowApplier::report_status() {
  asio::steady_timer timer(io_);
  for (;;) {
    timer.expires_after(status_interval_);
    co_await timer.async_wait(use_tuple);
    const shadow::Status s = mirror_.status();
    const std::string catalog = catalog_summary ? catalog_summary() : std::string();
    spdlog::info(
        "shadow: committed={} applied={} pending={} ({} bytes) lag={:.2f}s dropped={} compared={} mismatches={} "
        "captured={} not_exact={} connected={} diverged={}{}{}{}{}",
        s.committed, s.applied, s.pending, s.pending_bytes, s.lag_seconds, s.dropped, s.statements_compared,
        s.mismatches, s.captured, s.not_exact, s.connected ? "yes" : "no", s.diverged ? "yes" : "no",
        s.diverged ? " (" + s.diverged_reason + ")" : std::string(), catalog.empty() ? "" : " catalog=" + catalog,
        gate_ ? fmt::format(" reads_skipped={}", s.reads_skipped) : std::string(),
        s.mismatches ? worst_statements() : std::string());
  }
}

// " worst: FINGERPRINT MISMATCHED/COMPARED, ..." for the statements with the
// most mismatches, to look up in the mismatch log.
std::string ShadowApplier::worst_statements() const {
  auto counts = log_.snapshot().by_fingerprint;
  const std::size_t n = std::min<std::size_t>(3, counts.size());
  std::partial_sort(counts.begin(), counts.begin() + static_cast<std::ptrdiff_t>(n), counts.end(),
                    [](const auto& a, const auto& b) { return a.second.mismatched > b.second.mismatched; });
  std::string out;
  for (std::size_t i = 0; i < n && counts[i].second.mismatched > 0; ++i) {
    out += fmt::format("{}{:016x} {}/{}", out.empty() ? " worst: " : ", ", counts[i].first, counts[i].second.mismatched,
                       counts[i].second.compared);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Replies: each transaction in flight, in the order sent.

awaitable<void> ShadowApplier::read_replies(ConnectionPtr c) {
  while (!c->in_flight.empty()) {
    if (!co_await read_outcome(*c, c->in_flight.front())) {
      break_connection(*c);
      const std::string why = c->timed_out ? fmt::format("the shadow did not answer within {} ms (apply_timeout_ms)",
                                                         apply_timeout_.count())
                                           : std::string("the shadow connection failed");
      for (const InFlight& f : c->in_flight) mirror_.dropped(*f.t, why);
      in_flight_ -= c->in_flight.size();
      c->in_flight.clear();
      break;
    }
    c->in_flight.pop_front();
    --in_flight_;
    // The next one's clock starts now: the timeout is for a shadow that makes
    // no progress, not for a long queue of transactions in flight.
    if (!c->in_flight.empty()) c->in_flight.front().sent = std::chrono::steady_clock::now();
    progress_.cancel();
  }
  progress_.cancel();
  c->reading = false;
  if (c->closing) co_await terminate(c);
}

// Reads one transaction's replies up to its last ReadyForQuery, compares.
// The next reply; false when the connection failed or was given up.
awaitable<bool> ShadowApplier::read_reply(Connection& c, protocol::Frame& frame) {
  const error_code ec = co_await read_frame(c.server->stream, c.server->in, Direction::backend, limits_, frame);
  co_return !ec && !c.broken;
}

// Skips replies up to the next ReadyForQuery; says whether an error came first.
awaitable<ShadowApplier::Ready> ShadowApplier::skip_to_ready(Connection& c) {
  Ready ready = Ready::ok;
  protocol::Frame frame;
  for (char type = 0; type != 'Z';) {
    const bool read = co_await read_reply(c, frame);
    if (!read) co_return Ready::lost;
    type = frame.type;
    if (type == 'E') ready = Ready::after_error;
    c.server->in.consume(frame.bytes.size());
  }
  co_return ready;
}

awaitable<bool> ShadowApplier::read_outcome(Connection& c, InFlight& f) {
  std::vector<shadow::Outcome> outcomes;
  if (!co_await collect(c, f, f.t->replies, outcomes)) co_return false;
  mirror_.set_connected(true);
  if (gate_ && f.t->read && compare(*f.t, outcomes, false).mismatched) {
    const bool moved = co_await moved_on(*f.t, outcomes);
    if (moved) {
      spdlog::debug("shadow: a sampled read of session {} differs, but the primary now answers as the target: "
                    "the rows changed since; not compared", f.t->session);
      mirror_.skipped(*f.t);
      co_return true;
    }
  }
  const Compared result = compare(*f.t, outcomes, true);
  if (result.failed) report_failed(*f.t, outcomes);
  mirror_.applied(*f.t, std::min(outcomes.size(), f.t->primary.size()), result.mismatched, result.failed,
                  result.not_exact);
  if (f.t->ddl && on_schema_change && f.t->origin) on_schema_change(f.t->origin->database);
  co_return true;
}

// The replies to what append_transaction() sent: the settings and Parses are
// skipped, each statement's result is collected.
awaitable<bool> ShadowApplier::collect(Connection& c, const InFlight& f, std::uint32_t replies,
                                       std::vector<shadow::Outcome>& outcomes) {
  for (std::uint32_t i = 0; i < f.setup; ++i) {  // a SET the shadow refuses was reported when it first ran
    const Ready ready = co_await skip_to_ready(c);
    if (ready == Ready::lost) co_return false;
  }
  for (const auto& [name, parse] : f.prepared) {
    const Ready ready = co_await skip_to_ready(c);
    if (ready == Ready::lost) co_return false;
    // Not prepared after all (a table missing on the shadow...): the next
    // transaction that needs it tries again.
    auto it = c.prepared.find(name);
    if (ready == Ready::after_error && it != c.prepared.end() && it->second == parse) c.prepared.erase(it);
  }
  shadow::ResultCollector collector(rules_);
  protocol::Frame frame;
  while (replies > 0) {
    const bool read = co_await read_reply(c, frame);
    if (!read) co_return false;
    if (frame.type == 'Z') --replies;
    else if (collector.feed(frame) != shadow::ResultCollector::Feed::more) outcomes.push_back(collector.take());
    c.server->in.consume(frame.bytes.size());
  }
  co_return true;
}

// Logical mode: the target applies the stream all the time, so by the time
// a sampled read runs there it may be past the read's moment, and a row
// written since differs. The primary's answer now decides: when the target
// gives that one, the data moved on and nothing diverged (counted as a
// skipped read). Any doubt (no connection, no answer in time) keeps the
// mismatch.
awaitable<bool> ShadowApplier::moved_on(const shadow::Transaction& t, const std::vector<shadow::Outcome>& on_target) {
  const config::Side primary = config::other(target_);
  const std::string& key = t.origin->login_key;
  // A copy, not a reference into rereads_: close_idle may erase the entry while
  // this waits. Readers of several connections can get here at once; one
  // re-run at a time per connection, and the others keep their mismatch.
  ConnectionPtr c = rereads_[key];
  if (c && c->reading) co_return false;
  if (!c || c->broken) {
    const std::string sync_user = cfg_.shadow.sync_user.empty() ? "postgres" : cfg_.shadow.sync_user;
    const config::ServerLogin* login = config::find_login(cfg_.logins(primary), t.origin->user);
    if (!login) login = config::find_login(cfg_.logins(primary), sync_user);
    if (!login && !t.origin->pass_through) co_return false;
    std::string used, error;
    bool reached = false;  // a re-read that cannot log in is only skipped
    c = co_await open_connection(primary, *t.origin, login, used, error, reached);
    if (!c) co_return false;
    rereads_[key] = c;
  }
  InFlight f;
  std::string bytes;
  append_transaction(*c, t, bytes, f);
  std::vector<shadow::Outcome> now;
  asio::steady_timer timer(io_, cfg_.shadow.apply_timeout);
  c->reading = true;
  auto done = co_await (reread(*c, bytes, f, t.replies, now) || timer.async_wait(use_tuple));
  c->reading = false;
  c->idle_since = std::chrono::steady_clock::now();
  if (done.index() != 0 || !std::get<0>(done)) {
    c->server->stream.close();
    c->broken = true;
    if (auto it = rereads_.find(key); it != rereads_.end() && it->second == c) rereads_.erase(it);
    co_return false;
  }
  if (now.size() != on_target.size()) co_return false;
  for (std::size_t i = 0; i < now.size(); ++i) {
    const bool ordered = i < t.ordered.size() && t.ordered[i];
    if (!shadow::compare(now[i], on_target[i], ordered, rules_).match) co_return false;
  }
  co_return true;
}

// A write the primary committed that the shadow refused or rolled back: the
// shadow no longer holds every write, which the cutover's catch-up check
// must know. Warned about once per statement fingerprint.
void ShadowApplier::report_failed(const shadow::Transaction& t, const std::vector<shadow::Outcome>& outcomes) {
  std::string what = "failed on the shadow";
  std::string sqlstate = "?";
  std::uint64_t fingerprint = 0;
  std::string text;
  for (std::size_t i = 0; i < outcomes.size() && i < t.primary.size(); ++i) {
    if (outcomes[i].error && !t.primary[i].sqlstate) {
      sqlstate = outcomes[i].error->sqlstate;
      fingerprint = t.primary[i].fingerprint;
      text = t.primary[i].text;
      if (!outcomes[i].error->message.empty()) what += ": " + outcomes[i].error->message;
      break;
    }
    if (rolled_back(t.primary[i], outcomes[i])) {
      what = "was rolled back on the shadow";
      fingerprint = t.primary[i].fingerprint;
      break;
    }
  }
  const std::string why = fmt::format("a transaction that committed on the primary {} (SQLSTATE {}, statement {:016x})",
                                      what, sqlstate, fingerprint);
  const bool first = failed_fingerprints_.size() < 10000 && failed_fingerprints_.insert(fingerprint).second;
  if (first) spdlog::warn("shadow: {}: the shadow is diverged{}{:.200}", why, text.empty() ? "" : ": ", text);
  mirror_.mark_diverged(why);
}

void ShadowApplier::log_not_exact(const shadow::StatementOutcome& p) {
  spdlog::warn("shadow: not exact: statement {:016x} ({}); mirrored as it is, counted: {:.200}", p.fingerprint,
               p.inexact, p.text);
}

ShadowApplier::Compared ShadowApplier::compare(const shadow::Transaction& t,
                                               const std::vector<shadow::Outcome>& outcomes, bool log) {
  using Compare = shadow::StatementOutcome::Compare;
  Compared result;
  std::size_t& mismatched = result.mismatched;
  const std::size_t n = std::max(outcomes.size(), t.primary.size());
  for (std::size_t i = 0; i < n; ++i) {
    static const shadow::StatementOutcome none = [] {
      shadow::StatementOutcome o;
      o.tag = "(not run)";
      return o;
    }();
    const shadow::StatementOutcome& p = i < t.primary.size() ? t.primary[i] : none;
    if (log && !t.read && !p.inexact.empty()) {
      ++result.not_exact;
      if (log_.count_not_exact(p.fingerprint)) log_not_exact(p);
    }
    if (rules_.ignores(p.fingerprint)) continue;
    shadow::Outcome missing;
    missing.tag = "(not run)";
    const shadow::Outcome& sh = i < outcomes.size() ? outcomes[i] : missing;
    // A sampled read compares its rows; a write its tag and error, and the
    // rows it returned when it is deterministic.
    const bool rows = t.read && i < t.primary_rows.size();
    const bool returned = !t.read && p.compare == Compare::rows && p.returned;
    const shadow::Outcome primary = rows || returned ? shadow::Outcome{} : outcome_of(p);
    const shadow::Outcome& pr = rows ? t.primary_rows[i] : returned ? *p.returned : primary;
    const bool ordered = i < t.ordered.size() && t.ordered[i];
    const shadow::Comparison c = rows       ? shadow::compare(pr, sh, ordered, rules_)
                                 : returned ? shadow::compare(pr, sh, false, rules_)
                                            : compare_outcome(pr, sh, p.compare == Compare::count);
    if (log) log_.record(shadow::Statement{t.session, p.fingerprint, p.text, {}}, pr, sh, c);
    if (!c.match) ++mismatched;
    if (!t.read && i < outcomes.size() && ((sh.error && !p.sqlstate) || rolled_back(p, sh))) result.failed = true;
  }
  return result;
}

awaitable<bool> ShadowApplier::reread(Connection& c, const std::string& bytes, const InFlight& f, std::uint32_t replies,
                                      std::vector<shadow::Outcome>& out) {
  auto [ec, n] = co_await c.server->stream.write(asio::buffer(bytes));
  if (ec) co_return false;
  co_return co_await collect(c, f, replies, out);
}

// ---------------------------------------------------------------------------
// Connections

awaitable<ShadowApplier::ConnectionPtr> ShadowApplier::connection_for(const shadow::Transaction& t,
                                                                      std::string& error) {
  const shadow::Origin& origin = *t.origin;
  if (t.own_connection) {
    if (auto it = own_.find(t.session); it != own_.end()) co_return it->second;
  } else if (auto it = shared_.find(origin.login_key); it != shared_.end()) {
    co_return it->second;
  }
  const auto now = std::chrono::steady_clock::now();
  if (now < retry_after_) {
    error = "the shadow is unreachable (retrying)";
    co_return nullptr;
  }
  if (auto it = refused_until_.find(origin.login_key); it != refused_until_.end() && now < it->second) {
    error = fmt::format("the shadow refused the login of user {} (retrying)", protocol::log_text(origin.user));
    co_return nullptr;
  }
  const config::ServerLogin* credentials = config::find_login(cfg_.logins(target_), origin.user);
  if (!credentials && !origin.pass_through) {
    error = fmt::format("no [[{}.login]] for user {}", config::to_string(target_), protocol::log_text(origin.user));
    co_return nullptr;
  }
  std::string used;  // for the log
  bool reached = false;
  ConnectionPtr c = co_await open_connection(target_, origin, credentials, used, error, reached);
  if (!c) {
    note_failed_open(origin, reached);
    spdlog::warn("shadow: cannot open a connection for session {}: {}", t.session, error);
    co_return nullptr;
  }
  refused_until_.erase(origin.login_key);
  mirror_.set_connected(true);
  if (t.own_connection) {
    c->session = t.session;
    own_[t.session] = c;
    spdlog::info("shadow: opened a connection of its own for session {} (user={} database={}) with {}", t.session,
                 protocol::log_text(origin.user), protocol::log_text(origin.database), used);
  } else {
    c->key = origin.login_key;
    c->idle_since = std::chrono::steady_clock::now();
    shared_[c->key] = c;
    spdlog::info("shadow: opened a shared connection for sessions of user={} database={}{} with {}",
                 protocol::log_text(origin.user), protocol::log_text(origin.database),
                 origin.params.empty() ? "" : " (with their startup parameters)", used);
  }
  co_return c;
}

// Backs off after a connection that could not be opened: every user when the
// shadow could not be reached, only this login when the shadow refused it.
void ShadowApplier::note_failed_open(const shadow::Origin& origin, bool reached) {
  const auto until = std::chrono::steady_clock::now() + reconnect_backoff;
  if (reached) {
    refused_until_[origin.login_key] = until;
    return;
  }
  retry_after_ = until;
  mirror_.set_connected(false);
}

// A connection to `side`, logged in as the client's own user first
// (pass-through, where its authentication allows) and then with `credentials`
// (null: none configured); null (and `error`) when neither works within the
// server's connect_timeout. `used` says which login it was, for the log.
awaitable<ShadowApplier::ConnectionPtr> ShadowApplier::open_connection(config::Side side, const shadow::Origin& origin,
                                                                       const config::ServerLogin* credentials,
                                                                       std::string& used, std::string& error,
                                                                       bool& reached) {
  const config::Upstream& upstream = cfg_.upstream(side);
  auto c = std::make_shared<Connection>();
  for (int attempt = origin.pass_through ? 0 : 1; attempt < 2; ++attempt) {
    if (attempt == 1 && !credentials) break;
    if (attempt == 1 && origin.pass_through)
      spdlog::info("shadow: {} as user {} failed ({}); using [[{}.login]]", origin.pass_through->describe(),
                   protocol::log_text(origin.user), error, config::to_string(side));
    c->server = std::make_unique<ServerConn>(tcp::socket(io_), cfg_.buffer_size);
    const ConnectResult r = co_await connect_server(upstream, tls_[static_cast<std::size_t>(side)], *c->server);
    if (r.ec) {
      error = "shadow: " + r.detail;
      co_return nullptr;
    }
    // A server that accepts but never answers must not stall the applier.
    asio::steady_timer timer(io_, upstream.connect_timeout);
    const config::ServerLogin* with = attempt == 0 ? nullptr : credentials;
    auto outcome = co_await (login(*c, side, origin, with, error) || timer.async_wait(use_tuple));
    if (outcome.index() == 1) {
      error = "the shadow did not answer the login in time";
      co_return nullptr;
    }
    reached = true;  // it answered: a failed login is its refusal
    if (std::get<0>(outcome)) {
      used = attempt == 0 ? std::string(origin.pass_through->describe())
                          : fmt::format("[[{}.login]]", config::to_string(side));
      co_return c;
    }
  }
  co_return nullptr;
}

// Logs in as the [[shadow.login]] user (or the client's, by pass-through when
// `credentials` is null), with the client's startup parameters.
awaitable<bool> ShadowApplier::login(Connection& c, config::Side side, const shadow::Origin& origin,
                                     const config::ServerLogin* credentials, std::string& error) {
  const std::string& user = credentials && !credentials->user.empty() ? credentials->user : origin.user;
  Params params{{"user", user}, {"database", cfg_.database_on(side, origin.database)}};
  params.insert(params.end(), origin.params.begin(), origin.params.end());
  params.emplace_back("application_name", "pgshift-shadow");
  // Mirrored writes must land even where the server is fenced (a cutover's
  // fence_old = "read_only" sets default_transaction_read_only there).
  params.emplace_back("default_transaction_read_only", "off");
  LoginInfo info;
  std::unique_ptr<protocol::ClientAuth> auth = credentials
                                                   ? std::make_unique<protocol::ClientAuth>(user, credentials->password)
                                                   : origin.pass_through->client_auth(user);
  const bool ok = co_await proxy::login(*c.server, limits_, params, *auth, info, error);
  if (!ok) error = "shadow " + error;
  co_return ok;
}

}  // namespace pgshift::proxy
