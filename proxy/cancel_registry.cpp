#include "proxy/cancel_registry.hpp"

#include <openssl/rand.h>

#include <array>
#include <cstddef>
#include <random>

namespace pgshift::proxy {
namespace {

// Keys come from one RAND_bytes call per 256 of them, per thread. In OpenSSL 3
// each call costs about as much as all the rest of pgshift's work for a new
// connection (callgrind, `pgbench -C -S`: 48k of 130k instructions per
// connection), and a batch of its output is as unpredictable as single draws.
std::uint32_t random_key() {
  thread_local std::array<std::uint32_t, 256> batch;
  thread_local std::size_t next = batch.size();
  if (next == batch.size()) {
    if (RAND_bytes(reinterpret_cast<unsigned char*>(batch.data()), sizeof batch) != 1) {
      // OpenSSL's generator failed (should not happen); fall back to the OS source.
      std::random_device rd;
      for (std::uint32_t& v : batch) v = rd();
    }
    next = 0;
  }
  return batch[next++];
}

}  // namespace

ClientKey CancelRegistry::add(std::uint32_t pid, const CancelTarget& target) {
  std::lock_guard lock(mutex_);
  for (;;) {
    ClientKey k{pid, random_key()};
    if (map_.try_emplace(index(k), target).second) return k;
  }
}

void CancelRegistry::update(const ClientKey& client, const CancelTarget& target) {
  std::lock_guard lock(mutex_);
  if (auto it = map_.find(index(client)); it != map_.end()) it->second = target;
}

void CancelRegistry::remove(const ClientKey& client) {
  std::lock_guard lock(mutex_);
  map_.erase(index(client));
}

std::optional<CancelTarget> CancelRegistry::find(const ClientKey& client) const {
  std::lock_guard lock(mutex_);
  if (auto it = map_.find(index(client)); it != map_.end()) return it->second;
  return std::nullopt;
}

std::size_t CancelRegistry::size() const {
  std::lock_guard lock(mutex_);
  return map_.size();
}

}  // namespace pgshift::proxy
