// [auth] mode = "pgshift": pgshift checks the client's password itself (with
// the secrets of the auth_file), then logs in to the server as the same user
// by pass-through (the SCRAM ClientKey recovered from the client's proof, or
// the stored MD5 hash), falling back to the configured [[X.login]].
#include <spdlog/spdlog.h>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "protocol/builder.hpp"
#include "protocol/log_text.hpp"
#include "proxy/authenticate.hpp"
#include "proxy/frame_io.hpp"
#include "proxy/session.hpp"

namespace pgshift::proxy {

using namespace asio::experimental::awaitable_operators;

awaitable<bool> Session::authenticate_client() {
  // A NegotiateProtocolVersion goes before the authentication request.
  if (co_await flush(client_, to_client_)) {
    reason_ = "client closed during startup";
    co_return false;
  }
  const config::Auth& cfg = ctx_.cfg.auth;
  // The auth_file's users as last reloaded (RELOAD, SIGHUP); the rest of [auth] as started.
  const SettingsPtr live = ctx_.settings.get();
  std::optional<std::string> stored;
  if (const config::AuthFileEntry* e = live->cfg.auth.find(user_)) {
    stored = e->secret;
  } else if (!cfg.auth_user.empty()) {
    std::string error;
    std::optional<std::string> found =
        co_await look_up_secret(ctx_.cfg, ctx_.tls(config::Side::primary), ctx_.limits, ctx_.auth_cache, user_, error);
    if (!error.empty()) {
      spdlog::warn("auth: client={} user={}: {}", peer_, protocol::log_text(user_), error);
      fail("08006", fmt::format("pgshift could not look up the password of user \"{}\"", user_), error);
      co_return false;
    }
    stored = std::move(found);
  }
  protocol::Secret secret = secret_from(stored, user_);
  if (stored) protocol::scram::wipe(*stored);
  const bool known = !secret.is_mock();
  const protocol::AuthMethod method = method_for(cfg, secret);
  protocol::ServerAuth auth(user_, std::move(secret), method, server_auth_options(client_));
  std::string out;
  const std::optional<protocol::ServerAuth::Step> step =
      co_await serve_authentication(client_, client_in_, ctx_.limits, auth, out);
  if (!step || auth.failure() == protocol::ServerAuth::Failure::client_left) {
    reason_ = "client closed during authentication";  // psql does this before asking for the password
    co_return false;
  }
  if (*step == protocol::ServerAuth::Step::failed) {
    fatal_ = std::move(out);
    warn_close_ = true;
    // error() never holds a password, proof, key or hash.
    reason_ = fmt::format("authentication failed ({}{}): {}", to_string(method), known ? "" : ", no such user",
                          auth.error());
    spdlog::warn("auth: client={} user={} {}", peer_, protocol::log_text(user_), reason_);
    co_return false;
  }
  auth_ok_ = std::move(out);
  pass_through_ = pass_through_for(auth);
  shared_pass_through_.store(pass_through_ != nullptr, std::memory_order_relaxed);
  spdlog::debug("auth: client={} user={} authenticated by pgshift ({}{})", peer_, protocol::log_text(user_),
                to_string(method), auth.channel_bound() ? ", channel binding" : "");
  co_return true;
}

// Logs in to the serving server as the client's user, then gives the client
// what PostgreSQL would after authentication: AuthenticationOk, the server's
// ParameterStatus, a BackendKeyData of pgshift's, ReadyForQuery.
awaitable<bool> Session::log_in_as_client(Params params) {
  LoginInfo info;
  std::string error, used;
  const bool ok = co_await log_in_to(side_, params, std::chrono::milliseconds(0), server_, info, error, used);
  startup_params_ = std::move(params);
  if (!ok) {
    protocol::scram::wipe(auth_ok_);
    const std::string side(config::to_string(side_));
    if (!info.refusal.empty() && !info.refusal_sqlstate.starts_with("28")) {
      fatal_ = info.refusal;  // the server's own answer (no such database, too many connections...)
      reason_ = "server refused: " + error;
      warn_close_ = true;
    } else {
      fail("28000", fmt::format("pgshift could not log in to the {} as user \"{}\"", side, user_),
           fmt::format("login to the {} failed: {}", side, error),
           "The password secret that server stores for the user differs from pgshift's auth_file, and no [[" + side +
               ".login]] logs in for it.");
    }
    co_return false;
  }
  std::string& out = to_client_.own();
  out.append(auth_ok_);
  protocol::scram::wipe(auth_ok_);
  for (const auto& [name, value] : info.server_params) {
    remember_parameter(name, value);
    protocol::append_parameter_status(out, name, value);
  }
  client_key_ = ctx_.cancels.add(info.pid, CancelTarget{server_->endpoint, info.pid, info.key});
  key_registered_ = true;
  protocol::append_backend_key_data(out, client_key_.pid, client_key_.key);
  set_txn_status('I');
  protocol::append_ready_for_query(out, 'I');
  spdlog::info("login client={} user={}: logged in to the {} with {}", peer_, protocol::log_text(user_),
               config::to_string(side_), used);
  if (co_await flush(client_, to_client_)) {
    reason_ = "client closed during startup";
    co_return false;
  }
  start_mirroring();
  setup_catalog();  // as after a relayed login: renames and exact mirroring need it
  co_return true;
}

awaitable<bool> Session::log_in_to(config::Side to, const Params& params, std::chrono::milliseconds timeout,
                                   std::unique_ptr<ServerConn>& conn, LoginInfo& info, std::string& error,
                                   std::string& used) {
  const config::ServerLogin* credentials = config::find_login(ctx_.cfg.logins(to), user_);
  const std::string side(config::to_string(to));
  std::string pass_error;
  if (pass_through_) {
    const LoginEnd end = co_await connect_as(to, params, nullptr, timeout, conn, info, pass_error);
    if (end == LoginEnd::ok) {
      used = std::string(pass_through_->describe());
      co_return true;
    }
    // Only an authentication problem is worth a second login: a missing
    // database or an unreachable server is the answer either way.
    const bool auth_problem = end == LoginEnd::refused && (info.refusal.empty() || info.refusal_sqlstate.starts_with("28"));
    if (!credentials || !auth_problem) {
      error = std::move(pass_error);
      co_return false;
    }
    spdlog::info("login client={} user={}: {} to the {} failed ({}); using [[{}.login]]", peer_,
                 protocol::log_text(user_), pass_through_->describe(), side, pass_error, side);
  } else if (!credentials) {
    error = fmt::format("no [[{}.login]] for user {}", side, protocol::log_text(user_));
    co_return false;
  }
  const LoginEnd end = co_await connect_as(to, params, credentials, timeout, conn, info, error);
  if (end != LoginEnd::ok) {
    if (pass_through_) error = pass_error + "; with [[" + side + ".login]]: " + error;
    co_return false;
  }
  used = fmt::format("[[{}.login]] user {}", side,
                     protocol::log_text(credentials->user.empty() ? user_ : credentials->user));
  co_return true;
}

// One connection and login to `to`: by pass-through as the session's user
// when `credentials` is null, else with them.
awaitable<Session::LoginEnd> Session::connect_as(config::Side to, Params params,
                                                 const config::ServerLogin* credentials,
                                                 std::chrono::milliseconds timeout, std::unique_ptr<ServerConn>& conn,
                                                 LoginInfo& info, std::string& error) {
  conn = std::make_unique<ServerConn>(tcp::socket(client_.socket().get_executor()), ctx_.cfg.buffer_size);
  info = LoginInfo{};
  const ConnectResult r = co_await connect_server(ctx_.cfg.upstream(to), ctx_.tls(to), *conn);
  if (r.ec) {
    error = r.detail;
    co_return LoginEnd::unreachable;
  }
  const std::string& user = credentials && !credentials->user.empty() ? credentials->user : user_;
  for (auto& [k, v] : params)
    if (k == "user") v = user;
  std::unique_ptr<protocol::ClientAuth> auth = credentials
                                                   ? std::make_unique<protocol::ClientAuth>(user, credentials->password)
                                                   : pass_through_->client_auth(user);
  bool ok = false;
  if (timeout.count() > 0) {
    asio::steady_timer timer(client_.socket().get_executor(), timeout);
    auto done = co_await (proxy::login(*conn, ctx_.limits, params, *auth, info, error) || timer.async_wait(use_tuple));
    if (done.index() == 1) {
      error = "the server did not answer the login in time";
      co_return LoginEnd::timed_out;
    }
    ok = std::get<0>(done);
  } else {
    ok = co_await proxy::login(*conn, ctx_.limits, params, *auth, info, error);
  }
  co_return ok ? LoginEnd::ok : LoginEnd::refused;
}

}  // namespace pgshift::proxy
