// Maps the BackendKeyData pgshift gave each client to the server connection
// that currently serves it. The session updates the target when it swaps its
// server connection, so the client's key stays valid. Shared by all I/O
// threads; touched only at connect, disconnect, swap and cancel.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "proxy/asio.hpp"

namespace pgshift::proxy {

struct CancelTarget {
  tcp::endpoint server;
  std::uint32_t pid = 0;
  std::uint32_t key = 0;
};

struct ClientKey {
  std::uint32_t pid = 0;
  std::uint32_t key = 0;
};

class CancelRegistry {
 public:
  // Registers a client whose visible pid is `pid` (the first server's, so
  // pg_backend_pid() and notification pids still match) with a fresh random
  // secret key.
  ClientKey add(std::uint32_t pid, const CancelTarget& target);
  void update(const ClientKey& client, const CancelTarget& target);
  void remove(const ClientKey& client);
  std::optional<CancelTarget> find(const ClientKey& client) const;
  std::size_t size() const;

 private:
  static std::uint64_t index(const ClientKey& k) noexcept {
    return (std::uint64_t{k.pid} << 32) | k.key;
  }
  mutable std::mutex mutex_;
  std::unordered_map<std::uint64_t, CancelTarget> map_;
};

}  // namespace pgshift::proxy
