#include "harness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

extern char** environ;

namespace pgshift::it {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value && *value ? value : fallback;
}

// libpq reads PGHOST, PGPORT, PGSSLMODE...; none may leak in from the caller.
bool is_libpq_variable(const std::string& name) {
  if (name.size() < 3 || name.compare(0, 2, "PG") != 0) return false;
  for (std::size_t i = 2; i < name.size(); ++i) {
    if (name[i] < 'A' || name[i] > 'Z') return false;
  }
  return true;
}

std::vector<std::string> child_environment(const Env& overrides) {
  std::map<std::string, std::string> env;
  for (char** entry = environ; *entry; ++entry) {
    std::string text = *entry;
    auto eq = text.find('=');
    if (eq == std::string::npos) continue;
    std::string name = text.substr(0, eq);
    if (is_libpq_variable(name) || name.compare(0, 3, "LC_") == 0 || name == "LANG") continue;
    env[name] = text.substr(eq + 1);
  }
  env["LC_ALL"] = "C.UTF-8";
  env["PYTHONDONTWRITEBYTECODE"] = "1";
  for (const auto& [name, value] : overrides) {
    if (value) {
      env[name] = *value;
    } else {
      env.erase(name);
    }
  }
  std::vector<std::string> out;
  for (const auto& [name, value] : env) out.push_back(name + "=" + value);
  return out;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

void set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) throw_errno("fcntl");
}

// Forks and execs argv with the given stdio descriptors; the child dies with us.
pid_t spawn(std::vector<std::string> argv, const Env& env, const fs::path& cwd, int stdin_fd,
            int stdout_fd, int stderr_fd, bool own_group) {
  std::vector<std::string> env_strings = child_environment(env);
  std::vector<char*> envp = c_strings(env_strings);
  std::vector<char*> args = c_strings(argv);
  std::string dir = cwd.string();

  pid_t pid = fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (own_group) setpgid(0, 0);
    dup2(stdin_fd, STDIN_FILENO);
    dup2(stdout_fd, STDOUT_FILENO);
    dup2(stderr_fd, STDERR_FILENO);
    signal(SIGPIPE, SIG_DFL);
    if (!dir.empty() && chdir(dir.c_str()) != 0) {
      const char msg[] = "harness: chdir failed\n";
      [[maybe_unused]] auto n = write(STDERR_FILENO, msg, sizeof msg - 1);
      _exit(127);
    }
    execve(args[0], args.data(), envp.data());
    const char msg[] = "harness: exec failed: ";
    [[maybe_unused]] auto n1 = write(STDERR_FILENO, msg, sizeof msg - 1);
    [[maybe_unused]] auto n2 = write(STDERR_FILENO, args[0], std::strlen(args[0]));
    [[maybe_unused]] auto n3 = write(STDERR_FILENO, "\n", 1);
    _exit(127);
  }
  if (own_group) setpgid(pid, pid);  // also here: no race with the kill on timeout
  return pid;
}

