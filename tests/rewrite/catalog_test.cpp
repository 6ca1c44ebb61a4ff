// The catalog's part in rewriting: each resolution rule it changes (a case
// that without the catalog is left alone, or resolved as public, and with it
// is rewritten as PostgreSQL resolves it), the search_path a session has,
// the capture decisions of exact mirroring, and the catalog snapshot itself.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "rewrite/catalog.hpp"
#include "rewrite/rewrite.hpp"

namespace {

using namespace pgshift::rewrite;

CatalogColumn col(std::string name, std::string type = "text", std::string def = "", bool vol = false,
                  char identity = 0) {
  CatalogColumn c;
  c.name = std::move(name);
  c.type = std::move(type);
  c.default_expr = std::move(def);
  c.volatile_default = vol;
  c.identity = identity;
  return c;
}

CatalogTable table(std::string schema, std::string name, std::vector<CatalogColumn> cols,
                   std::vector<std::size_t> pk = {0}) {
  CatalogTable t;
  t.schema = std::move(schema);
  t.name = std::move(name);
  t.columns = std::move(cols);
  t.primary_key = std::move(pk);
  return t;
}

// schema_new.sql, plus an `email` of orders' own, a table users in schema
// `other` (not renamed), and a few tables for capture decisions.
CatalogPtr new_schema(std::uint64_t generation = 1) {
  std::vector<CatalogTable> t;
  t.push_back(table("public", "orgs", {col("id", "integer", "nextval('public.orgs_id_seq'::regclass)", true), col("name"),
                                       col("plan")}));
  t.push_back(table("public", "users",
                    {col("id", "bigint", "nextval('public.users_id_seq'::regclass)", true), col("email_address"),
                     col("full_name"), col("org_id", "integer"),
                     col("created_at", "timestamp with time zone", "now()", true),
                     col("active", "boolean", "true")}));
  t.push_back(table("public", "orders",
                    {col("id", "bigint", "nextval('public.orders_id_seq'::regclass)", true), col("user_id", "bigint"),
                     col("total", "numeric(10,2)"), col("state"), col("email"),
                     col("created_at", "timestamp with time zone", "now()", true)}));
  t.push_back(table("public", "order_items", {col("id", "bigint"), col("order_id", "bigint"), col("sku")}));
  t.push_back(table("billing", "invoices", {col("id", "integer"), col("order_id", "bigint"), col("amount"), col("note")}));
  t.push_back(table("other", "users", {col("id", "integer"), col("email"), col("name")}));
  t.push_back(table("public", "events",
                    {col("id", "bigint", "", false, 'a'), col("uid", "uuid", "gen_random_uuid()", true),
                     col("kind"), col("r", "double precision", "random()", true)}));
  t.push_back(table("public", "plain", {col("a", "integer"), col("b")}, {}));
  CatalogTable audited = table("public", "audited", {col("id", "integer"), col("at", "timestamp with time zone")});
  audited.triggers = true;
  t.push_back(std::move(audited));
  return Catalog::make(std::move(t), generation);
}

Options rules() {
  Options o;
  o.rules = {
      {"public", "users", "email", "email_address"},
      {"public", "users", "name", "full_name"},
      {"public", "orders", "status", "state"},
      {"billing", "invoices", "amt", "amount"},
  };
  return o;
}

Context context(CatalogPtr catalog, std::vector<std::string> path = {"public"}, bool capture = false) {
  Context c;
  c.catalog = std::move(catalog);
  c.path = path;
  c.default_path = std::move(path);
  c.user = "app";
  c.capture = capture;
  c.rehash();
  return c;
}

struct Result {
  std::string text;  // rewritten, or the original when unchanged
  std::string warning;
};

Result run(Rewriter& r, const std::string& sql, const Context* ctx) {
  const Analysis& a = r.analyze(sql, ctx);
  return {a.changed() ? a.rewritten : sql, a.warning};
}

// ---- resolution rules the catalog changes ----------------------------------------

TEST(CatalogResolution, UnqualifiedColumnBindsToTheSubqueryTableThatHasIt) {
  Rewriter r(rules());
  const std::string sql = "SELECT email FROM users WHERE email IN (SELECT email FROM orders)";
  EXPECT_FALSE(run(r, sql, nullptr).warning.empty()) << "without a catalog, orders might have email: left alone";
  const Context ctx = context(new_schema());
  const Result got = run(r, sql, &ctx);
  EXPECT_EQ(got.warning, "");
  EXPECT_EQ(got.text, "SELECT email_address FROM users WHERE email_address IN (SELECT email FROM orders)");
}

TEST(CatalogResolution, UnqualifiedColumnTheSubqueryTableLacksBindsOutward) {
  Rewriter r(rules());
  const std::string sql = "SELECT id FROM users WHERE EXISTS (SELECT 1 FROM order_items WHERE email = 'x')";
  EXPECT_FALSE(run(r, sql, nullptr).warning.empty());
  const Context ctx = context(new_schema());
  const Result got = run(r, sql, &ctx);
  EXPECT_EQ(got.warning, "");
  EXPECT_EQ(got.text, "SELECT id FROM users WHERE EXISTS (SELECT 1 FROM order_items WHERE email_address = 'x')");
  // orgs has a name of its own: the inner name is orgs.name, not users.name.
  const std::string own = "SELECT id FROM users WHERE EXISTS (SELECT 1 FROM orgs WHERE name = 'x')";
  const Result inner = run(r, own, &ctx);
  EXPECT_EQ(inner.warning, "");
  EXPECT_EQ(inner.text, own);
}

TEST(CatalogResolution, UnqualifiedTableResolvesThroughSearchPath) {
  Rewriter r(rules());
  const std::string sql = "SELECT email FROM users";
  const Context other = context(new_schema(), {"other", "public"});
  EXPECT_EQ(run(r, sql, &other).text, sql) << "other.users is not renamed";
  EXPECT_EQ(run(r, sql, &other).warning, "");
  const Context pub = context(new_schema(), {"public", "other"});
  EXPECT_EQ(run(r, sql, &pub).text, "SELECT email_address FROM users");
  // A schema that does not exist is skipped, as PostgreSQL does.
  const Context missing = context(new_schema(), {"nosuch", "public"});
  EXPECT_EQ(run(r, sql, &missing).text, "SELECT email_address FROM users");
  // Qualified names do not depend on the path.
  EXPECT_EQ(run(r, "SELECT email FROM public.users", &other).text, "SELECT email_address FROM public.users");
}

TEST(CatalogResolution, DollarUserInSearchPath) {
  Rewriter r(rules());
  Context ctx = context(new_schema());
  ctx.path = expand_path({"$user", "public"}, "other");
  ctx.rehash();
  EXPECT_EQ(run(r, "SELECT email FROM users", &ctx).text, "SELECT email FROM users");
  ctx.path = expand_path({"$user", "public"}, "app");  // no schema app: public
  ctx.rehash();
  EXPECT_EQ(run(r, "SELECT email FROM users", &ctx).text, "SELECT email_address FROM users");
}

TEST(CatalogResolution, SetSearchPathInTheSameTextAppliesToLaterStatements) {
  Rewriter r(rules());
  const Context ctx = context(new_schema());
  EXPECT_EQ(run(r, "SET search_path = other, public; SELECT email FROM users", &ctx).text,
            "SET search_path = other, public; SELECT email FROM users");
  EXPECT_EQ(run(r, "SELECT email FROM users; SET search_path TO other; SELECT email FROM users", &ctx).text,
            "SELECT email_address FROM users; SET search_path TO other; SELECT email FROM users");
  Context other = context(new_schema(), {"other"});
  other.default_path = {"public"};
  other.rehash();
  EXPECT_EQ(run(r, "RESET search_path; SELECT email FROM users", &other).text,
            "RESET search_path; SELECT email_address FROM users");
}

TEST(CatalogResolution, UnknownSearchPathFallsBackToPublic) {
  Rewriter r(rules());
  Context ctx = context(new_schema(), {"other"});
  ctx.path_known = false;
  ctx.rehash();
  // Without a known path the catalog is not used: the old behaviour.
  EXPECT_EQ(run(r, "SELECT email FROM users", &ctx).text, "SELECT email_address FROM users");
}

TEST(CatalogResolution, ColumnAliasListMapsColumnsByPosition) {
  Rewriter r(rules());
  const std::string sql = "SELECT x.e, x.name FROM users AS x(i, e)";
  EXPECT_FALSE(run(r, sql, nullptr).warning.empty());
  const Context ctx = context(new_schema());
  const Result got = run(r, sql, &ctx);
  EXPECT_EQ(got.warning, "");
  // e is email_address under an alias; name is full_name, past the aliases.
  EXPECT_EQ(got.text, "SELECT x.e, x.full_name FROM users AS x(i, e)");
}

TEST(CatalogResolution, OutputNamesRestoredWithCatalog) {
  Rewriter r(rules());
  const Context ctx = context(new_schema());
  const Analysis& a = r.analyze("SELECT email FROM users WHERE email IN (SELECT email FROM orders)", &ctx);
  ASSERT_EQ(a.outputs.size(), 1u);
  ASSERT_EQ(a.outputs[0].size(), 1u);
  EXPECT_EQ(a.outputs[0][0].from, "email_address");
  EXPECT_EQ(a.outputs[0][0].to, "email");
}

TEST(CatalogResolution, WhatStaysAmbiguousWithTheCatalogStillWarns) {
  Rewriter r(rules());
  const Context ctx = context(new_schema());
  EXPECT_FALSE(run(r, "SELECT email FROM users a, users b", &ctx).warning.empty());
  EXPECT_FALSE(run(r, "SELECT * FROM users JOIN orders USING (email)", &ctx).warning.empty());
}

TEST(CatalogResolution, CacheKeysOnTheContext) {
  Rewriter r(rules());
  const Context pub = context(new_schema(), {"public"});
  const Context other = context(new_schema(), {"other", "public"});
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(run(r, "SELECT email FROM users WHERE id = 1", &pub).text, "SELECT email_address FROM users WHERE id = 1");
    EXPECT_EQ(run(r, "SELECT email FROM users WHERE id = 2", &other).text, "SELECT email FROM users WHERE id = 2");
    EXPECT_EQ(run(r, "SELECT email FROM users WHERE id = 3", nullptr).text, "SELECT email_address FROM users WHERE id = 3");
  }
  // A new catalog generation is a new context.
  const Context newer = context(new_schema(2), {"other", "public"});
  EXPECT_NE(newer.key(), other.key());
}

