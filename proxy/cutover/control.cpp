#include "proxy/cutover/control.hpp"

#include <fmt/format.h>

#include <array>

#include <boost/asio/experimental/awaitable_operators.hpp>

namespace pgshift::proxy::cutover {

using namespace asio::experimental::awaitable_operators;

awaitable<std::unique_ptr<Control>> open_control(ProxyContext& ctx, config::Side side, const std::string& database,
                                                 const std::string& user, std::string& error) {
  const config::ServerLogin* credentials = config::find_login(ctx.cfg.logins(side), user);
  if (!credentials) {
    error = fmt::format("no [[{}.login]] for user {}", config::to_string(side), user);
    co_return nullptr;
  }
  auto c = std::make_unique<Control>();
  c->side = side;
  c->database = database;
  auto executor = co_await asio::this_coro::executor;
  c->conn = std::make_unique<ServerConn>(tcp::socket(executor), ctx.cfg.buffer_size);
  const ConnectResult r = co_await connect_server(ctx.cfg.upstream(side), ctx.tls(side), *c->conn);
  if (r.ec) {
    error = fmt::format("{} server: {}", config::to_string(side), r.detail);
    co_return nullptr;
  }
  const Params params{{"user", credentials->user.empty() ? user : credentials->user},
                      {"database", ctx.cfg.database_on(side, database)},
                      {"application_name", "pgshift-cutover"}};
  LoginInfo info;
  asio::steady_timer timer(executor, ctx.cfg.cutover.prepare_timeout);
  auto done = co_await (login(*c->conn, ctx.limits, params, credentials->password, info, error) ||
                        timer.async_wait(use_tuple));
  if (done.index() == 1) error = "the server did not answer the login in time";
  if (done.index() == 1 || !std::get<0>(done)) {
    error = fmt::format("{} server, database {}: {}", config::to_string(side), database, error);
    co_return nullptr;
  }
  co_return c;
}

awaitable<bool> copy_sequences(ProxyContext& ctx, Control& from, Control& to, std::size_t& copied, std::string& error) {
  QueryResult used;
  const bool read = co_await simple_query(
      *from.conn, ctx.limits,
      "SELECT pg_catalog.format('%I.%I', schemaname, sequencename), last_value FROM pg_catalog.pg_sequences "
      "WHERE last_value IS NOT NULL",
      used);
  if (!read || !used.ok()) {
    error = fmt::format("reading sequences on the {} server: {}", config::to_string(from.side),
                        read ? used.error : "connection lost");
    co_return false;
  }
  copied = 0;
  if (used.rows.empty()) co_return true;
  // One statement for all: each sequence ends at the larger of both positions
  // (the target's may be ahead where statement mirroring consumed values).
  std::string values;
  for (const auto& row : used.rows) {
    if (row.size() != 2 || !row[0] || !row[1]) continue;
    values += fmt::format("{}({}, {}::bigint)", values.empty() ? "" : ", ", quote_literal(*row[0]), *row[1]);
    ++copied;
  }
  const std::string sql = fmt::format(
      "SELECT pg_catalog.setval(v.name::regclass, GREATEST(v.value, COALESCE(s.last_value, v.value)), true) "
      "FROM (VALUES {}) AS v(name, value) LEFT JOIN pg_catalog.pg_sequences s "
      "ON pg_catalog.format('%I.%I', s.schemaname, s.sequencename) = v.name",
      values);
  QueryResult set;
  const bool wrote = co_await simple_query(*to.conn, ctx.limits, sql, set);
  if (!wrote || !set.ok()) {
    error = fmt::format("setting sequences on the {} server: {}", config::to_string(to.side),
                        wrote ? set.error : "connection lost");
    co_return false;
  }
  co_return true;
}

awaitable<bool> set_read_only(ProxyContext& ctx, Control& c, bool on, std::string& error) {
  // ALTER SYSTEM cannot run in a transaction block: two Query messages. A named
  // array, not a braced list in the loop: GCC 12 mishandles such temporaries
  // across a co_await.
  const std::array<std::string_view, 2> statements{
      on ? std::string_view("ALTER SYSTEM SET default_transaction_read_only = on")
         : std::string_view("ALTER SYSTEM RESET default_transaction_read_only"),
      std::string_view("SELECT pg_catalog.pg_reload_conf()")};
  for (std::string_view sql : statements) {
    QueryResult r;
    const bool sent = co_await simple_query(*c.conn, ctx.limits, sql, r);
    if (!sent || !r.ok()) {
      error = fmt::format("{} the {} server: {}", on ? "fencing" : "lifting the fence of", config::to_string(c.side),
                          sent ? r.error : "connection lost");
      co_return false;
    }
  }
  // pg_reload_conf() only signals the postmaster, which then signals every
  // backend: until this one shows the new value, others may not have it
  // either, and the sequences set next (or a session moved there) would meet
  // a read-only transaction. Bounded: a reload is a matter of milliseconds.
  const std::string_view want = on ? "on" : "off";
  asio::steady_timer pause(co_await asio::this_coro::executor);
  for (int i = 0; i < 200; ++i) {
    QueryResult r;
    const bool sent = co_await simple_query(*c.conn, ctx.limits, "SHOW default_transaction_read_only", r);
    if (!sent || !r.ok()) break;  // the next statement reports a lost connection
    if (!r.rows.empty() && r.rows[0][0] && *r.rows[0][0] == want) break;
    pause.expires_after(std::chrono::milliseconds(10));
    co_await pause.async_wait(use_tuple);
  }
  co_return true;
}

}  // namespace pgshift::proxy::cutover
