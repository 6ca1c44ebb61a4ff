// Read-buffer blocks shared by the sessions of one thread.
//
// Why: a session spends nearly all of its life waiting for its client, and a
// waiting session has nothing to keep in a read buffer. Giving every session
// two buffers of its own ([proxy] buffer_size per direction, 8 KiB by default)
// put 16 KiB of heap in every idle session. As PgBouncer does with its shared
// packet buffers, a ReadBuffer (proxy/buffer.hpp) now holds a block only while
// it has bytes to move: it takes one when a read starts and gives it back as
// soon as every byte read has been forwarded. The pumps wait for readability
// without a block (Stream::wait_readable), so an idle session holds none.
//
// How: each thread keeps a short LIFO stack of free blocks of one size. Taking
// and giving are a pointer pop and push, so forwarding still allocates
// nothing, and the block a session gives back is the one the next read on the
// thread takes, still warm in the cache. Sessions live on one I/O thread, so
// no lock is needed; a block given back on another thread (a session freed
// there) simply joins that thread's stack.
//
// Bounds: at most kKeep blocks wait per thread; more are freed. A block is in
// use only between a read and the end of the write that forwards it (or while
// a partial message waits for its end), so on a thread few are in use at
// once, and the stack covers them. Only blocks of the thread's block size
// (the first size asked for: every ReadBuffer of the process uses [proxy]
// buffer_size) are kept; other sizes (tests, a grown buffer) are plain
// new/delete.
#pragma once

#include <cstddef>
#include <memory>

namespace pgshift::proxy::buffer_pool {

// Free blocks kept per thread (kKeep * buffer_size bytes at most).
inline constexpr std::size_t kKeep = 32;

// A block of `size` bytes: a free one of this thread, or a new one.
std::unique_ptr<char[]> take(std::size_t size);
// Gives a block of `size` bytes back to this thread.
void give(std::unique_ptr<char[]> block, std::size_t size) noexcept;
// Free blocks this thread keeps (for tests).
std::size_t kept() noexcept;

}  // namespace pgshift::proxy::buffer_pool
