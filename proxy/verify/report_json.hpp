// `pgshift verify --json`: the report for machines (Boost.JSON).
#pragma once

#include <string>

#include "verify/report.hpp"

namespace pgshift::proxy::verify {

// One JSON object: result ("match", "differs" or "error"), exit_code, error,
// primary, target, mode, started, finished, seconds, and per table its status,
// mode, column_differences, ignored_columns, rows, matching, mismatched,
// missing_on_target, extra_on_target, in_flight, not_rechecked, chunks,
// chunks_differing, target_rows (full-table hash), seconds, error and
// differences (the first keys: kind, key, column, primary, target).
std::string render_json(const pgshift::verify::Report& r);

}  // namespace pgshift::proxy::verify
