// `pgshift verify`, end to end: a primary and a target cluster, loaded directly
// (pgbench -i and a table of awkward types with a composite key, NULLs and a
// renamed column), then `pgshift verify --json` run as a process and its report
// read back with Python's json module. Also live: pgbench through pgshift
// mirroring to the target while verify runs, and a 5-million-row table
// verified in bounded memory.
#include <sys/types.h>

#include <chrono>
#include <future>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace pgshift::it {
namespace {

using namespace std::chrono_literals;

// A table of awkward types. The target gets the same rows, but printed
// differently where the values are equal (numeric scale, time zones, JSON
// spacing, float negative zero) and with `contact` renamed to `contact_email`.
constexpr const char* kMixedTable = R"sql(
CREATE TABLE mixed (region text, id int, amount numeric, price numeric(12,3), f float8, r real,
                    at timestamptz, doc jsonb, raw bytea, tags text[], nums int[], note text, %CONTACT% text,
                    PRIMARY KEY (region, id));
INSERT INTO mixed
SELECT CASE WHEN g % 3 = 0 THEN 'eu' WHEN g % 3 = 1 THEN 'us' ELSE 'asia' END, g,
       CASE WHEN g % 7 = 0 THEN NULL ELSE %AMOUNT% END, g * 1.25, CASE WHEN g = 1 THEN %ZERO% ELSE g / 3.0 END,
       g / 7.0, %AT%, %DOC%,
       CASE WHEN g % 5 = 0 THEN NULL ELSE decode(md5(g::text), 'hex') END,
       ARRAY['t' || g % 4, NULL], ARRAY[g, g + 1], CASE WHEN g % 11 = 0 THEN NULL ELSE 'note ' || g END,
       'user' || g || '@example.com'
FROM generate_series(1, 3000) g;
)sql";

std::string replace_all(std::string s, const std::map<std::string, std::string>& with) {
  for (const auto& [from, to] : with)
    for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
      s.replace(at, from.size(), to);
  return s;
}

std::string mixed_on_primary() {
  return replace_all(kMixedTable, {{"%CONTACT%", "contact"},
                                   {"%AMOUNT%", "(g * 0.5)::numeric(10,2)::numeric"},  // 0.50, 1.00, 1.50...
                                   {"%ZERO%", "'-0'::float8"},
                                   {"%AT%", "'2024-03-01 12:00:00+00'::timestamptz + g * interval '1 minute'"},
                                   {"%DOC%", "jsonb_build_object('g', g, 'even', g % 2 = 0, 'list', ARRAY[1, 2])"}});
}

std::string mixed_on_target() {
  return replace_all(kMixedTable,
                     {{"%CONTACT%", "contact_email"},
                      {"%AMOUNT%", "trim_scale(g * 0.5)"},  // 0.5, 1, 1.5...
                      {"%ZERO%", "0::float8"},
                      {"%AT%", "('2024-03-01 14:00:00+02'::timestamptz + g * interval '1 minute')"},
                      {"%DOC%", "('{ \"list\": [1,2], \"even\": ' || (g % 2 = 0) || ', \"g\": ' || g || '}')::jsonb"}});
}

// The target has the renamed column; the rule says so.
constexpr const char* kRenameRule =
    "[[rename]]\ntable = \"mixed\"\nfrom = \"contact\"\nto = \"contact_email\"\nrenamed_on = \"shadow\"\n";

// ---- the report, read with Python ---------------------------------------------------------

struct TableFigures {
  std::string status;
  std::uint64_t rows = 0, matching = 0, mismatched = 0, missing = 0, extra = 0, in_flight = 0;
  std::vector<std::string> columns;      // column_differences
  std::vector<std::string> differences;  // described
};

struct Verdict {
  RunResult run;
  std::string result;
  std::map<std::string, TableFigures> tables;
  std::string describe() const { return run.describe(); }
};

