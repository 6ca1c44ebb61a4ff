// Internal: finds the identifiers that refer to renamed columns, resolving
// names the way PostgreSQL does (FROM items per query level, aliases, CTEs,
// subqueries, correlated references), and the output names to restore.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "rewrite/pg_query.hpp"
#include "rewrite/rewrite.hpp"

namespace pgshift::rewrite {

struct Renamed {
  std::string from;  // what the application says
  std::string to;    // what the database has
  bool expand = false;  // both exist: reads keep `from`, writes also set `to`
};

// Rename rules by table, with the spelling of each new name for unquoted use.
class RuleSet {
 public:
  explicit RuleSet(const std::vector<RenameRule>& rules);
  bool empty() const noexcept { return tables_.empty(); }
  const std::vector<Renamed>* find(std::string_view schema, std::string_view table) const;

 private:
  std::map<std::string, std::vector<Renamed>, std::less<>> tables_;  // "schema.table"
};

// Text added around a token: literal text, or a copy of the statement's own
// tokens [from, to) as written (with their renames applied), so an edit stays
// valid for every text that differs only in literal values.
struct Piece {
  std::string text;
  int from = -1;
  int to = -1;
};

struct TokenEdit {
  int token = 0;                // index into the token list (comments excluded)
  std::string replacement;      // the new spelling; empty keeps the token
  std::vector<Piece> prepend;   // written before the token
  std::vector<Piece> append;    // written after it
};

struct Resolution {
  std::vector<TokenEdit> edits;
  std::vector<OutputRename> outputs;
  NamedOutputs named;
  std::string warning;  // set when the statement must not be rewritten
};

// `end` is the index of the first token after the statement. With a
// `catalog`, tables resolve through `path` (null: not known, then public)
// and their columns are known; without one, as described in README "Column
// renames".
void resolve(const PgQuery__Node* stmt, const RuleSet& rules, std::string_view sql,
             const std::vector<pg::Token>& tokens, int end, Resolution& out, const Catalog* catalog = nullptr,
             const std::vector<std::string>* path = nullptr);

}  // namespace pgshift::rewrite
