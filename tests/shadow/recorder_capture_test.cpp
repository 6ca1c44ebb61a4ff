// The recorder's half of exact mirroring: a captured write reaches the mirror
// as the rows the primary returned in pgshift's capture column, and never as
// fewer rows than the server says it wrote.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "protocol/builder.hpp"
#include "protocol/frame.hpp"
#include "rewrite/catalog.hpp"
#include "rewrite/rewrite.hpp"
#include "shadow/recorder.hpp"

namespace pgshift::shadow {
namespace {

constexpr const char* kInsert = "INSERT INTO stamped (at) VALUES (now())";

rewrite::CatalogPtr catalog() {
  rewrite::CatalogTable t;
  t.schema = "public";
  t.name = "stamped";
  rewrite::CatalogColumn id;
  id.name = "id";
  id.type = "bigint";
  id.default_expr = "nextval('public.stamped_id_seq'::regclass)";
  id.volatile_default = true;
  rewrite::CatalogColumn at;
  at.name = "at";
  at.type = "timestamp with time zone";
  t.columns = {id, at};
  t.primary_key = {0};
  return rewrite::Catalog::make({t});
}

rewrite::Context context(rewrite::CatalogPtr c, bool capture) {
  rewrite::Context ctx;
  ctx.catalog = std::move(c);
  ctx.path = ctx.default_path = {"public"};
  ctx.user = "app";
  ctx.capture = capture;
  ctx.rehash();
  return ctx;
}

// One session's recorder, fed the client's extended-protocol messages for
// kInsert (a named statement, as pgbench -M prepared sends it) and a
// server's replies; what it hands over is kept.
class RecorderCapture : public ::testing::Test {
 protected:
  RecorderCapture()
      : primary_(context(catalog(), true)),
        shadow_(context(catalog(), false)),
        recorder_(1, std::make_shared<Origin>(), rewriter_, 1 << 20, 0, rules_,
                  [this](TransactionPtr t) { handed_.push_back(std::move(t)); }) {
    recorder_.set_context(&shadow_);
  }

  void client(const std::string& bytes, const rewrite::Analysis* a = nullptr) {
    const protocol::ParseResult r = protocol::parse_frame(bytes, protocol::Direction::frontend, protocol::Limits{});
    ASSERT_EQ(r.status, protocol::ParseStatus::complete);
    recorder_.on_client(r.frame, a);
  }
  void server(const std::string& bytes) {
    const protocol::ParseResult r = protocol::parse_frame(bytes, protocol::Direction::backend, protocol::Limits{});
    ASSERT_EQ(r.status, protocol::ParseStatus::complete);
    recorder_.on_server(r.frame);
  }

  // The client prepares and runs kInsert once; the server replies `rows`
  // (the capture column's record texts) and `tag`.
  void run(const std::vector<std::string>& rows, const std::string& tag) {
    const rewrite::Analysis& a = rewriter_.analyze(kInsert, &primary_);
    ASSERT_EQ(a.captures.size(), 1u);
    ASSERT_EQ(a.captures[0].mode, rewrite::Capture::Mode::rows);
    std::string m;
    protocol::append_parse(m, "P_0", kInsert);
    client(m, &a);
    m.clear();
    protocol::append_bind(m, "", "P_0");
    client(m);
    m.clear();
    protocol::append_execute(m, "", 0);
    client(m);
    m.clear();
    protocol::append_sync(m);
    client(m);
    std::string s;
    protocol::append_simple(s, '1');
    server(s);
    s.clear();
    protocol::append_simple(s, '2');
    server(s);
    for (const std::string& row : rows) {
      s.clear();
      protocol::append_data_row(s, {row});
      server(s);
    }
    s.clear();
    protocol::append_command_complete(s, tag);
    server(s);
    s.clear();
    protocol::append_ready_for_query(s, 'I');
    server(s);
  }

  rewrite::Rewriter rewriter_{rewrite::Options{}};
  rewrite::Context primary_, shadow_;
  CompareRules rules_;
  std::vector<TransactionPtr> handed_;
  Recorder recorder_;
};

TEST_F(RecorderCapture, TheRowsThePrimaryWroteReachTheShadow) {
  run({"(7,\"2026-12-01 19:00:00+00\")"}, "INSERT 0 1");
  ASSERT_EQ(handed_.size(), 1u);
  EXPECT_EQ(handed_[0]->kind, Transaction::Kind::apply);
  EXPECT_EQ(handed_[0]->captured, 1u);
  EXPECT_NE(handed_[0]->messages.find("'2026-12-01 19:00:00+00'"), std::string::npos) << handed_[0]->messages;
}

// A server that ran the statement without the capture column (it was
// prepared there from an analysis without the catalog) returns no row: the
// shadow must not get "nothing" for it, the unit fails loudly instead.
TEST_F(RecorderCapture, AWriteWhoseRowsDidNotComeBackIsNotMirroredAsNothing) {
  run({}, "INSERT 0 1");
  ASSERT_EQ(handed_.size(), 1u);
  EXPECT_EQ(handed_[0]->kind, Transaction::Kind::dropped);
  EXPECT_NE(handed_[0]->why.find("the server reported \"INSERT 0 1\" but 0 row(s) came back"), std::string::npos)
      << handed_[0]->why;
}

TEST_F(RecorderCapture, AWriteOfNoRowsIsMirroredAsNoRows) {
  run({}, "INSERT 0 0");
  ASSERT_EQ(handed_.size(), 1u);
  EXPECT_EQ(handed_[0]->kind, Transaction::Kind::apply);
}

}  // namespace
}  // namespace pgshift::shadow
