#include "verify/sql.hpp"

#include <fmt/format.h>

#include "protocol/sql_quote.hpp"

namespace pgshift::verify {

namespace {

using protocol::quote_ident;
using protocol::quote_literal;

constexpr std::uint32_t kBpchar = 1042, kFloat4 = 700, kFloat8 = 701, kNumeric = 1700;

std::string table_name(const TablePlan& t) { return quote_ident(t.schema) + "." + quote_ident(t.name); }

std::string column_name(const TablePlan& t, std::size_t i, Side side) {
  return quote_ident(t.column(i, side).name);
}

// A key column as it is ordered and ranged: the table's own collation, or
// "C" when the two sides collate differently (then both order bytewise).
std::string key_column(const TablePlan& t, std::size_t i, Side side) {
  std::string c = column_name(t, i, side);
  if (t.binary_collation && !t.column(i, side).collation.empty()) c += " COLLATE \"C\"";
  return c;
}

std::string join(const std::vector<std::string>& parts, std::string_view sep = ", ") {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

std::string key_columns(const TablePlan& t, Side side) {
  std::vector<std::string> cols;
  for (std::size_t i : t.key) cols.push_back(key_column(t, i, side));
  return join(cols);
}

std::string key_canon(const TablePlan& t, Side side, const ServerInfo& s) {
  std::vector<std::string> cols;
  for (std::size_t i : t.key) cols.push_back(canonical(t, i, side, s));
  return join(cols);
}

// The key as a row of typed literals, in this side's key column types.
std::string key_literal(const TablePlan& t, Side side, const Key& k) {
  std::vector<std::string> values;
  for (std::size_t n = 0; n < t.key.size() && n < k.size(); ++n)
    values.push_back(quote_literal(k[n]) + "::" + t.column(t.key[n], side).type);
  return t.key.size() == 1 ? values.front() : "(" + join(values) + ")";
}

std::string key_tuple(const TablePlan& t, Side side) {
  const std::string cols = key_columns(t, side);
  return t.key.size() == 1 ? cols : "(" + cols + ")";
}

std::string range(const TablePlan& t, Side side, const std::optional<Key>& lo, const std::optional<Key>& hi) {
  std::vector<std::string> conditions;
  const std::string tuple = key_tuple(t, side);
  if (lo) conditions.push_back(tuple + " > " + key_literal(t, side, *lo));
  if (hi) conditions.push_back(tuple + " <= " + key_literal(t, side, *hi));
  return conditions.empty() ? "" : " WHERE " + join(conditions, " AND ");
}

}  // namespace

std::string session_settings() {
  return "SET search_path = ''; SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; "
         "SET extra_float_digits = 3; SET bytea_output = 'hex'; SET lc_monetary = 'C'; "
         "SET application_name = 'pgshift-verify'; SET default_transaction_read_only = on";
}

std::string catalog_query() {
  return "SELECT n.nspname, c.relname, GREATEST(c.reltuples, 0)::pg_catalog.int8, "
         "CASE WHEN k.indisprimary THEN 'p' WHEN k.indexrelid IS NOT NULL THEN 'i' ELSE '' END, "
         "a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), "
         "CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END, "
         "pg_catalog.array_position(k.indkey::pg_catalog.int2[], a.attnum) "
         "- pg_catalog.array_lower(k.indkey::pg_catalog.int2[], 1) + 1, "
         "(SELECT co.collname FROM pg_catalog.pg_collation co WHERE co.oid = a.attcollation) "
         "FROM pg_catalog.pg_class c "
         "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
         "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
         "JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
         "LEFT JOIN LATERAL (SELECT i.indexrelid, i.indisprimary, i.indkey FROM pg_catalog.pg_index i "
         "WHERE i.indrelid = c.oid AND (i.indisprimary OR (c.relreplident = 'i' AND i.indisreplident)) "
         "ORDER BY i.indisprimary DESC LIMIT 1) k ON true "
         "WHERE c.relkind = 'r' AND c.relpersistence <> 't' "
         "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)' "
         "ORDER BY n.nspname, c.relname, a.attnum";
}

std::string canonical(const TablePlan& t, std::size_t i, Side side, const ServerInfo& s) {
  const Column& c = t.column(i, side);
  const Column& other = t.column(i, side == Side::primary ? Side::target : Side::primary);
  const std::string name = column_name(t, i, side);
  switch (c.type_oid) {
    case kNumeric:
      return s.version >= 130000 ? "pg_catalog.trim_scale(" + name + ")" : name;
    case kFloat4:
    case kFloat8:
      return "(" + name + "::pg_catalog.float8 + 0::pg_catalog.float8)";  // -0 + 0 is 0
    case kBpchar:
      return c.type == other.type ? name : name + "::pg_catalog.text";
    default:
      return name;
  }
}

std::string hash_probe() {
  return "SELECT pg_catalog.sum(pg_catalog.hashtextextended((pg_catalog.repeat('pgshift ', n) || n) COLLATE \"C\", n)) "
         "FROM pg_catalog.generate_series(0, 40) n";
}

std::string row_hash(const TablePlan& t, Side side, const ServerInfo& s) {
  std::vector<std::string> values;
  for (std::size_t i = 0; i < t.columns.size(); ++i) values.push_back(canonical(t, i, side, s));
  if (values.empty()) values.push_back("NULL::pg_catalog.text");
  const std::string text = "ROW(" + join(values) + ")::pg_catalog.text";
  if (s.fast_hash) return "pg_catalog.hashtextextended(" + text + " COLLATE \"C\", 0)";
  return "('x' || pg_catalog.left(pg_catalog.md5(" + text + "), 16))::pg_catalog.bit(64)::pg_catalog.int8";
}

std::string chunk_hash_query(const TablePlan& t, Side side, const ServerInfo& s, const std::optional<Key>& lo,
                             const std::optional<Key>& hi) {
  return "SELECT pg_catalog.count(*), COALESCE(pg_catalog.sum(h), 0) FROM (SELECT " + row_hash(t, side, s) +
         " AS h FROM " + table_name(t) + (t.keyed() ? range(t, side, lo, hi) : "") + ") s";
}

std::string boundary_query(const TablePlan& t, const ServerInfo& s, const std::optional<Key>& lo, std::size_t rows) {
  return fmt::format("SELECT {} FROM {}{} ORDER BY {} OFFSET {} LIMIT 1", key_canon(t, Side::primary, s),
                     table_name(t), range(t, Side::primary, lo, std::nullopt), key_columns(t, Side::primary),
                     rows > 0 ? rows - 1 : 0);
}

std::string row_hashes_query(const TablePlan& t, Side side, const ServerInfo& s, const std::optional<Key>& lo,
                             const std::optional<Key>& hi) {
  return "SELECT " + key_canon(t, side, s) + ", " + row_hash(t, side, s) + " FROM " + table_name(t) +
         range(t, side, lo, hi);
}

std::string rows_query(const TablePlan& t, Side side, const ServerInfo& s, const std::vector<Key>& keys, bool values) {
  std::string sql = "SELECT " + key_canon(t, side, s) + ", " + row_hash(t, side, s);
  if (values)
    for (std::size_t i = 0; i < t.columns.size(); ++i) sql += ", " + column_name(t, i, side);
  std::vector<std::string> literals;
  for (const Key& k : keys) literals.push_back(key_literal(t, side, k));
  if (literals.empty()) literals.push_back(t.key.size() == 1 ? "NULL" : "(" + join(std::vector<std::string>(t.key.size(), "NULL")) + ")");
  std::vector<std::string> cols;
  for (std::size_t i : t.key) cols.push_back(column_name(t, i, side));
  const std::string tuple = t.key.size() == 1 ? cols.front() : "(" + join(cols) + ")";
  return sql + " FROM " + table_name(t) + " WHERE " + tuple + " IN (" + join(literals) + ")";
}

}  // namespace pgshift::verify
