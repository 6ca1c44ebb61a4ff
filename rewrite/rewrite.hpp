// Query understanding for the data path: every statement is classified (what
// mirroring and routing need to know) and, when column-rename rules are
// active, rewritten so an application that still uses the old column names
// works against a schema that has the new ones.
//
// Rewriting edits only identifier tokens that resolve to a renamed column, at
// their source positions; every other byte stays as it was. Output column
// names are restored by mapping RowDescription field names, so the
// application sees the names it asked for.
//
// A Rewriter is not thread-safe: each I/O thread owns one (the cache is per
// thread, so lookups take no lock).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rewrite/catalog.hpp"

namespace pgshift::rewrite {

enum class StatementKind : std::uint8_t {
  read_only,    // SELECT, SHOW, EXPLAIN (without ANALYZE of a write), FETCH, VALUES, TABLE
  write,        // INSERT, UPDATE, DELETE, MERGE, data-modifying CTEs, SELECT FOR UPDATE/SHARE,
                // SELECT INTO, listed writing functions, CALL, DO, LOCK, NOTIFY
  ddl,          // CREATE/ALTER/DROP/GRANT/COMMENT/TRUNCATE/VACUUM/REINDEX/... (writes)
  transaction,  // BEGIN/START, COMMIT/END, ROLLBACK, SAVEPOINT, RELEASE, ROLLBACK TO, 2PC
  session,      // SET, RESET, DISCARD, PREPARE, EXECUTE, DEALLOCATE, LISTEN, UNLISTEN,
                // temporary tables, advisory locks
  copy_in,      // COPY ... FROM (writes)
  copy_out,     // COPY ... TO
  empty,        // nothing but whitespace and comments
  unparseable,  // not valid SQL for PostgreSQL 15, or too deeply nested to analyse (writes)
};

enum class TxnControl : std::uint8_t {
  none, begin, commit, rollback, savepoint, release, rollback_to,
  prepare, commit_prepared, rollback_prepared,
};

// What a SET/RESET does to the session's run-time parameters. Only those that
// RESET ALL undoes count (not SET ROLE or SESSION AUTHORIZATION, not SET LOCAL).
enum class Setting : std::uint8_t { none, set, reset, reset_all };

// What a statement does to search_path, which decides the table an
// unqualified name means.
enum class PathChange : std::uint8_t {
  none,
  set,        // SET [SESSION] search_path: `path` holds the new value
  set_local,  // SET LOCAL search_path, until the transaction ends
  reset,      // RESET search_path, SET search_path TO DEFAULT, RESET ALL, DISCARD ALL
  unknown,    // set_config(), SET ... FROM CURRENT: the value is not known here
};

struct StatementInfo {
  StatementKind kind = StatementKind::unparseable;
  TxnControl txn = TxnControl::none;
  bool writes = true;          // may change data; true whenever unsure
  bool session_state = false;  // changes what later statements mean (SET, PREPARE, temp table...)
  bool lock = false;           // an advisory lock taken or released by a function call
  bool ordered = false;        // a query whose rows come in a defined order (ORDER BY)
  Setting setting = Setting::none;
  std::string setting_name;    // the parameter SET or RESET ("timezone", "search_path"...)
  PathChange path_change = PathChange::none;
  std::vector<std::string> path;  // PathChange::set/set_local: the schema names, as PostgreSQL keeps them
  std::uint32_t begin = 0;     // byte range of the statement in the text
  std::uint32_t end = 0;
};

std::string_view to_string(StatementKind k) noexcept;
std::string_view to_string(TxnControl t) noexcept;

// One rename rule as the rewriter sees it: on `schema.table`, the application
// says `from` and the database has `to`.
struct RenameRule {
  std::string schema = "public";
  std::string table;
  std::string from;
  std::string to;
  // Expand phase: both columns exist. Statements keep the old name, and
  // writes that set it also set the new one to the same value.
  bool expand = false;
};

// A RowDescription field name to restore: the server says `from` (the new
// name), the application asked for `to`. `index` is the field's position when
// it is known, or -1 when it came from a `*` (then the name alone decides).
struct OutputRename {
  int index = -1;
  std::string from;
  std::string to;
};

// SQL-level prepared statements and cursors: which one a statement defines
// (with the output renames of its query) or uses, so the caller can restore
// names in the rows of EXECUTE and FETCH too.
struct NamedOutputs {
  enum class Op : std::uint8_t { none, prepare, declare, execute, fetch, deallocate, close };
  Op op = Op::none;
  std::string name;                   // empty with deallocate/close: ALL
  std::vector<OutputRename> outputs;  // prepare/declare: its query's renames
};

// How the shadow gets a write so that it ends up exactly as the primary
// ([shadow] exact; see README "Shadow database").
struct Capture {
  enum class Mode : std::uint8_t {
    replay,   // deterministic: the shadow runs the statement itself
    rows,     // the primary's statement returns the rows it wrote (after a marker column);
              // the shadow gets them as explicit values
    inexact,  // the shadow runs the statement, which may give other values there (`reason`)
  };
  enum class Op : std::uint8_t {
    insert,  // INSERT INTO t (cols) VALUES ...
    upsert,  // ... ON CONFLICT (primary key) DO UPDATE SET every other column
    remove,  // DELETE FROM t WHERE (primary key) IN (...)
  };
  Mode mode = Mode::replay;
  Op op = Op::insert;
  bool client_returning = false;  // rows: the client's own RETURNING comes before the marker
  // replay: the statement may return other rows on the shadow (SELECT
  // nextval(...)), so only its command tag is compared.
  bool nondeterministic = false;
  std::shared_ptr<const CatalogTable> table;  // rows: the table written, as the catalog had it
  std::string reason;                         // inexact: why
};

// The name of the column a captured statement's rows end with; everything
// from it on is pgshift's, never the client's.
inline constexpr std::string_view capture_marker = "pgshift$capture";

// What a statement's meaning depends on beyond its text: the catalog of the
// database and the session's search_path. A Rewriter given no context (or
// one without a catalog) resolves as without a catalog: unqualified tables
// are public, columns of tables are unknown.
struct Context {
  CatalogPtr catalog;                    // null: no catalog for this server
  std::vector<std::string> path;         // the effective search_path, schema names
  std::vector<std::string> default_path; // what RESET brings back
  std::string user;                      // what "$user" stands for
  bool path_known = true;                // false after what could not be followed (set_config...)
  bool capture = false;                  // decide Capture for writes (exact mirroring)
  // Other tables with rename rules (on the other server): never captured.
  const std::vector<std::pair<std::string, std::string>>* renamed_elsewhere = nullptr;

