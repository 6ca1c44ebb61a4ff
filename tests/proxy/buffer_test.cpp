// ReadBuffer holds a block of its thread's pool only while bytes are buffered.
#include <gtest/gtest.h>

#include <cstring>

#include "proxy/buffer.hpp"
#include "proxy/buffer_pool.hpp"
#include "proxy/memory_budget.hpp"

namespace pgshift::proxy {
namespace {

constexpr std::size_t kSize = 8192;

void put(ReadBuffer& b, std::string_view bytes) {
  auto space = b.prepare();
  ASSERT_GE(space.size(), bytes.size());
  std::memcpy(space.data(), bytes.data(), bytes.size());
  b.commit(bytes.size());
}

TEST(ReadBuffer, HoldsNoStorageUntilARead) {
  ReadBuffer b(kSize);
  EXPECT_FALSE(b.holds_storage());
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.capacity(), kSize);
  EXPECT_TRUE(b.data().empty());
  b.release_when_empty();  // nothing to give back
  EXPECT_FALSE(b.holds_storage());
}

TEST(ReadBuffer, GivesItsBlockBackOnceEmptyAndTheNextReadTakesItAgain) {
  ReadBuffer b(kSize);
  put(b, "hello");
  EXPECT_TRUE(b.holds_storage());
  const char* block = b.data().data();
  const std::size_t kept = buffer_pool::kept();

  b.release_when_empty();  // a partial message stays
  EXPECT_TRUE(b.holds_storage());
  EXPECT_EQ(b.data(), "hello");

  b.consume(5);
  b.release_when_empty();
  EXPECT_FALSE(b.holds_storage());
  EXPECT_EQ(buffer_pool::kept(), kept + 1);

  put(b, "again");  // the same block, from the pool
  EXPECT_EQ(b.data().data(), block);
  EXPECT_EQ(buffer_pool::kept(), kept);
  EXPECT_EQ(b.data(), "again");
}

TEST(ReadBuffer, TwoBuffersTakeTwoBlocks) {
  ReadBuffer a(kSize), b(kSize);
  put(a, "a");
  put(b, "b");
  EXPECT_NE(a.data().data(), b.data().data());
  EXPECT_EQ(a.data(), "a");
  EXPECT_EQ(b.data(), "b");
}

TEST(ReadBuffer, GrownStorageGoesBackToTheBudgetNotThePool) {
  ReadBuffer b(kSize);
  put(b, "12345");
  const std::size_t used = buffer_budget().used();
  const std::size_t kept = buffer_pool::kept();
  ASSERT_TRUE(b.reserve(3 * kSize));
  EXPECT_EQ(b.capacity(), 3 * kSize);
  EXPECT_EQ(b.data(), "12345");  // kept across the growth
  EXPECT_EQ(buffer_budget().used(), used + 3 * kSize);
  EXPECT_EQ(buffer_pool::kept(), kept + 1);  // the default block went back

  b.consume(5);
  b.release_when_empty();
  EXPECT_FALSE(b.holds_storage());
  EXPECT_EQ(b.capacity(), kSize);
  EXPECT_EQ(buffer_budget().used(), used);
  EXPECT_EQ(buffer_pool::kept(), kept + 1);  // not pooled: a grown size
}

TEST(ReadBuffer, ReserveTakesABlockWhenItHasNone) {
  ReadBuffer b(kSize);
  ASSERT_TRUE(b.reserve(100));
  EXPECT_TRUE(b.holds_storage());
  EXPECT_EQ(b.size(), 0u);
}

TEST(ReadBuffer, DestructionReturnsABlockEvenWithBytesLeft) {
  const std::size_t kept = buffer_pool::kept();
  {
    ReadBuffer b(kSize);
    put(b, "left over");
    EXPECT_EQ(buffer_pool::kept(), kept == 0 ? 0u : kept - 1);
  }
  EXPECT_EQ(buffer_pool::kept(), kept == 0 ? 1u : kept);
}

TEST(BufferPool, KeepsAtMostKKeepBlocks) {
  std::vector<std::unique_ptr<char[]>> blocks;
  for (std::size_t i = 0; i < buffer_pool::kKeep + 5; ++i) blocks.push_back(buffer_pool::take(kSize));
  EXPECT_EQ(buffer_pool::kept(), 0u);
  for (auto& b : blocks) buffer_pool::give(std::move(b), kSize);
  EXPECT_EQ(buffer_pool::kept(), buffer_pool::kKeep);
}

TEST(BufferPool, OtherSizesAreNotKept) {
  (void)buffer_pool::take(kSize);  // the thread's block size is set by its first take
  const std::size_t kept = buffer_pool::kept();
  buffer_pool::give(buffer_pool::take(100), 100);
  EXPECT_EQ(buffer_pool::kept(), kept);
}

}  // namespace
}  // namespace pgshift::proxy
