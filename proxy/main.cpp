// pgshift command line: run from a config file or from flags, check a config,
// print help or the version.
#include <spdlog/async.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "proxy/listener.hpp"
#include "proxy/sync/cli.hpp"
#include "proxy/verify/cli.hpp"

namespace {

constexpr std::string_view usage = R"(pgshift - a PostgreSQL proxy for live migrations

Usage:
  pgshift --config FILE                 run with a TOML configuration
  pgshift --listen HOST:PORT --primary HOST:PORT [--threads N] [--log-level LEVEL]
                                        run without a file (quick start)
  pgshift --check-config FILE           validate FILE, print each problem, exit 1 if any
  pgshift sync start|status|stop --config FILE
                                        logical replication to the new database (see sync --help)
  pgshift verify --config FILE [...]    compare every table of the primary and the [shadow]
                                        (pgshift verify --help)
  pgshift --help | --version

Signals: SIGTERM or SIGINT stops accepting connections, lets sessions finish
for up to proxy.shutdown_timeout_ms, then exits 0.
)";

void print_errors(const std::vector<pgshift::config::ConfigError>& errors) {
  for (const auto& e : errors) std::cerr << e.what() << '\n';
}

struct Args {
  std::string config_file, check_file, listen, primary, log_level, threads;
  bool help = false, version = false;
};

bool parse_args(int argc, char** argv, Args& a) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= argc) {
        std::cerr << "pgshift: " << arg << " needs a value\n";
        return false;
      }
      out = argv[++i];
      return true;
    };
    bool ok = true;
    if (arg == "--help" || arg == "-h") a.help = true;
    else if (arg == "--version" || arg == "-V") a.version = true;
    else if (arg == "--config" || arg == "-c") ok = value(a.config_file);
    else if (arg == "--check-config") ok = value(a.check_file);
    else if (arg == "--listen") ok = value(a.listen);
    else if (arg == "--primary") ok = value(a.primary);
    else if (arg == "--log-level") ok = value(a.log_level);
    else if (arg == "--threads") ok = value(a.threads);
    else {
      std::cerr << "pgshift: unknown option '" << arg << "' (see --help)\n";
      return false;
    }
    if (!ok) return false;
  }
  return true;
}

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

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string_view(argv[1]) == "sync") return pgshift::proxy::sync::run_cli(argc - 1, argv + 1);
  // `pgshift verify ...`: a command of its own (proxy/verify/cli.cpp).
  if (argc > 1 && std::string_view(argv[1]) == "verify") return pgshift::proxy::verify::run_verify(argc - 1, argv + 1);

  Args args;
  if (!parse_args(argc, argv, args)) return 2;
  if (args.help) {
    std::cout << usage;
    return 0;
  }
  if (args.version) {
    std::cout << "pgshift " << PGSHIFT_VERSION << '\n';
    return 0;
  }
  if (!args.check_file.empty()) {
    std::vector<pgshift::config::ConfigError> errors;
    if (!pgshift::config::load_file(args.check_file, errors)) {
      print_errors(errors);
      return 1;
    }
    std::cout << args.check_file << ": OK\n";
    return 0;
  }

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
