#include "proxy/ctl.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <optional>

#include "config/config.hpp"
#include "protocol/frame.hpp"
#include "protocol/messages.hpp"
#include "proxy/backend.hpp"
#include "proxy/server_conn.hpp"
#include "proxy/tls.hpp"

namespace pgshift::ctl {

namespace {

using namespace pgshift::proxy;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string config;
  std::string command;
  bool dry_run = false;
};

// One login to the instance's admin console.
class Console {
 public:
  Console(const config::Config& cfg, ssl::context* tls) : cfg_(cfg), tls_(tls) {}

  awaitable<bool> open(std::string& error) {
    config::Upstream up;
    up.address = cfg_.listen;
    // A wildcard listen address is reached on loopback.
    if (up.address.host == "0.0.0.0") up.address.host = "127.0.0.1";
    if (up.address.host == "::") up.address.host = "::1";
    up.tls.mode = cfg_.client_tls.mode == config::ClientTlsMode::disable ? config::ServerTlsMode::disable
                                                                         : config::ServerTlsMode::require;
    conn_ = std::make_unique<ServerConn>(tcp::socket(co_await asio::this_coro::executor), 8192);
    const ConnectResult c = co_await connect_server(up, tls_, *conn_);
    if (c.ec) {
      error = "cannot reach pgshift at " + up.address.host + ":" + std::to_string(up.address.port) + ": " + c.detail;
      co_return false;
    }
    LoginInfo info;
    const Params params{{"user", cfg_.admin.user}, {"database", "pgshift"}, {"application_name", "pgshift ctl"}};
    if (!co_await login(*conn_, limits_, params, cfg_.admin.password, info, error)) {
      error = "admin console login as " + cfg_.admin.user + " failed: " + error;
      co_return false;
    }
    co_return true;
  }

  // Runs one command; notices go to `notices`.
  awaitable<QueryResult> run(const std::string& sql, std::vector<std::string>* notices = nullptr) {
    QueryResult r;
    std::string passthrough;
    if (!co_await simple_query(*conn_, limits_, sql, r, &passthrough)) {
      r.sqlstate = "08006";
      r.error = "the connection to pgshift was lost";
    }
    if (notices) {
      std::string_view rest = passthrough;
      while (!rest.empty()) {
        const protocol::ParseResult f = protocol::parse_frame(rest, protocol::Direction::backend, limits_);
        if (f.status != protocol::ParseStatus::complete) break;
        if (f.frame.type == 'N') {
          protocol::ErrorFieldsView e;
          e.parse(f.frame);
          notices->emplace_back(e.message);
        }
        rest.remove_prefix(f.frame.bytes.size());
      }
    }
    co_return r;
  }

