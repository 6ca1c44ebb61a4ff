#include "proxy/session.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "protocol/builder.hpp"
#include "protocol/log_text.hpp"
#include "protocol/messages.hpp"
#include "proxy/admin/console.hpp"
#include "proxy/frame_io.hpp"

namespace pgshift::proxy {

using namespace asio::experimental::awaitable_operators;
using protocol::Direction;
using protocol::Frame;

namespace {

std::string endpoint_text(const tcp::socket& s) {
  error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (ec) return "?";
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

// PostgreSQL's words for plaintext that came with an encryption request.
constexpr std::string_view kMitmDetail =
    "This could be either a client-software bug or evidence of an attempted man-in-the-middle attack.";

std::string hex_type(char t) {
  static constexpr char digits[] = "0123456789abcdef";
  auto u = static_cast<unsigned char>(t);
  return std::string("0x") + digits[u >> 4] + digits[u & 15];
}

}  // namespace

// ---------------------------------------------------------------------------
// Direction handlers: the place where each message is seen before it moves.

struct Session::ClientSide {
  Session& s;
  bool must_see_whole(char type) const noexcept { return type != 'd'; }  // CopyData streams
  void on_stream(const protocol::Header& h) {
    if (s.recorder_) s.recorder_->on_streamed_client(h.type);
  }
  bool stopping() const noexcept { return s.stopping_; }
  Stream& destination() noexcept { return s.server_->stream; }  // a cutover swaps server_
  awaitable<void> released() { return s.released(); }

  Verdict on_message(const Frame& f, WriteBatch& out, error_code& ec) {
    if (s.switch_ == SwitchState::held) {  // a cutover holds the session at a boundary
      if (s.sw().waiting_since == std::chrono::steady_clock::time_point{}) s.sw().waiting_since = std::chrono::steady_clock::now();
      return Verdict::hold;
    }
    if (s.settings_version_ != s.thread_.version) [[unlikely]] s.adopt_settings();  // a reload
    if (s.catalog_wait_) return Verdict::hold;  // its database's catalog is being read
    // The reads phase: a read-only unit starting here may go to the target
    // (hold it while the server side changes connection).
    if (s.route_ == Route::none && s.switchable_ && s.at_transaction_boundary() && s.route_read(f)) return Verdict::hold;
    switch (f.type) {
      case 'Q':  // simple query: one ReadyForQuery at the end
      case 'S':  // Sync closes an extended-protocol batch
      case 'F':  // FunctionCall
        ++s.pending_ready_;
        s.trailing_ = false;
        break;
      case 'P': case 'B': case 'D': case 'E': case 'C': case 'H':  // part of a batch a Sync will close
        s.trailing_ = true;
        break;
      case 'X':
        s.client_terminated_ = true;
        return Verdict::stop_after;
      case 'p':  // authentication is over; PostgreSQL rejects it here too
        ec = protocol::errc::unknown_message_type;
        return Verdict::fail;
      default:
        break;
    }
    const bool analysed = s.uses_catalog_ && (f.type == 'Q' || f.type == 'P');
    if (analysed) s.catalog_before(f);          // the newest catalog
    const Verdict v = s.hook_.on_client(f, out);  // classify, rewrite
    if (analysed) s.catalog_after(f);           // search_path, DDL
    if (s.switchable_) s.note_client_message(f);  // what a cutover must carry over
    if (s.recorder_) {
      s.recorder_->on_client(f, s.hook_.last_analysis());  // mirror what commits
      if (s.route_ == Route::active) s.recorder_->unsample();  // the target serves it: nothing to compare
    }
    return v;
  }
};

struct Session::ServerSide {
  Session& s;
  bool must_see_whole(char type) const noexcept { return type != 'D' && type != 'd'; }
  void on_stream(const protocol::Header&) noexcept {
    if (s.recorder_) s.recorder_->on_streamed_server();  // a row too large to digest
  }
  // A held session's server side belongs to the cutover until it is released.
  bool stopping() const noexcept { return s.stopping_ || s.switch_ == SwitchState::held || s.route_ == Route::asked; }
  Stream& destination() noexcept { return s.client_; }
  awaitable<void> released() { co_return; }  // this side never holds

