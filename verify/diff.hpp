// Comparing the rows of a chunk whose hashes differ, and re-checking the rows
// that differ while writes may still be on their way to the target. No I/O.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "verify/schema.hpp"
#include "verify/sql.hpp"

namespace pgshift::verify {

enum class DiffKind : std::uint8_t {
  changed,  // on both sides, with different values
  missing,  // on the primary only: missing on the target
  extra,    // on the target only: extra on the target
};
std::string_view to_string(DiffKind k) noexcept;

struct Difference {
  DiffKind kind = DiffKind::changed;
  Key key;
  std::string column;  // changed: the first differing column (its application name)
  std::optional<std::string> primary_value, target_value;  // its values, shortened for reports
  std::uint64_t chunk = 0;  // the chunk it was found in, to report in key order
};

// "aid=5", or "(a, b)=(x, 1)" for a composite key.
std::string key_text(const TablePlan& t, const Key& k);
// "aid=5 changed (abalance: 0 on the primary, 7 on the target)", "aid=6 missing on the target".
std::string describe(const TablePlan& t, const Difference& d);

// From row_hashes_query's rows of both sides: the keys whose hash differs or
// that one side lacks, in the primary's row order, then the target's extras.
std::vector<Key> differing_keys(const TablePlan& t, const Rows& primary, const Rows& target);

// From rows_query(values = true) of both sides for `keys`: a difference for
// each key whose rows are not equal value by value (shadow::values_equal, so
// values that only print differently are equal), or that one side lacks.
std::vector<Difference> compare_rows(const TablePlan& t, const std::vector<Key>& keys, const Rows& primary,
                                     const Rows& target, double tolerance);

// Live mode: a row that differs may only be waiting for a write on its way
// to the target. The target applies the primary's writes in order, so such a
// row soon holds a state the primary's row held: sampled together, again and
// again, a key is resolved once its row on the target hashes like one of the
// primary's samples taken at the same time or before (a deleted row is a
// state too). What is never resolved differs.
class InFlight {
 public:
  void add(const Key& k);
  // The rows (rows_query without values) of one sample of a batch of keys,
  // the primary's before the target's; returns the number of keys resolved.
  void sample_primary(const TablePlan& t, const std::vector<Key>& batch, const Rows& rows);
  std::size_t sample_target(const TablePlan& t, const std::vector<Key>& batch, const Rows& rows);
  // A new round forgets the samples (rows resolve against recent states only).
  void new_round();
  std::vector<Key> pending() const;
  std::size_t size() const noexcept { return keys_.size(); }
  bool resolved(const Key& k) const { return !keys_.count(k); }

 private:
  static constexpr std::size_t kMaxStates = 256;  // distinct primary states kept per key and round
  std::map<Key, std::vector<std::string>> keys_;  // pending key -> the primary's sampled row hashes
};

}  // namespace pgshift::verify
