// pgshift's configuration: a TOML file, or command-line flags for a quick start.
// Everything is validated at load; an error names the file, the key and the reason.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/auth_file.hpp"

namespace pgshift::config {

enum class ClientTlsMode { disable, allow, require };
enum class ServerTlsMode { disable, prefer, require, verify_ca, verify_full };

struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
};

struct ClientTls {
  ClientTlsMode mode = ClientTlsMode::disable;
  std::string cert_file;  // PEM; required unless mode is disable
  std::string key_file;   // PEM; required unless mode is disable
};

struct ServerTls {
  ServerTlsMode mode = ServerTlsMode::disable;
  std::string ca_file;      // required for verify-ca and verify-full
  std::string cert_file;    // optional client certificate
  std::string key_file;     // its key; required when cert_file is set
};

struct Upstream {
  Endpoint address;  // [primary] host, port
  ServerTls tls;     // [primary.tls]
  std::chrono::milliseconds connect_timeout{5000};
};

// Which database has a renamed column's new name.
enum class RenameSide { primary, shadow, both };

// [[rename]]: on schema.table the application says `from`, the database named
// by `renamed_on` has `to`.
struct RenameRule {
  std::string schema = "public";
  std::string table;
  std::string from;
  std::string to;
  RenameSide renamed_on = RenameSide::primary;
  // contract: only `to` exists there (statements are rewritten to it);
  // expand: both exist (statements keep `from`; writes also set `to`).
  bool expand = false;
};

// The two servers a migration involves, as configured: [primary] (the old
// database) and [shadow] (the new one, "the target"). Which of them serves
// clients changes at a cutover; the names do not.
enum class Side : std::uint8_t { primary, shadow };
constexpr Side other(Side s) noexcept { return s == Side::primary ? Side::shadow : Side::primary; }
std::string_view to_string(Side s) noexcept;

// [[shadow.login]] and [[primary.login]]: how pgshift logs in to a server by
// itself for a client user: the shadow's mirror connections, and the
// connections a cutover moves sessions to. With [auth] mode = "relay" client
// authentication is relayed to the server, so pgshift never knows the client's
// password and needs these; with mode = "pgshift" it logs in as the client's
// own user (pass-through) and uses these only where pass-through cannot work.
struct ServerLogin {
  std::string client_user;  // "*": every user without an entry of its own
  std::string user;         // empty: the client's user name
  std::string password;     // or read from the environment variable password_env
};
using ShadowLogin = ServerLogin;

// The login for a client user in `logins`, or null when there is none.
const ServerLogin* find_login(const std::vector<ServerLogin>& logins, const std::string& client_user);

// [shadow.compare]: noise rules.
struct CompareRules {
  std::vector<std::string> ignore_columns;       // "table.column" or "column"
  std::vector<std::string> ignore_fingerprints;  // 16 hex digits, as logged
  double numeric_tolerance = 0;                  // absolute, for numeric and float columns
};

// How the shadow is kept in sync: by replaying committed statements
// (mirror), or by PostgreSQL's logical replication (logical), which also
// copies the rows that exist and carries the primary's exact values.
enum class SyncMode { mirror, logical };

// [shadow]: the database that receives every committed write (and a sample
// of reads) and whose results are compared with the primary's.
struct Shadow {
  bool enabled = false;    // a [shadow] section is present
  Upstream server;         // host, port, connect_timeout_ms, [shadow.tls]
  std::string database;    // empty: the client's database
  bool mirror = true;      // false: configured but paused
  double read_sample_rate = 0;
  std::size_t queue_transactions = 100000;
  std::size_t queue_bytes = 64u << 20;
  std::size_t max_transaction_bytes = 16u << 20;
  std::string mismatch_log = "pgshift-mismatches.jsonl";
  bool redact = true;      // literals and parameters left out of the mismatch log
  // Exact mirroring: nondeterministic writes reach the shadow as the
  // primary's rows (README "Shadow database"); false replays them as sent.
  bool exact = true;
  std::chrono::milliseconds status_interval{10000};
  std::chrono::milliseconds apply_timeout{30000};  // a shadow connection without progress this long is dropped
  std::chrono::milliseconds idle_timeout{60000};   // a shared shadow connection no open session uses is closed
  std::vector<ServerLogin> logins;
  CompareRules compare;

