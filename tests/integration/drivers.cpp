#include "drivers.hpp"

#include <filesystem>
#include <string>

namespace pgshift::it {
namespace {

constexpr const char* kJava = "/usr/bin/java";
constexpr const char* kJdbcJar = "/usr/share/java/postgresql.jar";
constexpr const char* kNode = "/usr/bin/node";
// Where scripts/deps unpacks node-pg (it cannot be installed beside NodeSource's
// Node.js), then Debian's own node modules for what it requires (split2, xtend).
constexpr const char* kNodePath = "/usr/local/lib/pgshift/nodejs:/usr/share/nodejs";
constexpr const char* kNodePg = "/usr/local/lib/pgshift/nodejs/pg/package.json";

// A result that fails, naming what is missing, instead of running without it.
std::optional<RunResult> missing(const std::vector<std::string>& argv, const std::vector<std::string>& needed) {
  for (const std::string& path : needed) {
    if (fs::exists(path)) continue;
    RunResult r;
    r.argv = argv;
    r.exit_code = 127;
    r.err = path + " is missing: run scripts/deps, which installs it";
    return r;
  }
  return std::nullopt;
}

RunOptions conn_env(const ConnParams& conn) {
  RunOptions opts;
  opts.env = conn.env();
  return opts;
}

}  // namespace

RunResult jdbc_probe(const ConnParams& conn) {
  const std::vector<std::string> argv{kJava, "-cp", kJdbcJar, client_script("JdbcProbe.java").string()};
  if (auto r = missing(argv, {kJava, kJdbcJar})) return *r;
  return run(argv, conn_env(conn));
}

RunResult node_probe(const ConnParams& conn) {
  const std::vector<std::string> argv{kNode, client_script("node_probe.js").string()};
  if (auto r = missing(argv, {kNode, kNodePg})) return *r;
  RunOptions opts = conn_env(conn);
  opts.env["NODE_PATH"] = kNodePath;
  return run(argv, opts);
}

}  // namespace pgshift::it
