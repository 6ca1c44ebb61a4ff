// asyncpg (its own wire-protocol implementation, binary formats throughout) through the
// route under test.
#include "harness.hpp"

namespace pgshift::it {
namespace {

class Asyncpg : public RoutedTest<Asyncpg> {};

TEST_P(Asyncpg, PreparedStatements) { EXPECT_TRUE(scenario_passes("asyncpg_client.py", "prepared", conn())); }

TEST_P(Asyncpg, BinaryTypesRoundTrip) {
  EXPECT_TRUE(scenario_passes("asyncpg_client.py", "binary_types", conn()));
}

TEST_P(Asyncpg, CopyRecordsToTableAndFromQuery) {
  EXPECT_TRUE(scenario_passes("asyncpg_client.py", "copy", conn()));
}

// The timeout makes asyncpg send a CancelRequest, which must reach the right backend.
TEST_P(Asyncpg, TimeoutCancelsTheQuery) {
  const std::string cancelled = "ERROR:  canceling statement due to user request";
  const auto before = count_occurrences(cluster().log(), cancelled);
  EXPECT_TRUE(scenario_passes("asyncpg_client.py", "cancel_on_timeout", conn()));
  EXPECT_EQ(count_occurrences(cluster().log(), cancelled), before + 1)
      << "the server should log exactly one cancelled statement";
}

PGSHIFT_ROUTED_SUITE(Asyncpg);

}  // namespace
}  // namespace pgshift::it
