#include "protocol/server_auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <memory>
#include <utility>
#include <vector>

#include "protocol/builder.hpp"
#include "protocol/messages.hpp"

namespace pgshift::protocol {
namespace {

using scram::Cleanse;
using scram::Digest;

constexpr std::string_view kMd5Prefix = "md5";
constexpr std::size_t kMd5HexSize = 32;
constexpr std::size_t kMd5SaltSize = 4;
constexpr std::size_t kMaxQuoted = 64;  // client-chosen text quoted in an ErrorResponse

bool lower_hex(std::string_view s) noexcept {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool random_bytes(std::string& out, std::size_t n) {
  out.assign(n, '\0');
  return RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) == 1;
}

// The per-process key behind mock salts: the same user name gets the same salt for the
// life of the process, so repeated probes cannot tell a missing user from a real one.
const Digest& mock_key() {
  static const Digest key = [] {
    Digest k{};
    // If RAND_bytes failed the key stays zero: mock salts would still be per user, only
    // predictable. Real exchanges need RAND_bytes too and fail loudly without it.
    RAND_bytes(k.data(), static_cast<int>(k.size()));
    return k;
  }();
  return key;
}

// Text from the client quoted in an ErrorResponse or a log line: short and printable.
std::string quoted(std::string_view s) {
  std::string out = scram::printable_text(s.substr(0, kMaxQuoted));
  if (s.size() > kMaxQuoted) out += "...";
  return out;
}

std::string printable_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x21 && u <= 0x7e) return std::string("'") + c + "'";
  static constexpr char digits[] = "0123456789abcdef";
  return std::string("0x") + digits[u >> 4] + digits[u & 15];
}

// ErrorResponse fields are C strings: a user name cannot carry a NUL there.
std::string without_nul(std::string_view s) {
  std::string out(s);
  std::erase(out, '\0');
  return out;
}

}  // namespace

// ---- Secret ----

Secret::~Secret() {
  scram::wipe(md5_);
  scram::wipe(password_);
}

std::optional<Secret> Secret::parse(std::string_view text, std::string& error) {
  if (text.empty()) {
    error = "empty password";
    return std::nullopt;
  }
  if (text.starts_with("SCRAM-SHA-256$")) {
    auto verifier = ScramVerifier::parse(text, error);
    if (!verifier) return std::nullopt;
    Secret s;
    s.kind_ = Kind::scram_sha_256;
    s.verifier_ = std::move(*verifier);
    return s;
  }
  if (text.starts_with(kMd5Prefix) && text.size() == kMd5Prefix.size() + kMd5HexSize) {
    const std::string_view hex = text.substr(kMd5Prefix.size());
    if (!lower_hex(hex)) {
      error = "malformed MD5 hash (expected \"md5\" followed by 32 lower-case hex digits)";
      return std::nullopt;
    }
    Secret s;
    s.kind_ = Kind::md5;
    s.md5_ = std::string(hex);
    return s;
  }
  return from_password(text, error);
}

std::optional<Secret> Secret::from_password(std::string_view password, std::string& error) {
  std::string salt;
  if (!random_bytes(salt, default_salt_size)) {
    error = "could not generate a SCRAM salt (RAND_bytes failed)";
    return std::nullopt;
  }
  return from_password(password, salt, default_iterations, error);
}

std::optional<Secret> Secret::from_password(std::string_view password, std::string_view salt,
                                            std::uint32_t iterations, std::string& error) {
  if (password.empty()) {
    error = "empty password";
    return std::nullopt;
  }
  if (password.size() > max_password) {
    error = "password longer than " + std::to_string(max_password) + " bytes";
    return std::nullopt;
  }
  if (password.find('\0') != std::string_view::npos) {
    error = "the password contains a NUL byte";
    return std::nullopt;
  }
  auto verifier = ScramVerifier::derive(password, salt, iterations);
  if (!verifier) {
    error =
        "could not derive a SCRAM verifier (salt size or iteration count out of range, or OpenSSL failed)";
    return std::nullopt;
  }
  Secret s;
  s.kind_ = Kind::plaintext;
  s.verifier_ = std::move(*verifier);
  s.password_ = std::string(password);
  return s;
}