// Waits for `pid` until `deadline`; nullopt if it is still running then.
std::optional<int> wait_until(pid_t pid, Clock::time_point deadline) {
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) throw_errno("waitpid");
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(10ms);
  }
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// Runs `call` (connect or bind) on a fresh socket for 127.0.0.1:port.
template <class Call>
bool try_loopback(std::uint16_t port, Call call) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = call(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

bool port_accepts(std::uint16_t port) { return try_loopback(port, ::connect); }
bool port_bindable(std::uint16_t port) { return try_loopback(port, ::bind); }

std::string toml_string(const std::string& value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

// ---- paths -------------------------------------------------------------------------

fs::path source_dir() { return PGSHIFT_SOURCE_DIR; }
fs::path pgshift_binary() { return env_or("PGSHIFT_IT_BINARY", PGSHIFT_BINARY); }
bool pgshift_sanitized() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return true;
#else
  const char* value = std::getenv("PGSHIFT_IT_SANITIZED");
  return value != nullptr && *value != '\0';
#endif
}
fs::path pg_bin(const std::string& program) {
  return fs::path(env_or("PG_BIN", "/usr/lib/postgresql/15/bin")) / program;
}
fs::path client_script(const std::string& name) {
  return source_dir() / "tests" / "integration" / "clients" / name;
}

// ---- processes -----------------------------------------------------------------------

std::string RunResult::describe() const {
  std::ostringstream os;
  os << "command:";
  for (const auto& arg : argv) os << ' ' << arg;
  os << "\nresult: ";
  if (timed_out) {
    os << "TIMED OUT (killed)";
  } else if (signal) {
    os << "killed by signal " << strsignal(signal);
  } else {
    os << "exit code " << exit_code;
  }
  os << "\n---- stdout ----\n" << tail_lines(out, 60) << "\n---- stderr ----\n"
     << tail_lines(err, 60) << "\n----";
  return os.str();
}

RunResult run(const std::vector<std::string>& argv, const RunOptions& opts) {
  RunResult result;
  result.argv = argv;
  if (argv.empty()) throw std::invalid_argument("run: empty command");

  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) throw_errno("pipe2");
  pid_t pid = spawn(argv, opts.env, opts.cwd, in[0], out[1], err[1], true);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  for (int fd : {in[1], out[0], err[0]}) set_nonblocking(fd);

  auto deadline = Clock::now() + opts.timeout;
  std::size_t written = 0;
  int stdin_fd = in[1];
  if (opts.input.empty()) {
    close(stdin_fd);
    stdin_fd = -1;
  }
  int fds[2] = {out[0], err[0]};
  std::string* sinks[2] = {&result.out, &result.err};
  char buffer[65536];
  bool stop_sent = false;

  while (fds[0] >= 0 || fds[1] >= 0) {
    auto now = Clock::now();
    if (now >= deadline) {
      result.timed_out = true;
      kill(-pid, SIGKILL);
      break;
    }
    if (opts.stop && !stop_sent && opts.stop->load()) {
      kill(pid, opts.stop_signal);
      stop_sent = true;
    }
    pollfd pfds[3];
    int n = 0;
    for (int fd : fds) {
      if (fd >= 0) pfds[n++] = {fd, POLLIN, 0};
    }
    if (stdin_fd >= 0) pfds[n++] = {stdin_fd, POLLOUT, 0};
    auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
    const long long slice = opts.stop && !stop_sent ? 100 : 1000;  // how soon a stop is seen
    int ready = poll(pfds, n, static_cast<int>(std::min<long long>(wait_ms + 1, slice)));
    if (ready < 0 && errno != EINTR) throw_errno("poll");
    for (int i = 0; i < n; ++i) {
      if (!pfds[i].revents) continue;
      if (pfds[i].fd == stdin_fd) {
        ssize_t w = write(stdin_fd, opts.input.data() + written, opts.input.size() - written);
        if (w > 0) written += static_cast<std::size_t>(w);
        if (w < 0 && errno != EAGAIN && errno != EINTR) written = opts.input.size();  // EPIPE
        if (written == opts.input.size()) {
          close(stdin_fd);
          stdin_fd = -1;
        }
        continue;
      }
      for (int k = 0; k < 2; ++k) {
        if (pfds[i].fd != fds[k]) continue;
        ssize_t r = read(fds[k], buffer, sizeof buffer);
        if (r > 0) {
          sinks[k]->append(buffer, static_cast<std::size_t>(r));
        } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
          close(fds[k]);
          fds[k] = -1;
        }
      }
    }
  }
  for (int fd : {stdin_fd, fds[0], fds[1]}) {
    if (fd >= 0) close(fd);
  }

  auto status = wait_until(pid, result.timed_out ? Clock::now() + 10s : deadline);
  if (!status) {
    result.timed_out = true;
    kill(-pid, SIGKILL);
    status = wait_until(pid, Clock::now() + 10s);
  }
  if (status && WIFEXITED(*status)) result.exit_code = WEXITSTATUS(*status);
  if (status && WIFSIGNALED(*status)) result.signal = WTERMSIG(*status);
  return result;
}

// ---- small utilities -------------------------------------------------------------------

TempDir::TempDir(const std::string& prefix) {
  std::string pattern = "/tmp/" + prefix + "-XXXXXX";
  if (!mkdtemp(pattern.data())) throw_errno("mkdtemp");
  path_ = pattern;
  fs::permissions(path_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                             fs::perms::others_read | fs::perms::others_exec);
}

