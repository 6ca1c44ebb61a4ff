// The shadow's status line, as the integration tests read it from pgshift's log
// (logged every status_interval_ms):
//   shadow: committed=N applied=N pending=N (B bytes) lag=S.SSs dropped=N compared=N
//           mismatches=N captured=N not_exact=N connected=yes|no diverged=yes|no (reason)
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace pgshift::it {

using namespace std::chrono_literals;

// ---- the status line ----------------------------------------------------------------

struct ShadowStatus {
  std::uint64_t committed = 0, applied = 0, pending = 0, dropped = 0, compared = 0, mismatches = 0;
  std::uint64_t captured = 0, not_exact = 0;
  double lag = 0;
  bool connected = false;
  bool diverged = false;
  std::string line;
};

inline constexpr const char* kStatusKey = "shadow: committed=";

// The value after " KEY=" (or at the start of the status part) in a status line.
inline std::optional<std::string> field(const std::string& line, const std::string& key) {
  auto pos = line.find(kStatusKey);
  if (pos == std::string::npos) return std::nullopt;
  const std::string status = " " + line.substr(pos + 8);  // from "committed="
  const auto at = status.find(" " + key + "=");
  if (at == std::string::npos) return std::nullopt;
  const auto begin = at + key.size() + 2;
  const auto end = status.find(' ', begin);
  return status.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

inline std::optional<ShadowStatus> parse_status(const std::string& line) {
  ShadowStatus s;
  s.line = line.substr(line.find(kStatusKey));
  auto number = [&](const char* key, std::uint64_t& out) {
    auto v = field(line, key);
    if (!v || v->empty() || v->find_first_not_of("0123456789") != std::string::npos) return false;
    out = std::strtoull(v->c_str(), nullptr, 10);
    return true;
  };
  auto flag = [&](const char* key, bool& out) {
    auto v = field(line, key);
    if (!v || (*v != "yes" && *v != "no")) return false;
    out = *v == "yes";
    return true;
  };
  auto lag = field(line, "lag");
  if (!lag || lag->empty() || lag->back() != 's') return std::nullopt;
  s.lag = std::strtod(lag->c_str(), nullptr);
  if (number("committed", s.committed) && number("applied", s.applied) && number("pending", s.pending) &&
      number("dropped", s.dropped) && number("compared", s.compared) && number("mismatches", s.mismatches) &&
      flag("connected", s.connected) && flag("diverged", s.diverged)) {
    number("captured", s.captured);
    number("not_exact", s.not_exact);
    return s;
  }
  return std::nullopt;
}

// Every complete status line in `log` from byte `from` on (a line boundary).
inline std::vector<ShadowStatus> statuses(const std::string& log, std::size_t from = 0) {
  std::vector<ShadowStatus> out;
  std::size_t pos = std::min(from, log.size());
  for (;;) {
    const auto end = log.find('\n', pos);
    if (end == std::string::npos) break;  // an incomplete last line
    const std::string line = log.substr(pos, end - pos);
    if (line.find(kStatusKey) != std::string::npos) {
      if (auto s = parse_status(line)) out.push_back(*s);
    }
    pos = end + 1;
  }
  return out;
}

// A position in pgshift's log: the end of its last complete line. Status lines logged
// after it describe the mirror as it is from now on.
inline std::size_t log_mark(const Pgshift& proxy) {
  const std::string log = proxy.log();
  const auto nl = log.rfind('\n');
  return nl == std::string::npos ? 0 : nl + 1;
}

// Waits until a status line logged after `from` satisfies `pred`; returns that line, or
// nullopt after `timeout`.
inline std::optional<ShadowStatus> wait_status(const Pgshift& proxy, std::size_t from,
                                        const std::function<bool(const ShadowStatus&)>& pred,
                                        std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    for (const ShadowStatus& s : statuses(proxy.log(), from)) {
      if (pred(s)) return s;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(100ms);
  }
}

// Waits for the first status line logged after `from`.
inline std::optional<ShadowStatus> next_status(const Pgshift& proxy, std::size_t from) {
  return wait_status(proxy, from, [](const ShadowStatus&) { return true; }, 5s);
}

inline std::string last_status_line(const Pgshift& proxy) {
  auto all = statuses(proxy.log());
  return all.empty() ? "(no status line)" : all.back().line;
}

}  // namespace pgshift::it
