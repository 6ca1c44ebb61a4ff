// Watches one session's messages and turns what the primary committed into
// Transactions. It sees every client message before it is forwarded and
// every server reply, and decides at each ReadyForQuery that returns to idle:
// a unit of work (everything since the last idle ReadyForQuery) that changed
// data or session state, and that committed (a COMMIT tag, or an implicit
// transaction without error), is handed over whole; anything else is
// discarded. So nothing is mirrored while the primary's transaction is open,
// and a rolled-back or failed transaction never reaches the shadow.
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
  void append_sql_message(const protocol::Frame& f, bool is_query);
  void statement_done(std::string tag, std::optional<std::string> sqlstate);
  void unit_ended();
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
    std::vector<Change> changes;  // its SET/RESET statements
    bool ordered = false;
    std::uint64_t fingerprint = 0;
    std::string text;
  };
  static const Prepared unknown_statement;  // assume it writes
  static void note_settings(const rewrite::Analysis& a, std::string_view sql, std::vector<Change>& out);
  std::unordered_map<std::string, Prepared> prepared_;
  const Prepared* bound_ = nullptr;  // the statement the last Bind bound (entries are never erased)

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
  std::vector<StatementOutcome> pending_;  // statements sent, outcome not seen yet, in order
  std::size_t next_outcome_ = 0;

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
