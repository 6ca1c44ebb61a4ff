#include <algorithm>
#include <cstring>
#include <list>
#include <unordered_map>
#include <unordered_set>

#include "rewrite/capture.hpp"
#include "rewrite/classify.hpp"
#include "rewrite/lexer.hpp"
#include "rewrite/pg_query.hpp"
#include "rewrite/resolve.hpp"
#include "rewrite/rewrite.hpp"

namespace pgshift::rewrite {

std::string_view to_string(StatementKind k) noexcept {
  switch (k) {
    case StatementKind::read_only: return "read_only";
    case StatementKind::write: return "write";
    case StatementKind::ddl: return "ddl";
    case StatementKind::transaction: return "transaction";
    case StatementKind::session: return "session";
    case StatementKind::copy_in: return "copy_in";
    case StatementKind::copy_out: return "copy_out";
    case StatementKind::empty: return "empty";
    case StatementKind::unparseable: return "unparseable";
  }
  return "?";
}

std::string_view to_string(TxnControl t) noexcept {
  switch (t) {
    case TxnControl::none: return "none";
    case TxnControl::begin: return "begin";
    case TxnControl::commit: return "commit";
    case TxnControl::rollback: return "rollback";
    case TxnControl::savepoint: return "savepoint";
    case TxnControl::release: return "release";
    case TxnControl::rollback_to: return "rollback_to";
    case TxnControl::prepare: return "prepare";
    case TxnControl::commit_prepared: return "commit_prepared";
    case TxnControl::rollback_prepared: return "rollback_prepared";
  }
  return "?";
}

bool Analysis::has_outputs() const noexcept {
  return std::any_of(outputs.begin(), outputs.end(), [](const auto& o) { return !o.empty(); });
}

void Context::rehash() noexcept {
  if (!catalog && !capture) {
    key_ = 0;
    return;
  }
  std::uint64_t h = 0x9e3779b97f4a7c15ULL;
  auto mix = [&](std::uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  };
  mix(catalog ? catalog->generation() : 0);
  mix(reinterpret_cast<std::uintptr_t>(catalog.get()));
  mix(capture ? 1 : 2);
  mix(path_known ? 3 : 4);
  for (const std::string& p : path) mix(std::hash<std::string>{}(p));
  mix(path.size());
  for (const std::string& p : default_path) mix(std::hash<std::string>{}(p));
  mix(reinterpret_cast<std::uintptr_t>(renamed_elsewhere));
  key_ = h ? h : 1;
}

std::vector<std::string> expand_path(const std::vector<std::string>& names, std::string_view user) {
  std::vector<std::string> out;
  out.reserve(names.size());
  for (const std::string& n : names) out.push_back(n == "$user" ? std::string(user) : n);
  return out;
}

std::vector<RenameRule> invert(const std::vector<RenameRule>& rules) {
  std::vector<RenameRule> out = rules;
  for (RenameRule& r : out) std::swap(r.from, r.to);
  return out;
}

namespace {

// What is shared by every text that differs only in literal values: positions
// are token indices, so they carry over to any such text.
struct Template {
  std::vector<StatementInfo> statements;           // begin/end hold token indices
  std::vector<TokenEdit> edits;                    // empty when warning is set
  std::vector<std::vector<OutputRename>> outputs;
  std::vector<NamedOutputs> named;
  std::vector<Capture> captures;
  std::string warning;
  std::uint64_t fingerprint = 0;
  // The analysis depends on a literal's value (EXPLAIN (ANALYZE 'on')), so it
  // may only be reused for the very same text.
  bool exact_only = false;
};

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// A least-recently-used map bounded in entries and bytes.
template <class Value>
class Lru {
 public:
  struct Entry {
    std::string key;
    Value value;
    std::size_t bytes;
  };

  Lru(std::size_t max_entries, std::size_t max_bytes) : max_entries_(max_entries), max_bytes_(max_bytes) {}

  Value* find(std::string_view key) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second);
    return &it->second->value;
  }

  Value& insert(std::string key, Value value, std::size_t bytes) {
    order_.push_front({std::move(key), std::move(value), bytes + sizeof(Entry) + 64});
    bytes_ += order_.front().bytes;
    index_[order_.front().key] = order_.begin();
    while (order_.size() > 1 && (order_.size() > max_entries_ || bytes_ > max_bytes_)) {
      bytes_ -= order_.back().bytes;
      index_.erase(order_.back().key);
      order_.pop_back();
    }
    return order_.front().value;
  }

