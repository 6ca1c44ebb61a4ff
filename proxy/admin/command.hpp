// The admin console's commands, parsed from a statement's text:
// case-insensitive keywords, any whitespace between them, an optional ';'.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pgshift::proxy::admin {

struct Command {
  enum class Kind {
    empty,            // only whitespace
    show,             // SHOW <what>
    cutover,          // CUTOVER
    dry_run,          // CUTOVER DRY RUN
    reads,            // CUTOVER READS <percent>
    abort,            // CUTOVER ABORT
    rollback,         // CUTOVER ROLLBACK
    complete,         // CUTOVER COMPLETE
    pause,            // PAUSE
    resume,           // RESUME
    clear_diverged,   // CLEAR DIVERGED
    reload,           // RELOAD
    kill_session,     // KILL SESSION <id>
    refresh_catalog,  // REFRESH CATALOG
    sync_start,       // SYNC START
    verify,           // VERIFY [table, ...]
    unknown,          // anything else; `what` says why
  };
  Kind kind = Kind::unknown;
  std::string what;  // SHOW: the subject, lower case; unknown: the reason
  long number = 0;   // READS: the percentage; KILL SESSION: the id
  std::vector<std::string> tables;  // VERIFY: the tables named (lower case), empty for all
};

Command parse_command(std::string_view sql);

// Splits a simple-protocol Query into its statements at ';'.
std::vector<std::string_view> split_statements(std::string_view sql);

}  // namespace pgshift::proxy::admin