Secret Secret::mock(std::string_view user) {
  Digest salt{};
  scram::hmac_sha256(mock_key().data(), mock_key().size(), user, salt);
  Secret s;
  s.kind_ = Kind::scram_sha_256;
  s.mock_ = true;
  s.verifier_.iterations = default_iterations;
  s.verifier_.salt.assign(reinterpret_cast<const char*>(salt.data()), default_salt_size);
  // Random keys: no proof can match them, and is_mock() makes sure of it.
  RAND_bytes(s.verifier_.stored_key.bytes.data(), static_cast<int>(scram::key_size));
  RAND_bytes(s.verifier_.server_key.bytes.data(), static_cast<int>(scram::key_size));
  return s;
}

std::optional<std::string> Secret::md5_hash(std::string_view user) const {
  switch (kind_) {
    case Kind::scram_sha_256:
      return std::nullopt;
    case Kind::md5:
      return std::string(kMd5Prefix) + md5_;
    case Kind::plaintext: {
      std::string input = password_ + std::string(user);
      Cleanse wipe_input(input);
      auto hex = scram::md5_hex(input);
      if (!hex) return std::nullopt;
      Cleanse wipe_hex(*hex);
      return std::string(kMd5Prefix) + *hex;
    }
  }
  return std::nullopt;
}

bool Secret::verify_password(std::string_view password, std::string_view user) const {
  bool match = false;
  switch (kind_) {
    case Kind::scram_sha_256: {
      auto derived = ScramVerifier::derive(password, verifier_.salt, verifier_.iterations);
      match = derived && derived->stored_key.equals(verifier_.stored_key) &&
              derived->server_key.equals(verifier_.server_key);
      break;
    }
    case Kind::md5: {
      std::string input = std::string(password) + std::string(user);
      Cleanse wipe_input(input);
      auto hex = scram::md5_hex(input);
      if (!hex) return false;
      Cleanse wipe_hex(*hex);
      match = CRYPTO_memcmp(hex->data(), md5_.data(), kMd5HexSize) == 0;
      break;
    }
    case Kind::plaintext: {
      // Hashes first, so the comparison takes the same time whatever the lengths.
      Digest given{}, stored{};
      Cleanse wipe_given(given), wipe_stored(stored);
      match = scram::sha256(password, given) && scram::sha256(password_, stored) &&
              CRYPTO_memcmp(given.data(), stored.data(), given.size()) == 0;
      break;
    }
  }
  return match && !mock_;
}

AuthMethod choose_method(const Secret& secret, bool prefer_md5) noexcept {
  switch (secret.kind()) {
    case Secret::Kind::scram_sha_256:
      return AuthMethod::scram_sha_256;
    case Secret::Kind::md5:
      return AuthMethod::md5;
    case Secret::Kind::plaintext:
      return prefer_md5 ? AuthMethod::md5 : AuthMethod::scram_sha_256;
  }
  return AuthMethod::scram_sha_256;
}

// ---- tls-server-end-point ----

std::optional<std::string> tls_server_end_point(X509* cert, std::string& error) {
  if (cert == nullptr) {
    error = "no certificate";
    return std::nullopt;
  }
  int md_nid = NID_undef;
  if (X509_get_signature_info(cert, &md_nid, nullptr, nullptr, nullptr) != 1 || md_nid == NID_undef) {
    error =
        "the certificate's signature algorithm has no single hash function (e.g. Ed25519); "
        "tls-server-end-point is not defined for it";
    return std::nullopt;
  }
  // RFC 5929 section 4.1: MD5 and SHA-1 are replaced by SHA-256.
  const EVP_MD* md = (md_nid == NID_md5 || md_nid == NID_sha1) ? EVP_sha256() : EVP_get_digestbynid(md_nid);
  if (md == nullptr) {
    error = std::string("no digest available for the certificate's signature hash ") + OBJ_nid2sn(md_nid);
    return std::nullopt;
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> hash{};
  unsigned int len = 0;
  if (X509_digest(cert, md, hash.data(), &len) != 1) {
    error = "could not hash the certificate";
    return std::nullopt;
  }
  return std::string(reinterpret_cast<const char*>(hash.data()), len);
}

std::optional<std::string> tls_server_end_point_der(std::string_view der, std::string& error) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<X509, decltype(&X509_free)> cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())),
                                                   &X509_free);
  if (!cert || p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
    error = "not a DER-encoded X.509 certificate";
    return std::nullopt;
  }
  return tls_server_end_point(cert.get(), error);
}

