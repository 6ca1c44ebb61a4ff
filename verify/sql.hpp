// The statements verify sends. Every hash is computed by the servers, over a
// canonical text of each row, so that the two servers agree on equal rows:
//
//   * the session settings that change how values print are the same on both
//     sides (TimeZone UTC, DateStyle ISO, extra_float_digits 3, bytea hex...);
//   * values whose text differs while the values are equal are cast first:
//     numeric loses trailing zeros (trim_scale, PostgreSQL 13 on), floats lose
//     their negative zero, char(n) compared with another type loses its padding;
//   * a row is ROW(values...)::text (NULL and '' differ), its hash a 64-bit
//     hashtextextended() when both servers hash a probe alike, else the first
//     64 bits of its md5 (the same everywhere); a chunk's hash is the count and
//     the sum of its rows' hashes (no sort needed).
//
// A hash that still differs is only a hint: the rows are then fetched and
// compared value by value with shadow/compare's decoding, which decides.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "verify/schema.hpp"

namespace pgshift::verify {

// A key, as the canonical text of each key column (never NULL in a key).
using Key = std::vector<std::string>;

// Per side: what the server supports.
struct ServerInfo {
  int version = 150000;    // server_version_num
  bool fast_hash = false;  // both servers answered hash_probe() alike: hash rows with hashtextextended
};

// A fixed sum of hashtextextended() over strings of many lengths. Its values
// are not promised to be equal across platforms (byte order) or versions, so
// verify uses it only when both servers give the same answer here, and md5
// otherwise (about 2.5 times the server's time per row, on this project's machine).
std::string hash_probe();

// Statements run once after login on both sides.
std::string session_settings();

// One row per column of every ordinary table outside the system schemas:
// schema, table, estimated rows, key kind ('p', 'i' or ''), column, type,
// base type oid, position in the key (or NULL), collation (or NULL); ordered by
// schema, table, attnum.
std::string catalog_query();

// The canonical expression of compared column `i` on `side`.
std::string canonical(const TablePlan& t, std::size_t i, Side side, const ServerInfo& s);

// The 64-bit hash of a row's canonical text, as a bigint expression.
std::string row_hash(const TablePlan& t, Side side, const ServerInfo& s);

// The chunk (lo, hi] of the key order; a missing bound is open. Without a key,
// the whole table.
std::string chunk_hash_query(const TablePlan& t, Side side, const ServerInfo& s, const std::optional<Key>& lo,
                             const std::optional<Key>& hi);

// The primary's key `rows` rows after `lo` (the end of the next chunk), or no
// row when fewer remain.
std::string boundary_query(const TablePlan& t, const ServerInfo& s, const std::optional<Key>& lo, std::size_t rows);

// The key and the row hash of every row in the chunk.
std::string row_hashes_query(const TablePlan& t, Side side, const ServerInfo& s, const std::optional<Key>& lo,
                             const std::optional<Key>& hi);

// The key, the row hash and (with `values`) every compared column's text, of
// the rows with these keys.
std::string rows_query(const TablePlan& t, Side side, const ServerInfo& s, const std::vector<Key>& keys, bool values);

}  // namespace pgshift::verify
