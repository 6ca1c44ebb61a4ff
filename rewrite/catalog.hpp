// What pgshift knows about one database's schema: tables (and views) with
// their columns, defaults, identity and generated columns, primary keys and
// triggers; sequences and the columns that own them; user functions that are
// volatile; and the role and database defaults of search_path.
//
// A Catalog is an immutable snapshot, shared by pointer between the threads
// that read it; a newer load is a new snapshot with a larger generation.
// Built from the kind-tagged text rows of proxy/catalog_loader.cpp's query
// (catalog_query() below), so this file does no I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgshift::rewrite {

struct CatalogColumn {
  std::string name;
  std::string type;          // format_type(), schema-qualified outside pg_catalog
  std::string default_expr;  // pg_get_expr() of the default; empty when there is none
  // The default gives another value when evaluated again, on another server
  // or later: now(), nextval(), random(), gen_random_uuid()... or a call to
  // a volatile user function.
  bool volatile_default = false;
  char identity = 0;       // 'a' GENERATED ALWAYS AS IDENTITY, 'd' BY DEFAULT, 0 none
  bool generated = false;  // GENERATED ALWAYS AS (...) STORED
  // The sequence this column owns (identity or serial), schema and name;
  // empty when none.
  std::string sequence_schema, sequence;

  // A row that takes this column's default gets a value of its own.
  bool new_value_when_defaulted() const noexcept { return volatile_default || identity != 0; }
};

struct CatalogTable {
  std::string schema, name;
  char kind = 'r';              // r table, p partitioned table, v view, m materialized view, f foreign table
  char replica_identity = 'd';  // d default (primary key), n nothing, f full, i index
  bool triggers = false;        // user triggers (internal ones, foreign-key checks, left out)
  std::vector<CatalogColumn> columns;    // in attnum order, dropped columns left out
  std::vector<std::size_t> primary_key;  // indexes into columns, in key order

  // Index of a column by name, or -1.
  int column(std::string_view name) const noexcept;
  bool writable() const noexcept { return kind == 'r' || kind == 'p'; }
};

struct CatalogSequence {
  std::string schema, name;
  std::string owner_schema, owner_table, owner_column;  // empty when no column owns it
};

class Catalog {
 public:
  using Rows = std::vector<std::vector<std::optional<std::string>>>;

  // A snapshot from the rows of catalog_query(). Rows of unknown kinds are
  // ignored, so a newer query works with an older model.
  static std::shared_ptr<const Catalog> build(const Rows& rows, std::uint64_t generation);

  // A snapshot from parts (tests).
  static std::shared_ptr<const Catalog> make(std::vector<CatalogTable> tables, std::uint64_t generation = 1);

  const CatalogTable* find(std::string_view schema, std::string_view name) const noexcept;
  // The table an unqualified name means under `path`: the first schema of the
  // path that has it. pg_catalog's own tables are not in the catalog; names
  // in pg_temp (temporary tables) are not known either.
  const CatalogTable* resolve(std::string_view name, const std::vector<std::string>& path) const noexcept;
  // The same table, kept alive by this snapshot.
  std::shared_ptr<const CatalogTable> share(const CatalogTable* t, const std::shared_ptr<const Catalog>& self) const;

  // A user-defined function (outside pg_catalog) declared VOLATILE, by name.
  bool volatile_function(std::string_view name) const;

  // search_path for `role` when the session sets nothing: ALTER ROLE ... IN
  // DATABASE, then ALTER ROLE, then ALTER DATABASE, then the server's own.
  std::string default_search_path(std::string_view role) const;

  std::uint64_t generation() const noexcept { return generation_; }
  std::chrono::steady_clock::time_point loaded_at() const noexcept { return loaded_at_; }
  std::size_t table_count() const noexcept { return tables_.size(); }
  std::size_t sequence_count() const noexcept { return sequences_.size(); }
  std::size_t column_count() const noexcept { return columns_; }
  const std::vector<CatalogSequence>& sequences() const noexcept { return sequences_; }
  std::vector<const CatalogTable*> tables() const;

 private:
  struct RoleSetting {
    std::string role;       // empty: every role
    bool this_database = false;  // else every database
    std::string value;
  };
  std::map<std::string, CatalogTable, std::less<>> tables_;  // "schema\0name"
  std::vector<CatalogSequence> sequences_;
  std::vector<std::string> volatile_functions_;  // sorted
  std::vector<RoleSetting> path_settings_;
  std::string server_path_ = "\"$user\", public";
  std::uint64_t generation_ = 0;
  std::size_t columns_ = 0;
  std::chrono::steady_clock::time_point loaded_at_ = std::chrono::steady_clock::now();
};

using CatalogPtr = std::shared_ptr<const Catalog>;

// The one query the loader runs per database. Every row has the same nine
// text columns, the first naming its kind (t table, c column, k primary-key
// column, g a table with triggers, s sequence, f volatile user function,
// p a search_path setting, d the server's search_path).
std::string_view catalog_query() noexcept;

// search_path as PostgreSQL stores it ("\"$user\", public") as schema names:
// split at commas, unquoted names folded to lower case, quotes removed.
std::vector<std::string> parse_search_path(std::string_view text);

// Whether an expression (a column default, as pg_get_expr() prints it) gives
// a new value each time: the same test statements get (rewrite/capture.cpp).
bool volatile_expression(std::string_view expression, const Catalog* catalog);

}  // namespace pgshift::rewrite