TempDir::~TempDir() {
  if (std::getenv("PGSHIFT_IT_KEEP")) {
    std::cerr << "[harness] keeping " << path_ << '\n';
    return;
  }
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::uint16_t free_port() {
  static std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> pick(15000, 30000);
  for (int attempt = 0; attempt < 200; ++attempt) {
    auto port = static_cast<std::uint16_t>(pick(rng));
    if (port_bindable(port) && !port_accepts(port)) return port;
  }
  throw std::runtime_error("free_port: no free port found in 15000-30000");
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

void write_file(const fs::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string tail_lines(const std::string& text, std::size_t lines) {
  std::size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') --pos;
  for (std::size_t seen = 0; pos > 0; --pos) {
    if (text[pos - 1] == '\n' && ++seen == lines) break;
  }
  return pos == 0 ? text : "[...]\n" + text.substr(pos);
}

std::string trim(const std::string& text) {
  auto begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return {};
  auto end = text.find_last_not_of(" \t\r\n");
  return text.substr(begin, end - begin + 1);
}

std::size_t count_occurrences(const std::string& text, const std::string& needle) {
  std::size_t count = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) {
    ++count;
  }
  return count;
}

::testing::AssertionResult contains(const std::string& text, const std::string& needle) {
  if (text.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected to find \"" << needle << "\" in:\n"
                                       << tail_lines(text, 60);
}

CertPair make_self_signed_cert(const fs::path& dir, const std::string& name) {
  CertPair pair{dir / (name + ".crt"), dir / (name + ".key")};
  auto result = run({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
                     "-days", "3650", "-subj", "/CN=localhost", "-addext",
                     "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", pair.key.string(),
                     "-out", pair.cert.string()});
  if (!result.ok()) throw std::runtime_error("openssl failed\n" + result.describe());
  return pair;
}

// ---- connecting -------------------------------------------------------------------------

Env ConnParams::env() const {
  Env env{{"PGHOST", host},
          {"PGPORT", std::to_string(port)},
          {"PGUSER", user},
          {"PGDATABASE", dbname},
          {"PGCONNECT_TIMEOUT", "20"},
          {"PGAPPNAME", "pgshift-it"}};
  if (!password.empty()) env["PGPASSWORD"] = password;
  if (!sslmode.empty()) env["PGSSLMODE"] = sslmode;
  if (!channel_binding.empty()) env["PGCHANNELBINDING"] = channel_binding;
  if (!sslrootcert.empty()) env["PGSSLROOTCERT"] = sslrootcert;
  for (const auto& [k, v] : settings) env[k] = v;
  return env;
}

ConnParams ConnParams::as(const std::string& new_user, const std::string& new_password) const {
  ConnParams copy = *this;
  copy.user = new_user;
  copy.password = new_password;
  return copy;
}

ConnParams ConnParams::with_ssl(const std::string& mode) const {
  ConnParams copy = *this;
  copy.sslmode = mode;
  return copy;
}

namespace {
RunOptions with_conn_env(const ConnParams& conn, RunOptions opts) {
  for (const auto& [name, value] : conn.env()) opts.env.emplace(name, value);
  return opts;
}
}  // namespace

RunResult psql(const ConnParams& conn, const std::vector<std::string>& args, const RunOptions& opts) {
  std::vector<std::string> argv{pg_bin("psql").string(), "-X", "-w"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, with_conn_env(conn, opts));
}

RunResult psql_query(const ConnParams& conn, const std::string& sql) {
  return psql(conn, {"-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql});
}

RunResult psql_script(const ConnParams& conn, const std::string& script, bool stop_on_error) {
  RunOptions opts;
  opts.input = script;
  return psql(conn, {"-q", "-A", "-t", "-v", stop_on_error ? "ON_ERROR_STOP=1" : "ON_ERROR_STOP=0",
                     "-f", "-"},
              opts);
}

RunResult pgbench(const ConnParams& conn, const std::vector<std::string>& args,
                  const RunOptions& opts) {
  std::vector<std::string> argv{pg_bin("pgbench").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, with_conn_env(conn, opts));
}

BackgroundPgbench::BackgroundPgbench(const ConnParams& conn, std::vector<std::string> args, RunOptions opts) {
  opts.stop = stop_;
  run_ = std::async(std::launch::async, [conn, args = std::move(args), opts] { return pgbench(conn, args, opts); });
}

BackgroundPgbench::~BackgroundPgbench() {
  if (run_.valid()) finish();
}

RunResult BackgroundPgbench::finish() {
  stop_->store(true);
  return run_.get();
}

RunResult python_client(const std::string& script, const ConnParams& conn,
                        const std::vector<std::string>& args, const RunOptions& opts) {
  std::vector<std::string> argv{"/usr/bin/python3", client_script(script).string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, with_conn_env(conn, opts));
}

::testing::AssertionResult pgbench_clean(const RunResult& r) {
  if (r.ok() && r.out.find("number of failed transactions: 0 ") != std::string::npos &&
      r.err.find("aborted") == std::string::npos && r.err.find("error") == std::string::npos) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "pgbench saw errors:\n" << r.describe();
}

std::uint64_t pgbench_processed(const RunResult& r) {
  const std::string key = "number of transactions actually processed: ";
  const auto pos = r.out.find(key);
  return pos == std::string::npos ? 0 : std::strtoull(r.out.c_str() + pos + key.size(), nullptr, 10);
}

Frozen::Frozen(std::vector<pid_t> pids) : pids_(std::move(pids)) {
  for (pid_t pid : pids_) kill(pid, SIGSTOP);
}

void Frozen::resume() {
  for (pid_t pid : pids_) kill(pid, SIGCONT);
  pids_.clear();
}

::testing::AssertionResult scenario_passes(const std::string& script, const std::string& scenario,
                                           const ConnParams& conn) {
  auto result = python_client(script, conn, {scenario});
  if (result.ok() && result.out.find("ok " + scenario + "\n") != std::string::npos) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << result.describe();
}

// ---- PostgreSQL --------------------------------------------------------------------------

PgCluster::PgCluster(Options options) : dir_("pgshift-it-pg") {
  std::vector<std::string> argv{(source_dir() / "scripts" / "pg-local").string(), "start",
                                (dir_.path() / "cluster").string(), ""};
  if (options.ssl) argv.push_back("--ssl");
  if (!options.hba.empty()) {
    std::string lines;
    for (const auto& line : options.hba) lines += line + "\n";
    write_file(dir_.path() / "hba.conf", lines);
    argv.push_back("--hba");
    argv.push_back((dir_.path() / "hba.conf").string());
  }
  for (const std::string& c : options.conf) {
    argv.push_back("--conf");
    argv.push_back(c);
  }
  // A port can be taken between picking and binding it; pick another then.
  RunResult result;
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = free_port();
    argv[3] = std::to_string(port_);
    RunOptions opts;
    opts.timeout = 180s;
    result = run(argv, opts);
    if (result.ok()) {
      running_ = true;
      return;
    }
    if (result.err.find("Address already in use") == std::string::npos) break;
    fs::remove_all(dir_.path() / "cluster");
  }
  throw std::runtime_error("could not start PostgreSQL\n" + result.describe());
}

PgCluster::~PgCluster() {
  if (!running_) return;
  auto result =
      run({(source_dir() / "scripts" / "pg-local").string(), "stop", (dir() / "cluster").string()});
  if (!result.ok()) std::cerr << "[harness] stopping PostgreSQL failed\n" << result.describe() << '\n';
}

ConnParams PgCluster::superuser() const {
  ConnParams conn;
  conn.port = port_;
  conn.sslmode = "disable";
  return conn;
}

std::string PgCluster::sql(const std::string& sql) const {
  auto result = psql_script(superuser(), sql, true);
  if (!result.ok()) throw std::runtime_error("setup SQL failed\n" + result.describe());
  return trim(result.out);
}

std::string PgCluster::log() const { return read_file(dir() / "cluster" / "server.log"); }

std::string PgCluster::log_tail(std::size_t lines) const { return tail_lines(log(), lines); }

void PgCluster::stop(bool immediate) {
  if (!running_) return;
  RunResult result;
  if (immediate) {
    // pg_ctl refuses root: run it as the cluster's owner, from a folder it can read.
    std::vector<std::string> argv;
    if (geteuid() == 0) argv = {"/usr/sbin/runuser", "-u", "postgres", "--"};
    for (const std::string& arg : {pg_bin("pg_ctl").string(), std::string("-D"),
                                   (dir() / "cluster" / "data").string(), std::string("-m"),
                                   std::string("immediate"), std::string("-w"), std::string("stop")}) {
      argv.push_back(arg);
    }
    RunOptions opts;
    opts.cwd = dir() / "cluster";
    result = run(argv, opts);
  } else {
    result = run({(source_dir() / "scripts" / "pg-local").string(), "stop", (dir() / "cluster").string()});
  }
  if (!result.ok()) throw std::runtime_error("could not stop PostgreSQL\n" + result.describe());
  running_ = false;
}

void PgCluster::start() {
  if (running_) return;
  RunOptions opts;
  opts.timeout = 180s;
  auto result = run({(source_dir() / "scripts" / "pg-local").string(), "start",
                     (dir() / "cluster").string(), std::to_string(port_)},
                    opts);
  if (!result.ok()) throw std::runtime_error("could not start PostgreSQL again\n" + result.describe());
  running_ = true;
}

std::vector<pid_t> PgCluster::server_pids() const {
  std::vector<pid_t> pids;
  if (!running_) return pids;
  std::istringstream pid_file(read_file(dir() / "cluster" / "data" / "postmaster.pid"));
  long postmaster = 0;
  if (!(pid_file >> postmaster) || postmaster <= 0) return pids;
  pids.push_back(static_cast<pid_t>(postmaster));
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    // /proc/PID/stat: "PID (COMM) STATE PPID ..."; COMM may hold spaces and parentheses.
    const std::string stat = read_file(entry.path() / "stat");
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 1));
    std::string state;
    long ppid = 0;
    if (rest >> state >> ppid && ppid == postmaster) pids.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return pids;
}

const Account kMd5User{"md5user", "md5-secret", "md5"};
const Account kScramUser{"scramuser", "scram-secret", "scram-sha-256"};
const Account kPlainUser{"pwuser", "plain-secret", "password"};

std::vector<std::string> password_hba_lines() {
  std::vector<std::string> lines;
  for (const Account* account : {&kMd5User, &kScramUser, &kPlainUser}) {
    lines.push_back("host all " + account->user + " 127.0.0.1/32 " + account->method);
  }
  return lines;
}

void create_password_accounts(const PgCluster& cluster) {
  cluster.sql("SET password_encryption = 'md5';\n"
              "CREATE ROLE " + kMd5User.user + " LOGIN PASSWORD '" + kMd5User.password + "';\n"
              "SET password_encryption = 'scram-sha-256';\n"
              "CREATE ROLE " + kScramUser.user + " LOGIN PASSWORD '" + kScramUser.password + "';\n"
              "CREATE ROLE " + kPlainUser.user + " LOGIN PASSWORD '" + kPlainUser.password + "';\n");
  const std::string stored = cluster.sql(
      "SELECT string_agg(rolname || '=' || split_part(rolpassword, '$', 1), ',' ORDER BY rolname)"
      " FROM pg_authid WHERE rolname IN ('" + kMd5User.user + "', '" + kScramUser.user + "', '" +
      kPlainUser.user + "')");
  if (stored.find(kMd5User.user + "=md5") == std::string::npos ||
      stored.find(kScramUser.user + "=SCRAM-SHA-256") == std::string::npos) {
    throw std::runtime_error("unexpected password hashes: " + stored);
  }
}

// ---- pgshift --------------------------------------------------------------------------------

std::string pgshift_config(std::uint16_t listen_port, std::uint16_t primary_port,
                           const PgshiftOptions& options) {
  std::ostringstream toml;
  toml << "[proxy]\n"
       << "listen = \"127.0.0.1:" << listen_port << "\"\n"
       << "threads = " << options.threads << "\n"
       << "login_timeout_ms = " << options.login_timeout_ms.value_or(10000) << "\n";
  if (options.max_message_size) toml << "max_message_size = " << *options.max_message_size << "\n";
  if (options.max_buffered_bytes) toml << "max_buffered_bytes = " << *options.max_buffered_bytes << "\n";
  toml << "\n"
       << "[log]\n"
       << "level = " << toml_string(env_or("PGSHIFT_IT_LOG_LEVEL", "info")) << "\n\n"
       << "[client_tls]\n"
       << "mode = " << toml_string(options.client_tls_mode) << "\n";
  if (options.client_cert) {
    toml << "cert = " << toml_string(options.client_cert->cert.string()) << "\n"
         << "key = " << toml_string(options.client_cert->key.string()) << "\n";
  }
  toml << "\n[primary]\n"
       << "host = \"127.0.0.1\"\n"
       << "port = " << primary_port << "\n\n"
       << "[primary.tls]\n"
       << "mode = " << toml_string(options.server_tls_mode) << "\n";
  if (!options.server_ca.empty()) toml << "ca = " << toml_string(options.server_ca.string()) << "\n";
  if (!options.extra_config.empty()) toml << "\n" << options.extra_config << "\n";
  return toml.str();
}

Pgshift::Pgshift(std::uint16_t primary_port, PgshiftOptions options) : dir_("pgshift-it-proxy") {
  fs::path log_file = dir_.path() / "pgshift.log";
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = free_port();
    write_file(config_file(), pgshift_config(port_, primary_port, options));

    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int log_fd = open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (null_fd < 0 || log_fd < 0) throw_errno("open");
    pid_ = spawn({pgshift_binary().string(), "--config", config_file().string()}, {}, dir_.path(),
                 null_fd, log_fd, log_fd, false);
    close(null_fd);
    close(log_fd);

    auto deadline = Clock::now() + 30s;
    while (Clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        std::string text = log();
        bool port_taken = text.find("in use") != std::string::npos;
        if (port_taken && attempt < 2) break;  // try another port
        throw std::runtime_error("pgshift exited during startup (" + describe_status(status) +
                                 ")\nconfig:\n" + read_file(config_file()) +
                                 "---- pgshift log ----\n" + tail_lines(text, 60));
      }
      if (port_accepts(port_)) return;
      std::this_thread::sleep_for(20ms);
    }
    if (pid_ > 0) {
      std::string problem = stop();
      throw std::runtime_error("pgshift did not accept connections on 127.0.0.1:" +
                               std::to_string(port_) + " within 30 s\n" + problem +
                               "---- pgshift log ----\n" + tail_lines(log(), 60));
    }
  }
  throw std::runtime_error("pgshift could not bind a port\n" + tail_lines(log(), 60));
}

