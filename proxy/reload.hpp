// Hot reload (RELOAD, SIGHUP, POST /api/reload, `pgshift ctl reload`): the
// configuration file is parsed and validated whole; with any problem nothing
// changes and every problem goes back to whoever asked. Otherwise the
// reloadable settings (config::reloadable) become a new version of Settings,
// published to every reader at once (live.hpp): the shared copy, each I/O
// thread's (with rewriters built for the new rules, on that thread) and the
// shadow applier's. Settings that cannot change while pgshift runs are named
// in the answer and left as they were.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "proxy/admin/table.hpp"
#include "proxy/context.hpp"

namespace pgshift::proxy {

class Reloader {
 public:
  struct Thread {
    asio::io_context* io;
    IoThread* state;
  };
  // `to_applier` hands new settings to the shadow applier (may be empty).
  Reloader(ProxyContext& ctx, std::vector<Thread> threads, std::function<void(SettingsPtr)> to_applier);

  // Returns once every I/O thread has the new version, so the next statement
  // of any session uses it. `who` is for the log.
  awaitable<admin::Answer> reload(std::string who);

 private:
  ProxyContext& ctx_;
  std::vector<Thread> threads_;
  std::function<void(SettingsPtr)> to_applier_;
  std::atomic<bool> busy_{false};
};

}  // namespace pgshift::proxy
