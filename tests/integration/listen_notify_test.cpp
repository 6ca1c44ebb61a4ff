// LISTEN/NOTIFY across two sessions through the route under test.
#include "harness.hpp"

namespace pgshift::it {
namespace {

class ListenNotify : public RoutedTest<ListenNotify> {};

TEST_P(ListenNotify, ListenerReceivesChannelAndPayload) {
  EXPECT_TRUE(scenario_passes("listen_notify.py", "notify", conn()));
}

PGSHIFT_ROUTED_SUITE(ListenNotify);

}  // namespace
}  // namespace pgshift::it
