// The JDBC and node-postgres probes (clients/JdbcProbe.java, clients/node_probe.js):
// drivers with their own protocol and SCRAM code, run with their default settings.
// Both print "connected as <user> ssl=<bool> answer=42" or "refused sqlstate=... message=...".
//
// scripts/deps installs Java, pgjdbc and Node.js and unpacks node-pg, so a missing one
// is a failure of the run (the RunResult says what is missing), never a skipped test.
#pragma once

#include "harness.hpp"

namespace pgshift::it {

// java -cp /usr/share/java/postgresql.jar clients/JdbcProbe.java, with `conn` as PG* variables.
RunResult jdbc_probe(const ConnParams& conn);
// node clients/node_probe.js; with conn.sslrootcert set it connects with TLS, verifying
// the server's certificate against that file.
RunResult node_probe(const ConnParams& conn);

}  // namespace pgshift::it