Pgshift::~Pgshift() {
  std::string problem = stop();
  if (!problem.empty()) {
    ADD_FAILURE() << "pgshift did not shut down cleanly on SIGTERM: " << problem
                  << "---- pgshift log ----\n"
                  << tail_lines(log(), 80);
  } else if (::testing::Test::HasFailure()) {
    std::cerr << "---- pgshift log (" << config_file() << ") ----\n"
              << tail_lines(log(), 80) << "\n----\n";
  }
}

std::string Pgshift::stop() {
  if (pid_ <= 0) return {};
  pid_t pid = pid_;
  pid_ = -1;
  kill(pid, SIGTERM);
  auto status = wait_until(pid, Clock::now() + 40s);
  if (!status) {
    kill(pid, SIGKILL);
    wait_until(pid, Clock::now() + 10s);
    return "still running 40 s after SIGTERM (killed)\n";
  }
  if (WIFEXITED(*status) && WEXITSTATUS(*status) == 0) return {};
  return describe_status(*status) + "\n";
}

ConnParams Pgshift::conn(const std::string& user) const {
  ConnParams conn;
  conn.port = port_;
  conn.user = user;
  return conn;
}

std::string Pgshift::log() const { return read_file(dir_.path() / "pgshift.log"); }

// ---- fixtures ----------------------------------------------------------------------------------