// ---- capture decisions ---------------------------------------------------------------

const Capture& capture_of(Rewriter& r, const std::string& sql, const Context& ctx, std::size_t i = 0) {
  const Analysis& a = r.analyze(sql, &ctx);
  static const Capture none;
  return i < a.captures.size() ? a.captures[i] : none;
}

TEST(CatalogCapture, InsertTakingVolatileDefaultsReturnsItsRows) {
  Rewriter r(Options{});
  const Context ctx = context(new_schema(), {"public"}, true);
  const Analysis& a = r.analyze("INSERT INTO events (kind) VALUES ('a'), ('b')", &ctx);
  ASSERT_EQ(a.captures.size(), 1u);
  EXPECT_EQ(a.captures[0].mode, Capture::Mode::rows);
  EXPECT_EQ(a.captures[0].op, Capture::Op::insert);
  EXPECT_FALSE(a.captures[0].client_returning);
  ASSERT_TRUE(a.captures[0].table);
  EXPECT_EQ(a.captures[0].table->name, "events");
  EXPECT_EQ(a.rewritten,
            "INSERT INTO events (kind) VALUES ('a'), ('b') RETURNING (\"events\".*)::text AS \"pgshift$capture\"");
  const Analysis& b = r.analyze("insert into events as e (kind) values ($1) returning id;", &ctx);
  EXPECT_EQ(b.captures.at(0).mode, Capture::Mode::rows);
  EXPECT_TRUE(b.captures.at(0).client_returning);
  EXPECT_EQ(b.rewritten,
            "insert into events as e (kind) values ($1) returning id, (\"e\".*)::text AS \"pgshift$capture\";");
  const Analysis& c = r.analyze("INSERT INTO events (kind) VALUES ('x') -- a comment", &ctx);
  EXPECT_EQ(c.rewritten, "INSERT INTO events (kind) VALUES ('x') RETURNING (\"events\".*)::text AS "
                         "\"pgshift$capture\" -- a comment");
}