  Verdict on_message(const Frame& f, WriteBatch& out, error_code& ec) {
    bool boundary = false;
    switch (f.type) {
      case 'Z': {
        protocol::ReadyForQueryView z;
        if (!z.parse(f)) return malformed(ec);
        s.set_txn_status(z.status);
        if (z.status == 'I') ++stats::local().transactions;
        if (s.pending_ready_ > 0) --s.pending_ready_;
        boundary = s.at_transaction_boundary();
        break;
      }
      case 'S': {
        protocol::ParameterStatusView p;
        if (!p.parse(f)) return malformed(ec);
        s.remember_parameter(p.name, p.value);
        break;
      }
      case 'E':  // a FATAL tells the client why the server is about to close
        if (!s.server_fatal_) s.server_fatal_ = is_fatal(f);
        break;
      case 'K':  // only valid during startup
      case 'R':
        return malformed(ec);
      default:
        break;
    }
    if (s.recorder_) s.recorder_->on_server(f);
    if (s.uses_catalog_) s.catalog_reply(f);
    const Verdict v = s.hook_.on_server(f, out);  // restore renamed output names, drop capture columns
    // A cutover waits for this boundary: forward the ReadyForQuery, then stop.
    // ... and so does a routed read, whose connection goes back here.
    if (boundary && v == Verdict::forward && (s.route_ == Route::active || s.hold_here())) return Verdict::stop_after;
    return v;
  }

  static bool is_fatal(const Frame& f) noexcept {
    protocol::ErrorFieldsView e;
    return e.parse(f) && (e.severity == "FATAL" || e.severity == "PANIC");
  }

