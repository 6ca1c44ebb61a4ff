// The vocabulary a session and the cutover coordinator share while a switch
// moves sessions from one server to the other.
//
// Per session, in order: prepare (open and log in to the target, prepare the
// session's named statements there), pause (hold the client's next message
// at a transaction boundary), held (report what the session holds that
// cannot move), stage (replay its settings, LISTENs and SQL prepared
// statements on the target), then one decision: commit (the target becomes
// the session's server), release (abort: stay on the old one), retry_later
// (it holds unmovable state: run on until its next boundary, then report
// again) or close (unmovable = "close": end it with a FATAL error). Once
// every session has carried out its decision, those that moved close their
// connection to the old server: nothing of that happens during the pause.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace pgshift::proxy::cutover {

enum class Decision : std::uint8_t { stage, commit, release, retry_later, close };

// What a session reports once it holds at a transaction boundary.
struct Held {
  bool ready = true;    // its target connection is open and its statements prepared there
  bool movable = true;  // no temporary table, WITH HOLD cursor or session advisory lock
  std::string why;      // what cannot move, or why it is not ready
};

// What a session reports once a decision is carried out.
struct Done {
  Decision decision = Decision::release;
  bool ok = true;
  std::string why;                          // when !ok
  std::chrono::microseconds held{0};        // from its hold to its release
  std::chrono::microseconds waited{0};      // how long its client's next message waited (0: none came)
};

}  // namespace pgshift::proxy::cutover