TEST(CatalogCapture, DeterministicWritesAreReplayed) {
  Rewriter r(Options{});
  const Context ctx = context(new_schema(), {"public"}, true);
  EXPECT_EQ(capture_of(r, "INSERT INTO plain VALUES (1, 'a')", ctx).mode, Capture::Mode::replay);
  EXPECT_EQ(capture_of(r, "INSERT INTO orgs (id, name) VALUES (1, 'a')", ctx).mode, Capture::Mode::replay);
  EXPECT_EQ(capture_of(r, "UPDATE orders SET total = total + 1 WHERE id = $1", ctx).mode, Capture::Mode::replay);
  EXPECT_EQ(capture_of(r, "DELETE FROM orders WHERE id = 3", ctx).mode, Capture::Mode::replay);
  EXPECT_FALSE(r.analyze("INSERT INTO plain VALUES (1, 'a')", &ctx).changed());
}

TEST(CatalogCapture, WhatMakesAWriteNondeterministic) {
  Rewriter r(Options{});
  const Context ctx = context(new_schema(), {"public"}, true);
  // Defaults taken: a column left out, DEFAULT, DEFAULT VALUES.
  EXPECT_EQ(capture_of(r, "INSERT INTO orgs (name) VALUES ('a')", ctx).mode, Capture::Mode::rows);
  EXPECT_EQ(capture_of(r, "INSERT INTO orgs VALUES (DEFAULT, 'a', 'p')", ctx).mode, Capture::Mode::rows);
  EXPECT_EQ(capture_of(r, "INSERT INTO orgs DEFAULT VALUES", ctx).mode, Capture::Mode::rows);
  EXPECT_EQ(capture_of(r, "INSERT INTO orgs (name) SELECT sku FROM order_items", ctx).mode, Capture::Mode::rows);
  // Functions in the statement.
  EXPECT_EQ(capture_of(r, "UPDATE orders SET created_at = now() WHERE id = 1", ctx).op, Capture::Op::upsert);
  EXPECT_EQ(capture_of(r, "UPDATE orders SET created_at = CURRENT_TIMESTAMP", ctx).mode, Capture::Mode::rows);
  EXPECT_EQ(capture_of(r, "UPDATE orders SET total = random()", ctx).mode, Capture::Mode::rows);
  EXPECT_EQ(capture_of(r, "DELETE FROM orders WHERE created_at < now() - interval '1 day'", ctx).op,
            Capture::Op::remove);
  EXPECT_EQ(capture_of(r, "DELETE FROM orders WHERE id IN (SELECT id FROM orders LIMIT 3)", ctx).op,
            Capture::Op::remove);
  EXPECT_EQ(capture_of(r, "INSERT INTO plain VALUES (1, 'now'::timestamptz::text)", ctx).mode, Capture::Mode::rows);
  EXPECT_EQ(capture_of(r, "INSERT INTO orgs (id, name) VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET name = "
                          "EXCLUDED.name || now()",
                       ctx)
                .op,
            Capture::Op::upsert);
  EXPECT_EQ(capture_of(r, "INSERT INTO orgs (name) VALUES ('a') ON CONFLICT DO NOTHING", ctx).op, Capture::Op::insert);
  // Identity columns: ALWAYS means OVERRIDING SYSTEM VALUE on the shadow.
  EXPECT_EQ(capture_of(r, "INSERT INTO events (uid, kind, r) VALUES (gen_random_uuid(), 'k', 1)", ctx).mode,
            Capture::Mode::rows);
}

