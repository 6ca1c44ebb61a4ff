// Realistic PostgreSQL wire traffic for the micro-benchmarks: byte streams as
// a proxy reads them from a socket, built once with protocol/builder.hpp.
// Deterministic (fixed seed), so runs are comparable.
#pragma once

#include <cstddef>
#include <string>

namespace pgshift::bench {

// Client -> server: an OLTP mix of simple queries (BEGIN, SELECT, UPDATE,
// INSERT, COMMIT), unnamed extended-protocol statements (Parse, Bind,
// Describe, Execute, Sync) and executions of prepared statements (Bind,
// Execute, Sync), like pgbench's three modes and ORM drivers produce.
// At least `min_bytes` long; ends on a message boundary.
std::string frontend_mix(std::size_t min_bytes);

// Server -> client, dominated by DataRow: result sets of `rows_per_result`
// rows, each surrounded by the messages of an extended-protocol round trip
// (ParseComplete, BindComplete, RowDescription, ..., CommandComplete,
// ReadyForQuery). `wide` rows look like pgbench_accounts (4 columns, ~110
// bytes); narrow rows are a single int4 (~17 bytes), the worst case per byte.
std::string backend_rows(std::size_t min_bytes, bool wide, std::size_t rows_per_result = 100);

}  // namespace pgshift::bench