// ---- ServerAuth ----

ServerAuth::ServerAuth(std::string user, Secret secret, AuthMethod method, Options options)
    : user_(std::move(user)), secret_(std::move(secret)), method_(method), options_(std::move(options)) {
  if (secret_.is_mock()) doomed_ = "no such user, or the user has no usable secret (mock authentication)";
  switch (method_) {
    case AuthMethod::scram_sha_256:
      if (const ScramVerifier* v = secret_.scram()) {
        verifier_ = *v;
      } else {
        verifier_ = *Secret::mock(user_).scram();
        doomed_ = "the stored secret is an MD5 hash, which SCRAM-SHA-256 authentication cannot check";
      }
      break;
    case AuthMethod::md5:
      if (secret_.kind() == Secret::Kind::scram_sha_256 && !secret_.is_mock())
        doomed_ = "the stored secret is a SCRAM verifier, which MD5 authentication cannot check";
      break;
    case AuthMethod::cleartext:
      break;
  }
}

ServerAuth::~ServerAuth() { wipe_secrets(); }

void ServerAuth::wipe_secrets() noexcept {
  client_key_.reset();
  scram::wipe(password_);
}

void ServerAuth::move_to(Phase next) noexcept { phase_ = next; }

ServerAuth::Step ServerAuth::fail(Failure failure, std::string why, std::string& out) {
  failure_ = failure;
  error_ = scram::printable_text(why);
  move_to(Phase::failed);
  wipe_secrets();
  if (failure == Failure::wrong_password) {
    const std::string message = "password authentication failed for user \"" + without_nul(user_) + "\"";
    append_error_response(out, {.severity = "FATAL", .sqlstate = "28P01", .message = message});
  } else if (failure == Failure::internal) {
    append_error_response(
        out, {.severity = "FATAL", .sqlstate = "XX000", .message = "authentication failed: internal error"});
  }
  return Step::failed;
}

ServerAuth::Step ServerAuth::fail_protocol(std::string_view message, std::string why, std::string& out,
                                           std::string_view sqlstate) {
  const std::string detail = scram::printable_text(why);
  fail(Failure::protocol_violation, std::string(message) + (detail.empty() ? "" : ": " + detail), out);
  append_error_response(out,
                        {.severity = "FATAL", .sqlstate = sqlstate, .message = message, .detail = detail});
  return Step::failed;
}

ServerAuth::Step ServerAuth::fail_password(std::string why, std::string& out) {
  return fail(Failure::wrong_password, doomed_.empty() ? std::move(why) : doomed_, out);
}

std::optional<ScramKey> ServerAuth::client_key() const {
  if (!is_done()) return std::nullopt;
  return client_key_;
}

std::optional<ScramClientKeys> ServerAuth::client_keys() const {
  auto key = client_key();
  if (!key) return std::nullopt;
  return ScramClientKeys{*key, verifier_};
}

ServerAuth::Step ServerAuth::start(std::string& out) {
  if (phase_ != Phase::created) return fail(Failure::internal, "start() called twice", out);
  switch (method_) {
    case AuthMethod::md5:
      if (!options_.md5_salt.empty()) {
        if (options_.md5_salt.size() != kMd5SaltSize)
          return fail(Failure::internal, "the MD5 salt must be 4 bytes", out);
        md5_salt_ = options_.md5_salt;
      } else if (!random_bytes(md5_salt_, kMd5SaltSize)) {
        return fail(Failure::internal, "could not generate an MD5 salt (RAND_bytes failed)", out);
      }
      MessageWriter(out).begin('R').u32(static_cast<std::uint32_t>(AuthCode::md5)).raw(md5_salt_).end();
      move_to(Phase::awaiting_password);
      return Step::reply;
    case AuthMethod::cleartext:
      MessageWriter(out).begin('R').u32(static_cast<std::uint32_t>(AuthCode::cleartext)).end();
      move_to(Phase::awaiting_password);
      return Step::reply;
    case AuthMethod::scram_sha_256:
      break;
  }
  if (options_.channel_binding.size() > max_channel_binding)
    return fail(Failure::internal, "channel binding data longer than a SHA-512 hash", out);
  plus_offered_ = !options_.channel_binding.empty();
  if (plus_offered_) {
    append_authentication_sasl(out, {scram::mechanism_plus, scram::mechanism});
  } else {
    append_authentication_sasl(out, {scram::mechanism});
  }
  move_to(Phase::awaiting_sasl_init);
  return Step::reply;
}