TEST(CatalogCapture, WhatCannotBeMadeExact) {
  Rewriter r(Options{});
  const Context ctx = context(new_schema(), {"public"}, true);
  EXPECT_EQ(capture_of(r, "UPDATE plain SET b = now()::text", ctx).mode, Capture::Mode::inexact) << "no primary key";
  EXPECT_EQ(capture_of(r, "INSERT INTO audited (id, at) VALUES (1, now())", ctx).mode, Capture::Mode::inexact)
      << "triggers";
  EXPECT_EQ(capture_of(r, "INSERT INTO audited (id, at) VALUES (1, '2024-01-01')", ctx).mode, Capture::Mode::inexact)
      << "triggers, even when the statement is deterministic";
  EXPECT_EQ(capture_of(r, "WITH d AS (DELETE FROM orders RETURNING id) INSERT INTO orgs (name) SELECT 'x' FROM d", ctx)
                .mode,
            Capture::Mode::inexact);
  EXPECT_EQ(capture_of(r, "UPDATE orders SET id = id + 1, created_at = now()", ctx).mode, Capture::Mode::inexact)
      << "sets its primary key";
  EXPECT_EQ(capture_of(r, "INSERT INTO nosuch (a) VALUES (1)", ctx).mode, Capture::Mode::inexact);
  EXPECT_EQ(capture_of(r, "DO $$BEGIN PERFORM 1; END$$", ctx).mode, Capture::Mode::inexact);
  EXPECT_EQ(capture_of(r, "ALTER TABLE plain ADD COLUMN at timestamptz DEFAULT now()", ctx).mode,
            Capture::Mode::inexact);
  EXPECT_EQ(capture_of(r, "ALTER TABLE plain ADD COLUMN c int DEFAULT 0", ctx).mode, Capture::Mode::replay);
  EXPECT_EQ(capture_of(r, "CREATE TABLE t (id bigserial, at timestamptz DEFAULT now())", ctx).mode,
            Capture::Mode::replay);
  // A renamed table: the rows would name columns the shadow has under other names.
  Options with = rules();
  Rewriter renamed(with);
  EXPECT_EQ(capture_of(renamed, "INSERT INTO users (email) VALUES ('a')", ctx).mode, Capture::Mode::inexact);
  std::vector<std::pair<std::string, std::string>> elsewhere = {{"public", "orgs"}};
  Context shadow_renames = ctx;
  shadow_renames.renamed_elsewhere = &elsewhere;
  shadow_renames.rehash();
  EXPECT_EQ(capture_of(r, "INSERT INTO orgs (name) VALUES ('a')", shadow_renames).mode, Capture::Mode::inexact);
}

