// The cutover coordinator: the migration's state machine and the switch that
// moves every session from the serving server to the other one (and back, for
// a rollback), with no client error.
//
// Phases (state.hpp): shadowing -> [reads] -> cutover -> cut_over ->
// completed, or from cut_over, rollback -> shadowing. Only move_to() changes
// the phase, and it logs every change. A switch runs its steps in order, each
// bounded, and aborts (resuming every session where it was) at any step
// before the swap:
//   prepare     every session opens and logs in its connection to the target
//   pause       sessions hold at their next transaction boundary; new ones wait at the gate
//   drain       ... until all hold (drain_timeout_ms); unmovable ones per [cutover] unmovable
//   catch up    the mirror has applied every committed transaction (catchup_timeout_ms)
//   sequences   the target's sequences are set to at least the old server's positions
//   stage       each session replays its settings, LISTENs and prepared statements on the target
//   persist     the state file says the target serves (before anything acts on it)
//   fence       optionally, the old server is made read-only
//   swap        the mirror turns around; each session's target becomes its server; the gate opens
//
// Runs on one executor (an I/O thread's); sessions report to it from theirs.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "proxy/admin/table.hpp"
#include "proxy/context.hpp"
#include "proxy/cutover/control.hpp"
#include "proxy/cutover/state.hpp"
#include "proxy/cutover/switch.hpp"
#include "proxy/sync/watch.hpp"

namespace pgshift::proxy::cutover {

// The figures of the last switch, for SHOW CUTOVER.
struct SwitchRecord {
  std::string kind;  // "cutover" or "rollback"
  config::Side from = config::Side::primary, to = config::Side::shadow;
  std::string started, finished;  // RFC 3339
  std::string result = "running";  // "done", or "aborted: REASON"
  std::vector<std::pair<std::string, double>> steps;  // step, milliseconds
  std::size_t moved = 0, closed = 0, waited = 0;  // sessions
  double pause_p50_ms = 0, pause_p99_ms = 0, pause_max_ms = 0, wait_max_ms = 0;
  std::chrono::steady_clock::time_point began;
};

class Coordinator {
 public:
  Coordinator(ProxyContext& ctx, asio::io_context& io, State initial);

  // The sampler (guardrail windows) and the configured cutover ([cutover] at / when_ready).
  void start();
  asio::io_context::executor_type executor() { return io_.get_executor(); }

  // ---- from sessions (any thread) ----
  void on_prepared(std::uint64_t id, bool ok, std::string why);
  void on_held(std::uint64_t id, Held h);
  void on_done(std::uint64_t id, Done d);
  void on_left(std::uint64_t id);

  // ---- operator commands: run on executor() ----
  awaitable<admin::Answer> show();
  awaitable<admin::Answer> dry_run();
  awaitable<admin::Answer> cutover();
  awaitable<admin::Answer> rollback();
  awaitable<admin::Answer> complete();
  awaitable<admin::Answer> abort();
  awaitable<admin::Answer> pause();
  awaitable<admin::Answer> resume();
  awaitable<admin::Answer> reads(int percent);
  // Logical replication ([shadow] sync = "logical").
  awaitable<admin::Answer> show_sync();
  awaitable<admin::Answer> sync_start();

  // Thread-safe.
  State state() const;
  SwitchRecord last_switch() const;
  struct PhaseChange {
    std::string at;  // RFC 3339
    Phase from, to;
    std::string why;
  };
  std::vector<PhaseChange> timeline() const;  // the last 100 changes, oldest first
  // Logical replication's last figures per database (empty in mirror mode);
  // the watch exists from start() on, before any other thread asks.
  std::vector<sync::DatabaseStatus> sync_status() const;

 private:
  enum class Step : std::uint8_t { idle, preparing, pausing, draining, catching_up, sequences, staging, fencing, swapping };
  static std::string_view to_string(Step s) noexcept;

  // A session's progress through the current switch (or PAUSE).
  struct Member {
    std::weak_ptr<Session> session;
    bool prepared = false, held = false, blocked = false, staged = false, finished = false, to_close = false;
    std::string why;  // what it cannot move
    Done done;
  };

  struct Check {
    std::string name, value, limit;
    bool ok = true;
  };
  std::vector<Check> guardrails(bool rollback) const;
  Check verify_guardrail() const;
  void sync_guardrails(std::vector<Check>& out) const;
  bool logical() const noexcept { return ctx_.cfg.shadow.sync == config::SyncMode::logical; }

  // The switch.
  awaitable<admin::Answer> run_switch(bool rollback);
  awaitable<bool> prepare(config::Side to, std::string& why);
  awaitable<bool> drain(std::string& why);
  awaitable<bool> catch_up(std::string& why);
  // Logical mode: the subscriptions turn around instead of the mirror.
  awaitable<bool> prepare_replication(config::Side from, std::string& why);
  awaitable<bool> catch_up_replication(std::string& why);
  void finish_replication();
  awaitable<bool> copy_sequences_to(config::Side to, std::string& why);
  awaitable<bool> stage(std::string& why);
  awaitable<bool> lift_fence(config::Side to, bool& lifted, std::string& why);
  awaitable<bool> raise_fence(config::Side from, std::string& why);
  static void log_fenced(config::Side from);
  void log_missed_deadline(const std::string& last) const;
  awaitable<void> swap(config::Side from, config::Side to);
  awaitable<void> abort_switch(const std::string& why);
  admin::Answer report(bool ok, const std::string& why) const;

  // Helpers.
  void move_to(Phase p, Step s, std::string_view why = {});
  void refresh();
  void step(Step s);
  bool persist(State next, std::string& error);
  Phase persisted_phase() const;
  void add_members(const std::vector<Members::Member>& members);
  void decide_all(Decision d, bool (*which)(const Member&));
  awaitable<bool> wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout,
                             std::chrono::milliseconds poll = std::chrono::milliseconds(50));
  // Per database whose sequences move, the user its control connections log in for.
  std::vector<std::pair<std::string, std::string>> databases() const;
  std::string describe(std::uint64_t id, const Member& m) const;
  void wake() { wake_.cancel(); }

  awaitable<void> sample();
  awaitable<void> scheduled();

  ProxyContext& ctx_;
  asio::io_context& io_;
  asio::steady_timer wake_;

  mutable std::mutex mutex_;  // persisted_, phase_, record_ (read by other threads)
  State persisted_;           // as in the state file
  Phase phase_;               // the same, or a switch under way
  Step step_ = Step::idle;
  SwitchRecord record_;
  std::deque<PhaseChange> timeline_;

  // Coordinator thread only: [cutover] as last reloaded (refresh()).
  config::Cutover cut_;

  // Coordinator thread only.
  bool busy_ = false;    // a switch or a PAUSE owns members_
  bool paused_ = false;  // PAUSE in effect
  bool abort_requested_ = false;
  std::string failure_;  // first problem a session reported in the current step
  std::map<std::uint64_t, Member> members_;
  std::vector<std::unique_ptr<Control>> controls_;  // this switch's connections, both sides, per database
  std::vector<std::unique_ptr<sync::Replication>> replications_;  // logical mode: this switch's, per database
  bool frozen_ = false;  // the old direction is stopped and the reverse slot made
  std::unique_ptr<sync::Watch> watch_;  // logical mode
  std::chrono::steady_clock::time_point step_began_;

  struct Sample {
    std::chrono::steady_clock::time_point at;
    std::uint64_t compared = 0, mismatches = 0;
  };
  std::deque<Sample> samples_;  // one per second
};

}  // namespace pgshift::proxy::cutover
