// The migration's phase and which server serves, kept in [cutover] state_file
// so that a restart never undoes a cutover: pgshift restarted after one, with
// its old configuration, must serve the new primary, or two databases would
// take writes. Written before each change is acted on, atomically (write a
// temporary file, fsync, rename, fsync the folder); the epoch only grows, so
// several pgshift instances can later agree on which switch is the latest.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace pgshift::proxy::cutover {

enum class Phase : std::uint8_t {
  shadowing,  // the serving server is the primary; the other receives mirrored writes
  reads,      // as shadowing, with a share of reads served by the other
  cutover,    // a switch to the other server is under way
  cut_over,   // the other server serves; the old one receives mirrored writes (reverse mirroring)
  rollback,   // a switch back is under way
  completed,  // the other server serves; mirroring has stopped
};
std::string_view to_string(Phase p) noexcept;
std::optional<Phase> phase_from(std::string_view s) noexcept;

struct State {
  std::uint64_t epoch = 0;  // the number of switches ever made
  Phase phase = Phase::shadowing;
  config::Side serving = config::Side::primary;
  int read_percent = 0;                // in the reads phase
  std::vector<config::Side> fenced;    // servers pgshift made read-only
  std::string changed;                 // when, RFC 3339 UTC
};

// Reads `path`; nullopt when it does not exist. A file that exists but cannot
// be read or understood is an error (never silently the default state).
std::optional<State> load_state(const std::string& path, std::string& error);
bool save_state(const std::string& path, const State& s, std::string& error);

std::string now_rfc3339();

}  // namespace pgshift::proxy::cutover