TEST(CatalogCapture, SelectsThatWriteAreReplayedAndComparedByTag) {
  Rewriter r(Options{});
  const Context ctx = context(new_schema(), {"public"}, true);
  const Capture& c = capture_of(r, "SELECT nextval('ticket_seq')", ctx);
  EXPECT_EQ(c.mode, Capture::Mode::replay);
  EXPECT_TRUE(c.nondeterministic);
  EXPECT_FALSE(capture_of(r, "SELECT id FROM orders WHERE id = 1 FOR UPDATE", ctx).nondeterministic);
}

TEST(CatalogCapture, MultipleStatementsEachDecided) {
  Rewriter r(Options{});
  const Context ctx = context(new_schema(), {"public"}, true);
  const Analysis& a = r.analyze("BEGIN; INSERT INTO orgs (name) VALUES ('a'); INSERT INTO plain VALUES (1, 'x'); COMMIT", &ctx);
  ASSERT_EQ(a.captures.size(), 4u);
  EXPECT_EQ(a.captures[1].mode, Capture::Mode::rows);
  EXPECT_EQ(a.captures[2].mode, Capture::Mode::replay);
  EXPECT_EQ(a.rewritten, "BEGIN; INSERT INTO orgs (name) VALUES ('a') RETURNING (\"orgs\".*)::text AS "
                         "\"pgshift$capture\"; INSERT INTO plain VALUES (1, 'x'); COMMIT");
  // The statements keep their ranges in the client's text.
  EXPECT_EQ(a.statements[1].begin, 7u);
}

