// The client side of PostgreSQL authentication, for connections pgshift opens by itself
// (the shadow database) with configured credentials: trust, cleartext password, MD5 and
// SCRAM-SHA-256 (RFC 5802 / RFC 7677 as PostgreSQL uses it: no channel binding, gs2
// header "n,,", empty username in client-first-message, the user being the one in the
// StartupMessage). No I/O: the caller feeds the server's messages and sends the replies.
//
// Passwords are used as raw bytes. SASLprep (RFC 4013) is not applied: for ASCII
// passwords it changes nothing PostgreSQL would use (PostgreSQL falls back to the raw
// bytes when SASLprep rejects a password, e.g. one with control characters). A non-ASCII
// password works when SASLprep would leave it unchanged (valid UTF-8 already in NFKC,
// without non-ASCII spaces or characters SASLprep maps to nothing) or rejects it;
// otherwise SCRAM login fails as a wrong password would. MD5 and cleartext never use
// SASLprep.
//
// Hardening: the order of the server's messages is checked (AuthenticationOk is accepted
// only at the start (trust), after a password reply, or after a verified SCRAM server
// signature); the SCRAM server nonce must extend the client nonce (at most 1024 bytes);
// the iteration count must be 1..10,000,000; salt and signature must be strict base64;
// the server signature is verified in constant time; SCRAM-SHA-256-PLUS-only offers,
// GSSAPI, SSPI and Kerberos are refused. Error texts never contain the password.
// Password-derived buffers are wiped (OPENSSL_cleanse) once used, and the password when
// the object dies.
//
// SCRAM pass-through: built from ScramClientKeys (a ClientKey and its verifier) instead of a
// password, it logs in to a server that stores the same verifier without knowing the
// password, as PgBouncer does with the keys it recovers from its own clients' proofs.
// MD5 pass-through: built from the stored MD5 hash (md5(password || user)), it answers an
// MD5 challenge for that user.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "protocol/frame.hpp"
#include "protocol/scram.hpp"

namespace pgshift::protocol {

// A user's password as PostgreSQL stores it for MD5 authentication: "md5" followed by
// md5(password || user) in 32 lower-case hex digits. Wiped when it dies.
struct Md5Hash {
  std::string text;
  Md5Hash() = default;
  explicit Md5Hash(std::string t) : text(std::move(t)) {}
  Md5Hash(const Md5Hash&) = default;
  Md5Hash& operator=(const Md5Hash&) = default;
  ~Md5Hash() { scram::wipe(text); }
  // "md5" + 32 lower-case hex digits.
  bool valid() const noexcept;
};

class ClientAuth;

// What pgshift may log in to a server with as a client's own user, kept from that
// client's authentication to pgshift: the SCRAM keys recovered from its proof, the stored
// MD5 hash that checked its MD5 answer, or the password it sent (cleartext authentication)
// or that pgshift stores in plaintext. Immutable; wiped when the last holder lets go.
class PassThrough {
 public:
  enum class Kind { scram_keys, md5_hash, password };

  static PassThrough scram(ScramClientKeys keys);
  static PassThrough md5(Md5Hash hash);
  static PassThrough password(std::string password);
  PassThrough(const PassThrough&) = delete;
  PassThrough& operator=(const PassThrough&) = delete;
  PassThrough(PassThrough&&) = default;
  ~PassThrough();

  Kind kind() const noexcept { return kind_; }
  // For logs: "SCRAM pass-through", "MD5 pass-through" or "the client's password".
  std::string_view describe() const noexcept;
  // A ClientAuth that logs in as `user` with this credential.
  std::unique_ptr<ClientAuth> client_auth(std::string user) const;

 private:
  explicit PassThrough(Kind kind) : kind_(kind) {}
  Kind kind_;
  std::optional<ScramClientKeys> keys_;
  std::string secret_;  // the MD5 hash or the password
};

class ClientAuth {
 public:
  static constexpr std::size_t max_server_nonce = 1024;
  static constexpr std::uint32_t max_iterations = scram::max_iterations;

