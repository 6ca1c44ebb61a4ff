// verify/'s model: catalogs lined up, the statements it sends, row
// comparison, live re-checks, the report and the rate limit. No servers.
#include <gtest/gtest.h>

#include "verify/diff.hpp"
#include "verify/report.hpp"
#include "verify/schema.hpp"
#include "verify/sql.hpp"

namespace pgshift::verify {
namespace {

using std::nullopt;

// One catalog row, as catalog_query() returns it.
Row col(const std::string& table, const std::string& name, const std::string& type, int oid, int key = 0,
        const char* kind = "p", const char* collation = nullptr) {
  return {std::string("public"), table, std::string("100"), std::string(key || *kind ? kind : ""), name, type,
          std::to_string(oid), key ? std::optional<std::string>(std::to_string(key)) : nullopt,
          collation ? std::optional<std::string>(collation) : nullopt};
}

std::vector<Table> tables(const Rows& rows) {
  std::vector<Table> out;
  std::string error;
  EXPECT_TRUE(tables_from_catalog(rows, out, error)) << error;
  return out;
}

TEST(VerifySchema, CatalogRowsBecomeTables) {
  auto t = tables({col("a", "id", "integer", 23, 1), col("a", "v", "text", 25), col("b", "x", "integer", 23, 0, "")});
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].qualified(), "public.a");
  EXPECT_EQ(t[0].key_kind, 'p');
  EXPECT_EQ(t[0].columns[0].key_position, 1);
  EXPECT_EQ(t[0].estimated_rows, 100);
  EXPECT_EQ(t[1].key_kind, 0);
  std::vector<Table> out;
  std::string error;
  EXPECT_FALSE(tables_from_catalog({{std::string("x")}}, out, error));
  EXPECT_NE(error, "");
}

TEST(VerifySchema, TablesAndColumnsOnOneSideTypesAndKeys) {
  const auto p = tables({col("a", "id", "integer", 23, 1), col("a", "old", "text", 25), col("a", "n", "numeric(10,2)", 1700),
                         col("gone", "id", "integer", 23, 1), col("nokey", "x", "integer", 23, 0, "")});
  const auto t = tables({col("a", "id", "integer", 23, 1), col("a", "n", "numeric(12,4)", 1700), col("a", "new", "text", 25),
                         col("added", "id", "integer", 23, 1), col("nokey", "x", "integer", 23, 0, "")});
  std::vector<std::string> unknown;
  const SchemaDiff d = diff_schemas(p, t, {}, {}, unknown);
  EXPECT_EQ(d.only_on_primary, std::vector<std::string>{"public.gone"});
  EXPECT_EQ(d.only_on_target, std::vector<std::string>{"public.added"});
  ASSERT_EQ(d.tables.size(), 2u);
  const TablePlan& a = d.tables[0];
  EXPECT_EQ(a.qualified(), "public.a");
  EXPECT_EQ(a.column_issues, (std::vector<std::string>{"column old: only on the primary",
                                                       "column n: type numeric(10,2) on the primary, numeric(12,4) on the target",
                                                       "column new: only on the target"}));
  ASSERT_EQ(a.columns.size(), 2u);  // id and n: on both sides
  EXPECT_EQ(a.key, std::vector<std::size_t>{0});
  EXPECT_EQ(a.key_source, "primary key of the primary");
  EXPECT_FALSE(d.tables[1].keyed());  // nokey: full-table hash
}

TEST(VerifySchema, RenameRulesAndIgnoredColumns) {
  const auto p = tables({col("users", "id", "integer", 23, 1), col("users", "email", "text", 25),
                         col("users", "seen", "timestamptz", 1184)});
  const auto t = tables({col("users", "id", "integer", 23, 1), col("users", "email_address", "text", 25),
                         col("users", "seen", "timestamptz", 1184)});
  Rules rules;
  config::RenameRule r;
  r.table = "users";
  r.from = "email";
  r.to = "email_address";
  r.renamed_on = config::RenameSide::shadow;
  rules.renames.push_back(r);
  rules.ignore_columns = {"users.seen"};
  std::vector<std::string> unknown;
  const SchemaDiff d = diff_schemas(p, t, rules, {"users", "public.nope"}, unknown);
  ASSERT_EQ(d.tables.size(), 1u);
  EXPECT_TRUE(d.tables[0].column_issues.empty());
  ASSERT_EQ(d.tables[0].columns.size(), 2u);
  EXPECT_EQ(d.tables[0].columns[1].name, "email");
  EXPECT_EQ(d.tables[0].columns[1].target.name, "email_address");
  EXPECT_EQ(d.tables[0].ignored, std::vector<std::string>{"seen"});
  EXPECT_EQ(unknown, std::vector<std::string>{"public.nope"});
}

