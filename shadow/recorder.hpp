// Watches one session's messages and turns what the primary committed into
// Transactions. It sees every client message before it is forwarded and
// every server reply, and decides at each ReadyForQuery that returns to idle:
// a unit of work (everything since the last idle ReadyForQuery) that changed
// data or session state, and that committed (a COMMIT tag, or an implicit
// transaction without error), is handed over whole; anything else is
// discarded. So nothing is mirrored while the primary's transaction is open,
// and a rolled-back or failed transaction never reaches the shadow.
//
// Exact mirroring: a statement the rewriter captured (rewrite::Capture::
// Mode::rows) returns the rows it wrote after a marker column; the recorder
// collects them from the primary's DataRows and, when the unit commits,
// sends the shadow a statement with those values in its place.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "protocol/frame.hpp"
#include "rewrite/rewrite.hpp"
#include "shadow/transaction.hpp"

namespace pgshift::shadow {

class Recorder {
 public:
  using Submit = std::function<void(TransactionPtr)>;

  // `origin` describes the client's login; `shadow_rewriter` rewrites SQL for
  // the shadow's schema (its rules may differ from the primary's);
  // `max_bytes` bounds one transaction.
  // A `read_sample_rate` fraction of read-only units outside transactions is
  // also sent, with the primary's results, for comparison (`rules` digests them).
  Recorder(std::uint64_t session, std::shared_ptr<const Origin> origin, rewrite::Rewriter& shadow_rewriter,
           std::size_t max_bytes, double read_sample_rate, const CompareRules& rules, Submit submit);

  // The shadow's catalog and the session's search_path, for the shadow's
  // rewrites (null: none). Must outlive the recorder or the next call.
  void set_context(const rewrite::Context* shadow_context) noexcept { context_ = shadow_context; }

  // Client message about to be forwarded, with the primary-side analysis of
  // its SQL when it is a Query or Parse (null otherwise).
  void on_client(const protocol::Frame& f, const rewrite::Analysis* analysis);
  // Server reply. A message that was streamed past pgshift is never seen here.
  void on_server(const protocol::Frame& f);
  // A client message too large to be seen whole (CopyData streamed through).
  void on_streamed_client(char type);
  // A server message too large to be seen whole (a DataRow streamed through).
  void on_streamed_server() noexcept { sampled_ = false; }
  // This unit's replies do not come from the primary (a read served by the target).
  void unsample() noexcept { sampled_ = false; }
  // Logical replication carries the writes: only sampled reads are handed over.
  void set_mirror_writes(bool on) noexcept { mirror_writes_ = on; }

  // A cutover: from now on the shadow is `rewriter`'s server; the session's
  // named statements (its clients' Parse messages, whole) are kept for it.
  void retarget(rewrite::Rewriter& rewriter, const std::vector<std::string_view>& named_parses);
  // A reload: new rules for the statements from now on, a new sampling rate.
  void set_rewriter(rewrite::Rewriter& rewriter) noexcept { rewriter_ = &rewriter; }
  void set_read_sample_rate(double rate) noexcept { sample_rate_ = rate; }

  std::uint64_t dropped_oversize() const noexcept { return dropped_oversize_; }

 private:
  struct Pending;
  struct Prepared;
  void append_sql_message(const protocol::Frame& f, bool is_query);
  void statement_done(std::string tag, std::optional<std::string> sqlstate);
  void ready_for_query();
  void captured_row(const protocol::Frame& f);
  void feed_returned(const protocol::Frame& f);
  void query(const protocol::Frame& f, const rewrite::Analysis& a);
  static void judge(const rewrite::StatementInfo& s, const rewrite::Capture* c, Pending& p);
  bool fill_holes(Transaction& t, std::string& error);
  void unit_ended();
  void hand_over();  // the unit as it ends: to the mirror, or nowhere
  void commit_settings(Transaction& t);
  void reset();
  void start_unit();

  std::uint64_t session_;
  std::shared_ptr<const Origin> origin_;
  rewrite::Rewriter* rewriter_;
  std::size_t max_bytes_;
  Submit submit_;

