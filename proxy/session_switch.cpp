// A session's part in a cutover (see proxy/cutover/switch.hpp for the order
// of the steps). Everything here runs on the session's own I/O thread; the
// public switch_* functions are called by the coordinator from its thread and
// post themselves over.
//
// The two directions meet the switch at a transaction boundary: the
// server->client side stops there and runs hold(), which owns the server
// connections from then on; the client->server side holds the next client
// message (Verdict::hold) until hold() lets the session go on, with server_
// either unchanged (release) or swapped for the prepared target (commit).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "protocol/builder.hpp"
#include "protocol/log_text.hpp"
#include "protocol/messages.hpp"
#include "proxy/cutover/coordinator.hpp"
#include "proxy/frame_io.hpp"
#include "proxy/session.hpp"

namespace pgshift::proxy {

using namespace asio::experimental::awaitable_operators;
using cutover::Decision;
using Clock = std::chrono::steady_clock;

namespace {

// What statements may leave on a server besides named statements.
constexpr std::uint8_t kStateSettings = 1;  // SET, RESET
constexpr std::uint8_t kStateLocks = 2;     // session advisory locks
constexpr std::uint8_t kStateOther = 4;     // PREPARE, LISTEN, temporary tables, cursors, DISCARD...

// One row per item: the kind, then up to two values. Read only from sessions
// that ran something that could have left state; all in the catalog of the
// session's own backend.
constexpr std::string_view kStateQuery =
    "SELECT 'temp', count(*)::text, NULL FROM pg_catalog.pg_class "
    "WHERE relnamespace = pg_catalog.pg_my_temp_schema() "
    "UNION ALL SELECT 'cursor', count(*)::text, NULL FROM pg_catalog.pg_cursors WHERE is_holdable "
    "UNION ALL SELECT 'lock', count(*)::text, NULL FROM pg_catalog.pg_locks "
    "WHERE locktype = 'advisory' AND pid = pg_catalog.pg_backend_pid() "
    "UNION ALL SELECT 'listen', c, NULL FROM pg_catalog.pg_listening_channels() c "
    "UNION ALL SELECT 'set', name, setting FROM pg_catalog.pg_settings WHERE source = 'session' "
    "UNION ALL SELECT CASE WHEN from_sql THEN 'prepare' ELSE 'named' END, name, statement "
    "FROM pg_catalog.pg_prepared_statements";

std::string plural(std::size_t n, std::string_view one, std::string_view many) {
  return fmt::format("{} {}", n, n == 1 ? one : many);
}

// Each complete message in `bytes`, in order.
template <class F>
void for_each_frame(std::string_view bytes, F&& f) {
  const protocol::Limits limits;
  while (!bytes.empty()) {
    const protocol::ParseResult r = protocol::parse_frame(bytes, protocol::Direction::backend, limits);
    if (r.status != protocol::ParseStatus::complete) return;
    f(r.frame);
    bytes.remove_prefix(r.frame.bytes.size());
  }
}

}  // namespace

std::string Session::ServerState::unmovable() const {
  std::string out;
  auto add = [&](std::size_t n, std::string_view one, std::string_view many) {
    if (n == 0) return;
    if (!out.empty()) out += ", ";
    out += plural(n, one, many);
  };
  add(temp_objects, "temporary object", "temporary objects");
  add(hold_cursors, "WITH HOLD cursor", "WITH HOLD cursors");
  add(advisory_locks, "session advisory lock", "session advisory locks");
  return out;
}

// ---------------------------------------------------------------------------
// Bookkeeping on the data path (only when a cutover is possible).

void Session::note_client_message(const protocol::Frame& f) {
  switch (f.type) {
    case 'P': {
      protocol::ParseView p;
      if (p.parse(f) && !p.name.empty()) named_[std::string(p.name)].assign(f.bytes);
      break;
    }
    case 'C': {
      protocol::TargetView c;
      if (c.parse(f) && c.kind == 'S') named_.erase(std::string(c.name));
      break;
    }
    default:
      break;
  }
  if ((f.type == 'Q' || f.type == 'P') && hook_.last_analysis()) note_statements(*hook_.last_analysis());
}

void Session::note_statements(const rewrite::Analysis& a) {
  std::uint8_t flags = 0;
  for (const rewrite::StatementInfo& st : a.statements) {
    if (st.setting != rewrite::Setting::none) flags |= kStateSettings;
    else if (st.lock) flags |= kStateLocks;
    else if (st.session_state || st.kind == rewrite::StatementKind::session ||
             st.kind == rewrite::StatementKind::unparseable)
      flags |= kStateOther;
  }
  if (flags && (stateful_.load(std::memory_order_relaxed) & flags) != flags) stateful_.fetch_or(flags);
}

std::vector<std::string_view> Session::named_parses() const {
  std::vector<std::string_view> out;
  out.reserve(named_.size());
  for (const auto& [name, bytes] : named_) out.push_back(bytes);
  return out;
}

// The Parse a server gets for the client's `parse`: its SQL rewritten by
// that server's rename rules, as the query hook would send it there once
// that server serves: with its catalog and the session's search_path, and
// with exact mirroring's capture column, since after the swap the hook
// hides that column from what the statement returns and the recorder takes
// the rows it wrote from it.
std::string Session::parse_for(config::Side side, const protocol::Frame& parse) const {
  protocol::ParseView p;
  if (!p.parse(parse)) return std::string(parse.bytes);
  rewrite::Rewriter& r = *rewriters_[static_cast<std::size_t>(side)];
  if (!r.has_rules() && !capture_) return std::string(parse.bytes);
  rewrite::Context serving;
  if (uses_catalog_) {
    serving = contexts_[static_cast<std::size_t>(side)];
    serving.capture = capture_;
    serving.rehash();
  }
  const rewrite::Analysis& a = r.analyze(p.sql, uses_catalog_ ? &serving : nullptr);
  if (!a.warning.empty() || !a.changed()) return std::string(parse.bytes);
  std::string out;
  protocol::append_parse(out, p.name, a.rewritten, p.types);
  return out;
}

SessionInfo Session::info() const {
  SessionInfo i;
  i.id = member_;
  i.peer = peer_;
  i.user = user_;
  i.database = database_;
  i.server = shared_side_.load();
  i.transaction = shared_txn_.load(std::memory_order_relaxed);
  i.started = started_;
  i.pass_through = shared_pass_through_.load(std::memory_order_relaxed);
  i.status_since = Clock::time_point(Clock::duration(shared_status_since_.load(std::memory_order_relaxed)));
  const std::uint8_t f = stateful_.load(std::memory_order_relaxed);
  auto add = [&](std::uint8_t bit, std::string_view what) {
    if (!(f & bit)) return;
    if (!i.state.empty()) i.state += ", ";
    i.state += what;
  };
  add(kStateSettings, "SET");
  add(kStateLocks, "advisory locks");
  add(kStateOther, "session state (PREPARE, LISTEN, temporary tables, cursors...)");
  return i;
}

// ---------------------------------------------------------------------------
// Commands from the coordinator.

void Session::switch_prepare(config::Side to) {
  asio::post(client_.socket().get_executor(), [self = shared_from_this(), to] {
    Session& s = *self;
    if (s.stopping_ || s.sw().preparing) return;
    s.switch_to_ = to;
    if (s.sw().target || !s.forwarding_) {  // ready, or still logging in: prepared when it holds
      s.ctx_.coordinator->on_prepared(s.member_, true, {});
      return;
    }
    s.sw().preparing = true;  // before a pause that may come first
    asio::co_spawn(s.client_.socket().get_executor(), [self]() -> awaitable<void> {
      const bool ok = co_await self->prepare_target();
      self->ctx_.coordinator->on_prepared(self->member_, ok, self->sw().reason_for_target);
    }, asio::detached);
  });
}

void Session::switch_pause() {
  asio::post(client_.socket().get_executor(), [self = shared_from_this()] {
    Session& s = *self;
    if (s.stopping_ || s.switch_ != SwitchState::none) return;
    s.switch_ = SwitchState::pausing;
    // Idle at a boundary: take the server side now; its pump is waiting for
    // a server that has nothing to say.
    if (s.forwarding_ && s.hold_here()) s.server_->stream.cancel();
  });
}

void Session::switch_decide(Decision d) {
  asio::post(client_.socket().get_executor(), [self = shared_from_this(), d] {
    Session& s = *self;
    if (s.switch_ == SwitchState::held) {
      s.sw().decision = d;
      s.sw().server_side_wake.cancel();
      return;
    }
    if (d == Decision::release) s.release(false);  // aborted before it held
  });
}

bool Session::hold_here() {
  if (switch_ == SwitchState::held) return true;
  if ((switch_ != SwitchState::pausing && switch_ != SwitchState::blocked) || !at_transaction_boundary()) return false;
  switch_ = SwitchState::held;
  sw().held_at = Clock::now();
  sw().waiting_since = {};
  return true;
}

// ---------------------------------------------------------------------------
// Held at a boundary.

awaitable<bool> Session::hold() {
  Switching& w = sw();
  cutover::Held report;
  w.moving = ServerState{};
  if (stateful_.load(std::memory_order_relaxed) && !co_await read_state(w.moving)) {
    if (!stopping_) {
      end_forwarding(PumpEnd{make_error_code(asio::error::connection_reset)}, false);
    }
    co_return false;
  }
  report.why = w.moving.unmovable();
  report.movable = report.why.empty();
  while (w.preparing && !stopping_) {  // the prepare step is still connecting
    w.server_side_wake.expires_at(Clock::time_point::max());
    co_await w.server_side_wake.async_wait(use_tuple);
  }
  if (!stopping_ && !w.target && report.movable) {  // joined after the prepare step
    report.ready = co_await prepare_target();
    if (!report.ready) report.why = w.reason_for_target;
  }
  if (stopping_) co_return false;
  if (!to_client_.empty() && co_await flush(client_, to_client_)) {  // notifications that came meanwhile
    end_forwarding(PumpEnd{make_error_code(asio::error::broken_pipe), true}, false);
    co_return false;
  }
  ctx_.coordinator->on_held(member_, report);

  for (;;) {
    const std::optional<Decision> d = co_await next_decision();
    if (!d) co_return false;  // the session is closing
    switch (*d) {
      case Decision::stage: {
        std::string error;
        const bool ok = co_await stage(w.moving, error);
        if (stopping_) co_return false;
        report_done(Decision::stage, ok, std::move(error));
        continue;
      }
      case Decision::commit:
        commit();
        report_done(Decision::commit, true, {});
        break;
      case Decision::release:
        release(false);
        report_done(Decision::release, true, {});
        break;
      case Decision::retry_later:
        switch_ = SwitchState::blocked;
        wake_client_side();
        report_done(Decision::retry_later, true, {});
        break;
      case Decision::close:
        report_done(Decision::close, true, {});
        close_unmovable(report.why);
        co_return false;
    }
    break;
  }
  if (!to_client_.empty() && co_await flush(client_, to_client_)) {
    end_forwarding(PumpEnd{make_error_code(asio::error::broken_pipe), true}, false);
    co_return false;
  }
  co_return true;
}

awaitable<std::optional<Decision>> Session::next_decision() {
  Switching& w = sw();
  while (!w.decision && !stopping_) {
    w.server_side_wake.expires_at(Clock::time_point::max());
    co_await w.server_side_wake.async_wait(use_tuple);
  }
  if (stopping_) co_return std::nullopt;
  const Decision d = *w.decision;
  w.decision.reset();
  co_return d;
}

// Asks the session's own backend what it holds. Its notifications and
// notices that arrive meanwhile still reach the client.
awaitable<bool> Session::read_state(ServerState& st) {
  QueryResult r;
  if (!co_await simple_query(*server_, ctx_.limits, kStateQuery, r, &to_client_.own())) co_return false;
  if (!r.ok()) {  // a server without these views: assume the worst
    st.temp_objects = 1;
    spdlog::warn("cutover: session {} (user={}): cannot read its session state: {}", member_, user_, r.error);
    co_return true;
  }
  std::vector<std::string> on_server;  // protocol-level statements the server has
  for (const auto& row : r.rows) {
    if (row.size() != 3 || !row[0] || !row[1]) continue;
    const std::string& kind = *row[0];
    const std::string& a = *row[1];
    const std::string b = row[2].value_or("");
    if (kind == "temp") st.temp_objects = std::stoul(a);
    else if (kind == "cursor") st.hold_cursors = std::stoul(a);
    else if (kind == "lock") st.advisory_locks = std::stoul(a);
    else if (kind == "listen") st.channels.push_back(a);
    else if (kind == "set") st.settings.emplace_back(a, b);
    else if (kind == "prepare") st.prepared.emplace_back(a, b);
    else if (kind == "named") on_server.push_back(a);
  }
  // DEALLOCATE ALL and DISCARD ALL drop protocol-level statements too.
  std::erase_if(named_, [&](const auto& kv) {
    return std::find(on_server.begin(), on_server.end(), kv.first) == on_server.end();
  });
  co_return true;
}

// ---------------------------------------------------------------------------
// The target connection.

awaitable<bool> Session::prepare_target() {
  Switching& w = sw();
  w.preparing = true;
  std::string error;
  // One co_await per statement: GCC 12 miscompiles co_await inside && and ?:.
  bool ok = co_await connect_target(error);
  if (ok) ok = co_await target_catalog(error);
  if (ok) ok = co_await prepare_statements(error);
  w.preparing = false;
  w.server_side_wake.cancel();  // hold() may be waiting for this
  if (!ok) {
    if (w.target) w.target->stream.close();
    w.target.reset();
    w.reason_for_target = std::move(error);
    spdlog::warn("cutover: session {} (user={} database={}) cannot move to the {} server: {}", member_, user_,
                 database_, config::to_string(switch_to_), w.reason_for_target);
  }
  co_return ok;
}

// Opens and logs in the connection the session will move to, with the
// session's startup parameters and the [[X.login]] credentials.
awaitable<bool> Session::connect_target(std::string& error) {
  Switching& w = sw();
  w.target_named.clear();
  co_return co_await open_connection(switch_to_, false, w.target, w.target_login, error);
}

// A connection of this session's own to server `to`: its startup parameters,
// the session's own user (pass-through) or the [[X.login]] for it, and
// read-only when it serves routed reads.
awaitable<bool> Session::open_connection(config::Side to, bool read_only, std::unique_ptr<ServerConn>& conn,
                                         LoginInfo& info, std::string& error) {
  Params params{{"user", user_}, {"database", ctx_.cfg.database_on(to, database_)}};
  for (const auto& kv : startup_params_)
    if (kv.first != "user" && kv.first != "database") params.push_back(kv);
  if (read_only) params.emplace_back("default_transaction_read_only", "on");
  std::string used;
  const bool ok = co_await log_in_to(to, params, ctx_.cfg.cutover.prepare_timeout, conn, info, error, used);
  if (ok && pass_through_)
    spdlog::info("login client={} user={}: {} connection to the {} with {}", peer_, protocol::log_text(user_),
                 read_only ? "a reader" : "the cutover's", config::to_string(to), used);
  co_return ok;
}

// The target's catalog, current in this session's contexts before its
// statements are parsed there (parse_for). The contexts follow the catalogs
// at each Query and Parse, so a session that only binds and executes what it
// prepared at its start may still hold the target's context from before that
// catalog was read. A statement analysed there without it gets no capture
// column, and after the swap the writes it makes would be mirrored back as
// nothing (seen with pgbench -M prepared).
awaitable<bool> Session::target_catalog(std::string& error) {
  if (!uses_catalog_) co_return true;
  auto& entry = catalog_entries_[static_cast<std::size_t>(switch_to_)];
  if (!entry) entry = &ctx_.catalogs->entry(switch_to_, database_, user_, pass_through_);
  const auto deadline = Clock::now() + ctx_.cfg.cutover.prepare_timeout;
  // Woken by each load that finishes (a failed one is tried again by the
  // loader's tick), by the deadline, or by the session's end.
  Switching& w = sw();
  while (!entry->current() && Clock::now() < deadline && !stopping_) {
    std::weak_ptr<Session> weak = weak_from_this();
    ctx_.catalogs->when_loaded_on(*entry, entry->attempts(), client_.socket().get_executor(), [weak] {
      if (auto s = weak.lock(); s && s->sw_) s->sw_->catalog_wake.cancel();
    });
    w.catalog_wake.expires_at(deadline);
    co_await w.catalog_wake.async_wait(use_tuple);
  }
  if (!entry->current()) {
    error = fmt::format("the catalog of database {} on the {} server is not read yet (SHOW SHADOW shows each catalog)",
                        protocol::log_text(database_), config::to_string(switch_to_));
    co_return false;
  }
  update_contexts();
  co_return true;
}

// Prepares the session's named statements on the target now, so that the
// pause only has to send those parsed since.
awaitable<bool> Session::prepare_statements(std::string& error) {
  if (named_.empty()) co_return true;
  std::unordered_map<std::string, std::string> snapshot = named_;
  std::string messages;
  for (const auto& [name, bytes] : snapshot) {
    const protocol::ParseResult r = protocol::parse_frame(bytes, protocol::Direction::frontend, ctx_.limits);
    messages += parse_for(switch_to_, r.frame);
  }
  protocol::append_sync(messages);
  QueryResult result;
  if (!co_await exchange(*sw().target, ctx_.limits, messages, 1, result)) {
    error = "the connection closed while preparing statements";
    co_return false;
  }
  if (!result.ok()) {
    error = "a prepared statement of this session fails there: " + result.error;
    co_return false;
  }
  sw().target_named = std::move(snapshot);
  co_return true;
}

// Replays on the target what the session set up on its server: settings,
// LISTEN channels, SQL prepared statements, and the named statements parsed
// (or closed) since the prepare step. Nothing here reaches the client.
awaitable<bool> Session::stage(const ServerState& st, std::string& error) {
  Switching& w = sw();
  if (!w.target) {
    error = w.reason_for_target.empty() ? "no connection to the target" : w.reason_for_target;
    co_return false;
  }
  std::string messages;
  int readys = 0;
  auto query = [&](const std::string& sql) {
    protocol::append_query(messages, sql);
    ++readys;
  };
  for (const auto& [name, value] : st.settings)
    query("SELECT pg_catalog.set_config(" + quote_literal(name) + ", " + quote_literal(value) + ", false)");
  for (const std::string& channel : st.channels) query("LISTEN " + quote_ident(channel));
  rewrite::Rewriter& r = *rewriters_[static_cast<std::size_t>(switch_to_)];
  for (const auto& [name, statement] : st.prepared) {
    const rewrite::Analysis& a = r.analyze(statement);
    query(r.has_rules() && a.warning.empty() && a.changed() ? a.rewritten : statement);
  }
  bool changed = false;
  for (const auto& [name, bytes] : w.target_named) {
    if (auto it = named_.find(name); it != named_.end() && it->second == bytes) continue;
    protocol::append_close(messages, 'S', name);
    changed = true;
  }
  for (const auto& [name, bytes] : named_) {
    if (auto it = w.target_named.find(name); it != w.target_named.end() && it->second == bytes) continue;
    const protocol::ParseResult pr = protocol::parse_frame(bytes, protocol::Direction::frontend, ctx_.limits);
    messages += parse_for(switch_to_, pr.frame);
    changed = true;
  }
  if (changed) {
    protocol::append_sync(messages);
    ++readys;
  }
  if (readys == 0) co_return true;
  QueryResult result;
  std::string passthrough;
  if (!co_await exchange(*w.target, ctx_.limits, messages, readys, result, &passthrough)) {
    error = "the target connection closed while the session's state was replayed";
    co_return false;
  }
  if (!result.ok()) {
    error = "replaying the session's state failed: " + result.error;
    co_return false;
  }
  w.target_named = named_;
  for_each_frame(passthrough, [&](const protocol::Frame& f) {
    protocol::ParameterStatusView p;
    if (f.type == 'S' && p.parse(f)) {
      auto& params = w.target_login.server_params;
      auto it = std::find_if(params.begin(), params.end(), [&](const auto& kv) { return kv.first == p.name; });
      if (it != params.end()) it->second.assign(p.value);
      else params.emplace_back(p.name, p.value);
    } else {
      w.to_client_later.append(f.bytes);
    }
  });
  co_return true;
}

// The point of no return: the target becomes the session's server. No I/O,
// so nothing can fail halfway.
void Session::commit() {
  Switching& w = sw();
  std::unique_ptr<ServerConn> old = std::move(server_);
  server_ = std::move(w.target);
  side_ = switch_to_;
  shared_side_ = side_;
  ctx_.cancels.update(client_key_, CancelTarget{server_->endpoint, server_->pid, server_->key});
  const std::vector<std::string_view> named = named_parses();
  catalog_switched();
  hook_.rebind(*rewriters_[static_cast<std::size_t>(side_)], named);
  if (recorder_) recorder_->retarget(*rewriters_[static_cast<std::size_t>(config::other(side_))], named);
  // The client learns the parameters that differ on its new server.
  for (const auto& [name, value] : w.target_login.server_params) {
    // (name = name: clang 14 cannot capture a structured binding.)
    auto it = std::find_if(server_params_.begin(), server_params_.end(),
                           [&name = name](const auto& kv) { return kv.first == name; });
    if (it != server_params_.end() && it->second == value) continue;
    protocol::append_parameter_status(to_client_.own(), name, value);
    remember_parameter(name, value);
  }
  to_client_.own() += w.to_client_later;
  w.to_client_later.clear();
  w.target_named.clear();
  if (rd_ && rd_->conn) {  // it read from the server that now serves
    rd_->conn->stream.close();
    rd_->conn.reset();
    rd_->named.clear();
  }
  switch_ = SwitchState::none;
  wake_client_side();
  if (w.retired) say_goodbye(std::move(w.retired));
  w.retired = std::move(old);  // until every session has switched (retire_old_server)
}

// The old server's connection, closed once the whole switch is done, not
// during the pause: its backend's exit costs that server CPU, and with 1000
// sessions the exits made the sessions released last wait 1.4 s for theirs
// (swap step 1438 ms; 31 ms with the goodbyes after it; bench/RESULTS.md).
void Session::retire_old_server() {
  asio::post(client_.socket().get_executor(), [self = shared_from_this()] {
    if (self->sw_ && self->sw_->retired) self->say_goodbye(std::move(self->sw_->retired));
  });
}

void Session::say_goodbye(std::unique_ptr<ServerConn> old) {
  asio::co_spawn(client_.socket().get_executor(), [old = std::move(old)]() -> awaitable<void> {
    std::string bye;
    protocol::append_terminate(bye);
    co_await old->stream.write(asio::buffer(bye));
    old->stream.close();
  }, asio::detached);
}

// Aborted: the session goes on where it is. A movable session keeps its
// prepared connection only while it may be asked again (retry).
void Session::release(bool keep_target) {
  Switching& w = sw();
  if (!keep_target && w.target) {
    w.target->stream.close();
    w.target.reset();
    w.target_named.clear();
  }
  w.to_client_later.clear();
  switch_ = SwitchState::none;
  wake_client_side();
}

void Session::close_unmovable(const std::string& what) {
  fail("57P01",
       "pgshift: the database moved to another server, and this session holds " + what +
           ", which cannot move with it; reconnect",
       "closed by the cutover: it holds " + what);
  stopping_ = true;
  client_.cancel();
  wake_client_side();
}

void Session::report_done(Decision d, bool ok, std::string why) {
  Switching& w = sw();
  cutover::Done done;
  done.decision = d;
  done.ok = ok;
  done.why = std::move(why);
  const auto now = Clock::now();
  done.held = std::chrono::duration_cast<std::chrono::microseconds>(now - w.held_at);
  if (w.waiting_since != Clock::time_point{})
    done.waited = std::chrono::duration_cast<std::chrono::microseconds>(now - w.waiting_since);
  ctx_.coordinator->on_done(member_, done);
}

awaitable<void> Session::released() {
  while ((switch_ == SwitchState::held || route_ == Route::asked || catalog_wait_) && !stopping_) {
    client_side_wake_.expires_at(catalog_wait_ ? catalog_deadline_ : Clock::time_point::max());
    co_await client_side_wake_.async_wait(use_tuple);
    if (catalog_wait_ && Clock::now() >= catalog_deadline_) catalog_gave_up();
  }
}

void Session::wake_client_side() { client_side_wake_.cancel(); }

void Session::leave_cutover() { ctx_.coordinator->on_left(member_); }

}  // namespace pgshift::proxy
