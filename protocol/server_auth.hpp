// The server side of PostgreSQL authentication, for clients that log in to pgshift itself
// (its admin console; later every client, PgBouncer-style, with secrets from an auth_file
// or an auth_query): SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802 / RFC 7677 as
// PostgreSQL speaks them, tls-server-end-point channel binding per RFC 5929), MD5 and
// cleartext password. No I/O: the caller sends what is appended to `out` and feeds each
// client message back.
//
// Checks, as PostgreSQL makes them (src/backend/libpq/auth-scram.c) and a little stricter:
// the message order; SASLInitialResponse's layout and a mechanism that was offered; the gs2
// header ('n'; 'y' only when PLUS was not offered; 'p=tls-server-end-point' only with
// SCRAM-SHA-256-PLUS; no authzid); no mandatory or optional extensions (PostgreSQL ignores
// optional ones); a printable client nonce of 1..max_client_nonce bytes; the attribute order
// (n, r; then c, r, p); client-final's channel-binding field equal to base64(gs2 header +
// channel binding data); the nonce equal to client nonce + server nonce; a 32-byte proof,
// verified in constant time. Every SCRAM message is at most max_scram_message bytes, a
// password message at most max_password_message.
//
// Failures append the ErrorResponse to send, as PostgreSQL words it: 28P01 "password
// authentication failed for user "X"" for a wrong password (and every doomed exchange), 08P01
// for protocol violations, 0A000 for unsupported SCRAM features. error() is the reason for the
// log; it never contains a password, proof, key or hash.
//
// Secrets (the Secret, derived keys, the password a client sent) are wiped with
// OPENSSL_cleanse once used, and when the objects die.
#pragma once

#include <openssl/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/frame.hpp"
#include "protocol/scram.hpp"

namespace pgshift::protocol {

// A stored password secret, as PostgreSQL keeps it in pg_authid.rolpassword and PgBouncer
// in its auth_file: a SCRAM-SHA-256 verifier, an MD5 hash (md5(password || user)) or a
// plaintext password (for which a SCRAM verifier is derived once, and MD5 computed per user).
class Secret {
 public:
  enum class Kind { scram_sha_256, md5, plaintext };
  static constexpr std::uint32_t default_iterations = 4096;  // PostgreSQL's scram_iterations default
  static constexpr std::size_t default_salt_size = 16;       // PostgreSQL's SCRAM_DEFAULT_SALT_LEN
  static constexpr std::size_t max_password = 1024;          // bytes of a plaintext password

  // Reads stored text. "SCRAM-SHA-256$..." must be a valid verifier (ScramVerifier::parse)
  // and "md5" followed by 32 characters must be 32 lower-case hex digits: a malformed one is
  // an error, never taken for a plaintext password. Anything else is a plaintext password
  // (1..max_password bytes, no NUL). nullopt and `error` (never quoting the text) otherwise.
  static std::optional<Secret> parse(std::string_view text, std::string& error);
  // A password known to be plaintext (e.g. from pgshift's config): never read as a verifier.
  // The SCRAM verifier gets a random 16-byte salt and 4096 iterations.
  static std::optional<Secret> from_password(std::string_view password, std::string& error);
  // The same with a given salt and iteration count (tests, reproducible verifiers).
  static std::optional<Secret> from_password(std::string_view password, std::string_view salt,
                                             std::uint32_t iterations, std::string& error);
  // The secret of a user that does not exist or has no usable secret: a SCRAM verifier
  // with the salt PostgreSQL-style mock authentication would show (the same for the same user
  // name during this process, derived from a random per-process key) that no password
  // matches. ServerAuth runs the whole exchange and then fails as for a wrong password, so a
  // client cannot tell a missing user from a wrong password.
  static Secret mock(std::string_view user);

  Secret(const Secret&) = default;
  Secret& operator=(const Secret&) = default;
  ~Secret();

