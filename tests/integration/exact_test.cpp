// Exact mirroring, end to end: values the primary makes up (bigserial, identity,
// gen_random_uuid(), now(), clock_timestamp(), random(), nextval()) must reach the shadow
// as they are, across concurrent sessions, and what pgshift adds to capture them must
// never reach a client. Also: the catalog follows DDL (through pgshift at once, behind its
// back after catalog_refresh_ms or REFRESH CATALOG), and a commit the shadow cannot
// follow marks it diverged.
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "harness.hpp"
#include "protocol/builder.hpp"
#include "raw_client.hpp"
#include "shadow_status.hpp"
#include "two_servers.hpp"

namespace pgshift::it {
namespace {

using namespace std::chrono_literals;

// The schema clients/volatile_workload.py writes to.
constexpr const char* kVolatileSchema = R"sql(
CREATE SEQUENCE ext_seq;
CREATE TABLE items (id bigserial PRIMARY KEY, uid uuid NOT NULL DEFAULT gen_random_uuid(),
  created timestamptz NOT NULL DEFAULT now(), r float8 NOT NULL DEFAULT random(), client int NOT NULL,
  note text, counter int NOT NULL DEFAULT 0, ext bigint, touched timestamptz);
CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, item_id bigint NOT NULL,
  at timestamptz NOT NULL DEFAULT clock_timestamp(), kind text NOT NULL);
CREATE TABLE tallies (client int PRIMARY KEY, n int NOT NULL, last timestamptz NOT NULL);
)sql";

class Exact : public TwoServers {
 protected:
  void SetUp() override {
    primary_ = std::make_unique<PgCluster>();
    target_ = std::make_unique<PgCluster>();
  }

  Pgshift& start(const std::string& more = "") {
    PgshiftOptions o;
    o.threads = 0;
    o.extra_config = mirror_config(*target_, 200) + admin_config() + more;
    proxy_ = std::make_unique<Pgshift>(*primary_, o);
    return *proxy_;
  }

  void both(const std::string& sql) const {
    primary_->sql(sql);
    target_->sql(sql);
  }

  std::string mismatches() const { return read_file(proxy_->config_file().parent_path() / "mismatches.jsonl"); }

  ShadowStatus drained(std::chrono::seconds timeout = 60s) {
    const std::size_t mark = log_mark(*proxy_);
    auto s = wait_status(*proxy_, mark, [](const ShadowStatus& st) { return st.pending == 0; }, timeout);
    if (!s) {
      ADD_FAILURE() << "the shadow queue did not drain; last status: " << last_status_line(*proxy_);
      return {};
    }
    return *s;
  }

  // For each column of `table`, how many rows (by `key`) have the same value on both
  // servers; every row and column must be identical.
  void expect_identical(const std::string& table, const std::vector<std::string>& columns,
                        const std::string& key = "id") {
    auto rows = [&](const PgCluster& c) {
      std::string select = "SELECT " + key;
      for (const std::string& col : columns) select += ", coalesce(" + col + "::text, '<null>')";
      std::map<std::string, std::vector<std::string>> out;
      std::istringstream in(c.sql(select + " FROM " + table + " ORDER BY " + key));
      for (std::string line; std::getline(in, line);) {
        std::vector<std::string> fields;
        std::size_t pos = 0;
        for (;;) {
          const std::size_t bar = line.find('|', pos);
          fields.push_back(line.substr(pos, bar == std::string::npos ? std::string::npos : bar - pos));
          if (bar == std::string::npos) break;
          pos = bar + 1;
        }
        const std::string k = fields.front();
        fields.erase(fields.begin());
        out[k] = std::move(fields);
      }
      return out;
    };
    const auto p = rows(*primary_), s = rows(*target_);
    EXPECT_EQ(p.size(), s.size()) << table << ": rows on the primary and on the shadow";
    std::size_t keys_on_both = 0;
    std::vector<std::size_t> same(columns.size(), 0);
    for (const auto& [k, values] : p) {
      auto it = s.find(k);
      if (it == s.end()) continue;
      ++keys_on_both;
      for (std::size_t i = 0; i < columns.size() && i < values.size() && i < it->second.size(); ++i)
        if (values[i] == it->second[i]) ++same[i];
    }
    std::cout << "[exact] " << table << ": " << p.size() << " rows on the primary, " << s.size()
              << " on the shadow; " << key << " on both: " << keys_on_both;
    for (std::size_t i = 0; i < columns.size(); ++i) std::cout << ", " << columns[i] << " identical: " << same[i];
    std::cout << "\n";
    EXPECT_EQ(keys_on_both, p.size()) << table;
    for (std::size_t i = 0; i < columns.size(); ++i)
      EXPECT_EQ(same[i], p.size()) << table << "." << columns[i] << " differs between the servers";
  }

};

