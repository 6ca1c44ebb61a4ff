#include "proxy/cancel_registry.hpp"

#include <openssl/rand.h>

#include <random>

namespace pgshift::proxy {
namespace {

std::uint32_t random_key() {
  std::uint32_t v = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof v) != 1) {
    // OpenSSL's generator failed (should not happen); fall back to the OS source.
    std::random_device rd;
    v = rd();
  }
  return v;
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