  // Call after changing any of the above: the analysis cache keys on it.
  void rehash() noexcept;
  std::uint64_t key() const noexcept { return key_; }

 private:
  std::uint64_t key_ = 0;  // 0: no context
};

// search_path as a session would set it (names with "$user"), for `user`.
std::vector<std::string> expand_path(const std::vector<std::string>& names, std::string_view user);

struct Analysis {
  std::vector<StatementInfo> statements;
  // The rewritten text, or empty when nothing changed.
  std::string rewritten;
  // Per statement (same order), the RowDescription renames it needs.
  std::vector<std::vector<OutputRename>> outputs;
  // Per statement (same order, filled only when rename rules are active).
  std::vector<NamedOutputs> named;
  // Per statement (same order), filled only when the context asks for capture.
  std::vector<Capture> captures;
  // Why the statement is left unchanged although it may name a renamed
  // column (ambiguous name, USING/NATURAL join over one, dynamic SQL...).
  std::string warning;
  std::uint64_t fingerprint = 0;  // of the normalized text (literals removed)
  // True the first time this Rewriter returns `warning` for this fingerprint,
  // so callers log it once, not on every execution.
  bool report_warning = false;

  bool changed() const noexcept { return !rewritten.empty(); }
  bool has_outputs() const noexcept;
};

struct Options {
  std::vector<RenameRule> rules;
  // Functions whose call makes a SELECT a write (lower case, unqualified).
  std::vector<std::string> writing_functions = {"nextval", "setval", "lo_create", "lo_unlink",
                                                "lo_import", "lo_from_bytea", "lo_put",
                                                "pg_notify", "dblink_exec", "txid_current"};
  std::size_t cache_entries = 10000;
  std::size_t cache_bytes = 32u << 20;
  // Statements longer than this get a token-based nesting check before the
  // recursive parser sees them.
  std::size_t max_depth = 10000;
};

class Rewriter {
 public:
  explicit Rewriter(Options options);
  ~Rewriter();
  Rewriter(const Rewriter&) = delete;
  Rewriter& operator=(const Rewriter&) = delete;

  // Classifies and, if rules apply, rewrites `sql` (one or more statements),
  // in `context` (the catalog and search_path: see Context). The result
  // stays valid until the next call. An analysis larger than the cache's
  // byte budget is not cached.
  const Analysis& analyze(std::string_view sql, const Context* context = nullptr);

  bool has_rules() const noexcept;
  // Whether a rule names schema.table.
  bool renames(std::string_view schema, std::string_view table) const noexcept;

  // Gives back the memory a statement larger than the cache's budget needed
  // (its result, scratch buffers), which the next analyze() would otherwise
  // hold on to. Invalidates the last result.
  void release_memory() noexcept;

  struct Stats {
    std::uint64_t exact_hits = 0;       // same text seen before: a hash lookup
    std::uint64_t normalized_hits = 0;  // same statement with other literals: a scan
    std::uint64_t misses = 0;           // parsed and analysed
    std::size_t entries = 0;
    std::size_t bytes = 0;
  };
  Stats stats() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The inverse rule set (to -> from), for the round-trip property and for
// rewriting toward the database that still has the old names.
std::vector<RenameRule> invert(const std::vector<RenameRule>& rules);

}  // namespace pgshift::rewrite