// ---- 1. the volatile workload -------------------------------------------------------------

TEST_F(Exact, VolatileWorkloadEndsIdenticalAndClientsSeeWhatTheyWouldDirectly) {
  // What the clients see on a server of their own, without pgshift.
  std::string direct_out;
  {
    PgCluster direct;
    direct.sql(kVolatileSchema);
    RunOptions opts;
    opts.timeout = 180s;
    auto run = python_client("volatile_workload.py", direct.superuser(), {"run", "4", "100"}, opts);
    ASSERT_RUN_OK(run);
    direct_out = run.out;
  }
  both(kVolatileSchema);
  start();
  RunOptions opts;
  opts.timeout = 180s;
  auto run = python_client("volatile_workload.py", proxy_->conn(), {"run", "4", "100"}, opts);
  ASSERT_RUN_OK(run);
  EXPECT_EQ(run.out, direct_out) << "what the clients saw through pgshift differs from a direct run";

  const ShadowStatus status = drained();
  if (HasFailure()) return;
  expect_identical("items", {"uid", "created", "r", "client", "note", "counter", "ext", "touched"});
  expect_identical("events", {"item_id", "at", "kind"});
  expect_identical("tallies", {"n", "last"}, "client");
  EXPECT_EQ(primary_->sql("SELECT last_value FROM ext_seq"), target_->sql("SELECT last_value FROM ext_seq"))
      << "SELECT nextval() is replayed";
  EXPECT_GE(std::stoi(primary_->sql("SELECT count(*) FROM items")), 1900);

  EXPECT_EQ(mismatches(), "") << "the mismatch log has lines";
  EXPECT_EQ(status.mismatches, 0u) << status.line;
  EXPECT_EQ(status.dropped, 0u) << status.line;
  EXPECT_EQ(status.not_exact, 0u) << status.line;
  EXPECT_GT(status.captured, 2000u) << status.line;
  EXPECT_FALSE(status.diverged) << status.line;
  EXPECT_EQ(status.applied, status.committed) << status.line;
  std::cout << "[exact] final status: " << status.line << "\n";
  EXPECT_EQ(proxy_->stop(), "");
}

// ---- 2. the capture is invisible, message by message ---------------------------------------

// Bind of the unnamed statement to the unnamed portal, no parameters, with these
// result format codes.
std::string bind_with_formats(const std::vector<std::uint16_t>& formats) {
  std::string out;
  protocol::MessageWriter w(out);
  w.begin('B').cstring("").cstring("").u16(0).u16(0).u16(static_cast<std::uint16_t>(formats.size()));
  for (std::uint16_t f : formats) w.u16(f);
  w.end();
  return out;
}

// Every reply to `messages` (type and body), until `readys` ReadyForQuery came.
std::string exchange(RawClient& c, const std::string& messages, int readys) {
  EXPECT_TRUE(c.send(messages));
  std::string out;
  for (int seen = 0; seen < readys;) {
    auto m = c.read();
    if (!m) {
      out += "<closed>";
      break;
    }
    out += m->type;
    // An error's detail names the failing row, values made up by the server included.
    out += "[" + (m->type == 'E' ? error_fields(m->body)['C'] : m->body) + "]";
    if (m->type == 'Z') ++seen;
  }
  return out;
}