  static Verdict malformed(error_code& ec) {
    ec = protocol::errc::malformed_message;
    return Verdict::fail;
  }
};

// ---------------------------------------------------------------------------

Session::Session(tcp::socket client, ProxyContext& ctx, IoThread& thread)
    : ctx_(ctx),
      thread_(thread),
      settings_(thread.settings),
      settings_version_(thread.version),
      rewriter_hold_(thread.rewriters),
      id_(++ctx.next_session_id),
      client_(std::move(client)),
      client_in_(ctx.cfg.buffer_size),
      rewriters_{thread.rewriters[0].get(), thread.rewriters[1].get()},
      hook_(*rewriters_[0], settings_->cfg.rewrite.strict),
      switchable_(ctx.coordinator != nullptr),
      client_side_wake_(client_.socket().get_executor()) {}

Session::~Session() = default;

void Session::terminate(std::string reason) {
  asio::post(client_.socket().get_executor(), [self = shared_from_this(), reason = std::move(reason)] {
    if (self->reason_.empty()) self->reason_ = reason;
    self->stopping_ = true;
    self->client_.cancel();
    if (self->server_) self->server_->stream.cancel();
    if (self->sw_) {
      if (self->sw_->target) self->sw_->target->stream.cancel();
      self->sw_->server_side_wake.cancel();
      self->sw_->catalog_wake.cancel();
    }
    self->client_side_wake_.cancel();
  });
}

awaitable<void> Session::run() {
  auto self = shared_from_this();
  started_ = std::chrono::steady_clock::now();
  shared_status_since_ = started_.time_since_epoch().count();
  peer_ = endpoint_text(client_.socket());
  error_code ignored;
  client_.socket().set_option(tcp::no_delay(true), ignored);

  asio::steady_timer timer(co_await asio::this_coro::executor, settings_->cfg.login_timeout);
  auto logged_in = co_await (login() || timer.async_wait(use_tuple));
  if (logged_in.index() == 1) {
    to_client_.clear();  // a write cut off by the timeout may have sent part of it
    fail("08P01", "pgshift: login timed out", "login timeout");
  } else if (std::get<0>(logged_in) && !stopping_ && admin_) {
    shared_logged_in_ = true;
    reason_ = co_await admin_->serve();
  } else if (std::get<0>(logged_in) && !stopping_) {
    shared_logged_in_ = true;
    forwarding_ = true;
    spawn_client_to_server();
    spawn_direction(server_to_client());
    co_return;  // the direction that ends last finishes the session
  }
  co_await finish();
}

// ---------------------------------------------------------------------------
// Login

awaitable<bool> Session::login() {
  protocol::StartupPacket pkt;
  auto previous = protocol::StartupKind::startup;
  for (;;) {  // SSLRequest and GSSENCRequest come before the StartupMessage
    if (!co_await read_startup_packet(pkt)) co_return false;
    // As PostgreSQL 15: once encrypted, or right after the same request was
    // refused, a negotiation request is an unsupported protocol version.
    const bool negotiation = pkt.kind == protocol::StartupKind::ssl_request ||
                             pkt.kind == protocol::StartupKind::gssenc_request;
    if (negotiation && (client_.is_tls() || pkt.kind == previous)) {
      refuse_negotiation(pkt.kind);
      co_return false;
    }
    previous = pkt.kind;
    switch (pkt.kind) {
      case protocol::StartupKind::ssl_request:
        if (!co_await answer_ssl_request()) co_return false;
        continue;
      case protocol::StartupKind::gssenc_request:
        if (!co_await answer_gssenc_request()) co_return false;
        continue;
      case protocol::StartupKind::cancel_request:
        co_await forward_cancel(pkt);
        co_return false;
      case protocol::StartupKind::startup:
        break;
    }
    break;
  }
  user_ = *pkt.param("user");
  const std::string* db = pkt.param("database");
  database_ = db && !db->empty() ? *db : user_;
  const std::string* app = pkt.param("application_name");
  log_open(app ? *app : std::string_view());


  if (ctx_.cfg.client_tls.mode == config::ClientTlsMode::require && !client_.is_tls()) {
    fail("28000", "pgshift requires an SSL connection (client_tls.mode = require)", "client without TLS refused");
    co_return false;
  }
  // The database "pgshift" is pgshift's own admin console, never a server's.
  if (database_ == "pgshift") {
    admin_ = std::make_unique<admin::Console>(ctx_, client_, client_in_, peer_);
    if (co_await admin_->authenticate(user_, fatal_, reason_)) co_return true;
    warn_close_ = true;
    co_return false;
  }
  counted_ = true;
  if (++ctx_.sessions > settings_->cfg.max_connections) {
    fail("53300", "sorry, too many clients already", "max_connections reached");
    co_return false;
  }
  negotiate_protocol(pkt);
  if (ctx_.cfg.auth.mode == config::AuthMode::pgshift) {
    const bool authenticated = co_await authenticate_client();
    if (!authenticated) co_return false;
  }
  // While a cutover pauses traffic, new sessions wait here, then connect to
  // whichever server serves by then.
  if (ctx_.coordinator) member_ = co_await ctx_.members.admit(weak_from_this());
  side_ = ctx_.serving.load();
  shared_side_ = side_;
  if (side_ != config::Side::primary) hook_.rebind(*rewriters_[static_cast<std::size_t>(side_)], {});
  co_return co_await open_server(pkt);
}

awaitable<bool> Session::read_startup_packet(protocol::StartupPacket& pkt) {
  if (auto ec = co_await fill(client_, client_in_, 4)) {
    reason_ = client_in_.size() ? "client closed during startup" : "client sent nothing";
    co_return false;
  }
  std::error_code lec;
  const std::uint32_t len = protocol::startup_length(client_in_.data(), lec);
  if (lec) {
    fail("08P01", "invalid length of startup packet", "invalid startup packet length");
    co_return false;
  }
  if (!client_in_.reserve(len)) {
    fail_out_of_memory();
    co_return false;
  }
  if (auto ec = co_await fill(client_, client_in_, len)) {
    reason_ = "client closed during startup";
    co_return false;
  }
  const auto perr = protocol::parse_startup(client_in_.data().substr(0, len), pkt);
  client_in_.consume(len);
  if (perr) {
    fail(perr == protocol::errc::startup_no_user ? "28000" : "08P01", perr.message(),
         "bad startup packet: " + perr.message());
    co_return false;
  }
  co_return true;
}

void Session::refuse_negotiation(protocol::StartupKind kind) {
  const bool ssl = kind == protocol::StartupKind::ssl_request;
  fail("0A000",
       std::string("unsupported frontend protocol ") + (ssl ? "1234.5679" : "1234.5680") + ": server supports 3.0 to 3.0",
       ssl ? "repeated SSLRequest" : "repeated GSSENCRequest");
}

// Bytes that came with the SSLRequest were sent before any encryption was
// agreed: never let them count as part of the TLS session (CVE-2021-23214).
// As PostgreSQL 15, they are refused after the answer (and the handshake),
// so a real client sees the error in the channel it expects.
awaitable<bool> Session::answer_ssl_request() {
  const char answer = ctx_.client_tls ? 'S' : 'N';
  if (auto [ec, n] = co_await client_.write(asio::buffer(&answer, 1)); ec) {
    reason_ = "client closed during SSL negotiation";
    co_return false;
  }
  if (ctx_.client_tls) {
    if (auto ec = co_await client_.accept_tls(*ctx_.client_tls)) {
      reason_ = "client TLS handshake failed: " + ec.message();
      warn_close_ = true;
      co_return false;
    }
  }
  if (client_in_.size() != 0) {
    fail("08P01", protocol::make_error_code(protocol::errc::plaintext_after_ssl).message(),
         "plaintext after SSLRequest", kMitmDetail);
    co_return false;
  }
  co_return true;
}

awaitable<bool> Session::answer_gssenc_request() {
  const char answer = 'N';  // pgshift does not terminate GSSAPI encryption
  if (auto [ec, n] = co_await client_.write(asio::buffer(&answer, 1)); ec) {
    reason_ = "client closed during GSS negotiation";
    co_return false;
  }
  if (client_in_.size() != 0) {
    fail("08P01", "received unencrypted data after GSSAPI encryption request", "plaintext after GSSENCRequest",
         kMitmDetail);
    co_return false;
  }
  co_return true;
}

awaitable<void> Session::forward_cancel(const protocol::StartupPacket& pkt) {
  reason_ = "cancel request";
  auto target = ctx_.cancels.find({pkt.cancel_pid, pkt.cancel_key});
  if (!target) {
    reason_ = "cancel request for an unknown key";
    co_return;
  }
  tcp::socket sock(co_await asio::this_coro::executor);
  asio::steady_timer timer(sock.get_executor(), ctx_.cfg.primary.connect_timeout);
  auto connected = co_await (sock.async_connect(target->server, use_tuple) || timer.async_wait(use_tuple));
  if (connected.index() == 1 || std::get<0>(std::get<0>(connected))) {
    reason_ = "cancel request: could not reach the server";
    warn_close_ = true;
    co_return;
  }
  std::string request;
  protocol::append_cancel_request(request, target->pid, target->key);
  co_await asio::async_write(sock, asio::buffer(request), use_tuple);
  reason_ = "cancel request forwarded to server pid " + std::to_string(target->pid);
}

// pgshift speaks protocol 3.0 to the server and answers newer minor versions
// and `_pq_.` options itself, as PostgreSQL 15 does (before authentication).
void Session::negotiate_protocol(const protocol::StartupPacket& pkt) {
  std::vector<std::string_view> unrecognized;
  for (const auto& kv : pkt.params)
    if (kv.first.starts_with("_pq_.")) unrecognized.push_back(kv.first);
  if (pkt.minor > protocol::protocol_minor || !unrecognized.empty())
    protocol::append_negotiate_protocol_version(to_client_.own(), protocol::protocol_minor, unrecognized);
}

awaitable<bool> Session::open_server(const protocol::StartupPacket& pkt) {
  std::vector<std::pair<std::string, std::string>> params;
  for (const auto& kv : pkt.params) {
    if (kv.first.starts_with("_pq_.")) continue;  // answered by negotiate_protocol()
    if (kv.first == "database") params.emplace_back(kv.first, ctx_.cfg.database_on(side_, database_));
    else params.push_back(kv);
  }
  if (ctx_.cfg.auth.mode == config::AuthMode::pgshift) co_return co_await log_in_as_client(std::move(params));
  server_ = std::make_unique<ServerConn>(tcp::socket(co_await asio::this_coro::executor), ctx_.cfg.buffer_size);
  const ConnectResult res = co_await connect_server(ctx_.cfg.upstream(side_), ctx_.tls(side_), *server_);
  if (res.ec) {
    fail("08006", "pgshift: " + res.detail, res.detail);
    co_return false;
  }
  protocol::append_startup_message(to_server_.own(), params);
  startup_params_ = std::move(params);
  if (co_await flush(server_->stream, to_server_)) {
    fail("08006", "pgshift: the server closed the connection during startup", "server closed during startup");
    co_return false;
  }
  co_return co_await relay_authentication();
}

// Relays the server's authentication exchange. Everything is forwarded as is,
// except that SCRAM-SHA-256-PLUS is never offered: channel binding would bind
// to pgshift's TLS connection to the server, not to the client's.
awaitable<bool> Session::relay_authentication() {
  for (;;) {
    // Several replies usually arrive together (AuthenticationOk, a dozen
    // ParameterStatus, BackendKeyData, ReadyForQuery): write them in one go,
    // only when the next one has to be waited for.
    if (!complete_frame_buffered(server_->in, Direction::backend, ctx_.limits) && co_await flush(client_, to_client_)) {
      reason_ = "client closed during authentication";
      co_return false;
    }
    Frame f;
    if (auto ec = co_await read_frame(server_->stream, server_->in, Direction::backend, ctx_.limits, f)) {
      if (is_protocol_error(ec))
        fail("08P01", "pgshift: the server sent an invalid message during startup", "server protocol violation: " + ec.message());
      else
        fail("08006", "pgshift: the server closed the connection during startup", "server closed during startup");
      co_return false;
    }
    const std::size_t size = f.bytes.size();
    bool needs_reply = false;
    bool ok = true;
    bool done = false;
    switch (f.type) {
      case 'R':
        ok = on_auth_request(f, needs_reply);
        break;
      case 'K': {
        protocol::BackendKeyDataView k;
        if (!(ok = k.parse(f))) break;
        server_->pid = k.pid;
        server_->key = k.key;
        client_key_ = ctx_.cancels.add(k.pid, CancelTarget{server_->endpoint, k.pid, k.key});
        key_registered_ = true;
        protocol::append_backend_key_data(to_client_.own(), client_key_.pid, client_key_.key);
        break;
      }
      case 'S': {
        protocol::ParameterStatusView p;
        if ((ok = p.parse(f))) remember_parameter(p.name, p.value);
        to_client_.own().append(f.bytes);
        break;
      }
      case 'Z': {
        protocol::ReadyForQueryView z;
        if ((ok = z.parse(f))) set_txn_status(z.status);
        to_client_.own().append(f.bytes);
        done = true;
        break;
      }
      case 'E': {
        protocol::ErrorFieldsView e;
        e.parse(f);
        reason_ = "server refused: " + (e.message.empty() ? std::string("(no message)") : protocol::log_text(e.message));
        to_client_.own().append(f.bytes);
        server_->in.consume(size);
        co_await flush(client_, to_client_);
        co_return false;
      }
      case 'N':
        to_client_.own().append(f.bytes);
        break;
      case 'v':  // we asked for 3.0 without options; nothing to tell the client
        break;
      default:
        ok = false;
    }
    server_->in.consume(size);
    if (!ok) {
      fail("08P01", "pgshift: the server sent an invalid message during startup",
           "server protocol violation during startup (type " + hex_type(f.type) + ")");
      co_return false;
    }
    if (done) {
      if (co_await flush(client_, to_client_)) {
        reason_ = "client closed during startup";
        co_return false;
      }
      start_mirroring();
      setup_catalog();
      co_return true;
    }
    if (needs_reply && !co_await relay_auth_reply()) co_return false;
  }
}

bool Session::on_auth_request(const Frame& f, bool& needs_reply) {
  protocol::AuthenticationView a;
  if (!a.parse(f)) return false;
  needs_reply = a.expects_response();
  if (a.code != static_cast<std::uint32_t>(protocol::AuthCode::sasl)) {
    to_client_.own().append(f.bytes);
    return true;
  }
  std::vector<std::string_view> offered;
  protocol::Reader r(a.data);
  std::string_view mech;
  while (r.cstring(mech) && !mech.empty())
    if (!mech.ends_with("-PLUS")) offered.push_back(mech);
  if (offered.empty()) return false;
  protocol::append_authentication_sasl(to_client_.own(), offered);
  return true;
}

awaitable<bool> Session::relay_auth_reply() {
  if (co_await flush(client_, to_client_)) {
    reason_ = "client closed during authentication";
    co_return false;
  }
  Frame reply;
  if (auto ec = co_await read_frame(client_, client_in_, Direction::frontend, ctx_.limits, reply)) {
    if (is_protocol_error(ec)) fail("08P01", ec.message(), "client protocol violation: " + ec.message());
    else reason_ = "client closed during authentication";
    co_return false;
  }
  if (reply.type != 'p') {
    fail("08P01", "expected password response, got message type " + hex_type(reply.type),
         "client protocol violation during authentication");
    co_return false;
  }
  to_server_.own().append(reply.bytes);
  client_in_.consume(reply.bytes.size());
  if (co_await flush(server_->stream, to_server_)) {
    fail("08006", "pgshift: the server closed the connection during authentication", "server closed during authentication");
    co_return false;
  }
  co_return true;
}

// ---------------------------------------------------------------------------
// Forwarding

// Each direction on a coroutine of its own, and run() returns: an idle
// session keeps only the two pumps' frames. Not `co_await (one direction &&
// the other)`, which kept run()'s frame and a parallel group's
// state as well, about 2 KB more per session (bench/idle-sessions). An
// exception ends the session instead of being lost with it.
void Session::spawn_direction(awaitable<void> direction) {
  asio::co_spawn(client_.socket().get_executor(), std::move(direction),
                 [self = shared_from_this()](std::exception_ptr e) { self->direction_ended(e); });
}

// The client's direction is the pump itself, with no coroutine around it:
// one frame less for every idle session.
void Session::spawn_client_to_server() {
  asio::co_spawn(client_.socket().get_executor(),
                 pump(client_, client_in_, to_server_, Direction::frontend, ctx_.limits, ClientSide{*this}),
                 [self = shared_from_this()](std::exception_ptr e, PumpEnd end) {
                   if (!e) self->end_forwarding(end, true);
                   self->direction_ended(e);
                 });
}

void Session::direction_ended(std::exception_ptr e) {
  if (e) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      what = x.what();
    } catch (...) {
    }
    spdlog::error("session {}: internal error: {}", id_, what);
    if (!stopping_) end_forwarding(PumpEnd{make_error_code(asio::error::operation_aborted)}, false);  // ends the other
    fail("XX000", "pgshift: internal error", "internal error: " + what);
  }
  if (--directions_ > 0) return;
  asio::co_spawn(client_.socket().get_executor(), [self = shared_from_this()]() -> awaitable<void> {
    co_await self->finish();
  }, asio::detached);
}

