// `pgshift verify ...`: the command line (CLI11), progress on standard error,
// the report on standard output, and the exit code (0 everything matches, 1
// something differs, 2 verify could not run).
#include "proxy/verify/cli.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <functional>
#include <memory>
#include <iostream>
#include <optional>
#include <set>

#include "proxy/tls.hpp"
#include "proxy/verify/report_json.hpp"
#include "proxy/verify/runner.hpp"

namespace pgshift::proxy::verify {

namespace {

using Clock = std::chrono::steady_clock;

std::size_t terminal_width() {
  winsize w{};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &w) == 0 && w.ws_col > 20) return w.ws_col;
  return 80;
}

std::string finished_line(const model::TableReport& t) {
  std::string line = fmt::format("{}: {}", t.table, model::to_string(t.status));
  if (t.status == model::TableReport::Status::failed) return line + ": " + t.error;
  if (t.status == model::TableReport::Status::only_on_primary || t.status == model::TableReport::Status::only_on_target)
    return line;
  return line + fmt::format(", {} rows in {:.1f} s", t.rows, t.seconds);
}

// Shows what the run does until `done`: a bar on a terminal, otherwise a
// line per finished table and one per running table every 10 s.
awaitable<void> show_progress(const Status& status, const bool& done, bool bar) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  std::size_t printed = 0;
  auto last_lines = Clock::now();
  bool bar_shown = false;
  for (;;) {
    const Status::Snapshot s = status.snapshot();
    for (; printed < s.done.size(); ++printed) {
      std::cerr << (bar_shown ? "\r\x1b[K" : "") << finished_line(s.done[printed]) << '\n';
      bar_shown = false;
    }
    if (done) break;
    if (bar) {
      if (!s.running.empty()) {
        std::cerr << "\r\x1b[K" << model::progress_text(s.running.front(), true, terminal_width() - 1) << std::flush;
        bar_shown = true;
      }
    } else if (Clock::now() - last_lines >= std::chrono::seconds(10)) {
      for (const model::Progress& p : s.running) std::cerr << model::progress_text(p, false) << '\n';
      last_lines = Clock::now();
    }
    t.expires_after(std::chrono::milliseconds(bar ? 200 : 500));
    co_await t.async_wait(use_tuple);
  }
  if (bar_shown) std::cerr << "\r\x1b[K" << std::flush;
}

}  // namespace

namespace {

struct Options {
  std::string config_file, tables, progress = "auto";
  std::optional<unsigned> jobs, rechecks;
  std::optional<std::uint32_t> chunk_rows;
  std::optional<std::uint64_t> max_rate;
  std::optional<unsigned> recheck_window_ms;
  std::string user, database;
  bool json_out = false, static_mode = false;
};

int run(const Options& opts);

}  // namespace

std::function<int()> setup(CLI::App& app) {
  app.footer(
      "Proves, table by table, that the new database ([shadow]) holds the same rows as the primary.\n"
      "Exit status: 0 everything matches, 1 something differs, 2 verify could not run.");
  auto o = std::make_shared<Options>();
  app.add_option("-c,--config", o->config_file, "pgshift's TOML configuration ([primary], [shadow], logins, renames)")
      ->required();
  app.add_option("--tables", o->tables, "only these tables, comma-separated (\"table\" is public.table)");
  app.add_option("--jobs", o->jobs, "chunks compared at once, one connection per server each ([verify] jobs, 2)")
      ->check(CLI::Range(1, 64));
  app.add_option("--chunk-rows", o->chunk_rows, "rows per chunk ([verify] chunk_rows, 10000)")
      ->check(CLI::Range(1, 10'000'000));
  app.add_option("--max-rows-per-second", o->max_rate, "rows read per second from each server, 0 unlimited "
                                                       "([verify] max_rows_per_second, 0)");
  app.add_flag("--static", o->static_mode, "nothing writes to the databases: report differing rows at once, "
                                           "without re-checking them (the default is live mode)");
  app.add_option("--rechecks", o->rechecks, "live mode: rounds of re-checks of differing rows ([verify] rechecks, 3)")
      ->check(CLI::Range(0, 100));
  app.add_option("--recheck-window-ms", o->recheck_window_ms,
                 "live mode: how long each round watches the target ([verify] recheck_window_ms, 3000)")
      ->check(CLI::Range(10, 86'400'000));
  app.add_option("--user", o->user, "the client user whose [[primary.login]] and [[shadow.login]] are used "
                                    "([verify] user, else [cutover] control_user, else postgres)");
  app.add_option("--database", o->database,
                 "the database, as clients name it ([verify] database, else the user's name)");
  app.add_flag("--json", o->json_out, "print the report as one JSON object");
  app.add_option("--progress", o->progress, "auto (a bar on a terminal, lines otherwise), bar, lines or none")
      ->check(CLI::IsMember({"auto", "bar", "lines", "none"}));
  return [o] { return run(*o); };
}

