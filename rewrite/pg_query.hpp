// Internal: owning wrappers around libpg_query's protobuf output, and the
// token list the rewriter edits by. Only rewrite/*.cpp include this.
#pragma once

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pgshift::rewrite::pg {

struct ParseResultDeleter {
  // parse() unpacks with malloc, as protobuf-c's default allocator frees.
  void operator()(PgQuery__ParseResult* r) const noexcept { pg_query__parse_result__free_unpacked(r, nullptr); }
};
using ParseTree = std::unique_ptr<PgQuery__ParseResult, ParseResultDeleter>;

// Parses NUL-terminated SQL; null with `error` set when PostgreSQL's grammar
// rejects it, or with `*too_deep` set too when its tree nests deeper than
// this thread's stack allows to unpack (see pg_query.cpp).
ParseTree parse(const std::string& sql, std::string& error, bool* too_deep = nullptr);

// One token of the statement text, comments left out.
struct Token {
  std::uint32_t start = 0;
  std::uint32_t end = 0;
  int kind = 0;              // PgQuery__Token
  bool keyword = false;      // a keyword (possibly usable as an identifier)
  bool column_name = false;  // usable unquoted as a column name (PostgreSQL's ColId)
  bool literal() const noexcept;
  bool identifier_like() const noexcept;  // IDENT or a keyword
  std::string_view text(std::string_view sql) const noexcept { return sql.substr(start, end - start); }
};

// Scans NUL-terminated SQL into tokens; false when the scanner fails
// (an unterminated quote, say).
bool scan(const std::string& sql, std::vector<Token>& out);

// The identifier a token stands for: unquoted names fold to lower case,
// quoted ones lose their quotes. Empty for anything else.
std::string identifier(std::string_view token_text);

// `name` as a quoted identifier (embedded quotes doubled): always the same name,
// whatever its case or characters.
std::string quoted(std::string_view name);

// Index of the token starting at byte `offset`, or -1.
int token_at(const std::vector<Token>& tokens, std::uint32_t offset) noexcept;

// A conservative bound on how deep the parse tree of these tokens can be:
// parenthesis depth plus the longest run of operators between separators.
std::size_t nesting_estimate(const std::vector<Token>& tokens, std::string_view sql) noexcept;

// The last name of a dotted name list (FuncCall.funcname and similar).
std::string_view last_name(PgQuery__Node* const* names, std::size_t n) noexcept;

inline std::string_view str(const char* s) noexcept { return s ? std::string_view(s) : std::string_view(); }

}  // namespace pgshift::rewrite::pg

namespace pgshift::rewrite::pg {

// Calls f(child) for every sub-message of `m` (the active member of a oneof,
// every element of a repeated field), using protobuf-c's descriptors, so
// every node type is covered without a switch over all of them.
template <class F>
void for_each_child(const ProtobufCMessage* m, F&& f) {
  const ProtobufCMessageDescriptor* d = m->descriptor;
  const char* base = reinterpret_cast<const char*>(m);
  for (unsigned i = 0; i < d->n_fields; ++i) {
    const ProtobufCFieldDescriptor& fd = d->fields[i];
    if (fd.type != PROTOBUF_C_TYPE_MESSAGE) continue;
    if ((fd.flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
        *reinterpret_cast<const uint32_t*>(base + fd.quantifier_offset) != fd.id)
      continue;
    if (fd.label == PROTOBUF_C_LABEL_REPEATED) {
      const std::size_t n = *reinterpret_cast<const std::size_t*>(base + fd.quantifier_offset);
      auto items = *reinterpret_cast<ProtobufCMessage* const* const*>(base + fd.offset);
      for (std::size_t j = 0; j < n; ++j)
        if (items[j]) f(items[j]);
    } else if (auto child = *reinterpret_cast<ProtobufCMessage* const*>(base + fd.offset)) {
      f(child);
    }
  }
}

inline const PgQuery__Node* as_node(const ProtobufCMessage* m) noexcept {
  return m->descriptor == &pg_query__node__descriptor ? reinterpret_cast<const PgQuery__Node*>(m) : nullptr;
}

}  // namespace pgshift::rewrite::pg
