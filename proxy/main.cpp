// pgshift command line: run the proxy (from a config file or from flags),
// check a config, print help or the version, or run a subcommand
// (`pgshift ctl | sync | verify ...`). Parsed with CLI11; every subcommand has
// its own --help.
#include <spdlog/async.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <functional>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "proxy/ctl.hpp"
#include "proxy/listener.hpp"
#include "proxy/sync/cli.hpp"
#include "proxy/verify/cli.hpp"

namespace {

using Run = std::function<int()>;

// The subcommands. Adding one: a name, a line of help, and a function that
// adds its options to its CLI::App and returns what runs it.
struct Subcommand {
  std::string_view name;
  std::string_view description;
  Run (*setup)(CLI::App&);
};
const Subcommand kSubcommands[] = {
    {"ctl", "Operate a running pgshift (the one --config names) through its admin console", pgshift::ctl::setup},
    {"sync", "Logical replication to the new database: start | status | stop --config FILE",
     pgshift::proxy::sync::setup},
    {"verify", "Compare every table of the primary and the [shadow], chunk by chunk", pgshift::proxy::verify::setup},
};

constexpr std::string_view kFooter = R"(Examples:
  pgshift --config pgshift.toml
  pgshift --listen 127.0.0.1:6432 --primary 127.0.0.1:5432
  pgshift --check-config pgshift.toml
  pgshift ctl --config pgshift.toml status
  pgshift sync start --config pgshift.toml
  pgshift verify --config pgshift.toml

Signals: SIGTERM or SIGINT stops accepting connections, lets sessions finish
for up to proxy.shutdown_timeout_ms, then exits 0. SIGHUP reloads the
configuration file (as RELOAD does); SIGUSR1 clears the shadow's diverged mark.)";

void print_errors(const std::vector<pgshift::config::ConfigError>& errors) {
  for (const auto& e : errors) std::cerr << e.what() << '\n';
}

struct Args {
  std::string config_file, check_file, listen, primary, log_level, threads;
};

// Builds the configuration from a file, flags, or both (flags win).
std::optional<pgshift::config::Config> make_config(const Args& a) {
  using namespace pgshift::config;
  std::vector<ConfigError> errors;
  std::optional<Config> cfg;
  if (!a.config_file.empty()) {
    cfg = load_file(a.config_file, errors);
    if (!cfg) {
      print_errors(errors);
      return std::nullopt;
    }
  } else {
    if (a.primary.empty()) {
      std::cerr << "pgshift: give --config FILE, or --primary HOST:PORT (see --help)\n";
      return std::nullopt;
    }
    cfg.emplace();
  }
  if (!a.listen.empty() && !parse_endpoint(a.listen, cfg->listen))
    errors.push_back({cfg->source, "--listen", "expected HOST:PORT, got '" + a.listen + "'"});
  if (!a.primary.empty() && !parse_endpoint(a.primary, cfg->primary.address))
    errors.push_back({cfg->source, "--primary", "expected HOST:PORT, got '" + a.primary + "'"});
  if (!a.log_level.empty()) cfg->log_level = a.log_level;
  if (!a.threads.empty()) {
    try {
      cfg->threads = static_cast<unsigned>(std::stoul(a.threads));
    } catch (const std::exception&) {
      errors.push_back({cfg->source, "--threads", "expected a number, got '" + a.threads + "'"});
    }
  }
  if (errors.empty()) validate(*cfg, errors);
  if (!errors.empty()) {
    print_errors(errors);
    return std::nullopt;
  }
  return cfg;
}

int check_config(const std::string& file) {
  std::vector<pgshift::config::ConfigError> errors;
  if (!pgshift::config::load_file(file, errors)) {
    print_errors(errors);
    return 1;
  }
  std::cout << file << ": OK\n";
  return 0;
}

int serve(const Args& args) {
  auto cfg = make_config(args);
  if (!cfg) return 2;

  // Log lines are written by spdlog's own thread, so a slow reader of stderr
  // never stalls an I/O thread (unless 8192 lines are queued, then it waits).
  spdlog::init_thread_pool(8192, 1);
  auto logger = spdlog::stderr_color_mt<spdlog::async_factory>("pgshift");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  spdlog::set_level(spdlog::level::from_str(cfg->log_level));

  int rc = 0;
  {
    pgshift::proxy::Listener listener(std::move(*cfg));
    rc = listener.run();
  }
  spdlog::shutdown();  // flushes the queue
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pgshift - a PostgreSQL proxy for live migrations", "pgshift"};
  app.set_version_flag("-V,--version", "pgshift " PGSHIFT_VERSION);
  Args args;
  app.add_option("-c,--config", args.config_file, "Run with this TOML configuration file");
  app.add_option("--check-config", args.check_file, "Validate FILE, print each problem, exit 1 if any")
      ->type_name("FILE");
  app.add_option("--listen", args.listen, "Address to accept clients on (overrides the file)")->type_name("HOST:PORT");
  app.add_option("--primary", args.primary, "The PostgreSQL server (overrides the file)")->type_name("HOST:PORT");
  app.add_option("--threads", args.threads, "I/O threads (0: one per core)")->type_name("N");
  app.add_option("--log-level", args.log_level, "trace, debug, info, warn, error, critical or off")
      ->type_name("LEVEL");
  app.require_subcommand(0, 1);

  Run chosen;
  for (const Subcommand& s : kSubcommands) {
    CLI::App* sub = app.add_subcommand(std::string(s.name), std::string(s.description));
    Run run = s.setup(*sub);
    sub->callback([&chosen, run] { chosen = run; });
  }

  app.footer(std::string(kFooter));  // after the subcommands, which would inherit it

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help, the version, or the error
    return rc == 0 ? 0 : 2;
  }
  if (chosen) return chosen();
  if (!args.check_file.empty()) return check_config(args.check_file);
  return serve(args);
}
