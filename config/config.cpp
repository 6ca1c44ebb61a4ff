// Loading and validation of pgshift's TOML configuration.
//
// The loader walks the document against a fixed schema: it checks every key's
// type and range, turns strings into enums and endpoints, resolves relative
// file paths, and reports unknown keys. `validate` then checks the cross-field
// rules on the resulting Config; it is shared with configs built from flags.
#include "config/config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <string_view>
#include <system_error>
#include <utility>

namespace pgshift::config {

namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------
// Limits, shared by the loader (which must not store out-of-range values) and
// by validate (which sees configs built from command-line flags too).

struct Range {
  std::int64_t lo;
  std::int64_t hi;
};

// Timeouts are capped so that "now + timeout" can never overflow a clock.
constexpr std::int64_t kMaxTimeoutMs = 24LL * 60 * 60 * 1000;  // one day

constexpr Range kThreads{0, 256};
constexpr Range kLoginTimeout{1, kMaxTimeoutMs};
constexpr Range kShutdownTimeout{0, kMaxTimeoutMs};
constexpr Range kConnectTimeout{1, kMaxTimeoutMs};
constexpr Range kMaxMessageSize{10000, 1LL << 30};
constexpr Range kBufferSize{1024, 1LL << 20};
constexpr Range kMaxBufferedBytes{10000, 1LL << 40};
constexpr Range kMaxConnections{1, std::numeric_limits<unsigned>::max()};
constexpr Range kCacheEntries{16, 10'000'000};
constexpr Range kQueueTransactions{1, 100'000'000};
constexpr Range kQueueBytes{1 << 16, std::int64_t{64} << 30};
constexpr Range kStatusInterval{100, 86'400'000};
constexpr Range kShadowTimeout{100, 86'400'000};
constexpr Range kCatalogRefresh{0, 86'400'000};
constexpr Range kCacheBytes{1 << 16, std::int64_t{16} << 30};
constexpr Range kPort{1, 65535};
constexpr Range kCutoverTimeout{1, kMaxTimeoutMs};
constexpr Range kWindow{1, 86'400};
constexpr Range kMinCompared{0, std::numeric_limits<std::int32_t>::max()};
constexpr Range kVerifyJobs{1, 64};
constexpr Range kChunkRows{1, 10'000'000};
constexpr Range kRowsPerSecond{0, std::numeric_limits<std::int64_t>::max()};
constexpr Range kRechecks{0, 100};
constexpr Range kRecheckWindow{10, kMaxTimeoutMs};
constexpr Range kVerifyWithin{0, 365LL * 86'400};
constexpr Range kAuthCacheTtl{0, kMaxTimeoutMs};
constexpr Range kAuthCacheEntries{1, 10'000'000};

constexpr std::array<std::string_view, 7> kLogLevels{"trace", "debug", "info",    "warn",
                                                     "error", "critical", "off"};

constexpr std::array<std::pair<std::string_view, ClientTlsMode>, 3> kClientTlsModes{{
    {"disable", ClientTlsMode::disable},
    {"allow", ClientTlsMode::allow},
    {"require", ClientTlsMode::require},
}};

constexpr std::array<std::pair<std::string_view, ServerTlsMode>, 5> kServerTlsModes{{
    {"disable", ServerTlsMode::disable},
    {"prefer", ServerTlsMode::prefer},
    {"require", ServerTlsMode::require},
    {"verify-ca", ServerTlsMode::verify_ca},
    {"verify-full", ServerTlsMode::verify_full},
}};

// ---------------------------------------------------------------------------
// Schema: the keys each table may hold, used for unknown-key reports.

struct Section {
  std::string_view path;  // dotted; "" is the document root
  std::vector<std::string_view> keys;
};

const std::vector<Section>& schema() {
  static const std::vector<Section> sections{
      {"",
       {"proxy", "log", "client_tls", "primary", "shadow", "rewrite", "rename", "admin", "auth", "cutover",
        "verify"}},
      {"auth",
       {"mode", "method", "auth_file", "auth_user", "auth_password", "auth_password_env", "auth_database",
        "auth_query", "cache_ttl_ms", "cache_entries"}},
      {"shadow",
       {"host", "port", "connect_timeout_ms", "tls", "database", "mirror", "read_sample_rate",
        "queue_transactions", "queue_bytes", "max_transaction_bytes", "mismatch_log", "redact",
        "status_interval_ms", "apply_timeout_ms", "idle_timeout_ms", "login", "compare", "sync", "sync_databases",
        "sync_tables", "sync_user", "publisher_conninfo", "subscriber_conninfo", "pg_dump", "psql", "read_wait_ms",
        "exact"}},
      {"shadow.tls", {"mode", "ca", "cert", "key"}},
      {"shadow.login", {"client_user", "user", "password", "password_env"}},
      {"shadow.compare", {"ignore_columns", "ignore_fingerprints", "numeric_tolerance"}},
      {"rewrite", {"strict", "cache_entries", "cache_bytes", "writing_functions", "catalog_refresh_ms"}},
      {"rename", {"table", "from", "to", "renamed_on", "phase"}},
      {"proxy",
       {"listen", "threads", "login_timeout_ms", "shutdown_timeout_ms", "max_message_size",
        "max_buffered_bytes", "buffer_size", "max_connections"}},
      {"log", {"level"}},
      {"client_tls", {"mode", "cert", "key"}},
      {"primary", {"host", "port", "connect_timeout_ms", "tls", "login"}},
      {"primary.login", {"client_user", "user", "password", "password_env"}},
      {"admin", {"user", "password", "password_env", "auth", "http_listen", "http_token_env"}},
      {"cutover",
       {"at", "when_ready", "deadline", "max_lag_ms", "max_mismatch_rate", "window_s", "min_compared",
        "prepare_timeout_ms", "drain_timeout_ms", "catchup_timeout_ms", "unmovable", "fence_old", "state_file",
        "databases", "control_user", "require_verify_within_s"}},
      {"verify",
       {"jobs", "chunk_rows", "max_rows_per_second", "live", "rechecks", "recheck_window_ms", "user", "database"}},
      {"primary.tls", {"mode", "ca", "cert", "key"}},
  };
  return sections;
}

const Section* find_section(std::string_view path) {
  for (const auto& s : schema()) {
    if (s.path == path) return &s;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------
// Small text helpers.

std::string join_list(const auto& items, std::string_view sep) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += sep;
    if constexpr (requires { item.first; }) {
      out += item.first;
    } else {
      out += item;
    }
  }
  return out;
}

bool is_bare_key(std::string_view k) {
  if (k.empty()) return false;
  return std::all_of(k.begin(), k.end(), [](unsigned char c) {
    return std::isalnum(c) != 0 || c == '_' || c == '-';
  });
}

// A key as it would be written in TOML: quoted when it is not a bare key.
std::string render_key(std::string_view k) {
  if (is_bare_key(k)) return std::string(k);
  std::string out = "\"";
  for (char c : k) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

std::string join_key(std::string_view prefix, std::string_view name) {
  std::string k = render_key(name);
  if (prefix.empty()) return k;
  return std::string(prefix) + "." + k;
}

std::string in_quotes(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string range_reason(const Range& r, std::int64_t got) {
  return "must be between " + std::to_string(r.lo) + " and " + std::to_string(r.hi) + " (got " +
         std::to_string(got) + ")";
}

std::string type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
  }
  return "nothing";
}

// Levenshtein distance, for "did you mean" hints.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      std::size_t cost = (a[i - 1] == b[j - 1]) ? 0 : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + cost});
      diag = up;
    }
  }
  return row[b.size()];
}

