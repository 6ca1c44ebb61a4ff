#include "verify/diff.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>

#include "shadow/compare.hpp"

namespace pgshift::verify {

namespace {

constexpr std::size_t kShownValue = 60;

// Keys as map keys: each part length-prefixed, so ("a,b") and ("a", "b") differ.
std::string joined(const Key& k) {
  std::string out;
  for (const std::string& part : k) out += std::to_string(part.size()) + ":" + part;
  return out;
}

// The key of a row whose first columns are the key; false when one is NULL.
bool row_key(const TablePlan& t, const Row& r, Key& out) {
  out.clear();
  if (r.size() < t.key.size()) return false;
  for (std::size_t n = 0; n < t.key.size(); ++n) {
    if (!r[n]) return false;
    out.push_back(*r[n]);
  }
  return true;
}

std::optional<std::string> shown(const std::optional<std::string>& v) {
  if (!v || v->size() <= kShownValue) return v;
  std::size_t n = kShownValue;
  while (n > 0 && (static_cast<unsigned char>((*v)[n]) & 0xc0) == 0x80) --n;  // a UTF-8 boundary
  return v->substr(0, n) + "...";
}

std::string value_text(const std::optional<std::string>& v) { return v ? *v : "NULL"; }

}  // namespace

std::string_view to_string(DiffKind k) noexcept {
  switch (k) {
    case DiffKind::changed: return "changed";
    case DiffKind::missing: return "missing on the target";
    case DiffKind::extra: return "extra on the target";
  }
  return "?";
}

std::string key_text(const TablePlan& t, const Key& k) {
  if (t.key.size() == 1 && k.size() == 1) return t.columns[t.key[0]].name + "=" + k[0];
  std::string names, values;
  for (std::size_t n = 0; n < t.key.size() && n < k.size(); ++n) {
    names += (n ? ", " : "") + t.columns[t.key[n]].name;
    values += (n ? ", " : "") + k[n];
  }
  return "(" + names + ")=(" + values + ")";
}

std::string describe(const TablePlan& t, const Difference& d) {
  std::string out = key_text(t, d.key) + " " + std::string(to_string(d.kind));
  if (d.kind == DiffKind::changed && !d.column.empty())
    out += fmt::format(" ({}: {} on the primary, {} on the target)", d.column, value_text(d.primary_value),
                       value_text(d.target_value));
  return out;
}

std::vector<Key> differing_keys(const TablePlan& t, const Rows& primary, const Rows& target) {
  std::unordered_map<std::string, const std::optional<std::string>*> on_target;
  on_target.reserve(target.size());
  Key k;
  for (const Row& r : target)
    if (row_key(t, r, k) && r.size() > t.key.size()) on_target.emplace(joined(k), &r[t.key.size()]);
  std::vector<Key> out;
  for (const Row& r : primary) {
    if (!row_key(t, r, k) || r.size() <= t.key.size()) continue;
    auto it = on_target.find(joined(k));
    if (it == on_target.end() || *it->second != r[t.key.size()]) out.push_back(k);
    if (it != on_target.end()) on_target.erase(it);
  }
  for (const Row& r : target)  // what is left is on the target only
    if (row_key(t, r, k) && on_target.count(joined(k))) out.push_back(k);
  return out;
}

std::vector<Difference> compare_rows(const TablePlan& t, const std::vector<Key>& keys, const Rows& primary,
                                     const Rows& target, double tolerance) {
  auto index = [&](const Rows& rows) {
    std::unordered_map<std::string, const Row*> m;
    Key k;
    for (const Row& r : rows)
      if (row_key(t, r, k)) m.emplace(joined(k), &r);
    return m;
  };
  const auto p = index(primary), q = index(target);
  const std::size_t first_value = t.key.size() + 1;  // after the key and the row hash
  std::vector<Difference> out;
  for (const Key& k : keys) {
    const std::string j = joined(k);
    auto a = p.find(j);
    auto b = q.find(j);
    if (a == p.end() && b == q.end()) continue;  // gone from both: nothing differs
    Difference d;
    d.key = k;
    if (b == q.end()) {
      d.kind = DiffKind::missing;
      out.push_back(std::move(d));
      continue;
    }
    if (a == p.end()) {
      d.kind = DiffKind::extra;
      out.push_back(std::move(d));
      continue;
    }
    const Row& x = *a->second;
    const Row& y = *b->second;
    for (std::size_t i = 0; i < t.columns.size(); ++i) {
      const std::size_t at = first_value + i;
      const std::optional<std::string> none;
      const auto& u = at < x.size() ? x[at] : none;
      const auto& v = at < y.size() ? y[at] : none;
      std::optional<std::string_view> uv, vv;
      if (u) uv = *u;
      if (v) vv = *v;
      if (shadow::values_equal(t.columns[i].primary.type_oid, uv, vv, tolerance)) continue;
      d.kind = DiffKind::changed;
      d.column = t.columns[i].name;
      d.primary_value = shown(u);
      d.target_value = shown(v);
      out.push_back(std::move(d));
      break;
    }
  }
  return out;
}

void InFlight::add(const Key& k) { keys_.emplace(k, std::vector<std::string>{}); }

void InFlight::new_round() {
  for (auto& [k, states] : keys_) states.clear();
}

std::vector<Key> InFlight::pending() const {
  std::vector<Key> out;
  out.reserve(keys_.size());
  for (const auto& [k, states] : keys_) out.push_back(k);
  return out;
}

namespace {

// Each key of the batch: its row hash in `rows`, or "-" when it has no row.
std::unordered_map<std::string, std::string> states_of(const TablePlan& t, const std::vector<Key>& batch,
                                                       const Rows& rows) {
  std::unordered_map<std::string, std::string> out;
  for (const Key& k : batch) out.emplace(joined(k), "-");
  Key k;
  for (const Row& r : rows)
    if (row_key(t, r, k) && r.size() > t.key.size() && r[t.key.size()]) out[joined(k)] = *r[t.key.size()];
  return out;
}

}  // namespace

void InFlight::sample_primary(const TablePlan& t, const std::vector<Key>& batch, const Rows& rows) {
  const auto states = states_of(t, batch, rows);
  for (const Key& k : batch) {
    auto it = keys_.find(k);
    if (it == keys_.end()) continue;
    const std::string& s = states.at(joined(k));
    auto& seen = it->second;
    if (std::find(seen.begin(), seen.end(), s) == seen.end()) {
      if (seen.size() >= kMaxStates) seen.erase(seen.begin());
      seen.push_back(s);
    }
  }
}

std::size_t InFlight::sample_target(const TablePlan& t, const std::vector<Key>& batch, const Rows& rows) {
  const auto states = states_of(t, batch, rows);
  std::size_t resolved = 0;
  for (const Key& k : batch) {
    auto it = keys_.find(k);
    if (it == keys_.end()) continue;
    const auto& seen = it->second;
    if (std::find(seen.begin(), seen.end(), states.at(joined(k))) != seen.end()) {
      keys_.erase(it);
      ++resolved;
    }
  }
  return resolved;
}

}  // namespace pgshift::verify
