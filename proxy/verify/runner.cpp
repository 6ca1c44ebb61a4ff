#include "proxy/verify/runner.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <map>
#include <memory>
#include <optional>

#include "proxy/backend.hpp"
#include "proxy/server_conn.hpp"
#include "verify/sql.hpp"

namespace pgshift::proxy::verify {

using namespace asio::experimental::awaitable_operators;
using Clock = std::chrono::steady_clock;
using model::Difference;
using model::DiffKind;
using model::Key;
using model::Side;
using model::TablePlan;
using model::TableReport;

namespace {

constexpr std::size_t kKeysPerQuery = 500;  // keys named in one rows_query
constexpr auto kPollPause = std::chrono::milliseconds(5);

std::string now_rfc3339() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

config::Side server_side(Side s) { return s == Side::primary ? config::Side::primary : config::Side::shadow; }
std::string_view side_name(Side s) { return s == Side::primary ? "primary" : "target"; }

// One logged-in connection, with the session settings verify needs.
struct Conn {
  Side side = Side::primary;
  std::unique_ptr<ServerConn> server;
  model::ServerInfo info;
  bool in_transaction = false;
};

awaitable<bool> query(const Servers& s, Conn& c, std::string sql, QueryResult& r, std::string& error) {
  r = QueryResult{};
  if (!co_await simple_query(*c.server, s.limits, sql, r)) {
    error = fmt::format("{} server: the connection was lost", side_name(c.side));
    co_return false;
  }
  if (!r.ok()) {
    error = fmt::format("{} server: {} (SQLSTATE {})", side_name(c.side), r.error, *r.sqlstate);
    QueryResult ignored;  // leave no failed transaction behind
    co_await simple_query(*c.server, s.limits, "ROLLBACK", ignored);
    c.in_transaction = false;
    co_return false;
  }
  co_return true;
}

awaitable<std::unique_ptr<Conn>> open(const Servers& s, Side side, const model::Options& o, std::string& error) {
  const config::Side cs = server_side(side);
  const config::Upstream& up = s.cfg.upstream(cs);
  auto c = std::make_unique<Conn>();
  c->side = side;
  auto executor = co_await asio::this_coro::executor;
  c->server = std::make_unique<ServerConn>(tcp::socket(executor), s.cfg.buffer_size);
  const ConnectResult r = co_await connect_server(up, s.tls[static_cast<std::size_t>(cs)], *c->server);
  if (r.ec) {
    error = fmt::format("{} server {}:{}: {}", side_name(side), up.address.host, up.address.port, r.detail);
    co_return nullptr;
  }
  // Without a [[X.login]] for the user, log in as that user with no
  // password (trust or peer setups); a server that wants one says so.
  const config::ServerLogin* credentials = config::find_login(s.cfg.logins(cs), o.user);
  const std::string user = credentials && !credentials->user.empty() ? credentials->user : o.user;
  const std::string database = s.cfg.database_on(cs, o.database);
  const Params params{{"user", user}, {"database", database}, {"application_name", "pgshift-verify"}};
  LoginInfo info;
  asio::steady_timer timer(executor, up.connect_timeout + std::chrono::seconds(10));
  std::string why;
  // (No conditional expression inside the co_await: GCC 12 evaluates both arms.)
  std::string password;
  if (credentials) password = credentials->password;
  auto done = co_await (login(*c->server, s.limits, params, password, info, why) || timer.async_wait(use_tuple));
  if (done.index() == 1) why = "the server did not answer the login in time";
  if (done.index() == 1 || !std::get<0>(done)) {
    std::string hint;
    if (!credentials) hint = fmt::format(" (no [[{}.login]] for user {})", config::to_string(cs), o.user);
    error = fmt::format("{} server {}:{}, user {}, database {}: {}{}", side_name(side), up.address.host,
                        up.address.port, user, database, why, hint);
    co_return nullptr;
  }
  QueryResult q;
  if (!co_await query(s, *c, model::session_settings() + "; SHOW server_version_num", q, error)) co_return nullptr;
  if (!q.rows.empty() && !q.rows.back().empty() && q.rows.back()[0]) c->info.version = std::atoi(q.rows.back()[0]->c_str());
  co_return c;
}

// Both sides at once.
awaitable<bool> both(const Servers& s, Conn& p, std::string psql, QueryResult& pr, Conn& t, std::string tsql,
                     QueryResult& tr, std::string& error) {
  std::string pe, te;
  auto [pok, tok] = co_await (query(s, p, psql, pr, pe) && query(s, t, tsql, tr, te));
  if (!pok || !tok) error = !pok ? pe : te;
  co_return pok && tok;
}

std::string begin_chunk(Conn& c) {
  std::string sql = c.in_transaction ? "COMMIT; " : "";
  c.in_transaction = true;
  return sql + "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; ";
}

awaitable<bool> end_transaction(const Servers& s, Conn& c, std::string& error) {
  if (!c.in_transaction) co_return true;
  c.in_transaction = false;
  QueryResult r;
  co_return co_await query(s, c, "COMMIT", r, error);
}

awaitable<void> sleep_for(Clock::duration d) {
  if (d <= Clock::duration::zero()) co_return;
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(use_tuple);
}

struct Hash {
  std::string rows, sum;
  bool operator==(const Hash&) const = default;
};

bool parse_hash(const QueryResult& r, Hash& h) {
  if (r.rows.empty() || r.rows.back().size() != 2 || !r.rows.back()[0] || !r.rows.back()[1]) return false;
  h = {*r.rows.back()[0], *r.rows.back()[1]};
  return true;
}

std::uint64_t to_u64(const std::string& s) { return std::strtoull(s.c_str(), nullptr, 10); }

std::optional<Key> key_of(const QueryResult& r, std::size_t width) {
  if (r.rows.empty()) return std::nullopt;
  const auto& row = r.rows.back();
  if (row.size() != width) return std::nullopt;
  Key k;
  for (const auto& v : row) {
    if (!v) return std::nullopt;
    k.push_back(*v);
  }
  return k;
}

struct Chunk {
  std::uint64_t index = 0;
  std::optional<Key> lo, hi;
  bool end = false;
};
using ChunkChannel = asio::experimental::channel<void(error_code, Chunk)>;

// A run: its connections (one planner connection to the primary, one pair
// per job) and the rate limit, shared by every table.
class Run {
 public:
  Run(const Servers& s, const model::Options& o, Status& status)
      : s_(s), o_(o), status_(status), pacer_(o.max_rows_per_second) {}

