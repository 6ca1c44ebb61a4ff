#include "proxy/sync/process.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <cstdio>
#include <memory>
#include <thread>

extern char** environ;

namespace pgshift::proxy::sync {

namespace {

std::vector<std::string> environment(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> out;
  for (char** e = environ; *e; ++e) {
    const std::string entry(*e);
    const std::string name = entry.substr(0, entry.find('='));
    if (!extra.contains(name)) out.push_back(entry);
  }
  for (const auto& [k, v] : extra) out.push_back(k + "=" + v);
  return out;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> p;
  for (std::string& s : strings) p.push_back(s.data());
  p.push_back(nullptr);
  return p;
}

// Starts `c` with the given stdin/stdout and stderr into `err_fd`; -1 on failure.
pid_t spawn(const Command& c, int in_fd, int out_fd, int err_fd, std::string& error) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (in_fd >= 0) posix_spawn_file_actions_adddup2(&actions, in_fd, 0);
  if (out_fd >= 0) posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
  std::vector<std::string> args = c.argv, env = environment(c.env);
  std::vector<char*> argv = pointers(args), envp = pointers(env);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    error = c.argv[0] + ": " + std::strerror(rc);
    return -1;
  }
  return pid;
}

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  lseek(fd, 0, SEEK_SET);
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  return out;
}

std::string tail(const std::string& text, std::size_t n = 600) {
  return text.size() <= n ? text : "..." + text.substr(text.size() - n);
}

std::string status_text(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// Blocking; runs on its own thread.
PipelineResult run_blocking(const Command& first, const Command& second) {
  PipelineResult result;
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    result.error = std::string("pipe: ") + std::strerror(errno);
    return result;
  }
  FILE* err1 = std::tmpfile();
  FILE* err2 = std::tmpfile();
  std::string error;
  const pid_t a = spawn(first, -1, pipe_fds[1], fileno(err1), error);
  const pid_t b = a < 0 ? -1 : spawn(second, pipe_fds[0], -1, fileno(err2), error);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  int sa = 0, sb = 0;
  if (a > 0) waitpid(a, &sa, 0);
  if (b > 0) waitpid(b, &sb, 0);
  if (a < 0 || b < 0) {
    result.error = error;
  } else if (!WIFEXITED(sa) || WEXITSTATUS(sa) != 0) {
    result.error = first.argv[0] + " failed (" + status_text(sa) + "): " + tail(read_all(fileno(err1)));
  } else if (!WIFEXITED(sb) || WEXITSTATUS(sb) != 0) {
    result.error = second.argv[0] + " failed (" + status_text(sb) + "): " + tail(read_all(fileno(err2)));
  } else {
    result.ok = true;
  }
  std::fclose(err1);
  std::fclose(err2);
  return result;
}

}  // namespace

awaitable<PipelineResult> run_pipeline(Command first, Command second) {
  auto executor = co_await asio::this_coro::executor;
  auto done = std::make_shared<asio::steady_timer>(executor, asio::steady_timer::time_point::max());
  auto result = std::make_shared<PipelineResult>();
  std::thread([=] {
    *result = run_blocking(first, second);
    asio::post(done->get_executor(), [done] { done->cancel(); });
  }).detach();
  co_await done->async_wait(use_tuple);
  co_return *result;
}

}  // namespace pgshift::proxy::sync