ServerAuth::Step ServerAuth::on_message(const Frame& f, std::string& out) {
  switch (phase_) {
    case Phase::done:
    case Phase::failed:
      return Step::failed;
    case Phase::created:
      return fail(Failure::internal, "client message fed before start()", out);
    default:
      break;
  }
  if (f.type == 'X')
    return fail(Failure::client_left, "the client closed the connection during authentication", out);
  const bool password = phase_ == Phase::awaiting_password;
  if (f.type != 'p')
    return fail_protocol(std::string("expected ") + (password ? "password" : "SASL") +
                             " response, got message type " + printable_char(f.type),
                         {}, out);
  switch (phase_) {
    case Phase::awaiting_password:
      return on_password(f.body, out);
    case Phase::awaiting_sasl_init:
      return on_sasl_initial(f.body, out);
    case Phase::awaiting_client_first:
      return on_client_first(f.body, out);
    case Phase::awaiting_client_final:
      return on_client_final(f.body, out);
    default:
      return fail(Failure::internal, "unexpected phase", out);
  }
}

ServerAuth::Step ServerAuth::on_password(std::string_view body, std::string& out) {
  if (body.size() > max_password_message || body.empty() || body.find('\0') != body.size() - 1)
    return fail_protocol("invalid password packet size", "expected one NUL-terminated string", out);
  const std::string_view given = body.substr(0, body.size() - 1);
  if (given.empty()) return fail_password("the client sent an empty password", out);

  if (method_ == AuthMethod::cleartext) {
    if (!secret_.verify_password(given, user_))
      return fail_password("password does not match (cleartext)", out);
    if (doomed_.empty()) password_ = std::string(given);
  } else {
    // "md5" + md5(md5(password || user) in hex || salt), compared in constant time.
    auto inner = secret_.md5_hash(user_);
    if (!inner) return fail_password("MD5 is not available (OpenSSL), or the secret has no MD5 hash", out);
    Cleanse wipe_inner(*inner);
    std::string input = inner->substr(kMd5Prefix.size()) + md5_salt_;
    Cleanse wipe_input(input);
    auto outer = scram::md5_hex(input);
    if (!outer) return fail(Failure::internal, "MD5 is not available in this OpenSSL configuration", out);
    Cleanse wipe_outer(*outer);
    const std::string expected = std::string(kMd5Prefix) + *outer;
    const bool match =
        given.size() == expected.size() && CRYPTO_memcmp(given.data(), expected.data(), expected.size()) == 0;
    if (!match || !doomed_.empty()) return fail_password("password does not match (MD5)", out);
  }
  if (!doomed_.empty()) return fail_password({}, out);
  append_authentication_ok(out);
  move_to(Phase::done);
  return Step::done;
}

ServerAuth::Step ServerAuth::on_sasl_initial(std::string_view body, std::string& out) {
  Reader r(body);
  std::string_view mechanism;
  std::uint32_t length = 0;
  if (!r.cstring(mechanism) || !r.u32(length))
    return fail_protocol("invalid message format", "malformed SASLInitialResponse", out);
  if (mechanism == scram::mechanism) {
    plus_selected_ = false;
  } else if (mechanism == scram::mechanism_plus && plus_offered_) {
    plus_selected_ = true;
  } else {
    return fail_protocol("client selected an invalid SASL authentication mechanism",
                         "\"" + quoted(mechanism) + "\" was not offered", out);
  }
  if (length == 0xffffffff) {
    // No initial response (RFC 4422): ask for client-first-message with an empty challenge.
    if (!r.done())
      return fail_protocol("invalid message format", "data after an absent initial response", out);
    MessageWriter(out).begin('R').u32(static_cast<std::uint32_t>(AuthCode::sasl_continue)).end();
    move_to(Phase::awaiting_client_first);
    return Step::reply;
  }
  std::string_view client_first;
  if (!r.bytes(length, client_first) || !r.done())
    return fail_protocol("invalid message format", "SASLInitialResponse length does not match its data", out);
  return on_client_first(client_first, out);
}

