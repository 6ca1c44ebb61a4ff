#include "rewrite/pg_query.hpp"

#include <pthread.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>

namespace pgshift::rewrite::pg {
namespace {

// protobuf-c unpacks a parse tree by recursion, about 1.7 KB of stack per
// level of nesting, and libpg_query lets through trees deep enough to
// overflow any thread's stack: `SELECT ++++…1` with 5,000 plus signs crashed
// the whole proxy (found by tests/fuzz, rewrite target). PostgreSQL answers
// it with "stack depth limit exceeded". The unpack allocates at every level,
// so its allocator is where the depth is checked: past a quarter of this
// thread's stack it refuses, the unpack fails cleanly, and the statement is
// treated as one pgshift cannot parse (passed on unchanged, for the server
// to refuse). The rest of the stack is left for the walks over the tree.
std::size_t stack_budget() {
  thread_local const std::size_t budget = [] {
    std::size_t size = 0;
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
      pthread_attr_getstacksize(&attr, &size);
      pthread_attr_destroy(&attr);
    }
    return size ? size / 4 : std::size_t{512} << 10;
  }();
  return budget;
}

struct StackGuard {
  std::uintptr_t base;  // the frame unpacking started from (the stack grows down)
  std::size_t budget;
};

void* guarded_alloc(void* data, std::size_t size) {
  const auto* g = static_cast<const StackGuard*>(data);
  const auto here = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  if (here < g->base && g->base - here > g->budget) return nullptr;
  return std::malloc(size);
}

void guarded_free(void*, void* p) { std::free(p); }

}  // namespace

ParseTree parse(const std::string& sql, std::string& error, bool* too_deep) {
  PgQueryProtobufParseResult r = pg_query_parse_protobuf(sql.c_str());
  ParseTree tree;
  if (r.error) {
    error = r.error->message ? r.error->message : "parse error";
  } else {
    StackGuard guard{reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)), stack_budget()};
    ProtobufCAllocator allocator{guarded_alloc, guarded_free, &guard};
    tree.reset(pg_query__parse_result__unpack(&allocator, r.parse_tree.len,
                                              reinterpret_cast<const uint8_t*>(r.parse_tree.data)));
    if (!tree) {
      error = "could not read the parse tree: it nests too deeply (or memory ran out)";
      if (too_deep) *too_deep = true;
    }
  }
  pg_query_free_protobuf_parse_result(r);
  return tree;
}

bool Token::literal() const noexcept {
  switch (kind) {
    case PG_QUERY__TOKEN__SCONST: case PG_QUERY__TOKEN__USCONST: case PG_QUERY__TOKEN__ICONST:
    case PG_QUERY__TOKEN__FCONST: case PG_QUERY__TOKEN__BCONST: case PG_QUERY__TOKEN__XCONST:
      return true;
    default:
      return false;
  }
}

bool Token::identifier_like() const noexcept { return kind == PG_QUERY__TOKEN__IDENT || keyword; }

bool scan(const std::string& sql, std::vector<Token>& out) {
  out.clear();
  PgQueryScanResult r = pg_query_scan(sql.c_str());
  bool ok = !r.error;
  if (ok) {
    PgQuery__ScanResult* s = pg_query__scan_result__unpack(nullptr, r.pbuf.len,
                                                          reinterpret_cast<const uint8_t*>(r.pbuf.data));
    ok = s != nullptr;
    if (s) {
      out.reserve(s->n_tokens);
      for (std::size_t i = 0; i < s->n_tokens; ++i) {
        const PgQuery__ScanToken* t = s->tokens[i];
        if (t->token == PG_QUERY__TOKEN__SQL_COMMENT || t->token == PG_QUERY__TOKEN__C_COMMENT) continue;
        const bool keyword = t->keyword_kind != PG_QUERY__KEYWORD_KIND__NO_KEYWORD;
        const bool column_name = t->token == PG_QUERY__TOKEN__IDENT ||
                                 t->keyword_kind == PG_QUERY__KEYWORD_KIND__UNRESERVED_KEYWORD ||
                                 t->keyword_kind == PG_QUERY__KEYWORD_KIND__COL_NAME_KEYWORD;
        out.push_back({static_cast<std::uint32_t>(t->start), static_cast<std::uint32_t>(t->end), t->token, keyword,
                       column_name});
      }
      pg_query__scan_result__free_unpacked(s, nullptr);
    }
  }
  pg_query_free_scan_result(r);
  return ok;
}

std::string quoted(std::string_view name) {
  std::string q = "\"";
  for (char c : name) {
    q.push_back(c);
    if (c == '"') q.push_back('"');
  }
  q.push_back('"');
  return q;
}

std::string identifier(std::string_view t) {
  if (t.empty()) return {};
  if (t.front() == '"') {
    if (t.size() < 2 || t.back() != '"') return {};
    std::string out;
    for (std::size_t i = 1; i + 1 < t.size(); ++i) {
      out.push_back(t[i]);
      if (t[i] == '"') ++i;  // "" stands for one quote
    }
    return out;
  }
  std::string out(t);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

int token_at(const std::vector<Token>& tokens, std::uint32_t offset) noexcept {
  auto it = std::lower_bound(tokens.begin(), tokens.end(), offset,
                             [](const Token& t, std::uint32_t o) { return t.start < o; });
  if (it == tokens.end() || it->start != offset) return -1;
  return static_cast<int>(it - tokens.begin());
}

std::size_t nesting_estimate(const std::vector<Token>& tokens, std::string_view sql) noexcept {
  std::size_t depth = 0, run = 0, worst = 0;
  for (const Token& t : tokens) {
    switch (t.kind) {
      case '(': case '[':
        ++depth;
        run = 0;
        break;
      case ')': case ']':
        if (depth) --depth;
        run = 0;
        break;
      case ',': case ';':
        run = 0;
        break;
      case PG_QUERY__TOKEN__IDENT: case PG_QUERY__TOKEN__PARAM:
        break;
      default:
        // Operators, casts and keywords may each add a level (a AND b is
        // flattened by the parser, but counting it keeps this simple and safe).
        if (!t.literal()) ++run;
    }
    worst = std::max(worst, depth + run);
  }
  (void)sql;
  return worst;
}

std::string_view last_name(PgQuery__Node* const* names, std::size_t n) noexcept {
  if (n == 0 || names[n - 1]->node_case != PG_QUERY__NODE__NODE_STRING) return {};
  return str(names[n - 1]->string->sval);
}

}  // namespace pgshift::rewrite::pg
