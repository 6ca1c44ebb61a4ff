// Per-direction buffers of the data path. A ReadBuffer holds the bytes read
// from one socket; messages are framed in place and forwarded from it
// untouched. Its storage is a block of the thread's pool
// (proxy/buffer_pool.hpp), held only while there are bytes to move: taken by
// prepare() or reserve(), given back by release_when_empty(), so a session
// waiting for its client holds none. A WriteBatch gathers what one write
// sends: runs of the read buffer (adjacent messages coalesce into one run) and
// the few messages pgshift writes itself. Both reuse storage, so forwarding
// allocates nothing.
#pragma once

#include <boost/asio/buffer.hpp>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pgshift::proxy {

class ReadBuffer {
 public:
  explicit ReadBuffer(std::size_t capacity);
  ~ReadBuffer();
  ReadBuffer(const ReadBuffer&) = delete;
  ReadBuffer& operator=(const ReadBuffer&) = delete;

  std::string_view data() const noexcept { return {base_.get() + begin_, end_ - begin_}; }
  std::size_t size() const noexcept { return end_ - begin_; }
  std::size_t capacity() const noexcept { return capacity_; }

  // Whether it holds storage (a pool block, or memory grown for a large message).
  bool holds_storage() const noexcept { return base_ != nullptr; }

  // Free space at the tail for the next read, compacting first when the tail
  // is short; takes a block from the pool when it holds none.
  boost::asio::mutable_buffer prepare();
  void commit(std::size_t n) noexcept { end_ += n; }
  void consume(std::size_t n) noexcept;

  // Makes room for one message of `total` bytes (grows beyond the default size
  // only for messages that must be seen whole). Returns false when the
  // allocation fails or the growth would pass the process's budget for such
  // bytes ([proxy] max_buffered_bytes, proxy/memory_budget.hpp).
  bool reserve(std::size_t total);
  // With no byte buffered: gives its storage back (a default-size block to
  // the pool, memory grown for a large message to the system and the budget).
  // Views of consumed bytes die with it. The next prepare() takes a block again.
  void release_when_empty() noexcept;

 private:
  void compact() noexcept;
  void take_block();

  std::unique_ptr<char[]> base_;  // null: none held
  std::size_t capacity_;          // of base_, or what prepare() will take
  std::size_t default_capacity_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::size_t held_ = 0;  // taken from the budget: the grown capacity, 0 at the default
};

// A buffer sequence over a WriteBatch's storage that Asio can copy for free
// (a std::vector would be copied, with an allocation, by every async_write).
struct BufferView {
  const boost::asio::const_buffer* first;
  const boost::asio::const_buffer* last;
  const boost::asio::const_buffer* begin() const noexcept { return first; }
  const boost::asio::const_buffer* end() const noexcept { return last; }
};

class WriteBatch {
 public:
  // Forwards original bytes (they must stay valid until the write completes).
  void forward(std::string_view bytes);
  // Room for a message pgshift writes itself; append a complete message to it.
  std::string& own();
  // Marks the end of an own() message so later forwards keep their order.
  void seal_own();

  bool empty() const noexcept { return segments_.empty() && own_.size() == own_sealed_; }
  // Valid until the batch changes.
  BufferView buffers();
  void clear() noexcept;

 private:
  struct Segment {
    const char* data;   // nullptr: an own() range
    std::size_t offset;
    std::size_t size;
  };
  std::vector<Segment> segments_;
  std::vector<boost::asio::const_buffer> buffers_;
  std::string own_;
  std::size_t own_sealed_ = 0;
};

}  // namespace pgshift::proxy