// The best guess for a mistyped key in table `section`: a close sibling, or
// the same name in another table (e.g. `threads` at the root → proxy.threads).
// Returned ready to print, quoted.
std::string suggestion(const Section& section, std::string_view key) {
  std::string_view best;
  std::size_t best_distance = std::max<std::size_t>(2, key.size() / 3) + 1;
  for (auto candidate : section.keys) {
    std::size_t d = edit_distance(key, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  if (!best.empty()) return in_quotes(best);
  for (const auto& other : schema()) {
    if (other.path == section.path) continue;
    for (auto candidate : other.keys) {
      if (candidate != key) continue;
      if (other.path.empty()) return in_quotes(candidate) + " at the top level";
      return in_quotes(join_key(other.path, candidate));
    }
  }
  return {};
}

// Why a TLS file cannot be used, or empty when it can.
std::string file_problem(const std::string& path) {
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found) return "file not found: " + path;
  if (ec) return "cannot access " + path + ": " + ec.message();
  if (fs::is_directory(st)) return "is a directory, not a file: " + path;
  if (!fs::is_regular_file(st)) return "not a regular file: " + path;
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot read " + path + ": " + std::strerror(errno);
  return {};
}

// ---------------------------------------------------------------------------
// The loader: one pass over the parsed document.

class Loader {
 public:
  Loader(std::string file, fs::path base_dir, std::vector<ConfigError>& errors)
      : file_(std::move(file)), base_dir_(std::move(base_dir)), errors_(errors) {}

  void load(const toml::table& root, Config& cfg) {
    check_unknown(root, "");

    if (const toml::table* t = section(root, "", "proxy")) load_proxy(*t, cfg);
    if (const toml::table* t = section(root, "", "log")) {
      check_unknown(*t, "log");
      string(*t, "log", "level", cfg.log_level);
    }
    if (const toml::table* t = section(root, "", "client_tls")) load_client_tls(*t, cfg.client_tls);

    if (const toml::table* t = section(root, "", "rewrite")) load_rewrite(*t, cfg.rewrite);
    load_renames(root, cfg.renames);

    if (const toml::table* t = section(root, "", "shadow")) load_shadow(*t, cfg.shadow);
    if (const toml::table* t = section(root, "", "admin")) load_admin(*t, cfg.admin);
    if (const toml::table* t = section(root, "", "auth")) load_auth(*t, cfg.auth);
    if (const toml::table* t = section(root, "", "cutover")) load_cutover(*t, cfg.cutover);
    if (const toml::table* t = section(root, "", "verify")) load_verify(*t, cfg.verify);
    if (!base_dir_.empty() && fs::path(cfg.cutover.state_file).is_relative())
      cfg.cutover.state_file = (base_dir_ / cfg.cutover.state_file).string();

    const toml::table* primary = section(root, "", "primary");
    if (primary) {
      check_unknown(*primary, "primary");
      load_upstream(*primary, "primary", cfg.primary);
      load_logins(*primary, "primary", cfg.primary_logins);
    } else if (!root.contains("primary")) {
      error("primary.host", "missing required key (set [primary] host and port)");
      error("primary.port", "missing required key (set [primary] host and port)");
    }
  }

 private:
  void error(std::string key, std::string reason) {
    errors_.push_back(ConfigError{file_, std::move(key), std::move(reason)});
  }

  // Reports every key of `t` that the schema does not know.
  void check_unknown(const toml::table& t, std::string_view path) {
    const Section* s = find_section(path);
    if (!s) return;
    for (auto&& [k, node] : t) {
      std::string_view name = k.str();
      if (std::find(s->keys.begin(), s->keys.end(), name) != s->keys.end()) continue;
      std::string reason = node.is_table() ? "unknown section" : "unknown key";
      std::string hint = suggestion(*s, name);
      if (!hint.empty()) reason += " (did you mean " + hint + "?)";
      error(join_key(path, name), std::move(reason));
    }
  }

  // The sub-table `name` of `parent`, or null when absent or not a table.
  const toml::table* section(const toml::table& parent, std::string_view parent_path,
                             std::string_view name) {
    const toml::node* n = parent.get(name);
    if (!n) return nullptr;
    if (const toml::table* t = n->as_table()) return t;
    error(join_key(parent_path, name), "expected a table, got " + type_name(n->type()));
    return nullptr;
  }

  // An integer within `r`, or nullopt (reported) when present but unusable.
  std::optional<std::int64_t> integer(const toml::table& t, std::string_view path,
                                      std::string_view name, const Range& r) {
    const toml::node* n = t.get(name);
    if (!n) return std::nullopt;
    std::string key = join_key(path, name);
    const toml::value<std::int64_t>* v = n->as_integer();
    if (!v) {
      error(key, "expected an integer, got " + type_name(n->type()));
      return std::nullopt;
    }
    std::int64_t x = v->get();
    if (x < r.lo || x > r.hi) {
      error(key, range_reason(r, x));
      return std::nullopt;
    }
    return x;
  }

  template <class T>
  void integer_into(const toml::table& t, std::string_view path, std::string_view name,
                    const Range& r, T& out) {
    if (auto x = integer(t, path, name, r)) out = static_cast<T>(*x);
  }

  void millis_into(const toml::table& t, std::string_view path, std::string_view name,
                   const Range& r, std::chrono::milliseconds& out) {
    if (auto x = integer(t, path, name, r)) out = std::chrono::milliseconds(*x);
  }

  // A string; false when absent or of the wrong type (reported).
  bool string(const toml::table& t, std::string_view path, std::string_view name,
              std::string& out) {
    const toml::node* n = t.get(name);
    if (!n) return false;
    const toml::value<std::string>* v = n->as_string();
    if (!v) {
      error(join_key(path, name), "expected a string, got " + type_name(n->type()));
      return false;
    }
    out = v->get();
    return true;
  }

  // A file path: relative ones are taken from the config file's directory.
  void path_into(const toml::table& t, std::string_view path, std::string_view name,
                 std::string& out) {
    std::string s;
    if (!string(t, path, name, s)) return;
    out = std::move(s);
    resolve(out);
  }

  void resolve(std::string& file) const {
    if (!file.empty() && !base_dir_.empty() && fs::path(file).is_relative()) file = (base_dir_ / file).string();
  }

  template <class Enum, std::size_t N>
  void mode_into(const toml::table& t, std::string_view path,
                 const std::array<std::pair<std::string_view, Enum>, N>& modes, Enum& out) {
    std::string s;
    if (!string(t, path, "mode", s)) return;
    for (const auto& [text, value] : modes) {
      if (text == s) {
        out = value;
        return;
      }
    }
    error(join_key(path, "mode"),
          "must be one of " + join_list(modes, ", ") + " (got " + in_quotes(s) + ")");
  }

  void load_proxy(const toml::table& t, Config& cfg) {
    check_unknown(t, "proxy");
    std::string listen;
    if (string(t, "proxy", "listen", listen)) {
      Endpoint ep;
      if (parse_endpoint(listen, ep)) {
        cfg.listen = std::move(ep);
      } else {
        error("proxy.listen", "expected \"host:port\" (IPv6 as \"[::1]:6432\"), got " +
                                  in_quotes(listen));
      }
    }
    integer_into(t, "proxy", "threads", kThreads, cfg.threads);
    millis_into(t, "proxy", "login_timeout_ms", kLoginTimeout, cfg.login_timeout);
    millis_into(t, "proxy", "shutdown_timeout_ms", kShutdownTimeout, cfg.shutdown_timeout);
    integer_into(t, "proxy", "max_message_size", kMaxMessageSize, cfg.max_message_size);
    cfg.max_buffered_bytes = default_max_buffered_bytes(cfg.max_message_size);
    integer_into(t, "proxy", "max_buffered_bytes", kMaxBufferedBytes, cfg.max_buffered_bytes);
    integer_into(t, "proxy", "buffer_size", kBufferSize, cfg.buffer_size);
    integer_into(t, "proxy", "max_connections", kMaxConnections, cfg.max_connections);
  }

  void load_client_tls(const toml::table& t, ClientTls& tls) {
    check_unknown(t, "client_tls");
    mode_into(t, "client_tls", kClientTlsModes, tls.mode);
    path_into(t, "client_tls", "cert", tls.cert_file);
    path_into(t, "client_tls", "key", tls.key_file);
  }

  // [primary] and the server part of [shadow]: host, port, timeout, TLS.
  void load_upstream(const toml::table& t, const std::string& path, Upstream& up) {
    if (!t.contains("host")) error(path + ".host", "missing required key");
    if (!t.contains("port")) error(path + ".port", "missing required key");
    string(t, path, "host", up.address.host);
    integer_into(t, path, "port", kPort, up.address.port);
    millis_into(t, path, "connect_timeout_ms", kConnectTimeout, up.connect_timeout);
    const std::string tls_path = path + ".tls";
    if (const toml::table* tls = section(t, path, "tls")) {
      check_unknown(*tls, tls_path);
      mode_into(*tls, tls_path, kServerTlsModes, up.tls.mode);
      path_into(*tls, tls_path, "ca", up.tls.ca_file);
      path_into(*tls, tls_path, "cert", up.tls.cert_file);
      path_into(*tls, tls_path, "key", up.tls.key_file);
    }
  }

  void load_shadow(const toml::table& t, Shadow& sh) {
    check_unknown(t, "shadow");
    sh.enabled = true;
    load_upstream(t, "shadow", sh.server);
    string(t, "shadow", "database", sh.database);
    boolean(t, "shadow", "mirror", sh.mirror);
    boolean(t, "shadow", "redact", sh.redact);
    boolean(t, "shadow", "exact", sh.exact);
    number(t, "shadow", "read_sample_rate", sh.read_sample_rate);
    integer_into(t, "shadow", "queue_transactions", kQueueTransactions, sh.queue_transactions);
    integer_into(t, "shadow", "queue_bytes", kQueueBytes, sh.queue_bytes);
    integer_into(t, "shadow", "max_transaction_bytes", kQueueBytes, sh.max_transaction_bytes);
    resolve(sh.mismatch_log);  // the default too lives beside the configuration file
    path_into(t, "shadow", "mismatch_log", sh.mismatch_log);
    millis_into(t, "shadow", "status_interval_ms", kStatusInterval, sh.status_interval);
    millis_into(t, "shadow", "apply_timeout_ms", kShadowTimeout, sh.apply_timeout);
    millis_into(t, "shadow", "idle_timeout_ms", kShadowTimeout, sh.idle_timeout);
    load_logins(t, "shadow", sh.logins);
    static constexpr std::array<std::string_view, 2> modes{"mirror", "logical"};
    if (auto i = choice(t, "shadow", "sync", modes)) sh.sync = *i ? SyncMode::logical : SyncMode::mirror;
    if (t.contains("sync_databases")) {
      sh.sync_databases.clear();
      strings(t, "shadow", "sync_databases", sh.sync_databases);
    }
    strings(t, "shadow", "sync_tables", sh.sync_tables);
    string(t, "shadow", "sync_user", sh.sync_user);
    string(t, "shadow", "publisher_conninfo", sh.publisher_conninfo);
    string(t, "shadow", "subscriber_conninfo", sh.subscriber_conninfo);
    string(t, "shadow", "pg_dump", sh.pg_dump);
    string(t, "shadow", "psql", sh.psql);
    millis_into(t, "shadow", "read_wait_ms", kShadowTimeout, sh.read_wait);
    if (const toml::table* c = section(t, "shadow", "compare")) {
      check_unknown(*c, "shadow.compare");
      strings(*c, "shadow.compare", "ignore_columns", sh.compare.ignore_columns);
      strings(*c, "shadow.compare", "ignore_fingerprints", sh.compare.ignore_fingerprints);
      number(*c, "shadow.compare", "numeric_tolerance", sh.compare.numeric_tolerance);
    }
  }

  // [[SECTION.login]] tables, reported as SECTION.login[N].key.
  void load_logins(const toml::table& t, const std::string& section, std::vector<ServerLogin>& out) {
    const toml::node* n = t.get("login");
    if (!n) return;
    const toml::array* a = n->as_array();
    if (!a) return error(section + ".login", "expected an array of tables ([[" + section + ".login]])");
    for (std::size_t i = 0; i < a->size(); ++i)
      load_login((*a)[i], section + ".login[" + std::to_string(i) + "]", section + ".login", out);
  }

  void load_login(const toml::node& n, const std::string& path, std::string_view known_section,
                  std::vector<ServerLogin>& out) {
    const toml::table* l = n.as_table();
    if (!l) return error(path, "expected a table");
    const Section* known = find_section(known_section);
    for (auto&& [k, v] : *l)
      if (std::find(known->keys.begin(), known->keys.end(), k.str()) == known->keys.end())
        error(path + "." + std::string(k.str()), "unknown key");
    ServerLogin login;
    if (!l->contains("client_user")) error(path + ".client_user", "missing required key (\"*\" for everyone)");
    string(*l, path, "client_user", login.client_user);
    string(*l, path, "user", login.user);
    password_into(*l, path, login.password);
    out.push_back(std::move(login));
  }

  // `password`, or the environment variable `password_env` names.
  void password_into(const toml::table& t, const std::string& path, std::string& out) {
    string(t, path, "password", out);
    std::string env;
    if (string(t, path, "password_env", env)) {
      if (const char* v = std::getenv(env.c_str())) out = v;
      else error(path + ".password_env", "environment variable " + in_quotes(env) + " is not set");
    }
  }

  void load_admin(const toml::table& t, Admin& admin) {
    check_unknown(t, "admin");
    string(t, "admin", "user", admin.user);
    password_into(t, "admin", admin.password);
    if (string(t, "admin", "auth", admin.auth) && admin.auth != "scram-sha-256" && admin.auth != "md5")
      error("admin.auth", "must be one of scram-sha-256, md5 (got " + in_quotes(admin.auth) + ")");
    // "host:port", or a port alone for 127.0.0.1.
    if (const toml::node* n = t.get("http_listen")) {
      Endpoint ep;
      if (const auto* port = n->as_integer()) {
        if (port->get() < kPort.lo || port->get() > kPort.hi) error("admin.http_listen", range_reason(kPort, port->get()));
        else admin.http_listen = Endpoint{"127.0.0.1", static_cast<std::uint16_t>(port->get())};
      } else if (const auto* text = n->as_string(); text && parse_endpoint(text->get(), ep)) {
        admin.http_listen = std::move(ep);
      } else {
        error("admin.http_listen", "expected \"host:port\" or a port number (for 127.0.0.1)");
      }
    }
    // Unset is not an error: requests that change state are then refused
    // (pgshift warns), and `pgshift ctl`, which needs no token, still loads.
    if (string(t, "admin", "http_token_env", admin.http_token_env))
      if (const char* v = std::getenv(admin.http_token_env.c_str())) admin.http_token = v;
  }

  void load_auth(const toml::table& t, Auth& auth) {
    check_unknown(t, "auth");
    static constexpr std::array<std::string_view, 2> modes{"relay", "pgshift"};
    static constexpr std::array<std::string_view, 3> methods{"scram-sha-256", "md5", "password"};
    if (auto i = choice(t, "auth", "mode", modes)) auth.mode = *i ? AuthMode::pgshift : AuthMode::relay;
    if (auto i = choice(t, "auth", "method", methods)) auth.method = static_cast<ClientAuthMethod>(*i);
    path_into(t, "auth", "auth_file", auth.auth_file);
    string(t, "auth", "auth_user", auth.auth_user);
    string(t, "auth", "auth_password", auth.auth_password);
    std::string env;
    if (string(t, "auth", "auth_password_env", env)) {
      if (const char* v = std::getenv(env.c_str())) auth.auth_password = v;
      else error("auth.auth_password_env", "environment variable " + in_quotes(env) + " is not set");
    }
    string(t, "auth", "auth_database", auth.auth_database);
    string(t, "auth", "auth_query", auth.auth_query);
    millis_into(t, "auth", "cache_ttl_ms", kAuthCacheTtl, auth.cache_ttl);
    integer_into(t, "auth", "cache_entries", kAuthCacheEntries, auth.cache_entries);
    if (!auth.auth_file.empty()) {
      std::vector<std::string> problems;
      auth.users = read_auth_file(auth.auth_file, problems);
      for (std::string& p : problems) error("auth.auth_file", std::move(p));
    }
  }

  // One of `choices` for key `name`, as its index; nullopt when absent or wrong (reported).
  template <std::size_t N>
  std::optional<std::size_t> choice(const toml::table& t, std::string_view path, std::string_view name,
                                    const std::array<std::string_view, N>& choices) {
    std::string s;
    if (!string(t, path, name, s)) return std::nullopt;
    for (std::size_t i = 0; i < N; ++i)
      if (choices[i] == s) return i;
    error(join_key(path, name), "must be one of " + join_list(choices, ", ") + " (got " + in_quotes(s) + ")");
    return std::nullopt;
  }

  // An RFC 3339 time with an offset, as a TOML date-time or as a string.
  void time_into(const toml::table& t, std::string_view path, std::string_view name,
                 std::optional<Cutover::TimePoint>& out) {
    const toml::node* n = t.get(name);
    if (!n) return;
    std::string text;
    if (const toml::value<std::string>* v = n->as_string()) text = v->get();
    if (auto parsed = n->is_date_time() ? std::optional<toml::date_time>(n->as_date_time()->get())
                                        : parse_date_time(text)) {
      if (parsed->offset) {
        out = to_time_point(*parsed);
        return;
      }
    }
    error(join_key(path, name), "expected an RFC 3339 time with an offset, such as \"2026-12-01T21:00:00Z\"");
  }

  // toml++ reads RFC 3339 date-times; a string value is parsed the same way.
  static std::optional<toml::date_time> parse_date_time(const std::string& text) {
    if (text.empty() || text.find_first_of("\n\"=#[") != std::string::npos) return std::nullopt;
#if TOML_EXCEPTIONS
    try {
      toml::table doc = toml::parse("v = " + text);
      if (auto* v = doc.get("v"); v && v->is_date_time()) return v->as_date_time()->get();
    } catch (const toml::parse_error&) {
    }
#else
    toml::parse_result doc = toml::parse("v = " + text);
    if (doc)
      if (auto* v = doc.table().get("v"); v && v->is_date_time()) return v->as_date_time()->get();
#endif
    return std::nullopt;
  }

  static Cutover::TimePoint to_time_point(const toml::date_time& dt) {
    using namespace std::chrono;
    const sys_days day = year_month_day{year{dt.date.year}, month{dt.date.month}, std::chrono::day{dt.date.day}};
    const auto local = day + hours{dt.time.hour} + minutes{dt.time.minute} + seconds{dt.time.second} +
                       duration_cast<system_clock::duration>(nanoseconds{dt.time.nanosecond});
    return Cutover::TimePoint(local - minutes{dt.offset->minutes});
  }

  void load_verify(const toml::table& t, Verify& v) {
    check_unknown(t, "verify");
    integer_into(t, "verify", "jobs", kVerifyJobs, v.jobs);
    integer_into(t, "verify", "chunk_rows", kChunkRows, v.chunk_rows);
    integer_into(t, "verify", "max_rows_per_second", kRowsPerSecond, v.max_rows_per_second);
    boolean(t, "verify", "live", v.live);
    integer_into(t, "verify", "rechecks", kRechecks, v.rechecks);
    millis_into(t, "verify", "recheck_window_ms", kRecheckWindow, v.recheck_window);
    string(t, "verify", "user", v.user);
    string(t, "verify", "database", v.database);
  }

  void load_cutover(const toml::table& t, Cutover& c) {
    check_unknown(t, "cutover");
    time_into(t, "cutover", "at", c.at);
    time_into(t, "cutover", "deadline", c.deadline);
    boolean(t, "cutover", "when_ready", c.when_ready);
    millis_into(t, "cutover", "max_lag_ms", kCutoverTimeout, c.max_lag);
    number(t, "cutover", "max_mismatch_rate", c.max_mismatch_rate);
    if (auto w = integer(t, "cutover", "window_s", kWindow)) c.window = std::chrono::seconds(*w);
    integer_into(t, "cutover", "min_compared", kMinCompared, c.min_compared);
    millis_into(t, "cutover", "prepare_timeout_ms", kCutoverTimeout, c.prepare_timeout);
    millis_into(t, "cutover", "drain_timeout_ms", kCutoverTimeout, c.drain_timeout);
    millis_into(t, "cutover", "catchup_timeout_ms", kCutoverTimeout, c.catchup_timeout);
    static constexpr std::array<std::string_view, 2> unmovable{"wait", "close"}, fence{"none", "read_only"};
    if (auto i = choice(t, "cutover", "unmovable", unmovable)) c.unmovable = *i ? Unmovable::close : Unmovable::wait;
    if (auto i = choice(t, "cutover", "fence_old", fence)) c.fence_old = *i ? Fence::read_only : Fence::none;
    string(t, "cutover", "state_file", c.state_file);
    strings(t, "cutover", "databases", c.databases);
    string(t, "cutover", "control_user", c.control_user);
    if (auto w = integer(t, "cutover", "require_verify_within_s", kVerifyWithin))
      c.require_verify_within = std::chrono::seconds(*w);
  }

  void boolean(const toml::table& t, std::string_view path, std::string_view name, bool& out) {
    const toml::node* n = t.get(name);
    if (!n) return;
    if (const toml::value<bool>* b = n->as_boolean()) out = b->get();
    else error(join_key(path, name), "expected a boolean, got " + type_name(n->type()));
  }

  // A float or an integer.
  void number(const toml::table& t, std::string_view path, std::string_view name, double& out) {
    const toml::node* n = t.get(name);
    if (!n) return;
    if (const toml::value<double>* d = n->as_floating_point()) out = d->get();
    else if (const toml::value<std::int64_t>* i = n->as_integer()) out = static_cast<double>(i->get());
    else error(join_key(path, name), "expected a number, got " + type_name(n->type()));
  }

  void strings(const toml::table& t, std::string_view path, std::string_view name, std::vector<std::string>& out) {
    const toml::node* n = t.get(name);
    if (!n) return;
    const toml::array* a = n->as_array();
    if (!a) return error(join_key(path, name), "expected an array of strings, got " + type_name(n->type()));
    for (const toml::node& item : *a) {
      if (auto v = item.value<std::string>()) out.push_back(*v);
      else error(join_key(path, name), "expected an array of strings");
    }
  }

  void load_rewrite(const toml::table& t, Rewrite& rw) {
    check_unknown(t, "rewrite");
    boolean(t, "rewrite", "strict", rw.strict);
    integer_into(t, "rewrite", "cache_entries", kCacheEntries, rw.cache_entries);
    integer_into(t, "rewrite", "cache_bytes", kCacheBytes, rw.cache_bytes);
    strings(t, "rewrite", "writing_functions", rw.writing_functions);
    millis_into(t, "rewrite", "catalog_refresh_ms", kCatalogRefresh, rw.catalog_refresh);
  }

  // [[rename]] tables, reported as rename[N].key.
  void load_renames(const toml::table& root, std::vector<RenameRule>& out) {
    const toml::node* n = root.get("rename");
    if (!n) return;
    const toml::array* a = n->as_array();
    if (!a) return error("rename", "expected an array of tables ([[rename]]), got " + type_name(n->type()));
    for (std::size_t i = 0; i < a->size(); ++i) {
      const std::string path = "rename[" + std::to_string(i) + "]";
      const toml::table* t = (*a)[i].as_table();
      if (!t) {
        error(path, "expected a table");
        continue;
      }
      for (auto&& [k, v] : *t) {
        const Section* sec = find_section("rename");
        if (std::find(sec->keys.begin(), sec->keys.end(), k.str()) == sec->keys.end())
          error(path + "." + std::string(k.str()), "unknown key");
      }
      RenameRule r;
      std::string table, side;
      for (const char* key : {"table", "from", "to", "renamed_on"})
        if (!t->contains(key)) error(path + "." + key, "missing required key");
      string(*t, path, "table", table);
      string(*t, path, "from", r.from);
      string(*t, path, "to", r.to);
      if (const auto dot = table.find('.'); dot != std::string::npos) {
        r.schema = table.substr(0, dot);
        r.table = table.substr(dot + 1);
      } else {
        r.table = table;
      }
      std::string phase;
      if (string(*t, path, "phase", phase)) {
        if (phase == "expand") r.expand = true;
        else if (phase != "contract") error(path + ".phase", "must be one of contract, expand (got " + in_quotes(phase) + ")");
      }
      if (string(*t, path, "renamed_on", side)) {
        if (side == "primary") r.renamed_on = RenameSide::primary;
        else if (side == "shadow") r.renamed_on = RenameSide::shadow;
        else if (side == "both") r.renamed_on = RenameSide::both;
        else error(path + ".renamed_on", "must be one of primary, shadow, both (got " + in_quotes(side) + ")");
      }
      out.push_back(std::move(r));
    }
  }

  std::string file_;
  fs::path base_dir_;
  std::vector<ConfigError>& errors_;
};

std::optional<Config> load_text(const std::string& text, const std::string& source,
                                const fs::path& base_dir, std::vector<ConfigError>& errors) {
  toml::table root;
  std::optional<toml::parse_error> syntax;
#if TOML_EXCEPTIONS
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    syntax = e;
  }
#else
  toml::parse_result result = toml::parse(text, source);
  if (result) {
    root = std::move(result).table();
  } else {
    syntax = std::move(result).error();
  }
#endif
  if (syntax) {
    const auto& begin = syntax->source().begin;
    std::ostringstream reason;
    reason << "syntax error at line " << begin.line << ", column " << begin.column << ": "
           << syntax->description();
    errors.push_back(ConfigError{source, "", reason.str()});
    return std::nullopt;
  }

  Config cfg;
  cfg.source = source;
  std::vector<ConfigError> found;
  Loader(source, base_dir, found).load(root, cfg);

  // Cross-field rules. A key the loader already complained about (or one
  // inside a table it rejected) is skipped, so that e.g. a rejected port is
  // not reported a second time as "must be between 1 and 65535 (got 0)".
  std::vector<ConfigError> cross;
  validate(cfg, cross);
  for (auto& e : cross) {
    bool seen = std::any_of(found.begin(), found.end(), [&](const ConfigError& f) {
      return e.key == f.key || e.key.starts_with(f.key + ".");
    });
    if (!seen) found.push_back(std::move(e));
  }

  bool ok = found.empty();
  errors.insert(errors.end(), std::make_move_iterator(found.begin()),
                std::make_move_iterator(found.end()));
  if (!ok) return std::nullopt;
  return cfg;
}

