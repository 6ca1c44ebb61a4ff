// The settings a reload can change while pgshift runs (rename rules, read
// sampling, compare noise rules, log level, guardrails, timeouts), and how
// every reader sees one whole version of them, never a half-changed one.
//
// `Settings` is immutable once published. The authoritative copy is a
// shared_ptr swapped whole (LiveSettings), read once per command by the
// admin console, the coordinator and the HTTP API. I/O threads never touch
// it on their data path: a reload posts each thread its new version (with
// rewriters built for it) into that thread's IoThread, which only that
// thread reads, and a session compares a version number there when a new
// statement starts, adopting the new version when no reply is pending.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "config/config.hpp"
#include "rewrite/rewrite.hpp"

namespace pgshift::proxy {

struct Settings {
  std::uint64_t version = 1;  // 1: as started; each applied reload adds one
  std::string applied_at;     // RFC 3339
  std::string applied_by;     // "start", "SIGHUP", "console 127.0.0.1:5555 user pgshift"...
  // The effective configuration: the parts that cannot change live as
  // pgshift started, the others as last reloaded.
  config::Config cfg;
};
using SettingsPtr = std::shared_ptr<const Settings>;

// The current version, swapped whole. (A mutex rather than
// std::atomic<std::shared_ptr>: it is read once per command, never on the
// data path, and libstdc++ 12's atomic shared_ptr is young.)
class LiveSettings {
 public:
  SettingsPtr get() const {
    std::lock_guard lock(mutex_);
    return current_;
  }
  void set(SettingsPtr s) {
    std::lock_guard lock(mutex_);
    current_.swap(s);
  }

 private:
  mutable std::mutex mutex_;
  SettingsPtr current_;
};

// What one I/O thread's sessions use: touched only on that thread.
struct IoThread {
  SettingsPtr settings;
  std::array<std::shared_ptr<rewrite::Rewriter>, 2> rewriters;  // by config::Side
  std::uint64_t version = 0;  // == settings->version
};

// The rewriter options for the rules that apply on the way to one database,
// with the cache split between `threads` I/O threads.
rewrite::Options rewrite_options(const config::Config& cfg, unsigned threads, config::RenameSide side);
// An I/O thread's state for `s`.
void build_io_thread(IoThread& t, SettingsPtr s, unsigned threads);

}  // namespace pgshift::proxy
