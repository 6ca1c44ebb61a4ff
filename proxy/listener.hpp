// The listener: I/O threads (one io_context each, so a session lives on one
// thread and needs no locks), the accept loop that hands each connection to
// the next thread, and the signal handling that drains on SIGTERM/SIGINT.
// Lifecycle only; the protocol lives in Session.
#pragma once

#include <memory>
#include <thread>
#include <vector>

#include "proxy/context.hpp"
#include "proxy/cutover/state.hpp"
#include "proxy/verify/verifier.hpp"
#include "rewrite/rewrite.hpp"

namespace pgshift::proxy {

class Listener {
 public:
  explicit Listener(config::Config cfg);
  ~Listener();

  // Binds, serves until a signal, drains, and returns the exit code.
  int run();

 private:
  awaitable<void> accept_loop();
  awaitable<void> wait_for_signal();
  awaitable<void> clear_diverged_on_signal();
  awaitable<void> reload_on_signal();
  awaitable<void> drain();
  bool restore_state(cutover::State& state);

  ProxyContext ctx_;
  std::vector<std::unique_ptr<asio::io_context>> ios_;
  std::vector<std::unique_ptr<IoThread>> threads_;  // one per I/O thread: its settings and rewriters
  std::unique_ptr<class ShadowApplier> applier_;
  std::unique_ptr<class CatalogLoader> catalogs_;
  std::unique_ptr<cutover::Coordinator> coordinator_;
  std::unique_ptr<class Reloader> reloader_;
  std::unique_ptr<class Metrics> metrics_;
  std::unique_ptr<class HttpServer> http_;
  std::unique_ptr<verify::Verifier> verifier_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::size_t next_io_ = 0;
};

}  // namespace pgshift::proxy