  std::size_t size() const noexcept { return order_.size(); }
  std::size_t bytes() const noexcept { return bytes_; }
  // An entry larger than the whole budget is never kept (it would evict
  // everything else and stay, over budget, until the next insert).
  bool fits(std::size_t bytes) const noexcept { return bytes <= max_bytes_ && bytes + sizeof(Entry) + 64 <= max_bytes_; }

 private:
  std::list<Entry> order_;
  std::unordered_map<std::string_view, typename std::list<Entry>::iterator, StringHash, std::equal_to<>> index_;
  std::size_t max_entries_, max_bytes_, bytes_ = 0;
};

// Moves a template's token indices from PostgreSQL's tokens to the cache
// lexer's. False when a position has no exact counterpart; the template is
// then only used for the text it was made from.
bool remap(Template& t, const std::vector<pg::Token>& from, const std::vector<pg::Token>& to) {
  auto at_start = [&](int i) -> int {
    if (i < 0 || static_cast<std::size_t>(i) >= from.size()) return -1;
    const std::uint32_t pos = from[static_cast<std::size_t>(i)].start;
    auto it = std::lower_bound(to.begin(), to.end(), pos, [](const pg::Token& k, std::uint32_t p) { return k.start < p; });
    return it != to.end() && it->start == pos ? static_cast<int>(it - to.begin()) : -1;
  };
  auto after_end = [&](int i_excl) -> int {  // exclusive index whose last token ends where from's does
    if (i_excl <= 0 || static_cast<std::size_t>(i_excl) > from.size()) return -1;
    const std::uint32_t pos = from[static_cast<std::size_t>(i_excl - 1)].end;
    auto it = std::lower_bound(to.begin(), to.end(), pos, [](const pg::Token& k, std::uint32_t p) { return k.end < p; });
    return it != to.end() && it->end == pos ? static_cast<int>(it - to.begin()) + 1 : -1;
  };
  auto same_token = [&](int i) -> int {  // one token in both, same extent
    const int j = at_start(i);
    return j >= 0 && to[static_cast<std::size_t>(j)].end == from[static_cast<std::size_t>(i)].end ? j : -1;
  };
  for (StatementInfo& st : t.statements) {
    if (st.begin >= st.end) continue;
    const int b = at_start(static_cast<int>(st.begin)), e = after_end(static_cast<int>(st.end));
    if (b < 0 || e < 0) return false;
    st.begin = static_cast<std::uint32_t>(b);
    st.end = static_cast<std::uint32_t>(e);
  }
  for (TokenEdit& e : t.edits) {
    if ((e.token = same_token(e.token)) < 0) return false;
    for (auto* list : {&e.prepend, &e.append})
      for (Piece& p : *list) {
        if (p.from < 0) continue;
        p.from = at_start(p.from);
        p.to = after_end(p.to);
        if (p.from < 0 || p.to < 0) return false;
      }
  }
  return true;
}

// First and last token of each statement, from the parser's byte ranges.
std::pair<std::uint32_t, std::uint32_t> token_range(const std::vector<pg::Token>& tokens, std::uint32_t from,
                                                    std::uint32_t to) {
  auto first = std::lower_bound(tokens.begin(), tokens.end(), from,
                                [](const pg::Token& t, std::uint32_t o) { return t.start < o; });
  auto last = std::lower_bound(first, tokens.end(), to, [](const pg::Token& t, std::uint32_t o) { return t.end <= o; });
  return {static_cast<std::uint32_t>(first - tokens.begin()), static_cast<std::uint32_t>(last - tokens.begin())};
}

// Scratch storage above this size is given back after the statement that
// needed it, so one huge statement does not pin its size per thread.
constexpr std::size_t kScratchKeep = 64 * 1024;

template <class Container>
void shrink_scratch(Container& c) {
  if (c.capacity() * sizeof(typename Container::value_type) > kScratchKeep) Container().swap(c);
}

StatementInfo unparseable() {
  StatementInfo s;
  s.kind = StatementKind::unparseable;
  s.writes = true;
  return s;
}

}  // namespace

struct Rewriter::Impl {
  explicit Impl(Options o)
      : options(std::move(o)),
        rules(options.rules),
        exact(std::max<std::size_t>(options.cache_entries / 2, 1), std::max<std::size_t>(options.cache_bytes / 2, 1)),
        normalized(std::max<std::size_t>(options.cache_entries / 2, 1),
                   std::max<std::size_t>(options.cache_bytes / 2, 1)) {}