Verdict parse_report(RunResult r) {
  static const char* kFlatten = R"py(
import json, sys
report = json.load(sys.stdin)
print("result\t" + report["result"])
for t in report["tables"]:
    name = t["table"]
    for key in ("status", "rows", "matching", "mismatched", "missing_on_target", "extra_on_target", "in_flight"):
        print("\t".join([name, key, str(t[key])]))
    for c in t["column_differences"]:
        print("\t".join([name, "column", c]))
    for d in t["differences"]:
        print("\t".join([name, "difference", d["text"]]))
)py";
  Verdict v;
  RunOptions opts;
  opts.input = r.out;
  const RunResult parsed = run({"/usr/bin/python3", "-c", kFlatten}, opts);
  v.run = std::move(r);
  if (!parsed.ok()) {
    ADD_FAILURE() << "verify's report is not the JSON expected:\n" << parsed.describe() << "\n" << v.run.describe();
    return v;
  }
  std::istringstream in(parsed.out);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> f;
    std::istringstream cells(line);
    for (std::string cell; std::getline(cells, cell, '\t');) f.push_back(cell);
    if (f.size() == 2 && f[0] == "result") v.result = f[1];
    if (f.size() != 3) continue;
    TableFigures& t = v.tables[f[0]];
    auto number = [&] { return std::strtoull(f[2].c_str(), nullptr, 10); };
    if (f[1] == "status") t.status = f[2];
    else if (f[1] == "rows") t.rows = number();
    else if (f[1] == "matching") t.matching = number();
    else if (f[1] == "mismatched") t.mismatched = number();
    else if (f[1] == "missing_on_target") t.missing = number();
    else if (f[1] == "extra_on_target") t.extra = number();
    else if (f[1] == "in_flight") t.in_flight = number();
    else if (f[1] == "column") t.columns.push_back(f[2]);
    else if (f[1] == "difference") t.differences.push_back(f[2]);
  }
  return v;
}

class Verify : public ::testing::Test {
 protected:
  void SetUp() override {
    primary_ = std::make_unique<PgCluster>();
    target_ = std::make_unique<PgCluster>();
  }
  void TearDown() override {
    if (!HasFailure()) return;
    for (const auto& [name, c] : {std::pair{"primary", primary_.get()}, std::pair{"target", target_.get()}})
      if (c) std::cerr << "---- " << name << " PostgreSQL log ----\n" << c->log_tail() << "\n----\n";
  }

  // [shadow] (the target) with its login, the noise rule and the rename rule.
  std::string shadow_section() const {
    return "[shadow]\nhost = \"127.0.0.1\"\nport = " + std::to_string(target_->port()) +
           "\nmismatch_log = \"mismatches.jsonl\"\nstatus_interval_ms = 1000\n\n[[shadow.login]]\nclient_user = \"*\"\n\n"
           "[shadow.compare]\nignore_columns = [\"pgbench_history.mtime\"]\n\n" + kRenameRule;
  }

  fs::path write_config() {
    const fs::path file = dir_.path() / "verify.toml";
    write_file(file, "[primary]\nhost = \"127.0.0.1\"\nport = " + std::to_string(primary_->port()) + "\n\n" +
                         shadow_section());
    return file;
  }

  static RunResult verify(const fs::path& config, const std::vector<std::string>& args = {}) {
    std::vector<std::string> argv{pgshift_binary().string(), "verify", "--config", config.string(), "--json",
                                  "--progress", "lines"};
    argv.insert(argv.end(), args.begin(), args.end());
    RunOptions opts;
    opts.timeout = 600s;
    return run(argv, opts);
  }

  void pgbench_init_both(int scale) const {
    for (const PgCluster* c : {primary_.get(), target_.get()}) {
      RunOptions opts;
      opts.timeout = 600s;
      auto r = pgbench(c->superuser(), {"-i", "-s", std::to_string(scale), "-q"}, opts);
      ASSERT_RUN_OK(r);
    }
  }