// Also where a cutover takes the session over at a transaction boundary:
// hold() owns the server connection until the session goes on, on the same
// server or on the other.
awaitable<void> Session::server_to_client() {
  for (;;) {
    if (!stopping_ && hold_here()) {
      if (!co_await hold()) co_return;  // hold() ended the session and said why
    }
    ServerSide h{*this};
    const PumpEnd end = co_await pump(server_->stream, server_->in, to_client_, Direction::backend, ctx_.limits, h);
    if (!stopping_ && route_ == Route::asked) {  // a read to serve from the target
      co_await start_route();
      continue;
    }
    if (!stopping_ && route_ == Route::active && at_transaction_boundary()) {  // it was served
      end_route();
      continue;
    }
    if (!stopping_ && switch_ == SwitchState::held) continue;
    end_forwarding(end, false);
    co_return;
  }
}

// The first direction to end decides the reason and wakes the other, whose
// pending read is cancelled (its writes are left to complete).
void Session::end_forwarding(const PumpEnd& end, bool from_client) {
  if (stopping_) return;
  stopping_ = true;
  if (sw_) {  // a cutover's hold() or prepare step may be waiting
    sw_->server_side_wake.cancel();
    sw_->catalog_wake.cancel();
  }
  client_side_wake_.cancel();
  const bool protocol_error = is_protocol_error(end.ec);
  const bool out_of_memory = is_out_of_memory(end.ec);
  if (from_client) {
    if (server_) server_->stream.cancel();
    if (out_of_memory) {
      fail_out_of_memory();
    } else if (protocol_error) {
      std::string msg = end.ec == protocol::errc::unknown_message_type
                            ? "invalid frontend message type " + hex_type(end.bad_type)
                            : end.ec.message() + " (message type " + hex_type(end.bad_type) + ")";
      fail("08P01", msg, "client protocol violation: " + msg);
    } else if (client_terminated_) {
      reason_ = "client terminated";
    } else if (end.on_write) {
      reason_ = "server connection lost: " + end.ec.message();
      warn_close_ = true;
    } else {
      reason_ = is_expected_close(end.ec) ? "client disconnected" : "client connection error: " + end.ec.message();
    }
  } else {
    client_.cancel();
    if (out_of_memory) {
      fail_out_of_memory();
    } else if (protocol_error) {
      fail("08P01", "pgshift: the server sent an invalid message",
           "server protocol violation: " + end.ec.message() + " (message type " + hex_type(end.bad_type) + ")");
    } else if (end.on_write) {
      reason_ = is_expected_close(end.ec) ? "client disconnected" : "client connection error: " + end.ec.message();
    } else if (!server_fatal_) {
      // Killed or crashed without a word: say so, or the client only sees the socket close.
      fail("08006", "pgshift: lost the connection to the server", "server closed the connection");
    } else {
      reason_ = "server closed the connection";
      warn_close_ = !is_expected_close(end.ec);
    }
  }
}

