// One connection end, plain TCP or TLS, with the same read/write calls. It
// starts plain; `accept_tls`/`connect_tls` upgrade it in place after the
// SSLRequest exchange.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <tuple>

#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "proxy/asio.hpp"

namespace pgshift::proxy {

// std::allocator under another name: Asio treats std::allocator as "no
// allocator" and recycles per thread, any other type it calls as is.
template <class T>
struct FittedAllocator {
  using value_type = T;
  FittedAllocator() noexcept = default;
  template <class U>
  FittedAllocator(const FittedAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return std::allocator<T>().allocate(n); }
  void deallocate(T* p, std::size_t n) noexcept { std::allocator<T>().deallocate(p, n); }
  friend bool operator==(FittedAllocator, FittedAllocator) noexcept { return true; }
};

class Stream {
 public:
  explicit Stream(tcp::socket socket) : plain_(std::move(socket)) {}

  bool is_tls() const noexcept { return tls_ != nullptr; }
  tcp::socket& socket() noexcept { return tls_ ? tls_->next_layer() : plain_; }
  SSL* tls_handle() noexcept { return tls_ ? tls_->native_handle() : nullptr; }

  // Server role toward a client.
  awaitable<error_code> accept_tls(ssl::context& ctx);
  // Client role toward a server; `verify_name` set means verify-full against it.
  awaitable<error_code> connect_tls(ssl::context& ctx, const std::string& sni,
                                    const std::string& verify_name);

  // These hand back the operation itself rather than wrap it in a coroutine
  // of their own: one coroutine frame less for every read or write in flight
  // (a TLS session keeps one, waiting in read_some, for as long as it idles).
  template <class MutableBuffers>
  awaitable<std::tuple<error_code, std::size_t>> read_some(const MutableBuffers& b) {
    if (tls_) return tls_->async_read_some(b, use_tuple);
    return plain_.async_read_some(b, use_tuple);
  }

  // Waiting without a buffer, so a session waiting for its peer holds none
  // (proxy/buffer_pool.hpp): wait_readable() returns once the socket is
  // readable, then read_now() reads what it holds without waiting. The wait
  // may wake for readiness an earlier read already used (epoll reports the
  // edge of bytes read before the wait began): read_now() then fails with
  // would_block, and the caller waits again.
  // Plain connections only: over TLS, OpenSSL and Asio's TLS layer may hold
  // decrypted or undelivered bytes that the socket no longer shows, so a TLS
  // connection waits in read_some, with its buffer.
  //
  // The wait's operation state is sized to fit, not taken from Asio's
  // per-thread recycling (which hands out any cached block big enough, often
  // a write's of 500 B): it is what an idle session holds for as long as it
  // idles. One malloc per wait, beside the read and write that follow it.
  bool can_wait_unbuffered() const noexcept { return !tls_; }
  awaitable<std::tuple<error_code>> wait_readable() {
    return plain_.async_wait(tcp::socket::wait_read, asio::bind_allocator(FittedAllocator<void>{}, use_tuple));
  }
  std::size_t read_now(const asio::mutable_buffer& b, error_code& ec) {
    if (!plain_.non_blocking()) {  // once: a synchronous read then never waits
      plain_.non_blocking(true, ec);
      if (ec) return 0;
    }
    return plain_.read_some(b, ec);
  }

  template <class MutableBuffers>
  awaitable<std::tuple<error_code, std::size_t>> read_exactly(const MutableBuffers& b) {
    if (tls_) return asio::async_read(*tls_, b, use_tuple);
    return asio::async_read(plain_, b, use_tuple);
  }

  template <class ConstBuffers>
  awaitable<std::tuple<error_code, std::size_t>> write(const ConstBuffers& b) {
    if (tls_) return asio::async_write(*tls_, b, use_tuple);
    return asio::async_write(plain_, b, use_tuple);
  }

  // Cancels pending operations (the coroutine waiting on them wakes with operation_aborted).
  void cancel() noexcept;
  void close() noexcept;

 private:
  tcp::socket plain_;
  // On the heap, made by the upgrade: Asio's TLS layer is 440 bytes, five
  // times a socket, and a plain connection (a session has two) never needs it.
  std::unique_ptr<ssl::stream<tcp::socket>> tls_;
};

}  // namespace pgshift::proxy