 private:
  const config::Config& cfg_;
  ssl::context* tls_;
  protocol::Limits limits_;
  std::unique_ptr<ServerConn> conn_;
};

std::string text(const std::optional<std::string>& v) { return v.value_or(""); }

// (item, value) rows as "item  value" lines.
void print_pairs(const QueryResult& r, const std::string& indent = "") {
  std::size_t width = 0;
  for (const auto& row : r.rows) width = std::max(width, text(row[0]).size());
  for (const auto& row : r.rows) {
    const std::string k = text(row[0]);
    std::cout << indent << k << std::string(width - k.size() + 2, ' ') << text(row.size() > 1 ? row[1] : std::nullopt)
              << '\n';
  }
}

// Rows as an aligned table under their column names.
void print_table(const QueryResult& r, const std::vector<std::size_t>& keep = {}) {
  std::vector<std::size_t> cols = keep;
  if (cols.empty())
    for (std::size_t i = 0; i < r.columns.size(); ++i) cols.push_back(i);
  std::vector<std::size_t> width;
  for (std::size_t c : cols) width.push_back(r.columns[c].size());
  for (const auto& row : r.rows)
    for (std::size_t i = 0; i < cols.size(); ++i) width[i] = std::max(width[i], std::min<std::size_t>(text(row[cols[i]]).size(), 60));
  auto line = [&](auto&& cell) {
    std::string out;
    for (std::size_t i = 0; i < cols.size(); ++i) {
      std::string v = cell(cols[i]);
      if (v.size() > 60) v = v.substr(0, 57) + "...";
      out += v + (i + 1 < cols.size() ? std::string(width[i] - v.size() + 2, ' ') : "");
    }
    std::cout << out << '\n';
  };
  line([&](std::size_t c) { return r.columns[c]; });
  for (const auto& row : r.rows) line([&](std::size_t c) { return text(row[c]); });
  if (r.rows.empty()) std::cout << "(none)\n";
}

std::map<std::string, std::string> as_map(const QueryResult& r) {
  std::map<std::string, std::string> m;
  for (const auto& row : r.rows)
    if (row.size() >= 2) m[text(row[0])] = text(row[1]);
  return m;
}

int failed(const QueryResult& r, const std::vector<std::string>& notices = {}) {
  for (const std::string& n : notices) std::cerr << "  " << n << '\n';
  std::cerr << "pgshift ctl: " << r.error << '\n';
  return 1;
}

awaitable<int> status(Console& c) {
  QueryResult s = co_await c.run("SHOW STATUS");
  if (!s.ok()) co_return failed(s);
  std::cout << "pgshift\n";
  print_pairs(s, "  ");
  QueryResult sh = co_await c.run("SHOW SHADOW");
  if (sh.ok()) {
    std::cout << "shadow\n";
    print_pairs(sh, "  ");
  }
  QueryResult co = co_await c.run("SHOW CUTOVER");
  if (co.ok()) {
    std::cout << "cutover\n";
    print_pairs(co, "  ");
  }
  co_return 0;
}

awaitable<void> run_into(Console& c, std::string command, QueryResult& result, std::vector<std::string>& notices,
                         bool& done) {
  result = co_await c.run(command, &notices);
  done = true;
}

// CUTOVER or CUTOVER ROLLBACK on one connection while another follows its
// steps (SHOW CUTOVER), printing each as it ends, with its duration.
awaitable<int> switch_over(Console& runner, Console& watcher, const std::string& command) {
  // The last switch as it was: its record changes once this one begins.
  std::map<std::string, std::string> before = as_map(co_await watcher.run("SHOW CUTOVER"));
  auto same_switch = [&before](std::map<std::string, std::string>& m) {
    return m["finished"] != "(running)" && m["started"] == before["started"] && m["finished"] == before["finished"] &&
           m["result"] == before["result"];
  };
  std::cout << command << '\n';
  bool done = false;
  QueryResult result;
  std::vector<std::string> notices;
  asio::co_spawn(co_await asio::this_coro::executor, run_into(runner, command, result, notices, done), asio::detached);
  asio::steady_timer tick(co_await asio::this_coro::executor);
  const auto began = Clock::now();
  std::size_t printed = 0;
  std::string current;
  auto follow = [&](const QueryResult& r) {
    std::map<std::string, std::string> m = as_map(r);
    if (same_switch(m)) return;  // this switch has not begun
    std::size_t steps = 0;
    for (const auto& row : r.rows) {
      const std::string k = text(row[0]);
      if (!k.starts_with("step ")) continue;
      if (++steps > printed) {
        std::cout << "  " << k.substr(5) << std::string(k.size() < 18 ? 18 - k.size() : 1, ' ') << text(row[1]) << '\n';
        printed = steps;
      }
    }
    const std::string phase = m["phase"];
    if (phase != current && phase.find('(') != std::string::npos) std::cout << "  ... " << phase << '\n';
    current = phase;
  };
  while (!done) {
    follow(co_await watcher.run("SHOW CUTOVER"));
    tick.expires_after(std::chrono::milliseconds(100));
    co_await tick.async_wait(use_tuple);
  }
  const double took = std::chrono::duration<double>(Clock::now() - began).count();
  if (!result.ok()) {
    for (const std::string& n : notices)
      if (n.starts_with("step ")) std::cout << "  " << n.substr(5) << '\n';
    std::cerr << "pgshift ctl: " << result.error << '\n';
    co_return 1;
  }
  follow(co_await watcher.run("SHOW CUTOVER"));
  for (const std::string& n : notices) std::cout << "  " << n << '\n';
  const std::map<std::string, std::string> m = as_map(result);
  std::cout << "done in " << std::fixed << std::setprecision(2) << took << " s: serving " << m.at("serving") << "; "
            << m.at("sessions moved") << " session(s) moved, " << m.at("sessions closed") << " closed; pause p50 "
            << m.at("pause p50") << ", p99 " << m.at("pause p99") << ", max " << m.at("pause max") << '\n';
  co_return 0;
}

awaitable<int> dry_run(Console& c) {
  QueryResult r = co_await c.run("CUTOVER DRY RUN");
  if (!r.ok()) co_return failed(r);
  print_table(r);
  const bool ok = !r.rows.empty() && text(r.rows.back()[1]) == "yes";
  std::cout << (ok ? "a cutover would start now\n" : "a cutover would not start: see the FAILS rows above\n");
  co_return ok ? 0 : 1;
}

awaitable<int> simple(Console& c, const std::string& command, bool pairs) {
  std::vector<std::string> notices;
  QueryResult r = co_await c.run(command, &notices);
  if (!r.ok()) co_return failed(r, notices);
  for (const std::string& n : notices) std::cout << n << '\n';
  if (!r.columns.empty()) pairs ? print_pairs(r) : print_table(r);
  else std::cout << command << ": done\n";
  co_return 0;
}

awaitable<int> reload(Console& c) {
  std::vector<std::string> notices;
  QueryResult r = co_await c.run("RELOAD", &notices);
  if (!r.ok()) {
    std::cerr << "pgshift ctl: " << r.error << '\n';
    for (const std::string& n : notices) std::cerr << "  " << n << '\n';
    co_return 1;
  }
  for (const auto& row : r.rows) {
    if (text(row[0]) == "version") {
      std::cout << "configuration version " << text(row[2]) << " in effect\n";
      continue;
    }
    std::cout << "  " << text(row[0]) << ": " << text(row[1]) << " -> " << text(row[2])
              << (text(row[3]) == "yes" ? "" : "  (" + text(row[3]) + ")") << '\n';
  }
  if (r.rows.size() <= 1) std::cout << "  (nothing changed)\n";
  co_return 0;
}

awaitable<int> run(const Options& o, const config::Config& cfg, ssl::context* tls) {
  Console c(cfg, tls);
  std::string error;
  if (!co_await c.open(error)) {
    std::cerr << "pgshift ctl: " << error << '\n';
    co_return 1;
  }
  const std::string& cmd = o.command;
  if (cmd == "status") co_return co_await status(c);
  if (cmd == "sessions") co_return co_await simple(c, "SHOW SESSIONS", false);
  if (cmd == "mismatches") co_return co_await simple(c, "SHOW MISMATCHES", false);
  if (cmd == "reload") co_return co_await reload(c);
  if (cmd == "abort") co_return co_await simple(c, "CUTOVER ABORT", true);
  if (cmd == "complete") co_return co_await simple(c, "CUTOVER COMPLETE", true);
  if (cmd == "cutover" && o.dry_run) co_return co_await dry_run(c);
  Console watcher(cfg, tls);
  if (!co_await watcher.open(error)) {
    std::cerr << "pgshift ctl: " << error << '\n';
    co_return 1;
  }
  co_return co_await switch_over(c, watcher, cmd == "rollback" ? "CUTOVER ROLLBACK" : "CUTOVER");
}

int run_ctl(const Options& o) {
  std::vector<config::ConfigError> errors;
  std::optional<config::Config> cfg = config::load_file(o.config, errors);
  if (!cfg) {
    for (const auto& e : errors) std::cerr << e.what() << '\n';
    return 2;
  }
  if (cfg->admin.password.empty()) {
    std::cerr << "pgshift ctl: " << o.config << " has no [admin] password: the admin console refuses every login\n";
    return 2;
  }
  std::string error;
  config::ServerTls tls_cfg;
  tls_cfg.mode = config::ServerTlsMode::require;
  std::unique_ptr<ssl::context> tls;
  if (cfg->client_tls.mode != config::ClientTlsMode::disable) tls = make_server_tls(tls_cfg, error);
  asio::io_context io(1);
  int rc = 1;
  asio::co_spawn(io, run(o, *cfg, tls.get()), [&](std::exception_ptr e, int r) {
    rc = e ? 1 : r;
  });
  io.run();
  return rc;
}

}  // namespace