void check_range(std::vector<ConfigError>& errors, const std::string& file, std::string key,
                 std::int64_t value, const Range& r) {
  if (value < r.lo || value > r.hi) {
    errors.push_back(ConfigError{file, std::move(key), range_reason(r, value)});
  }
}

// A required, readable TLS file.
void check_file(std::vector<ConfigError>& errors, const std::string& file, std::string key,
                const std::string& path, std::string_view required_because) {
  if (path.empty()) {
    if (!required_because.empty()) {
      errors.push_back(ConfigError{file, std::move(key), "required " + std::string(required_because)});
    }
    return;
  }
  std::string problem = file_problem(path);
  if (!problem.empty()) errors.push_back(ConfigError{file, std::move(key), std::move(problem)});
}

std::string_view server_mode_name(ServerTlsMode m) {
  for (const auto& [text, value] : kServerTlsModes) {
    if (value == m) return text;
  }
  return "?";
}

std::string_view client_mode_name(ClientTlsMode m) {
  for (const auto& [text, value] : kClientTlsModes) {
    if (value == m) return text;
  }
  return "?";
}

bool all_digits(std::string_view s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

}  // namespace

std::string ConfigError::what() const {
  if (key.empty()) return file + ": " + reason;
  return file + ": " + key + ": " + reason;
}