  Template analyse(const std::string& text, const std::vector<pg::Token>& tokens, std::uint64_t fingerprint,
                   const Context* context);
  static void render(const std::vector<TokenEdit>& edits, std::string_view text, const std::vector<pg::Token>& toks,
                     int from, int to, std::string& out, bool additions);
  // Fills `a` (reusing its storage) for `text`, which has the template's tokens.
  void instantiate(const Template& t, std::string_view text, const std::vector<pg::Token>& tokens, Analysis& a);
  // Caches `a` under `cache_key`, or returns it from `oversize` when it is larger than the cache's budget.
  const Analysis& keep(std::string cache_key, Analysis&& a, std::size_t bytes);
  void shrink_buffers();
  void release_results();

  Options options;
  RuleSet rules;
  Lru<Analysis> exact;
  Lru<Template> normalized;
  std::unordered_set<std::uint64_t> warned;
  // Reused between calls, so the common paths allocate little.
  std::vector<pg::Token> tokens;  // libpg_query's
  std::vector<pg::Token> lexed;   // the cache lexer's
  std::string text_buf;
  std::string key;
  std::string context_key;  // the context's key and the text, for the exact cache
  Analysis scratch;         // the result of a literal-variant hit
  Analysis oversize;        // the result for a statement too large to cache
  Stats stats;
};

const Analysis& Rewriter::Impl::keep(std::string cache_key, Analysis&& a, std::size_t bytes) {
  if (exact.fits(bytes)) {
    Analysis& kept = exact.insert(std::move(cache_key), std::move(a), bytes);
    shrink_buffers();
    return kept;
  }
  oversize = std::move(a);
  shrink_buffers();
  return oversize;
}

void Rewriter::Impl::shrink_buffers() {
  shrink_scratch(text_buf);
  shrink_scratch(key);
  shrink_scratch(context_key);
  shrink_scratch(tokens);
  shrink_scratch(lexed);
}

// The previous call's result, when it holds much memory (its caller is done with it).
void Rewriter::Impl::release_results() {
  if (!oversize.statements.empty()) oversize = Analysis{};
  if (scratch.rewritten.capacity() > kScratchKeep) scratch = Analysis{};
}

