// One client connection and the server connection serving it.
//
// Life: login (startup packet, TLS, cancel requests, connect to the primary,
// relay authentication), then two pumps, client->server and server->client,
// until either side ends; then close both and log one line.
//
// The client->server handler sees every message (type and SQL) before it is
// forwarded; the session tracks the ReadyForQuery replies still expected, so
// it knows when the server is idle at a transaction boundary: there a
// cutover holds the client's next message and swaps `server_` for a
// connection to the other server (session_switch.cpp).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <exception>
#include <optional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "protocol/client_auth.hpp"
#include "protocol/startup.hpp"
#include "proxy/buffer.hpp"
#include "proxy/backend.hpp"
#include "proxy/catalog_loader.hpp"
#include "proxy/context.hpp"
#include "proxy/cutover/switch.hpp"
#include "proxy/pump.hpp"
#include "proxy/query_hook.hpp"
#include "proxy/server_conn.hpp"
#include "shadow/recorder.hpp"

namespace pgshift::proxy {

// What other threads may read about a session (SHOW SESSIONS, a dry run).
struct SessionInfo {
  std::uint64_t id = 0;  // as a cutover member; 0 before it logged in
  std::string peer, user, database;
  config::Side server = config::Side::primary;
  char transaction = 'I';  // the last ReadyForQuery status
  std::chrono::steady_clock::time_point started, status_since;
  std::string state;       // what a cutover could not move (from the statements it ran), empty if nothing
  // For the operator interface (Session::status()).
  std::uint64_t session = 0;     // the session's own id, for KILL SESSION
  bool logged_in = false, admin = false;
  std::uint64_t statements = 0;
  std::uint64_t last_fingerprint = 0;  // 0: none yet
  bool pass_through = false;  // it can log in to the other server as its own user ([auth] mode = "pgshift")
};

namespace admin {
class Console;
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  // `thread` is the I/O thread the session runs on: its settings and its
  // rewriters (one per server, by config::Side).
  Session(tcp::socket client, ProxyContext& ctx, IoThread& thread);
  ~Session();

  awaitable<void> run();
  // Ends the session from another thread (shutdown past its timeout, KILL SESSION).
  void terminate(std::string reason = "pgshift shutting down");

  // info() and the figures the operator interface shows (session_admin.cpp).
  SessionInfo status() const;
  std::uint64_t id() const noexcept { return id_; }

  // Server-idle bookkeeping: no reply pending, no transaction open, and no
  // message of an unfinished extended-protocol batch sent.
  bool at_transaction_boundary() const noexcept { return pending_ready_ == 0 && txn_status_ == 'I' && !trailing_; }

  // ---- cutover (session_switch.cpp); callable from any thread ----
  void switch_prepare(config::Side to);
  void switch_pause();
  void switch_decide(cutover::Decision d);
  // The switch is over: close the connection to the server this session left.
  void retire_old_server();
  SessionInfo info() const;

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
  void negotiate_protocol(const protocol::StartupPacket& pkt);
  awaitable<bool> open_server(const protocol::StartupPacket& pkt);
  // [auth] mode = "pgshift" (session_auth.cpp): pgshift checks the client's
  // password, then logs in to the server as the same user.
  awaitable<bool> authenticate_client();
  awaitable<bool> log_in_as_client(Params params);
  // Logs in to server `to` as this session's user: by pass-through when the
  // client's authentication gave one, else (or when that fails) with the
  // [[to.login]] for the user; `used` says which. A zero `timeout` leaves the
  // login unbounded (the caller bounds it).
  awaitable<bool> log_in_to(config::Side to, const Params& params, std::chrono::milliseconds timeout,
                            std::unique_ptr<ServerConn>& conn, LoginInfo& info, std::string& error, std::string& used);
  enum class LoginEnd : std::uint8_t { ok, unreachable, refused, timed_out };
  awaitable<LoginEnd> connect_as(config::Side to, Params params, const config::ServerLogin* credentials,
                                 std::chrono::milliseconds timeout, std::unique_ptr<ServerConn>& conn, LoginInfo& info,
                                 std::string& error);
  awaitable<bool> relay_authentication();
  bool on_auth_request(const protocol::Frame& f, bool& needs_reply);
  void start_mirroring();
  awaitable<bool> relay_auth_reply();

  // ---- forwarding ----
  void spawn_direction(awaitable<void> direction);
  void spawn_client_to_server();
  void direction_ended(std::exception_ptr e);
  awaitable<void> server_to_client();
  void end_forwarding(const PumpEnd& end, bool from_client);

