// Process-wide figures for the operator interface (SHOW STATUS, /metrics, the
// status page), counted where they happen without a lock or a shared cache
// line: each thread adds to its own block with a relaxed load and store (no
// locked instruction), and a reader sums every thread's block.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace pgshift::proxy::stats {

// A counter one thread writes and any thread reads.
class Tally {
 public:
  void add(std::uint64_t n = 1) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  Tally& operator++() noexcept {
    add();
    return *this;
  }
  Tally& operator+=(std::uint64_t n) noexcept {
    add(n);
    return *this;
  }
  std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

// rewrite::StatementKind's values, in order.
inline constexpr std::size_t kKinds = 9;

struct Figures {
  std::array<std::uint64_t, kKinds> statements{};  // by rewrite::StatementKind
  std::uint64_t rewritten = 0, refused = 0;
  std::uint64_t transactions = 0;  // ReadyForQuery back to idle, client sessions only
  std::uint64_t client_bytes_in = 0, client_bytes_out = 0;  // read from / written to clients
  std::uint64_t server_bytes_in = 0, server_bytes_out = 0;  // read from / written to servers, for clients

  std::uint64_t all_statements() const noexcept {
    std::uint64_t n = 0;
    for (auto s : statements) n += s;
    return n;
  }
};

struct alignas(64) Block {
  std::array<Tally, kKinds> statements;
  Tally rewritten, refused, transactions;
  Tally client_bytes_in, client_bytes_out, server_bytes_in, server_bytes_out;
};

namespace detail {
Block* register_thread();
inline thread_local Block* block = nullptr;
}  // namespace detail

// This thread's block (registered on first use; kept after the thread ends,
// so totals never go down).
inline Block& local() noexcept {
  if (!detail::block) [[unlikely]] detail::block = detail::register_thread();
  return *detail::block;
}

// The sum over every thread.
Figures totals();

}  // namespace pgshift::proxy::stats
