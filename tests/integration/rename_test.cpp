// Column renames, differentially: two PostgreSQL clusters hold the same data, OLD with the
// column names the application uses and NEW with the columns renamed. The same psycopg
// workload (clients/rename_workload.py, old names only) runs directly against OLD and
// through pgshift, configured with the rename rules, against NEW; the two transcripts
// (rows, column names and types, command tags, errors) must be identical.
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "harness.hpp"

namespace pgshift::it {
namespace {

// Deterministic data: no random(), no now() in anything a test compares.
constexpr const char* kSeedSql = R"sql(
INSERT INTO orgs (name, plan)
  SELECT 'Org ' || g, (ARRAY['free', 'pro', 'enterprise'])[1 + g % 3] FROM generate_series(1, 5) g;
INSERT INTO users (email, name, org_id, created_at, active)
  SELECT 'user' || g || '@example.com', CASE WHEN g % 10 = 0 THEN NULL ELSE 'User ' || g END,
         1 + g % 5, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 hour', g % 7 <> 0
  FROM generate_series(1, 50) g;
INSERT INTO orders (user_id, total, status, created_at)
  SELECT 1 + (g * g) % 50, ((g * 37) % 500 + 0.99)::numeric(10,2),
         (ARRAY['new', 'paid', 'shipped', 'cancelled'])[1 + (g * 3 + g / 7) % 4],
         timestamptz '2024-02-01 00:00:00+00' + g * interval '30 minutes'
  FROM generate_series(1, 200) g;
INSERT INTO order_items (order_id, sku, qty, price)
  SELECT 1 + (g * 13) % 200, 'SKU-' || g % 20, 1 + g % 5, (g % 50 + 0.5)::numeric(10,2)
  FROM generate_series(1, 500) g;
INSERT INTO billing.invoices (order_id, amt, note)
  SELECT g * 2, ((g * 53) % 600 + 0.25)::numeric(10,2), 'invoice ' || g FROM generate_series(1, 100) g;
-- Same plans and row order on both clusters: no autovacuum/autoanalyze in between.
ALTER TABLE orgs SET (autovacuum_enabled = false);
ALTER TABLE users SET (autovacuum_enabled = false);
ALTER TABLE orders SET (autovacuum_enabled = false);
ALTER TABLE order_items SET (autovacuum_enabled = false);
ALTER TABLE billing.invoices SET (autovacuum_enabled = false);
ANALYZE;
)sql";

// NEW: what the expand-contract migration did to the schema (tests/rewrite/schema_new.sql).
constexpr const char* kRenameSql = R"sql(
ALTER TABLE users RENAME COLUMN email TO email_address;
ALTER TABLE users RENAME COLUMN name TO full_name;
ALTER TABLE orders RENAME COLUMN status TO state;
ALTER TABLE billing.invoices RENAME COLUMN amt TO amount;
)sql";

constexpr const char* kRules = R"toml(
[[rename]]
table = "users"
from = "email"
to = "email_address"
renamed_on = "primary"

[[rename]]
table = "users"
from = "name"
to = "full_name"
renamed_on = "primary"

[[rename]]
table = "orders"
from = "status"
to = "state"
renamed_on = "primary"

[[rename]]
table = "billing.invoices"
from = "amt"
to = "amount"
renamed_on = "primary"
)toml";

// For rename_workload.py catalog: orders get an email of their own (some equal to their
// user's), and a table users in schema other that no rule renames.
constexpr const char* kCatalogSql = R"sql(
ALTER TABLE orders ADD COLUMN email text;
UPDATE orders SET email = 'order' || id || '@example.com';
UPDATE orders SET email = 'user' || user_id || '@example.com' WHERE id % 3 = 0;
CREATE SCHEMA other;
CREATE TABLE other.users (id int PRIMARY KEY, email text, name text);
INSERT INTO other.users SELECT g, 'other' || g || '@example.com', 'Other ' || g FROM generate_series(1, 5) g;
)sql";

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The transcript line of the step labelled `label` (empty when there is none).
std::string step(const std::string& transcript, const std::string& label) {
  for (const auto& line : lines_of(transcript)) {
    if (line.find("\"label\": \"" + label + "\"") != std::string::npos) return line;
  }
  return {};
}