  awaitable<model::Report> go();

 private:
  struct Found {  // a table's differing keys so far
    std::vector<Difference> kept;  // at most max_recheck_keys
    std::uint64_t overflow[3] = {0, 0, 0};  // by kind, past max_recheck_keys
  };
  struct Worker {
    std::unique_ptr<Conn> p, t;
  };

  awaitable<bool> connect(std::string& error);
  awaitable<bool> catalogs(std::vector<model::Table>& p, std::vector<model::Table>& t, std::string& error);
  awaitable<void> table(const TablePlan& plan, TableReport& r);
  awaitable<void> keyed(const TablePlan& plan, TableReport& r, Found& found);
  awaitable<void> planner(const TablePlan& plan, ChunkChannel& ch, std::string& failure);
  awaitable<void> worker(Worker& w, const TablePlan& plan, ChunkChannel& ch, TableReport& r, Found& found,
                         std::string& failure);
  awaitable<bool> chunk(Worker& w, const TablePlan& plan, const Chunk& c, TableReport& r, Found& found,
                        std::string& error);
  awaitable<bool> compare_keys(Worker& w, const TablePlan& plan, const std::vector<Key>& keys,
                               std::vector<Difference>& out, std::string& error);
  awaitable<bool> recheck(const TablePlan& plan, TableReport& r, Found& found, std::string& error);
  awaitable<void> full_table(const TablePlan& plan, TableReport& r);
  awaitable<void> pace(std::uint64_t rows) { co_await sleep_for(pacer_.reserve(rows, Clock::now())); }
  void keep(Found& found, Difference d) const;

