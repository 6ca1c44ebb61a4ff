// The configuration as text, for SHOW CONFIG and for naming what a reload
// changed; and which settings a reload may change while pgshift runs.
#include <algorithm>
#include <array>
#include <ctime>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace pgshift::config {

namespace {

std::string endpoint(const Endpoint& e) {
  if (e.host.find(':') != std::string::npos) return "[" + e.host + "]:" + std::to_string(e.port);
  return e.host + ":" + std::to_string(e.port);
}

std::string ms(std::chrono::milliseconds d) { return std::to_string(d.count()); }
std::string yes(bool b) { return b ? "true" : "false"; }
std::string secret(const std::string& s) { return s.empty() ? "(not set)" : "(set)"; }

std::string number(double d) {
  std::string s = std::to_string(d);
  while (s.size() > 1 && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

std::string list(const std::vector<std::string>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + ("\"" + v[i] + "\"");
  return out + "]";
}

std::string time_text(const std::optional<Cutover::TimePoint>& t) {
  if (!t) return "(not set)";
  const std::time_t tt = std::chrono::system_clock::to_time_t(*t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string_view client_mode(ClientTlsMode m) {
  switch (m) {
    case ClientTlsMode::disable: return "disable";
    case ClientTlsMode::allow: return "allow";
    case ClientTlsMode::require: return "require";
  }
  return "?";
}

std::string_view server_mode(ServerTlsMode m) {
  switch (m) {
    case ServerTlsMode::disable: return "disable";
    case ServerTlsMode::prefer: return "prefer";
    case ServerTlsMode::require: return "require";
    case ServerTlsMode::verify_ca: return "verify-ca";
    case ServerTlsMode::verify_full: return "verify-full";
  }
  return "?";
}

std::string_view side(RenameSide s) {
  switch (s) {
    case RenameSide::primary: return "primary";
    case RenameSide::shadow: return "shadow";
    case RenameSide::both: return "both";
  }
  return "?";
}

std::string login(const ServerLogin& l) {
  return "client_user=" + l.client_user + " user=" + (l.user.empty() ? "(the client's)" : l.user) +
         " password=" + secret(l.password);
}

using Items = std::vector<std::pair<std::string, std::string>>;

std::string_view auth_method(ClientAuthMethod m) {
  switch (m) {
    case ClientAuthMethod::scram_sha_256: return "scram-sha-256";
    case ClientAuthMethod::md5: return "md5";
    case ClientAuthMethod::password: return "password";
  }
  return "?";
}

// [auth], secrets as "(set)"; the auth_file's users only as a count.
void auth(Items& out, const Auth& a) {
  out.emplace_back("auth.mode", a.mode == AuthMode::pgshift ? "pgshift" : "relay");
  if (a.mode != AuthMode::pgshift) return;
  out.emplace_back("auth.method", std::string(auth_method(a.method)));
  out.emplace_back("auth.auth_file", a.auth_file.empty() ? "(not set)" : a.auth_file);
  out.emplace_back("auth.users", std::to_string(a.users.size()) + (a.users.size() == 1 ? " user" : " users"));
  out.emplace_back("auth.auth_user", a.auth_user.empty() ? "(not set)" : a.auth_user);
  if (a.auth_user.empty()) return;
  out.emplace_back("auth.auth_password", secret(a.auth_password));
  out.emplace_back("auth.auth_database", a.auth_database);
  out.emplace_back("auth.auth_query", a.auth_query);
  out.emplace_back("auth.cache_ttl_ms", ms(a.cache_ttl));
  out.emplace_back("auth.cache_entries", std::to_string(a.cache_entries));
}

void upstream(Items& out, const std::string& path, const Upstream& u) {
  out.emplace_back(path + ".host", u.address.host);
  out.emplace_back(path + ".port", std::to_string(u.address.port));
  out.emplace_back(path + ".connect_timeout_ms", ms(u.connect_timeout));
  out.emplace_back(path + ".tls.mode", std::string(server_mode(u.tls.mode)));
  out.emplace_back(path + ".tls.ca", u.tls.ca_file);
  out.emplace_back(path + ".tls.cert", u.tls.cert_file);
  out.emplace_back(path + ".tls.key", u.tls.key_file);
}

// Settings a reload applies: exact keys, and prefixes ending in '.' or '['.
constexpr std::array<std::string_view, 26> kReloadable{
    "proxy.login_timeout_ms", "proxy.shutdown_timeout_ms", "proxy.max_connections", "log.level",
    "rewrite.",               "rename[",                   "shadow.read_sample_rate",
    "shadow.status_interval_ms", "shadow.apply_timeout_ms", "shadow.idle_timeout_ms",
    "shadow.compare.ignore_fingerprints", "shadow.compare.numeric_tolerance", "cutover.max_lag_ms",
    "cutover.max_mismatch_rate", "cutover.window_s", "cutover.min_compared", "cutover.prepare_timeout_ms",
    "cutover.drain_timeout_ms", "cutover.catchup_timeout_ms", "cutover.unmovable", "cutover.fence_old",
    "cutover.control_user", "cutover.require_verify_within_s", "verify.",
    // The auth_file is read again (and checked as at start) by every reload: adding a
    // user or changing a password must not need a restart that closes every session.
    "auth.auth_file", "auth.users"};

}  // namespace

std::vector<std::pair<std::string, std::string>> describe(const Config& c) {
  Items out;
  out.emplace_back("proxy.listen", endpoint(c.listen));
  out.emplace_back("proxy.threads", std::to_string(c.threads));
  out.emplace_back("proxy.login_timeout_ms", ms(c.login_timeout));
  out.emplace_back("proxy.shutdown_timeout_ms", ms(c.shutdown_timeout));
  out.emplace_back("proxy.max_message_size", std::to_string(c.max_message_size));
  out.emplace_back("proxy.buffer_size", std::to_string(c.buffer_size));
  out.emplace_back("proxy.max_connections", std::to_string(c.max_connections));
  out.emplace_back("proxy.max_buffered_bytes", std::to_string(c.max_buffered_bytes));
  out.emplace_back("log.level", c.log_level);
  out.emplace_back("client_tls.mode", std::string(client_mode(c.client_tls.mode)));
  out.emplace_back("client_tls.cert", c.client_tls.cert_file);
  out.emplace_back("client_tls.key", c.client_tls.key_file);
  upstream(out, "primary", c.primary);
  for (std::size_t i = 0; i < c.primary_logins.size(); ++i)
    out.emplace_back("primary.login[" + std::to_string(i) + "]", login(c.primary_logins[i]));
  out.emplace_back("rewrite.strict", yes(c.rewrite.strict));
  out.emplace_back("rewrite.cache_entries", std::to_string(c.rewrite.cache_entries));
  out.emplace_back("rewrite.cache_bytes", std::to_string(c.rewrite.cache_bytes));
  out.emplace_back("rewrite.writing_functions",
                   c.rewrite.writing_functions.empty() ? "(built in)" : list(c.rewrite.writing_functions));
  for (std::size_t i = 0; i < c.renames.size(); ++i) {
    const RenameRule& r = c.renames[i];
    out.emplace_back("rename[" + std::to_string(i) + "]", r.schema + "." + r.table + ": " + r.from + " -> " + r.to +
                                                             " (renamed_on " + std::string(side(r.renamed_on)) +
                                                             ", phase " + (r.expand ? "expand" : "contract") + ")");
  }
  const Shadow& sh = c.shadow;
  out.emplace_back("shadow", sh.enabled ? "enabled" : "(no [shadow] section)");
  if (sh.enabled) {
    upstream(out, "shadow", sh.server);
    out.emplace_back("shadow.database", sh.database.empty() ? "(the client's)" : sh.database);
    out.emplace_back("shadow.mirror", yes(sh.mirror));
    out.emplace_back("shadow.read_sample_rate", number(sh.read_sample_rate));
    out.emplace_back("shadow.queue_transactions", std::to_string(sh.queue_transactions));
    out.emplace_back("shadow.queue_bytes", std::to_string(sh.queue_bytes));
    out.emplace_back("shadow.max_transaction_bytes", std::to_string(sh.max_transaction_bytes));
    out.emplace_back("shadow.mismatch_log", sh.mismatch_log);
    out.emplace_back("shadow.redact", yes(sh.redact));
    out.emplace_back("shadow.status_interval_ms", ms(sh.status_interval));
    out.emplace_back("shadow.apply_timeout_ms", ms(sh.apply_timeout));
    out.emplace_back("shadow.idle_timeout_ms", ms(sh.idle_timeout));
    for (std::size_t i = 0; i < sh.logins.size(); ++i)
      out.emplace_back("shadow.login[" + std::to_string(i) + "]", login(sh.logins[i]));
    out.emplace_back("shadow.compare.ignore_columns", list(sh.compare.ignore_columns));
    out.emplace_back("shadow.compare.ignore_fingerprints", list(sh.compare.ignore_fingerprints));
    out.emplace_back("shadow.compare.numeric_tolerance", number(sh.compare.numeric_tolerance));
  }
  auth(out, c.auth);
  out.emplace_back("admin.user", c.admin.user);
  out.emplace_back("admin.password", secret(c.admin.password));
  out.emplace_back("admin.auth", c.admin.auth);
  out.emplace_back("admin.http_listen", c.admin.http_listen ? endpoint(*c.admin.http_listen) : "(off)");
  out.emplace_back("admin.http_token_env", c.admin.http_token_env.empty() ? "(not set)" : c.admin.http_token_env);
  const Cutover& co = c.cutover;
  out.emplace_back("cutover.at", time_text(co.at));
  out.emplace_back("cutover.when_ready", yes(co.when_ready));
  out.emplace_back("cutover.deadline", time_text(co.deadline));
  out.emplace_back("cutover.max_lag_ms", ms(co.max_lag));
  out.emplace_back("cutover.max_mismatch_rate", number(co.max_mismatch_rate));
  out.emplace_back("cutover.window_s", std::to_string(co.window.count()));
  out.emplace_back("cutover.min_compared", std::to_string(co.min_compared));
  out.emplace_back("cutover.prepare_timeout_ms", ms(co.prepare_timeout));
  out.emplace_back("cutover.drain_timeout_ms", ms(co.drain_timeout));
  out.emplace_back("cutover.catchup_timeout_ms", ms(co.catchup_timeout));
  out.emplace_back("cutover.unmovable", co.unmovable == Unmovable::wait ? "wait" : "close");
  out.emplace_back("cutover.fence_old", co.fence_old == Fence::none ? "none" : "read_only");
  out.emplace_back("cutover.state_file", co.state_file);
  out.emplace_back("cutover.databases", list(co.databases));
  out.emplace_back("cutover.control_user", co.control_user.empty() ? "(a session's user)" : co.control_user);
  out.emplace_back("cutover.require_verify_within_s", std::to_string(co.require_verify_within.count()));
  const Verify& v = c.verify;
  out.emplace_back("verify.jobs", std::to_string(v.jobs));
  out.emplace_back("verify.chunk_rows", std::to_string(v.chunk_rows));
  out.emplace_back("verify.max_rows_per_second", std::to_string(v.max_rows_per_second));
  out.emplace_back("verify.live", yes(v.live));
  out.emplace_back("verify.rechecks", std::to_string(v.rechecks));
  out.emplace_back("verify.recheck_window_ms", ms(v.recheck_window));
  out.emplace_back("verify.user", v.user.empty() ? "(cutover.control_user, else postgres)" : v.user);
  out.emplace_back("verify.database", v.database.empty() ? "(the user's name)" : v.database);
  return out;
}

bool reloadable(std::string_view key) {
  return std::any_of(kReloadable.begin(), kReloadable.end(), [&](std::string_view r) {
    if (r.back() == '.' || r.back() == '[') return key.starts_with(r);
    return key == r;
  });
}

Config with_reloadable(const Config& running, const Config& loaded) {
  Config c = running;
  c.login_timeout = loaded.login_timeout;
  c.shutdown_timeout = loaded.shutdown_timeout;
  c.max_connections = loaded.max_connections;
  c.log_level = loaded.log_level;
  c.rewrite = loaded.rewrite;
  c.renames = loaded.renames;
  if (c.shadow.enabled && loaded.shadow.enabled) {
    c.shadow.read_sample_rate = loaded.shadow.read_sample_rate;
    c.shadow.status_interval = loaded.shadow.status_interval;
    c.shadow.apply_timeout = loaded.shadow.apply_timeout;
    c.shadow.idle_timeout = loaded.shadow.idle_timeout;
    c.shadow.compare.ignore_fingerprints = loaded.shadow.compare.ignore_fingerprints;
    c.shadow.compare.numeric_tolerance = loaded.shadow.compare.numeric_tolerance;
  }
  Cutover& co = c.cutover;
  const Cutover& n = loaded.cutover;
  co.max_lag = n.max_lag;
  co.max_mismatch_rate = n.max_mismatch_rate;
  co.window = n.window;
  co.min_compared = n.min_compared;
  co.prepare_timeout = n.prepare_timeout;
  co.drain_timeout = n.drain_timeout;
  co.catchup_timeout = n.catchup_timeout;
  co.unmovable = n.unmovable;
  co.fence_old = n.fence_old;
  co.control_user = n.control_user;
  co.require_verify_within = n.require_verify_within;
  c.verify = loaded.verify;
  if (c.auth.mode == AuthMode::pgshift && loaded.auth.mode == AuthMode::pgshift) {
    c.auth.auth_file = loaded.auth.auth_file;
    c.auth.users = loaded.auth.users;
  }
  return c;
}

}  // namespace pgshift::config
