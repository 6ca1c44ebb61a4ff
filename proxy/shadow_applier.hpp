// Applies committed transactions to the shadow database in the primary's
// commit order, on its own thread, and compares every statement's outcome
// with the primary's. A slow, dead or refusing shadow costs dropped
// transactions and the diverged mark, never a client error.
//
// Shadow connections: client sessions that logged in alike and keep no state
// of their own share one connection (opened with the client's startup
// parameters and [[shadow.login]] credentials); a session that changed its
// state (SET, PREPARE, a temporary table...) gets a connection of its own
// from then on. Transactions are pipelined: each is sent whole, in one write
// with whatever follows it, without waiting for the one before. Commit order
// holds because only one connection has transactions in flight at any time:
// a connection processes what it receives in order, and the applier switches
// to another connection only once everything sent is answered.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <functional>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "config/config.hpp"
#include "proxy/server_conn.hpp"
#include "shadow/compare.hpp"
#include "shadow/mirror.hpp"
#include "shadow/mismatch_log.hpp"
#include "proxy/sync/read_gate.hpp"

namespace pgshift::proxy {

struct Settings;  // live.hpp

// [shadow.compare] as the comparison code wants it.
shadow::CompareRules compare_rules(const config::CompareRules& c);

class ShadowApplier {
 public:
  // Mirrors to `target` until a retarget in the queue says otherwise; `tls`
  // holds each server's TLS context (null: plain), by config::Side.
  ShadowApplier(const config::Config& cfg, shadow::Mirror& mirror, std::array<ssl::context*, 2> tls,
                const protocol::Limits& limits, config::Side target);
  ~ShadowApplier();

  void start();
  void stop();

  // A reload: its timeouts and compare noise rules, from the next
  // transaction on (posted to the applier's thread; any thread).
  void reconfigure(std::shared_ptr<const Settings> s);
  const shadow::MismatchLog& mismatch_log() const noexcept { return log_; }
  // Called (on the applier's thread) once a transaction that changed the
  // schema of `database` was applied, so its catalog is read again; and for
  // the status line, a summary of the catalogs. Set before start().
  std::function<void(const std::string& database)> on_schema_change;
  std::function<std::string()> catalog_summary;

 private:
  // A transaction sent and not yet answered, after its session's settings
  // (when the connection last ran another session's) and the named
  // statements its connection had to prepare first (each Parse with its own Sync).
  struct InFlight {
    shadow::TransactionPtr t;
    std::uint32_t setup = 0;  // ReadyForQuery of the settings switch sent before it
    std::vector<std::pair<std::string, std::string>> prepared;  // name, Parse sent just before it
    std::chrono::steady_clock::time_point sent;  // or when the one before it was answered, if later
  };
  struct Connection {
    std::unique_ptr<ServerConn> server;
    std::unordered_map<std::string, std::string> prepared;  // name -> Parse message sent
    shadow::SettingsPtr settings;                            // SET on it, once what was sent has run
    std::deque<InFlight> in_flight;
    bool reading = false;    // a reader is collecting its replies
    bool broken = false;
    bool timed_out = false;
    bool closing = false;    // its session ended: Terminate once answered
    std::uint64_t session = 0;  // when it is a session's own connection
    std::string key;            // when it is shared: the login key,
    std::size_t users = 0;      // the open sessions that used it,
    std::chrono::steady_clock::time_point idle_since;  // and since when it has had none
  };
  using ConnectionPtr = std::shared_ptr<Connection>;

  // Dispatch (one coroutine, in commit order).
  awaitable<void> run();
  awaitable<void> dispatch(shadow::TransactionPtr t);
  awaitable<void> send(const ConnectionPtr& c, shadow::TransactionPtr t);
  // Appends `t` to `out` for `c`: the settings switch and Parses it needs first.
  void append_transaction(Connection& c, const shadow::Transaction& t, std::string& out, InFlight& f);
  awaitable<void> flush_batch();
  awaitable<void> wait_in_flight(std::size_t at_most);
  awaitable<void> close_session(std::uint64_t session);
  awaitable<void> retarget(config::Side to);