TEST(CatalogCapture, SearchPathDecidesTheTable) {
  Rewriter r(Options{});
  const Context other = context(new_schema(), {"other", "public"}, true);
  EXPECT_EQ(capture_of(r, "INSERT INTO users (id, email, name) VALUES (1, 'a', 'b')", other).mode,
            Capture::Mode::replay);
  const Context pub = context(new_schema(), {"public"}, true);
  EXPECT_EQ(capture_of(r, "INSERT INTO users (id, email_address, full_name) VALUES (1, 'a', 'b')", pub).mode,
            Capture::Mode::rows)
      << "public.users.created_at takes now()";
}

TEST(CatalogCapture, LiteralVariantsShareTheTemplate) {
  Rewriter r(Options{});
  const Context ctx = context(new_schema(), {"public"}, true);
  r.analyze("INSERT INTO orgs (name) VALUES ('a')", &ctx);
  const Analysis& a = r.analyze("INSERT INTO orgs (name) VALUES ('some other name')", &ctx);
  EXPECT_EQ(r.stats().normalized_hits, 1u);
  EXPECT_EQ(a.rewritten, "INSERT INTO orgs (name) VALUES ('some other name') RETURNING (\"orgs\".*)::text AS "
                         "\"pgshift$capture\"");
  EXPECT_EQ(a.captures.at(0).mode, Capture::Mode::rows);
}

// ---- the snapshot ------------------------------------------------------------------------

