// The Asio vocabulary the proxy uses: coroutines, errors as values.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

// With the io_uring backend (PGSHIFT_IO_URING), liburing brings <linux/fs.h>,
// whose BLOCK_SIZE macro breaks moodycamel::ConcurrentQueue's member of that name.
#ifdef BLOCK_SIZE
#undef BLOCK_SIZE
#endif

namespace pgshift::proxy {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using boost::system::error_code;
template <class T = void>
using awaitable = boost::asio::awaitable<T>;

// Completion token: results come back as a tuple beginning with the error_code.
inline constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// True for pgshift::protocol errors (a std::error_code carried inside Boost's
// error_code, whose own category() does not compare equal to the std one).
bool is_protocol_error(const error_code& ec) noexcept;

// End-of-stream conditions that are a normal close, not a failure worth a warning.
bool is_expected_close(const error_code& ec) noexcept;

}  // namespace pgshift::proxy