// ---------------------------------------------------------------------------
// Helpers

void Session::fail(std::string_view sqlstate, std::string message, std::string reason, std::string_view detail) {
  fatal_.clear();
  protocol::append_error_response(fatal_,
                                  {.severity = "FATAL", .sqlstate = sqlstate, .message = message, .detail = detail});
  reason_ = std::move(reason);
  warn_close_ = true;
}

// A message that must be seen whole does not fit in [proxy] max_buffered_bytes
// (with what other sessions hold): this session ends, the others go on.
void Session::fail_out_of_memory() {
  fail("53200", "out of memory", "out of memory: a message would pass proxy.max_buffered_bytes",
       "pgshift holds at most proxy.max_buffered_bytes bytes of large messages at once, for all sessions together.");
}

// Mirrors this session's committed writes to the shadow, if there is one.
void Session::start_mirroring() {
  shadow::Mirror* mirror = ctx_.mirror.get();
  if (!mirror || !mirror->enabled()) return;
  const bool logical = ctx_.cfg.shadow.sync == config::SyncMode::logical;
  if (logical && ctx_.cfg.shadow.read_sample_rate <= 0) return;  // the subscription carries every write
  const config::Side to = config::other(side_);
  if (!pass_through_ && !config::find_login(ctx_.cfg.logins(to), user_)) {
    const std::string why = fmt::format("no [[{}.login]] for user {}: its writes are not mirrored", config::to_string(to),
                                      protocol::log_text(user_));
    mirror->mark_diverged(why);
    spdlog::warn("shadow: {}", why);
    return;
  }
  // The shadow connection is opened with the client's own startup parameters
  // (options, TimeZone, DateStyle...), under pgshift's application_name.
  auto origin = std::make_shared<shadow::Origin>();
  origin->user = user_;
  origin->database = database_;
  for (auto& [k, v] : startup_params_) {
    if (k != "user" && k != "database" && k != "application_name" && k != "replication") origin->params.emplace_back(k, v);
  }
  origin->login_key = shadow::login_key(*origin);
  origin->pass_through = pass_through_;
  shadow_session_ = mirror->open_session();
  recorder_ = std::make_unique<shadow::Recorder>(
      shadow_session_, std::move(origin), *rewriters_[static_cast<std::size_t>(to)], ctx_.cfg.shadow.max_transaction_bytes,
      settings_->cfg.shadow.read_sample_rate, ctx_.compare_rules,
      [this, mirror](shadow::TransactionPtr t) {
        const bool write = !t->read;
        const std::uint64_t seq = mirror->submit(std::move(t));
        if (write) last_write_ = seq;  // read-your-writes in the reads phase
      });
  recorder_->set_mirror_writes(!logical);
}

