// Child processes for what PostgreSQL's own tools do best (pg_dump piped into
// psql for a schema copy). Started and waited for on a thread of their own,
// so an I/O thread never blocks on them.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "proxy/asio.hpp"

namespace pgshift::proxy::sync {

struct Command {
  std::vector<std::string> argv;             // argv[0] is looked up in PATH
  std::map<std::string, std::string> env;    // added to (or replacing) pgshift's environment
};

struct PipelineResult {
  bool ok = false;       // both exited 0
  std::string error;     // why not: which one, its status, the end of its stderr
};

// Runs `first | second` to completion.
awaitable<PipelineResult> run_pipeline(Command first, Command second);

}  // namespace pgshift::proxy::sync
