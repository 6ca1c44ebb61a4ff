// The sessions a switch must move, and the gate new sessions wait at while a
// switch pauses traffic. Sessions join and leave from their own I/O threads,
// the coordinator reads from its own, so everything here takes one mutex;
// it is touched once per session (join, leave) and once per switch step.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "proxy/asio.hpp"

namespace pgshift::proxy {
class Session;
}

namespace pgshift::proxy::cutover {

class Members {
 public:
  using Member = std::pair<std::uint64_t, std::weak_ptr<Session>>;

  // Waits while the gate is closed, then adds the session; returns its id.
  // The check and the join happen under one lock, so a session is either in
  // the snapshot close_gate() takes or waits at the gate.
  awaitable<std::uint64_t> admit(std::weak_ptr<Session> session);
  void leave(std::uint64_t id);

  // Closes the gate; returns the members at that instant.
  std::vector<Member> close_gate();
  void open_gate();
  bool gate_closed() const;

  std::vector<Member> snapshot() const;
  std::size_t size() const;
  std::size_t waiting() const;  // sessions held at the gate

 private:
  mutable std::mutex mutex_;
  bool closed_ = false;
  std::uint64_t next_id_ = 0;
  std::map<std::uint64_t, std::weak_ptr<Session>> members_;
  std::vector<std::shared_ptr<asio::steady_timer>> waiting_;  // each on its session's executor
};

}  // namespace pgshift::proxy::cutover
