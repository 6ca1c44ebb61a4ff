// psycopg 3 (libpq) through the route under test: pipeline mode, binary COPY, server-side
// cursors, and cancellation with the client's BackendKeyData.
#include "harness.hpp"

namespace pgshift::it {
namespace {

class Psycopg : public RoutedTest<Psycopg> {};

TEST_P(Psycopg, PipelineMode) { EXPECT_TRUE(scenario_passes("psycopg_client.py", "pipeline", conn())); }

TEST_P(Psycopg, BinaryCopyInAndOut) {
  EXPECT_TRUE(scenario_passes("psycopg_client.py", "binary_copy", conn()));
}

TEST_P(Psycopg, NamedCursorFetchesInBatches) {
  EXPECT_TRUE(scenario_passes("psycopg_client.py", "named_cursor", conn()));
}

TEST_P(Psycopg, CancelRunningQuery) { EXPECT_TRUE(scenario_passes("psycopg_client.py", "cancel", conn())); }

PGSHIFT_ROUTED_SUITE(Psycopg);

}  // namespace
}  // namespace pgshift::it