std::optional<Config> load_file(const std::string& path, std::vector<ConfigError>& errors) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    errors.push_back(ConfigError{path, "", "is a directory, not a file"});
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    errors.push_back(ConfigError{path, "", std::string("cannot open: ") + std::strerror(errno)});
    return std::nullopt;
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    errors.push_back(ConfigError{path, "", "read error"});
    return std::nullopt;
  }
  // Absolute, so the resolved paths do not depend on the directory pgshift runs in.
  return load_text(text.str(), path, fs::absolute(path, ec).parent_path(), errors);
}

std::optional<Config> load_string(const std::string& text, const std::string& source,
                                  std::vector<ConfigError>& errors) {
  // Relative paths stay relative, i.e. they are taken from the current directory.
  return load_text(text, source, fs::path(), errors);
}

bool parse_endpoint(const std::string& text, Endpoint& out) {
  std::string_view s = text;
  std::size_t colon = s.rfind(':');
  if (colon == std::string_view::npos) return false;
  std::string_view host = s.substr(0, colon);
  std::string_view port = s.substr(colon + 1);

  if (!host.empty() && host.front() == '[') {
    if (host.size() < 2 || host.back() != ']') return false;
    host = host.substr(1, host.size() - 2);
    if (host.find_first_of("[]") != std::string_view::npos) return false;
  } else if (host.find_first_of(":[]") != std::string_view::npos) {
    return false;  // a bare IPv6 address is ambiguous; it must be bracketed
  }
  if (host.empty()) return false;
  if (std::any_of(host.begin(), host.end(),
                  [](unsigned char c) { return std::isspace(c) != 0 || std::iscntrl(c) != 0; })) {
    return false;
  }

  if (!all_digits(port) || port.size() > 5) return false;
  unsigned value = 0;
  for (char c : port) value = value * 10 + static_cast<unsigned>(c - '0');
  if (value == 0 || value > 65535) return false;

  out.host = std::string(host);
  out.port = static_cast<std::uint16_t>(value);
  return true;
}

