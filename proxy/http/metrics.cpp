#include "proxy/http/metrics.hpp"

#include <prometheus/collectable.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <chrono>
#include <initializer_list>
#include <sstream>
#include <utility>
#include <vector>

#include "proxy/cutover/coordinator.hpp"
#include "proxy/stats.hpp"
#include "rewrite/rewrite.hpp"

namespace pgshift::proxy {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// One figure without labels; Collect() lists them as tables of these.
struct Scalar {
  const char* name;
  const char* help;
  MetricType type;
  double value;
};

MetricFamily family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

ClientMetric sample(MetricType type, double value) {
  ClientMetric m;
  if (type == MetricType::Counter) m.counter.value = value;
  else m.gauge.value = value;
  return m;
}

void add(std::vector<MetricFamily>& out, std::initializer_list<Scalar> rows) {
  for (const Scalar& r : rows) {
    MetricFamily f = family(r.name, r.help, r.type);
    f.metric.push_back(sample(r.type, r.value));
    out.push_back(std::move(f));
  }
}

// One family with one label, a sample per (label value, figure).
void add(std::vector<MetricFamily>& out, Scalar head, const std::string& label,
         const std::vector<std::pair<std::string, double>>& values) {
  MetricFamily f = family(head.name, head.help, head.type);
  for (const auto& [v, figure] : values) {
    ClientMetric m = sample(head.type, figure);
    m.label.push_back({label, v});
    f.metric.push_back(std::move(m));
  }
  out.push_back(std::move(f));
}

double n(std::uint64_t v) { return static_cast<double>(v); }

constexpr MetricType C = MetricType::Counter, G = MetricType::Gauge;

constexpr cutover::Phase kPhases[] = {cutover::Phase::shadowing, cutover::Phase::reads,    cutover::Phase::cutover,
                                      cutover::Phase::cut_over,  cutover::Phase::rollback, cutover::Phase::completed};

}  // namespace

// Reads the figures at scrape time.
class Metrics::Collector : public prometheus::Collectable {
 public:
  explicit Collector(ProxyContext& ctx) : ctx_(ctx) {}

  std::vector<MetricFamily> Collect() const override {
    std::vector<MetricFamily> out;
    const stats::Figures f = stats::totals();
    const double uptime = std::chrono::duration<double>(std::chrono::steady_clock::now() - ctx_.started).count();
    add(out, {
        {"pgshift_uptime_seconds", "Seconds since pgshift started.", G, uptime},
        {"pgshift_sessions", "Client sessions open (admin console sessions not counted).", G, n(ctx_.sessions.load())},
        {"pgshift_config_version", "Version of the configuration in effect (1 at start, +1 per reload).", G,
         n(ctx_.settings.get()->version)},
    });
    std::vector<std::pair<std::string, double>> kinds;
    for (std::size_t k = 0; k < stats::kKinds; ++k)
      kinds.emplace_back(rewrite::to_string(static_cast<rewrite::StatementKind>(k)), n(f.statements[k]));
    add(out, {"pgshift_statements_total", "Statements seen from clients, by kind.", C, 0}, "kind", kinds);
    add(out, {
        {"pgshift_transactions_total", "Units of work clients finished (ReadyForQuery back to idle).", C, n(f.transactions)},
        {"pgshift_statements_rewritten_total", "Statements rewritten by rename rules.", C, n(f.rewritten)},
        {"pgshift_statements_refused_total", "Statements refused ([rewrite] strict).", C, n(f.refused)},
        {"pgshift_client_bytes_received_total", "Bytes read from clients while forwarding.", C, n(f.client_bytes_in)},
        {"pgshift_client_bytes_sent_total", "Bytes written to clients while forwarding.", C, n(f.client_bytes_out)},
        {"pgshift_server_bytes_received_total", "Bytes read from servers for clients.", C, n(f.server_bytes_in)},
        {"pgshift_server_bytes_sent_total", "Bytes written to servers for clients.", C, n(f.server_bytes_out)},
    });
    if (ctx_.mirror) add_mirror(out, ctx_.mirror->status());
    if (ctx_.coordinator) add_cutover(out);
    return out;
  }