void Session::set_txn_status(char status) {
  if (status == txn_status_) return;
  txn_status_ = status;
  shared_txn_.store(status, std::memory_order_relaxed);
  shared_status_since_.store(std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_relaxed);
}

void Session::remember_parameter(std::string_view name, std::string_view value) {
  // Only a cutover replays them, and a dozen pairs are a kilobyte per idle session.
  if (!switchable_) return;
  for (auto& [k, v] : server_params_) {
    if (k == name) {
      v.assign(value);
      return;
    }
  }
  server_params_.emplace_back(name, value);
}

awaitable<void> Session::finish() {
  // What login queued for the client, then the FATAL error, go out before
  // the close; a client that does not read gets a second, not more.
  if (!fatal_.empty()) {
    to_client_.own().append(fatal_);
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::seconds(1));
    co_await (flush(client_, to_client_) || timer.async_wait(use_tuple));
  }
  hook_.release_memory();  // a huge statement's analysis and scratch space, kept by this thread's rewriters
  for (rewrite::Rewriter* r : rewriters_) r->release_memory();
  if (key_registered_) ctx_.cancels.remove(client_key_);
  if (recorder_) ctx_.mirror->close_session(shadow_session_);
  client_.close();
  if (server_) server_->stream.close();
  if (sw_ && sw_->target) sw_->target->stream.close();
  if (rd_ && rd_->conn) rd_->conn->stream.close();
  if (member_) {
    ctx_.members.leave(member_);
    leave_cutover();
  }
  if (counted_) --ctx_.sessions;

  const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_).count();
  auto level = warn_close_ ? spdlog::level::warn : spdlog::level::info;
  const QueryHook::Counters& c = hook_.counters();
  spdlog::log(level, "close client={} user={} database={} duration={:.1f}ms statements={} writes={} rewritten={} reason={}",
              peer_, protocol::log_text(user_), protocol::log_text(database_), ms, c.statements.get(), c.writes.get(),
              c.rewritten.get(),
              reason_.empty() ? "unknown" : reason_);
  {
    std::lock_guard lock(ctx_.live_mutex);
    ctx_.live.erase(shared_from_this());
  }
}

// User, database and application names come from the client: escaped, so they cannot forge log lines.
void Session::log_open(std::string_view application_name) const {
  spdlog::info("open client={} user={} database={} application_name={} tls={}", peer_, protocol::log_text(user_),
               protocol::log_text(database_), protocol::log_text(application_name), client_.is_tls() ? "yes" : "no");
}

}  // namespace pgshift::proxy
