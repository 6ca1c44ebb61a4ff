// A transaction as the shadow must replay it: the client's protocol messages
// (SQL rewritten for the shadow's schema), the primary's outcome of each
// statement, and the session it belongs to. Built by a session's Recorder,
// queued in the primary's commit order, applied by the shadow applier.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "protocol/client_auth.hpp"
#include "shadow/compare.hpp"

namespace pgshift::shadow {

// What one statement did on the primary: its command tag, or its error.
struct StatementOutcome {
  std::string tag;                 // CommandComplete tag ("UPDATE 1"), empty on error
  std::optional<std::string> sqlstate;
  std::uint64_t fingerprint = 0;   // of the statement's text, for the mismatch log
  std::string text;                // the statement as the client sent it
  // How the shadow's outcome is compared with this one.
  enum class Compare : std::uint8_t {
    tag,    // command tag and row count, error against success
    count,  // the row count only: the shadow ran pgshift's statement with the primary's rows
    rows,   // the tag and the rows returned (`returned`), as a multiset
  };
  Compare compare = Compare::tag;
  // Not empty when the shadow may end up other than the primary after it
  // (a volatile function in a trigger, a write to a table without a primary
  // key...): why. Counted and logged per fingerprint.
  std::string inexact;
  std::unique_ptr<Outcome> returned;  // Compare::rows: the rows the primary returned
};

// The client session a transaction comes from, shared by all its transactions:
// who logged in, and the startup parameters the shadow connection must be
// opened with (options, TimeZone, DateStyle... change what statements mean).
struct Origin {
  std::string user;                // the client's, to pick shadow credentials
  std::string database;
  std::vector<std::pair<std::string, std::string>> params;  // startup parameters but user and database
  // Sessions with the same login can share one shadow connection while their
  // only state of their own is Settings (below).
  std::string login_key;
  // [auth] mode = "pgshift": what logs the shadow connection in as `user`
  // itself (SCRAM or MD5 pass-through); null: [[shadow.login]] only.
  std::shared_ptr<const protocol::PassThrough> pass_through;
};

// The key above: user, database and parameters, in the order the client sent them.
std::string login_key(const Origin& o);

// The run-time parameters a session has SET (and not RESET since), each as
// the statement that set it, in the order first set. A shadow connection
// shared by several sessions switches between them with RESET ALL and these.
struct Settings {
  std::vector<std::pair<std::string, std::string>> statements;  // parameter name, SET statement
};
using SettingsPtr = std::shared_ptr<const Settings>;  // null: none

bool same_settings(const SettingsPtr& a, const SettingsPtr& b) noexcept;

struct Transaction {
  std::uint64_t seq = 0;           // position in the primary's commit order
  std::uint64_t session = 0;
  std::shared_ptr<const Origin> origin;
  // The session has changed its own state other than by Settings (PREPARE, a
  // temporary table...) by now: from this transaction on it needs a shadow
  // connection of its own.
  bool own_connection = false;
  SettingsPtr settings;        // the session's settings before it
  SettingsPtr settings_after;  // ... and after it
  // Named prepared statements this transaction's Binds use, as Parse messages
  // (the applier sends those its shadow connection does not have yet).
  std::vector<std::pair<std::string, std::string>> statements;
  std::string messages;            // frontend messages, ready to send
  std::uint32_t replies = 0;       // ReadyForQuery the shadow will send for them
  std::vector<StatementOutcome> primary;
  // A sampled read: the primary's full results, rows digested, and whether
  // each statement orders its rows. Empty for writes.
  std::vector<Outcome> primary_rows;
  std::vector<bool> ordered;
  bool read = false;
  bool ddl = false;                // it changed the schema: the catalog is read again once applied
  std::size_t captured = 0;        // statements sent as the primary's rows
  std::string why;                 // Kind::dropped: the reason, when not the usual one
  std::chrono::steady_clock::time_point finished;  // a sampled read: when the primary's answer was complete
  std::size_t bytes() const noexcept;

  enum class Kind : std::uint8_t {
    apply,          // replay on the session's shadow connection
    dropped,        // a tombstone: only its place in the order remains
    close_session,  // the session ended: close its shadow connection
    retarget,       // a cutover: what follows goes to another server (`target`)
  };
  Kind kind = Kind::apply;
  std::uint8_t target = 0;  // retarget: the server mirrored to from now on (config::Side's value)
};

using TransactionPtr = std::unique_ptr<Transaction>;

}  // namespace pgshift::shadow