std::string_view to_string(Side s) noexcept { return s == Side::primary ? "primary" : "shadow"; }

const ServerLogin* find_login(const std::vector<ServerLogin>& logins, const std::string& client_user) {
  const ServerLogin* fallback = nullptr;
  for (const ServerLogin& l : logins) {
    if (l.client_user == client_user) return &l;
    if (l.client_user == "*") fallback = &l;
  }
  return fallback;
}

namespace {

// [primary] or the server part of [shadow]. A half-configured client
// certificate is a mistake even when TLS is off; the files themselves only
// matter when TLS may be used.
void validate_upstream(const Upstream& up, const std::string& path, std::vector<ConfigError>& errors,
                       const std::string& file) {
  auto add = [&](std::string key, std::string reason) {
    errors.push_back(ConfigError{file, std::move(key), std::move(reason)});
  };
  if (up.address.host.empty()) add(path + ".host", "must not be empty");
  check_range(errors, file, path + ".port", up.address.port, kPort);
  check_range(errors, file, path + ".connect_timeout_ms", up.connect_timeout.count(), kConnectTimeout);
  const ServerTls& st = up.tls;
  if (!st.cert_file.empty() && st.key_file.empty()) {
    add(path + ".tls.key", "required when cert is set");
  } else if (st.cert_file.empty() && !st.key_file.empty()) {
    add(path + ".tls.cert", "required when key is set");
  }
  if (st.mode != ServerTlsMode::disable) {
    bool verifies = st.mode == ServerTlsMode::verify_ca || st.mode == ServerTlsMode::verify_full;
    std::string because = verifies ? "when mode is " + std::string(server_mode_name(st.mode)) : std::string();
    check_file(errors, file, path + ".tls.ca", st.ca_file, because);
    check_file(errors, file, path + ".tls.cert", st.cert_file, "");
    check_file(errors, file, path + ".tls.key", st.key_file, "");
  }
}

}  // namespace

