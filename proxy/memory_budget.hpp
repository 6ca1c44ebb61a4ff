// The process-wide budget for bytes held to see whole messages
// ([proxy] max_buffered_bytes). A read buffer that grows beyond its default
// size for one large message takes the growth from here and gives it back
// when it shrinks; a session whose message does not fit is refused (53200)
// rather than letting a few hostile clients exhaust the machine's memory.
#pragma once

#include <atomic>
#include <cstddef>
#include <limits>
#include <system_error>

namespace pgshift::proxy {

class MemoryBudget {
 public:
  void set_limit(std::size_t bytes) noexcept { limit_.store(bytes, std::memory_order_relaxed); }
  std::size_t limit() const noexcept { return limit_.load(std::memory_order_relaxed); }
  std::size_t used() const noexcept { return used_.load(std::memory_order_relaxed); }

  // Takes `n` bytes; false (taking nothing) when that would pass the limit.
  bool try_acquire(std::size_t n) noexcept;
  void release(std::size_t n) noexcept { used_.fetch_sub(n, std::memory_order_relaxed); }

 private:
  std::atomic<std::size_t> limit_{std::numeric_limits<std::size_t>::max()};  // until configured
  std::atomic<std::size_t> used_{0};
};

// The one budget of the process, set from the configuration at start.
MemoryBudget& buffer_budget() noexcept;

// How a refused growth shows up in a pump's or a read's error code.
inline bool is_out_of_memory(const std::error_code& ec) noexcept { return ec == std::errc::not_enough_memory; }

}  // namespace pgshift::proxy