TEST_F(Exact, CaptureIsInvisibleToTheClient) {
  both(kVolatileSchema);
  start();
  // The same exchanges straight against the primary and through pgshift give the same
  // replies, byte for byte (the table is the same one, so are its OIDs).
  struct Case {
    std::string name;
    std::string messages;
    int readys = 1;
  };
  std::vector<Case> cases;
  auto add = [&](std::string name, std::string m, int readys = 1) { cases.push_back({std::move(name), std::move(m), readys}); };
  {
    std::string m;
    protocol::append_query(m, "INSERT INTO items (client, note) VALUES (9, 'simple')");
    add("simple INSERT without RETURNING", m);
  }
  {
    std::string m;
    protocol::append_query(m, "INSERT INTO items (client, note) VALUES (9, 'a'), (9, 'b') RETURNING note, client; "
                              "SELECT 1 AS one");
    add("simple INSERT RETURNING, then a SELECT", m);
  }
  {
    std::string m;
    protocol::append_parse(m, "", "INSERT INTO items (client, note) VALUES (9, 'extended')");
    protocol::append_describe(m, 'S', "");
    m += bind_with_formats({});
    protocol::append_describe(m, 'P', "");
    protocol::append_execute(m, "", 1);
    protocol::append_sync(m);
    add("extended INSERT without RETURNING, Describe and a row limit", m);
  }
  {
    std::string m;
    protocol::append_parse(m, "", "INSERT INTO items (client, note) VALUES (9, 'binary') RETURNING client, note");
    m += bind_with_formats({1, 0});  // a format per column: pgshift adds one for its own
    protocol::append_describe(m, 'P', "");
    protocol::append_execute(m, "", 0);
    protocol::append_sync(m);
    add("extended RETURNING with per-column formats", m);
  }
  {
    std::string m;
    protocol::append_parse(m, "", "INSERT INTO items (client, note) VALUES (9, 'binary all') RETURNING client");
    m += bind_with_formats({1});
    protocol::append_execute(m, "", 0);
    protocol::append_sync(m);
    add("extended RETURNING, binary for every column", m);
  }
  {
    std::string m;
    protocol::append_query(m, "BEGIN");
    protocol::append_parse(m, "", "INSERT INTO items (client, note) SELECT 9, 'limit ' || g FROM generate_series(1, 5) g "
                                  "RETURNING note");
    m += bind_with_formats({});
    protocol::append_execute(m, "", 2);
    protocol::append_execute(m, "", 2);
    protocol::append_execute(m, "", 2);
    protocol::append_execute(m, "", 2);
    protocol::append_sync(m);
    protocol::append_query(m, "COMMIT");
    add("a captured portal read in pieces", m, 3);
  }
  {
    std::string m;
    protocol::append_parse(m, "", "INSERT INTO items (client, note) SELECT 9, 'exact ' || g FROM generate_series(1, 2) g "
                                  "RETURNING note");
    m += bind_with_formats({});
    protocol::append_execute(m, "", 2);  // as many rows as there are: still PortalSuspended
    protocol::append_sync(m);
    add("a row limit of exactly the rows", m);
  }
  {
    std::string m;
    protocol::append_parse(m, "s1", "UPDATE items SET touched = now() WHERE note = $1 RETURNING note");
    protocol::append_describe(m, 'S', "s1");
    protocol::append_sync(m);
    protocol::append_bind(m, "", "s1", {"a"});
    protocol::append_execute(m, "", 0);
    protocol::append_sync(m);
    add("a named captured UPDATE, described then executed", m, 2);
  }
  {
    std::string m;
    protocol::append_query(m, "INSERT INTO items (client, note) VALUES (NULL, 'fails')");
    add("a captured statement that fails", m);
  }
  for (const Case& c : cases) {
    RawClient direct(primary_->port());
    direct.login();
    RawClient through(proxy_->port());
    through.login();
    const std::string want = exchange(direct, c.messages, c.readys);
    const std::string got = exchange(through, c.messages, c.readys);
    EXPECT_EQ(got, want) << c.name;
    direct.terminate();
    through.terminate();
  }
  const ShadowStatus status = drained();
  EXPECT_EQ(status.mismatches, 0u) << status.line << "\n" << mismatches();
  EXPECT_FALSE(status.diverged) << status.line;
  EXPECT_GT(status.captured, 0u) << status.line;
  // The shadow has the rows written through pgshift (the direct ones went to the primary
  // only), and the row with note 'a' of the direct run too: the UPDATE through pgshift
  // changed it, and the shadow got the row as the primary has it.
  EXPECT_EQ(target_->sql("SELECT count(*) FROM items WHERE note IN ('simple', 'a', 'b', 'extended', 'binary')"), "6");
  EXPECT_EQ(target_->sql("SELECT count(*) FROM items WHERE note LIKE 'limit %'"), "5");
  EXPECT_EQ(proxy_->stop(), "");
}

// ---- 3. divergence is never silent -----------------------------------------------------------

