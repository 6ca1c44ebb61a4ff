// `pgshift sync start|stop|status --config FILE`: sets up, removes or shows
// logical replication from the serving server to the other one, per
// database in [shadow] sync_databases, without a running pgshift.
#include "proxy/sync/cli.hpp"

#include <unistd.h>

#include <fmt/format.h>

#include <boost/asio/io_context.hpp>
#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <array>
#include <iostream>

#include "proxy/cutover/state.hpp"
#include "proxy/sync/logical.hpp"
#include "proxy/tls.hpp"

namespace pgshift::proxy::sync {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kUsage = R"(Usage:
  pgshift sync start --config FILE [--no-wait]
      Checks the prerequisites, copies the schema to the new database when it has none of
      the tables, creates the publication and the subscription (with an initial copy),
      then shows the copy's progress until every table streams (--no-wait: returns at once).
  pgshift sync status --config FILE
      Shows each table's state, the lag and the subscription's errors.
  pgshift sync stop --config FILE
      Removes the subscriptions, their replication slots and the publications pgshift
      created, on both servers, in that order, and says what it removed.
Exit status: 0 done, 1 a prerequisite or the replication failed, 2 sync could not run.
)";

struct Args {
  std::string verb, config;
  bool wait = true;
};

std::string bar(double done, int width = 24) {
  const int n = static_cast<int>(done * width + 0.5);
  return "[" + std::string(static_cast<std::size_t>(std::clamp(n, 0, width)), '#') +
         std::string(static_cast<std::size_t>(width - std::clamp(n, 0, width)), '.') + "]";
}

// One line per table; on a terminal redrawn in place, otherwise printed when
// something changed (at most every 5 s).
class Progress {
 public:
  explicit Progress(bool tty) : tty_(tty) {}

  void show(const std::string& db, const Status& s) {
    std::string text;
    for (const TableState& t : s.tables) {
      const double done = t.state == 'r' || t.state == 's' || t.state == 'f'
                              ? 1.0
                              : (t.estimated_rows ? std::min(1.0, static_cast<double>(t.rows) / static_cast<double>(t.estimated_rows)) : 0.0);
      text += fmt::format("  {:<40} {:<9} {} {:>10} rows {:>8.1f} MB\n", db + ": " + t.table, t.label(), bar(done),
                          t.state == 'd' ? t.rows : (t.state == 'i' ? 0 : t.estimated_rows),
                          static_cast<double>(t.bytes) / 1e6);
    }
    text += fmt::format("  {}: {} of {} table(s) streaming, lag {} bytes ({:.2f} s){}\n", db, s.streaming(), s.tables.size(),
                        s.lag_bytes, s.lag_seconds,
                        s.apply_errors + s.sync_errors ? fmt::format(", {} error(s)", s.apply_errors + s.sync_errors) : "");
    if (tty_) {
      if (lines_) std::cout << "\x1b[" << lines_ << "F\x1b[J";
      std::cout << text << std::flush;
      lines_ = static_cast<int>(std::count(text.begin(), text.end(), '\n'));
      return;
    }
    if (text == last_ && Clock::now() - printed_ < std::chrono::seconds(5)) return;
    std::cout << text << std::flush;
    last_ = text;
    printed_ = Clock::now();
  }

 private:
  bool tty_;
  int lines_ = 0;
  std::string last_;
  Clock::time_point printed_{};
};

awaitable<int> start(ProxyContext& ctx, config::Side from, bool wait) {
  std::vector<std::unique_ptr<Replication>> reps;
  int result = 0;
  for (const std::string& db : ctx.cfg.shadow.sync_databases) {
    auto rep = std::make_unique<Replication>(ctx, db, from);
    std::string error;
    if (!co_await rep->connect(error)) {
      std::cout << "database " << db << ": cannot connect: " << error << "\n";
      co_return 2;
    }
    const int rc = co_await start_database(*rep, [](const std::string& line) { std::cout << line << "\n"; });
    if (rc != 0) {
      result = std::max(result, rc);
      continue;
    }
    reps.push_back(std::move(rep));
  }
  if (!wait || reps.empty()) co_return result;
  Progress progress(isatty(1) != 0);
  asio::steady_timer tick(co_await asio::this_coro::executor);
  for (;;) {
    bool all_ready = true;
    for (auto& rep : reps) {
      Status st;
      std::string error;
      if (!co_await rep->status(st, error)) {
        std::cout << "database " << rep->database() << ": " << error << "\n";
        co_return 2;
      }
      progress.show(rep->database(), st);
      if (st.apply_errors + st.sync_errors > 0) {
        std::cout << "database " << rep->database()
                  << ": the subscription reports errors (a conflicting row on the target, a schema change...): see the "
                     "target's server log\n";
        co_return 1;
      }
      all_ready = all_ready && st.ready();
    }
    if (all_ready) break;
    tick.expires_after(std::chrono::milliseconds(500));
    co_await tick.async_wait(use_tuple);
  }
  std::cout << "every table is copied and streaming\n";
  co_return result;
}