  const Servers& s_;
  const model::Options& o_;
  Status& status_;
  model::Pacer pacer_;
  std::unique_ptr<Conn> planner_;
  std::vector<Worker> workers_;
  std::string hash_;  // the row hash in use, for the report
};

awaitable<bool> Run::connect(std::string& error) {
  planner_ = co_await open(s_, Side::primary, o_, error);
  if (!planner_) co_return false;
  const unsigned jobs = std::max(1u, o_.jobs);
  for (unsigned i = 0; i < jobs; ++i) {
    Worker w;
    w.p = co_await open(s_, Side::primary, o_, error);
    if (w.p) w.t = co_await open(s_, Side::target, o_, error);
    if (!w.p || !w.t) co_return false;
    workers_.push_back(std::move(w));
  }
  co_return true;
}

awaitable<bool> Run::catalogs(std::vector<model::Table>& p, std::vector<model::Table>& t, std::string& error) {
  // The fast row hash, if both servers compute it alike (see hash_probe()).
  QueryResult pp, tp;
  std::string ignored;
  const std::string probe = model::hash_probe();
  const bool probed = co_await both(s_, *planner_, probe, pp, *workers_[0].t, probe, tp, ignored);
  const bool fast = probed && !pp.rows.empty() && !tp.rows.empty() && pp.rows == tp.rows;
  planner_->info.fast_hash = fast;
  for (Worker& w : workers_) w.p->info.fast_hash = w.t->info.fast_hash = fast;
  hash_ = fast ? "hashtextextended" : "md5";
  QueryResult pr, tr;
  const std::string sql = model::catalog_query();
  if (!co_await both(s_, *planner_, sql, pr, *workers_[0].t, sql, tr, error)) co_return false;
  std::string why;
  if (!model::tables_from_catalog(pr.rows, p, why)) {
    error = "primary server: " + why;
    co_return false;
  }
  if (!model::tables_from_catalog(tr.rows, t, why)) {
    error = "target server: " + why;
    co_return false;
  }
  co_return true;
}

awaitable<model::Report> Run::go() {
  model::Report report;
  report.live = o_.live;
  report.started = now_rfc3339();
  const auto began = Clock::now();
  auto where = [&](config::Side side) {
    const config::Upstream& u = s_.cfg.upstream(side);
    return fmt::format("{}:{}/{}", u.address.host, u.address.port, s_.cfg.database_on(side, o_.database));
  };
  report.primary = where(config::Side::primary);
  report.target = where(config::Side::shadow);
  auto fail = [&](std::string why) {
    report.error = std::move(why);
    report.finished = now_rfc3339();
    report.seconds = seconds_since(began);
    status_.set_phase("failed");
    return report;
  };

  status_.set_phase("connecting");
  std::string error;
  if (!co_await connect(error)) co_return fail(error);
  status_.set_phase("reading catalogs");
  std::vector<model::Table> pt, tt;
  if (!co_await catalogs(pt, tt, error)) co_return fail(error);
  model::Rules rules;
  rules.renames = s_.cfg.renames;
  rules.ignore_columns = s_.cfg.shadow.compare.ignore_columns;
  rules.numeric_tolerance = s_.cfg.shadow.compare.numeric_tolerance;
  std::vector<std::string> unknown;
  const model::SchemaDiff diff = model::diff_schemas(pt, tt, rules, o_.tables, unknown);
  if (!unknown.empty()) {
    std::string names;
    for (const auto& n : unknown) names += (names.empty() ? "" : ", ") + n;
    co_return fail("no such table on either server: " + names);
  }

  // Every table in name order, the one-sided ones among them.
  std::map<std::string, const TablePlan*> order;
  for (const TablePlan& t : diff.tables) order.emplace(t.qualified(), &t);
  for (const auto& n : diff.only_on_primary) order.emplace(n, nullptr);
  for (const auto& n : diff.only_on_target) order.emplace(n, nullptr);
  report.row_hash = hash_;
  status_.set_tables(order.size());
  status_.set_phase("comparing");
  for (const auto& [name, plan] : order) {
    TableReport r;
    r.table = name;
    if (!plan) {
      r.status = std::find(diff.only_on_primary.begin(), diff.only_on_primary.end(), name) != diff.only_on_primary.end()
                     ? TableReport::Status::only_on_primary
                     : TableReport::Status::only_on_target;
    } else {
      co_await table(*plan, r);
    }
    status_.finished(r);
    report.tables.push_back(std::move(r));
  }
  report.finished = now_rfc3339();
  report.seconds = seconds_since(began);
  status_.set_phase("done");
  co_return report;
}

awaitable<void> Run::table(const TablePlan& plan, TableReport& r) {
  const auto began = Clock::now();
  r.column_issues = plan.column_issues;
  r.ignored = plan.ignored;
  status_.started(plan.qualified(), static_cast<std::uint64_t>(plan.estimated_rows));
  if (!plan.keyed()) {
    r.mode = "full-table hash (no primary key or replica identity index)";
    r.full_table = true;
    co_await full_table(plan, r);
  } else {
    std::string cols;
    for (std::size_t i : plan.key) cols += (cols.empty() ? "" : ", ") + plan.columns[i].name;
    r.mode = fmt::format("chunks of {} rows by the {} ({})", o_.chunk_rows, plan.key_source, cols);
    Found found;
    co_await keyed(plan, r, found);
    if (r.status != TableReport::Status::failed) {
      std::string error;
      if (!found.kept.empty() && o_.live && o_.rechecks > 0) {
        status_.set_phase("re-checking " + plan.qualified());
        if (!co_await recheck(plan, r, found, error)) {
          r.status = TableReport::Status::failed;
          r.error = error;
        }
        status_.set_phase("comparing");
      }
      for (const Difference& d : found.kept) {
        (d.kind == DiffKind::changed ? r.mismatched : d.kind == DiffKind::missing ? r.missing : r.extra) += 1;
        if (r.first.size() < o_.shown_differences) r.first.push_back(d);
      }
      r.mismatched += found.overflow[0];
      r.missing += found.overflow[1];
      r.extra += found.overflow[2];
      r.not_rechecked = found.overflow[0] + found.overflow[1] + found.overflow[2];
    }
  }
  r.seconds = seconds_since(began);
  model::finish(r, &plan);
}

void Run::keep(Found& found, Difference d) const {
  if (found.kept.size() < o_.max_recheck_keys) found.kept.push_back(std::move(d));
  else ++found.overflow[static_cast<std::size_t>(d.kind)];
}

awaitable<void> Run::keyed(const TablePlan& plan, TableReport& r, Found& found) {
  auto executor = co_await asio::this_coro::executor;
  ChunkChannel ch(executor, workers_.size());
  std::string failure;
  // The planner and the workers run together; the last to finish wakes us.
  std::size_t running = workers_.size() + 1;
  asio::steady_timer done(executor, Clock::time_point::max());
  auto finished = [&] {
    if (--running == 0) done.cancel();
  };
  asio::co_spawn(
      executor,
      [this, &plan, &ch, &failure, &finished]() -> awaitable<void> {
        co_await planner(plan, ch, failure);
        finished();
      },
      asio::detached);
  for (Worker& w : workers_)
    asio::co_spawn(
        executor,
        [this, &w, &plan, &ch, &r, &found, &failure, &finished]() -> awaitable<void> {
          co_await worker(w, plan, ch, r, found, failure);
          finished();
        },
        asio::detached);
  while (running > 0) co_await done.async_wait(use_tuple);
  for (Worker& w : workers_) {
    std::string error;
    if (!co_await end_transaction(s_, *w.p, error) && failure.empty()) failure = error;
    if (!co_await end_transaction(s_, *w.t, error) && failure.empty()) failure = error;
  }
  if (!failure.empty()) {
    r.status = TableReport::Status::failed;
    r.error = failure;
  }
}

awaitable<void> Run::planner(const TablePlan& plan, ChunkChannel& ch, std::string& failure) {
  std::optional<Key> lo;
  for (std::uint64_t index = 0; failure.empty(); ++index) {
    QueryResult q;
    std::string error;
    if (!co_await query(s_, *planner_, model::boundary_query(plan, planner_->info, lo, o_.chunk_rows), q, error)) {
      if (failure.empty()) failure = error;
      break;
    }
    // (Named, not a temporary inside the co_await: GCC 12 destroys those twice.)
    Chunk next;
    next.index = index;
    next.lo = lo;
    next.hi = key_of(q, plan.key.size());
    const bool last = !next.hi;
    if (!last) lo = next.hi;
    co_await ch.async_send(error_code{}, std::move(next), use_tuple);
    if (last) break;
  }
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    Chunk end;
    end.end = true;
    co_await ch.async_send(error_code{}, std::move(end), use_tuple);
  }
}

awaitable<void> Run::worker(Worker& w, const TablePlan& plan, ChunkChannel& ch, TableReport& r, Found& found,
                            std::string& failure) {
  for (;;) {
    auto [ec, c] = co_await ch.async_receive(use_tuple);
    if (ec || c.end) co_return;
    if (!failure.empty()) continue;  // drain the channel so the planner can finish
    std::string error;
    if (!co_await chunk(w, plan, c, r, found, error) && failure.empty()) failure = error;
  }
}

awaitable<bool> Run::chunk(Worker& w, const TablePlan& plan, const Chunk& c, TableReport& r, Found& found,
                           std::string& error) {
  co_await pace(o_.chunk_rows);
  QueryResult pq, tq;
  const std::string ps = begin_chunk(*w.p) + model::chunk_hash_query(plan, Side::primary, w.p->info, c.lo, c.hi);
  const std::string ts = begin_chunk(*w.t) + model::chunk_hash_query(plan, Side::target, w.t->info, c.lo, c.hi);
  if (!co_await both(s_, *w.p, ps, pq, *w.t, ts, tq, error)) co_return false;
  Hash ph, th;
  if (!parse_hash(pq, ph) || !parse_hash(tq, th)) {
    error = "a chunk hash came back malformed";
    co_return false;
  }
  ++r.chunks;
  const std::uint64_t rows = to_u64(ph.rows);
  r.rows += rows;
  status_.add_rows(plan.qualified(), rows);
  if (ph == th) co_return true;

  // The hashes differ: which rows? Read in the same snapshots.
  ++r.chunks_differing;
  QueryResult pk, tk;
  if (!co_await both(s_, *w.p, model::row_hashes_query(plan, Side::primary, w.p->info, c.lo, c.hi), pk, *w.t,
                     model::row_hashes_query(plan, Side::target, w.t->info, c.lo, c.hi), tk, error))
    co_return false;
  const std::vector<Key> keys = model::differing_keys(plan, pk.rows, tk.rows);
  pk = QueryResult{};
  tk = QueryResult{};
  std::vector<Difference> diffs;
  if (!co_await compare_keys(w, plan, keys, diffs, error)) co_return false;
  for (Difference& d : diffs) {
    d.chunk = c.index;
    if (d.kind == DiffKind::extra) ++r.rows;  // a key only the target has is a row processed too
    keep(found, std::move(d));
  }
  co_return true;
}

awaitable<bool> Run::compare_keys(Worker& w, const TablePlan& plan, const std::vector<Key>& keys,
                                  std::vector<Difference>& out, std::string& error) {
  for (std::size_t at = 0; at < keys.size(); at += kKeysPerQuery) {
    const std::vector<Key> batch(keys.begin() + static_cast<std::ptrdiff_t>(at),
                                 keys.begin() + static_cast<std::ptrdiff_t>(std::min(keys.size(), at + kKeysPerQuery)));
    QueryResult pr, tr;
    if (!co_await both(s_, *w.p, model::rows_query(plan, Side::primary, w.p->info, batch, true), pr, *w.t,
                       model::rows_query(plan, Side::target, w.t->info, batch, true), tr, error))
      co_return false;
    for (Difference& d : model::compare_rows(plan, batch, pr.rows, tr.rows, s_.cfg.shadow.compare.numeric_tolerance))
      out.push_back(std::move(d));
  }
  co_return true;
}

// Live mode: each round samples both sides together, again and again, for
// recheck_window; a key whose target row reaches a state its primary row had
// is resolved. What is left at the end of a round is compared value by value
// (a fresh read of each side); what still differs after the last round stays.
awaitable<bool> Run::recheck(const TablePlan& plan, TableReport& r, Found& found, std::string& error) {
  Worker& w = workers_[0];
  model::InFlight watch;
  std::map<Key, std::uint64_t> chunk_of;
  for (const Difference& d : found.kept) {
    watch.add(d.key);
    chunk_of.emplace(d.key, d.chunk);
  }
  const std::size_t before = found.kept.size();
  std::vector<Difference> still;
  for (unsigned round = 0; round < o_.rechecks && watch.size() > 0; ++round) {
    watch.new_round();
    const auto deadline = Clock::now() + o_.recheck_window;
    while (watch.size() > 0 && Clock::now() < deadline) {
      const std::vector<Key> keys = watch.pending();
      for (std::size_t at = 0; at < keys.size(); at += kKeysPerQuery) {
        const std::vector<Key> batch(
            keys.begin() + static_cast<std::ptrdiff_t>(at),
            keys.begin() + static_cast<std::ptrdiff_t>(std::min(keys.size(), at + kKeysPerQuery)));
        QueryResult pr, tr;
        if (!co_await both(s_, *w.p, model::rows_query(plan, Side::primary, w.p->info, batch, false), pr, *w.t,
                           model::rows_query(plan, Side::target, w.t->info, batch, false), tr, error))
          co_return false;
        watch.sample_primary(plan, batch, pr.rows);
        watch.sample_target(plan, batch, tr.rows);
      }
      co_await sleep_for(kPollPause);
    }
    // Value by value, for what the hashes did not settle (equal values that
    // print differently hash differently).
    still.clear();
    const std::vector<Key> left = watch.pending();
    if (!co_await compare_keys(w, plan, left, still, error)) co_return false;
    watch = model::InFlight{};
    for (const Difference& d : still) watch.add(d.key);
  }
  found.kept = std::move(still);
  for (Difference& d : found.kept) d.chunk = chunk_of[d.key];
  r.in_flight += before - found.kept.size();
  co_return true;
}

awaitable<void> Run::full_table(const TablePlan& plan, TableReport& r) {
  Worker& w = workers_[0];
  std::vector<Hash> primary_states;
  std::string error;
  const auto deadline = Clock::now() + o_.recheck_window * (o_.live ? o_.rechecks : 0);
  co_await pace(static_cast<std::uint64_t>(plan.estimated_rows));
  for (bool first = true;; first = false) {
    QueryResult pq, tq;
    const std::string ps = begin_chunk(*w.p) + model::chunk_hash_query(plan, Side::primary, w.p->info, {}, {});
    const std::string ts = begin_chunk(*w.t) + model::chunk_hash_query(plan, Side::target, w.t->info, {}, {});
    Hash ph, th;
    bool ok = co_await both(s_, *w.p, ps, pq, *w.t, ts, tq, error);
    if (ok && (!parse_hash(pq, ph) || !parse_hash(tq, th))) {
      error = "a table hash came back malformed";
      ok = false;
    }
    ok = co_await end_transaction(s_, *w.p, error) && ok;
    ok = co_await end_transaction(s_, *w.t, error) && ok;
    if (!ok) {
      r.status = TableReport::Status::failed;
      r.error = error;
      co_return;
    }
    if (first) {
      r.chunks = 1;
      r.rows = to_u64(ph.rows);
      status_.add_rows(plan.qualified(), r.rows);
    }
    r.target_rows = to_u64(th.rows);
    if (std::find(primary_states.begin(), primary_states.end(), ph) == primary_states.end()) primary_states.push_back(ph);
    if (std::find(primary_states.begin(), primary_states.end(), th) != primary_states.end()) {
      r.chunks_differing = 0;
      r.rows = to_u64(th.rows);
      co_return;
    }
    r.chunks_differing = 1;
    r.kept_changing = primary_states.size() > 1;
    // Live mode: the table may still be catching up; watch it for a while.
    if (Clock::now() >= deadline) co_return;
    co_await sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace

// ---------------------------------------------------------------------------

Status::Snapshot Status::snapshot() const {
  std::lock_guard lock(mutex_);
  Snapshot s;
  s.tables = tables_;
  s.done = done_;
  s.phase = phase_;
  for (const Running& r : running_) {
    model::Progress p = r.p;
    p.seconds = seconds_since(r.since);
    s.running.push_back(std::move(p));
  }
  return s;
}

void Status::set_phase(std::string p) {
  std::lock_guard lock(mutex_);
  phase_ = std::move(p);
}

void Status::set_tables(std::size_t n) {
  std::lock_guard lock(mutex_);
  tables_ = n;
}

void Status::started(const std::string& table, std::uint64_t estimate) {
  std::lock_guard lock(mutex_);
  running_.push_back({model::Progress{table, 0, estimate, 0}, Clock::now()});
}

void Status::add_rows(const std::string& table, std::uint64_t rows) {
  std::lock_guard lock(mutex_);
  for (Running& r : running_)
    if (r.p.table == table) r.p.rows_done += rows;
}

void Status::finished(const model::TableReport& r) {
  std::lock_guard lock(mutex_);
  std::erase_if(running_, [&](const Running& x) { return x.p.table == r.table; });
  done_.push_back(r);
}

awaitable<model::Report> run(const Servers& servers, const model::Options& options, Status& status) {
  Run r(servers, options, status);
  co_return co_await r.go();
}

void apply_defaults(const config::Config& cfg, model::Options& o) {
  if (o.user.empty()) o.user = !cfg.cutover.control_user.empty() ? cfg.cutover.control_user : "postgres";
  if (o.database.empty()) o.database = o.user;
}

}  // namespace pgshift::proxy::verify
