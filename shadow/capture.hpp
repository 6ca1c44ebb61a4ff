// Exact mirroring of nondeterministic writes: the rows the primary wrote
// (returned by the capture column the rewriter appended, as the text of a
// whole-row value) become a statement the shadow runs instead of the
// client's, with the primary's values as literals. No I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rewrite/rewrite.hpp"

namespace pgshift::shadow {

// A row value as record_out prints it, "(1,\"a b\",,x)", into its fields
// (nullopt for NULL); false when it is not one.
bool parse_record(std::string_view text, std::vector<std::optional<std::string>>& fields);

// The statement that gives the shadow the primary's `rows` (each the text
// of a whole row of `c.table`): an INSERT, an upsert on the primary key or a
// DELETE by primary key, per Capture::Op. Literals are untyped, so they take
// the type of the shadow's column. False, with `error`, when a row does not
// have the catalog's columns (a column added or dropped since it was read).
bool capture_statement(const rewrite::Capture& c, const std::vector<std::string>& rows, std::string& sql,
                       std::string& error);

// A statement with no effect whose command tag counts 0 rows (a capture
// that wrote nothing, or never ran).
std::string_view no_rows_statement() noexcept;

// A statement that fails with `sqlstate`, as the captured one did on the
// primary, so the shadow's transaction goes the same way.
std::string failing_statement(std::string_view sqlstate);

// SQL quoting for generated statements: E'' (with backslashes doubled) when
// the value has a backslash, so it means the same whatever
// standard_conforming_strings says.
std::string sql_literal(std::string_view value);
std::string sql_identifier(std::string_view name);

}  // namespace pgshift::shadow
