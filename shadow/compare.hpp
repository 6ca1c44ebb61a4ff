// Comparing one statement's result on the primary with its result on the
// shadow database. Pure logic, no I/O: the proxy's I/O threads and the shadow
// applier both feed backend messages into a ResultCollector and call compare().
//
// Rows are never stored whole: each DataRow is reduced to a 64-bit digest of
// its normalized values as it arrives (values that print differently but are
// equal, such as numeric 1.50 and 1.5, digest the same), and only the first
// `max_kept_rows` rows are kept rendered as text, for the mismatch report.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/frame.hpp"

namespace pgshift::shadow {

// One field of a RowDescription.
struct Column {
  std::string name;
  std::uint32_t table_oid = 0;  // 0 when the column is not a table column
  std::int16_t attnum = 0;
  std::uint32_t type_oid = 0;
  std::int16_t format = 0;  // 0 text, 1 binary
  bool ignored = false;     // set by ResultCollector from CompareRules::ignore_columns
};

// Parses a RowDescription ('T') body; false when it is malformed.
bool parse_row_description(std::string_view body, std::vector<Column>& out);

// Table OID -> table name ("users" or "public.users"), for "table.column"
// rules. Table OIDs differ between databases: each side needs its own lookup.
// Called at most once per column of each RowDescription, and only when a rule
// names a table; an empty result means "unknown".
using TableNames = std::function<std::string(std::uint32_t table_oid)>;

struct CompareRules {
  std::vector<std::string> ignore_columns;        // "table.column" or "column" (output name)
  std::vector<std::uint64_t> ignore_fingerprints;  // statements not compared at all
  double numeric_tolerance = 0;  // absolute; applies to int, numeric, float4 and float8 values
  std::size_t max_kept_rows = 20;  // rows kept rendered per outcome, for reports

  // Whether statements with this fingerprint are left out of comparison.
  bool ignores(std::uint64_t fingerprint) const noexcept;
};

struct Error {
  std::string sqlstate;  // empty when the server sent none
  std::string message;
};

// What one statement did on one server.
struct Outcome {
  std::string tag;        // CommandComplete tag; empty for an empty query, "(suspended)" for a suspended portal
  std::uint64_t rows = 0;  // the tag's row count, or the number of DataRows when it has none
  std::optional<Error> error;
  std::vector<Column> columns;              // from the RowDescription, if one came
  std::vector<std::uint64_t> row_digests;   // one per DataRow, in arrival order
  std::vector<std::string> sample_rows;     // the first rows, rendered: (name=value, ...)
  // With a numeric tolerance, the values of number columns are compared
  // within it rather than digested: `approx_columns` values per row, row-major.
  std::vector<long double> approx_values;
  std::size_t approx_columns = 0;
  bool complete = false;  // CommandComplete, ErrorResponse, EmptyQueryResponse or PortalSuspended seen
};

// Collects one statement's result at a time (reset() or take() between
// statements; buffers are reused). Not thread-safe: one per result stream.
class ResultCollector {
 public:
  enum class Feed {
    more,  // the result goes on
    done,  // the statement's result is complete
    bad,   // a malformed message (or one after the end); the outcome is unreliable
  };

  // `rules` must outlive the collector.
  explicit ResultCollector(const CompareRules& rules, TableNames tables = {});
  ResultCollector(CompareRules&&, TableNames = {}) = delete;  // it keeps a reference

  // Feeds one backend message of the statement's result, in order: 'T', 'D',
  // then 'C', 'E', 'I' or 's'. Messages that carry no result ('n', '1', '2',
  // '3', 't', 'N', 'S', 'A', 'Z') are skipped.
  Feed feed(const protocol::Frame& f);

  // For extended-protocol results whose RowDescription came earlier, from a
  // Describe: sets the columns before the DataRows arrive.
  bool describe(std::string_view row_description_body);

  const Outcome& outcome() const noexcept { return out_; }
  Outcome take();  // moves the outcome out and starts over
  void reset();

 private:
  bool set_columns();
  bool data_row(std::string_view body);
  void complete(std::string_view tag);
  bool column_ignored(const Column& c);

  const CompareRules& rules_;
  TableNames tables_;
  Outcome out_;
  std::vector<std::uint8_t> kinds_;     // per column: how its values are normalized
  std::vector<bool> approx_;            // per column: compared within the tolerance
  std::string scratch_;                 // reused for normalized values
  std::string render_;                  // reused for rendered rows
};

// The result of comparing two outcomes.
struct Comparison {
  bool match = true;
  std::string reason;  // "error", "tag", "columns" or "rows"; empty on a match
  // For "rows": the first differing row of each side ("#N (...)", N counted
  // from 1; "#N (not kept)" past max_kept_rows); absent when that side has no
  // such row. For "columns": each side's column list.
  std::optional<std::string> primary_row, shadow_row;
};

// Compares in this order: error against success (or SQLSTATEs), command tag
// and its row count, columns (names and kinds of the columns not ignored),
// then rows: as a sequence when `ordered` (the statement has ORDER BY), else
// as a multiset.
Comparison compare(const Outcome& primary, const Outcome& shadow, bool ordered, const CompareRules& rules);

// Whether two text-format values of type `type_oid` are equal after
// normalization (the same test rows get, one value at a time). nullopt is NULL.
bool values_equal(std::uint32_t type_oid, std::optional<std::string_view> a, std::optional<std::string_view> b,
                  double tolerance = 0);

// The command of a tag ("INSERT 0 1" -> "INSERT") and its row count, if any.
struct Tag {
  std::string_view command;
  std::optional<std::uint64_t> count;
};
Tag parse_tag(std::string_view tag) noexcept;

}  // namespace pgshift::shadow