  TempDir dir_{"pgshift-it-verify"};
  std::unique_ptr<PgCluster> primary_;
  std::unique_ptr<PgCluster> target_;
};

std::uint64_t count(const PgCluster& c, const std::string& table) {
  return std::strtoull(c.sql("SELECT count(*) FROM " + table).c_str(), nullptr, 10);
}

// ---- 1. identical databases ------------------------------------------------------------------

TEST_F(Verify, IdenticalDatabasesMatchWhateverTheyPrint) {
  pgbench_init_both(10);
  if (HasFatalFailure()) return;
  primary_->sql(mixed_on_primary());
  target_->sql(mixed_on_target());
  // The two really print differently: the comparison must decode, not compare text.
  ASSERT_NE(primary_->sql("SELECT amount::text || at::text || f::text FROM mixed WHERE id = 1"),
            target_->sql("SELECT amount::text || at::text || f::text FROM mixed WHERE id = 1"));

  Verdict v = parse_report(verify(write_config()));
  EXPECT_EQ(v.run.exit_code, 0) << v.describe();
  EXPECT_EQ(v.result, "match") << v.describe();
  for (const char* table : {"pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history", "mixed"}) {
    const std::string name = std::string("public.") + table;
    ASSERT_TRUE(v.tables.count(name)) << name << "\n" << v.describe();
    const TableFigures& t = v.tables.at(name);
    const std::uint64_t rows = count(*primary_, table);
    EXPECT_EQ(t.status, "match") << name;
    EXPECT_EQ(t.rows, rows) << name;
    EXPECT_EQ(t.matching, rows) << name;
    EXPECT_EQ(t.mismatched + t.missing + t.extra, 0u) << name;
    EXPECT_TRUE(t.columns.empty()) << name << ": " << t.columns.front();
  }
  EXPECT_EQ(v.tables.at("public.pgbench_accounts").rows, 1'000'000u);
  // Plain progress lines on standard error (not a terminal).
  EXPECT_TRUE(contains(v.run.err, "public.pgbench_accounts: match, 1000000 rows"));
  std::cout << "[verify] identical: " << tail_lines(v.run.err, 6) << "\n";

  // The human summary, as the README shows it.
  RunOptions opts;
  const RunResult text = run({pgshift_binary().string(), "verify", "--config", write_config().string(), "--progress",
                              "none", "--static"});
  EXPECT_EQ(text.exit_code, 0) << text.describe();
  EXPECT_TRUE(contains(text.out, "OK: 1,003,110 rows in 5 table(s)"));
  std::cout << text.out;
}

// ---- 2. differences ----------------------------------------------------------------------------

