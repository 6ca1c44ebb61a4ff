// The cutover's own connections to the two servers, and what it does through
// them while traffic is paused: copy sequence positions, fence a server
// (read-only) or lift that fence. Run on the coordinator's thread.
#pragma once

#include <memory>
#include <string>

#include "proxy/backend.hpp"
#include "proxy/context.hpp"

namespace pgshift::proxy::cutover {

// A logged-in connection to one database of one server.
struct Control {
  config::Side side = config::Side::primary;
  std::string database;  // as the client names it
  std::unique_ptr<ServerConn> conn;
};

// Opens one, as `user` would be logged in there by a moved session
// ([[primary.login]] / [[shadow.login]]), within the server's connect timeout
// plus the cutover's prepare timeout.
awaitable<std::unique_ptr<Control>> open_control(ProxyContext& ctx, config::Side side, const std::string& database,
                                                 const std::string& user, std::string& error);

// Sets every sequence `to` has to at least the position it has on `from`
// (last_value, is_called), so that new ids on `to` never collide with rows
// that exist. Sequences `from` never used are left alone. `copied` counts them.
awaitable<bool> copy_sequences(ProxyContext& ctx, Control& from, Control& to, std::size_t& copied, std::string& error);

// fence: ALTER SYSTEM SET default_transaction_read_only = on, and reload; the
// reverse undoes it. Needs a superuser login.
awaitable<bool> set_read_only(ProxyContext& ctx, Control& c, bool on, std::string& error);

}  // namespace pgshift::proxy::cutover
