#include "proxy/stats.hpp"

#include <memory>
#include <mutex>
#include <vector>

namespace pgshift::proxy::stats {

namespace {

std::mutex registry_mutex;
std::vector<std::unique_ptr<Block>>& registry() {
  static std::vector<std::unique_ptr<Block>> blocks;
  return blocks;
}

}  // namespace

Block* detail::register_thread() {
  std::lock_guard lock(registry_mutex);
  registry().push_back(std::make_unique<Block>());
  return registry().back().get();
}

Figures totals() {
  Figures f;
  std::lock_guard lock(registry_mutex);
  for (const auto& b : registry()) {
    for (std::size_t k = 0; k < kKinds; ++k) f.statements[k] += b->statements[k].get();
    f.rewritten += b->rewritten.get();
    f.refused += b->refused.get();
    f.transactions += b->transactions.get();
    f.client_bytes_in += b->client_bytes_in.get();
    f.client_bytes_out += b->client_bytes_out.get();
    f.server_bytes_in += b->server_bytes_in.get();
    f.server_bytes_out += b->server_bytes_out.get();
  }
  return f;
}

}  // namespace pgshift::proxy::stats
