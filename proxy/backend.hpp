// pgshift's own conversations with a server, as opposed to the relayed ones:
// logging in with configured credentials ([[shadow.login]], [[primary.login]])
// and running statements whose replies pgshift reads itself (the shadow
// applier, a session's connection to the cutover target, the cutover's
// control connections).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "protocol/client_auth.hpp"
#include "protocol/frame.hpp"
#include "protocol/sql_quote.hpp"
#include "proxy/server_conn.hpp"

namespace pgshift::proxy {

using Params = std::vector<std::pair<std::string, std::string>>;

// What a login learned about the server session.
struct LoginInfo {
  Params server_params;  // ParameterStatus, in the order received
  std::uint32_t pid = 0;  // BackendKeyData
  std::uint32_t key = 0;
  std::string refusal;           // the server's ErrorResponse, whole, when it refused the login
  std::string refusal_sqlstate;  // its SQLSTATE (may be empty)
};

// Sends a StartupMessage with `params` (user and database among them) and
// authenticates with `password`; true once ReadyForQuery arrived. Unbounded
// in time: callers race it against their own timer.
awaitable<bool> login(ServerConn& c, const protocol::Limits& limits, const Params& params,
                      const std::string& password, LoginInfo& info, std::string& error);
// The same with an authentication already set up: SCRAM or MD5 pass-through
// (protocol::PassThrough::client_auth), for pgshift logging in as its client's user.
awaitable<bool> login(ServerConn& c, const protocol::Limits& limits, const Params& params, protocol::ClientAuth& auth,
                      LoginInfo& info, std::string& error);

// The rows, tags and first error of one exchange.
struct QueryResult {
  std::vector<std::vector<std::optional<std::string>>> rows;  // of every statement, text format
  std::vector<std::string> tags;                              // CommandComplete, in order
  std::vector<std::string> columns;                           // of the last RowDescription
  std::optional<std::string> sqlstate;                        // of the first error
  std::string error;                                          // its message
  bool ok() const noexcept { return !sqlstate; }
};

// Writes `messages` and reads replies until `readys` ReadyForQuery have come.
// Messages the server may send at any time (NotificationResponse,
// NoticeResponse, ParameterStatus) are appended whole to `passthrough` when
// given, so a session can forward them to its client. False when the
// connection failed.
awaitable<bool> exchange(ServerConn& c, const protocol::Limits& limits, const std::string& messages, int readys,
                         QueryResult& result, std::string* passthrough = nullptr);

// One simple-protocol Query (one or more statements).
awaitable<bool> simple_query(ServerConn& c, const protocol::Limits& limits, std::string_view sql, QueryResult& result,
                             std::string* passthrough = nullptr);

// SQL quoting for statements pgshift composes itself (protocol/sql_quote.hpp).
using protocol::quote_ident;
using protocol::quote_literal;

}  // namespace pgshift::proxy
