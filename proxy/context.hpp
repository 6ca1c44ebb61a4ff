// What every session shares: the configuration, TLS contexts, the cancel key
// registry and the counters the listener uses to drain.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <unordered_set>

#include "config/config.hpp"
#include "protocol/frame.hpp"
#include "proxy/cancel_registry.hpp"
#include "proxy/memory_budget.hpp"
#include "shadow/mirror.hpp"

namespace pgshift::proxy {

class Session;

struct ProxyContext {
  explicit ProxyContext(config::Config c) : cfg(std::move(c)) {
    limits.large = cfg.max_message_size;
    buffer_budget().set_limit(cfg.max_buffered_bytes);
  }

  const config::Config cfg;
  protocol::Limits limits;
  std::unique_ptr<ssl::context> client_tls;  // null when client TLS is disabled
  std::unique_ptr<ssl::context> server_tls;  // null when server TLS is disabled
  CancelRegistry cancels;
  std::unique_ptr<ssl::context> shadow_tls;  // null when the shadow's TLS is disabled
  std::unique_ptr<shadow::Mirror> mirror;    // null unless [shadow] mirrors
  shadow::CompareRules compare_rules;        // for sampled reads' results

  std::atomic<std::size_t> sessions{0};

  // Live sessions, so a shutdown past its timeout can close them.
  std::mutex live_mutex;
  std::unordered_set<std::shared_ptr<Session>> live;
};

}  // namespace pgshift::proxy
