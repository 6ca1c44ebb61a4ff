#include "config/auth_file.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>

#include "protocol/scram.hpp"

namespace pgshift::config {
namespace {

// One double-quoted field at `pos` (after blanks); false when there is none or it does not end.
bool quoted_field(std::string_view line, std::size_t& pos, std::string& out) {
  while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
  if (pos >= line.size() || line[pos] != '"') return false;
  ++pos;
  out.clear();
  while (pos < line.size()) {
    const char c = line[pos++];
    if (c != '"') {
      out += c;
      continue;
    }
    if (pos < line.size() && line[pos] == '"') {  // "" is one quote
      out += '"';
      ++pos;
      continue;
    }
    return true;
  }
  protocol::scram::wipe(out);
  return false;
}

// Why a stored secret cannot be used, or empty. Never quotes the secret.
std::string secret_problem(const std::string& secret) {
  if (secret.empty()) return "empty password";
  if (secret.starts_with("SCRAM-SHA-256$")) {
    std::string error;
    if (!protocol::ScramVerifier::parse(secret, error)) return "malformed SCRAM-SHA-256 verifier: " + error;
    return {};
  }
  if (secret.starts_with("md5") && secret.size() == 35) {
    for (std::size_t i = 3; i < secret.size(); ++i) {
      const char c = secret[i];
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
        return "malformed MD5 hash (expected \"md5\" followed by 32 lower-case hex digits)";
    }
    return {};
  }
  if (secret.find('\0') != std::string::npos) return "the password contains a NUL byte";
  if (secret.size() > 1024) return "password longer than 1024 bytes";
  return {};
}

}  // namespace

std::vector<AuthFileEntry> parse_auth_file(std::string_view text, std::vector<std::string>& problems) {
  std::vector<AuthFileEntry> entries;
  std::set<std::string> seen;
  std::size_t number = 0;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == ';' || line[first] == '#') continue;
    const std::string where = "line " + std::to_string(number) + ": ";
    AuthFileEntry e;
    std::size_t pos = 0;
    if (!quoted_field(line, pos, e.user)) {
      problems.push_back(where + "expected \"user\" \"password\" (each in double quotes)");
      continue;
    }
    if (!quoted_field(line, pos, e.secret)) {
      problems.push_back(where + "expected a double-quoted password after the user name");
      continue;
    }
    if (e.user.empty()) {
      problems.push_back(where + "empty user name");
      continue;
    }
    if (const std::string why = secret_problem(e.secret); !why.empty()) {
      problems.push_back(where + why + " (user " + protocol::scram::printable_text(e.user) + ")");
      continue;
    }
    if (!seen.insert(e.user).second) {
      problems.push_back(where + "user " + protocol::scram::printable_text(e.user) + " is listed twice");
      continue;
    }
    entries.push_back(std::move(e));
  }
  return entries;
}

std::vector<AuthFileEntry> read_auth_file(const std::string& path, std::vector<std::string>& problems) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    problems.push_back(errno == ENOENT ? "file not found: " + path
                                       : "cannot access " + path + ": " + std::strerror(errno));
    return {};
  }
  if (!S_ISREG(st.st_mode)) {
    problems.push_back("not a regular file: " + path);
    return {};
  }
  // It holds password equivalents: as PostgreSQL refuses a private key others can read.
  if ((st.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    problems.push_back(path + " is readable or writable by others than its owner (mode " + mode +
                       "): it holds password secrets; run chmod 600 " + path);
    return {};
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    problems.push_back("cannot read " + path + ": " + std::strerror(errno));
    return {};
  }
  std::string content;  // read straight into one buffer, wiped below
  content.reserve(static_cast<std::size_t>(st.st_size) + 1);
  char chunk[4096];
  while (in.read(chunk, sizeof chunk) || in.gcount() > 0) content.append(chunk, static_cast<std::size_t>(in.gcount()));
  OPENSSL_cleanse(chunk, sizeof chunk);
  std::vector<std::string> lines;
  std::vector<AuthFileEntry> entries = parse_auth_file(content, lines);
  protocol::scram::wipe(content);
  // "FILE line N: reason": the config file's error alone would not say which file.
  for (std::string& p : lines) problems.push_back(path + " " + p);
  return entries;
}

}  // namespace pgshift::config
