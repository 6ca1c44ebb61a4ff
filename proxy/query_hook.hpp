// The session's view of statements: every Query and Parse is classified (and
// rewritten when rename rules apply) before it is forwarded, and the server's
// RowDescriptions are given back the column names the application asked for.
//
// To know which statement a RowDescription belongs to, the hook keeps the
// replies still expected, in order (a Query's statements, each Describe, each
// Sync), PgDog-style; it only does so while rename rules are active, so the
// plain forwarding path pays nothing for it.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "protocol/frame.hpp"
#include "protocol/messages.hpp"
#include "proxy/buffer.hpp"
#include "proxy/pump.hpp"
#include "proxy/stats.hpp"
#include "rewrite/rewrite.hpp"

namespace pgshift::proxy {

class QueryHook {
 public:
  using Renames = std::vector<rewrite::OutputRename>;
  using RenamesPtr = std::shared_ptr<const Renames>;

  QueryHook(rewrite::Rewriter& rewriter, bool strict) : rewriter_(&rewriter), strict_(strict) {}

  // A cutover moved the session to a server with other rename rules; at a
  // transaction boundary, so only the named statements (the client's Parse
  // messages, whole) carry over.
  void rebind(rewrite::Rewriter& rewriter, const std::vector<std::string_view>& named_parses);
  rewrite::Rewriter& rewriter() const noexcept { return *rewriter_; }
  // A reload changed the rules: from the next statement on, analyse with
  // `rewriter`. Only while no reply is pending (what was learned about
  // prepared statements and portals stays, since the server has them as
  // they were sent).
  void set_rewriter(rewrite::Rewriter& rewriter, bool strict) noexcept {
    rewriter_ = &rewriter;
    strict_ = strict;
  }

  // A client message about to go to the server.
  Verdict on_client(const protocol::Frame& f, WriteBatch& out);
  // A server message about to go to the client.
  Verdict on_server(const protocol::Frame& f, WriteBatch& out);

  // Written by the session's thread, readable from any (SHOW SESSIONS).
  struct Counters {
    stats::Tally statements;
    stats::Tally writes;
    stats::Tally rewritten;
    stats::Tally refused;
    std::atomic<std::uint64_t> last_fingerprint{0};  // of the last Query or Parse
  };
  const Counters& counters() const noexcept { return counters_; }
  // The analysis of the last Query or Parse seen (valid until the next one).
  const rewrite::Analysis* last_analysis() const noexcept { return last_; }
  // Gives back what the thread's rewriter held for an oversize statement; call
  // when no analysis is in use (a session's end).
  void release_memory() noexcept {
    last_ = nullptr;
    rewriter_->release_memory();
  }

 private:
  struct Expected {
    enum class Kind : std::uint8_t { query, describe, sync } kind;
    std::vector<RenamesPtr> statements;  // query: per statement; describe: one
    std::size_t next = 0;                // query: statement the next reply is for
  };

  Verdict query(const protocol::Frame& f, WriteBatch& out);
  Verdict parse(const protocol::Frame& f, WriteBatch& out);
  void bind(const protocol::Frame& f);
  void describe(const protocol::Frame& f);
  void close(const protocol::Frame& f);
  // The renames for the rows of statement `i`, after applying what it does
  // to SQL-level prepared statements and cursors (PREPARE, DECLARE, ...).
  RenamesPtr renames_for(const rewrite::Analysis& a, std::size_t i);
  // Counts and logs; returns the SQL to send instead, or nullptr to keep it.
  const std::string* decide(std::string_view sql, const rewrite::Analysis& a);
  Verdict row_description(const protocol::Frame& f, WriteBatch& out);
  void finished_statement();
  void ready_for_query();
  bool tracking() const noexcept { return rewriter_->has_rules(); }
  void learn_outputs(const protocol::ParseView& p, const rewrite::Analysis& a);

  rewrite::Rewriter* rewriter_;
  bool strict_;
  const rewrite::Analysis* last_ = nullptr;
  Counters counters_;
  std::string refusal_;  // the replacement text of a refused statement
  // Output renames by prepared statement and by portal; as in PostgreSQL,
  // PREPARE shares the namespace with Parse, and DECLARE with Bind.
  std::unordered_map<std::string, RenamesPtr> statements_;
  std::unordered_map<std::string, RenamesPtr> portals_;
  std::deque<Expected> expected_;
  // Syncs sent while nothing was expected: their ReadyForQuery come before
  // anything in expected_, so a count is enough (the common prepared-statement
  // loop then costs no queue entry).
  std::size_t leading_syncs_ = 0;
};

}  // namespace pgshift::proxy