  Kind kind() const noexcept { return kind_; }
  bool is_mock() const noexcept { return mock_; }
  // The SCRAM verifier: stored, or derived from the plaintext; nullptr for an MD5 hash.
  const ScramVerifier* scram() const noexcept { return kind_ == Kind::md5 ? nullptr : &verifier_; }
  // "md5" + 32 hex digits: the stored hash, or md5(password || user) for a plaintext
  // password; nullopt for a SCRAM verifier (or if MD5 is unavailable in OpenSSL).
  std::optional<std::string> md5_hash(std::string_view user) const;
  // The plaintext password; empty unless kind() is plaintext.
  std::string_view plaintext() const noexcept { return password_; }
  // Whether a password sent in clear matches (PostgreSQL's plain_crypt_verify): against a
  // verifier by deriving its keys, against an MD5 hash via md5(password || user). Constant
  // time in what it compares. Always false for a mock secret.
  bool verify_password(std::string_view password, std::string_view user) const;

 private:
  Secret() = default;

  Kind kind_ = Kind::plaintext;
  bool mock_ = false;
  ScramVerifier verifier_;  // scram_sha_256 and plaintext
  std::string md5_;         // md5: the 32 hex digits after "md5"
  std::string password_;    // plaintext
};

enum class AuthMethod { scram_sha_256, md5, cleartext };

// The method for a secret, as PostgreSQL picks it for an "md5" pg_hba line: SCRAM for a
// verifier, MD5 for an MD5 hash; for a plaintext password SCRAM, or MD5 if `prefer_md5`.
// Cleartext is never chosen here; a caller that wants it asks for it.
AuthMethod choose_method(const Secret& secret, bool prefer_md5 = false) noexcept;

// RFC 5929 tls-server-end-point channel binding data: the hash of the certificate (DER)
// with the hash function of its signature algorithm, SHA-256 when that is MD5 or SHA-1.
// nullopt and `error` when the signature algorithm has no single hash function (Ed25519,
// Ed448: RFC 5929 defines no binding) or the certificate cannot be read.
std::optional<std::string> tls_server_end_point(X509* cert, std::string& error);
std::optional<std::string> tls_server_end_point_der(std::string_view der, std::string& error);

class ServerAuth {
 public:
  static constexpr std::size_t max_client_nonce = 512;
  static constexpr std::size_t max_scram_message = 2048;     // client-first, client-final
  static constexpr std::size_t max_password_message = 1100;  // a cleartext password or an MD5 answer
  static constexpr std::size_t max_channel_binding = 64;     // a SHA-512 hash

  struct Options {
    // tls-server-end-point data for this connection (tls_server_end_point() of the
    // certificate pgshift presented to this client). Empty: no TLS, and SCRAM-SHA-256-PLUS
    // is not offered. At most max_channel_binding bytes.
    std::string channel_binding = {};
    // Testing only: the SCRAM server nonce (printable, no ','). Empty: 18 random bytes
    // from RAND_bytes, base64-encoded, as PostgreSQL does.
    std::string server_nonce = {};
    // Testing only: the 4-byte MD5 salt. Empty: 4 random bytes.
    std::string md5_salt = {};
  };

  // Authenticates `user` (the StartupMessage's user) with `method`. A method the secret
  // cannot check (SCRAM with an MD5 hash, MD5 with a verifier) runs as a doomed exchange
  // that fails like a wrong password, as PostgreSQL does; error() says why.
  ServerAuth(std::string user, Secret secret, AuthMethod method)
      : ServerAuth(std::move(user), std::move(secret), method, Options{}) {}
  ServerAuth(std::string user, Secret secret, AuthMethod method, Options options);
  ~ServerAuth();
  ServerAuth(const ServerAuth&) = delete;
  ServerAuth& operator=(const ServerAuth&) = delete;

  enum class Step {
    reply,   // send what was appended to `out`, then feed the client's next message
    done,    // send `out` (SCRAM: SASLFinal, then AuthenticationOk; others: AuthenticationOk),
             // then go on with ParameterStatus ... ReadyForQuery
    failed,  // send `out` (an ErrorResponse, unless the client left) and close
  };

