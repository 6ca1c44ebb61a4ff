// Bounded memory under large and hostile messages: the process-wide budget for bytes
// held to see whole messages ([proxy] max_buffered_bytes) refuses the session that
// would pass it with 53200 and nobody else; and the memory a 500 MB Query needed is
// given back once its session is over.
#include <csignal>
#include <fstream>
#include <thread>

#include "harness.hpp"
#include "protocol/builder.hpp"
#include "protocol/frame.hpp"
#include "raw_client.hpp"

namespace pgshift::it {
namespace {

using namespace std::chrono_literals;

// A Query of exactly `total` bytes (type and length included) whose result is
// the length of its literal.
std::string query_of_size(std::size_t total) {
  const std::string head = "SELECT length('";
  const std::string tail = "')";
  const std::size_t fill = total - protocol::header_size - head.size() - tail.size() - 1;
  std::string sql = head;
  sql.append(fill, 'x');
  sql += tail;
  std::string out;
  protocol::append_query(out, sql);
  return out;
}

std::string literal_length(std::size_t total) {
  return std::to_string(total - protocol::header_size - std::string("SELECT length('')").size() - 1);
}

// The first column of the first DataRow, or "" when there is none.
std::string first_value(const std::vector<BackendMessage>& messages) {
  for (const BackendMessage& m : messages) {
    if (m.type != 'D' || m.body.size() < 6) continue;
    const std::uint32_t len = protocol::read_u32(m.body.data() + 2);
    return len > m.body.size() - 6 ? std::string() : m.body.substr(6, len);
  }
  return {};
}

// VmRSS of `pid`, in kB.
long rss_kb(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

class Memory : public SharedClusterTest<Memory> {};

// Budget 1.5 MiB, messages up to 1 MiB: one large Query arriving at a time fits, a
// second one at the same time does not. Its session alone ends, with 53200.
TEST_F(Memory, BudgetRefusesOnlyTheSessionThatWouldPassIt) {
  constexpr std::size_t kMessage = 1u << 20;
  PgshiftOptions options;
  options.max_message_size = kMessage;
  options.max_buffered_bytes = kMessage * 3 / 2;
  Pgshift proxy(cluster(), options);

  RawClient first(proxy.port()), second(proxy.port()), healthy(proxy.port());
  first.login();
  second.login();
  healthy.login();
  const std::string big = query_of_size(kMessage);
  // The first Query is half sent: pgshift holds room for all of it.
  ASSERT_TRUE(first.send(std::string_view(big).substr(0, kMessage / 2)));
  ASSERT_TRUE(eventually([&] { return healthy.query_value("SELECT 1") == "1"; }));
  std::this_thread::sleep_for(200ms);  // let pgshift read the first half
  ASSERT_TRUE(second.send(big));
  const auto refused = second.read_until_eof();
  ASSERT_EQ(refused.size(), 1u) << describe(refused);
  EXPECT_EQ(error_fields(refused[0].body)['C'], "53200") << describe(refused);
  EXPECT_EQ(error_fields(refused[0].body)['M'], "out of memory");

  ASSERT_TRUE(first.send(std::string_view(big).substr(kMessage / 2)));
  const auto answer = first.read_until_ready();
  EXPECT_EQ(first_value(answer), literal_length(kMessage)) << describe(answer);
  EXPECT_EQ(healthy.query_value("SELECT 'still here'"), "still here");

  // The first session's buffer went back to the budget: another large Query passes.
  RawClient third(proxy.port());
  third.login();
  ASSERT_TRUE(third.send(big));
  EXPECT_EQ(first_value(third.read_until_ready()), literal_length(kMessage));
  EXPECT_TRUE(contains(proxy.log(), "reason=out of memory: a message would pass proxy.max_buffered_bytes"));
}

// After a 500 MB Query and the end of its session, pgshift's resident memory comes
// back to within 20 MB of what it was before.
TEST_F(Memory, RssReturnsAfterA500MbQuery) {
  if (pgshift_sanitized()) GTEST_SKIP() << "a sanitizer's allocator keeps freed memory (quarantine): RSS says nothing there";
  constexpr std::size_t kMessage = 500u * 1000 * 1000;
  Pgshift proxy(cluster());
  {
    RawClient warm(proxy.port());  // the first session's one-off allocations
    warm.login();
    EXPECT_EQ(warm.query_value("SELECT 1"), "1");
    warm.terminate();
  }
  const long before = rss_kb(proxy.pid());
  {
    RawClient client(proxy.port());
    client.login();
    ASSERT_TRUE(client.send(query_of_size(kMessage)));
    // Parsing 500 MB takes pgshift and PostgreSQL a while on a busy machine.
    std::vector<BackendMessage> answer;
    while (answer.empty() || answer.back().type != 'Z') {
      auto m = client.read(180s);
      ASSERT_TRUE(m) << "connection closed after " << describe(answer);
      answer.push_back(std::move(*m));
    }
    EXPECT_EQ(first_value(answer), literal_length(kMessage));
    client.terminate();
  }
  ASSERT_TRUE(eventually([&] { return count_occurrences(proxy.log(), "reason=client terminated") >= 2; }));
  long after = 0;
  eventually([&] { return (after = rss_kb(proxy.pid())) <= before + 20 * 1024; }, 10s);
  std::printf("pgshift VmRSS: %ld kB before, %ld kB after a 500 MB Query and its session's end\n", before, after);
  EXPECT_LE(after, before + 20 * 1024) << "before " << before << " kB, after " << after << " kB";
}

}  // namespace
}  // namespace pgshift::it
