// The data path of one direction, top to bottom: wait until the socket has
// bytes, read what it has, frame it in place, let the direction's handler
// decide per message, write everything decided in one gathered write, repeat.
// The read buffer holds a block only from the read until its bytes are
// forwarded (proxy/buffer_pool.hpp): a direction with no partial message waits
// without one. Original bytes are forwarded untouched; a message larger than
// the buffer is either grown into (when the handler must see it whole) or
// passed through as it arrives.
//
// A Handler provides:
//   bool must_see_whole(char type)           buffer a large message of this type?
//   void on_stream(const protocol::Header&)  a large message passes through unseen
//   Verdict on_message(const protocol::Frame&, WriteBatch&, error_code&)
//   bool stopping()                          the session is closing
//   Stream& destination()                    where decided messages go (a cutover changes it)
//   awaitable<void> released()               after a `hold`: returns once the message may go
#pragma once

#include <algorithm>

#include "protocol/error.hpp"
#include "protocol/frame.hpp"
#include "proxy/buffer.hpp"
#include "proxy/stats.hpp"
#include "proxy/stream.hpp"

namespace pgshift::proxy {

enum class Verdict {
  forward,     // send the original bytes on
  drop,        // send nothing (the handler may have written its own message to the batch)
  stop_after,  // forward, then end this direction (Terminate)
  fail,        // protocol error in this message: end, error_code set
  hold,        // not yet: send what came before, wait for released(), then decide again
};

struct PumpEnd {
  error_code ec;            // empty when the handler asked to stop
  bool on_write = false;    // the error came from the destination
  char bad_type = 0;        // type byte of the offending message, for error texts
};

// Frames as many whole messages as `data` holds and records the verdicts in
// `out`. Returns the bytes consumed; `grow_to` asks for room for one message.
template <class Handler>
std::size_t frame_messages(std::string_view data, std::size_t& passing, protocol::Direction dir,
                           const protocol::Limits& limits, std::size_t capacity, Handler& h,
                           WriteBatch& out, PumpEnd& end, bool& stop, bool& held, std::size_t& grow_to) {
  std::size_t pos = 0;
  while (pos < data.size()) {
    const std::string_view rest = data.substr(pos);
    if (passing > 0) {  // the tail of a large message, passed through as it arrives
      const std::size_t take = std::min(passing, rest.size());
      out.forward(rest.substr(0, take));
      passing -= take;
      pos += take;
      continue;
    }
    const protocol::ParseResult r = protocol::parse_frame(rest, dir, limits);
    if (r.status == protocol::ParseStatus::error) {
      end.ec = r.error;
      end.bad_type = r.header.type;
      return pos;
    }
    if (r.status == protocol::ParseStatus::need_more) {
      if (rest.size() >= protocol::header_size && r.header.total() > capacity) {
        if (h.must_see_whole(r.header.type)) {
          grow_to = r.header.total();
        } else {
          h.on_stream(r.header);
          out.forward(rest);
          passing = r.header.total() - rest.size();
          pos = data.size();
        }
      }
      return pos;
    }
    switch (h.on_message(r.frame, out, end.ec)) {
      case Verdict::forward:
        out.forward(r.frame.bytes);
        break;
      case Verdict::drop:
        out.seal_own();
        break;
      case Verdict::stop_after:
        out.forward(r.frame.bytes);
        stop = true;
        return pos + r.frame.bytes.size();
      case Verdict::fail:
        end.bad_type = r.frame.type;
        return pos;
      case Verdict::hold:
        held = true;
        return pos;
    }
    pos += r.frame.bytes.size();
  }
  return pos;
}

template <class Handler>
awaitable<PumpEnd> pump(Stream& from, ReadBuffer& in, WriteBatch& out, protocol::Direction dir,
                        const protocol::Limits& limits, Handler h) {
  std::size_t passing = 0;
  PumpEnd end;
  bool buffered = in.size() > 0;  // bytes that arrived with the end of login
  // Bytes are counted once per read and per write, on this thread's block.
  stats::Block& counted = stats::local();
  stats::Tally& read_from = dir == protocol::Direction::frontend ? counted.client_bytes_in : counted.server_bytes_in;
  stats::Tally& written_to = dir == protocol::Direction::frontend ? counted.server_bytes_out : counted.client_bytes_out;
  for (;;) {
    if (h.stopping()) co_return PumpEnd{asio::error::operation_aborted};
    if (!buffered) {
      error_code rec;
      std::size_t n = 0;
      if (in.size() == 0 && from.can_wait_unbuffered()) {
        // No partial message: wait without a buffer, then read what came
        // into one from the pool. A wake-up that finds nothing waits again.
        do {
          in.release_when_empty();
          auto [wec] = co_await from.wait_readable();
          if (wec) co_return PumpEnd{wec};
          n = from.read_now(in.prepare(), rec);
        } while (rec == asio::error::would_block);
      } else {
        auto [ec, got] = co_await from.read_some(in.prepare());
        rec = ec;
        n = got;
      }
      if (rec) co_return PumpEnd{rec};
      in.commit(n);
      read_from += n;
    }
    buffered = false;

    bool stop = false, held = false;
    std::size_t grow_to = 0;
    const std::size_t used = frame_messages(in.data(), passing, dir, limits, in.capacity(), h, out,
                                            end, stop, held, grow_to);
    if (!out.empty()) {
      auto [wec, wn] = co_await h.destination().write(out.buffers());
      out.clear();
      written_to += wn;
      if (wec) co_return PumpEnd{wec, true};
    }
    in.consume(used);
    if (end.ec || stop) co_return end;
    if (held) {  // the held message is still at the front of `in`
      co_await h.released();
      buffered = true;
      continue;
    }
    if (grow_to && !in.reserve(grow_to)) co_return PumpEnd{make_error_code(std::errc::not_enough_memory)};
  }
}

}  // namespace pgshift::proxy
