// Internal: a small SQL lexer for the cache key of statements that differ
// only in literal values. It never merges what PostgreSQL's scanner keeps
// apart (operators are split into single characters, for instance), so every
// PostgreSQL token boundary is one of its boundaries too; and it records how
// tokens touch, since PostgreSQL reads `a @- b` and `a @ - b` differently and
// joins string literals separated by a newline.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "rewrite/pg_query.hpp"

namespace pgshift::rewrite::lex {

// Splits `sql` into tokens (comments dropped) and builds the normalized key:
// token texts, literals replaced by a marker, with how each token touches
// the previous one. False when the text does not lex (an unterminated quote
// or comment); PostgreSQL's own scanner then decides.
bool normalize(std::string_view sql, std::vector<pg::Token>& tokens, std::string& key);

}  // namespace pgshift::rewrite::lex
