// Statement analysis and rewrite. The first input byte picks the rename rules
// (bits 0-3: which of the four rules of tests/rewrite/corpus are active;
// bit 4: expand phase) and the context (bit 5: resolve with a catalog of the
// renamed schema and a search_path, as a session that reads the catalog
// does; bit 6: with it, decide exact mirroring's capture), the rest is the
// SQL text. With a catalog the analysis must be well formed (a capture
// decision per statement unless the text does not parse, a table for every
// captured one, a reason for every inexact one, a rewritten text that scans). Without one, besides not crashing:
// every statement rewritten under contract rules must come back byte for
// byte when the rewritten text is rewritten with rewrite::invert(rules).
//
// The round trip is checked only when the original text has no identifier
// that already equals a rule's new name (folded as PostgreSQL folds it): such
// a name is left alone going forward (the application may use the new name)
// but is renamed back by the inverse, so `SELECT email, email_address` cannot
// round-trip, by design. Expand-phase rewrites add assignments and are not
// meant to be inverted, so they are not checked either. Unquoted names may
// come back in another letter case: the rewriter writes a new name in lower
// case unless the old one was all upper case (`Email` -> `email_address`),
// and PostgreSQL folds unquoted names anyway, so `Email` -> `email` is the
// same statement; only bytes inside unquoted identifiers may differ, and
// only in case.
#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.hpp"
#include "rewrite/catalog.hpp"
#include "rewrite/pg_query.hpp"
#include "rewrite/rewrite.hpp"

