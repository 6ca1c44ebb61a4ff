#include "pgshift_auth.hpp"

namespace pgshift::it {

PgCluster::Options scram_tls_cluster(std::vector<std::string> more_hba) {
  for (const std::string& line : password_hba_lines()) more_hba.push_back(line);
  return {.ssl = true, .hba = more_hba, .conf = {"password_encryption=scram-sha-256"}};
}

fs::path write_auth_file(const PgCluster& cluster, const fs::path& dir) {
  const std::string rows = cluster.sql(
      "SELECT string_agg(format('\"%s\" \"%s\"', rolname, rolpassword), E'\\n' ORDER BY rolname)"
      " FROM pg_authid WHERE rolpassword IS NOT NULL");
  const fs::path file = dir / "userlist.txt";
  write_file(file, rows + "\n");
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  return file;
}

PgshiftOptions pgshift_auth_options(const CertPair& cert, const fs::path& auth_file, const std::string& client_mode,
                                    const std::string& extra) {
  PgshiftOptions options;
  options.client_tls_mode = client_mode;
  options.client_cert = cert;
  options.server_tls_mode = "require";
  options.extra_config = "[auth]\nmode = \"pgshift\"\nauth_file = \"" + auth_file.string() + "\"\n" + extra;
  return options;
}

}  // namespace pgshift::it