TEST(VerifySchema, KeyCollationsThatDifferOrderBytewise) {
  const auto p = tables({col("t", "k", "text", 25, 1, "p", "en_US")});
  const auto t = tables({col("t", "k", "text", 25, 1, "p", "C")});
  std::vector<std::string> unknown;
  const SchemaDiff d = diff_schemas(p, t, {}, {}, unknown);
  ASSERT_EQ(d.tables.size(), 1u);
  EXPECT_TRUE(d.tables[0].binary_collation);
  EXPECT_NE(boundary_query(d.tables[0], {}, std::nullopt, 10).find("COLLATE \"C\""), std::string::npos);
}

TablePlan composite_plan() {
  const auto p = tables({col("o", "a", "text", 25, 1), col("o", "b", "integer", 23, 2), col("o", "n", "numeric", 1700),
                         col("o", "f", "double precision", 701), col("o", "c", "character(3)", 1042)});
  const auto t = tables({col("o", "a", "text", 25, 1), col("o", "b", "integer", 23, 2), col("o", "n", "numeric", 1700),
                         col("o", "f", "double precision", 701), col("o", "c", "text", 25)});
  std::vector<std::string> unknown;
  return diff_schemas(p, t, {}, {}, unknown).tables.at(0);
}

TEST(VerifySql, CanonicalFormsAndRanges) {
  const TablePlan t = composite_plan();
  const ServerInfo pg15{150000}, pg12{120000};
  EXPECT_EQ(canonical(t, 2, Side::primary, pg15), "pg_catalog.trim_scale(\"n\")");
  EXPECT_EQ(canonical(t, 2, Side::primary, pg12), "\"n\"");  // no trim_scale before 13
  EXPECT_EQ(canonical(t, 3, Side::primary, pg15), "(\"f\"::pg_catalog.float8 + 0::pg_catalog.float8)");
  EXPECT_EQ(canonical(t, 4, Side::primary, pg15), "\"c\"::pg_catalog.text");  // char(3) against text: no padding
  const std::string q = chunk_hash_query(t, Side::target, pg15, Key{"x'y", "1"}, Key{"z", "2"});
  EXPECT_NE(q.find("FROM \"public\".\"o\" WHERE (\"a\", \"b\") > ('x''y'::text, '1'::integer) AND (\"a\", \"b\") <= "
                   "('z'::text, '2'::integer)"),
            std::string::npos)
      << q;
  EXPECT_NE(q.find("pg_catalog.md5(ROW("), std::string::npos);
  const std::string b = boundary_query(t, pg15, std::nullopt, 1000);
  EXPECT_NE(b.find("ORDER BY \"a\", \"b\" OFFSET 999 LIMIT 1"), std::string::npos) << b;
  EXPECT_EQ(b.find("WHERE"), std::string::npos);
  const std::string r = rows_query(t, Side::primary, pg15, {Key{"a", "1"}, Key{"b", "2"}}, true);
  EXPECT_NE(r.find("WHERE (\"a\", \"b\") IN (('a'::text, '1'::integer), ('b'::text, '2'::integer))"), std::string::npos)
      << r;
}

// Rows as rows_query(values = true) returns them: key a, b; hash; a, b, n, f, c.
Row row(const std::string& a, const std::string& b, const std::string& h, std::optional<std::string> n,
        std::optional<std::string> f = "1", std::optional<std::string> c = "x") {
  return {a, b, h, a, b, std::move(n), std::move(f), std::move(c)};
}

TEST(VerifyDiff, KeysWhoseHashesDifferOrThatOneSideLacks) {
  const TablePlan t = composite_plan();
  const Rows p{{"a", "1", "10"}, {"a", "2", "20"}, {"b", "1", "30"}};
  const Rows q{{"a", "1", "10"}, {"a", "2", "21"}, {"c", "1", "40"}};
  const std::vector<Key> keys = differing_keys(t, p, q);
  EXPECT_EQ(keys, (std::vector<Key>{{"a", "2"}, {"b", "1"}, {"c", "1"}}));
}

TEST(VerifyDiff, ValuesThatOnlyPrintDifferentlyAreEqual) {
  const TablePlan t = composite_plan();
  const std::vector<Key> keys{{"a", "1"}, {"a", "2"}, {"b", "1"}, {"c", "1"}, {"gone", "1"}};
  const Rows p{row("a", "1", "1", "1.50", "0.1"), row("a", "2", "2", "3"), row("b", "1", "3", std::nullopt)};
  const Rows q{row("a", "1", "9", "1.5", "0.1"), row("a", "2", "2", "4"), row("c", "1", "4", "1")};
  const std::vector<Difference> d = compare_rows(t, keys, p, q, 0);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].kind, DiffKind::changed);
  EXPECT_EQ(d[0].key, (Key{"a", "2"}));
  EXPECT_EQ(d[0].column, "n");
  EXPECT_EQ(describe(t, d[0]), "(a, b)=(a, 2) changed (n: 3 on the primary, 4 on the target)");
  EXPECT_EQ(d[1].kind, DiffKind::missing);
  EXPECT_EQ(describe(t, d[1]), "(a, b)=(b, 1) missing on the target");
  EXPECT_EQ(d[2].kind, DiffKind::extra);
  // NULL against a value differs; within a tolerance, numbers are equal.
  EXPECT_EQ(compare_rows(t, {{"a", "1"}}, {row("a", "1", "1", std::nullopt)}, {row("a", "1", "1", "0")}, 0).size(), 1u);
  EXPECT_TRUE(compare_rows(t, {{"a", "1"}}, {row("a", "1", "1", "1.00")}, {row("a", "1", "1", "1.004")}, 0.01).empty());
}