  // ---- cutover (session_switch.cpp) ----
  enum class SwitchState : std::uint8_t {
    none,
    pausing,  // hold at the next transaction boundary
    held,     // at a boundary: client messages wait, the server side belongs to the switch
    blocked,  // holds state that cannot move: runs on, asks again at its next boundary
  };
  // What a session holds on its server that a switch must carry or cannot.
  struct ServerState {
    std::size_t temp_objects = 0, hold_cursors = 0, advisory_locks = 0;
    std::vector<std::string> channels;                            // LISTEN
    std::vector<std::pair<std::string, std::string>> settings;    // SET: name, value
    std::vector<std::pair<std::string, std::string>> prepared;    // SQL PREPARE: name, statement
    std::string unmovable() const;  // empty when everything can move
  };
  // A switch's state, made when the session first takes part in one and kept
  // (a timer, a login and three containers): a session that never switches,
  // the idle thousands among them, does not pay for it.
  struct Switching {
    explicit Switching(const asio::any_io_executor& ex) : server_side_wake(ex), catalog_wake(ex) {}
    std::unique_ptr<ServerConn> retired;  // the server it left, until the switch is over
    std::unique_ptr<ServerConn> target;   // the prepared connection to switch_to_
    LoginInfo target_login;
    std::unordered_map<std::string, std::string> target_named;  // what target has prepared
    bool preparing = false;
    std::string reason_for_target;  // why the last prepare failed
    std::optional<cutover::Decision> decision;
    ServerState moving;
    std::string to_client_later;  // notices and notifications the target sent while staging
    std::chrono::steady_clock::time_point held_at, waiting_since;
    asio::steady_timer server_side_wake;  // hold() waits on it for decisions
    asio::steady_timer catalog_wake;      // target_catalog() waits on it for a load of the target's catalog
  };
  Switching& sw() {
    if (!sw_) sw_ = std::make_unique<Switching>(client_.socket().get_executor());
    return *sw_;
  }
  void note_statements(const rewrite::Analysis& a);
  void note_client_message(const protocol::Frame& f);
  bool hold_here();  // at a boundary a cutover waits for: held from now on
  awaitable<bool> hold();
  awaitable<std::optional<cutover::Decision>> next_decision();
  awaitable<bool> prepare_target();
  awaitable<bool> connect_target(std::string& error);
  awaitable<bool> target_catalog(std::string& error);
  awaitable<bool> prepare_statements(std::string& error);
  awaitable<bool> read_state(ServerState& st);
  awaitable<bool> stage(const ServerState& st, std::string& error);
  void commit();
  void say_goodbye(std::unique_ptr<ServerConn> old);
  void release(bool keep_target);
  void close_unmovable(const std::string& what);
  void report_done(cutover::Decision d, bool ok, std::string why);
  awaitable<bool> open_connection(config::Side to, bool read_only, std::unique_ptr<ServerConn>& conn,
                                  LoginInfo& login, std::string& error);
  // The reads phase (session_reads.cpp).
  enum class Route : std::uint8_t {
    none,
    asked,   // the client's next unit is a read for the target: the server side switches connection
    active,  // server_ is the reader until the unit's ReadyForQuery
  };
  bool route_read(const protocol::Frame& f);
  bool routable(const protocol::Frame& f);
  awaitable<void> start_route();
  void end_route();
  awaitable<void> released();
  void wake_client_side();
  std::vector<std::string_view> named_parses() const;
  std::string parse_for(config::Side side, const protocol::Frame& parse) const;
  void leave_cutover();

  // ---- reload (session_admin.cpp) ----
  // A reload published new settings on this thread: adopt them (and their
  // rewriters) when no reply is pending, so the next statement uses them.
  void adopt_settings();
  // ---- the catalog and the search_path (session_catalog.cpp) ----
  void setup_catalog();                     // once logged in
  void catalog_before(const protocol::Frame& f);  // a Query or Parse the hook is about to analyse
  void catalog_after(const protocol::Frame& f);   // ... analysed: SET search_path, DDL
  void catalog_reply(const protocol::Frame& f);   // a server reply: commit or rollback, DDL done
  void catalog_switched();                  // a cutover moved the session to the other server
  void update_contexts();
  void wait_for_catalog(CatalogLoader::Entry& e, std::uint64_t after);
  void catalog_ready(std::uint64_t wait);
  void catalog_gave_up();
  std::vector<std::string> effective_path() const;

  // ---- helpers ----
  // Sets the FATAL error sent to the client just before closing. Kept apart
  // from to_client_, which a pump may be writing from at that moment.
  void fail(std::string_view sqlstate, std::string message, std::string reason, std::string_view detail = {});
  void fail_out_of_memory();
  void remember_parameter(std::string_view name, std::string_view value);
  void set_txn_status(char status);
  awaitable<void> finish();
  void log_open(std::string_view application_name) const;

