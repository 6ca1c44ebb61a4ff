// [auth] auth_query: the password secret of a user that is not in the
// auth_file, asked of the primary by pgshift itself (as auth_user, the user
// name a bound parameter, never part of the SQL), as PgBouncer does. Answers
// (also "no such user") are kept cache_ttl_ms in a cache of at most
// cache_entries users, shared by every thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "config/config.hpp"
#include "protocol/frame.hpp"
#include "proxy/asio.hpp"

namespace pgshift::proxy {

class AuthCache {
 public:
  using Clock = std::chrono::steady_clock;
  AuthCache() = default;
  AuthCache(const AuthCache&) = delete;
  AuthCache& operator=(const AuthCache&) = delete;
  ~AuthCache();

  // A fresh answer: outer nullopt when there is none; inner nullopt when the
  // user has no secret (unknown, or no password).
  std::optional<std::optional<std::string>> find(const std::string& user, Clock::time_point now);
  // Keeps an answer until now + ttl (nothing when ttl is 0); when full, drops
  // the expired answers, then any.
  void put(const std::string& user, std::optional<std::string> secret, Clock::time_point now,
           std::chrono::milliseconds ttl, std::size_t max_entries);
  std::size_t size();

 private:
  struct Entry {
    std::optional<std::string> secret;
    Clock::time_point expires;
  };
  static void wipe(Entry& e) noexcept;
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
};

// The stored secret of `user` (rolpassword's text), from the cache or by
// running auth_query on the primary; nullopt when the user has none. On
// failure (primary unreachable, auth_user refused, a query error) `error`
// says why (never a password) and nullopt is returned.
awaitable<std::optional<std::string>> look_up_secret(const config::Config& cfg, ssl::context* tls,
                                                     const protocol::Limits& limits, AuthCache& cache,
                                                     const std::string& user, std::string& error);

}  // namespace pgshift::proxy
