// One client connection and the server connection serving it.
//
// Life: login (startup packet, TLS, cancel requests, connect to the primary,
// relay authentication), then two pumps, client->server and server->client,
// until either side ends; then close both and log one line.
//
// The client->server handler sees every message (type and SQL) before it is
// forwarded; the session tracks the ReadyForQuery replies still expected, so
// it knows when the server is idle at a transaction boundary, where a later
// version swaps `server_` or adds a shadow connection beside it.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "protocol/startup.hpp"
#include "proxy/buffer.hpp"
#include "proxy/context.hpp"
#include "proxy/pump.hpp"
#include "proxy/query_hook.hpp"
#include "proxy/server_conn.hpp"
#include "shadow/recorder.hpp"

namespace pgshift::proxy {

class Session : public std::enable_shared_from_this<Session> {
 public:
  // `rewriter` belongs to the I/O thread the session runs on.
  Session(tcp::socket client, ProxyContext& ctx, rewrite::Rewriter& rewriter, rewrite::Rewriter& shadow_rewriter);
  ~Session();

  awaitable<void> run();
  // Ends the session from another thread (shutdown past its timeout).
  void terminate();

  // Server-idle bookkeeping: true when no reply is pending and no transaction is open.
  bool at_transaction_boundary() const noexcept { return pending_ready_ == 0 && txn_status_ == 'I'; }

 private:
  struct ClientSide;
  struct ServerSide;

  // ---- login ----
  awaitable<bool> login();
  awaitable<bool> read_startup_packet(protocol::StartupPacket& pkt);
  awaitable<bool> answer_ssl_request();
  awaitable<bool> answer_gssenc_request();
  void refuse_negotiation(protocol::StartupKind kind);
  awaitable<void> forward_cancel(const protocol::StartupPacket& pkt);
  awaitable<bool> open_server(const protocol::StartupPacket& pkt);
  awaitable<bool> relay_authentication();
  bool on_auth_request(const protocol::Frame& f, bool& needs_reply);
  void start_mirroring();
  awaitable<bool> relay_auth_reply();

  // ---- forwarding ----
  awaitable<void> client_to_server();
  awaitable<void> server_to_client();
  void end_forwarding(const PumpEnd& end, bool from_client);

  // ---- helpers ----
  // Sets the FATAL error sent to the client just before closing. Kept apart
  // from to_client_, which a pump may be writing from at that moment.
  void fail(std::string_view sqlstate, std::string message, std::string reason, std::string_view detail = {});
  void fail_out_of_memory();
  void remember_parameter(std::string_view name, std::string_view value);
  awaitable<void> finish();
  void log_open(std::string_view application_name) const;

  ProxyContext& ctx_;
  Stream client_;
  ReadBuffer client_in_;
  WriteBatch to_client_;
  WriteBatch to_server_;
  std::unique_ptr<ServerConn> server_;
  QueryHook hook_;
  rewrite::Rewriter& shadow_rewriter_;
  std::unique_ptr<shadow::Recorder> recorder_;  // set when this session's writes are mirrored
  std::uint64_t shadow_session_ = 0;

  std::string peer_;
  std::string user_ = "?";
  std::string database_ = "?";
  std::chrono::steady_clock::time_point started_;
  std::string reason_;
  std::string fatal_;  // ErrorResponse sent last, if any
  bool warn_close_ = false;       // the close reason deserves a warning
  bool client_terminated_ = false;
  bool stopping_ = false;
  bool counted_ = false;

  ClientKey client_key_;
  bool key_registered_ = false;
  std::vector<std::pair<std::string, std::string>> startup_params_;  // as sent to the server
  std::vector<std::pair<std::string, std::string>> server_params_;  // ParameterStatus, for replay on swap

  bool server_fatal_ = false;  // the server sent a FATAL (it closes next, having said why)
  int pending_ready_ = 0;  // Query/Sync/FunctionCall sent, ReadyForQuery not yet seen
  char txn_status_ = 'I';
};

}  // namespace pgshift::proxy