  // Why the exchange failed, for callers that count or log them differently.
  enum class Failure {
    none,
    wrong_password,      // 28P01; also doomed exchanges (mock secret, unusable secret)
    protocol_violation,  // 08P01 (or 0A000 for unsupported SCRAM features)
    client_left,         // Terminate received: nothing is sent (psql does this before prompting)
    internal,            // RAND_bytes, OpenSSL or call-order failure
  };

  // Appends the first request: AuthenticationSASL (SCRAM-SHA-256-PLUS first when channel
  // binding data was given, then SCRAM-SHA-256), AuthenticationMD5Password or
  // AuthenticationCleartextPassword. Returns reply, or failed.
  Step start(std::string& out);

  // Feeds one client message: 'p' (SASLInitialResponse, SASLResponse or PasswordMessage,
  // as the exchange expects) or 'X'. Any other message is a protocol violation. After done
  // or failed every call fails without appending anything.
  Step on_message(const Frame& f, std::string& out);

  const std::string& user() const noexcept { return user_; }
  AuthMethod method() const noexcept { return method_; }
  const Secret& secret() const noexcept { return secret_; }
  // Why it failed, for logs; empty unless failed. Never contains a secret.
  const std::string& error() const noexcept { return error_; }
  Failure failure() const noexcept { return failure_; }
  bool is_done() const noexcept { return phase_ == Phase::done; }
  bool is_failed() const noexcept { return phase_ == Phase::failed; }
  // True after a successful SCRAM-SHA-256-PLUS exchange.
  bool channel_bound() const noexcept { return is_done() && plus_selected_; }
  // After a successful SCRAM exchange: the ClientKey recovered from the client's proof
  // (proof XOR ClientSignature). With the secret's verifier it lets ClientAuth log in to a
  // server storing the same verifier (SCRAM pass-through). nullopt otherwise.
  std::optional<ScramKey> client_key() const;
  // client_key() with the verifier, ready for ClientAuth; nullopt unless client_key() is set.
  std::optional<ScramClientKeys> client_keys() const;
  // After a successful cleartext exchange: the password the client sent (it logs pgshift in
  // to any server that accepts it). Empty otherwise; wiped with the object.
  std::string_view cleartext_password() const noexcept { return is_done() ? std::string_view(password_) : std::string_view(); }

 private:
  enum class Phase {
    created,                // start() not called yet
    awaiting_password,      // MD5 or cleartext request sent
    awaiting_sasl_init,     // AuthenticationSASL sent
    awaiting_client_first,  // SASLInitialResponse had no data: empty SASLContinue sent
    awaiting_client_final,  // server-first-message sent
    done,
    failed,
  };

  void move_to(Phase next) noexcept;
  Step fail(Failure failure, std::string why, std::string& out);
  Step fail_protocol(std::string_view message, std::string why, std::string& out,
                     std::string_view sqlstate = "08P01");
  Step fail_password(std::string why, std::string& out);
  Step on_password(std::string_view body, std::string& out);
  Step on_sasl_initial(std::string_view body, std::string& out);
  Step on_client_first(std::string_view client_first, std::string& out);
  Step on_client_final(std::string_view client_final, std::string& out);
  void wipe_secrets() noexcept;

  std::string user_;
  Secret secret_;
  AuthMethod method_;
  Options options_;
  Phase phase_ = Phase::created;
  Failure failure_ = Failure::none;
  std::string error_;
  std::string doomed_;      // why this exchange fails whatever the client sends; empty if it can succeed
  ScramVerifier verifier_;  // the secret's, or a mock one when the secret has none

  // SCRAM exchange state.
  bool plus_offered_ = false;
  bool plus_selected_ = false;
  std::string gs2_header_;  // as the client sent it, e.g. "n,,"
  std::string client_nonce_;
  std::string server_nonce_;
  std::string client_first_bare_;
  std::string server_first_;
  std::optional<ScramKey> client_key_;

  // MD5 exchange state.
  std::string md5_salt_;
  // A cleartext password that matched.
  std::string password_;
};

}  // namespace pgshift::protocol