  // Replies (one reader per connection with transactions in flight).
  awaitable<void> read_replies(ConnectionPtr c);
  awaitable<bool> read_outcome(Connection& c, InFlight& f);
  awaitable<bool> collect(Connection& c, const InFlight& f, std::uint32_t replies, std::vector<shadow::Outcome>& outcomes);
  awaitable<bool> moved_on(const shadow::Transaction& t, const std::vector<shadow::Outcome>& on_target);
  awaitable<bool> reread(Connection& c, const std::string& bytes, const InFlight& f, std::uint32_t replies,
                         std::vector<shadow::Outcome>& out);
  enum class Ready : std::uint8_t { ok, after_error, lost };
  awaitable<bool> read_reply(Connection& c, protocol::Frame& frame);
  awaitable<Ready> skip_to_ready(Connection& c);
  struct Compared {
    std::size_t mismatched = 0;
    std::size_t not_exact = 0;
    bool failed = false;  // a write that committed on the primary failed here
  };
  Compared compare(const shadow::Transaction& t, const std::vector<shadow::Outcome>& outcomes, bool log);
  void report_failed(const shadow::Transaction& t, const std::vector<shadow::Outcome>& outcomes);
  void break_connection(Connection& c);
  awaitable<void> terminate(ConnectionPtr c);

  // Connections.
  awaitable<ConnectionPtr> connection_for(const shadow::Transaction& t, std::string& error);
  // `reached`: whether the server answered (so a failure was its refusal of the login).
  awaitable<ConnectionPtr> open_connection(config::Side side, const shadow::Origin& origin,
                                           const config::ServerLogin* credentials, std::string& used,
                                           std::string& error, bool& reached);
  void note_failed_open(const shadow::Origin& origin, bool reached);
  // Logs in as the client's user: by pass-through when `credentials` is null,
  // else as the configured login's user.
  awaitable<bool> login(Connection& c, config::Side side, const shadow::Origin& origin,
                        const config::ServerLogin* credentials, std::string& error);
  void forget(const Connection& c);
  void use(const ConnectionPtr& c, std::uint64_t session);
  void stop_using(std::uint64_t session);
  void release(Connection& c);
  awaitable<void> close_idle();

  awaitable<void> watch();
  awaitable<void> report_status();
  std::string worst_statements() const;
  void log_not_exact(const shadow::StatementOutcome& p);

  const config::Config& cfg_;
  // What a reload may change (applier thread only): the timeouts in effect.
  std::chrono::milliseconds apply_timeout_, idle_timeout_, status_interval_;
  shadow::Mirror& mirror_;
  std::array<ssl::context*, 2> tls_;
  config::Side target_;
  protocol::Limits limits_;
  shadow::CompareRules rules_;
  shadow::MismatchLog log_;

  asio::io_context io_{1};
  std::thread thread_;
  asio::steady_timer wake_{io_};       // the dispatcher sleeps on it while the queue is empty
  asio::steady_timer progress_{io_};   // ... and while it waits for replies
  std::atomic<bool> idle_{false};

  std::unordered_map<std::string, ConnectionPtr> shared_;  // by login key
  std::unordered_map<std::uint64_t, ConnectionPtr> own_;   // by session
  std::unordered_map<std::uint64_t, ConnectionPtr> user_of_;  // session -> the shared one it used
  ConnectionPtr active_;        // the one connection with transactions in flight
  std::size_t in_flight_ = 0;   // over all connections
  ConnectionPtr batch_to_;      // transactions appended to batch_, not written yet
  std::string batch_;
  std::chrono::steady_clock::time_point retry_after_{};  // the shadow was unreachable: everyone waits
  // Logins the shadow refused, by login key, until when: only that user (and
  // database) waits, since the shadow itself works for the others.
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> refused_until_;
  std::unordered_set<std::uint64_t> failed_fingerprints_;  // warned about once each
  std::unique_ptr<sync::ReadGate> gate_;  // logical mode: reads wait for the stream
  std::unordered_map<std::string, ConnectionPtr> rereads_;  // logical mode: to the primary, by login key
};

}  // namespace pgshift::proxy
