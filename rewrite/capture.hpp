// Internal: which writes give other values when replayed, and how the
// primary's statement is extended so the shadow can get its rows instead
// (Capture in rewrite.hpp; README "Shadow database").
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "rewrite/pg_query.hpp"
#include "rewrite/resolve.hpp"
#include "rewrite/rewrite.hpp"

namespace pgshift::rewrite {

// The table a RangeVar names: schema-qualified in the catalog, else through
// `path` (null when the session's path is not known: then public).
const CatalogTable* lookup_table(const Catalog* catalog, const std::vector<std::string>* path,
                                 const PgQuery__RangeVar* rv);

// Decides the Capture of one statement and, for Mode::rows, the edit that
// appends the capture column to its RETURNING list (after token `last`,
// the statement's last token).
void plan_capture(const PgQuery__Node* stmt, const Context& context, const std::vector<std::string>* path,
                  const RuleSet& rules, int last, Capture& out, std::vector<TokenEdit>& edits);

}  // namespace pgshift::rewrite