TEST(CatalogSnapshot, BuildsFromLoaderRows) {
  using Row = std::vector<std::optional<std::string>>;
  auto r = [](std::initializer_list<const char*> v) {
    Row row;
    for (const char* s : v) row.push_back(s ? std::optional<std::string>(s) : std::nullopt);
    return row;
  };
  const Catalog::Rows rows = {
      r({"t", "public", "t", "r", "d", nullptr, nullptr, nullptr, nullptr}),
      r({"c", "public", "t", "3", "note", "text", nullptr, "", ""}),
      r({"c", "public", "t", "1", "id", "bigint", "nextval('public.t_id_seq'::regclass)", "", ""}),
      r({"c", "public", "t", "2", "at", "timestamp with time zone", "CURRENT_TIMESTAMP", "", ""}),
      r({"c", "public", "t", "5", "g", "integer", "(id * 2)", "", "s"}),
      r({"c", "public", "t", "4", "n", "integer", "0", "a", ""}),
      r({"c", "public", "t", "6", "f", "integer", "public.pick()", "", ""}),
      r({"k", "public", "t", "1", "id", nullptr, nullptr, nullptr, nullptr}),
      r({"g", "public", "t", nullptr, nullptr, nullptr, nullptr, nullptr, nullptr}),
      r({"s", "public", "t_id_seq", "public", "t", "id", nullptr, nullptr, nullptr}),
      r({"f", "pick", nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr}),
      r({"p", "", "t", "app, public", nullptr, nullptr, nullptr, nullptr, nullptr}),
      r({"p", "alice", "f", "alice_schema", nullptr, nullptr, nullptr, nullptr, nullptr}),
      r({"p", "bob", "t", "bobs", nullptr, nullptr, nullptr, nullptr, nullptr}),
      r({"p", "bob", "f", "bob_anywhere", nullptr, nullptr, nullptr, nullptr, nullptr}),
      r({"d", "\"$user\", public", nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr}),
      r({"x", "a future kind", nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr}),
  };
  const CatalogPtr c = Catalog::build(rows, 7);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->generation(), 7u);
  const CatalogTable* t = c->find("public", "t");
  ASSERT_TRUE(t);
  ASSERT_EQ(t->columns.size(), 6u);
  EXPECT_EQ(t->columns[0].name, "id");
  EXPECT_EQ(t->columns[2].name, "note");
  EXPECT_TRUE(t->columns[0].volatile_default);
  EXPECT_TRUE(t->columns[1].volatile_default) << "CURRENT_TIMESTAMP";
  EXPECT_FALSE(t->columns[2].volatile_default);
  EXPECT_EQ(t->columns[3].identity, 'a');
  EXPECT_TRUE(t->columns[3].new_value_when_defaulted());
  EXPECT_TRUE(t->columns[4].generated);
  EXPECT_FALSE(t->columns[4].volatile_default);
  EXPECT_TRUE(t->columns[5].volatile_default) << "a volatile user function";
  EXPECT_EQ(t->primary_key, std::vector<std::size_t>{0});
  EXPECT_TRUE(t->triggers);
  ASSERT_EQ(c->sequence_count(), 1u);
  EXPECT_EQ(c->sequences()[0].owner_column, "id");
  EXPECT_EQ(t->columns[0].sequence_schema, "public");
  EXPECT_EQ(t->columns[0].sequence, "t_id_seq") << "the sequence the column owns";
  EXPECT_TRUE(t->columns[2].sequence.empty());
  EXPECT_EQ(c->default_search_path("carol"), "app, public") << "the database's";
  EXPECT_EQ(c->default_search_path("alice"), "alice_schema") << "the role's, anywhere, beats the database's";
  EXPECT_EQ(c->default_search_path("bob"), "bobs") << "the role's in this database beats everything";
  EXPECT_EQ(c->resolve("t", {"nosuch", "public"}), t);
}

TEST(CatalogSnapshot, ParsesSearchPathValues) {
  EXPECT_EQ(parse_search_path("\"$user\", public"), (std::vector<std::string>{"$user", "public"}));
  EXPECT_EQ(parse_search_path("Other,PUBLIC"), (std::vector<std::string>{"other", "public"}));
  EXPECT_EQ(parse_search_path(" \"My \"\"Schema\"\"\" , x "), (std::vector<std::string>{"My \"Schema\"", "x"}));
  EXPECT_EQ(parse_search_path(""), std::vector<std::string>{});
}

TEST(CatalogSnapshot, ClassifiesSearchPathChanges) {
  Rewriter r(Options{});
  const Analysis& a = r.analyze("SET search_path = Other, \"Mixed\", 'a,b'; SET LOCAL search_path TO x; "
                                "RESET search_path; SELECT set_config('search_path', 'y', false); RESET ALL");
  ASSERT_EQ(a.statements.size(), 5u);
  EXPECT_EQ(a.statements[0].path_change, PathChange::set);
  EXPECT_EQ(a.statements[0].path, (std::vector<std::string>{"other", "Mixed", "a,b"}));
  EXPECT_EQ(a.statements[1].path_change, PathChange::set_local);
  EXPECT_EQ(a.statements[2].path_change, PathChange::reset);
  EXPECT_EQ(a.statements[3].path_change, PathChange::unknown);
  EXPECT_EQ(a.statements[4].path_change, PathChange::reset);
}

}  // namespace
