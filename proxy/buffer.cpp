#include "proxy/buffer.hpp"

#include <cstring>
#include <new>

#include "proxy/buffer_pool.hpp"
#include "proxy/memory_budget.hpp"

namespace pgshift::proxy {

namespace {
constexpr std::size_t kOwnKeep = 64 * 1024;
}  // namespace

ReadBuffer::ReadBuffer(std::size_t capacity) : capacity_(capacity), default_capacity_(capacity) {}

ReadBuffer::~ReadBuffer() {
  begin_ = end_ = 0;  // whatever is left is dropped with the buffer
  release_when_empty();
}

void ReadBuffer::take_block() {
  base_ = buffer_pool::take(default_capacity_);
  capacity_ = default_capacity_;
  begin_ = end_ = 0;
}

void ReadBuffer::compact() noexcept {
  if (begin_ == 0) return;
  const std::size_t n = size();
  if (n) std::memmove(base_.get(), base_.get() + begin_, n);
  begin_ = 0;
  end_ = n;
}

boost::asio::mutable_buffer ReadBuffer::prepare() {
  if (!base_) take_block();
  if (begin_ == end_) begin_ = end_ = 0;
  // Compact when less than a quarter of the buffer is free at the tail.
  if (capacity_ - end_ < capacity_ / 4) compact();
  return {base_.get() + end_, capacity_ - end_};
}

void ReadBuffer::consume(std::size_t n) noexcept {
  begin_ += n;
  if (begin_ == end_) begin_ = end_ = 0;
}

bool ReadBuffer::reserve(std::size_t total) {
  if (total <= capacity_) {
    if (!base_) take_block();
    if (capacity_ - begin_ < total) compact();
    return true;
  }
  // The growth is held against the process's budget until release_when_empty.
  if (!buffer_budget().try_acquire(total - held_)) return false;
  std::unique_ptr<char[]> bigger(new (std::nothrow) char[total]);
  if (!bigger) {
    buffer_budget().release(total - held_);
    return false;
  }
  const std::size_t n = size();
  if (n) std::memcpy(bigger.get(), base_.get() + begin_, n);
  if (held_ == 0) buffer_pool::give(std::move(base_), default_capacity_);  // the block it had
  held_ = total;
  base_ = std::move(bigger);
  capacity_ = total;
  begin_ = 0;
  end_ = n;
  return true;
}

void ReadBuffer::release_when_empty() noexcept {
  if (!base_ || size() != 0) return;
  if (held_ == 0) {
    buffer_pool::give(std::move(base_), default_capacity_);
  } else {  // grown for a large message: that memory goes back to the system
    base_.reset();
    buffer_budget().release(held_);
    held_ = 0;
  }
  capacity_ = default_capacity_;
  begin_ = end_ = 0;
}

void WriteBatch::forward(std::string_view bytes) {
  if (bytes.empty()) return;
  if (!segments_.empty()) {
    Segment& last = segments_.back();
    if (last.data && last.data + last.size == bytes.data()) {
      last.size += bytes.size();
      return;
    }
  }
  segments_.push_back({bytes.data(), 0, bytes.size()});
}

std::string& WriteBatch::own() { return own_; }

void WriteBatch::seal_own() {
  if (own_.size() == own_sealed_) return;
  segments_.push_back({nullptr, own_sealed_, own_.size() - own_sealed_});
  own_sealed_ = own_.size();
}

BufferView WriteBatch::buffers() {
  seal_own();
  buffers_.clear();
  for (const Segment& s : segments_)
    buffers_.emplace_back(s.data ? s.data : own_.data() + s.offset, s.size);
  return {buffers_.data(), buffers_.data() + buffers_.size()};
}

void WriteBatch::clear() noexcept {
  segments_.clear();
  buffers_.clear();
  // A rewritten huge statement grew it: give that back rather than keep it per session.
  if (own_.capacity() > kOwnKeep) std::string().swap(own_);
  own_.clear();
  own_sealed_ = 0;
}

}  // namespace pgshift::proxy
