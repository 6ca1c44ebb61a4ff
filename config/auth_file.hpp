// The auth_file of [auth]: user names and their stored passwords, in PgBouncer's userlist
// format, one user per line:
//
//   "app" "SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>"
//   "legacy" "md5<32 hex digits>"
//   "tool" "a plaintext password"
//
// Each field is in double quotes; a double quote inside a field is written twice. What
// follows the second field is ignored, as PgBouncer does. Empty lines and lines starting
// with ';' or '#' are comments. A SCRAM verifier or an MD5 hash must be well formed (it is
// never taken for a plaintext password). Problems name the line, never its secret.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pgshift::config {

struct AuthFileEntry {
  std::string user;
  std::string secret;  // as stored: a SCRAM verifier, "md5" + hex, or a plaintext password
};

// Parses the text; appends each problem ("line N: reason") to `problems`.
std::vector<AuthFileEntry> parse_auth_file(std::string_view text, std::vector<std::string>& problems);

// Reads and parses the file. A file that others than its owner may read or write, that
// cannot be read, or that is not a regular file is refused (one problem, nothing read).
std::vector<AuthFileEntry> read_auth_file(const std::string& path, std::vector<std::string>& problems);

}  // namespace pgshift::config
