#include "proxy/cancel_registry.hpp"

#include <sys/random.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <random>

namespace pgshift::proxy {
namespace {

// Keys come from the kernel's generator (getrandom(2)), one call per 256 of
// them, per thread. Not OpenSSL's RAND_bytes: its first call sets up OpenSSL's
// providers and generator, which read 2 MB of libcrypto's code into a
// plaintext pgshift's memory at its first session (bench/idle-sessions), and
// each later call cost about as much as all the rest of pgshift's work for a
// new connection (callgrind, `pgbench -C -S`). A batch is as unpredictable as
// single draws.
bool fill_from_kernel(unsigned char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t got = getrandom(p, n, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    p += got;
    n -= static_cast<std::size_t>(got);
  }
  return true;
}

std::uint32_t random_key() {
  thread_local std::array<std::uint32_t, 256> batch;
  thread_local std::size_t next = batch.size();
  if (next == batch.size()) {
    if (!fill_from_kernel(reinterpret_cast<unsigned char*>(batch.data()), sizeof batch)) {
      std::random_device rd;  // no getrandom (should not happen on Linux 3.17 and later)
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
