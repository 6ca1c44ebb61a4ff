#include "proxy/verify/verifier.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace pgshift::proxy::verify {

namespace {

std::string now_text() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string result_text(const pgshift::verify::Report& r) {
  const int code = r.exit_code();
  if (code == 0) return "match";
  if (code == 1) return "differs";
  return "error: " + (r.error.empty() ? std::string("a table could not be compared") : r.error);
}

std::vector<std::optional<std::string>> table_row(const pgshift::verify::TableReport& t) {
  std::string detail;
  for (const auto& issue : t.column_issues) detail += (detail.empty() ? "" : "; ") + issue;
  for (const auto& d : t.first_text) detail += (detail.empty() ? "" : "; ") + d;
  if (!t.error.empty()) detail += (detail.empty() ? "" : "; ") + t.error;
  return {t.table, std::string(pgshift::verify::to_string(t.status)), std::to_string(t.rows), std::to_string(t.matching),
          std::to_string(t.mismatched), std::to_string(t.missing), std::to_string(t.extra),
          fmt::format("{:.1f}", t.seconds), detail};
}

}  // namespace

Verifier::Verifier(ProxyContext& ctx) : ctx_(ctx), work_(io_.get_executor()), thread_([this] { io_.run(); }) {}

Verifier::~Verifier() {
  work_.reset();
  io_.stop();
  thread_.join();
}

bool Verifier::start(std::vector<std::string> tables, const std::string& who, std::string& why) {
  std::lock_guard lock(mutex_);
  if (running_) {
    why = "a verify is already running (started by " + who_ + " at " + started_ + "); SHOW VERIFY";
    return false;
  }
  const config::Verify& v = ctx_.cfg.verify;
  options_ = {};
  options_.tables = std::move(tables);
  options_.jobs = v.jobs;
  options_.chunk_rows = v.chunk_rows;
  options_.max_rows_per_second = v.max_rows_per_second;
  options_.live = v.live;
  options_.rechecks = v.rechecks;
  options_.recheck_window = v.recheck_window;
  options_.user = v.user;
  options_.database = v.database;
  apply_defaults(ctx_.cfg, options_);
  running_ = true;
  who_ = who;
  started_ = now_text();
  status_ = std::make_unique<Status>();
  spdlog::info("verify: started by {} ({})", who, options_.tables.empty() ? "every table" : "some tables");
  asio::co_spawn(
      io_,
      [this]() -> awaitable<void> {
        protocol::Limits limits = ctx_.limits;
        const Servers servers{ctx_.cfg, {ctx_.tls(config::Side::primary), ctx_.tls(config::Side::shadow)}, limits};
        pgshift::verify::Report r = co_await run(servers, options_, *status_);
        spdlog::log(r.exit_code() == 0 ? spdlog::level::info : spdlog::level::warn,
                    "verify: {} ({} rows in {} tables, {:.1f} s)", result_text(r), r.rows(), r.tables.size(),
                    r.seconds);
        std::lock_guard done(mutex_);
        report_ = std::move(r);
        finished_at_ = std::chrono::system_clock::now();
        running_ = false;
      },
      asio::detached);
  return true;
}

Verifier::Last Verifier::last() const {
  std::lock_guard lock(mutex_);
  Last l;
  l.running = running_;
  if (report_) {
    l.finished = finished_at_;
    l.exit_code = report_->exit_code();
    l.summary = result_text(*report_);
  }
  return l;
}

admin::Answer Verifier::show() const {
  admin::Answer a;
  a.tag = "SHOW";
  a.table.columns = {"table", "status", "rows", "matching", "mismatched", "missing_on_target", "extra_on_target",
                     "seconds", "detail"};
  std::lock_guard lock(mutex_);
  if (running_) {
    const Status::Snapshot s = status_->snapshot();
    std::uint64_t rows = 0;
    for (const auto& t : s.done) rows += t.rows;
    for (const auto& p : s.running) rows += p.rows_done;
    a.table.rows.push_back({"(run)", "running: " + s.phase, std::to_string(rows), std::nullopt, std::nullopt,
                            std::nullopt, std::nullopt, std::nullopt,
                            fmt::format("started {} by {}; {} of {} tables done", started_, who_, s.done.size(),
                                        s.tables)});
    for (const auto& t : s.done) a.table.rows.push_back(table_row(t));
    for (const auto& p : s.running)
      a.table.rows.push_back({p.table, "running", std::to_string(p.rows_done), std::nullopt, std::nullopt,
                              std::nullopt, std::nullopt, fmt::format("{:.1f}", p.seconds),
                              pgshift::verify::progress_text(p, false)});
    return a;
  }
  if (!report_) {
    a.table.rows.push_back({"(run)", "never run", std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt,
                            std::nullopt, "VERIFY [table, ...] starts one"});
    return a;
  }
  const pgshift::verify::Report& r = *report_;
  std::uint64_t matching = 0, mismatched = 0, missing = 0, extra = 0;
  for (const auto& t : r.tables) {
    matching += t.matching;
    mismatched += t.mismatched;
    missing += t.missing;
    extra += t.extra;
  }
  a.table.rows.push_back({"(run)", result_text(r), std::to_string(r.rows()), std::to_string(matching),
                          std::to_string(mismatched), std::to_string(missing), std::to_string(extra),
                          fmt::format("{:.1f}", r.seconds),
                          fmt::format("started {} by {}, finished {}, exit code {}", r.started, who_, r.finished,
                                      r.exit_code())});
  for (const auto& t : r.tables) a.table.rows.push_back(table_row(t));
  return a;
}

}  // namespace pgshift::proxy::verify
