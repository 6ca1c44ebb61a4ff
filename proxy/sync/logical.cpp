#include "proxy/sync/logical.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <set>

#include "proxy/sync/process.hpp"

namespace pgshift::proxy::sync {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

// The tables a publication FOR ALL TABLES covers, as "schema.table".
constexpr std::string_view kUserTables =
    "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'";

std::uint64_t number(const std::optional<std::string>& v) {
  if (!v || v->empty()) return 0;
  return std::strtoull(v->c_str(), nullptr, 10);
}

bool truth(const std::optional<std::string>& v) { return v && *v == "t"; }

// A libpq connection-string value, quoted.
std::string conn_value(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

std::string_view sslmode(config::ServerTlsMode m) {
  switch (m) {
    case config::ServerTlsMode::disable: return "disable";
    case config::ServerTlsMode::prefer: return "prefer";
    case config::ServerTlsMode::require: return "require";
    case config::ServerTlsMode::verify_ca: return "verify-ca";
    case config::ServerTlsMode::verify_full: return "verify-full";
  }
  return "prefer";
}

std::string joined(const std::vector<std::string>& items, std::size_t at_most = 20) {
  std::string out;
  for (std::size_t i = 0; i < items.size() && i < at_most; ++i) out += (i ? ", " : "") + items[i];
  if (items.size() > at_most) out += fmt::format(" and {} more", items.size() - at_most);
  return out;
}

}  // namespace

std::string subscription_name(config::Side from, const std::string& database) {
  std::string db;
  for (char c : database) db += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '_';
  return fmt::format("pgshift_{}_from_{}", db.substr(0, 30), config::to_string(from));
}

std::string_view TableState::label() const noexcept {
  switch (state) {
    case 'i': return "waiting";
    case 'd': return "copying";
    case 'f': case 's': return "synced";
    case 'r': return "streaming";
    default: return "unknown";
  }
}

bool Status::ready() const noexcept { return subscribed && enabled && worker && streaming() == tables.size(); }

std::size_t Status::streaming() const noexcept {
  return static_cast<std::size_t>(std::count_if(tables.begin(), tables.end(), [](const TableState& t) { return t.state == 'r'; }));
}

Replication::Replication(ProxyContext& ctx, std::string database, config::Side from)
    : ctx_(ctx),
      database_(std::move(database)),
      from_(from),
      user_(ctx.cfg.shadow.sync_user.empty() ? std::string("postgres") : ctx.cfg.shadow.sync_user) {}

awaitable<bool> Replication::connect(std::string& error) {
  publisher_ = co_await cutover::open_control(ctx_, from_, database_, user_, error);
  if (!publisher_) co_return false;
  subscriber_ = co_await cutover::open_control(ctx_, to(), database_, user_, error);
  co_return subscriber_ != nullptr;
}

awaitable<bool> Replication::query(cutover::Control& c, const std::string& sql, QueryResult& r, std::string& error) {
  r = QueryResult{};
  const bool sent = co_await simple_query(*c.conn, ctx_.limits, sql, r);
  if (!sent) {
    error = fmt::format("the {} server closed the connection", config::to_string(c.side));
    co_return false;
  }
  if (!r.ok()) {
    error = fmt::format("{} server: {}", config::to_string(c.side), r.error);
    co_return false;
  }
  co_return true;
}

// How one server reaches the other: the configured connection string, or
// pgshift's own address for it and the sync user's login there.
std::string Replication::conninfo(config::Side server) const {
  const config::Shadow& sh = ctx_.cfg.shadow;
  const std::string& configured = server == config::Side::primary ? sh.publisher_conninfo : sh.subscriber_conninfo;
  const config::ServerLogin* login = config::find_login(ctx_.cfg.logins(server), user_);
  std::string out = configured;
  if (out.empty()) {
    const config::Upstream& up = ctx_.cfg.upstream(server);
    out = fmt::format("host={} port={} sslmode={}", conn_value(up.address.host), up.address.port, sslmode(up.tls.mode));
    if (login) {
      out += " user=" + conn_value(login->user.empty() ? user_ : login->user);
      if (!login->password.empty()) out += " password=" + conn_value(login->password);
    }
  }
  if (out.find("dbname=") == std::string::npos) out += " dbname=" + conn_value(ctx_.cfg.database_on(server, database_));
  return out;
}

std::string Replication::table_list() const {
  const auto& tables = ctx_.cfg.shadow.sync_tables;
  if (tables.empty()) return "FOR ALL TABLES";
  std::string out = "FOR TABLE ";
  for (std::size_t i = 0; i < tables.size(); ++i) {
    const auto dot = tables[i].find('.');
    out += (i ? ", " : "") + quote_ident(tables[i].substr(0, dot)) + "." + quote_ident(tables[i].substr(dot + 1));
  }
  return out;
}

awaitable<std::vector<std::string>> Replication::published_tables(std::string& error) {
  std::vector<std::string> out;
  if (!ctx_.cfg.shadow.sync_tables.empty()) co_return ctx_.cfg.shadow.sync_tables;
  QueryResult r;
  if (!co_await query(*publisher_, std::string(kUserTables) + " ORDER BY 1", r, error)) co_return out;
  for (const auto& row : r.rows)
    if (!row.empty() && row[0]) out.push_back(*row[0]);
  co_return out;
}

// ---------------------------------------------------------------------------
// Prerequisites.

awaitable<std::vector<Check>> Replication::prerequisites() {
  std::vector<Check> out;
  std::string error;
  const std::string pub(config::to_string(from_)), sub(config::to_string(to()));
  QueryResult r;
  const bool read = co_await query(
      *publisher_,
      "SELECT current_setting('wal_level'), current_setting('max_replication_slots')::int, "
      "(SELECT count(*) FROM pg_catalog.pg_replication_slots), current_setting('max_wal_senders')::int, "
      "(SELECT count(*) FROM pg_catalog.pg_stat_replication), "
      "(SELECT rolsuper OR rolreplication FROM pg_catalog.pg_roles WHERE rolname = current_user), "
      "(SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user), current_user",
      r, error);
  if (!read || r.rows.empty() || r.rows[0].size() < 8) {
    out.push_back({"the " + pub + " server answers", false, error, "check [primary] and [[primary.login]]"});
    co_return out;
  }
  const auto& p = r.rows[0];
  const std::string wal = p[0].value_or("?");
  out.push_back({"wal_level on the " + pub + " server", wal == "logical", wal,
                 "ALTER SYSTEM SET wal_level = logical; then restart that server"});
  const std::uint64_t slots = number(p[1]), used = number(p[2]), senders = number(p[3]), active = number(p[4]);
  out.push_back({"free replication slots on the " + pub + " server", used < slots, fmt::format("{} of {} used", used, slots),
                 "raise max_replication_slots (restart), or drop unused slots"});
  out.push_back({"free WAL senders on the " + pub + " server", active < senders,
                 fmt::format("{} of {} in use", active, senders), "raise max_wal_senders (restart)"});
  const std::string who = p[7].value_or(user_);
  out.push_back({"replication privilege on the " + pub + " server", truth(p[5]), who,
                 "ALTER ROLE " + quote_ident(who) + " REPLICATION (or log in as a superuser: [shadow] sync_user)"});
  if (ctx_.cfg.shadow.sync_tables.empty())
    out.push_back({"a publication FOR ALL TABLES needs a superuser on the " + pub + " server", truth(p[6]), who,
                   "log in as a superuser ([shadow] sync_user), or list the tables in [shadow] sync_tables"});

  // Tables whose UPDATE and DELETE the publisher could not replicate.
  std::string no_key = std::string(kUserTables) +
                       " AND (c.relreplident = 'n' OR (c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM "
                       "pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)))";
  std::vector<std::string> keyless;
  if (co_await query(*publisher_, no_key + " ORDER BY 1", r, error)) {
    const auto& only = ctx_.cfg.shadow.sync_tables;
    for (const auto& row : r.rows)
      if (row[0] && (only.empty() || std::find(only.begin(), only.end(), *row[0]) != only.end())) keyless.push_back(*row[0]);
  }
  out.push_back({"every table has a primary key or a replica identity", keyless.empty(),
                 keyless.empty() ? "yes" : joined(keyless),
                 "add a primary key, or ALTER TABLE ... REPLICA IDENTITY FULL (or USING INDEX) for each"});

  if (co_await query(*publisher_,
                     "SELECT slot_name FROM pg_catalog.pg_replication_slots WHERE slot_name LIKE 'pgshift\\_%' AND NOT active",
                     r, error)) {
    std::vector<std::string> stray;
    for (const auto& row : r.rows)
      if (row[0] && *row[0] != subscription_name(from_, database_)) stray.push_back(*row[0]);
    Check c{"no stray pgshift slots on the " + pub + " server (they keep WAL until its disk fills)", stray.empty(),
            stray.empty() ? "none" : joined(stray), "SELECT pg_drop_replication_slot('name') for each"};
    c.warning = true;
    out.push_back(c);
  }

  QueryResult s;
  const bool sread = co_await query(
      *subscriber_,
      "SELECT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user), "
      "current_setting('max_replication_slots')::int, (SELECT count(*) FROM pg_catalog.pg_replication_origin), "
      "current_setting('max_logical_replication_workers')::int, current_user",
      s, error);
  if (!sread || s.rows.empty() || s.rows[0].size() < 5) {
    out.push_back({"the " + sub + " server answers", false, error, "check [shadow] and [[shadow.login]]"});
    co_return out;
  }
  const auto& q = s.rows[0];
  out.push_back({"a superuser on the " + sub + " server (CREATE SUBSCRIPTION)", truth(q[0]), q[4].value_or("?"),
                 "log in as a superuser there ([shadow] sync_user and its [[shadow.login]])"});
  out.push_back({"free replication origins on the " + sub + " server", number(q[2]) < number(q[1]),
                 fmt::format("{} of {} used", number(q[2]), number(q[1])), "raise max_replication_slots there (restart)"});
  out.push_back({"logical replication workers on the " + sub + " server", number(q[3]) >= 2,
                 fmt::format("max_logical_replication_workers = {}", number(q[3])),
                 "raise max_logical_replication_workers there (restart)"});
  co_return out;
}

// ---------------------------------------------------------------------------
// Setting up and removing.

awaitable<bool> Replication::copy_schema(std::string& report, std::string& error) {
  const std::vector<std::string> tables = co_await published_tables(error);
  if (!error.empty()) co_return false;
  if (tables.empty()) {
    error = fmt::format("the {} server has no table to replicate in database {}", config::to_string(from_), database_);
    co_return false;
  }
  QueryResult r;
  if (!co_await query(*subscriber_, std::string(kUserTables), r, error)) co_return false;
  std::set<std::string> there;
  for (const auto& row : r.rows)
    if (row[0]) there.insert(*row[0]);
  std::vector<std::string> missing;
  for (const std::string& t : tables)
    if (!there.contains(t)) missing.push_back(t);
  if (missing.empty()) {
    report = fmt::format("the {} server has all {} table(s): schema left as it is", config::to_string(to()), tables.size());
    co_return true;
  }
  if (missing.size() != tables.size()) {
    error = fmt::format("the {} server has {} of the {} tables; missing: {}. Create the missing ones (or drop those "
                        "there) so that it has all or none: pgshift copies a schema only into an empty database",
                        config::to_string(to()), tables.size() - missing.size(), tables.size(), joined(missing));
    co_return false;
  }
  // pg_dump --schema-only, without what the target's roles may lack.
  const config::ServerLogin* from_login = config::find_login(ctx_.cfg.logins(from_), user_);
  const config::ServerLogin* to_login = config::find_login(ctx_.cfg.logins(to()), user_);
  auto command = [&](const std::string& program, config::Side side, const config::ServerLogin* login) {
    const config::Upstream& up = ctx_.cfg.upstream(side);
    Command c;
    c.argv = {program};
    c.env = {{"PGHOST", up.address.host},
             {"PGPORT", std::to_string(up.address.port)},
             {"PGDATABASE", ctx_.cfg.database_on(side, database_)},
             {"PGUSER", login && !login->user.empty() ? login->user : user_},
             {"PGPASSWORD", login ? login->password : std::string()},
             {"PGSSLMODE", std::string(sslmode(up.tls.mode))},
             {"PGCONNECT_TIMEOUT", "10"}};
    if (!up.tls.ca_file.empty()) c.env["PGSSLROOTCERT"] = up.tls.ca_file;
    return c;
  };
  Command dump = command(ctx_.cfg.shadow.pg_dump, from_, from_login);
  dump.argv.insert(dump.argv.end(), {"--schema-only", "--no-owner", "--no-privileges", "--no-publications",
                                     "--no-subscriptions", "--no-security-labels"});
  for (const std::string& t : ctx_.cfg.shadow.sync_tables) dump.argv.insert(dump.argv.end(), {"--table", t});
  Command restore = command(ctx_.cfg.shadow.psql, to(), to_login);
  restore.argv.insert(restore.argv.end(), {"-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-f", "-"});
  const PipelineResult p = co_await run_pipeline(std::move(dump), std::move(restore));
  if (!p.ok) {
    error = "copying the schema: " + p.error;
    co_return false;
  }
  report = fmt::format("copied the schema of {} table(s) to the {} server (pg_dump --schema-only | psql)", tables.size(),
                       config::to_string(to()));
  co_return true;
}

awaitable<bool> Replication::subscribe(bool copy_data, std::string& error) {
  const std::string name = subscription_name(from_, database_);
  QueryResult r;
  if (!co_await query(*publisher_, fmt::format("SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = {}",
                                               quote_literal(kPublication)), r, error))
    co_return false;
  const bool had_publication = !r.rows.empty();
  if (!had_publication &&
      !co_await query(*publisher_, fmt::format("CREATE PUBLICATION {} {}", kPublication, table_list()), r, error))
    co_return false;
  const std::string create = fmt::format(
      "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH (slot_name = {}, copy_data = {})", quote_ident(name),
      quote_literal(conninfo(from_)), kPublication, quote_literal(name), copy_data ? "true" : "false");
  if (!co_await query(*subscriber_, create, r, error)) {
    if (!had_publication) {  // leave the publisher as it was
      std::string ignored;
      co_await query(*publisher_, fmt::format("DROP PUBLICATION IF EXISTS {}", kPublication), r, ignored);
    }
    co_return false;
  }
  co_return true;
}

awaitable<bool> Replication::status(Status& out, std::string& error) {
  out = Status{};
  const std::string name = quote_literal(subscription_name(from_, database_));
  QueryResult r;
  if (!co_await query(*subscriber_,
                      fmt::format("SELECT s.subenabled, (SELECT count(*) FROM pg_catalog.pg_stat_subscription w WHERE "
                                  "w.subid = s.oid AND w.relid IS NULL AND w.pid IS NOT NULL), "
                                  "coalesce(st.apply_error_count, 0), coalesce(st.sync_error_count, 0) "
                                  "FROM pg_catalog.pg_subscription s LEFT JOIN pg_catalog.pg_stat_subscription_stats st "
                                  "ON st.subid = s.oid WHERE s.subname = {}",
                                  name),
                      r, error))
    co_return false;
  if (r.rows.empty()) co_return true;
  const auto& s = r.rows[0];
  out.subscribed = true;
  out.enabled = truth(s[0]);
  out.worker = number(s[1]) > 0;
  out.apply_errors = number(s[2]);
  out.sync_errors = number(s[3]);
  if (!co_await query(*subscriber_,
                      fmt::format("SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), sr.srsubstate, "
                                  "coalesce(p.bytes_processed, 0), coalesce(p.tuples_processed, 0) "
                                  "FROM pg_catalog.pg_subscription s JOIN pg_catalog.pg_subscription_rel sr ON sr.srsubid = s.oid "
                                  "JOIN pg_catalog.pg_class c ON c.oid = sr.srrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                                  "LEFT JOIN pg_catalog.pg_stat_progress_copy p ON p.relid = sr.srrelid "
                                  "WHERE s.subname = {} ORDER BY 1",
                                  name),
                      r, error))
    co_return false;
  for (const auto& row : r.rows) {
    TableState t;
    t.table = row[0].value_or("?");
    t.state = row[1] && !row[1]->empty() ? (*row[1])[0] : '?';
    t.bytes = number(row[2]);
    t.rows = number(row[3]);
    out.tables.push_back(std::move(t));
  }
  if (!co_await query(*publisher_,
                      fmt::format("SELECT pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), confirmed_flush_lsn)::bigint, "
                                  "coalesce((SELECT extract(epoch FROM coalesce(replay_lag, write_lag)) FROM "
                                  "pg_catalog.pg_stat_replication WHERE application_name = {} LIMIT 1), 0) "
                                  "FROM pg_catalog.pg_replication_slots WHERE slot_name = {}",
                                  name, name),
                      r, error))
    co_return false;
  if (!r.rows.empty()) {
    out.lag_bytes = number(r.rows[0][0]);
    out.lag_seconds = r.rows[0][1] ? std::strtod(r.rows[0][1]->c_str(), nullptr) : 0;
  }
  QueryResult est;
  if (co_await query(*publisher_,
                     "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), greatest(c.reltuples, 0)::bigint "
                     "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p')",
                     est, error)) {
    for (TableState& t : out.tables)
      for (const auto& row : est.rows)
        if (row[0] && *row[0] == t.table) t.estimated_rows = number(row[1]);
  }
  co_return true;
}

// Subscription first (it uses the slot), then the slot, then publications.
awaitable<bool> Replication::remove(bool publications, std::vector<std::string>& removed, std::string& error) {
  const std::string name = subscription_name(from_, database_);
  QueryResult r;
  if (!co_await query(*subscriber_,
                      fmt::format("SELECT 1 FROM pg_catalog.pg_subscription WHERE subname = {}", quote_literal(name)), r,
                      error))
    co_return false;
  if (!r.rows.empty()) {
    // Named, not a braced list in the loop: GCC 12 mishandles those across a co_await.
    const std::array<std::string, 3> steps{fmt::format("ALTER SUBSCRIPTION {} DISABLE", quote_ident(name)),
                                           fmt::format("ALTER SUBSCRIPTION {} SET (slot_name = NONE)", quote_ident(name)),
                                           fmt::format("DROP SUBSCRIPTION {}", quote_ident(name))};
    for (const std::string& sql : steps) {
      if (!co_await query(*subscriber_, sql, r, error)) co_return false;
    }
    removed.push_back(fmt::format("subscription {} on the {} server", name, config::to_string(to())));
  }
  // The slot stays active until the walsender that served the subscription exits.
  const auto deadline = Clock::now() + std::chrono::seconds(15);
  for (;;) {
    if (!co_await query(*publisher_,
                        fmt::format("SELECT active FROM pg_catalog.pg_replication_slots WHERE slot_name = {}",
                                    quote_literal(name)),
                        r, error))
      co_return false;
    if (r.rows.empty()) break;
    if (!truth(r.rows[0][0])) {
      if (!co_await query(*publisher_, fmt::format("SELECT pg_catalog.pg_drop_replication_slot({})", quote_literal(name)),
                          r, error))
        co_return false;
      removed.push_back(fmt::format("replication slot {} on the {} server", name, config::to_string(from_)));
      break;
    }
    if (Clock::now() > deadline) {
      error = fmt::format("replication slot {} on the {} server is still in use", name, config::to_string(from_));
      co_return false;
    }
    asio::steady_timer t(co_await asio::this_coro::executor, milliseconds(50));
    co_await t.async_wait(use_tuple);
  }
  if (!publications) co_return true;
  const std::array<cutover::Control*, 2> servers{publisher_.get(), subscriber_.get()};
  for (cutover::Control* c : servers) {
    if (!co_await query(*c, fmt::format("SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = {}",
                                        quote_literal(kPublication)), r, error))
      co_return false;
    if (r.rows.empty()) continue;
    if (!co_await query(*c, fmt::format("DROP PUBLICATION {}", kPublication), r, error)) co_return false;
    removed.push_back(fmt::format("publication {} on the {} server", kPublication, config::to_string(c->side)));
  }
  co_return true;
}

// ---------------------------------------------------------------------------
// The cutover's steps.

awaitable<bool> Replication::prepare_reverse(std::string& error) {
  QueryResult r;
  if (!co_await query(*subscriber_, fmt::format("SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = {}",
                                                quote_literal(kPublication)), r, error))
    co_return false;
  if (!r.rows.empty()) co_return true;
  co_return co_await query(*subscriber_, fmt::format("CREATE PUBLICATION {} {}", kPublication, table_list()), r, error);
}

// The publisher's position now; the other server has it once its apply
// worker has applied past it (its origin's progress), or confirmed it (the
// slot, which moves past WAL that holds no transaction).
awaitable<bool> Replication::wait_applied(milliseconds timeout, std::string& error) {
  const std::string name = quote_literal(subscription_name(from_, database_));
  QueryResult r;
  if (!co_await query(*publisher_, "SELECT pg_catalog.pg_current_wal_lsn()", r, error)) co_return false;
  const std::string lsn = quote_literal(r.rows.at(0).at(0).value_or("0/0"));
  const std::string applied = fmt::format(
      "SELECT pg_catalog.pg_replication_origin_progress('pg_' || s.oid, false) >= {}::pg_lsn, "
      "(SELECT count(*) FROM pg_catalog.pg_stat_subscription w WHERE w.subid = s.oid AND w.relid IS NULL AND w.pid IS NOT NULL) "
      "FROM pg_catalog.pg_subscription s WHERE s.subname = {}",
      lsn, name);
  const std::string confirmed = fmt::format(
      "SELECT confirmed_flush_lsn >= {}::pg_lsn FROM pg_catalog.pg_replication_slots WHERE slot_name = {}", lsn, name);
  const auto deadline = Clock::now() + timeout;
  for (int round = 0;; ++round) {
    if (!co_await query(*subscriber_, applied, r, error)) co_return false;
    if (r.rows.empty()) {
      error = fmt::format("no subscription {} on the {} server", name, config::to_string(to()));
      co_return false;
    }
    if (truth(r.rows[0][0])) co_return true;
    if (number(r.rows[0][1]) == 0) {
      error = fmt::format("the {} server's apply worker for {} is not running (see its server log)", config::to_string(to()),
                          name);
      co_return false;
    }
    if (round % 10 == 9) {
      if (!co_await query(*publisher_, confirmed, r, error)) co_return false;
      if (!r.rows.empty() && truth(r.rows[0][0])) co_return true;
    }
    if (Clock::now() > deadline) {
      error = fmt::format("the {} server did not apply the {} server's changes up to {} within {} ms", config::to_string(to()),
                          config::to_string(from_), lsn, timeout.count());
      co_return false;
    }
    asio::steady_timer t(co_await asio::this_coro::executor, milliseconds(2));
    co_await t.async_wait(use_tuple);
  }
}

awaitable<bool> Replication::freeze_and_reverse_slot(std::string& error) {
  const std::string name = subscription_name(from_, database_);
  const std::string reverse = subscription_name(to(), database_);
  QueryResult r;
  if (!co_await query(*subscriber_, fmt::format("ALTER SUBSCRIPTION {} DISABLE", quote_ident(name)), r, error))
    co_return false;
  // A slot left over from an earlier switch would start in the past.
  if (!co_await query(*subscriber_,
                      fmt::format("SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots "
                                  "WHERE slot_name = {} AND NOT active",
                                  quote_literal(reverse)),
                      r, error))
    co_return false;
  co_return co_await query(*subscriber_,
                           fmt::format("SELECT pg_catalog.pg_create_logical_replication_slot({}, 'pgoutput')",
                                       quote_literal(reverse)),
                           r, error);
}

awaitable<bool> Replication::unfreeze(std::string& error) {
  QueryResult r;
  if (!co_await query(*subscriber_, fmt::format("ALTER SUBSCRIPTION {} ENABLE", quote_ident(subscription_name(from_, database_))),
                      r, error))
    co_return false;
  co_return co_await query(*subscriber_,
                           fmt::format("SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots "
                                       "WHERE slot_name = {} AND NOT active",
                                       quote_literal(subscription_name(to(), database_))),
                           r, error);
}

awaitable<bool> Replication::finish_reverse(std::string& error) {
  const std::string name = subscription_name(from_, database_);
  const std::string reverse = subscription_name(to(), database_);
  // The disabled subscription's worker must be gone before the reverse
  // direction writes to `from`: it would send those writes straight back.
  QueryResult r;
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  for (;;) {
    if (!co_await query(*subscriber_,
                        fmt::format("SELECT count(*) FROM pg_catalog.pg_stat_subscription WHERE subname = {} AND pid IS NOT NULL",
                                    quote_literal(name)),
                        r, error))
      co_return false;
    if (number(r.rows.at(0).at(0)) == 0) break;
    if (Clock::now() > deadline) {
      error = "the old direction's apply worker did not stop";
      co_return false;
    }
    asio::steady_timer t(co_await asio::this_coro::executor, milliseconds(20));
    co_await t.async_wait(use_tuple);
  }
  std::vector<std::string> removed;
  if (!co_await remove(false, removed, error)) co_return false;
  const std::string create = fmt::format(
      "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH (create_slot = false, slot_name = {}, copy_data = false)",
      quote_ident(reverse), quote_literal(conninfo(to())), kPublication, quote_literal(reverse));
  co_return co_await query(*publisher_, create, r, error);
}

awaitable<int> start_database(Replication& rep, const std::function<void(const std::string&)>& say) {
  const std::string& db = rep.database();
  std::string error;
  Status st;
  const bool known = co_await rep.status(st, error);
  if (known && st.subscribed) {
    say(fmt::format("database {}: already replicating ({})", db, subscription_name(rep.from(), db)));
    co_return 0;
  }
  say(fmt::format("database {}: checking the prerequisites", db));
  bool ok = true;
  for (const Check& c : co_await rep.prerequisites()) {
    say(fmt::format("  {} {}: {}", c.ok ? "ok  " : (c.warning ? "WARN" : "FAIL"), c.what, c.detail));
    if (!c.ok) say("       fix: " + c.fix);
    ok = ok && (c.ok || c.warning);
  }
  if (!ok) {
    say(fmt::format("database {}: prerequisites failed; nothing was changed", db));
    co_return 1;
  }
  std::string report;
  if (!co_await rep.copy_schema(report, error)) {
    say(fmt::format("database {}: {}; nothing was changed", db, error));
    co_return 1;
  }
  say(fmt::format("database {}: {}", db, report));
  if (!co_await rep.subscribe(true, error)) {
    say(fmt::format("database {}: cannot subscribe: {}", db, error));
    co_return 1;
  }
  say(fmt::format("database {}: publication {} on the {} server, subscription {} on the {} server; initial copy started",
                  db, kPublication, config::to_string(rep.from()), subscription_name(rep.from(), db),
                  config::to_string(rep.to())));
  co_return 0;
}

}  // namespace pgshift::proxy::sync
