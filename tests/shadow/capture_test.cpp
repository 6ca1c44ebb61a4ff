// The statements exact mirroring gives the shadow in place of a captured write.
#include "shadow/capture.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace pgshift::shadow {
namespace {

using rewrite::Capture;
using rewrite::CatalogColumn;
using rewrite::CatalogTable;

std::shared_ptr<const CatalogTable> orders() {
  CatalogTable t;
  t.schema = "public";
  t.name = "orders";
  CatalogColumn id;
  id.name = "id";
  id.type = "integer";
  id.identity = 'a';
  id.sequence_schema = "public";
  id.sequence = "orders_id_seq";
  CatalogColumn item;
  item.name = "item";
  t.columns = {id, item};
  t.primary_key = {0};
  return std::make_shared<const CatalogTable>(std::move(t));
}

std::string statement(Capture::Op op, const std::vector<std::string>& rows) {
  Capture c;
  c.mode = Capture::Mode::rows;
  c.op = op;
  c.table = orders();
  std::string sql, error;
  EXPECT_TRUE(capture_statement(c, rows, sql, error)) << error;
  return sql;
}

// Explicit values leave the shadow's sequence where it was, and a later
// statement that is not exact (COPY) would draw the same numbers again and
// collide: each value of a column owning a sequence moves it, never backwards.
TEST(CaptureStatement, InsertMovesTheShadowsSequencePastThePrimarysValues) {
  const std::string seq_move =
      "('%s'::bigint + 0 * pg_catalog.setval('\"public\".\"orders_id_seq\"', GREATEST('%s'::bigint, (SELECT "
      "last_value FROM \"public\".\"orders_id_seq\"))))";
  auto moved = [&](const std::string& v) {
    std::string s = seq_move;
    for (auto at = s.find("%s"); at != std::string::npos; at = s.find("%s")) s.replace(at, 2, v);
    return s;
  };
  EXPECT_EQ(statement(Capture::Op::insert, {"(7,keyboard)", "(8,\"a b\")"}),
            "INSERT INTO \"public\".\"orders\" (\"id\", \"item\") OVERRIDING SYSTEM VALUE VALUES (" + moved("7") +
                ", 'keyboard'), (" + moved("8") + ", 'a b')");
}

TEST(CaptureStatement, DeleteNamesOnlyTheKey) {
  EXPECT_EQ(statement(Capture::Op::remove, {"(7,keyboard)"}),
            "DELETE FROM \"public\".\"orders\" WHERE (\"id\") IN (('7'))");
}

}  // namespace
}  // namespace pgshift::shadow
