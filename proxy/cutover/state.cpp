#include "proxy/cutover/state.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace pgshift::proxy::cutover {

namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kPhases[] = {"shadowing", "reads", "cutover", "cut_over", "rollback", "completed"};

std::optional<config::Side> side_from(std::string_view s) {
  if (s == "primary") return config::Side::primary;
  if (s == "shadow") return config::Side::shadow;
  return std::nullopt;
}

bool write_all(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

std::string_view to_string(Phase p) noexcept { return kPhases[static_cast<std::size_t>(p)]; }

std::optional<Phase> phase_from(std::string_view s) noexcept {
  for (std::size_t i = 0; i < std::size(kPhases); ++i)
    if (kPhases[i] == s) return static_cast<Phase>(i);
  return std::nullopt;
}

std::string now_rfc3339() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::optional<State> load_state(const std::string& path, std::string& error) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) {
    error = path + ": cannot read: " + std::strerror(errno);
    return std::nullopt;
  }
  auto fail = [&](const std::string& why) -> std::optional<State> {
    error = path + ": " + why;
    return std::nullopt;
  };
  json::error_code jec;
  const json::value v = json::parse(text.str(), jec);
  if (jec || !v.is_object()) return fail("not a pgshift state file (invalid JSON)");
  const json::object& o = v.as_object();
  State s;
  const json::value* epoch = o.if_contains("epoch");
  const json::value* phase = o.if_contains("phase");
  const json::value* serving = o.if_contains("serving");
  if (!epoch || !epoch->is_int64() || epoch->as_int64() < 0) return fail("\"epoch\" must be a non-negative integer");
  if (!phase || !phase->is_string() || !phase_from(phase->as_string())) return fail("unknown \"phase\"");
  if (!serving || !serving->is_string() || !side_from(serving->as_string()))
    return fail("\"serving\" must be \"primary\" or \"shadow\"");
  s.epoch = static_cast<std::uint64_t>(epoch->as_int64());
  s.phase = *phase_from(phase->as_string());
  s.serving = *side_from(serving->as_string());
  if (const json::value* r = o.if_contains("read_percent"); r && r->is_int64()) s.read_percent = static_cast<int>(r->as_int64());
  if (const json::value* f = o.if_contains("fenced"); f && f->is_array()) {
    for (const json::value& e : f->as_array())
      if (auto side = e.is_string() ? side_from(e.as_string()) : std::nullopt) s.fenced.push_back(*side);
  }
  if (const json::value* c = o.if_contains("changed"); c && c->is_string()) s.changed = std::string(c->as_string());
  // A switch cannot be under way in a fresh process: the file says where it stood.
  if (s.phase == Phase::cutover || s.phase == Phase::rollback)
    return fail("records a switch under way, which pgshift never writes");
  return s;
}

bool save_state(const std::string& path, const State& s, std::string& error) {
  json::object o;
  o["epoch"] = s.epoch;
  o["phase"] = to_string(s.phase);
  o["serving"] = config::to_string(s.serving);
  o["read_percent"] = s.read_percent;
  json::array fenced;
  for (config::Side f : s.fenced) fenced.emplace_back(config::to_string(f));
  o["fenced"] = std::move(fenced);
  o["changed"] = s.changed.empty() ? now_rfc3339() : s.changed;
  const std::string text = json::serialize(o) + "\n";

  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    error = tmp + ": " + std::strerror(errno);
    return false;
  }
  const bool written = write_all(fd, text) && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!written || ::rename(tmp.c_str(), path.c_str()) != 0) {
    error = path + ": " + std::strerror(written ? errno : saved);
    ::unlink(tmp.c_str());
    return false;
  }
  const std::string dir = fs::path(path).parent_path().empty() ? "." : fs::path(path).parent_path().string();
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);  // the rename itself survives a crash
    ::close(dfd);
  }
  return true;
}

}  // namespace pgshift::proxy::cutover
