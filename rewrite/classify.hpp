// Internal: statement classification from a parse tree.
#pragma once

#include <string>
#include <vector>

#include "rewrite/pg_query.hpp"
#include "rewrite/rewrite.hpp"

namespace pgshift::rewrite {

// Classifies one statement. `writing_functions` are lower-case function
// names whose call makes a query a write.
StatementInfo classify(const PgQuery__Node* stmt, const std::vector<std::string>& writing_functions);

}  // namespace pgshift::rewrite
