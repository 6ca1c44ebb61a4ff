#include "proxy/buffer_pool.hpp"

#include <array>

namespace pgshift::proxy::buffer_pool {

namespace {

struct Pool {
  std::size_t block_size = 0;  // set by the first take(): [proxy] buffer_size
  std::size_t count = 0;
  std::array<char*, kKeep> free{};

  ~Pool();
};

// A buffer freed during thread exit, after its thread's Pool is gone, is
// deleted at once (this flag, trivially destructible, outlives the Pool).
thread_local bool pool_gone = false;
thread_local Pool pool;

Pool::~Pool() {
  for (std::size_t i = 0; i < count; ++i) delete[] free[i];
  count = 0;
  pool_gone = true;
}

}  // namespace

std::unique_ptr<char[]> take(std::size_t size) {
  if (!pool_gone) {
    Pool& p = pool;
    if (p.block_size == 0) p.block_size = size;
    if (size == p.block_size && p.count > 0) return std::unique_ptr<char[]>(p.free[--p.count]);
  }
  return std::unique_ptr<char[]>(new char[size]);
}

void give(std::unique_ptr<char[]> block, std::size_t size) noexcept {
  if (!block || pool_gone) return;  // the unique_ptr frees it
  Pool& p = pool;
  if (size == p.block_size && p.count < kKeep) p.free[p.count++] = block.release();
}

std::size_t kept() noexcept { return pool_gone ? 0 : pool.count; }

}  // namespace pgshift::proxy::buffer_pool