void validate(const Config& cfg, std::vector<ConfigError>& errors) {
  const std::string& file = cfg.source;
  auto add = [&](std::string key, std::string reason) {
    errors.push_back(ConfigError{file, std::move(key), std::move(reason)});
  };

  // [proxy]. A listen port of 0 is left alone: it asks for an ephemeral port,
  // which only code (tests) can request; parse_endpoint never yields it.
  if (cfg.listen.host.empty()) add("proxy.listen", "host must not be empty");
  check_range(errors, file, "proxy.threads", cfg.threads, kThreads);
  check_range(errors, file, "proxy.login_timeout_ms", cfg.login_timeout.count(), kLoginTimeout);
  check_range(errors, file, "proxy.shutdown_timeout_ms", cfg.shutdown_timeout.count(),
              kShutdownTimeout);
  check_range(errors, file, "proxy.max_message_size", cfg.max_message_size, kMaxMessageSize);
  check_range(errors, file, "proxy.buffer_size", cfg.buffer_size, kBufferSize);
  check_range(errors, file, "proxy.max_connections", cfg.max_connections, kMaxConnections);
  check_range(errors, file, "proxy.max_buffered_bytes", static_cast<std::int64_t>(cfg.max_buffered_bytes),
              kMaxBufferedBytes);
  if (cfg.max_buffered_bytes < cfg.max_message_size) {
    add("proxy.max_buffered_bytes", "must be at least proxy.max_message_size (" + std::to_string(cfg.max_message_size) +
                                        "): a message of the largest allowed size could never be read");
  }

  // [log]
  if (std::find(kLogLevels.begin(), kLogLevels.end(), cfg.log_level) == kLogLevels.end()) {
    add("log.level",
        "must be one of " + join_list(kLogLevels, ", ") + " (got " + in_quotes(cfg.log_level) + ")");
  }

  // [client_tls]
  const ClientTls& ct = cfg.client_tls;
  if (ct.mode != ClientTlsMode::disable) {
    std::string because = "when mode is " + std::string(client_mode_name(ct.mode));
    check_file(errors, file, "client_tls.cert", ct.cert_file, because);
    check_file(errors, file, "client_tls.key", ct.key_file, because);
  }

  validate_upstream(cfg.primary, "primary", errors, file);
  if (cfg.shadow.enabled) {
    const Shadow& sh = cfg.shadow;
    validate_upstream(sh.server, "shadow", errors, file);
    if (sh.read_sample_rate < 0 || sh.read_sample_rate > 1) add("shadow.read_sample_rate", "must be between 0 and 1");
    if (sh.compare.numeric_tolerance < 0) add("shadow.compare.numeric_tolerance", "must not be negative");
    if (sh.logins.empty() && cfg.auth.mode == AuthMode::relay)
      add("shadow.login",
          "missing: add [[shadow.login]] with client_user = \"*\" (the shadow needs its own credentials), or let "
          "pgshift authenticate clients ([auth] mode = \"pgshift\") and log in as them");
    if (sh.sync == SyncMode::logical && sh.sync_databases.empty())
      add("shadow.sync_databases", "must name at least one database to replicate");
    for (const std::string& t : sh.sync_tables)
      if (t.find('.') == std::string::npos) add("shadow.sync_tables", "expected \"schema.table\", got \"" + t + "\"");
    for (const std::string& f : sh.compare.ignore_fingerprints)
      if (f.size() != 16 || f.find_first_not_of("0123456789abcdef") != std::string::npos)
        add("shadow.compare.ignore_fingerprints", "expected 16 lower-case hex digits, got \"" + f + "\"");
  }

  // [cutover]: a switch needs somewhere to switch to.
  const Cutover& co = cfg.cutover;
  if (co.max_mismatch_rate < 0 || co.max_mismatch_rate > 1) add("cutover.max_mismatch_rate", "must be between 0 and 1");
  if (co.state_file.empty()) add("cutover.state_file", "must not be empty");
  if ((co.at || co.when_ready) && !cfg.shadow.enabled)
    add(co.at ? "cutover.at" : "cutover.when_ready", "a configured cutover needs a [shadow] section (the new database)");
  if (co.at && co.deadline && *co.deadline <= *co.at) add("cutover.deadline", "must be later than cutover.at");
  if (cfg.admin.user.empty()) add("admin.user", "must not be empty");

  // [auth]
  const Auth& au = cfg.auth;
  if (au.mode == AuthMode::pgshift) {
    if (au.auth_file.empty() && au.auth_user.empty())
      add("auth.auth_file", "missing: mode = \"pgshift\" needs the users' password secrets (auth_file, or auth_user "
                            "for auth_query)");
    if (!au.auth_user.empty() && au.auth_query.find("$1") == std::string::npos)
      add("auth.auth_query", "must take the user name as the parameter $1");
    if (!au.auth_user.empty() && au.auth_database.empty()) add("auth.auth_database", "must not be empty");
  } else {
    if (!au.auth_file.empty())
      add("auth.auth_file", "only used with auth.mode = \"pgshift\" (in relay mode the server authenticates clients)");
    if (!au.auth_user.empty())
      add("auth.auth_user", "only used with auth.mode = \"pgshift\" (in relay mode the server authenticates clients)");
    if (au.method != ClientAuthMethod::scram_sha_256)
      add("auth.method", "only used with auth.mode = \"pgshift\" (in relay mode the server authenticates clients)");
  }
  if (co.require_verify_within.count() > 0 && !cfg.shadow.enabled)
    add("cutover.require_verify_within_s", "needs a [shadow] section (the database to verify)");

  // [[rename]]: names present, one rule per column, no chains.
  for (std::size_t i = 0; i < cfg.renames.size(); ++i) {
    const RenameRule& r = cfg.renames[i];
    const std::string path = "rename[" + std::to_string(i) + "]";
    if (r.table.empty() || r.schema.empty()) add(path + ".table", "expected \"table\" or \"schema.table\"");
    if (r.from.empty()) add(path + ".from", "must not be empty");
    if (r.to.empty()) add(path + ".to", "must not be empty");
    if (!r.from.empty() && r.from == r.to) add(path + ".to", "is the same as from");
    for (std::size_t j = 0; j < i; ++j) {
      const RenameRule& o = cfg.renames[j];
      if (o.schema != r.schema || o.table != r.table) continue;
      if (o.from == r.from)
        add(path + ".from", "rename[" + std::to_string(j) + "] already renames " + r.table + "." + r.from);
      else if (o.to == r.from || o.from == r.to || o.to == r.to)
        add(path, "chains or collides with rename[" + std::to_string(j) + "] on " + r.table);
    }
  }
}

}  // namespace pgshift::config