// Sum of the rewritten=N counters in pgshift's close lines.
unsigned long rewritten_total(const std::string& log) {
  unsigned long total = 0;
  const std::string key = " rewritten=";
  for (auto pos = log.find(key); pos != std::string::npos; pos = log.find(key, pos + 1)) {
    total += std::strtoul(log.c_str() + pos + key.size(), nullptr, 10);
  }
  return total;
}

class Rename : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    old_ = std::make_unique<PgCluster>();
    new_ = std::make_unique<PgCluster>();
  }
  static void TearDownTestSuite() {
    old_.reset();
    new_.reset();
  }

 protected:
  void SetUp() override { ASSERT_TRUE(old_ && new_) << "the suite's PostgreSQL clusters did not start"; }
  void TearDown() override {
    if (!HasFailure()) return;
    for (const auto* c : {old_.get(), new_.get()}) {
      if (c) std::cerr << "---- PostgreSQL log (" << c->dir() << ") ----\n" << c->log_tail() << "\n----\n";
    }
  }

  // A fresh database `dbname` on `cluster` with schema_old.sql and the seed data, its
  // columns renamed when `renamed`.
  static ConnParams load(const PgCluster& cluster, const std::string& dbname, bool renamed,
                         const std::string& more = "") {
    cluster.sql("CREATE DATABASE " + dbname);
    ConnParams conn = cluster.superuser();
    conn.dbname = dbname;
    std::string script = read_file(source_dir() / "tests" / "rewrite" / "schema_old.sql") + kSeedSql + more;
    if (renamed) script += kRenameSql;
    auto result = psql_script(conn, script, true);
    if (!result.ok()) throw std::runtime_error("loading " + dbname + " failed\n" + result.describe());
    return conn;
  }

  // With [[primary.login]], pgshift reads the catalog and resolves names with it.
  static PgshiftOptions rename_options(bool strict, const std::string& more = "") {
    PgshiftOptions options;
    options.extra_config = std::string("[[primary.login]]\nclient_user = \"*\"\n\n[rewrite]\nstrict = ") +
                           (strict ? "true" : "false") + "\n" + kRules + more;
    return options;
  }

  // The differential: the same workload directly against OLD and through `proxy`.
  static void expect_same_transcript(const ConnParams& direct, const ConnParams& through, const std::string& mode,
                                     std::size_t min_steps) {
    auto expected = python_client("rename_workload.py", direct, {mode});
    ASSERT_RUN_OK(expected);
    auto actual = python_client("rename_workload.py", through, {mode});
    ASSERT_RUN_OK(actual);
    const auto want = lines_of(expected.out);
    const auto got = lines_of(actual.out);
    ASSERT_GE(want.size(), min_steps) << "the workload has too few steps:\n" << expected.out;
    ASSERT_NE(want.back().find("\"end\": true"), std::string::npos) << expected.out;
    std::size_t differences = 0;
    std::string first, others;
    for (std::size_t i = 0; i < std::max(want.size(), got.size()); ++i) {
      const std::string w = i < want.size() ? want[i] : "<missing>";
      const std::string g = i < got.size() ? got[i] : "<missing>";
      if (w == g) continue;
      if (differences++ == 0) {
        first = "line " + std::to_string(i + 1) + "\n  direct:  " + w + "\n  pgshift: " + g + "\n";
      } else if (differences <= 40) {
        others += "  line " + std::to_string(i + 1) + " pgshift: " + g.substr(0, 300) + "\n";
      }
    }
    EXPECT_EQ(differences, 0u) << "first difference at " << first
                               << (others.empty() ? "" : "later differences:\n" + others);
  }

  static ConnParams via(const Pgshift& proxy, const std::string& dbname) {
    ConnParams conn = proxy.conn();
    conn.dbname = dbname;
    return conn;
  }

  static inline std::unique_ptr<PgCluster> old_;
  static inline std::unique_ptr<PgCluster> new_;
};

