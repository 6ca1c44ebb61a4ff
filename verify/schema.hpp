// `pgshift verify`, the model: what each database has (tables, columns, keys,
// read from its catalog) and how the two line up (tables on one side only,
// column differences, the columns compared and the key that orders the
// chunks). No I/O: the runner in proxy/verify/ feeds it catalog rows.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace pgshift::verify {

// A row of text values as a server returns it (nullopt is NULL).
using Row = std::vector<std::optional<std::string>>;
using Rows = std::vector<Row>;

struct Column {
  std::string name;             // in this database
  std::string type;             // format_type(): "numeric(14,2)", "text[]"
  std::uint32_t type_oid = 0;   // the base type (a domain's underlying type)
  int key_position = 0;         // 1-based position in the table's key; 0: not a key column
  std::string collation;        // of a key column of a collatable type; empty otherwise
};

struct Table {
  std::string schema, name;
  std::int64_t estimated_rows = 0;  // pg_class.reltuples
  char key_kind = 0;                // 'p' primary key, 'i' replica identity index, 0 none
  std::vector<Column> columns;      // in attnum order
  std::string qualified() const { return schema + "." + name; }
};

// The catalog query's rows (see sql.hpp): one row per column. False with
// `error` set when a row does not have the expected shape.
bool tables_from_catalog(const Rows& rows, std::vector<Table>& out, std::string& error);

// What verify compares by: the rename rules ([[rename]]: on the side named by
// renamed_on the column is called `to`, elsewhere `from`) and the columns left
// out ([shadow.compare] ignore_columns: "table.column", "schema.table.column"
// or "column").
struct Rules {
  std::vector<config::RenameRule> renames;
  std::vector<std::string> ignore_columns;
  double numeric_tolerance = 0;
};

enum class Side : std::uint8_t { primary = 0, target = 1 };

// One compared column: its application name and the column on each side.
struct ColumnPair {
  std::string name;  // the application's name (a rule's `from`), used in reports
  Column primary, target;
};

// A table on both sides, and how its rows are compared.
struct TablePlan {
  std::string schema, name;
  std::int64_t estimated_rows = 0;      // the primary's estimate
  std::vector<ColumnPair> columns;      // compared: on both sides, not ignored
  std::vector<std::size_t> key;         // indexes into `columns`, in key order; empty: full-table hash
  std::string key_source;               // "primary key", "replica identity index" (of which side)
  std::vector<std::string> column_issues;  // "column x: only on the primary", "column y: type ...", key notes
  std::vector<std::string> ignored;     // columns left out by ignore_columns
  bool binary_collation = false;        // a text key collates differently on the two sides: order by "C"

  std::string qualified() const { return schema + "." + name; }
  bool keyed() const noexcept { return !key.empty(); }
  const Column& column(std::size_t i, Side s) const {
    return s == Side::primary ? columns[i].primary : columns[i].target;
  }
};

struct SchemaDiff {
  std::vector<std::string> only_on_primary;  // qualified table names
  std::vector<std::string> only_on_target;
  std::vector<TablePlan> tables;             // on both, in name order
};

// Lines both catalogs up. `only` (may be empty: every table) restricts the
// comparison to the named tables ("table" means public.table); a name found
// on neither side is returned in `unknown`.
SchemaDiff diff_schemas(const std::vector<Table>& primary, const std::vector<Table>& target, const Rules& rules,
                        const std::vector<std::string>& only, std::vector<std::string>& unknown);

// "schema.table" for "table" (public) or "schema.table".
std::string qualify(const std::string& name);

}  // namespace pgshift::verify
