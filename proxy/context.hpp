// What every session shares: the configuration, TLS contexts, the cancel key
// registry, the counters the listener uses to drain, and the cutover's view
// of the sessions (which server serves, who must move at a switch).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <unordered_set>

#include "config/config.hpp"
#include "protocol/frame.hpp"
#include "proxy/auth_query.hpp"
#include "proxy/cancel_registry.hpp"
#include "proxy/memory_budget.hpp"
#include "proxy/cutover/members.hpp"
#include "proxy/live.hpp"
#include "shadow/mirror.hpp"
#include "shadow/mismatch_log.hpp"

namespace pgshift::proxy {

class Session;
class CatalogLoader;
namespace cutover {
class Coordinator;
}
class Reloader;
class Metrics;
namespace verify {
class Verifier;
}

struct ProxyContext {
  explicit ProxyContext(config::Config c) : cfg(std::move(c)) {
    limits.large = cfg.max_message_size;
    auto s = std::make_shared<Settings>();
    s->cfg = cfg;
    s->applied_by = "start";
    settings.set(std::move(s));
    buffer_budget().set_limit(cfg.max_buffered_bytes);
  }

  // The configuration pgshift started with. Settings a reload can change are
  // read from `settings` instead (live.hpp).
  const config::Config cfg;
  LiveSettings settings;
  const std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::atomic<std::uint64_t> next_session_id{0};
  protocol::Limits limits;
  std::unique_ptr<ssl::context> client_tls;  // null when client TLS is disabled
  std::unique_ptr<ssl::context> server_tls;  // null when server TLS is disabled
  CancelRegistry cancels;
  std::unique_ptr<ssl::context> shadow_tls;  // null when the shadow's TLS is disabled
  std::unique_ptr<shadow::Mirror> mirror;    // null unless [shadow] mirrors
  shadow::CompareRules compare_rules;        // for sampled reads' results

  std::atomic<std::size_t> sessions{0};
  AuthCache auth_cache;  // [auth] auth_query's answers

  // The server that serves clients; a cutover changes it (sessions read it
  // when they connect, after the members' gate).
  std::atomic<config::Side> serving{config::Side::primary};
  ssl::context* tls(config::Side s) const noexcept {
    return s == config::Side::primary ? server_tls.get() : shadow_tls.get();
  }
  cutover::Members members;
  std::atomic<int> read_percent{0};                // CUTOVER READS: share of read-only units for the target
  std::atomic<std::uint64_t> reads_routed{0};      // units the target served
  cutover::Coordinator* coordinator = nullptr;  // null without a [shadow] to switch to
  const shadow::MismatchLog* mismatches = nullptr;  // the applier's, while it mirrors
  Reloader* reloader = nullptr;   // RELOAD, SIGHUP
  Metrics* metrics = nullptr;     // the histograms /metrics serves
  CatalogLoader* catalogs = nullptr;            // null when nothing needs a catalog (no renames, no exact mirroring)
  // Tables with rename rules on either server: never mirrored as captured rows.
  std::vector<std::pair<std::string, std::string>> renamed_tables;
  verify::Verifier* verifier = nullptr;         // the console's VERIFY; null without a [shadow]

  // Live sessions, so a shutdown past its timeout can close them.
  std::mutex live_mutex;
  std::unordered_set<std::shared_ptr<Session>> live;
};

}  // namespace pgshift::proxy