ServerAuth::Step ServerAuth::on_client_first(std::string_view cf, std::string& out) {
  constexpr std::string_view malformed = "malformed SCRAM message";
  if (cf.empty()) return fail_protocol(malformed, "The message is empty.", out);
  if (cf.size() > max_scram_message) return fail_protocol(malformed, "client-first-message too long", out);
  if (cf.find('\0') != std::string_view::npos)
    return fail_protocol(malformed, "The message contains a NUL byte.", out);

  // gs2-header = gs2-cbind-flag "," [ authzid ] ","
  std::size_t pos = 0;
  const char flag = cf[0];
  if (flag == 'n' || flag == 'y') {
    pos = 1;
  } else if (flag == 'p') {
    if (cf.size() < 2 || cf[1] != '=')
      return fail_protocol(malformed, "Expected '=' after channel-binding flag 'p'.", out);
    pos = std::min(cf.find(',', 2), cf.size());
  } else {
    return fail_protocol(malformed, "Unexpected channel-binding flag " + printable_char(flag) + ".", out);
  }
  if (pos >= cf.size() || cf[pos] != ',')
    return fail_protocol(malformed, "Comma expected after the channel-binding flag.", out);
  ++pos;
  if (pos < cf.size() && cf[pos] == 'a')
    return fail_protocol("client uses authorization identity, but it is not supported", {}, out, "0A000");
  if (pos >= cf.size() || cf[pos] != ',')
    return fail_protocol(malformed, "Unexpected attribute in client-first-message.", out);
  ++pos;

  switch (flag) {
    case 'n':
      if (plus_selected_)
        return fail_protocol(malformed,
                             "The client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include "
                             "channel binding data.",
                             out);
      break;
    case 'y':
      // The client could bind but thinks the server cannot: a downgrade when PLUS was offered.
      if (plus_offered_)
        return fail_protocol(
            "SCRAM channel binding negotiation error",
            "The client supports SCRAM channel binding but thinks the server does not. However, "
            "this server does support channel binding.",
            out);
      break;
    case 'p': {
      if (!plus_selected_)
        return fail_protocol(
            malformed,
            "The client selected SCRAM-SHA-256 without channel binding, but the SCRAM message "
            "includes channel binding data.",
            out);
      const std::string_view type = cf.substr(2, pos - 2 - 2);  // between "p=" and ",,"
      if (type != scram::channel_binding_type)
        return fail_protocol("unsupported SCRAM channel-binding type \"" + quoted(type) + "\"", {}, out);
      break;
    }
  }
  gs2_header_ = std::string(cf.substr(0, pos));
  const std::string_view bare = cf.substr(pos);

  // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
  if (bare.starts_with("m="))
    return fail_protocol("client requires an unsupported SCRAM extension", {}, out, "0A000");
  const auto attrs = scram::split_attributes(bare);
  if (!scram::attribute(attrs[0], 'n'))
    return fail_protocol(malformed, "Expected attribute \"n\" (the user name) in client-first-message.", out);
  const auto nonce = attrs.size() >= 2 ? scram::attribute(attrs[1], 'r') : std::nullopt;
  if (!nonce)
    return fail_protocol(malformed, "Expected attribute \"r\" (the nonce) in client-first-message.", out);
  if (attrs.size() > 2) return fail_protocol("client sent unsupported SCRAM extensions", {}, out, "0A000");
  if (nonce->empty() || nonce->size() > max_client_nonce)
    return fail_protocol(malformed,
                         "The nonce must be 1.." + std::to_string(max_client_nonce) + " characters.", out);
  if (!scram::printable_nonce(*nonce))
    return fail_protocol(malformed, "Non-printable characters in the nonce.", out);
  client_nonce_ = std::string(*nonce);
  client_first_bare_ = std::string(bare);

  if (!options_.server_nonce.empty()) {
    if (!scram::printable_nonce(options_.server_nonce))
      return fail(Failure::internal, "invalid server nonce", out);
    server_nonce_ = options_.server_nonce;
  } else {
    std::array<unsigned char, scram::raw_nonce_bytes> raw{};
    if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1)
      return fail(Failure::internal, "could not generate a SCRAM nonce (RAND_bytes failed)", out);
    server_nonce_ = scram::base64_encode(raw.data(), raw.size());
  }
  server_first_ = "r=" + client_nonce_ + server_nonce_ + ",s=" + scram::base64_encode(verifier_.salt) +
                  ",i=" + std::to_string(verifier_.iterations);
  MessageWriter(out)
      .begin('R')
      .u32(static_cast<std::uint32_t>(AuthCode::sasl_continue))
      .raw(server_first_)
      .end();
  move_to(Phase::awaiting_client_final);
  return Step::reply;
}

