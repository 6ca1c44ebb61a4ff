#include "proxy/cutover/members.hpp"

#include <algorithm>

namespace pgshift::proxy::cutover {

awaitable<std::uint64_t> Members::admit(std::weak_ptr<Session> session) {
  for (;;) {
    std::shared_ptr<asio::steady_timer> wait;
    {
      std::lock_guard lock(mutex_);
      if (!closed_) {
        const std::uint64_t id = ++next_id_;
        members_.emplace(id, std::move(session));
        co_return id;
      }
      wait = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor,
                                                  asio::steady_timer::time_point::max());
      waiting_.push_back(wait);
    }
    co_await wait->async_wait(use_tuple);  // cancelled by open_gate()
  }
}

void Members::leave(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  members_.erase(id);
}

std::vector<Members::Member> Members::close_gate() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  return {members_.begin(), members_.end()};
}

void Members::open_gate() {
  std::vector<std::shared_ptr<asio::steady_timer>> wake;
  {
    std::lock_guard lock(mutex_);
    closed_ = false;
    wake.swap(waiting_);
  }
  for (auto& t : wake) asio::post(t->get_executor(), [t] { t->cancel(); });
}

bool Members::gate_closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

std::vector<Members::Member> Members::snapshot() const {
  std::lock_guard lock(mutex_);
  return {members_.begin(), members_.end()};
}

std::size_t Members::size() const {
  std::lock_guard lock(mutex_);
  return members_.size();
}

std::size_t Members::waiting() const {
  std::lock_guard lock(mutex_);
  return waiting_.size();
}

}  // namespace pgshift::proxy::cutover