std::function<int()> setup(CLI::App& app) {
  auto o = std::make_shared<Options>();
  app.add_option("-c,--config", o->config, "The configuration file of the running pgshift")->required();
  app.require_subcommand(1, 1);
  app.footer("Example: pgshift ctl --config pgshift.toml cutover --dry-run");
  struct Command {
    const char* name;
    const char* help;
  };
  static constexpr Command commands[] = {
      {"status", "Version, uptime, phase, roles, sessions, statements, the shadow and the cutover"},
      {"sessions", "One line per client session"},
      {"mismatches", "Statements whose results differ on the shadow, per fingerprint"},
      {"cutover", "Switch every session to the other server, showing each step as it happens"},
      {"rollback", "Switch back (after a cutover), showing each step"},
      {"abort", "Abort the switch in progress"},
      {"complete", "End the migration: stop mirroring back to the old server"},
      {"reload", "Reload the configuration file; print what changed, or every problem"},
  };
  for (const Command& c : commands) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    sub->fallthrough();  // `ctl status --config FILE` as well as `ctl --config FILE status`
    sub->callback([o, name = std::string(c.name)] { o->command = name; });
    if (std::string_view(c.name) == "cutover")
      sub->add_flag("--dry-run", o->dry_run, "Only check the guardrails and the sessions; change nothing");
  }
  return [o] { return run_ctl(*o); };
}

}  // namespace pgshift::ctl
