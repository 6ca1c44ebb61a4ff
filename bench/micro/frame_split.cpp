// Frame splitting throughput: protocol::parse_frame over realistic streams,
// the way the proxy's pump walks its read buffer (one parse_frame per message,
// stopping at an incomplete message and resuming once more bytes arrived).
//
// Counters: GB (10^9 bytes) and Mmsg (10^6 messages) per second of CPU time,
// and B/msg, the stream's average message size.
// The argument is the read size: 8192 mimics pgshift's default buffer_size
// (each read window ends mid-message and the remainder is framed again with
// the next read); 0 frames the whole stream in one go.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

#include "micro/traffic.hpp"
#include "protocol/frame.hpp"

namespace {

using pgshift::protocol::Direction;
using pgshift::protocol::Limits;
using pgshift::protocol::ParseStatus;

constexpr std::size_t stream_bytes = 256 * 1024;  // fits in L2, like a hot read buffer

struct Split {
  std::size_t consumed = 0;  // bytes of whole messages
  std::size_t messages = 0;
  unsigned checksum = 0;     // depends on every frame, so nothing is optimized away
  bool error = false;
};

// Frames every whole message at the start of `window`, like frame_messages()
// in proxy/pump.hpp.
Split split_window(std::string_view window, Direction dir, const Limits& limits) {
  Split s;
  while (s.consumed < window.size()) {
    const auto r = pgshift::protocol::parse_frame(window.substr(s.consumed), dir, limits);
    if (r.status != ParseStatus::complete) {
      s.error = r.status == ParseStatus::error;
      break;
    }
    s.checksum += static_cast<unsigned char>(r.frame.type) + r.frame.body.size();
    s.consumed += r.frame.bytes.size();
    ++s.messages;
  }
  return s;
}

// Walks the whole stream in reads of `read_size` bytes (0: one read).
Split split_stream(std::string_view stream, std::size_t read_size, Direction dir,
                   const Limits& limits) {
  Split total;
  std::size_t pos = 0;
  while (pos < stream.size()) {
    const std::size_t end =
        read_size == 0 ? stream.size() : std::min(stream.size(), pos + read_size);
    const Split s = split_window(stream.substr(pos, end - pos), dir, limits);
    if (s.error || (s.consumed == 0 && end == stream.size())) {
      total.error = true;
      break;
    }
    total.messages += s.messages;
    total.checksum += s.checksum;
    // A message longer than the read would be passed through as it arrives;
    // none of these streams has one, so no progress means the read was too short.
    pos += s.consumed == 0 ? end - pos : s.consumed;
  }
  total.consumed = pos;
  return total;
}

void run(benchmark::State& state, const std::string& stream, Direction dir) {
  const Limits limits;
  const auto read_size = static_cast<std::size_t>(state.range(0));
  const Split check = split_stream(stream, read_size, dir, limits);
  if (check.error || check.consumed != stream.size()) {
    state.SkipWithError("the stream does not frame cleanly");
    return;
  }
  for (auto _ : state) {
    Split s = split_stream(stream, read_size, dir, limits);
    benchmark::DoNotOptimize(s);
  }
  const double bytes = static_cast<double>(stream.size());
  const auto per_second = benchmark::Counter::kIsIterationInvariantRate;
  state.counters["GB"] = benchmark::Counter(bytes / 1e9, per_second);
  state.counters["Mmsg"] = benchmark::Counter(static_cast<double>(check.messages) / 1e6, per_second);
  state.counters["B/msg"] = bytes / static_cast<double>(check.messages);
}

void BM_SplitFrontendMix(benchmark::State& state) {
  static const std::string stream = pgshift::bench::frontend_mix(stream_bytes);
  run(state, stream, Direction::frontend);
}

void BM_SplitBackendWideRows(benchmark::State& state) {
  static const std::string stream = pgshift::bench::backend_rows(stream_bytes, true);
  run(state, stream, Direction::backend);
}

void BM_SplitBackendNarrowRows(benchmark::State& state) {
  static const std::string stream = pgshift::bench::backend_rows(stream_bytes, false);
  run(state, stream, Direction::backend);
}

}  // namespace

BENCHMARK(BM_SplitFrontendMix)->ArgName("read")->Arg(8192)->Arg(0);
BENCHMARK(BM_SplitBackendWideRows)->ArgName("read")->Arg(8192)->Arg(0);
BENCHMARK(BM_SplitBackendNarrowRows)->ArgName("read")->Arg(8192)->Arg(0);