  // Logical replication (sync = "logical").
  SyncMode sync = SyncMode::mirror;
  std::vector<std::string> sync_databases{"postgres"};  // replicated, one publication each
  std::vector<std::string> sync_tables;                  // "schema.table"; empty: every table
  std::string sync_user;            // the client user whose logins set it up; empty: "postgres"
  std::string publisher_conninfo;   // how the shadow reaches the primary; empty: [primary] host and port
  std::string subscriber_conninfo;  // how the primary reaches the shadow (reverse); empty: [shadow] host and port
  std::string pg_dump = "pg_dump";  // copies the schema, piped into
  std::string psql = "psql";
  std::chrono::milliseconds read_wait{2000};  // a sampled read waits this long, at most, for the shadow to catch up

  // The login for a client user, or null when there is none.
  const ServerLogin* login_for(const std::string& client_user) const { return find_login(logins, client_user); }
};

// [auth]: who authenticates clients. relay: the server that serves them
// (pgshift passes the exchange on); pgshift: pgshift itself, with the secrets
// of auth_file, and then logs in to the servers as the same user.
enum class AuthMode { relay, pgshift };
// What pgshift asks clients for (mode = "pgshift"). scram_sha_256: SCRAM
// (with -PLUS on TLS), or MD5 for a user whose secret is an MD5 hash; md5:
// MD5 where the secret allows it (MD5 hashes, plaintext passwords), SCRAM
// otherwise; password: the password in clear (TLS advised).
enum class ClientAuthMethod { scram_sha_256, md5, password };
inline constexpr std::string_view kDefaultAuthQuery = "SELECT usename, passwd FROM pg_shadow WHERE usename = $1";
struct Auth {
  AuthMode mode = AuthMode::relay;
  ClientAuthMethod method = ClientAuthMethod::scram_sha_256;
  std::string auth_file;             // resolved path; empty: none
  std::vector<AuthFileEntry> users;  // its entries, read at load
  // For users not in auth_file: auth_query, run on the primary as auth_user
  // with the user name as the bound parameter $1; its answers kept cache_ttl.
  std::string auth_user;  // empty: no auth_query
  std::string auth_password;
  std::string auth_database = "postgres";
  std::string auth_query{kDefaultAuthQuery};
  std::chrono::milliseconds cache_ttl{60000};  // 0: every login asks
  std::size_t cache_entries = 10000;
  // The entry for `user`, or nullptr.
  const AuthFileEntry* find(std::string_view user) const {
    for (const AuthFileEntry& e : users)
      if (e.user == user) return &e;
    return nullptr;
  }
};

// [admin]: the SQL admin console, the database named "pgshift" on pgshift's
// own listen address. pgshift checks this password itself (never relayed).
struct Admin {
  std::string user = "pgshift";
  std::string password;               // or password_env; empty: the console refuses every login
  std::string auth = "scram-sha-256";  // or "md5"
  // The HTTP API, /metrics and the status page; off unless set.
  std::optional<Endpoint> http_listen;
  std::string http_token_env;  // names the variable holding the bearer token
  std::string http_token;      // its value, read at load; empty (unset too): no request may change state
};

// [cutover]: when and how the switch to the other server happens.
enum class Unmovable { wait, close };
enum class Fence { none, read_only };
struct Cutover {
  using TimePoint = std::chrono::system_clock::time_point;
  std::optional<TimePoint> at;        // run CUTOVER at this time ...
  bool when_ready = false;            // ... or as soon as the guardrails hold (from `at` on, if set)
  std::optional<TimePoint> deadline;  // give up the configured cutover after this
  // Guardrails.
  std::chrono::milliseconds max_lag{1000};
  double max_mismatch_rate = 0.001;  // mismatched / compared over the window
  std::chrono::seconds window{60};
  std::uint64_t min_compared = 0;    // comparisons the window must hold
  // Bounds of the switch.
  std::chrono::milliseconds prepare_timeout{10000};
  std::chrono::milliseconds drain_timeout{5000};
  std::chrono::milliseconds catchup_timeout{5000};
  Unmovable unmovable = Unmovable::wait;
  Fence fence_old = Fence::none;
  std::string state_file = "pgshift-state.json";  // relative to the config file's folder
  std::vector<std::string> databases;  // sequences copied besides those of sessions' databases
  // The client user whose [[X.login]] the cutover's own connections use
  // (sequences, fence); empty: a session's user on that database, or "postgres".
  std::string control_user;
  // Guardrail: a clean `VERIFY` (admin console) must have finished within
  // this long; 0: not required.
  std::chrono::seconds require_verify_within{0};
};