namespace {

using namespace pgshift::rewrite;
using pgshift::fuzz::require_that;

const std::array<RenameRule, 4> kRules = {{
    {"public", "users", "email", "email_address", false},
    {"public", "users", "name", "full_name", false},
    {"public", "orders", "status", "state", false},
    {"billing", "invoices", "amt", "amount", false},
}};

std::vector<RenameRule> rules_for(unsigned mask, bool expand) {
  std::vector<RenameRule> rules;
  for (unsigned i = 0; i < kRules.size(); ++i) {
    if (!(mask & (1u << i))) continue;
    rules.push_back(kRules[i]);
    rules.back().expand = expand;
  }
  return rules;
}

// One forward and one inverse rewriter per rule set, kept across inputs as the
// proxy keeps them, so the cache's literal-variant path is exercised too.
struct Pair {
  std::unique_ptr<Rewriter> forward;
  std::unique_ptr<Rewriter> inverse;
};

Pair& rewriters(unsigned mask, bool expand) {
  static std::array<Pair, 32> pairs;
  Pair& p = pairs[mask | (expand ? 16u : 0u)];
  if (!p.forward) {
    const std::vector<RenameRule> rules = rules_for(mask, expand);
    p.forward = std::make_unique<Rewriter>(Options{.rules = rules, .cache_entries = 256, .cache_bytes = 1u << 20});
    p.inverse = std::make_unique<Rewriter>(Options{.rules = invert(rules), .cache_entries = 256, .cache_bytes = 1u << 20});
  }
  return p;
}

CatalogColumn column(std::string name, std::string type = "text", std::string def = "", bool vol = false) {
  CatalogColumn c;
  c.name = std::move(name);
  c.type = std::move(type);
  c.default_expr = std::move(def);
  c.volatile_default = vol;
  return c;
}

CatalogTable table(std::string schema, std::string name, std::vector<CatalogColumn> columns, bool key = true) {
  CatalogTable t;
  t.schema = std::move(schema);
  t.name = std::move(name);
  t.columns = std::move(columns);
  if (key) t.primary_key = {0};
  return t;
}

// tests/rewrite/schema_new.sql, roughly, with volatile defaults, a table of the
// same name in another schema, one without a key and one with triggers.
const Context& catalog_context(bool capture) {
  static const std::array<Context, 2> contexts = [] {
    std::vector<CatalogTable> t;
    t.push_back(table("public", "users",
                      {column("id", "bigint", "nextval('users_id_seq'::regclass)", true), column("email_address"),
                       column("full_name"), column("org_id", "integer"),
                       column("created_at", "timestamp with time zone", "now()", true)}));
    t.push_back(table("public", "orders",
                      {column("id", "bigint", "nextval('orders_id_seq'::regclass)", true), column("user_id", "bigint"),
                       column("state"), column("email"), column("total", "numeric(10,2)")}));
    t.push_back(table("public", "order_items", {column("id", "bigint"), column("order_id", "bigint"), column("sku")}));
    t.push_back(table("billing", "invoices", {column("id", "integer"), column("order_id", "bigint"), column("amount")}));
    t.push_back(table("other", "users", {column("id", "integer"), column("email"), column("name")}));
    t.push_back(table("public", "events",
                      {column("uid", "uuid", "gen_random_uuid()", true),
                       column("r", "double precision", "random()", true)},
                      false));
    CatalogTable audited =
        table("public", "audited", {column("id", "integer"), column("at", "timestamp with time zone")});
    audited.triggers = true;
    t.push_back(std::move(audited));
    const CatalogPtr catalog = Catalog::make(std::move(t));
    std::array<Context, 2> out;
    for (int i = 0; i < 2; ++i) {
      out[i].catalog = catalog;
      out[i].path = out[i].default_path = {"public", "billing"};
      out[i].user = "app";
      out[i].capture = i == 1;
      out[i].rehash();
    }
    return out;
  }();
  return contexts[capture ? 1 : 0];
}

bool names_a_new_name(const std::string& sql, const std::vector<pg::Token>& tokens,
                      const std::vector<RenameRule>& rules) {
  for (const pg::Token& t : tokens) {
    const std::string id = pg::identifier(t.text(sql));
    for (const RenameRule& r : rules)
      if (id == r.to) return true;
  }
  return false;
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool in_unquoted_identifier(const std::string& sql, const std::vector<pg::Token>& tokens, std::size_t pos) {
  for (const pg::Token& t : tokens)
    if (pos >= t.start && pos < t.end) return t.identifier_like() && sql[t.start] != '"';
  return false;
}

// The round trip gave `back` for `sql`: equal, but for letter case inside unquoted names.
bool same_statement(const std::string& sql, const std::string& back, const std::vector<pg::Token>& tokens) {
  if (back.size() != sql.size()) return false;
  for (std::size_t i = 0; i < sql.size(); ++i) {
    if (back[i] == sql[i]) continue;
    if (lower(back[i]) != lower(sql[i]) || !in_unquoted_identifier(sql, tokens, i)) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const unsigned mask = data[0] & 15u;
  const bool expand = (data[0] & 16u) != 0;
  // SQL reaches the rewriter from Query and Parse messages, as a C string: it
  // never holds a NUL (libpg_query would stop there), so neither does the input.
  std::string sql(reinterpret_cast<const char*>(data) + 1, size - 1);
  sql.resize(std::min(sql.size(), sql.find('\0')));
  Pair& p = rewriters(mask, expand);

  if (data[0] & 32u) {
    const bool capture = (data[0] & 64u) != 0;
    const Analysis& a = p.forward->analyze(sql, &catalog_context(capture));
    for (const StatementInfo& st : a.statements)
      require_that(st.begin <= st.end && st.end <= sql.size(), "statement range inside the text");
    // None at all for a text that does not parse (its consumers treat that as replay).
    require_that(a.captures.empty() || (capture && a.captures.size() == a.statements.size()),
                 "a capture decision per statement, and only when asked");
    for (const Capture& c : a.captures) {
      require_that(c.mode != Capture::Mode::rows || c.table != nullptr, "a captured statement names its table");
      require_that(c.mode != Capture::Mode::inexact || !c.reason.empty(), "an inexact statement says why");
    }
    if (a.changed()) {
      std::vector<pg::Token> tokens;
      require_that(pg::scan(a.rewritten, tokens), "a rewritten text scans");
    }
    return 0;
  }
  const Analysis& a = p.forward->analyze(sql);
  for (const StatementInfo& st : a.statements)
    require_that(st.begin <= st.end && st.end <= sql.size(), "statement range inside the text");
  if (!a.changed() || expand) return 0;
  const std::string rewritten = a.rewritten;  // `a` is invalidated by the next analyze
  std::vector<pg::Token> tokens;
  require_that(pg::scan(sql, tokens), "a rewritten text scans");
  if (names_a_new_name(sql, tokens, rules_for(mask, false))) return 0;
  const Analysis& back = p.inverse->analyze(rewritten);
  require_that(back.changed() && same_statement(sql, back.rewritten, tokens), "rewrite then invert gives the original text");
  return 0;
}
