// A session's part in the operator interface: what SHOW SESSIONS shows, and
// adopting the settings of a reload.
#include <spdlog/spdlog.h>

#include "proxy/session.hpp"

namespace pgshift::proxy {

// The strings info() reads are written during login on the session's
// thread: a session still logging in shows only its id (the flag's store
// publishes them).
SessionInfo Session::status() const {
  if (!shared_logged_in_.load(std::memory_order_acquire)) {
    SessionInfo i;
    i.session = id_;
    i.peer = "?";
    i.started = i.status_since = std::chrono::steady_clock::now();
    return i;
  }
  SessionInfo i = info();
  i.session = id_;
  i.logged_in = true;
  i.admin = admin_ != nullptr;
  const QueryHook::Counters& c = hook_.counters();
  i.statements = c.statements.get();
  i.last_fingerprint = c.last_fingerprint.load(std::memory_order_relaxed);
  return i;
}

// Runs on the session's thread when a client message arrives and the
// thread's settings are newer than the session's. While replies are pending
// the hook's bookkeeping belongs to the rules the statements were sent with,
// during a cutover the target's statements were prepared with the old ones,
// and a read routed to the target holds the other connection: the session
// then asks again at its next message.
void Session::adopt_settings() {
  if (pending_ready_ != 0 || trailing_ || switch_ != SwitchState::none || (sw_ && (sw_->preparing || sw_->target)) || route_ != Route::none)
    return;
  settings_ = thread_.settings;
  settings_version_ = thread_.version;
  rewriter_hold_ = thread_.rewriters;
  rewriters_ = {rewriter_hold_[0].get(), rewriter_hold_[1].get()};
  const auto side = static_cast<std::size_t>(side_);
  hook_.set_rewriter(*rewriters_[side], settings_->cfg.rewrite.strict);
  if (recorder_) {
    recorder_->set_rewriter(*rewriters_[1 - side]);
    recorder_->set_read_sample_rate(settings_->cfg.shadow.read_sample_rate);
  }
  spdlog::debug("session {} ({}) uses settings version {}", id_, peer_, settings_version_);
}

}  // namespace pgshift::proxy
