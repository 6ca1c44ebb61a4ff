#include "proxy/memory_budget.hpp"

namespace pgshift::proxy {

bool MemoryBudget::try_acquire(std::size_t n) noexcept {
  std::size_t used = used_.load(std::memory_order_relaxed);
  do {
    if (n > limit() || used > limit() - n) return false;  // written so it cannot overflow
  } while (!used_.compare_exchange_weak(used, used + n, std::memory_order_relaxed));
  return true;
}

MemoryBudget& buffer_budget() noexcept {
  static MemoryBudget budget;
  return budget;
}

}  // namespace pgshift::proxy