std::string route_name(const ::testing::TestParamInfo<Route>& info) {
  return info.param == Route::direct ? "direct" : "pgshift";
}

void PrintTo(Route route, std::ostream* os) { *os << (route == Route::direct ? "direct" : "pgshift"); }

bool mirrored_run() { return env_or("PGSHIFT_IT_MIRROR", "") == "1"; }

SuiteEnv::~SuiteEnv() {
  if (!pgshift_ || !shadow_) return;
  // The mirror's last word, for the record (the suite's own checks are the clients').
  const std::string log = pgshift_->log();
  const auto at = log.rfind("shadow: committed=");
  if (at != std::string::npos) std::cout << "[mirrored] " << log.substr(at, log.find('\n', at) - at) << "\n";
}

ConnParams SuiteEnv::endpoint(Route route) {
  if (route == Route::direct) {
    ConnParams conn = cluster_.superuser();
    conn.sslmode.clear();
    return conn;
  }
  if (!pgshift_ && pgshift_error_.empty()) {
    try {
      PgshiftOptions options;
      if (mirrored_run()) {
        shadow_ = std::make_unique<PgCluster>();
        options.threads = 0;
        options.extra_config = "[[primary.login]]\nclient_user = \"*\"\n\n[shadow]\nhost = \"127.0.0.1\"\nport = " +
                               std::to_string(shadow_->port()) +
                               "\nstatus_interval_ms = 1000\nexact = true\n\n[[shadow.login]]\nclient_user = \"*\"\n";
      }
      pgshift_ = std::make_unique<Pgshift>(cluster_, options);
    } catch (const std::exception& e) {
      pgshift_error_ = e.what();
    }
  }
  if (!pgshift_) throw std::runtime_error("pgshift is not available: " + pgshift_error_);
  return pgshift_->conn();
}

void SuiteEnv::print_logs() const {
  std::cerr << "---- PostgreSQL log (" << cluster_.dir() << ") ----\n"
            << cluster_.log_tail() << "\n----\n";
  if (pgshift_) {
    std::cerr << "---- pgshift log (" << pgshift_->config_file() << ") ----\n"
              << tail_lines(pgshift_->log(), 80) << "\n----\n";
  }
}

}  // namespace pgshift::it
