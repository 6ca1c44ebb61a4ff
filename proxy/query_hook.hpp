// The session's view of statements: every Query and Parse is classified (and
// rewritten when rename rules apply, or when exact mirroring captures a
// write's rows) before it is forwarded, and the server's replies are given
// back what the client asked for: the column names of its RowDescriptions,
// and none of a captured statement's capture column (README "Shadow
// database").
//
// To know which statement a RowDescription or DataRow belongs to, the hook
// keeps the replies still expected, in order (a Query's statements, each
// Describe, each Execute, each Sync), PgDog-style; it only does so while
// rename rules are active or writes may be captured, so the plain forwarding
// path pays nothing for it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "protocol/frame.hpp"
#include "protocol/messages.hpp"
#include "proxy/buffer.hpp"
#include "proxy/pump.hpp"
#include "proxy/stats.hpp"
#include "rewrite/rewrite.hpp"

namespace pgshift::proxy {

// A queue over a vector that keeps its storage. std::deque allocates a
// 512-byte block when it is made (for every session, idle or not, tracking
// or not) and a block every few entries as it moves along; this allocates
// only when the queue gets deeper than it has been in the session. Popped
// entries are destroyed when the queue empties (or is compacted to grow).
template <class T>
class Fifo {
 public:
  bool empty() const noexcept { return head_ == items_.size(); }
  T& front() noexcept { return items_[head_]; }
  const T& front() const noexcept { return items_[head_]; }
  void pop_front() {
    if (++head_ == items_.size()) clear();
  }
  template <class... Args>
  void emplace_back(Args&&... args) {
    if (head_ > 0 && items_.size() == items_.capacity()) {  // reuse the popped room before growing
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
    items_.emplace_back(std::forward<Args>(args)...);
  }
  void push_back(T&& v) { emplace_back(std::move(v)); }
  void clear() noexcept {
    items_.clear();
    head_ = 0;
  }

 private:
  std::vector<T> items_;
  std::size_t head_ = 0;  // the front
};

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

  // The catalog and search_path statements are analysed in (null: none);
  // `capture`: writes may be captured, so replies are followed for that.
  // The context must outlive the hook or the next call.
  void set_context(const rewrite::Context* context, bool capture) noexcept {
    context_ = context;
    capture_ = capture;
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
    stats::Tally captured;  // statements whose rows were captured
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
  // What the replies of one statement need: names to restore, and whether
  // pgshift's capture column ends its rows.
  enum class Extra : std::uint8_t {
    none,
    column,  // the client's own RETURNING comes first: drop the last field
    rows,    // the client asked for no rows: drop them all (a Describe gets NoData)
  };
  struct Shape {
    RenamesPtr renames;
    Extra extra = Extra::none;
    bool executed = false;  // a portal's: an Execute ran it (a captured one runs to its end at once)
    bool empty() const noexcept { return !renames && extra == Extra::none; }
  };
  struct Expected {
    enum class Kind : std::uint8_t { query, describe, execute, sync };
    explicit Expected(Kind k) : kind(k) {}
    Expected(Kind k, Shape s) : kind(k), one(std::move(s)) {}
    Kind kind;
    Shape one;                   // describe, execute
    std::vector<Shape> statements;  // query: per statement
    std::size_t next = 0;        // query: statement the next reply is for
    // execute of a captured statement with a RETURNING of the client's:
    std::uint32_t max_rows = 0;  // the client's row limit (pgshift asked for every row)
    std::uint32_t rows = 0;      // rows of it passed to the client
    std::string portal;          // where rows past the limit wait for the next Execute
    bool leftovers = false;      // this Execute is answered from those
  };
  // Rows of a captured portal past the client's row limit, and its tag.
  struct Leftovers {
    std::deque<std::string> rows;  // DataRow messages, capture column removed
    std::string tag;
  };

  Verdict query(const protocol::Frame& f, WriteBatch& out);
  Verdict parse(const protocol::Frame& f, WriteBatch& out);
  Verdict bind(const protocol::Frame& f, WriteBatch& out);
  void describe(const protocol::Frame& f);
  Verdict execute(const protocol::Frame& f, WriteBatch& out);
  void close(const protocol::Frame& f);
  // The renames for the rows of statement `i`, after applying what it does
  // to SQL-level prepared statements and cursors (PREPARE, DECLARE, ...).
  RenamesPtr renames_for(const rewrite::Analysis& a, std::size_t i);
  static Extra extra_for(const rewrite::Analysis& a, std::size_t i);
  // Counts and logs; returns the SQL to send instead, or nullptr to keep it.
  const std::string* decide(std::string_view sql, const rewrite::Analysis& a);
  Verdict row_description(const protocol::Frame& f, WriteBatch& out);
  Verdict data_row(const protocol::Frame& f, WriteBatch& out);
  Verdict completed(const protocol::Frame& f, WriteBatch& out);
  void ready_for_query(const protocol::Frame& f);
  bool tracking() const noexcept { return capture_ || rewriter_->has_rules(); }
  void learn_outputs(const protocol::ParseView& p, const rewrite::Analysis& a);
  const Shape* current_shape() const noexcept;

  rewrite::Rewriter* rewriter_;
  bool strict_;
  const rewrite::Context* context_ = nullptr;
  bool capture_ = false;
  const rewrite::Analysis* last_ = nullptr;
  Counters counters_;
  std::string refusal_;  // the replacement text of a refused statement
  // Output renames and capture by prepared statement and by portal; as in
  // PostgreSQL, PREPARE shares the namespace with Parse, and DECLARE with Bind.
  std::unordered_map<std::string, Shape> statements_;
  std::unordered_map<std::string, Shape> portals_;
  std::unordered_map<std::string, Leftovers> leftovers_;  // by portal
  Fifo<Expected> expected_;
  // Syncs sent while nothing was expected: their ReadyForQuery come before
  // anything in expected_, so a count is enough (the common prepared-statement
  // loop then costs no queue entry).
  std::size_t leading_syncs_ = 0;
};

}  // namespace pgshift::proxy
