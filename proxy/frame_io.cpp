#include "proxy/frame_io.hpp"

namespace pgshift::proxy {

awaitable<error_code> fill(Stream& s, ReadBuffer& in, std::size_t n) {
  while (in.size() < n) {
    auto [ec, got] = co_await s.read_some(in.prepare());
    if (ec) co_return ec;
    in.commit(got);
  }
  co_return error_code{};
}

awaitable<error_code> read_frame(Stream& s, ReadBuffer& in, protocol::Direction dir, const protocol::Limits& limits,
                                 protocol::Frame& out) {
  if (auto ec = co_await fill(s, in, protocol::header_size)) co_return ec;
  protocol::Header h;
  if (auto ec = protocol::decode_header(in.data(), dir, limits, h)) co_return ec;
  if (!in.reserve(h.total())) co_return make_error_code(std::errc::not_enough_memory);
  if (auto ec = co_await fill(s, in, h.total())) co_return ec;
  out = protocol::parse_frame(in.data(), dir, limits).frame;
  co_return error_code{};
}

bool complete_frame_buffered(const ReadBuffer& in, protocol::Direction dir, const protocol::Limits& limits) {
  return protocol::parse_frame(in.data(), dir, limits).status == protocol::ParseStatus::complete;
}

awaitable<error_code> flush(Stream& s, WriteBatch& batch) {
  if (batch.empty()) co_return error_code{};
  auto [ec, n] = co_await s.write(batch.buffers());
  batch.clear();
  co_return ec;
}

}  // namespace pgshift::proxy