awaitable<int> status(ProxyContext& ctx, config::Side from) {
  Progress progress(false);
  for (const std::string& db : ctx.cfg.shadow.sync_databases) {
    Replication rep(ctx, db, from);
    std::string error;
    Status st;
    bool ok = co_await rep.connect(error);  // one co_await per statement (GCC 12)
    if (ok) ok = co_await rep.status(st, error);
    if (!ok) {
      std::cout << "database " << db << ": " << error << "\n";
      co_return 2;
    }
    if (!st.subscribed) std::cout << "database " << db << ": not replicating\n";
    else progress.show(db, st);
  }
  co_return 0;
}

// Both directions, then the publications.
awaitable<int> stop(ProxyContext& ctx) {
  int result = 0;
  for (const std::string& db : ctx.cfg.shadow.sync_databases) {
    std::vector<std::string> removed;
    const std::array<config::Side, 2> directions{config::Side::primary, config::Side::shadow};
    for (config::Side from : directions) {
      Replication rep(ctx, db, from);
      std::string error;
      bool ok = co_await rep.connect(error);
      if (ok) ok = co_await rep.remove(from == config::Side::shadow, removed, error);
      if (!ok) {
        std::cout << "database " << db << ": " << error << "\n";
        result = 2;
      }
    }
    if (removed.empty()) std::cout << "database " << db << ": nothing to remove\n";
    for (const std::string& r : removed) std::cout << "database " << db << ": removed " << r << "\n";
  }
  co_return result;
}

int run(const Args& a) {
  std::vector<config::ConfigError> errors;
  std::optional<config::Config> cfg = config::load_file(a.config, errors);
  if (!cfg) {
    for (const auto& e : errors) std::cerr << e.what() << "\n";
    return 2;
  }
  if (!cfg->shadow.enabled) {
    std::cerr << a.config << ": no [shadow] section: there is nothing to replicate to\n";
    return 2;
  }
  if (a.verb == "start" && cfg->shadow.sync != config::SyncMode::logical) {
    std::cerr << a.config << ": shadow.sync: set sync = \"logical\" first (and restart pgshift): with statement "
                             "mirroring every write would reach the new database twice\n";
    return 2;
  }
  ProxyContext ctx(std::move(*cfg));
  std::string error;
  ctx.server_tls = make_server_tls(ctx.cfg.primary.tls, error);
  if (error.empty()) ctx.shadow_tls = make_server_tls(ctx.cfg.shadow.server.tls, error);
  if (!error.empty()) {
    std::cerr << error << "\n";
    return 2;
  }
  // The serving server publishes: after a cutover, that is the [shadow].
  std::optional<cutover::State> state = cutover::load_state(ctx.cfg.cutover.state_file, error);
  if (!error.empty()) {
    std::cerr << error << "\n";
    return 2;
  }
  const config::Side from = state ? state->serving : config::Side::primary;
  asio::io_context io(1);
  int rc = 2;
  asio::co_spawn(io, [&]() -> awaitable<void> {
    if (a.verb == "start") rc = co_await start(ctx, from, a.wait);
    else if (a.verb == "stop") rc = co_await stop(ctx);
    else rc = co_await status(ctx, from);
  }, asio::detached);
  io.run();
  return rc;
}

}  // namespace

std::function<int()> setup(CLI::App& app) {
  auto a = std::make_shared<Args>();
  app.add_option("-c,--config", a->config, "pgshift's TOML configuration ([primary], [shadow] with sync = \"logical\")")
      ->required();
  app.require_subcommand(1, 1);
  struct Verb {
    const char* name;
    const char* help;
  };
  static constexpr Verb verbs[] = {
      {"start", "Check the prerequisites, copy the schema if needed, create the publication and the subscription, "
                "and show the initial copy until every table streams"},
      {"status", "Each table's state, the lag and the subscription's errors"},
      {"stop", "Remove the subscriptions, their replication slots and the publications pgshift created"},
  };
  for (const Verb& v : verbs) {
    CLI::App* sub = app.add_subcommand(v.name, v.help);
    sub->fallthrough();  // `sync start --config FILE` and `sync --config FILE start` alike
    sub->callback([a, name = std::string(v.name)] { a->verb = name; });
    if (std::string_view(v.name) == "start")
      sub->add_flag_callback("--no-wait", [a] { a->wait = false; }, "Return once the subscription exists");
  }
  app.footer(std::string(kUsage));  // after the verbs, which would inherit it
  return [a] { return run(*a); };
}

}  // namespace pgshift::proxy::sync
