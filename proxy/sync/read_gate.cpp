#include "proxy/sync/read_gate.hpp"

#include <fmt/format.h>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "proxy/backend.hpp"
#include "proxy/sync/logical.hpp"

namespace pgshift::proxy::sync {

using namespace asio::experimental::awaitable_operators;
using Clock = std::chrono::steady_clock;

awaitable<std::unique_ptr<ServerConn>> ReadGate::open(config::Side side, const std::string& database,
                                                     const std::string& user) {
  const config::ServerLogin* login = config::find_login(cfg_.logins(side), user);
  if (!login) co_return nullptr;
  auto executor = co_await asio::this_coro::executor;
  auto c = std::make_unique<ServerConn>(tcp::socket(executor), cfg_.buffer_size);
  const config::Upstream& up = cfg_.upstream(side);
  const ConnectResult r = co_await connect_server(up, tls_[static_cast<std::size_t>(side)], *c);
  if (r.ec) co_return nullptr;
  const Params params{{"user", login->user.empty() ? user : login->user},
                      {"database", cfg_.database_on(side, database)},
                      {"application_name", "pgshift-read-gate"}};
  LoginInfo info;
  std::string error;
  asio::steady_timer timer(executor, up.connect_timeout);
  auto done = co_await (proxy::login(*c, limits_, params, login->password, info, error) || timer.async_wait(use_tuple));
  if (done.index() == 1 || !std::get<0>(done)) co_return nullptr;
  co_return c;
}

// The primary's position now (after the read finished), then the target's
// subscription's applied position until it passes it.
awaitable<bool> ReadGate::ready(Pair& p, const std::string& database, config::Side target,
                                Clock::time_point deadline) {
  const config::Side primary = config::other(target);
  QueryResult r;
  const bool asked = co_await simple_query(*p.primary, limits_, "SELECT pg_catalog.pg_current_wal_lsn()", r);
  if (!asked || !r.ok() || r.rows.empty() || !r.rows[0][0]) co_return false;
  // Tables still in their initial copy are not yet consistent, whatever the position.
  const std::string check = fmt::format(
      "SELECT pg_catalog.pg_replication_origin_progress('pg_' || s.oid, false) >= {}::pg_lsn AND NOT EXISTS "
      "(SELECT 1 FROM pg_catalog.pg_subscription_rel r WHERE r.srsubid = s.oid AND r.srsubstate <> 'r') "
      "FROM pg_catalog.pg_subscription s WHERE s.subname = {}",
      quote_literal(*r.rows[0][0]), quote_literal(subscription_name(primary, database)));
  asio::steady_timer pause(co_await asio::this_coro::executor);
  for (;;) {
    QueryResult a;
    const bool answered = co_await simple_query(*p.target, limits_, check, a);
    if (!answered || !a.ok()) co_return false;
    if (!a.rows.empty() && a.rows[0][0] && *a.rows[0][0] == "t") co_return true;
    if (Clock::now() >= deadline) co_return false;
    pause.expires_after(std::chrono::milliseconds(5));
    co_await pause.async_wait(use_tuple);
  }
}

awaitable<bool> ReadGate::caught_up(const shadow::Transaction& read, config::Side target) {
  const auto deadline = read.finished + cfg_.shadow.read_wait;
  if (Clock::now() >= deadline) co_return false;  // waited in the queue already
  const std::string& database = read.origin->database;
  Pair& p = pairs_[database];
  const std::string user = cfg_.shadow.sync_user.empty() ? std::string("postgres") : cfg_.shadow.sync_user;
  if (!p.primary) p.primary = co_await open(config::other(target), database, user);
  if (!p.target) p.target = co_await open(target, database, user);
  if (!p.primary || !p.target) {
    pairs_.erase(database);
    co_return false;
  }
  // Bounded from the read's end, so a backlog of reads does not wait in turn.
  const bool ok = co_await ready(p, database, target, deadline);
  if (!ok && (!p.primary->stream.socket().is_open() || !p.target->stream.socket().is_open())) pairs_.erase(database);
  co_return ok;
}

}  // namespace pgshift::proxy::sync
