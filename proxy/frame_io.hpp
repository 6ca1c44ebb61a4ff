// Reading whole messages and writing batches, for the message-at-a-time
// parts of a conversation (login, the shadow applier). The forwarding path
// uses pump() instead.
#pragma once

#include "protocol/frame.hpp"
#include "proxy/buffer.hpp"
#include "proxy/stream.hpp"

namespace pgshift::proxy {

// Reads until `in` holds at least `n` bytes.
awaitable<error_code> fill(Stream& s, ReadBuffer& in, std::size_t n);

// Reads one complete, checked message; `out` views `in` until it is consumed.
awaitable<error_code> read_frame(Stream& s, ReadBuffer& in, protocol::Direction dir, const protocol::Limits& limits,
                                 protocol::Frame& out);

// Whether `in` already holds a complete message (so a read would not wait).
bool complete_frame_buffered(const ReadBuffer& in, protocol::Direction dir, const protocol::Limits& limits);

// Writes the batch (if any) and clears it.
awaitable<error_code> flush(Stream& s, WriteBatch& batch);

}  // namespace pgshift::proxy