// [verify]: `pgshift verify` and the console's VERIFY; flags win over these.
struct Verify {
  unsigned jobs = 2;                      // chunks compared at once, one connection per side each
  std::uint32_t chunk_rows = 10000;       // rows per chunk
  std::uint64_t max_rows_per_second = 0;  // per side, all jobs together; 0: unlimited
  bool live = true;                       // re-check differing rows (writes may be in flight)
  unsigned rechecks = 3;                  // rounds of re-checks
  std::chrono::milliseconds recheck_window{3000};  // how long one round watches the target
  std::string user;      // client user whose [[primary.login]] / [[shadow.login]] is used; empty: control_user or postgres
  std::string database;  // the client's database; empty: the user's name
};

// [rewrite]
struct Rewrite {
  bool strict = false;  // refuse, rather than pass through, what cannot be rewritten safely
  std::size_t cache_entries = 10000;
  std::size_t cache_bytes = 32u << 20;
  std::vector<std::string> writing_functions;  // empty: the built-in list
  // How often each database's catalog is read again (besides after DDL
  // through pgshift and REFRESH CATALOG); 0: never.
  std::chrono::milliseconds catalog_refresh{60000};
};

// Room for two messages of the largest allowed size at once (one per direction,
// or two sessions), whatever max_message_size is.
constexpr std::uint64_t default_max_buffered_bytes(std::uint32_t max_message_size) {
  return 2 * std::uint64_t{max_message_size};
}

struct Config {
  std::string source = "<command line>";  // file name, for messages

  // [proxy]
  Endpoint listen{"127.0.0.1", 6432};
  unsigned threads = 0;  // I/O threads; 0 means one per core
  std::chrono::milliseconds login_timeout{10000};
  std::chrono::milliseconds shutdown_timeout{30000};
  std::uint32_t max_message_size = 1u << 30;  // Query, Parse, Bind, FunctionCall, CopyData
  // Bytes all sessions together may hold to see large messages whole; a
  // session that would pass it is closed with 53200.
  std::uint64_t max_buffered_bytes = default_max_buffered_bytes(1u << 30);
  std::uint32_t buffer_size = 8192;           // per direction, per session
  unsigned max_connections = 10000;

  // [log]
  std::string log_level = "info";  // trace, debug, info, warn, error, critical, off

  ClientTls client_tls;  // [client_tls]
  Upstream primary;      // [primary]
  std::vector<ServerLogin> primary_logins;  // [[primary.login]]

  Shadow shadow;                    // [shadow]
  Rewrite rewrite;                  // [rewrite]
  std::vector<RenameRule> renames;  // [[rename]]
  Admin admin;                      // [admin]
  Auth auth;                        // [auth]
  Cutover cutover;                  // [cutover]
  Verify verify;                    // [verify]

  const Upstream& upstream(Side s) const noexcept { return s == Side::primary ? primary : shadow.server; }
  const std::vector<ServerLogin>& logins(Side s) const noexcept {
    return s == Side::primary ? primary_logins : shadow.logins;
  }
  // The database a client's database maps to on that server ([shadow] database).
  const std::string& database_on(Side s, const std::string& client_database) const noexcept {
    return s == Side::shadow && !shadow.database.empty() ? shadow.database : client_database;
  }
};

// A load or validation failure. `what()` reads "FILE: KEY: REASON".
struct ConfigError {
  std::string file;
  std::string key;  // dotted path, e.g. "primary.port"; empty for syntax errors
  std::string reason;
  std::string what() const;
};

// Parses and validates a TOML file. Unknown keys are errors (a typo must not
// silently fall back to a default). Returns every problem found, not just the first.
std::optional<Config> load_file(const std::string& path, std::vector<ConfigError>& errors);

// Same, from TOML text (`source` names it in messages).
std::optional<Config> load_string(const std::string& text, const std::string& source,
                                  std::vector<ConfigError>& errors);

// Parses "host:port" (host may be "[::1]"); false when malformed.
bool parse_endpoint(const std::string& text, Endpoint& out);

// Checks cross-field rules (files exist, TLS modes have their files, ranges).
void validate(const Config& cfg, std::vector<ConfigError>& errors);

// Every setting as (key, value) text, in file order with dotted keys
// ("proxy.listen", "rename[0]"...); passwords and tokens are shown as "(set)".
std::vector<std::pair<std::string, std::string>> describe(const Config& cfg);

// Whether a reload applies the setting of `key` (as describe() names it)
// while pgshift runs; the others need a restart.
bool reloadable(std::string_view key);

// `running` with every reloadable setting taken from `loaded`.
Config with_reloadable(const Config& running, const Config& loaded);

}  // namespace pgshift::config
