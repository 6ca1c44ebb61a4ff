#include "protocol/client_auth.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "protocol/builder.hpp"
#include "protocol/messages.hpp"
#include "protocol/scram.hpp"

namespace pgshift::protocol {
namespace {

using scram::Cleanse;
using scram::Digest;

constexpr std::string_view kGs2Header = "n,,";         // no channel binding, no authzid
constexpr std::string_view kGs2HeaderBase64 = "biws";  // base64("n,,")

}  // namespace

ClientAuth::ClientAuth(std::string user, std::string password, Options options)
    : user_(std::move(user)), password_(std::move(password)), options_(std::move(options)) {}

ClientAuth::ClientAuth(std::string user, ScramClientKeys keys, Options options)
    : user_(std::move(user)), options_(std::move(options)), keys_(std::move(keys)) {}

ClientAuth::ClientAuth(std::string user, Md5Hash hash, Options options)
    : user_(std::move(user)), options_(std::move(options)), md5_pass_through_(true) {
  if (hash.valid()) md5_hex_ = hash.text.substr(3);
}

ClientAuth::~ClientAuth() {
  wipe_secrets();
  OPENSSL_cleanse(password_.data(), password_.size());
}

void ClientAuth::wipe_secrets() noexcept {
  OPENSSL_cleanse(server_signature_.data(), server_signature_.size());
  keys_.reset();  // ScramKey wipes itself
  scram::wipe(md5_hex_);
}

// ---- Md5Hash, PassThrough ----

bool Md5Hash::valid() const noexcept {
  return text.size() == 35 && text.starts_with("md5") &&
         std::all_of(text.begin() + 3, text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

PassThrough PassThrough::scram(ScramClientKeys keys) {
  PassThrough p(Kind::scram_keys);
  p.keys_ = std::move(keys);
  return p;
}

PassThrough PassThrough::md5(Md5Hash hash) {
  PassThrough p(Kind::md5_hash);
  p.secret_ = hash.text;
  return p;
}

PassThrough PassThrough::password(std::string password) {
  PassThrough p(Kind::password);
  p.secret_ = std::move(password);
  return p;
}

PassThrough::~PassThrough() { scram::wipe(secret_); }

std::string_view PassThrough::describe() const noexcept {
  switch (kind_) {
    case Kind::scram_keys: return "SCRAM pass-through";
    case Kind::md5_hash: return "MD5 pass-through";
    case Kind::password: return "the client's password";
  }
  return "?";
}

std::unique_ptr<ClientAuth> PassThrough::client_auth(std::string user) const {
  switch (kind_) {
    case Kind::scram_keys: return std::make_unique<ClientAuth>(std::move(user), *keys_);
    case Kind::md5_hash: return std::make_unique<ClientAuth>(std::move(user), Md5Hash(secret_));
    case Kind::password: break;
  }
  return std::make_unique<ClientAuth>(std::move(user), secret_);
}

ClientAuth::Step ClientAuth::fail(std::string why) {
  // Belt and braces: server-provided text (an ErrorResponse, an e= attribute) could
  // echo the password (it travels in clear with cleartext authentication).
  if (!password_.empty()) {
    for (auto pos = why.find(password_); pos != std::string::npos; pos = why.find(password_, pos)) {
      why.replace(pos, password_.size(), "[password]");
      pos += 10;
    }
  }
  error_ = scram::printable_text(why);
  OPENSSL_cleanse(why.data(), why.size());
  state_ = State::failed;
  wipe_secrets();
  OPENSSL_cleanse(password_.data(), password_.size());
  password_.clear();
  return Step::failed;
}

ClientAuth::Step ClientAuth::on_message(const Frame& f, std::string& out) {
  if (state_ == State::failed) return Step::failed;
  if (state_ == State::done) return fail("authentication message received after AuthenticationOk");

  if (f.type == 'E') {
    ErrorFieldsView e;
    if (!e.parse(f)) return fail("malformed ErrorResponse during authentication");
    return fail("server error " + std::string(e.sqlstate.value_or("?????")) + ": " + std::string(e.message));
  }
  if (f.type != 'R')
    return fail(std::string("unexpected message type '") + f.type + "' during authentication");

  AuthenticationView v;
  if (!v.parse(f)) return fail("malformed authentication message");

  switch (static_cast<AuthCode>(v.code)) {
    case AuthCode::ok:
      if (state_ != State::start && state_ != State::password_sent && state_ != State::sasl_verified)
        return fail("AuthenticationOk before the SCRAM exchange completed (server not verified)");
      state_ = State::done;
      wipe_secrets();
      OPENSSL_cleanse(password_.data(), password_.size());
      password_.clear();
      return Step::done;

    case AuthCode::cleartext:
    case AuthCode::md5: {
      const bool md5 = v.code == static_cast<std::uint32_t>(AuthCode::md5);
      if (state_ != State::start)
        return fail(std::string("unexpected ") + (md5 ? "MD5" : "cleartext") + " password request");
      if (keys_)
        return fail(std::string("the server asks for ") + (md5 ? "an MD5" : "a cleartext") +
                    " password, but only SCRAM keys are known for this login (SCRAM pass-through)");
      if (md5_pass_through_ && !md5)
        return fail("the server asks for a cleartext password, but only an MD5 hash is known for this login "
                    "(MD5 pass-through)");
      if (md5_pass_through_ && md5_hex_.empty()) return fail("MD5 pass-through: not a valid MD5 hash");
      if (password_.find('\0') != std::string::npos) return fail("the password contains a NUL byte");
      if (!md5) {
        append_password(out, password_);
      } else {
        std::optional<std::string> inner = md5_hex_;
        if (!md5_pass_through_) {
          std::string inner_input = password_ + user_;
          Cleanse wipe_input(inner_input);
          inner = scram::md5_hex(inner_input);
        }
        if (!inner) return fail("MD5 is not available in this OpenSSL configuration");
        Cleanse wipe_inner(*inner);
        std::string outer_input = *inner + std::string(v.data);  // 4-byte salt
        Cleanse wipe_outer(outer_input);
        auto outer = scram::md5_hex(outer_input);
        if (!outer) return fail("MD5 is not available in this OpenSSL configuration");
        append_password(out, "md5" + *outer);
      }
      state_ = State::password_sent;
      return Step::reply;
    }

    case AuthCode::sasl:
      if (state_ != State::start) return fail("unexpected AuthenticationSASL");
      return on_sasl(v.data, out);
    case AuthCode::sasl_continue:
      if (state_ != State::sasl_first_sent)
        return fail(
            "unexpected AuthenticationSASLContinue (no SCRAM exchange awaiting server-first-message)");
      return on_sasl_continue(v.data, out);
    case AuthCode::sasl_final:
      if (state_ != State::sasl_final_sent)
        return fail("unexpected AuthenticationSASLFinal (client-final-message not sent)");
      return on_sasl_final(v.data);

    case AuthCode::kerberos_v5:
      return fail("unsupported authentication method: Kerberos V5");
    case AuthCode::gss:
    case AuthCode::gss_continue:
      return fail("unsupported authentication method: GSSAPI");
    case AuthCode::sspi:
      return fail("unsupported authentication method: SSPI");
  }
  return fail("unsupported authentication request code " + std::to_string(v.code));
}

ClientAuth::Step ClientAuth::on_sasl(std::string_view mechanisms, std::string& out) {
  Reader r(mechanisms);
  bool has_scram = false;
  bool has_scram_plus = false;
  std::string offered;
  for (;;) {
    std::string_view name;
    if (!r.cstring(name)) return fail("malformed SASL mechanism list");
    if (name.empty()) break;
    if (name == scram::mechanism) has_scram = true;
    if (name == scram::mechanism_plus) has_scram_plus = true;
    if (!offered.empty()) offered += ", ";
    offered += name;
  }
  if (!r.done()) return fail("malformed SASL mechanism list (data after the terminator)");
  if (!has_scram) {
    if (has_scram_plus)
      return fail("server offers only SCRAM-SHA-256-PLUS (channel binding), which is not supported");
    return fail("no supported SASL mechanism; server offers: " + (offered.empty() ? "none" : offered));
  }
  if (md5_pass_through_)
    return fail("the server asks for SCRAM, but only an MD5 hash is known for this login (MD5 pass-through)");
  if (!keys_ && password_.find('\0') != std::string::npos) return fail("the password contains a NUL byte");

  if (!options_.client_nonce.empty()) {
    if (!scram::printable_nonce(options_.client_nonce)) return fail("invalid client nonce");
    client_nonce_ = options_.client_nonce;
  } else {
    std::array<unsigned char, scram::raw_nonce_bytes> raw{};
    if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1)
      return fail("could not generate a SCRAM nonce (RAND_bytes failed)");
    client_nonce_ = scram::base64_encode(raw.data(), raw.size());
  }
  client_first_bare_ =
      "n=" + (options_.scram_username ? scram::saslname(user_) : std::string()) + ",r=" + client_nonce_;
  const std::string client_first = std::string(kGs2Header) + client_first_bare_;

  MessageWriter(out)
      .begin('p')
      .cstring(scram::mechanism)
      .u32(static_cast<std::uint32_t>(client_first.size()))
      .raw(client_first)
      .end();
  state_ = State::sasl_first_sent;
  return Step::reply;
}

ClientAuth::Step ClientAuth::on_sasl_continue(std::string_view server_first, std::string& out) {
  if (scram::has_control_characters(server_first))
    return fail("malformed SCRAM server-first-message (control characters)");
  if (server_first.starts_with("m="))
    return fail("SCRAM server-first-message requires an unsupported extension");
  const auto attrs = scram::split_attributes(server_first);
  if (attrs.size() < 3) return fail("malformed SCRAM server-first-message (expected r=, s= and i=)");
  const auto nonce = scram::attribute(attrs[0], 'r');
  const auto salt_b64 = scram::attribute(attrs[1], 's');
  const auto iter_text = scram::attribute(attrs[2], 'i');
  if (!nonce) return fail("malformed SCRAM server-first-message (missing nonce r=)");
  if (!salt_b64) return fail("malformed SCRAM server-first-message (missing salt s=)");
  if (!iter_text) return fail("malformed SCRAM server-first-message (missing iteration count i=)");

  if (nonce->size() > max_server_nonce) return fail("SCRAM server nonce too long");
  if (nonce->size() <= client_nonce_.size() || !nonce->starts_with(client_nonce_))
    return fail("SCRAM server nonce does not extend the client nonce");
  if (!scram::printable_nonce(*nonce)) return fail("SCRAM server nonce has invalid characters");

  auto salt = scram::base64_decode(*salt_b64);
  if (!salt || salt->empty()) return fail("SCRAM salt is not valid base64");
  const auto iterations = scram::parse_iterations(*iter_text);
  if (!iterations)
    return fail("SCRAM iteration count invalid or out of range (1.." + std::to_string(max_iterations) + ")");

  Digest client_key{}, stored_key{}, client_signature{}, proof{}, server_key{};
  Cleanse w1(client_key), w2(stored_key), w3(client_signature), w4(proof), w5(server_key);
  if (keys_) {
    // Pass-through: the keys fit only the verifier they came with.
    if (*salt != keys_->verifier.salt || *iterations != keys_->verifier.iterations)
      return fail(
          "SCRAM pass-through: the server's salt and iteration count differ from the verifier's (the server "
          "stores another verifier for this user)");
    client_key = keys_->client_key.bytes;
    server_key = keys_->verifier.server_key.bytes;
  } else {
    Digest salted{};
    Cleanse w0(salted);
    if (!scram::salted_password(password_, *salt, *iterations, salted))
      return fail("SCRAM key derivation failed (PBKDF2)");
    if (!scram::hmac_sha256(salted.data(), salted.size(), "Client Key", client_key) ||
        !scram::hmac_sha256(salted.data(), salted.size(), "Server Key", server_key))
      return fail("SCRAM computation failed (HMAC-SHA-256)");
  }
  if (!scram::sha256(client_key, stored_key)) return fail("SCRAM computation failed (SHA-256)");
  if (keys_ &&
      CRYPTO_memcmp(stored_key.data(), keys_->verifier.stored_key.bytes.data(), stored_key.size()) != 0)
    return fail("SCRAM pass-through: the ClientKey does not match the verifier's StoredKey");

  const std::string client_final_without_proof =
      "c=" + std::string(kGs2HeaderBase64) + ",r=" + std::string(*nonce);
  const std::string auth_message =
      client_first_bare_ + "," + std::string(server_first) + "," + client_final_without_proof;

  if (!scram::hmac_sha256(stored_key.data(), stored_key.size(), auth_message, client_signature) ||
      !scram::hmac_sha256(server_key.data(), server_key.size(), auth_message, server_signature_))
    return fail("SCRAM computation failed (HMAC-SHA-256)");
  for (std::size_t i = 0; i < proof.size(); ++i) proof[i] = client_key[i] ^ client_signature[i];

  const std::string client_final =
      client_final_without_proof + ",p=" + scram::base64_encode(proof.data(), proof.size());
  MessageWriter(out).begin('p').raw(client_final).end();
  state_ = State::sasl_final_sent;
  return Step::reply;
}

ClientAuth::Step ClientAuth::on_sasl_final(std::string_view server_final) {
  const auto attrs = scram::split_attributes(server_final);
  if (auto e = scram::attribute(attrs[0], 'e'))
    return fail("SCRAM server reported an error: " + std::string(*e));
  const auto verifier = scram::attribute(attrs[0], 'v');
  if (!verifier) return fail("malformed SCRAM server-final-message (missing v=)");
  const auto signature = scram::base64_decode(*verifier);
  if (!signature) return fail("SCRAM server signature is not valid base64");
  if (signature->size() != server_signature_.size() ||
      CRYPTO_memcmp(signature->data(), server_signature_.data(), server_signature_.size()) != 0)
    return fail("SCRAM server signature does not match: the server did not prove it knows the password");
  wipe_secrets();
  state_ = State::sasl_verified;
  return Step::wait;
}

}  // namespace pgshift::protocol