TEST_F(Exact, CommitThatFailsOnTheShadowMarksItDiverged) {
  both(kVolatileSchema);
  primary_->sql("CREATE TABLE only_here (id int PRIMARY KEY)");
  start();
  ASSERT_RUN_OK(psql_query(proxy_->conn(), "INSERT INTO items (client) VALUES (1)"));
  ASSERT_TRUE(wait_status(*proxy_, 0, [](const ShadowStatus& s) { return s.applied == 1; }, 10s));
  EXPECT_FALSE(statuses(proxy_->log()).back().diverged);

  ASSERT_RUN_OK(psql_script(proxy_->conn(), "BEGIN;\nINSERT INTO items (client) VALUES (2);\n"
                                            "INSERT INTO only_here VALUES (1);\nCOMMIT;\n",
                            true));
  auto diverged = wait_status(*proxy_, 0, [](const ShadowStatus& s) { return s.diverged; }, 10s);
  ASSERT_TRUE(diverged) << "a commit the shadow rolled back did not mark it diverged; " << last_status_line(*proxy_);
  EXPECT_TRUE(contains(diverged->line, "failed on the shadow")) << diverged->line;
  EXPECT_TRUE(contains(diverged->line, "42P01")) << diverged->line;
  const std::string log = proxy_->log();
  EXPECT_TRUE(contains(log, "warning shadow: a transaction that committed on the primary failed on the shadow: relation"));
  EXPECT_TRUE(contains(log, "only_here"));
  // The client never knew.
  EXPECT_EQ(primary_->sql("SELECT count(*) FROM only_here"), "1");
  EXPECT_EQ(proxy_->stop(), "");
}

// ---- 4. the catalog follows the schema --------------------------------------------------------

TEST_F(Exact, DdlThroughPgshiftIsSeenByTheNextStatement) {
  both(kVolatileSchema);
  start();
  // One session: each statement right after the DDL before it.
  auto r = psql(proxy_->conn(),
                {"-q", "-v", "ON_ERROR_STOP=1",
                 "-c", "INSERT INTO items (client) VALUES (1)",
                 "-c", "ALTER TABLE items ADD COLUMN added timestamptz DEFAULT clock_timestamp()",
                 "-c", "INSERT INTO items (client) VALUES (2)",
                 "-c", "ALTER TABLE items RENAME COLUMN note TO label",
                 "-c", "INSERT INTO items (client, label) VALUES (3, 'renamed')",
                 "-c", "ALTER TABLE items DROP COLUMN counter",
                 "-c", "INSERT INTO items (client) VALUES (4)",
                 "-c", "UPDATE items SET added = now() WHERE client = 1"});
  ASSERT_RUN_OK(r);
  const ShadowStatus status = drained();
  expect_identical("items", {"uid", "created", "r", "client", "label", "ext", "touched", "added"});
  EXPECT_EQ(status.mismatches, 0u) << status.line << "\n" << mismatches();
  // ADD COLUMN ... DEFAULT clock_timestamp() gives the row already there a value of its
  // own on each server: counted and logged (the UPDATE after it made them equal again).
  EXPECT_EQ(status.not_exact, 1u) << status.line;
  EXPECT_TRUE(contains(proxy_->log(), "ADD COLUMN with a default of clock_timestamp()"));
  EXPECT_FALSE(status.diverged) << status.line;
  EXPECT_EQ(proxy_->stop(), "");
}

TEST_F(Exact, DdlBehindPgshiftsBackIsSeenAfterARefresh) {
  both(kVolatileSchema);
  start("\n[rewrite]\ncatalog_refresh_ms = 500\n");
  ASSERT_RUN_OK(psql_query(proxy_->conn(), "SELECT count(*) FROM items"));  // the catalog is read now
  // Behind pgshift's back, on both servers (on an empty table: a row already there
  // would get a value of its own on each).
  both("ALTER TABLE items ADD COLUMN late float8 DEFAULT random()");
  std::this_thread::sleep_for(1500ms);  // catalog_refresh_ms
  ASSERT_RUN_OK(psql_query(proxy_->conn(), "INSERT INTO items (client) VALUES (2)"));
  // And REFRESH CATALOG, without waiting.
  both("DELETE FROM items; ALTER TABLE items ADD COLUMN later uuid DEFAULT gen_random_uuid()");
  auto refreshed = console("REFRESH CATALOG");
  ASSERT_RUN_OK(refreshed);
  EXPECT_TRUE(contains(refreshed.out, "primary|postgres|3|")) << refreshed.out;
  ASSERT_RUN_OK(psql_query(proxy_->conn(), "INSERT INTO items (client) VALUES (3)"));
  const ShadowStatus status = drained();
  expect_identical("items", {"uid", "created", "r", "client", "late", "later"});
  EXPECT_EQ(status.mismatches, 0u) << status.line << "\n" << mismatches();
  EXPECT_FALSE(status.diverged) << status.line;
  auto shadow = console("SHOW SHADOW");
  ASSERT_RUN_OK(shadow);
  EXPECT_TRUE(contains(shadow.out, "catalog primary/postgres|3 tables")) << shadow.out;
  EXPECT_TRUE(contains(shadow.out, "catalog shadow/postgres|3 tables")) << shadow.out;
  EXPECT_TRUE(contains(status.line, " catalog=")) << status.line;
  EXPECT_EQ(proxy_->stop(), "");
}