TEST_F(Rename, WorkloadMatchesOldSchemaThroughPgshift) {
  const ConnParams direct = load(*old_, "differential", false);
  load(*new_, "differential", true);
  Pgshift proxy(*new_, rename_options(false));

  expect_same_transcript(direct, via(proxy, "differential"), "workload", 81);

  EXPECT_EQ(proxy.stop(), "");
  const std::string log = proxy.log();
  EXPECT_EQ(count_occurrences(log, "rewrite: left unchanged"), 0u) << tail_lines(log, 60);
  EXPECT_GT(rewritten_total(log), 0u) << tail_lines(log, 60);
}

// What only the catalog decides: the subquery's table has the column, the session's
// search_path picks other.users (not renamed) over public.users, and SET, SET LOCAL,
// RESET and ROLLBACK change that as in PostgreSQL.
TEST_F(Rename, CatalogAndSearchPathResolveAsPostgres) {
  const ConnParams direct = load(*old_, "catalogcases", false, kCatalogSql);
  load(*new_, "catalogcases", true, kCatalogSql);
  Pgshift proxy(*new_, rename_options(false));
  expect_same_transcript(direct, via(proxy, "catalogcases"), "catalog", 20);
  EXPECT_EQ(proxy.stop(), "");
  const std::string log = proxy.log();
  EXPECT_EQ(count_occurrences(log, "rewrite: left unchanged"), 0u) << tail_lines(log, 60);
  EXPECT_TRUE(contains(log, "catalog: read database catalogcases on the primary server"));
}

// The search_path of the startup packet (PGOPTIONS) counts too.
TEST_F(Rename, StartupSearchPath) {
  const ConnParams direct = load(*old_, "startuppath", false, kCatalogSql);
  load(*new_, "startuppath", true, kCatalogSql);
  Pgshift proxy(*new_, rename_options(false));
  ConnParams d = direct, t = via(proxy, "startuppath");
  d.settings = t.settings = {{"PGOPTIONS", "-c search_path=other,public"}};
  auto want = psql_query(d, "SELECT email FROM users WHERE id = 1");
  auto got = psql_query(t, "SELECT email FROM users WHERE id = 1");
  ASSERT_RUN_OK(want);
  ASSERT_RUN_OK(got);
  EXPECT_EQ(got.out, "other1@example.com\n");
  EXPECT_EQ(got.out, want.out);
  EXPECT_EQ(proxy.stop(), "");
}

// The differential again, with the writes mirrored (exactly where they can be) to a
// shadow that has the new names too: what the client sees does not change.
TEST_F(Rename, WorkloadMatchesWithMirroring) {
  const ConnParams direct = load(*old_, "mirrored", false);
  load(*new_, "mirrored", true);
  PgCluster shadow;
  load(shadow, "mirrored", true);
  std::ostringstream more;
  more << "\n[shadow]\nhost = \"127.0.0.1\"\nport = " << shadow.port() << "\nstatus_interval_ms = 200\n"
       << "mismatch_log = \"mismatches.jsonl\"\n\n[[shadow.login]]\nclient_user = \"*\"\n";
  PgshiftOptions options = rename_options(false, more.str());
  options.threads = 0;
  Pgshift proxy(*new_, options);
  expect_same_transcript(direct, via(proxy, "mirrored"), "workload", 81);
  EXPECT_EQ(proxy.stop(), "");
  const std::string log = proxy.log();
  EXPECT_EQ(count_occurrences(log, "rewrite: left unchanged"), 0u) << tail_lines(log, 60);
  EXPECT_TRUE(contains(log, "shadow: committed=")) << tail_lines(log, 40);
}

