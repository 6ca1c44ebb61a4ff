#include "proxy/backend.hpp"

#include "protocol/builder.hpp"
#include "protocol/client_auth.hpp"
#include "protocol/messages.hpp"
#include "proxy/frame_io.hpp"

namespace pgshift::proxy {

using protocol::Direction;

namespace {

// A DataRow's values, as text; false when it is malformed.
bool data_row(const protocol::Frame& f, std::vector<std::optional<std::string>>& out) {
  protocol::Reader r(f.body);
  std::uint16_t n = 0;
  if (!r.u16(n)) return false;
  out.reserve(n);
  for (std::uint16_t i = 0; i < n; ++i) {
    std::uint32_t len = 0;
    if (!r.u32(len)) return false;
    if (len == 0xFFFFFFFFu) {
      out.emplace_back(std::nullopt);
      continue;
    }
    std::string_view v;
    if (!r.bytes(len, v)) return false;
    out.emplace_back(std::string(v));
  }
  return true;
}

}  // namespace

awaitable<bool> login(ServerConn& c, const protocol::Limits& limits, const Params& params,
                      const std::string& password, LoginInfo& info, std::string& error) {
  std::string user;
  for (const auto& [k, v] : params)
    if (k == "user") user = v;
  protocol::ClientAuth auth(user, password);
  co_return co_await login(c, limits, params, auth, info, error);
}

awaitable<bool> login(ServerConn& c, const protocol::Limits& limits, const Params& params, protocol::ClientAuth& auth,
                      LoginInfo& info, std::string& error) {
  std::string out;
  protocol::append_startup_message(out, params);
  if (auto [ec, n] = co_await c.stream.write(asio::buffer(out)); ec) {
    error = "the server closed the connection";
    co_return false;
  }
  for (;;) {
    protocol::Frame f;
    if (co_await read_frame(c.stream, c.in, Direction::backend, limits, f)) {
      error = "the server closed the connection during login";
      co_return false;
    }
    const std::size_t size = f.bytes.size();
    const char type = f.type;
    std::string reply;
    bool failed = false;
    if (type == 'R') {
      failed = auth.on_message(f, reply) == protocol::ClientAuth::Step::failed;
      if (failed) error = "login failed: " + auth.error();
    } else if (type == 'E') {  // during authentication or after it (no such role, database...)
      protocol::ErrorFieldsView e;
      e.parse(f);
      failed = true;
      error = "login failed: " + std::string(e.message.empty() ? "(no message)" : e.message);
      info.refusal.assign(f.bytes);
      info.refusal_sqlstate.assign(e.sqlstate.value_or(""));
    } else if (type == 'S') {
      protocol::ParameterStatusView p;
      if (p.parse(f)) info.server_params.emplace_back(p.name, p.value);
    } else if (type == 'K') {
      protocol::BackendKeyDataView k;
      if (k.parse(f)) {
        info.pid = k.pid;
        info.key = k.key;
      }
    }
    c.in.consume(size);
    if (failed) co_return false;
    if (!reply.empty()) {
      if (auto [ec, n] = co_await c.stream.write(asio::buffer(reply)); ec) {
        error = "the server closed the connection during login";
        co_return false;
      }
    }
    if (type == 'Z') {
      c.pid = info.pid;
      c.key = info.key;
      co_return true;
    }
  }
}

awaitable<bool> exchange(ServerConn& c, const protocol::Limits& limits, const std::string& messages, int readys,
                         QueryResult& result, std::string* passthrough) {
  if (!messages.empty()) {
    if (auto [ec, n] = co_await c.stream.write(asio::buffer(messages)); ec) co_return false;
  }
  while (readys > 0) {
    protocol::Frame f;
    if (co_await read_frame(c.stream, c.in, Direction::backend, limits, f)) co_return false;
    switch (f.type) {
      case 'D': {
        std::vector<std::optional<std::string>> row;
        if (data_row(f, row)) result.rows.push_back(std::move(row));
        break;
      }
      case 'T': {
        protocol::Reader r(f.body);
        std::uint16_t n = 0;
        result.columns.clear();
        std::string_view name, fixed;
        if (r.u16(n))
          for (std::uint16_t i = 0; i < n && r.cstring(name) && r.bytes(18, fixed); ++i) result.columns.emplace_back(name);
        break;
      }
      case 'C': {
        protocol::CommandCompleteView cc;
        if (cc.parse(f)) result.tags.emplace_back(cc.tag);
        break;
      }
      case 'E':
        if (!result.sqlstate) {
          protocol::ErrorFieldsView e;
          e.parse(f);
          result.sqlstate = e.sqlstate ? std::string(*e.sqlstate) : std::string("XX000");
          result.error = e.message.empty() ? "(no message)" : std::string(e.message);
        }
        break;
      case 'A': case 'N': case 'S':
        if (passthrough) passthrough->append(f.bytes);
        break;
      case 'Z':
        --readys;
        break;
      default:
        break;
    }
    c.in.consume(f.bytes.size());
  }
  co_return true;
}

awaitable<bool> simple_query(ServerConn& c, const protocol::Limits& limits, std::string_view sql, QueryResult& result,
                             std::string* passthrough) {
  std::string q;
  protocol::append_query(q, sql);
  co_return co_await exchange(c, limits, q, 1, result, passthrough);
}

}  // namespace pgshift::proxy