  ProxyContext& ctx_;
  IoThread& thread_;
  SettingsPtr settings_;  // the version this session uses
  std::uint64_t settings_version_ = 0;
  std::array<std::shared_ptr<rewrite::Rewriter>, 2> rewriter_hold_;  // keeps rewriters_ alive past a reload
  const std::uint64_t id_;
  std::atomic<bool> shared_logged_in_{false};
  Stream client_;
  ReadBuffer client_in_;
  WriteBatch to_client_;
  WriteBatch to_server_;
  std::unique_ptr<ServerConn> server_;
  config::Side side_ = config::Side::primary;  // the server server_ is connected to
  std::array<rewrite::Rewriter*, 2> rewriters_;  // by config::Side
  QueryHook hook_;
  std::unique_ptr<shadow::Recorder> recorder_;  // set when this session's writes are mirrored
  std::unique_ptr<admin::Console> admin_;       // set when the client logged in to the database "pgshift"
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

  // mode = "pgshift": what the client's authentication lets pgshift log in
  // with as the same user, and the SASLFinal + AuthenticationOk held until
  // the server accepted that login.
  std::shared_ptr<const protocol::PassThrough> pass_through_;
  std::string auth_ok_;

  ClientKey client_key_;
  bool key_registered_ = false;
  std::vector<std::pair<std::string, std::string>> startup_params_;  // as sent to the server
  std::vector<std::pair<std::string, std::string>> server_params_;  // ParameterStatus, for replay on swap (if switchable_)

  bool server_fatal_ = false;  // the server sent a FATAL (it closes next, having said why)
  int pending_ready_ = 0;  // Query/Sync/FunctionCall sent, ReadyForQuery not yet seen
  bool trailing_ = false;  // extended-protocol messages sent since the last Sync
  char txn_status_ = 'I';

  // What a cutover needs (kept only when a [shadow] makes one possible).
  bool switchable_ = false;
  std::uint64_t member_ = 0;  // id among the cutover's members
  std::unordered_map<std::string, std::string> named_;  // named statements: the client's Parse, whole
  // What the statements run could have left on the server besides named
  // statements (kStateSettings...): a session that ran none is not asked.
  std::atomic<std::uint8_t> stateful_{0};
  SwitchState switch_ = SwitchState::none;
  config::Side switch_to_ = config::Side::shadow;
  std::unique_ptr<Switching> sw_;  // see sw()
  asio::steady_timer client_side_wake_;  // a held client message waits on it (a switch, a read, a catalog)

  bool forwarding_ = false;
  std::uint8_t directions_ = 2;  // forwarding directions still running

  // The catalog and search_path statements are analysed with (by side: the
  // serving server's for the hook, the other's for the recorder).
  bool uses_catalog_ = false;   // rename rules or exact mirroring: the analysis depends on them
  bool capture_ = false;        // exact mirroring of this session's writes
  std::array<CatalogLoader::Entry*, 2> catalog_entries_{};
  std::array<std::uint64_t, 2> catalog_seen_{};  // generations the contexts hold
  std::array<rewrite::Context, 2> contexts_;
  std::optional<std::vector<std::string>> startup_path_;  // from the startup packet
  std::optional<std::vector<std::string>> committed_path_, current_path_, local_path_;  // nullopt: the default
  bool path_unknown_ = false;    // set_config() and the like: not followed
  bool path_changed_ = false;    // in this unit (until the next idle ReadyForQuery)
  bool unit_commit_ = false, unit_rollback_ = false, unit_error_ = false;
  bool ddl_sent_ = false;        // DDL since the last idle ReadyForQuery: read the catalog again after it
  bool catalog_wait_ = false;    // the client's next message waits for a catalog
  std::uint64_t catalog_wait_id_ = 0;
  std::chrono::steady_clock::time_point catalog_deadline_{};

  // The reads phase: a connection to the target for read-only units.
  Route route_ = Route::none;
  // Its connection, made by the first read routed and kept (most sessions
  // never have one).
  struct Reading {
    std::unique_ptr<ServerConn> conn;
    LoginInfo login;
    std::unordered_map<std::string, std::string> named;  // named statements prepared on conn
    std::vector<std::string> needs;                      // named statements the unit binds
    std::chrono::steady_clock::time_point retry{};       // after a failed login
  };
  std::unique_ptr<Reading> rd_;
  Reading& rd() {
    if (!rd_) rd_ = std::make_unique<Reading>();
    return *rd_;
  }
  std::uint64_t last_write_ = 0;          // the mirror position of this session's last committed write
  std::uint32_t route_random_ = 0;

  // What info() reads from other threads and the session changes.
  std::atomic<char> shared_txn_{'I'};
  std::atomic<std::int64_t> shared_status_since_{0};  // steady_clock ticks
  std::atomic<config::Side> shared_side_{config::Side::primary};
  std::atomic<bool> shared_pass_through_{false};  // pass_through_ is set
};

}  // namespace pgshift::proxy
