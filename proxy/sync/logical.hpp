// Logical replication as a sync mode ([shadow] sync = "logical"): pgshift
// sets up, watches and turns around PostgreSQL's own publication and
// subscription between the two servers, one database at a time, through its
// own control connections. The other server holds a subscription named for
// the direction (pgshift_<database>_from_<side>); its slot on the publishing
// server has the same name; the publication is pgshift_pub on both.
//
// Everything here is a coroutine on the caller's executor: `pgshift sync
// start|stop` runs it in its own io_context, the running proxy on the cutover
// coordinator's.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "proxy/cutover/control.hpp"

namespace pgshift::proxy::sync {

inline constexpr std::string_view kPublication = "pgshift_pub";

// The subscription (on the other server) that carries `from`'s changes, and
// its slot on `from`.
std::string subscription_name(config::Side from, const std::string& database);

// One prerequisite, with what to do when it fails.
struct Check {
  std::string what;
  bool ok = true;
  std::string detail;  // the value found, or the tables concerned
  std::string fix;
  bool warning = false;  // reported, but does not stop the start
};

struct TableState {
  std::string table;
  char state = 'i';  // pg_subscription_rel: i(nit), d(ata copy), f(inished copy), s(ynchronized), r(eady)
  std::uint64_t bytes = 0, rows = 0;  // copied so far (while 'd')
  std::uint64_t estimated_rows = 0;   // on the publisher
  std::string_view label() const noexcept;  // waiting, copying, synced, streaming
};

struct Status {
  bool subscribed = false;       // the subscription exists
  bool enabled = false;
  bool worker = false;           // its apply worker runs
  std::vector<TableState> tables;
  std::uint64_t lag_bytes = 0;   // the publisher's WAL position against what the subscription confirmed
  double lag_seconds = 0;
  std::uint64_t apply_errors = 0, sync_errors = 0;
  bool ready() const noexcept;   // subscribed, worker running, every table streaming
  std::size_t streaming() const noexcept;
};

// The replication of one database, from one server to the other.
class Replication {
 public:
  Replication(ProxyContext& ctx, std::string database, config::Side from);

  // Opens the control connections to both servers.
  awaitable<bool> connect(std::string& error);

  // What `sync start` needs; nothing is changed.
  awaitable<std::vector<Check>> prerequisites();
  // Copies the schema when the target has none of the tables (pg_dump
  // --schema-only into psql), refuses when it has some but not all, and does
  // nothing when it has them all. `report` says which.
  awaitable<bool> copy_schema(std::string& report, std::string& error);
  // Creates the publication on `from` and the subscription on the other
  // server (with an initial copy, or from now on); undone on failure.
  awaitable<bool> subscribe(bool copy_data, std::string& error);
  awaitable<bool> status(Status& out, std::string& error);
  // Removes the subscription and its slot, in the right order (and the
  // publications with `publications`); `removed` says what existed.
  awaitable<bool> remove(bool publications, std::vector<std::string>& removed, std::string& error);

  // ---- the cutover's steps (the switch pauses traffic around them) ----
  // The publication the reverse direction will use, on the other server.
  awaitable<bool> prepare_reverse(std::string& error);
  // The other server has applied everything `from` wrote up to now.
  awaitable<bool> wait_applied(std::chrono::milliseconds timeout, std::string& error);
  // Stops this direction and creates the slot of the reverse one on the
  // other server, at a point after everything applied here.
  awaitable<bool> freeze_and_reverse_slot(std::string& error);
  // The switch aborted after freezing: this direction goes on, the reverse slot goes.
  awaitable<bool> unfreeze(std::string& error);
  // After the swap: drops this direction, then subscribes `from` to the
  // other server from the slot freeze_and_reverse_slot() made.
  awaitable<bool> finish_reverse(std::string& error);

  config::Side from() const noexcept { return from_; }
  config::Side to() const noexcept { return config::other(from_); }
  const std::string& database() const noexcept { return database_; }

 private:
  awaitable<bool> query(cutover::Control& c, const std::string& sql, QueryResult& r, std::string& error);
  std::string conninfo(config::Side server) const;
  std::string table_list() const;  // the publication's FOR clause
  awaitable<std::vector<std::string>> published_tables(std::string& error);

  ProxyContext& ctx_;
  std::string database_;
  config::Side from_;
  std::string user_;
  std::unique_ptr<cutover::Control> publisher_, subscriber_;  // `from`, and the other
};

// `sync start` for one database: prerequisites, schema, publication and
// subscription, each step told to `say` as a line a person reads. Returns 0
// when it replicates (or already did), 1 when a prerequisite or a step
// failed (and nothing was changed), 2 when it could not run.
awaitable<int> start_database(Replication& rep, const std::function<void(const std::string&)>& say);

}  // namespace pgshift::proxy::sync