 private:
  static void add_mirror(std::vector<MetricFamily>& out, const shadow::Status& s) {
    add(out, {
        {"pgshift_mirror_committed_total", "Transactions committed on the serving server and queued for the other.", C, n(s.committed)},
        {"pgshift_mirror_applied_total", "Transactions applied on the mirror target.", C, n(s.applied)},
        {"pgshift_mirror_dropped_total", "Transactions dropped whole (queue full, target down).", C, n(s.dropped)},
        {"pgshift_mirror_failed_total", "Transactions that committed on the serving server but failed on the target.", C, n(s.failed)},
        {"pgshift_mirror_pending_transactions", "Transactions queued, not yet applied.", G, n(s.pending)},
        {"pgshift_mirror_pending_bytes", "Bytes of the transactions queued.", G, n(s.pending_bytes)},
        {"pgshift_mirror_lag_seconds", "Age of the oldest transaction not yet applied.", G, s.lag_seconds},
        {"pgshift_mirror_connected", "1 when the applier reaches the mirror target.", G, s.connected ? 1.0 : 0.0},
        {"pgshift_shadow_comparisons_total", "Statements whose results were compared.", C, n(s.statements_compared)},
        {"pgshift_shadow_mismatches_total", "Compared statements whose results differed.", C, n(s.mismatches)},
        {"pgshift_shadow_diverged", "1 when the target no longer holds every write.", G, s.diverged ? 1.0 : 0.0},
    });
  }

  void add_cutover(std::vector<MetricFamily>& out) const {
    const cutover::State st = ctx_.coordinator->state();
    std::vector<std::pair<std::string, double>> phases;
    for (cutover::Phase p : kPhases) phases.emplace_back(cutover::to_string(p), st.phase == p ? 1 : 0);
    add(out, {"pgshift_cutover_phase", "1 for the migration's current phase.", G, 0}, "phase", phases);
    add(out, {
        {"pgshift_cutover_epoch", "Switches ever made (cutovers and rollbacks).", G, n(st.epoch)},
        {"pgshift_serving_shadow", "1 when the [shadow] server serves clients.", G,
         ctx_.serving.load() == config::Side::shadow ? 1.0 : 0.0},
    });
    // Logical sync, per database of [shadow] sync_databases (a configured, small set).
    const std::vector<sync::DatabaseStatus> dbs = ctx_.coordinator->sync_status();
    if (dbs.empty()) return;
    std::vector<std::pair<std::string, double>> secs, bytes, streaming;
    for (const sync::DatabaseStatus& d : dbs) {
      secs.emplace_back(d.database, d.status.lag_seconds);
      bytes.emplace_back(d.database, n(d.status.lag_bytes));
      streaming.emplace_back(d.database, d.error.empty() && d.status.ready() ? 1 : 0);
    }
    add(out, {"pgshift_sync_lag_seconds", "Logical replication: how far the subscription is behind, per database.", G, 0},
        "database", secs);
    add(out, {"pgshift_sync_lag_bytes", "Logical replication: WAL the subscription has not confirmed, per database.", G, 0},
        "database", bytes);
    add(out, {"pgshift_sync_streaming", "Logical replication: 1 when every table of the database streams.", G, 0},
        "database", streaming);
  }

  ProxyContext& ctx_;
};

Metrics::Metrics(ProxyContext& ctx)
    : registry_(std::make_shared<prometheus::Registry>()), collector_(std::make_shared<Collector>(ctx)) {
  prometheus::BuildGauge()
      .Name("pgshift_build_info")
      .Help("pgshift's version; always 1.")
      .Register(*registry_)
      .Add({{"version", PGSHIFT_VERSION}})
      .Set(1);
  pause_ = &prometheus::BuildHistogram()
                .Name("pgshift_cutover_pause_seconds")
                .Help("How long each session was held at a switch (cutover or rollback).")
                .Register(*registry_)
                .Add({}, prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                                 0.5, 1, 2.5, 5, 10});
}

Metrics::~Metrics() = default;

void Metrics::observe_pauses(const std::vector<double>& ms) {
  for (double v : ms) pause_->Observe(v / 1000);
}

std::string Metrics::text() const {
  std::vector<MetricFamily> families = registry_->Collect();
  for (MetricFamily& f : collector_->Collect()) families.push_back(std::move(f));
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace pgshift::proxy