namespace {

int run(const Options& opts) {
  const std::string& config_file = opts.config_file;
  const std::string& tables = opts.tables;
  const std::string& progress = opts.progress;
  const std::string& user = opts.user;
  const std::string& database = opts.database;
  const auto& jobs = opts.jobs;
  const auto& rechecks = opts.rechecks;
  const auto& chunk_rows = opts.chunk_rows;
  const auto& max_rate = opts.max_rate;
  const auto& recheck_window_ms = opts.recheck_window_ms;
  const bool json_out = opts.json_out, static_mode = opts.static_mode;
  spdlog::set_default_logger(spdlog::stderr_color_st("pgshift-verify"));
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  spdlog::set_level(spdlog::level::warn);

  std::vector<config::ConfigError> errors;
  std::optional<config::Config> cfg = config::load_file(config_file, errors);
  if (!cfg) {
    for (const auto& e : errors) std::cerr << e.what() << '\n';
    return 2;
  }
  if (!cfg->shadow.enabled) {
    std::cerr << "pgshift verify: " << config_file << " has no [shadow]: there is no new database to verify\n";
    return 2;
  }

  model::Options o;
  const config::Verify& v = cfg->verify;
  o.jobs = jobs.value_or(v.jobs);
  o.chunk_rows = chunk_rows.value_or(v.chunk_rows);
  o.max_rows_per_second = max_rate.value_or(v.max_rows_per_second);
  o.live = static_mode ? false : v.live;
  o.rechecks = rechecks.value_or(v.rechecks);
  o.recheck_window = std::chrono::milliseconds(recheck_window_ms.value_or(static_cast<unsigned>(v.recheck_window.count())));
  o.user = !user.empty() ? user : v.user;
  o.database = !database.empty() ? database : v.database;
  for (std::size_t at = 0; at <= tables.size() && !tables.empty();) {
    const std::size_t comma = std::min(tables.find(',', at), tables.size());
    std::string name = tables.substr(at, comma - at);
    name.erase(0, name.find_first_not_of(' '));
    name.erase(name.find_last_not_of(' ') + 1);
    if (!name.empty()) o.tables.push_back(name);
    at = comma + 1;
  }
  apply_defaults(*cfg, o);

  std::string error;
  std::unique_ptr<ssl::context> primary_tls = make_server_tls(cfg->primary.tls, error);
  std::unique_ptr<ssl::context> shadow_tls;
  if (error.empty()) shadow_tls = make_server_tls(cfg->shadow.server.tls, error);
  if (!error.empty()) {
    std::cerr << "pgshift verify: " << error << '\n';
    return 2;
  }
  protocol::Limits limits;
  limits.large = cfg->max_message_size;
  const Servers servers{*cfg, {primary_tls.get(), shadow_tls.get()}, limits};

  const bool tty = isatty(STDERR_FILENO) != 0;
  const bool show = progress != "none";
  const bool bar = progress == "bar" || (progress == "auto" && tty);
  asio::io_context io(1);
  Status status;
  model::Report report;
  bool done = false;
  asio::co_spawn(io, [&]() -> awaitable<void> {
    report = co_await run(servers, o, status);
    done = true;
  }, asio::detached);
  if (show) asio::co_spawn(io, show_progress(status, done, bar), asio::detached);
  io.run();

  if (json_out) std::cout << render_json(report);
  else std::cout << (show ? "\n" : "") << model::render_text(report);
  std::cout.flush();
  if (!report.error.empty() && json_out) std::cerr << "pgshift verify: " << report.error << '\n';
  return report.exit_code();
}

}  // namespace

}  // namespace pgshift::proxy::verify
