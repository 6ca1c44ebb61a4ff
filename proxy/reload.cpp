#include "proxy/reload.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <map>

#include "proxy/cutover/state.hpp"

namespace pgshift::proxy {

namespace {

// Runs on the thread that owns `state`. (A function, not a capturing lambda:
// GCC 12 releases a coroutine lambda's captures twice when co_spawn moves it.)
awaitable<void> publish(IoThread* state, SettingsPtr s, unsigned threads) {
  build_io_thread(*state, std::move(s), threads);
  co_return;
}

// What a reload does to the auth_file's users, by name only (never a secret):
// "3 users: 1 added, 1 changed, 0 removed"; empty when nothing changed.
std::string user_changes(const config::Auth& was, const config::Auth& now) {
  std::size_t added = 0, changed = 0, removed = 0;
  for (const config::AuthFileEntry& e : now.users) {
    const config::AuthFileEntry* old = was.find(e.user);
    if (!old) ++added;
    else if (old->secret != e.secret) ++changed;
  }
  for (const config::AuthFileEntry& e : was.users)
    if (!now.find(e.user)) ++removed;
  if (added + changed + removed == 0) return "";
  return fmt::format("{} user{}: {} added, {} changed, {} removed", now.users.size(),
                     now.users.size() == 1 ? "" : "s", added, changed, removed);
}

// Whether a reload applies `key`. [auth]'s reloadable keys only apply when pgshift
// authenticates clients already (the mode itself needs a restart).
bool applies(const std::string& key, const config::Config& running) {
  if (key.starts_with("auth.") && running.auth.mode != config::AuthMode::pgshift) return false;
  return config::reloadable(key);
}

}  // namespace

Reloader::Reloader(ProxyContext& ctx, std::vector<Thread> threads, std::function<void(SettingsPtr)> to_applier)
    : ctx_(ctx), threads_(std::move(threads)), to_applier_(std::move(to_applier)) {}

awaitable<admin::Answer> Reloader::reload(std::string who) {
  const std::string& file = ctx_.cfg.source;
  if (file == config::Config{}.source)
    co_return admin::Answer::error("55000", "pgshift was started without --config: there is no file to reload");
  if (busy_.exchange(true)) co_return admin::Answer::error("55000", "a reload is already in progress");
  struct Release {
    std::atomic<bool>& busy;
    ~Release() { busy = false; }
  } release{busy_};

  std::vector<config::ConfigError> errors;
  std::optional<config::Config> loaded = config::load_file(file, errors);
  if (!loaded) {
    admin::Answer a = admin::Answer::error(
        "F0000", fmt::format("reload: {} problem(s) in {}; nothing changed", errors.size(), file));
    for (const config::ConfigError& e : errors) a.notices.push_back(e.what());
    spdlog::error("reload by {} refused: {} problem(s) in {}; nothing changed", who, errors.size(), file);
    for (const config::ConfigError& e : errors) spdlog::error("reload: {}", e.what());
    co_return a;
  }

  const SettingsPtr current = ctx_.settings.get();
  auto next = std::make_shared<Settings>();
  next->version = current->version + 1;
  next->applied_at = cutover::now_rfc3339();
  next->applied_by = who;
  next->cfg = config::with_reloadable(current->cfg, *loaded);

  // What the file changed, applied or not.
  std::map<std::string, std::string> before, after;
  for (auto& [k, v] : config::describe(current->cfg)) before.emplace(k, v);
  for (auto& [k, v] : config::describe(*loaded)) after.emplace(k, v);
  admin::Answer a;
  a.tag = "RELOAD";
  a.table.columns = {"setting", "was", "now", "applied"};
  a.table.rows.push_back({"version", std::to_string(current->version), std::to_string(next->version), "yes"});
  std::string applied, restart;
  auto row = [&](const std::string& key, const std::string& was, const std::string& now) {
    const bool live = applies(key, current->cfg);
    a.table.rows.push_back({key, was, now, live ? "yes" : "no: needs a restart"});
    (live ? applied : restart) += (live ? applied : restart).empty() ? key : ", " + key;
  };
  for (const auto& [k, v] : before) {
    auto it = after.find(k);
    const std::string now = it == after.end() ? "(not set)" : it->second;
    if (k == "auth.users") continue;  // below, with what changed
    if (now != v) row(k, v, now);
  }
  if (const std::string users = user_changes(current->cfg.auth, loaded->auth); !users.empty())
    row("auth.users", before.contains("auth.users") ? before["auth.users"] : "(not set)", users);
  for (const auto& [k, v] : after)
    if (!before.contains(k) && k != "auth.users") row(k, "(not set)", v);

  // Publish: the shared copy, the log level, each I/O thread (and wait for
  // it, so that the caller's next statement sees the rules), the applier.
  SettingsPtr published = next;
  ctx_.settings.set(published);
  spdlog::set_level(spdlog::level::from_str(published->cfg.log_level));
  const unsigned n = static_cast<unsigned>(threads_.size());
  for (const Thread& t : threads_) co_await asio::co_spawn(*t.io, publish(t.state, published, n), asio::use_awaitable);
  if (to_applier_) to_applier_(published);
  spdlog::warn("reload: configuration version {} from {}, by {}: {}{}{}", published->version, file, who,
               applied.empty() ? "nothing changed" : "applied " + applied,
               restart.empty() ? "" : "; not applied (needs a restart): ", restart);
  if (!restart.empty()) a.notices.push_back("not applied, needs a restart: " + restart);
  co_return a;
}

}  // namespace pgshift::proxy