  // Named statements of this session, as Parse messages for the shadow, and
  // whether running them changes anything ("" is the unnamed statement).
  std::unordered_map<std::string, std::string> parsed_;
  struct Change {
    rewrite::Setting kind;
    std::string name, statement;
  };
  struct Prepared {
    bool writes = true;
    bool state = false;  // changes session state other than by settings
    bool rollback_to = false;
    bool ddl = false;
    std::vector<Change> changes;  // its SET/RESET statements
    bool ordered = false;
    std::uint64_t fingerprint = 0;
    std::string text;
    StatementOutcome::Compare compare = StatementOutcome::Compare::tag;
    std::string inexact;
    std::shared_ptr<const rewrite::Capture> capture;  // set when its rows are captured
  };
  static const Prepared unknown_statement;  // assume it writes
  static void note_settings(const rewrite::Analysis& a, std::string_view sql, std::vector<Change>& out);
  std::unordered_map<std::string, Prepared> prepared_;
  const Prepared* bound_ = nullptr;  // the statement the last Bind bound (entries are never erased)
  std::string bound_portal_;         // ... into this portal
  bool bound_executed_ = false;      // ... which an Execute has run
  // Named portals bound from captured statements, and whether they ran.
  std::unordered_map<std::string, std::pair<const Prepared*, bool>> captured_portals_;

  // A statement sent, its outcome not seen yet (or seen), in order.
  struct Pending {
    StatementOutcome out;
    std::uint64_t batch = 0;   // the ReadyForQuery that ends it, counted from the session's start
    bool not_run = false;      // an error earlier in its batch: the server skipped it
    bool skip = false;         // not sent to the shadow (a captured portal executed again)
    std::shared_ptr<const rewrite::Capture> capture;
    std::vector<std::string> rows;  // captured: each row of the table, as record text
    bool unreadable = false;        // captured, but a row came back without the capture column
  };
  // Where pgshift's statement replaces a captured one in unit_->messages.
  struct Hole {
    std::size_t at = 0;      // offset in the messages
    std::size_t first = 0;   // its (first) statement in pending_
    bool query = false;      // a simple Query: `texts` per statement (empty for captured ones)
    std::vector<std::string> texts;
  };
  const rewrite::Context* context_ = nullptr;
  std::vector<Hole> holes_;
  std::size_t captured_bytes_ = 0;
  bool capturing_ = false;       // a statement of this unit is captured
  bool collecting_ = false;      // feeding returned_ for the statement in progress
  CompareRules write_rules_;     // the session's rules, fewer rows kept for reports
  ResultCollector returned_;     // a write's returned rows
  // The last RowDescription since a statement completed, when no statement
  // was collecting (a Describe before the Execute): the shadow's collector
  // sees it there too, and describes the next rows with it.
  std::string description_;
  std::uint64_t batches_sent_ = 0, batches_done_ = 0;
  bool ddl_ = false;
  // A client may send the next unit's messages before this one's last
  // ReadyForQuery (pipelining across Syncs): each batch after the unit's
  // first is marked where it starts, with the flags of what came before, so
  // the unit ends where the primary's idle ReadyForQuery says and the rest
  // starts the next one.
  struct Flags {
    bool writes = false, state = false, rollback_to = false, ddl = false;
    Flags& operator|=(const Flags& o) noexcept {
      writes |= o.writes;
      state |= o.state;
      rollback_to |= o.rollback_to;
      ddl |= o.ddl;
      return *this;
    }
  };
  struct Mark {
    std::uint64_t batch = 0;
    std::size_t messages = 0, pending = 0, holes = 0, changes = 0, ordered = 0, captured_bytes = 0;
    std::uint32_t replies = 0;
    Flags before;  // of the messages since the previous mark (or the unit's start)
  };
  std::vector<Mark> marks_;
  bool batch_open_ = false;  // a message of the batch being sent was recorded
  Flags take_flags() noexcept;
  void set_flags(const Flags& f) noexcept;
  void begin_message(char type);

  // The unit in progress.
  TransactionPtr unit_;
  bool writes_ = false;         // changes data or session state
  bool state_ = false;          // changes session state other than by settings
  bool stateful_ = false;       // a committed unit did (or a SET undone by a savepoint): sticky
  bool rollback_to_ = false;    // a ROLLBACK TO SAVEPOINT ran
  std::vector<Change> changes_;  // this unit's SET/RESET statements, in order
  SettingsPtr settings_;         // committed so far
  bool explicit_ = false;       // an explicit transaction was open at some point
  bool committed_ = false;      // a COMMIT tag was seen
  bool failed_ = false;         // an error was seen
  bool oversize_ = false;       // too large: will be dropped (and counted)
  std::vector<Pending> pending_;  // statements sent this unit, in order
  std::size_t next_outcome_ = 0;  // the first without an outcome

  // Read sampling.
  double sample_rate_;
  std::minstd_rand random_;
  bool sampled_ = false;  // this unit's replies are being collected
  ResultCollector collector_;
  std::vector<Outcome> rows_;
  std::vector<bool> ordered_;
  std::uint64_t dropped_oversize_ = 0;
  bool mirror_writes_ = true;
};

}  // namespace pgshift::shadow
