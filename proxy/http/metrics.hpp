// Prometheus metrics, served at GET /metrics in the text format (prometheus-cpp's
// core: its registry, histogram and text serializer). The counters themselves
// live where they are counted (stats.hpp, the mirror, the coordinator) and
// are read at scrape time by a collector, so the data path never touches
// prometheus-cpp. Labels have a fixed, small set of values (statement kinds,
// cutover phases): never fingerprints, users or addresses.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "proxy/context.hpp"

namespace prometheus {
class Registry;
class Histogram;
}  // namespace prometheus

namespace pgshift::proxy {

class Metrics {
 public:
  explicit Metrics(ProxyContext& ctx);
  ~Metrics();

  // The pause of each session moved by a switch, in milliseconds (any thread).
  void observe_pauses(const std::vector<double>& ms);
  // Every metric in the Prometheus text format.
  std::string text() const;

 private:
  class Collector;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Histogram* pause_ = nullptr;
  std::shared_ptr<Collector> collector_;
};

}  // namespace pgshift::proxy
