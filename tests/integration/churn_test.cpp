// Connection churn through pgshift: many short sessions (log in, then Terminate or an
// abrupt close) must not leave file descriptors or memory behind in the proxy.
#include <fstream>
#include <sstream>

#include "harness.hpp"
#include "raw_client.hpp"

namespace pgshift::it {
namespace {

struct ProcessUsage {
  std::size_t open_fds = 0;
  std::size_t rss_kib = 0;
};

ProcessUsage usage_of(pid_t pid) {
  const fs::path proc = "/proc/" + std::to_string(pid);
  ProcessUsage usage;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(proc / "fd")) ++usage.open_fds;
  std::istringstream status(read_file(proc / "status"));
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) usage.rss_kib = std::stoul(line.substr(6));
  }
  return usage;
}

class Churn : public SharedClusterTest<Churn> {
 protected:
  // `count` sessions one after the other; every other one ends without Terminate.
  static void churn(const Pgshift& proxy, int count) {
    for (int i = 0; i < count; ++i) {
      RawClient client(proxy.port());
      client.login();
      if (i % 2 == 0) client.terminate();
    }
  }

  // Sessions pgshift has logged as closed (its start-up probe, with no user, excluded).
  static std::size_t closed_sessions(const Pgshift& proxy) {
    return count_occurrences(proxy.log(), " user=postgres database=postgres duration=");
  }

  // Waits until pgshift has logged `sessions` closed sessions in all, then measures it.
  static ProcessUsage settled_usage(const Pgshift& proxy, std::size_t sessions) {
    const bool settled =
        eventually([&] { return closed_sessions(proxy) >= sessions; }, std::chrono::seconds(60));
    EXPECT_TRUE(settled) << "pgshift logged " << closed_sessions(proxy) << " closed sessions, expected "
                         << sessions;
    return usage_of(proxy.pid());
  }
};

TEST_F(Churn, ConnectDisconnectLeavesNothingBehind) {
  constexpr int kWarmUp = 100;
  constexpr int kCycles = 1000;
  constexpr std::size_t kRssGrowthLimitKiB = 8 * 1024;

  Pgshift proxy(cluster());
  churn(proxy, kWarmUp);
  const ProcessUsage baseline = settled_usage(proxy, kWarmUp);

  churn(proxy, kCycles);
  const ProcessUsage after = settled_usage(proxy, kWarmUp + kCycles);

  RecordProperty("fds_baseline", static_cast<int>(baseline.open_fds));
  RecordProperty("fds_after", static_cast<int>(after.open_fds));
  RecordProperty("rss_kib_baseline", static_cast<int>(baseline.rss_kib));
  RecordProperty("rss_kib_after", static_cast<int>(after.rss_kib));
  EXPECT_LE(after.open_fds, baseline.open_fds + 2) << "baseline " << baseline.open_fds;
  EXPECT_GE(after.open_fds + 2, baseline.open_fds) << "baseline " << baseline.open_fds;
  if (!pgshift_sanitized()) {  // RSS only means something without a sanitizer's quarantine
    EXPECT_LT(after.rss_kib, baseline.rss_kib + kRssGrowthLimitKiB)
        << "VmRSS grew from " << baseline.rss_kib << " KiB to " << after.rss_kib << " KiB";
  }

  // Still serving.
  RawClient client(proxy.port());
  client.login();
  EXPECT_EQ(client.query_value("SELECT 'after churn'"), "after churn");
}

}  // namespace
}  // namespace pgshift::it
