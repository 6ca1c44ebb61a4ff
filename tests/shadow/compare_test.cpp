// ResultCollector and compare(): backend messages built by hand (RowDescription,
// DataRow, CommandComplete) and with protocol/builder.hpp (ErrorResponse).
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "protocol/builder.hpp"
#include "protocol/frame.hpp"
#include "shadow/compare.hpp"

namespace pgshift::shadow {
namespace {

using protocol::MessageWriter;
using Value = std::optional<std::string>;
using Row = std::vector<Value>;

constexpr std::uint32_t int4 = 23, int8 = 20, text = 25, numeric = 1700, timestamptz = 1184, jsonb = 3802;

struct Col {
  std::string name;
  std::uint32_t type = text;
  std::uint32_t table = 0;
  std::int16_t format = 0;
};

// ---- message builders ----

void row_description(std::string& out, const std::vector<Col>& cols) {
  MessageWriter w(out);
  w.begin('T').u16(static_cast<std::uint16_t>(cols.size()));
  std::uint16_t attnum = 1;
  for (const Col& c : cols) {
    w.cstring(c.name).u32(c.table).u16(c.table ? attnum++ : 0).u32(c.type).u16(0xffff).u32(0xffffffff);
    w.u16(static_cast<std::uint16_t>(c.format));
  }
  w.end();
}

void data_row(std::string& out, const Row& row) {
  MessageWriter w(out);
  w.begin('D').u16(static_cast<std::uint16_t>(row.size()));
  for (const Value& v : row) {
    if (!v) {
      w.u32(0xffffffff);
    } else {
      w.u32(static_cast<std::uint32_t>(v->size())).raw(*v);
    }
  }
  w.end();
}

void command_complete(std::string& out, std::string_view tag) { MessageWriter(out).begin('C').cstring(tag).end(); }

std::string select(const std::vector<Col>& cols, const std::vector<Row>& rows) {
  std::string s;
  row_description(s, cols);
  for (const Row& r : rows) data_row(s, r);
  command_complete(s, "SELECT " + std::to_string(rows.size()));
  return s;
}

std::string write(std::string_view tag) {
  std::string s;
  command_complete(s, tag);
  return s;
}

std::string error(std::string_view sqlstate, std::string_view message) {
  std::string s;
  protocol::append_error_response(s, {"ERROR", sqlstate, message});
  return s;
}

std::vector<protocol::Frame> frames(const std::string& stream) {
  std::vector<protocol::Frame> out;
  std::string_view rest = stream;
  while (!rest.empty()) {
    const auto r = protocol::parse_frame(rest, protocol::Direction::backend, protocol::Limits{});
    EXPECT_EQ(r.status, protocol::ParseStatus::complete);
    if (r.status != protocol::ParseStatus::complete) break;
    out.push_back(r.frame);
    rest.remove_prefix(r.frame.bytes.size());
  }
  return out;
}

Outcome collect(const std::string& stream, const CompareRules& rules = {}, TableNames tables = {}) {
  ResultCollector c(rules, std::move(tables));
  const auto fs = frames(stream);
  for (std::size_t i = 0; i < fs.size(); ++i) {
    const auto expected = i + 1 == fs.size() ? ResultCollector::Feed::done : ResultCollector::Feed::more;
    EXPECT_EQ(c.feed(fs[i]), expected) << "message " << i << " '" << fs[i].type << "'";
  }
  return c.take();
}

Comparison run(const std::string& primary, const std::string& shadow, bool ordered, const CompareRules& rules = {},
               TableNames primary_tables = {}, TableNames shadow_tables = {}) {
  return compare(collect(primary, rules, std::move(primary_tables)), collect(shadow, rules, std::move(shadow_tables)),
                 ordered, rules);
}

const std::vector<Col> id_name = {{"id", int4}, {"name", text}};

// ---- the collector ----

TEST(Collector, RowDescription) {
  std::string s;
  row_description(s, {{"id", int8, 16384}, {"doc", jsonb, 0, 1}});
  std::vector<Column> cols;
  ASSERT_TRUE(parse_row_description(frames(s)[0].body, cols));
  ASSERT_EQ(cols.size(), 2u);
  EXPECT_EQ(cols[0].name, "id");
  EXPECT_EQ(cols[0].table_oid, 16384u);
  EXPECT_EQ(cols[0].attnum, 1);
  EXPECT_EQ(cols[0].type_oid, int8);
  EXPECT_EQ(cols[1].format, 1);
  EXPECT_FALSE(parse_row_description(frames(s)[0].body.substr(0, 10), cols));
}

TEST(Collector, SelectOutcome) {
  const Outcome o = collect(select(id_name, {{"1", "a'b"}, {"2", std::nullopt}}));
  EXPECT_TRUE(o.complete);
  EXPECT_EQ(o.tag, "SELECT 2");
  EXPECT_EQ(o.rows, 2u);
  EXPECT_FALSE(o.error);
  EXPECT_EQ(o.columns.size(), 2u);
  EXPECT_EQ(o.row_digests.size(), 2u);
  EXPECT_NE(o.row_digests[0], o.row_digests[1]);
  EXPECT_EQ(o.sample_rows, (std::vector<std::string>{"(id=1, name='a''b')", "(id=2, name=NULL)"}));
}

TEST(Collector, KeepsOnlyMaxKeptRows) {
  CompareRules rules;
  rules.max_kept_rows = 3;
  std::vector<Row> rows;
  for (int i = 0; i < 100; ++i) rows.push_back({std::to_string(i), "x"});
  const Outcome o = collect(select(id_name, rows), rules);
  EXPECT_EQ(o.row_digests.size(), 100u);
  EXPECT_EQ(o.sample_rows.size(), 3u);
}

TEST(Collector, BinaryValuesRenderAsHex) {
  const Outcome o = collect(select({{"b", int4, 0, 1}}, {{std::string("\x00\x00\x01\xff", 4)}}));
  EXPECT_EQ(o.sample_rows, std::vector<std::string>{"(b='\\x000001ff')"});
}

TEST(Collector, ErrorAndEmptyQuery) {
  std::string s;
  data_row(s, {"1"});
  s += error("22012", "division by zero");
  const Outcome o = collect(s);
  ASSERT_TRUE(o.error);
  EXPECT_EQ(o.error->sqlstate, "22012");
  EXPECT_EQ(o.error->message, "division by zero");
  EXPECT_EQ(o.rows, 1u);

  std::string empty;
  MessageWriter(empty).begin('I').end();
  const Outcome e = collect(empty);
  EXPECT_TRUE(e.complete);
  EXPECT_EQ(e.tag, "");
}

TEST(Collector, SkipsMessagesThatAreNotResults) {
  std::string s;
  MessageWriter(s).begin('1').end();  // ParseComplete
  MessageWriter(s).begin('2').end();  // BindComplete
  protocol::append_notice_response(s, {"NOTICE", "00000", "hello"});
  s += select(id_name, {{"1", "a"}});
  const auto fs = frames(s);
  const CompareRules rules;
  ResultCollector c(rules);
  for (std::size_t i = 0; i + 1 < fs.size(); ++i) EXPECT_EQ(c.feed(fs[i]), ResultCollector::Feed::more);
  EXPECT_EQ(c.feed(fs.back()), ResultCollector::Feed::done);
  EXPECT_EQ(c.outcome().row_digests.size(), 1u);
  // After the end: ReadyForQuery is harmless, another row is not.
  std::string z;
  protocol::append_ready_for_query(z, 'I');
  EXPECT_EQ(c.feed(frames(z)[0]), ResultCollector::Feed::done);
  std::string d;
  data_row(d, {"2", "b"});
  EXPECT_EQ(c.feed(frames(d)[0]), ResultCollector::Feed::bad);
}

TEST(Collector, MalformedRowsAreBad) {
  const CompareRules rules;
  std::string s;
  row_description(s, id_name);
  data_row(s, {"1"});  // one value for two columns
  auto fs = frames(s);
  ResultCollector c(rules);
  EXPECT_EQ(c.feed(fs[0]), ResultCollector::Feed::more);
  EXPECT_EQ(c.feed(fs[1]), ResultCollector::Feed::bad);

  std::string t;
  data_row(t, {"12345"});
  protocol::Frame truncated = frames(t)[0];
  truncated.body = truncated.body.substr(0, truncated.body.size() - 1);
  ResultCollector c2(rules);
  EXPECT_EQ(c2.feed(truncated), ResultCollector::Feed::bad);
}

TEST(Collector, DescribeFromAnEarlierMessage) {
  // Extended protocol: the RowDescription answered Describe; Execute sends rows only.
  std::string t, rows;
  row_description(t, {{"n", numeric}});
  data_row(rows, {"1.50"});
  command_complete(rows, "SELECT 1");
  const CompareRules rules;
  ResultCollector c(rules);
  ASSERT_TRUE(c.describe(frames(t)[0].body));
  for (const auto& f : frames(rows)) c.feed(f);
  const Outcome o = c.take();
  EXPECT_TRUE(compare(o, collect(select({{"n", numeric}}, {{"1.5"}})), true, rules).match);
}

// ---- comparison ----

TEST(Compare, MultisetIgnoresOrderSequenceDoesNot) {
  const std::string p = select(id_name, {{"1", "a"}, {"2", "b"}, {"3", "c"}});
  const std::string s = select(id_name, {{"3", "c"}, {"1", "a"}, {"2", "b"}});
  EXPECT_TRUE(run(p, s, false).match);
  const Comparison c = run(p, s, true);
  EXPECT_FALSE(c.match);
  EXPECT_EQ(c.reason, "rows");
  EXPECT_EQ(c.primary_row, "#1 (id=1, name='a')");
  EXPECT_EQ(c.shadow_row, "#1 (id=3, name='c')");
}

TEST(Compare, MultisetReportsFirstUnmatchedRowOfEachSide) {
  const std::string p = select(id_name, {{"1", "a"}, {"2", "b"}, {"3", "c"}});
  const std::string s = select(id_name, {{"3", "c"}, {"1", "a"}, {"2", "x"}});
  const Comparison c = run(p, s, false);
  EXPECT_EQ(c.reason, "rows");
  EXPECT_EQ(c.primary_row, "#2 (id=2, name='b')");
  EXPECT_EQ(c.shadow_row, "#3 (id=2, name='x')");
}

TEST(Compare, MultisetCountsDuplicates) {
  const std::string p = select(id_name, {{"1", "a"}, {"1", "a"}, {"2", "b"}});
  const std::string s = select(id_name, {{"1", "a"}, {"2", "b"}, {"2", "b"}});
  const Comparison c = run(p, s, false);
  EXPECT_EQ(c.reason, "rows");
  EXPECT_EQ(c.primary_row, "#2 (id=1, name='a')");
  EXPECT_EQ(c.shadow_row, "#3 (id=2, name='b')");
}

TEST(Compare, MissingRowHasNoCounterpart) {
  const std::string p = select(id_name, {{"1", "a"}, {"2", "b"}});
  const std::string s = select(id_name, {{"1", "a"}});
  for (bool ordered : {true, false}) {
    const Comparison c = run(p, s, ordered);
    EXPECT_EQ(c.reason, "rows");
    EXPECT_EQ(c.primary_row, "#2 (id=2, name='b')");
    EXPECT_FALSE(c.shadow_row);
  }
}

TEST(Compare, RowsPastTheKeptOnesAreNamedByNumber) {
  CompareRules rules;
  rules.max_kept_rows = 2;
  std::vector<Row> a, b;
  for (int i = 0; i < 10; ++i) {
    a.push_back({std::to_string(i), "x"});
    b.push_back({std::to_string(i), i == 6 ? "y" : "x"});
  }
  const Comparison c = run(select(id_name, a), select(id_name, b), true, rules);
  EXPECT_EQ(c.primary_row, "#7 (not kept)");
  EXPECT_EQ(c.shadow_row, "#7 (not kept)");
}

TEST(Compare, ValuesNormalizedInRows) {
  const std::vector<Col> cols = {{"n", numeric}, {"at", timestamptz}, {"doc", jsonb}};
  const std::string p = select(cols, {{"1.50", "2026-11-21 07:00:00.1+00", R"({"a": 1, "b": 2})"}});
  const std::string s = select(cols, {{"1.5", "2026-11-21 08:00:00.100+01", R"({"b":2,"a":1})"}});
  EXPECT_TRUE(run(p, s, true).match);
}

TEST(Compare, IgnoredColumnByName) {
  const std::vector<Col> cols = {{"id", int4}, {"updated_at", timestamptz}};
  const std::string p = select(cols, {{"1", "2026-11-21 07:00:00+00"}});
  const std::string s = select(cols, {{"1", "2026-11-21 07:00:05+00"}});
  EXPECT_FALSE(run(p, s, true).match);
  CompareRules rules;
  rules.ignore_columns = {"updated_at"};
  EXPECT_TRUE(run(p, s, true, rules).match);
  EXPECT_EQ(collect(p, rules).sample_rows, std::vector<std::string>{"(id=1)"});
}

TEST(Compare, IgnoredColumnByTableAndName) {
  // Table OIDs differ between the databases; each side resolves its own.
  const std::string p = select({{"id", int4, 100}, {"token", text, 100}}, {{"1", "abc"}});
  const std::string s = select({{"id", int4, 900}, {"token", text, 900}}, {{"1", "xyz"}});
  auto primary_names = [](std::uint32_t oid) { return oid == 100 ? std::string("public.users") : std::string(); };
  auto shadow_names = [](std::uint32_t oid) { return oid == 900 ? std::string("public.users") : std::string(); };
  CompareRules rules;
  for (const char* rule : {"users.token", "public.users.token"}) {
    rules.ignore_columns = {rule};
    EXPECT_TRUE(run(p, s, true, rules, primary_names, shadow_names).match) << rule;
  }
  for (const char* rule : {"orders.token", "sers.token", "users.id"}) {
    rules.ignore_columns = {rule};
    EXPECT_FALSE(run(p, s, true, rules, primary_names, shadow_names).match) << rule;
  }
}

TEST(Compare, IgnoredColumnPresentOnOneSideOnly) {
  const std::string p = select({{"id", int4}}, {{"1"}});
  const std::string s = select({{"id", int4}, {"migrated_at", timestamptz}}, {{"1", "2026-11-21 07:00:00+00"}});
  EXPECT_EQ(run(p, s, true).reason, "columns");
  CompareRules rules;
  rules.ignore_columns = {"migrated_at"};
  EXPECT_TRUE(run(p, s, true, rules).match);
}

TEST(Compare, Columns) {
  const std::string p = select({{"id", int4}, {"name", text}}, {});
  const Comparison renamed = run(p, select({{"id", int4}, {"full_name", text}}, {}), false);
  EXPECT_EQ(renamed.reason, "columns");
  EXPECT_EQ(renamed.primary_row, "(id number, name text)");
  EXPECT_EQ(renamed.shadow_row, "(id number, full_name text)");
  // int4 -> int8 prints the same values; int4 -> text does not compare.
  EXPECT_TRUE(run(p, select({{"id", int8}, {"name", 1043}}, {}), false).match);
  EXPECT_EQ(run(p, select({{"id", text}, {"name", text}}, {}), false).reason, "columns");
}

TEST(Compare, NumericTolerance) {
  const std::vector<Col> cols = {{"id", int4}, {"amount", numeric}, {"ratio", 701}};
  const std::string p = select(cols, {{"1", "10.001", "0.5"}, {"2", "20.000", "0.25"}});
  const std::string s = select(cols, {{"2", "20.004", "0.2501"}, {"1", "9.999", "0.5"}});
  EXPECT_FALSE(run(p, s, false).match);
  CompareRules rules;
  rules.numeric_tolerance = 0.005;
  EXPECT_TRUE(run(p, s, false, rules).match);
  EXPECT_FALSE(run(p, s, true, rules).match);  // the order still differs
  rules.numeric_tolerance = 0.001;
  const Comparison c = run(p, s, false, rules);
  EXPECT_EQ(c.reason, "rows");
  EXPECT_EQ(c.primary_row, "#1 (id=1, amount=10.001, ratio=0.5)");  // the pair that differed
  EXPECT_EQ(c.shadow_row, "#2 (id=1, amount=9.999, ratio=0.5)");
}

TEST(Compare, ToleranceKeepsNullsAndNaNApart) {
  CompareRules rules;
  rules.numeric_tolerance = 1;
  const std::vector<Col> cols = {{"n", numeric}};
  EXPECT_FALSE(run(select(cols, {{std::nullopt}}), select(cols, {{"0"}}), true, rules).match);
  EXPECT_FALSE(run(select(cols, {{"NaN"}}), select(cols, {{"0"}}), true, rules).match);
  EXPECT_TRUE(run(select(cols, {{"NaN"}, {std::nullopt}}), select(cols, {{std::nullopt}, {"NaN"}}), false, rules).match);
}

struct OutcomeCase {
  const char* name;
  std::string primary, shadow;
  bool match;
  const char* reason;
};

std::ostream& operator<<(std::ostream& os, const OutcomeCase& c) { return os << c.name; }

class Outcomes : public ::testing::TestWithParam<OutcomeCase> {};

TEST_P(Outcomes, Compare) {
  const OutcomeCase& c = GetParam();
  for (bool ordered : {true, false}) {
    const Comparison r = run(c.primary, c.shadow, ordered);
    EXPECT_EQ(r.match, c.match);
    EXPECT_EQ(r.reason, c.reason);
  }
}

INSTANTIATE_TEST_SUITE_P(
    TagsAndErrors, Outcomes,
    ::testing::Values(OutcomeCase{"same_update", write("UPDATE 3"), write("UPDATE 3"), true, ""},
                      OutcomeCase{"update_count", write("UPDATE 3"), write("UPDATE 2"), false, "tag"},
                      OutcomeCase{"insert", write("INSERT 0 1"), write("INSERT 0 1"), true, ""},
                      OutcomeCase{"insert_oid", write("INSERT 0 1"), write("INSERT 16384 1"), true, ""},
                      OutcomeCase{"command", write("UPDATE 1"), write("DELETE 1"), false, "tag"},
                      OutcomeCase{"ddl", write("CREATE TABLE"), write("CREATE TABLE"), true, ""},
                      OutcomeCase{"error_vs_success", error("23505", "duplicate key"), write("INSERT 0 1"), false,
                                  "error"},
                      OutcomeCase{"success_vs_error", write("UPDATE 1"), error("40001", "could not serialize"),
                                  false, "error"},
                      OutcomeCase{"same_sqlstate", error("23505", "duplicate key value violates \"a\""),
                                  error("23505", "duplicate key value violates \"b\""), true, ""},
                      OutcomeCase{"other_sqlstate", error("23505", "x"), error("23503", "x"), false, "error"},
                      OutcomeCase{"select_count", select(id_name, {{"1", "a"}}), select(id_name, {}), false,
                                  "rows"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(Compare, IgnoredFingerprints) {
  CompareRules rules;
  rules.ignore_fingerprints = {42, 7};
  EXPECT_TRUE(rules.ignores(7));
  EXPECT_FALSE(rules.ignores(8));
}

// Diffy's lesson: a system compared with itself reports nothing.
TEST(Compare, SelfComparisonReportsNothing) {
  std::vector<std::string> results = {
      write("INSERT 0 5"),
      write("BEGIN"),
      error("42P01", "relation \"nope\" does not exist"),
      select(id_name, {}),
      select(id_name, {{"1", "a"}, {"1", "a"}, {"2", std::nullopt}, {"3", ""}}),
      select({{"n", numeric}, {"f", 701}, {"j", jsonb}, {"t", timestamptz}, {"b", 17}, {"x", 1186}},
             {{"NaN", "NaN", "{}", "infinity", "\\x", "1 day"},
              {"-1.50", "-0", R"({"a": [1, {"b": null}]})", "2026-11-21 07:00:00+00", "\\xdeadbeef", std::nullopt},
              {std::nullopt, "1e308", "not json", "garbage", "\\zz", "0"}}),
      select({{"raw", int4, 0, 1}}, {{std::string("\0\0\0\1", 4)}, {std::nullopt}}),
  };
  std::string empty;
  MessageWriter(empty).begin('I').end();
  results.push_back(empty);
  std::vector<Row> many;
  for (int i = 0; i < 500; ++i) many.push_back({std::to_string(i % 37), std::string(i % 5, 'x')});
  results.push_back(select(id_name, many));

  CompareRules with_tolerance;
  with_tolerance.numeric_tolerance = 0.01;
  with_tolerance.ignore_columns = {"t"};
  for (const CompareRules& rules : {CompareRules{}, with_tolerance}) {
    for (const std::string& r : results) {
      for (bool ordered : {true, false}) {
        const Comparison c = run(r, r, ordered, rules);
        EXPECT_TRUE(c.match) << c.reason << " " << c.primary_row.value_or("") << " / " << c.shadow_row.value_or("");
      }
    }
  }
}

}  // namespace
}  // namespace pgshift::shadow
