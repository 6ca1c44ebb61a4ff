#include "proxy/auth_query.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "protocol/builder.hpp"
#include "protocol/scram.hpp"
#include "proxy/backend.hpp"
#include "proxy/server_conn.hpp"

namespace pgshift::proxy {

using namespace asio::experimental::awaitable_operators;

AuthCache::~AuthCache() {
  for (auto& [user, e] : entries_) wipe(e);
}

void AuthCache::wipe(Entry& e) noexcept {
  if (e.secret) protocol::scram::wipe(*e.secret);
}

std::optional<std::optional<std::string>> AuthCache::find(const std::string& user, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(user);
  if (it == entries_.end()) return std::nullopt;
  if (it->second.expires <= now) {
    wipe(it->second);
    entries_.erase(it);
    return std::nullopt;
  }
  return it->second.secret;
}

void AuthCache::put(const std::string& user, std::optional<std::string> secret, Clock::time_point now,
                    std::chrono::milliseconds ttl, std::size_t max_entries) {
  if (ttl.count() <= 0 || max_entries == 0) {
    if (secret) protocol::scram::wipe(*secret);
    return;
  }
  std::lock_guard lock(mutex_);
  if (auto it = entries_.find(user); it != entries_.end()) {
    wipe(it->second);
    entries_.erase(it);
  }
  if (entries_.size() >= max_entries) {
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (it->second.expires <= now) {
        wipe(it->second);
        it = entries_.erase(it);
      } else {
        ++it;
      }
    }
  }
  while (entries_.size() >= max_entries) {
    wipe(entries_.begin()->second);
    entries_.erase(entries_.begin());
  }
  entries_.emplace(user, Entry{std::move(secret), now + ttl});
}

std::size_t AuthCache::size() {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

awaitable<std::optional<std::string>> look_up_secret(const config::Config& cfg, ssl::context* tls,
                                                     const protocol::Limits& limits, AuthCache& cache,
                                                     const std::string& user, std::string& error) {
  const config::Auth& au = cfg.auth;
  if (auto cached = cache.find(user, AuthCache::Clock::now())) co_return std::move(*cached);

  auto executor = co_await asio::this_coro::executor;
  ServerConn conn(tcp::socket(executor), cfg.buffer_size);
  const ConnectResult r = co_await connect_server(cfg.primary, tls, conn);
  if (r.ec) {
    error = "auth_query: primary server: " + r.detail;
    co_return std::nullopt;
  }
  const Params params{{"user", au.auth_user}, {"database", au.auth_database}, {"application_name", "pgshift-auth"}};
  LoginInfo info;
  std::string login_error;
  const bool logged_in = co_await login(conn, limits, params, au.auth_password, info, login_error);
  if (!logged_in) {
    error = "auth_query: as auth_user " + au.auth_user + ": " + login_error;
    co_return std::nullopt;
  }
  // The user name is a bound parameter: nothing the client sends becomes SQL.
  std::string messages;
  protocol::append_parse(messages, "", au.auth_query);
  protocol::append_bind(messages, "", "", {user});
  protocol::append_execute(messages, "");
  protocol::append_sync(messages);
  protocol::append_terminate(messages);
  QueryResult result;
  const bool answered = co_await exchange(conn, limits, messages, 1, result);
  conn.stream.close();
  if (!answered) {
    error = "auth_query: the primary closed the connection";
    co_return std::nullopt;
  }
  if (!result.ok()) {
    error = "auth_query failed: " + result.error;
    co_return std::nullopt;
  }
  std::optional<std::string> secret;
  for (auto& row : result.rows) {
    if (row.size() >= 2 && row[0] && *row[0] == user && row[1] && !row[1]->empty()) {
      secret = std::move(*row[1]);
      break;
    }
  }
  for (auto& row : result.rows)
    for (auto& v : row)
      if (v) protocol::scram::wipe(*v);
  cache.put(user, secret, AuthCache::Clock::now(), au.cache_ttl, au.cache_entries);
  co_return secret;
}

}  // namespace pgshift::proxy
