// Statements that nest deeper than a thread's stack can unpack are refused
// by the analysis, not allowed to overflow the stack: `SELECT ++…+1` with
// 5,000 plus signs once crashed the whole proxy (tests/fuzz, rewrite target;
// its input is in tests/fuzz/corpus/rewrite). PostgreSQL refuses such
// statements itself ("stack depth limit exceeded"); pgshift passes them on.
#include <gtest/gtest.h>
#include <pthread.h>

#include <string>

#include "rewrite/rewrite.hpp"

namespace pgshift::rewrite {
namespace {

std::string prefixed(std::size_t n) { return "SELECT " + std::string(n, '+') + "1"; }

TEST(DeepNesting, TooDeepIsUnparseableWithAWarning) {
  Rewriter r{Options{}};
  for (std::size_t n : {5000u, 9000u}) {
    const Analysis& a = r.analyze(prefixed(n));
    ASSERT_EQ(a.statements.size(), 1u) << n;
    EXPECT_EQ(a.statements[0].kind, StatementKind::unparseable) << n;
    EXPECT_TRUE(a.statements[0].writes) << n;  // unsure, so treated as a write
    EXPECT_EQ(a.warning, "statement too deeply nested to analyse") << n;
  }
}

TEST(DeepNesting, OrdinaryNestingIsStillAnalysed) {
  Rewriter r{Options{}};
  const Analysis& a = r.analyze(prefixed(50));
  ASSERT_EQ(a.statements.size(), 1u);
  EXPECT_EQ(a.statements[0].kind, StatementKind::read_only);
  std::string parens = "SELECT " + std::string(100, '(') + "1" + std::string(100, ')');
  EXPECT_EQ(r.analyze(parens).statements.at(0).kind, StatementKind::read_only);
}

// The budget follows the stack of the thread that parses: a thread with a
// small stack (256 KiB) refuses sooner and does not crash either.
TEST(DeepNesting, SmallStackThreadRefusesInsteadOfCrashing) {
  bool unparseable = false;
  pthread_attr_t attr;
  ASSERT_EQ(pthread_attr_init(&attr), 0);
  ASSERT_EQ(pthread_attr_setstacksize(&attr, 4096 * 1024), 0);
  pthread_t t;
  auto body = [](void* p) -> void* {
    Rewriter r{Options{}};
    *static_cast<bool*>(p) = r.analyze(prefixed(3000)).statements.at(0).kind == StatementKind::unparseable;
    return nullptr;
  };
  ASSERT_EQ(pthread_create(&t, &attr, body, &unparseable), 0);
  pthread_join(t, nullptr);
  pthread_attr_destroy(&attr);
  EXPECT_TRUE(unparseable);
}

}  // namespace
}  // namespace pgshift::rewrite