TEST(VerifyDiff, InFlightRowsResolveOnceTheTargetReachesAPrimaryState) {
  const TablePlan t = composite_plan();
  InFlight w;
  const Key hot{"a", "1"}, gone{"a", "2"}, wrong{"a", "3"};
  for (const Key& k : {hot, gone, wrong}) w.add(k);
  const std::vector<Key> batch{hot, gone, wrong};
  // The primary moves on (state 5, then 6); the target follows a step behind.
  w.sample_primary(t, batch, {{"a", "1", "5"}, {"a", "3", "7"}});  // a,2 deleted on the primary
  EXPECT_EQ(w.sample_target(t, batch, {{"a", "1", "4"}, {"a", "2", "1"}, {"a", "3", "8"}}), 0u);
  w.sample_primary(t, batch, {{"a", "1", "6"}, {"a", "3", "7"}});
  EXPECT_EQ(w.sample_target(t, batch, {{"a", "1", "5"}, {"a", "3", "8"}}), 2u);  // hot reached 5; gone is gone
  EXPECT_TRUE(w.resolved(hot));
  EXPECT_TRUE(w.resolved(gone));
  EXPECT_FALSE(w.resolved(wrong));
  EXPECT_EQ(w.pending(), std::vector<Key>{wrong});
  // A new round forgets the old states.
  w.new_round();
  EXPECT_EQ(w.sample_target(t, {wrong}, {{"a", "3", "7"}}), 0u);
}

TEST(VerifyReport, ExitCodesAndSummary) {
  Report r;
  r.primary = "p:1/db";
  r.target = "t:2/db";
  TableReport ok;
  ok.table = "public.a";
  ok.rows = 5;
  finish(ok, nullptr);
  EXPECT_EQ(ok.status, TableReport::Status::match);
  EXPECT_EQ(ok.matching, 5u);
  r.tables.push_back(ok);
  EXPECT_EQ(r.exit_code(), 0);

  TableReport failed;
  failed.table = "public.f";
  failed.status = TableReport::Status::failed;
  failed.error = "boom";
  r.tables.push_back(failed);
  EXPECT_EQ(r.exit_code(), 2);

  TableReport bad;
  bad.table = "public.b";
  bad.rows = 10;
  bad.mismatched = 1;
  bad.extra = 2;
  finish(bad, nullptr);
  EXPECT_EQ(bad.status, TableReport::Status::differs);
  EXPECT_EQ(bad.matching, 7u);
  r.tables.push_back(bad);
  EXPECT_EQ(r.exit_code(), 1);  // a difference wins over a failed table

  TableReport issues;
  issues.table = "public.c";
  issues.column_issues = {"column x: only on the target"};
  finish(issues, nullptr);
  EXPECT_EQ(issues.status, TableReport::Status::differs);
  r.tables.push_back(issues);
  const std::string text = render_text(r);
  EXPECT_NE(text.find("public.c: column x: only on the target"), std::string::npos) << text;
  EXPECT_NE(text.find("failed: boom"), std::string::npos) << text;
  EXPECT_NE(text.find("(exit 1)"), std::string::npos) << text;
  r.error = "no server";
  EXPECT_EQ(r.exit_code(), 2);
}

TEST(VerifyReport, Progress) {
  Progress p{"public.pgbench_accounts", 250000, 1000000, 5};
  EXPECT_EQ(progress_text(p, false), "public.pgbench_accounts: 25% 250,000/1,000,000 rows, 50,000 rows/s, 15.0 s left");
  const std::string bar = progress_text(p, true, 100);
  EXPECT_NE(bar.find("[##"), std::string::npos) << bar;
  EXPECT_LE(bar.size(), 100u) << bar;
  Progress unknown{"t", 10, 0, 1};
  EXPECT_NE(progress_text(unknown, false).find("10/? rows"), std::string::npos);
}

TEST(VerifyReport, PacerSpreadsRowsOverTime) {
  using namespace std::chrono;
  Pacer unlimited(0);
  const auto now = Pacer::Clock::now();
  EXPECT_EQ(unlimited.reserve(1'000'000, now), Pacer::Clock::duration::zero());
  Pacer p(1000);  // rows per second
  EXPECT_EQ(p.reserve(500, now), Pacer::Clock::duration::zero());
  EXPECT_EQ(duration_cast<milliseconds>(p.reserve(500, now)).count(), 500);
  EXPECT_EQ(duration_cast<milliseconds>(p.reserve(500, now + milliseconds(200))).count(), 800);
  EXPECT_EQ(p.reserve(1, now + seconds(10)), Pacer::Clock::duration::zero());  // idle time is not saved up
}

}  // namespace
}  // namespace pgshift::verify
