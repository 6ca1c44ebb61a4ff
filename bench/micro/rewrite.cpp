// Statement classification and column-rename rewriting: the cost of a cached
// statement (the same text again), of the same statement with other literals,
// and of a statement never seen (parse and analysis), over the test corpus.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <string>
#include <toml++/toml.h>
#include <vector>

#include "rewrite/rewrite.hpp"

namespace {

using pgshift::rewrite::Options;
using pgshift::rewrite::Rewriter;

Options with_rules(bool rules) {
  Options o;
  if (rules)
    o.rules = {{"public", "users", "email", "email_address"}, {"public", "users", "name", "full_name"},
               {"public", "orders", "status", "state"}, {"billing", "invoices", "amt", "amount"}};
  return o;
}

const std::vector<std::string>& corpus() {
  static const std::vector<std::string> statements = [] {
    std::vector<std::string> out;
    for (const auto& f : std::filesystem::directory_iterator(PGSHIFT_SOURCE_DIR "/tests/rewrite/corpus")) {
      if (f.path().extension() != ".toml") continue;
      const toml::table t = toml::parse_file(f.path().string());
      if (const toml::array* cases = t["case"].as_array())
        for (const toml::node& c : *cases)
          if (auto sql = c.as_table()->get_as<std::string>("sql")) out.push_back(sql->get());
    }
    return out;
  }();
  return statements;
}

constexpr const char* kOrmQuery =
    "SELECT \"users\".\"id\", \"users\".\"email\", \"users\".\"name\" FROM \"users\" "
    "WHERE \"users\".\"email\" = $1 AND \"users\".\"org_id\" = $2 LIMIT 21";

// The same text again: what prepared statements and ORMs send.
void BM_CachedStatement(benchmark::State& state) {
  Rewriter rw(with_rules(state.range(0) != 0));
  rw.analyze(kOrmQuery);
  for (auto _ : state) benchmark::DoNotOptimize(rw.analyze(kOrmQuery).statements.data());
}
BENCHMARK(BM_CachedStatement)->Arg(0)->Arg(1)->ArgName("rules");

// The same statement with other literals: what simple-protocol clients send.
void BM_LiteralVariant(benchmark::State& state) {
  Rewriter rw(with_rules(state.range(0) != 0));
  std::vector<std::string> texts;
  for (int i = 0; i < 1024; ++i)
    texts.push_back("SELECT id, email, name FROM users WHERE email = 'user" + std::to_string(i) +
                    "@example.com' AND org_id = " + std::to_string(i % 7));
  rw.analyze(texts[0]);
  std::size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(rw.analyze(texts[i++ & 1023]).rewritten.data());
}
BENCHMARK(BM_LiteralVariant)->Arg(0)->Arg(1)->ArgName("rules");

// Every corpus statement, never seen before: parse, classify, resolve.
void BM_UncachedCorpus(benchmark::State& state) {
  const auto& statements = corpus();
  std::size_t n = 0;
  for (auto _ : state) {
    Rewriter rw(with_rules(state.range(0) != 0));
    for (const std::string& sql : statements) benchmark::DoNotOptimize(rw.analyze(sql).statements.data());
    n += statements.size();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(n));
  state.counters["statements"] = static_cast<double>(statements.size());
}
BENCHMARK(BM_UncachedCorpus)->Arg(0)->Arg(1)->ArgName("rules")->Unit(benchmark::kMicrosecond);

}  // namespace