// ---- 5. what cannot be made exact is mirrored, counted and logged ------------------------------

TEST_F(Exact, WhatCannotBeMadeExactIsCountedAndLoggedOnce) {
  both(std::string(kVolatileSchema) +
       "CREATE TABLE nokey (a int, at timestamptz);\n"
       "CREATE TABLE audited (id int PRIMARY KEY, at timestamptz);\n"
       "CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.at = clock_timestamp(); "
       "RETURN NEW; END$$;\n"
       "CREATE TRIGGER stamp BEFORE INSERT ON audited FOR EACH ROW EXECUTE FUNCTION stamp();\n");
  start();
  for (int i = 0; i < 3; ++i) {
    ASSERT_RUN_OK(psql_query(proxy_->conn(), "INSERT INTO nokey VALUES (" + std::to_string(i) + ", now())"));
    ASSERT_RUN_OK(psql_query(proxy_->conn(), "UPDATE nokey SET at = now() WHERE a = " + std::to_string(i)));
    ASSERT_RUN_OK(psql_query(proxy_->conn(), "INSERT INTO audited VALUES (" + std::to_string(i) + ")"));
  }
  const ShadowStatus status = drained();
  EXPECT_EQ(status.not_exact, 6u) << "the UPDATE without a primary key and the INSERT with a trigger: " << status.line;
  EXPECT_EQ(status.captured, 3u) << "the INSERT into nokey needs no primary key: " << status.line;
  const std::string log = proxy_->log();
  EXPECT_EQ(count_occurrences(log, "shadow: not exact: statement"), 2u) << log;
  EXPECT_TRUE(contains(log, "which has no primary key"));
  EXPECT_TRUE(contains(log, "has triggers"));
  EXPECT_EQ(proxy_->stop(), "");
}

// Captured INSERTs give the shadow the primary's ids as explicit values; COPY is not
// exact and draws ids from the shadow's own sequence. Without the sequence moved
// past the captured ids, the COPY collided with them on the primary key and the
// shadow diverged (what scripts/demo does with its orders).
TEST_F(Exact, CopyAfterCapturedInsertsTakesTheSameIds) {
  both("CREATE TABLE orders (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, item text NOT NULL);\n"
       "CREATE TABLE notes (id serial PRIMARY KEY, note text NOT NULL);\n");
  start();
  const std::string script =
      "INSERT INTO orders (item) VALUES ('keyboard'), ('monitor');\n"
      "BEGIN; INSERT INTO orders (item) VALUES ('mouse'); INSERT INTO notes (note) VALUES ('one'); COMMIT;\n"
      "COPY orders (item) FROM STDIN;\ncable 1\ncable 2\n\\.\n"
      "COPY notes (note) FROM STDIN;\ntwo\nthree\n\\.\n"
      "INSERT INTO orders (item) VALUES ('laptop');\n";
  ASSERT_RUN_OK(psql_script(proxy_->conn(), script, true));
  const ShadowStatus status = drained();
  if (HasFailure()) return;
  expect_identical("orders", {"item"});
  expect_identical("notes", {"note"});
  EXPECT_EQ(target_->sql("SELECT max(id) FROM orders"), "6");
  EXPECT_FALSE(status.diverged) << status.line;
  EXPECT_EQ(status.applied, status.committed) << status.line;
  EXPECT_EQ(status.captured, 4u) << "the four INSERTs: " << status.line;
  EXPECT_EQ(proxy_->stop(), "");
}

}  // namespace
}  // namespace pgshift::it