  struct Options {
    // Testing only: the SCRAM client nonce (printable ASCII without ','). Empty: 18
    // random bytes from RAND_bytes, base64-encoded (24 characters).
    std::string client_nonce;
    // Testing only: put the user name in client-first-message ("n=user") as RFC 7677's
    // example does. PostgreSQL (and libpq) use "n=" and take the user from the startup.
    bool scram_username = false;
  };

  ClientAuth(std::string user, std::string password)
      : ClientAuth(std::move(user), std::move(password), Options{}) {}
  ClientAuth(std::string user, std::string password, Options options);
  // SCRAM pass-through: log in with the ClientKey and verifier a ServerAuth recovered from
  // a client's proof (ServerAuth::client_keys()) instead of a password. The proof is
  // ClientKey XOR HMAC(H(ClientKey), AuthMessage) and the server's signature is checked
  // with the verifier's ServerKey. Only SCRAM-SHA-256 works, and only when the server sends
  // the verifier's salt and iteration count (it stores the same verifier); anything else
  // fails with a reason.
  ClientAuth(std::string user, ScramClientKeys keys)
      : ClientAuth(std::move(user), std::move(keys), Options{}) {}
  ClientAuth(std::string user, ScramClientKeys keys, Options options);
  // MD5 pass-through: answers an MD5 challenge with the stored hash instead of the password.
  // Only MD5 works (a SCRAM or cleartext request fails with a reason).
  ClientAuth(std::string user, Md5Hash hash) : ClientAuth(std::move(user), std::move(hash), Options{}) {}
  ClientAuth(std::string user, Md5Hash hash, Options options);
  ~ClientAuth();
  ClientAuth(const ClientAuth&) = delete;
  ClientAuth& operator=(const ClientAuth&) = delete;

  enum class Step {
    reply,  // send the 'p' message just appended to `out`, then feed the next message
    wait,   // nothing to send (SCRAM server signature verified); feed the next message
    done,   // AuthenticationOk: the server goes on with ParameterStatus ... ReadyForQuery
    failed  // see error(); the connection must be closed
  };

  // Feed each 'R' (Authentication*) message the server sends; an 'E' ErrorResponse may be
  // fed too (it fails with the server's message). Appends at most one complete message
  // to `out`, only when returning `reply`. After `failed` or `done` every call fails.
  Step on_message(const Frame& f, std::string& out);

  // Why authentication failed, for logs; empty unless failed. Never contains the password.
  const std::string& error() const noexcept { return error_; }
  bool is_done() const noexcept { return state_ == State::done; }
  bool is_failed() const noexcept { return state_ == State::failed; }

 private:
  enum class State {
    start,            // nothing received yet
    password_sent,    // cleartext or MD5 reply sent: AuthenticationOk next
    sasl_first_sent,  // SASLInitialResponse sent: SASLContinue next
    sasl_final_sent,  // client-final-message sent: SASLFinal next
    sasl_verified,    // server signature verified: AuthenticationOk next
    done,
    failed,
  };

  Step fail(std::string why);
  Step on_sasl(std::string_view mechanisms, std::string& out);
  Step on_sasl_continue(std::string_view server_first, std::string& out);
  Step on_sasl_final(std::string_view server_final);
  void wipe_secrets() noexcept;

  std::string user_;
  std::string password_;
  Options options_;
  State state_ = State::start;
  std::string error_;

  // SCRAM exchange state.
  std::string client_nonce_;
  std::string client_first_bare_;
  std::array<unsigned char, 32> server_signature_{};  // expected, password-derived
  std::optional<ScramClientKeys> keys_;               // pass-through instead of password_
  std::string md5_hex_;                               // MD5 pass-through: md5(password || user), hex
  bool md5_pass_through_ = false;
};

}  // namespace pgshift::protocol