Template Rewriter::Impl::analyse(const std::string& text, const std::vector<pg::Token>& toks,
                                 std::uint64_t fingerprint, const Context* context) {
  Template t;
  t.fingerprint = fingerprint;
  if (pg::nesting_estimate(toks, text) > options.max_depth) {
    t.statements.push_back(unparseable());
    t.warning = "statement too deeply nested to analyse";
    return t;
  }
  std::string error;
  bool too_deep = false;
  pg::ParseTree tree = pg::parse(text, error, &too_deep);
  if (!tree) {
    t.statements.push_back(unparseable());
    if (too_deep) t.warning = "statement too deeply nested to analyse";
    return t;
  }
  if (tree->n_stmts == 0) {
    StatementInfo s;
    s.kind = StatementKind::empty;
    s.writes = false;
    t.statements.push_back(s);
    t.outputs.emplace_back();
    return t;
  }
  // The search_path each statement runs with: a SET in the text changes it
  // for the statements after it, as in PostgreSQL.
  const Catalog* catalog = context ? context->catalog.get() : nullptr;
  std::vector<std::string> path;
  bool path_known = context && context->path_known;
  if (context) path = context->path;
  for (std::size_t i = 0; i < tree->n_stmts; ++i) {
    const PgQuery__RawStmt* raw = tree->stmts[i];
    StatementInfo s = raw->stmt ? classify(raw->stmt, options.writing_functions) : unparseable();
    const auto from = static_cast<std::uint32_t>(raw->stmt_location);
    const auto to = raw->stmt_len ? from + static_cast<std::uint32_t>(raw->stmt_len)
                                  : static_cast<std::uint32_t>(text.size());
    std::tie(s.begin, s.end) = token_range(toks, from, to);
    if (raw->stmt && raw->stmt->node_case == PG_QUERY__NODE__NODE_EXPLAIN_STMT &&
        std::any_of(toks.begin() + s.begin, toks.begin() + s.end, [](const pg::Token& k) { return k.literal(); }))
      t.exact_only = true;
    const std::vector<std::string>* statement_path = catalog && path_known ? &path : nullptr;
    Resolution r;
    if (!rules.empty() && raw->stmt)
      resolve(raw->stmt, rules, text, toks, static_cast<int>(s.end), r, path_known ? catalog : nullptr, statement_path);
    if (!r.warning.empty() && t.warning.empty()) t.warning = std::move(r.warning);
    t.edits.insert(t.edits.end(), r.edits.begin(), r.edits.end());
    t.outputs.push_back(std::move(r.outputs));
    t.named.push_back(std::move(r.named));
    if (context && context->capture) {
      Capture c;
      const int last = s.end > s.begin ? static_cast<int>(s.end) - 1 : -1;
      plan_capture(raw->stmt, *context, statement_path, rules, last, c, t.edits);
      if (c.mode != Capture::Mode::replay && !path_known && c.reason.find("search_path") == std::string::npos)
        c.reason += " (and the session's search_path is not known)";
      t.captures.push_back(std::move(c));
    }
    switch (s.path_change) {
      case PathChange::set:
      case PathChange::set_local:
        path = expand_path(s.path, context ? std::string_view(context->user) : std::string_view());
        break;
      case PathChange::reset:
        if (context) path = context->default_path;
        break;
      case PathChange::unknown:
        path_known = false;
        break;
      case PathChange::none:
        break;
    }
    t.statements.push_back(std::move(s));
  }
  if (!t.warning.empty()) {  // never guess: the whole text stays as it is
    t.edits.clear();
    for (auto& o : t.outputs) o.clear();
    for (auto& n : t.named) n.outputs.clear();
    for (Capture& c : t.captures) {
      if (c.mode != Capture::Mode::rows) continue;
      c.mode = Capture::Mode::inexact;
      c.reason += ", in a statement the rewriter leaves unchanged (" + t.warning + ")";
      c.table.reset();
    }
  }
  // A rename and the capture column may edit the same (last) token: one edit.
  std::stable_sort(t.edits.begin(), t.edits.end(),
                   [](const TokenEdit& a, const TokenEdit& b) { return a.token < b.token; });
  for (std::size_t i = 1; i < t.edits.size();) {
    if (t.edits[i].token != t.edits[i - 1].token) {
      ++i;
      continue;
    }
    TokenEdit& keep = t.edits[i - 1];
    TokenEdit& more = t.edits[i];
    if (keep.replacement.empty()) keep.replacement = std::move(more.replacement);
    keep.prepend.insert(keep.prepend.end(), more.prepend.begin(), more.prepend.end());
    keep.append.insert(keep.append.end(), more.append.begin(), more.append.end());
    t.edits.erase(t.edits.begin() + static_cast<std::ptrdiff_t>(i));
  }
  return t;
}

void Rewriter::Impl::instantiate(const Template& t, std::string_view text, const std::vector<pg::Token>& toks,
                                 Analysis& a) {
  a.statements.assign(t.statements.begin(), t.statements.end());
  for (StatementInfo& s : a.statements) {
    if (s.begin < s.end && s.end <= toks.size()) {
      const std::uint32_t first = s.begin, last = s.end - 1;
      s.begin = toks[first].start;
      s.end = toks[last].end;
    } else {
      s.begin = 0;
      s.end = static_cast<std::uint32_t>(text.size());
    }
  }
  a.outputs = t.outputs;
  a.named = t.named;
  a.captures = t.captures;
  a.warning = t.warning;
  a.fingerprint = t.fingerprint;
  a.report_warning = false;
  a.rewritten.clear();
  if (!t.edits.empty()) {
    render(t.edits, text, toks, 0, static_cast<int>(toks.size()), a.rewritten, true);
    a.rewritten.append(text.substr(toks.back().end));
    a.rewritten.insert(0, text.substr(0, toks.front().start));
  }
}

// Writes tokens [from, to) of `text` with the edits inside that range applied
// (copies of a range inside an edit get its renames, not its additions).
void Rewriter::Impl::render(const std::vector<TokenEdit>& edits, std::string_view text,
                            const std::vector<pg::Token>& toks, int from, int to, std::string& out, bool additions) {
  if (from >= to) return;
  std::size_t pos = toks[static_cast<std::size_t>(from)].start;
  auto pieces = [&](const std::vector<Piece>& list) {
    for (const Piece& p : list) {
      if (p.from < 0) out.append(p.text);
      else render(edits, text, toks, p.from, p.to, out, false);
    }
  };
  for (const TokenEdit& e : edits) {
    if (e.token < from || e.token >= to) continue;
    const pg::Token& tok = toks[static_cast<std::size_t>(e.token)];
    out.append(text.substr(pos, tok.start - pos));
    if (additions) pieces(e.prepend);
    out.append(e.replacement.empty() ? tok.text(text) : std::string_view(e.replacement));
    if (additions) pieces(e.append);
    pos = tok.end;
  }
  out.append(text.substr(pos, toks[static_cast<std::size_t>(to - 1)].end - pos));
}

