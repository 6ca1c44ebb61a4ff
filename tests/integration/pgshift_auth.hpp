// What the [auth] mode = "pgshift" suites share: a primary as production runs it (TLS,
// password_encryption = scram-sha-256, password logins), the auth_file made from its
// pg_authid as the README says, and a pgshift with TLS on both legs.
#pragma once

#include <string>

#include "harness.hpp"

namespace pgshift::it {

// A cluster with ssl = on, scram-sha-256 passwords and kMd5User, kScramUser and kPlainUser
// logging in with their pg_hba methods; `more_hba` goes before those lines.
PgCluster::Options scram_tls_cluster(std::vector<std::string> more_hba = {});

// Writes dir/userlist.txt (mode 0600) from the cluster's pg_authid, in PgBouncer's
// userlist format, as the README's recipe does; returns its path.
fs::path write_auth_file(const PgCluster& cluster, const fs::path& dir);

// Options for a pgshift with [auth] mode = "pgshift" and `auth_file`, client TLS in
// `client_mode` with `cert`, and TLS (require) to the servers. `extra` is more TOML
// for [auth] (it follows the section's keys) or later sections.
PgshiftOptions pgshift_auth_options(const CertPair& cert, const fs::path& auth_file,
                                    const std::string& client_mode = "require", const std::string& extra = "");

}  // namespace pgshift::it
