#include "proxy/http/metrics.hpp"

#include <prometheus/collectable.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <chrono>
#include <sstream>

#include "proxy/cutover/coordinator.hpp"
#include "proxy/stats.hpp"
#include "rewrite/rewrite.hpp"

namespace pgshift::proxy {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

MetricFamily counter(std::string name, std::string help, double value) {
  MetricFamily f = family(std::move(name), std::move(help), MetricType::Counter);
  ClientMetric m;
  m.counter.value = value;
  f.metric.push_back(std::move(m));
  return f;
}

MetricFamily gauge(std::string name, std::string help, double value) {
  MetricFamily f = family(std::move(name), std::move(help), MetricType::Gauge);
  ClientMetric m;
  m.gauge.value = value;
  f.metric.push_back(std::move(m));
  return f;
}

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
    out.push_back(gauge("pgshift_uptime_seconds", "Seconds since pgshift started.", uptime));
    out.push_back(gauge("pgshift_sessions", "Client sessions open (admin console sessions not counted).",
                        static_cast<double>(ctx_.sessions.load())));
    out.push_back(gauge("pgshift_config_version", "Version of the configuration in effect (1 at start, +1 per reload).",
                        static_cast<double>(ctx_.settings.get()->version)));

    MetricFamily kinds = family("pgshift_statements_total", "Statements seen from clients, by kind.", MetricType::Counter);
    for (std::size_t k = 0; k < stats::kKinds; ++k) {
      ClientMetric m;
      m.label.push_back({"kind", std::string(rewrite::to_string(static_cast<rewrite::StatementKind>(k)))});
      m.counter.value = static_cast<double>(f.statements[k]);
      kinds.metric.push_back(std::move(m));
    }
    out.push_back(std::move(kinds));
    out.push_back(counter("pgshift_transactions_total",
                          "Units of work clients finished (ReadyForQuery back to idle).", static_cast<double>(f.transactions)));
    out.push_back(counter("pgshift_statements_rewritten_total", "Statements rewritten by rename rules.",
                          static_cast<double>(f.rewritten)));
    out.push_back(counter("pgshift_statements_refused_total", "Statements refused ([rewrite] strict).",
                          static_cast<double>(f.refused)));
    out.push_back(counter("pgshift_client_bytes_received_total", "Bytes read from clients while forwarding.",
                          static_cast<double>(f.client_bytes_in)));
    out.push_back(counter("pgshift_client_bytes_sent_total", "Bytes written to clients while forwarding.",
                          static_cast<double>(f.client_bytes_out)));
    out.push_back(counter("pgshift_server_bytes_received_total", "Bytes read from servers for clients.",
                          static_cast<double>(f.server_bytes_in)));
    out.push_back(counter("pgshift_server_bytes_sent_total", "Bytes written to servers for clients.",
                          static_cast<double>(f.server_bytes_out)));

    if (ctx_.mirror) {
      const shadow::Status s = ctx_.mirror->status();
      auto n = [](std::uint64_t v) { return static_cast<double>(v); };
      out.push_back(counter("pgshift_mirror_committed_total", "Transactions committed on the serving server and queued for the other.", n(s.committed)));
      out.push_back(counter("pgshift_mirror_applied_total", "Transactions applied on the mirror target.", n(s.applied)));
      out.push_back(counter("pgshift_mirror_dropped_total", "Transactions dropped whole (queue full, target down).", n(s.dropped)));
      out.push_back(counter("pgshift_mirror_failed_total", "Transactions that committed on the serving server but failed on the target.", n(s.failed)));
      out.push_back(gauge("pgshift_mirror_pending_transactions", "Transactions queued, not yet applied.", n(s.pending)));
      out.push_back(gauge("pgshift_mirror_pending_bytes", "Bytes of the transactions queued.", n(s.pending_bytes)));
      out.push_back(gauge("pgshift_mirror_lag_seconds", "Age of the oldest transaction not yet applied.", s.lag_seconds));
      out.push_back(gauge("pgshift_mirror_connected", "1 when the applier reaches the mirror target.", s.connected ? 1 : 0));
      out.push_back(counter("pgshift_shadow_comparisons_total", "Statements whose results were compared.", n(s.statements_compared)));
      out.push_back(counter("pgshift_shadow_mismatches_total", "Compared statements whose results differed.", n(s.mismatches)));
      out.push_back(gauge("pgshift_shadow_diverged", "1 when the target no longer holds every write.", s.diverged ? 1 : 0));
    }
    if (ctx_.coordinator) {
      const cutover::State st = ctx_.coordinator->state();
      MetricFamily phase = family("pgshift_cutover_phase", "1 for the migration's current phase.", MetricType::Gauge);
      for (cutover::Phase p : kPhases) {
        ClientMetric m;
        m.label.push_back({"phase", std::string(cutover::to_string(p))});
        m.gauge.value = st.phase == p ? 1 : 0;
        phase.metric.push_back(std::move(m));
      }
      out.push_back(std::move(phase));
      out.push_back(gauge("pgshift_cutover_epoch", "Switches ever made (cutovers and rollbacks).", static_cast<double>(st.epoch)));
      out.push_back(gauge("pgshift_serving_shadow", "1 when the [shadow] server serves clients.",
                          ctx_.serving.load() == config::Side::shadow ? 1 : 0));
      // Logical sync, per database of [shadow] sync_databases (a configured, small set).
      const std::vector<sync::DatabaseStatus> dbs = ctx_.coordinator->sync_status();
      if (!dbs.empty()) {
        MetricFamily secs = family("pgshift_sync_lag_seconds",
                                   "Logical replication: how far the subscription is behind, per database.",
                                   MetricType::Gauge);
        MetricFamily bytes = family("pgshift_sync_lag_bytes",
                                    "Logical replication: WAL the subscription has not confirmed, per database.",
                                    MetricType::Gauge);
        MetricFamily ready = family("pgshift_sync_streaming",
                                    "Logical replication: 1 when every table of the database streams.",
                                    MetricType::Gauge);
        for (const sync::DatabaseStatus& d : dbs) {
          ClientMetric m;
          m.label.push_back({"database", d.database});
          m.gauge.value = d.status.lag_seconds;
          secs.metric.push_back(m);
          m.gauge.value = static_cast<double>(d.status.lag_bytes);
          bytes.metric.push_back(m);
          m.gauge.value = d.error.empty() && d.status.ready() ? 1 : 0;
          ready.metric.push_back(std::move(m));
        }
        out.push_back(std::move(secs));
        out.push_back(std::move(bytes));
        out.push_back(std::move(ready));
      }
    }
    return out;
  }

 private:
  ProxyContext& ctx_;
};

Metrics::Metrics(ProxyContext& ctx)
    : ctx_(ctx), registry_(std::make_shared<prometheus::Registry>()), collector_(std::make_shared<Collector>(ctx)) {
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