TEST_F(Verify, EachDifferenceIsReportedPrecisely) {
  pgbench_init_both(1);
  if (HasFatalFailure()) return;
  primary_->sql(mixed_on_primary());
  target_->sql(mixed_on_target());
  primary_->sql("CREATE TABLE lonely (id int PRIMARY KEY); INSERT INTO lonely VALUES (1)");
  target_->sql("UPDATE mixed SET note = 'edited' WHERE region = 'eu' AND id = 6;"
               "DELETE FROM pgbench_accounts WHERE aid = 77;"
               "INSERT INTO pgbench_accounts VALUES (100001, 1, 0, '');"
               "ALTER TABLE pgbench_tellers ALTER COLUMN tbalance TYPE bigint;"
               "UPDATE pgbench_history SET delta = 1;"  // empty: no difference
               "INSERT INTO pgbench_history VALUES (1, 1, 1, 5, now(), 'x')");

  Verdict v = parse_report(verify(write_config(), {"--static"}));
  EXPECT_EQ(v.run.exit_code, 1) << v.describe();
  EXPECT_EQ(v.result, "differs");
  const TableFigures& accounts = v.tables["public.pgbench_accounts"];
  EXPECT_EQ(accounts.status, "differs");
  EXPECT_EQ(accounts.rows, 100'001u);
  EXPECT_EQ(accounts.matching, 99'999u);
  EXPECT_EQ(accounts.mismatched, 0u);
  EXPECT_EQ(accounts.missing, 1u);
  EXPECT_EQ(accounts.extra, 1u);
  EXPECT_EQ(accounts.differences,
            (std::vector<std::string>{"aid=77 missing on the target", "aid=100001 extra on the target"}));
  const TableFigures& mixed = v.tables["public.mixed"];
  EXPECT_EQ(mixed.status, "differs");
  EXPECT_EQ(mixed.mismatched, 1u);
  EXPECT_EQ(mixed.matching, 2999u);
  EXPECT_EQ(mixed.differences,
            std::vector<std::string>{"(region, id)=(eu, 6) changed (note: note 6 on the primary, edited on the target)"});
  EXPECT_EQ(v.tables["public.lonely"].status, "only on the primary");
  const TableFigures& tellers = v.tables["public.pgbench_tellers"];
  EXPECT_EQ(tellers.status, "differs");
  EXPECT_EQ(tellers.columns,
            std::vector<std::string>{"column tbalance: type integer on the primary, bigint on the target"});
  EXPECT_EQ(tellers.matching, 10u);  // the values themselves are equal
  EXPECT_EQ(v.tables["public.pgbench_history"].status, "differs");  // keyless: full-table hash
  EXPECT_EQ(v.tables["public.pgbench_branches"].status, "match");

  // The same, as a person reads it.
  const RunResult text = run({pgshift_binary().string(), "verify", "--config", write_config().string(), "--progress",
                              "none", "--static"});
  EXPECT_EQ(text.exit_code, 1);
  std::cout << text.out;

  // Exit 2 when verify cannot run: a table nobody has, and a server that is down.
  const RunResult unknown = verify(write_config(), {"--tables", "nosuch"});
  EXPECT_EQ(unknown.exit_code, 2) << unknown.describe();
  EXPECT_TRUE(contains(unknown.out, "no such table on either server: public.nosuch"));
  target_->stop();
  const RunResult down = verify(write_config());
  EXPECT_EQ(down.exit_code, 2) << down.describe();
  EXPECT_TRUE(contains(down.out, "target server"));
}

// ---- 3. live ---------------------------------------------------------------------------------------

TEST_F(Verify, LiveTrafficGivesNoFalseMismatchAndAHandEditIsFound) {
  pgbench_init_both(10);
  if (HasFatalFailure()) return;
  PgshiftOptions o;
  o.threads = 0;
  o.extra_config = shadow_section();
  Pgshift proxy(*primary_, o);

  // tpcb-like through pgshift until both verify runs are done (at most 150 s);
  // every write reaches the target later.
  RunOptions opts;
  opts.timeout = 300s;
  BackgroundPgbench bench(proxy.conn(), {"-c", "4", "-j", "2", "-T", "150", "-R", "400", "-P", "10"}, opts);
  std::this_thread::sleep_for(5s);

  // The keyed tables while they change: nothing differs.
  Verdict clean = parse_report(
      verify(proxy.config_file(), {"--tables", "pgbench_accounts,pgbench_branches,pgbench_tellers", "--jobs", "2"}));
  EXPECT_EQ(clean.run.exit_code, 0) << clean.describe();
  std::uint64_t in_flight = 0;
  for (const auto& [name, t] : clean.tables) {
    EXPECT_EQ(t.status, "match") << name << "\n" << clean.describe();
    EXPECT_EQ(t.mismatched + t.missing + t.extra, 0u) << name;
    in_flight += t.in_flight;
  }
  std::cout << "[verify] live, keyed tables: " << clean.result << ", rows that matched on re-check: " << in_flight
            << "\n";

  // Every table, with one row changed by hand on the target (bypassing pgshift).
  target_->sql("UPDATE pgbench_accounts SET filler = 'changed by hand' WHERE aid = 424242");
  Verdict v = parse_report(verify(proxy.config_file()));
  EXPECT_EQ(v.run.exit_code, 1) << v.describe();
  const TableFigures& accounts = v.tables["public.pgbench_accounts"];
  EXPECT_EQ(accounts.mismatched, 1u) << v.describe();
  EXPECT_EQ(accounts.missing + accounts.extra, 0u) << v.describe();
  ASSERT_EQ(accounts.differences.size(), 1u) << v.describe();
  EXPECT_TRUE(contains(accounts.differences[0], "aid=424242 changed (filler: "));
  EXPECT_TRUE(contains(accounts.differences[0], "changed by hand"));
  for (const char* table : {"public.pgbench_branches", "public.pgbench_tellers"})
    EXPECT_EQ(v.tables[table].status, "match") << table << "\n" << v.describe();
  // pgbench_history has no key and grows all the time: never called different
  // row by row, only "changing" (its full-table hash never settled) or a match.
  const TableFigures& history = v.tables["public.pgbench_history"];
  EXPECT_TRUE(history.status == "changing" || history.status == "match") << history.status;
  EXPECT_EQ(history.mismatched + history.missing + history.extra, 0u);
  std::cout << "[verify] live, every table: accounts " << accounts.differences[0] << "; history " << history.status
            << "\n";

  const RunResult b = bench.finish();
  EXPECT_TRUE(pgbench_clean(b));
  EXPECT_EQ(proxy.stop(), "");
}

// ---- 4. a large table in bounded memory ---------------------------------------------------------

TEST_F(Verify, FiveMillionRowsInBoundedMemory) {
  constexpr const char* kBig =
      "CREATE TABLE big (id bigint PRIMARY KEY, v text, n numeric);"
      "INSERT INTO big SELECT g, md5(g::text), g / 3.0 FROM generate_series(1, 5000000) g;"
      "VACUUM ANALYZE big";
  auto other = std::async(std::launch::async, [&] { target_->sql(kBig); });
  primary_->sql(kBig);
  other.get();
  target_->sql("UPDATE big SET v = 'x' WHERE id = 4999999");

  // VmHWM of the verify process, read from /proc while it runs, and its
  // maximum RSS from wait4() once it ends.
  static const char* kMeasure = R"py(
import os, subprocess, sys, time
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
hwm = 0
out = b""
os.set_blocking(p.stdout.fileno(), False)
while p.poll() is None:
    try:
        with open(f"/proc/{p.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    hwm = max(hwm, int(line.split()[1]))
    except OSError:
        pass
    chunk = p.stdout.read()
    if chunk:
        out += chunk
    time.sleep(0.05)
rest = p.stdout.read()
out += rest or b""
sys.stdout.write(out.decode())
print(f"VmHWM_kB={hwm} exit={p.returncode}")
)py";
  RunOptions opts;
  opts.timeout = 600s;
  const auto began = std::chrono::steady_clock::now();
  const RunResult r = run({"/usr/bin/python3", "-c", kMeasure, pgshift_binary().string(), "verify", "--config",
                           write_config().string(), "--tables", "big", "--progress", "none"},
                          opts);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  ASSERT_RUN_OK(r);
  EXPECT_TRUE(contains(r.out, "exit=1"));
  EXPECT_TRUE(contains(r.out, "id=4999999 changed (v: "));
  const auto at = r.out.find("VmHWM_kB=");
  ASSERT_NE(at, std::string::npos) << r.describe();
  const std::uint64_t hwm_kb = std::strtoull(r.out.c_str() + at + 9, nullptr, 10);
  EXPECT_GT(hwm_kb, 0u);
  EXPECT_LT(hwm_kb, 100u * 1024) << "VmHWM " << hwm_kb << " kB";
  std::cout << "[verify] 5,000,000 rows: VmHWM " << hwm_kb / 1024.0 << " MiB, " << seconds << " s ("
            << 5'000'000 / seconds << " rows/s)\n";
}


// ---- 5. the admin console and the cutover's guardrail -------------------------------------------

TEST_F(Verify, ConsoleRunsItInTheBackgroundAndTheCutoverRequiresIt) {
  pgbench_init_both(1);
  if (HasFatalFailure()) return;
  PgshiftOptions o;
  o.threads = 0;
  o.extra_config = "[[primary.login]]\nclient_user = \"*\"\n\n" + shadow_section() +
                   "\n[admin]\npassword = \"verify-secret\"\n\n[cutover]\nstate_file = \"" +
                   (dir_.path() / "state.json").string() + "\"\nrequire_verify_within_s = 600\n";
  Pgshift proxy(*primary_, o);
  ConnParams admin = proxy.conn("pgshift");
  admin.dbname = "pgshift";
  admin.password = "verify-secret";
  auto console = [&](const std::string& command) {
    return psql(admin, {"-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", command});
  };
  auto guardrail = [&] {
    const RunResult dry = console("CUTOVER DRY RUN");
    EXPECT_RUN_OK(dry);
    for (std::istringstream in(dry.out); !in.eof();) {
      std::string line;
      std::getline(in, line);
      if (line.rfind("clean VERIFY within 600 s|", 0) == 0) return line;
    }
    return std::string("(no verify guardrail in: " + dry.out + ")");
  };
  auto wait_done = [&] {
    for (int i = 0; i < 300; ++i) {
      const RunResult r = console("SHOW VERIFY");
      if (r.out.rfind("(run)|running", 0) != 0) return r;
      std::this_thread::sleep_for(100ms);
    }
    return console("SHOW VERIFY");
  };

  EXPECT_TRUE(contains(console("SHOW VERIFY").out, "(run)|never run"));
  EXPECT_TRUE(contains(guardrail(), "|none|finished clean|FAILS"));

  target_->sql("DELETE FROM pgbench_accounts WHERE aid = 5");
  ASSERT_RUN_OK(console("VERIFY pgbench_accounts, pgbench_branches"));
  const RunResult again = console("VERIFY");  // one at a time
  EXPECT_FALSE(again.ok());
  EXPECT_TRUE(contains(again.err, "a verify is already running"));
  RunResult shown = wait_done();
  EXPECT_TRUE(contains(shown.out, "(run)|differs|100001|100000|0|1|0|"));
  EXPECT_TRUE(contains(shown.out, "public.pgbench_accounts|differs|100000|99999|0|1|0|"));
  EXPECT_TRUE(contains(shown.out, "aid=5 missing on the target"));
  EXPECT_TRUE(contains(shown.out, "public.pgbench_branches|match|1|1|0|0|0|"));
  EXPECT_TRUE(contains(guardrail(), "|differs, finished "));
  EXPECT_TRUE(contains(guardrail(), "|FAILS"));
  const RunResult refused = console("CUTOVER");
  EXPECT_FALSE(refused.ok());
  EXPECT_TRUE(contains(refused.err, "guardrail failed: clean VERIFY within 600 s"));

  primary_->sql("DELETE FROM pgbench_accounts WHERE aid = 5");
  ASSERT_RUN_OK(console("VERIFY"));
  shown = wait_done();
  EXPECT_TRUE(contains(shown.out, "(run)|match|"));
  EXPECT_TRUE(contains(guardrail(), "|match, finished "));
  EXPECT_TRUE(contains(guardrail(), "|ok"));
  std::cout << "[verify] SHOW VERIFY:\n" << shown.out << "[verify] guardrail: " << guardrail() << "\n";
  EXPECT_EQ(proxy.stop(), "");
}

}  // namespace
}  // namespace pgshift::it