Rewriter::Rewriter(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Rewriter::~Rewriter() = default;

bool Rewriter::has_rules() const noexcept { return !impl_->rules.empty(); }

bool Rewriter::renames(std::string_view schema, std::string_view table) const noexcept {
  return impl_->rules.find(schema, table) != nullptr;
}

// Three paths: a text seen before is a hash lookup; the same statement with
// other literals (simple-protocol applications inline them) costs a pass of
// the cache lexer and is answered from the shared template without joining
// the exact cache, which it would only churn; anything else is scanned and
// parsed by libpg_query, analysed and cached both ways.
const Analysis& Rewriter::analyze(std::string_view sql, const Context* context) {
  Impl& m = *impl_;
  m.release_results();
  // An analysis that depends on the catalog and search_path is cached under
  // the context's key; without a context (or one that changes nothing) the
  // text alone is the key, as it costs nothing.
  if (context && context->key() == 0) context = nullptr;
  std::string_view exact_key = sql;
  char prefix[sizeof(std::uint64_t)] = {};
  if (context) {
    const std::uint64_t k = context->key();
    std::memcpy(prefix, &k, sizeof k);
    m.context_key.assign(prefix, sizeof prefix);
    m.context_key.append(sql);
    exact_key = m.context_key;
  }
  if (Analysis* hit = m.exact.find(exact_key)) {
    ++m.stats.exact_hits;
    hit->report_warning = false;
    return *hit;
  }
  const bool lexed = lex::normalize(sql, m.lexed, m.key);
  const std::uint64_t lexed_fingerprint = lexed ? std::hash<std::string_view>{}(m.key) : 0;
  if (lexed && context) m.key.insert(0, prefix, sizeof prefix);
  if (lexed) {
    if (Template* t = m.normalized.find(m.key)) {
      ++m.stats.normalized_hits;
      m.instantiate(*t, sql, m.lexed, m.scratch);
      m.shrink_buffers();
      return m.scratch;
    }
  }
  ++m.stats.misses;
  m.text_buf.assign(sql);  // libpg_query wants a NUL-terminated string
  std::string cache_key = context ? std::string(prefix, sizeof prefix) + m.text_buf : m.text_buf;
  Analysis fresh;
  if (!pg::scan(m.text_buf, m.tokens)) {
    fresh.statements.push_back(unparseable());
    fresh.outputs.emplace_back();
    fresh.named.emplace_back();
    if (context && context->capture) fresh.captures.emplace_back();
    const std::size_t size = cache_key.size() * 2;
    return m.keep(std::move(cache_key), std::move(fresh), size);
  }
  const std::uint64_t fingerprint = lexed ? lexed_fingerprint : std::hash<std::string_view>{}(sql);
  Template made = m.analyse(m.text_buf, m.tokens, fingerprint, context);
  m.instantiate(made, m.text_buf, m.tokens, fresh);
  if (lexed && !made.exact_only && remap(made, m.tokens, m.lexed)) {
    std::size_t bytes = m.key.size();
    for (const TokenEdit& e : made.edits)
      bytes += e.replacement.size() + sizeof e + (e.prepend.size() + e.append.size()) * sizeof(Piece);
    bytes += made.captures.size() * sizeof(Capture);
    if (m.normalized.fits(bytes)) m.normalized.insert(m.key, std::move(made), bytes);
  }
  if (!fresh.warning.empty() && m.warned.size() < 100000) fresh.report_warning = m.warned.insert(fresh.fingerprint).second;
  const std::size_t size = cache_key.size() * 2 + fresh.rewritten.size();
  return m.keep(std::move(cache_key), std::move(fresh), size);
}

void Rewriter::release_memory() noexcept {
  impl_->release_results();
  impl_->shrink_buffers();
}

Rewriter::Stats Rewriter::stats() const noexcept {
  Stats s = impl_->stats;
  s.entries = impl_->exact.size() + impl_->normalized.size();
  s.bytes = impl_->exact.bytes() + impl_->normalized.bytes();
  return s;
}

}  // namespace pgshift::rewrite
