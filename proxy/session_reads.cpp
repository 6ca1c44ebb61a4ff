// The reads phase (CUTOVER READS <percent>): that share of a session's
// read-only units outside transactions is served by the target, on a
// read-only connection of the session's own, and the rest by the primary.
// A unit is a simple Query, or an extended-protocol batch up to its Sync that
// is already buffered whole; it is routed only when every statement in it
// reads, it creates no named statement, and the target has applied the
// session's last committed write (read-your-writes).
//
// The client side holds the unit's first message while the server side
// swaps server_ for the reader (start_route); the unit's ReadyForQuery
// swaps it back (end_route), at the same transaction boundary.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "protocol/builder.hpp"
#include "protocol/messages.hpp"
#include "proxy/session.hpp"

namespace pgshift::proxy {

using Clock = std::chrono::steady_clock;

namespace {

constexpr auto reader_backoff = std::chrono::seconds(10);  // after a failed reader login

bool reads_only(rewrite::Rewriter& r, std::string_view sql) {
  const rewrite::Analysis& a = r.analyze(sql);
  if (a.statements.empty()) return false;
  for (const rewrite::StatementInfo& s : a.statements)
    if (s.kind != rewrite::StatementKind::read_only || s.writes || s.session_state) return false;
  return true;
}

}  // namespace

bool Session::route_read(const protocol::Frame& f) {
  if (f.type != 'Q' && f.type != 'P' && f.type != 'B') return false;
  const int percent = ctx_.read_percent.load(std::memory_order_relaxed);
  if (percent <= 0 || switch_ != SwitchState::none) return false;
  const shadow::Mirror* mirror = ctx_.mirror.get();
  if (!mirror || !mirror->enabled() || mirror->diverged()) return false;
  if (stateful_.load(std::memory_order_relaxed) != 0) return false;  // its settings would have to follow
  if (last_write_ > mirror->done_through()) return false;             // read your own writes
  if (rd_ && Clock::now() < rd_->retry) return false;
  route_random_ = route_random_ * 1664525u + 1013904223u;  // a share of units, not of sessions
  if ((route_random_ >> 8) % 100 >= static_cast<std::uint32_t>(percent)) return false;
  if (!routable(f)) return false;
  route_ = Route::asked;
  server_->stream.cancel();  // the server side waits for a server that has nothing to say
  return true;
}

// Whether the unit starting with `f` only reads and can run on another
// connection: its statements are parsed in it (unnamed) or named ones of this
// session, and its Sync has arrived.
bool Session::routable(const protocol::Frame& f) {
  rewrite::Rewriter& r = *rewriters_[static_cast<std::size_t>(side_)];
  rd().needs.clear();
  if (f.type == 'Q') {
    protocol::QueryView q;
    return q.parse(f) && reads_only(r, q.sql);
  }
  const std::string_view all = client_in_.data();
  std::string_view rest = all.substr(static_cast<std::size_t>(f.bytes.data() - all.data()));
  bool parsed = false;  // the unnamed statement, in this batch
  while (!rest.empty()) {
    const protocol::ParseResult pr = protocol::parse_frame(rest, protocol::Direction::frontend, ctx_.limits);
    if (pr.status != protocol::ParseStatus::complete) return false;
    const protocol::Frame& m = pr.frame;
    switch (m.type) {
      case 'P': {
        protocol::ParseView p;
        if (!p.parse(m) || !p.name.empty() || !reads_only(r, p.sql)) return false;
        parsed = true;
        break;
      }
      case 'B': {
        protocol::BindView b;
        if (!b.parse(m) || !b.portal.empty()) return false;
        if (b.statement.empty()) {
          if (!parsed) return false;
          break;
        }
        auto it = named_.find(std::string(b.statement));
        if (it == named_.end()) return false;
        const protocol::ParseResult stored = protocol::parse_frame(it->second, protocol::Direction::frontend, ctx_.limits);
        protocol::ParseView p;
        if (!p.parse(stored.frame) || !reads_only(r, p.sql)) return false;
        rd().needs.push_back(it->first);
        break;
      }
      case 'D': case 'E': case 'H':
        break;
      case 'S':
        return true;
      default:
        return false;
    }
    rest.remove_prefix(m.bytes.size());
  }
  return false;  // the Sync has not arrived: the unit goes to the primary
}

// Swaps server_ for the reader, opening it (and preparing the named
// statements the unit binds) first. On failure the unit goes to the primary.
awaitable<void> Session::start_route() {
  Reading& reading = rd();
  const config::Side to = config::other(side_);
  std::string error;
  bool ok = true;
  if (!reading.conn) {
    reading.named.clear();
    ok = co_await open_connection(to, true, reading.conn, reading.login, error);
  }
  std::string messages;
  for (const std::string& name : reading.needs) {
    const std::string& bytes = named_[name];
    auto it = reading.named.find(name);
    if (it != reading.named.end() && it->second == bytes) continue;
    if (it != reading.named.end()) protocol::append_close(messages, 'S', name);
    messages += bytes;
  }
  if (ok && !messages.empty()) {
    protocol::append_sync(messages);
    QueryResult r;
    ok = co_await exchange(*reading.conn, ctx_.limits, messages, 1, r) && r.ok();
    if (!ok) error = r.ok() ? "the connection closed" : r.error;
    if (ok)
      for (const std::string& name : reading.needs) reading.named[name] = named_[name];
  }
  if (stopping_) co_return;
  if (!ok) {
    spdlog::warn("reads: session {} (user={}) reads from the primary for {} s: the {} server: {}", member_, user_,
                 reader_backoff.count(), config::to_string(to), error);
    if (reading.conn) reading.conn->stream.close();
    reading.conn.reset();
    reading.retry = Clock::now() + reader_backoff;
    route_ = Route::none;
    wake_client_side();
    co_return;
  }
  std::swap(server_, reading.conn);
  ctx_.cancels.update(client_key_, CancelTarget{server_->endpoint, server_->pid, server_->key});
  ctx_.reads_routed.fetch_add(1, std::memory_order_relaxed);
  route_ = Route::active;
  wake_client_side();
}

void Session::end_route() {
  std::swap(server_, rd().conn);
  ctx_.cancels.update(client_key_, CancelTarget{server_->endpoint, server_->pid, server_->key});
  route_ = Route::none;
}

}  // namespace pgshift::proxy