ServerAuth::Step ServerAuth::on_client_final(std::string_view cf, std::string& out) {
  constexpr std::string_view malformed = "malformed SCRAM message";
  if (cf.size() > max_scram_message) return fail_protocol(malformed, "client-final-message too long", out);
  if (cf.find('\0') != std::string_view::npos)
    return fail_protocol(malformed, "The message contains a NUL byte.", out);

  // client-final-message = channel-binding "," nonce ["," extensions] "," proof
  const auto attrs = scram::split_attributes(cf);
  const auto binding = scram::attribute(attrs[0], 'c');
  if (!binding)
    return fail_protocol(malformed, "Expected attribute \"c\" (channel binding) in client-final-message.",
                         out);
  const auto nonce = attrs.size() >= 2 ? scram::attribute(attrs[1], 'r') : std::nullopt;
  if (!nonce)
    return fail_protocol(malformed, "Expected attribute \"r\" (the nonce) in client-final-message.", out);
  const auto proof_b64 = scram::attribute(attrs.back(), 'p');
  if (attrs.size() > 3 && proof_b64)
    return fail_protocol("client sent unsupported SCRAM extensions", {}, out, "0A000");
  if (attrs.size() != 3 || !proof_b64)
    return fail_protocol(malformed,
                         "Expected attribute \"p\" (the proof) at the end of client-final-message.", out);

  const std::string expected_binding =
      scram::base64_encode(gs2_header_ + (plus_selected_ ? options_.channel_binding : std::string()));
  if (*binding != expected_binding) {
    if (plus_selected_) return fail_protocol("SCRAM channel binding check failed", {}, out);
    return fail_protocol("unexpected SCRAM channel-binding attribute in client-final-message", {}, out);
  }
  if (nonce->size() != client_nonce_.size() + server_nonce_.size() || !nonce->starts_with(client_nonce_) ||
      !nonce->ends_with(server_nonce_))
    return fail_protocol("invalid SCRAM response", "Nonce does not match.", out);  // PostgreSQL's words
  auto proof = scram::base64_decode(*proof_b64);
  if (!proof || proof->size() != scram::key_size) {
    if (proof) scram::wipe(*proof);
    return fail_protocol(malformed, "Malformed proof in client-final-message.", out);
  }
  Cleanse wipe_proof(*proof);

  const std::string_view without_proof = cf.substr(0, attrs[0].size() + 1 + attrs[1].size());
  const std::string auth_message =
      client_first_bare_ + "," + server_first_ + "," + std::string(without_proof);

  Digest client_signature{}, recovered_stored{};
  ScramKey client_key;
  Cleanse w1(client_signature), w2(recovered_stored);
  if (!scram::hmac_sha256(verifier_.stored_key.bytes.data(), scram::key_size, auth_message, client_signature))
    return fail(Failure::internal, "SCRAM computation failed (HMAC-SHA-256)", out);
  for (std::size_t i = 0; i < scram::key_size; ++i)
    client_key.bytes[i] = static_cast<unsigned char>((*proof)[i]) ^ client_signature[i];
  if (!scram::sha256(client_key.bytes, recovered_stored))
    return fail(Failure::internal, "SCRAM computation failed (SHA-256)", out);
  const bool match =
      CRYPTO_memcmp(recovered_stored.data(), verifier_.stored_key.bytes.data(), scram::key_size) == 0;
  if (!match || !doomed_.empty())
    return fail_password("password does not match (the SCRAM proof is wrong)", out);

  Digest server_signature{};
  if (!scram::hmac_sha256(verifier_.server_key.bytes.data(), scram::key_size, auth_message, server_signature))
    return fail(Failure::internal, "SCRAM computation failed (HMAC-SHA-256)", out);
  const std::string server_final =
      "v=" + scram::base64_encode(server_signature.data(), server_signature.size());
  MessageWriter(out).begin('R').u32(static_cast<std::uint32_t>(AuthCode::sasl_final)).raw(server_final).end();
  append_authentication_ok(out);
  client_key_ = client_key;
  move_to(Phase::done);
  return Step::done;
}

}  // namespace pgshift::protocol