TEST_F(Rename, StrictModeRefusesAmbiguousStatements) {
  load(*new_, "strict", true);
  Pgshift proxy(*new_, rename_options(true));
  auto result = python_client("rename_workload.py", via(proxy, "strict"), {"strict"});
  ASSERT_RUN_OK(result);
  const std::string& out = result.out;

  for (const char* label : {"ambiguous simple", "ambiguous extended", "ambiguous prepared"}) {
    const std::string line = step(out, label);
    EXPECT_TRUE(contains(line, "\"error\": \"0A000\"")) << label << "\n" << out;
    EXPECT_TRUE(contains(line, "pgshift")) << label;
  }
  const std::string in_txn = step(out, "ambiguous in transaction");
  EXPECT_TRUE(contains(in_txn, "\"error\": \"0A000\"")) << out;
  EXPECT_TRUE(contains(step(out, "rollback refused transaction"), "\"status\": \"ROLLBACK\"")) << out;

  EXPECT_TRUE(contains(step(out, "usable after simple refusal"),
                       "\"columns\": [\"email\"], \"label\": \"usable after simple refusal\", "
                       "\"rowcount\": 1, \"rows\": [[\"user1@example.com\"]]"));
  EXPECT_TRUE(contains(step(out, "usable after extended refusal"), "\"rows\": [[\"user2@example.com\"]]"));
  EXPECT_TRUE(contains(step(out, "usable at the end"), "\"columns\": [\"name\"]"));
  EXPECT_TRUE(contains(step(out, "usable at the end"), "\"rows\": [[\"User 5\"]]"));

  EXPECT_EQ(proxy.stop(), "");
  EXPECT_TRUE(contains(proxy.log(), "rewrite: refused"));
}

TEST_F(Rename, NewNamesWorkAndDdlIsNotRewritten) {
  load(*new_, "newnames", true);
  Pgshift proxy(*new_, rename_options(false));
  auto result = python_client("rename_workload.py", via(proxy, "newnames"), {"new-names"});
  ASSERT_RUN_OK(result);
  const std::string& out = result.out;

  for (const char* label : {"new names simple", "new names extended"}) {
    EXPECT_TRUE(contains(step(out, label), "\"columns\": [\"email_address\", \"full_name\"]")) << out;
    EXPECT_TRUE(contains(step(out, label), "\"rows\": [[\"user1@example.com\", \"User 1\"]]"));
  }
  EXPECT_TRUE(contains(step(out, "old and new together"),
                       "\"columns\": [\"email\", \"email_address\"]"));
  EXPECT_TRUE(contains(step(out, "old and new together"),
                       "\"rows\": [[\"user2@example.com\", \"user2@example.com\"]]"));
  EXPECT_TRUE(contains(step(out, "new name in where"), "\"rows\": [[\"user3@example.com\"]]"));

  EXPECT_TRUE(contains(step(out, "ddl add column"), "\"status\": \"ALTER TABLE\""));
  EXPECT_TRUE(contains(step(out, "new column readable"), "\"columns\": [\"email2\", \"email\"]"));
  // DDL goes to the database as written: the old name does not exist there.
  EXPECT_TRUE(contains(step(out, "ddl with old name"), "\"error\": \"42703\""));
  EXPECT_TRUE(contains(step(out, "ddl with old name"), "column \\\"name\\\" does not exist"));
  EXPECT_TRUE(contains(step(out, "ddl with new name"), "\"status\": \"CREATE INDEX\""));
  EXPECT_TRUE(contains(step(out, "ddl rename column"), "\"status\": \"ALTER TABLE\""));
  EXPECT_TRUE(contains(step(out, "renamed by ddl"), "\"columns\": [\"email3\"]"));

  EXPECT_EQ(proxy.stop(), "");
}

}  // namespace
}  // namespace pgshift::it
