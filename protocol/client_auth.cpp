#include "protocol/client_auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "protocol/builder.hpp"
#include "protocol/log_text.hpp"
#include "protocol/messages.hpp"

namespace pgshift::protocol {
namespace {

constexpr std::string_view kScramMechanism = "SCRAM-SHA-256";
constexpr std::string_view kScramPlusMechanism = "SCRAM-SHA-256-PLUS";
constexpr std::string_view kGs2Header = "n,,";         // no channel binding, no authzid
constexpr std::string_view kGs2HeaderBase64 = "biws";  // base64("n,,")
constexpr std::size_t kRawNonceBytes = 18;
constexpr std::size_t kMaxErrorText = 512;

using Digest = std::array<unsigned char, 32>;

// Wipes a buffer when the scope ends, whatever way it ends.
template <class Buffer>
class Cleanse {
 public:
  explicit Cleanse(Buffer& b) noexcept : b_(b) {}
  ~Cleanse() { OPENSSL_cleanse(b_.data(), b_.size()); }
  Cleanse(const Cleanse&) = delete;
  Cleanse& operator=(const Cleanse&) = delete;

 private:
  Buffer& b_;
};

// ---- base64 (RFC 4648, standard alphabet, padded, strict) ----

constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(const unsigned char* data, std::size_t size) {
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    const std::uint32_t v = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8) | data[i + 2];
    out.push_back(kBase64Alphabet[(v >> 18) & 63]);
    out.push_back(kBase64Alphabet[(v >> 12) & 63]);
    out.push_back(kBase64Alphabet[(v >> 6) & 63]);
    out.push_back(kBase64Alphabet[v & 63]);
  }
  if (size - i == 1) {
    const std::uint32_t v = std::uint32_t{data[i]} << 16;
    out.push_back(kBase64Alphabet[(v >> 18) & 63]);
    out.push_back(kBase64Alphabet[(v >> 12) & 63]);
    out.append("==");
  } else if (size - i == 2) {
    const std::uint32_t v = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8);
    out.push_back(kBase64Alphabet[(v >> 18) & 63]);
    out.push_back(kBase64Alphabet[(v >> 12) & 63]);
    out.push_back(kBase64Alphabet[(v >> 6) & 63]);
    out.push_back('=');
  }
  return out;
}

int base64_value(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Canonical padded base64 only: no whitespace, '=' only as final padding, unused bits zero.
std::optional<std::string> base64_decode(std::string_view in) {
  if (in.size() % 4 != 0) return std::nullopt;
  std::size_t pad = 0;
  if (!in.empty() && in.back() == '=') pad = (in.size() >= 2 && in[in.size() - 2] == '=') ? 2 : 1;
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (std::size_t i = 0; i < in.size(); i += 4) {
    const bool last = i + 4 == in.size();
    std::uint32_t v = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      const char c = in[i + j];
      int d = 0;
      if (c == '=') {
        if (!last || j < 4 - pad) return std::nullopt;
      } else {
        d = base64_value(c);
        if (d < 0) return std::nullopt;
      }
      v = (v << 6) | static_cast<std::uint32_t>(d);
    }
    const std::size_t bytes = last ? 3 - pad : 3;
    if (bytes < 3 && (v & ((1u << (8 * (3 - bytes))) - 1)) != 0) return std::nullopt;
    for (std::size_t k = 0; k < bytes; ++k) out.push_back(static_cast<char>((v >> (16 - 8 * k)) & 0xff));
  }
  return out;
}

// ---- crypto ----

bool hmac_sha256(const unsigned char* key, std::size_t key_size, std::string_view data, Digest& out) {
  unsigned int len = 0;
  return HMAC(EVP_sha256(), key, static_cast<int>(key_size),
              reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(),
              &len) != nullptr &&
         len == out.size();
}

bool sha256(const Digest& in, Digest& out) {
  unsigned int len = 0;
  return EVP_Digest(in.data(), in.size(), out.data(), &len, EVP_sha256(), nullptr) == 1 && len == out.size();
}

// Lower-case hex MD5 of `data`; nullopt if the digest is unavailable (e.g. FIPS mode).
std::optional<std::string> md5_hex(std::string_view data) {
  std::array<unsigned char, 16> md{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md.data(), &len, EVP_md5(), nullptr) != 1 || len != md.size())
    return std::nullopt;
  static constexpr char digits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(32);
  for (unsigned char c : md) {
    hex.push_back(digits[c >> 4]);
    hex.push_back(digits[c & 15]);
  }
  return hex;
}

// ---- SCRAM syntax ----

// RFC 5802 "printable": %x21-2B / %x2D-7E (no ',').
bool printable_nonce(std::string_view s) noexcept {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x21 && c <= 0x7e && c != ','; });
}

// RFC 5802 saslname: ',' and '=' escaped.
std::string saslname(std::string_view user) {
  std::string out;
  for (char c : user) {
    if (c == ',') {
      out += "=2C";
    } else if (c == '=') {
      out += "=3D";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// Splits "a=1,b=2" into attributes.
std::vector<std::string_view> split_attributes(std::string_view s) {
  std::vector<std::string_view> out;
  for (;;) {
    const auto comma = s.find(',');
    out.push_back(s.substr(0, comma));
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

// The value of attribute `name` ("r=..." -> "..."), nullopt if `attr` is another one.
std::optional<std::string_view> attribute(std::string_view attr, char name) {
  if (attr.size() < 2 || attr[0] != name || attr[1] != '=') return std::nullopt;
  return attr.substr(2);
}

std::optional<std::uint32_t> parse_iterations(std::string_view s) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (v < 1 || v > ClientAuth::max_iterations) return std::nullopt;
  return static_cast<std::uint32_t>(v);
}

}  // namespace

ClientAuth::ClientAuth(std::string user, std::string password, Options options)
    : user_(std::move(user)), password_(std::move(password)), options_(std::move(options)) {}

ClientAuth::~ClientAuth() {
  wipe_secrets();
  OPENSSL_cleanse(password_.data(), password_.size());
}

void ClientAuth::wipe_secrets() noexcept {
  OPENSSL_cleanse(server_signature_.data(), server_signature_.size());
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
  error_ = log_text(why, kMaxErrorText);  // server text ends up in logs
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
      if (password_.find('\0') != std::string::npos) return fail("the password contains a NUL byte");
      if (!md5) {
        append_password(out, password_);
      } else {
        std::string inner_input = password_ + user_;
        Cleanse wipe_input(inner_input);
        auto inner = md5_hex(inner_input);
        if (!inner) return fail("MD5 is not available in this OpenSSL configuration");
        Cleanse wipe_inner(*inner);
        std::string outer_input = *inner + std::string(v.data);  // 4-byte salt
        Cleanse wipe_outer(outer_input);
        auto outer = md5_hex(outer_input);
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
  bool scram = false;
  bool scram_plus = false;
  std::string offered;
  for (;;) {
    std::string_view name;
    if (!r.cstring(name)) return fail("malformed SASL mechanism list");
    if (name.empty()) break;
    if (name == kScramMechanism) scram = true;
    if (name == kScramPlusMechanism) scram_plus = true;
    if (!offered.empty()) offered += ", ";
    offered += name;
  }
  if (!r.done()) return fail("malformed SASL mechanism list (data after the terminator)");
  if (!scram) {
    if (scram_plus)
      return fail("server offers only SCRAM-SHA-256-PLUS (channel binding), which is not supported");
    return fail("no supported SASL mechanism; server offers: " + (offered.empty() ? "none" : offered));
  }
  if (password_.find('\0') != std::string::npos) return fail("the password contains a NUL byte");

  if (!options_.client_nonce.empty()) {
    if (!printable_nonce(options_.client_nonce)) return fail("invalid client nonce");
    client_nonce_ = options_.client_nonce;
  } else {
    std::array<unsigned char, kRawNonceBytes> raw{};
    if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1)
      return fail("could not generate a SCRAM nonce (RAND_bytes failed)");
    client_nonce_ = base64_encode(raw.data(), raw.size());
  }
  client_first_bare_ =
      "n=" + (options_.scram_username ? saslname(user_) : std::string()) + ",r=" + client_nonce_;
  const std::string client_first = std::string(kGs2Header) + client_first_bare_;

  MessageWriter(out)
      .begin('p')
      .cstring(kScramMechanism)
      .u32(static_cast<std::uint32_t>(client_first.size()))
      .raw(client_first)
      .end();
  state_ = State::sasl_first_sent;
  return Step::reply;
}

ClientAuth::Step ClientAuth::on_sasl_continue(std::string_view server_first, std::string& out) {
  if (std::any_of(server_first.begin(), server_first.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f;
      }))
    return fail("malformed SCRAM server-first-message (control characters)");
  if (server_first.starts_with("m="))
    return fail("SCRAM server-first-message requires an unsupported extension");
  const auto attrs = split_attributes(server_first);
  if (attrs.size() < 3) return fail("malformed SCRAM server-first-message (expected r=, s= and i=)");
  const auto nonce = attribute(attrs[0], 'r');
  const auto salt_b64 = attribute(attrs[1], 's');
  const auto iter_text = attribute(attrs[2], 'i');
  if (!nonce) return fail("malformed SCRAM server-first-message (missing nonce r=)");
  if (!salt_b64) return fail("malformed SCRAM server-first-message (missing salt s=)");
  if (!iter_text) return fail("malformed SCRAM server-first-message (missing iteration count i=)");

  if (nonce->size() > max_server_nonce) return fail("SCRAM server nonce too long");
  if (nonce->size() <= client_nonce_.size() || !nonce->starts_with(client_nonce_))
    return fail("SCRAM server nonce does not extend the client nonce");
  if (!printable_nonce(*nonce)) return fail("SCRAM server nonce has invalid characters");

  auto salt = base64_decode(*salt_b64);
  if (!salt || salt->empty()) return fail("SCRAM salt is not valid base64");
  const auto iterations = parse_iterations(*iter_text);
  if (!iterations)
    return fail("SCRAM iteration count invalid or out of range (1.." + std::to_string(max_iterations) + ")");

  Digest salted{}, client_key{}, stored_key{}, client_signature{}, proof{}, server_key{};
  Cleanse w1(salted), w2(client_key), w3(stored_key), w4(client_signature), w5(proof), w6(server_key);

  if (PKCS5_PBKDF2_HMAC(password_.data(), static_cast<int>(password_.size()),
                        reinterpret_cast<const unsigned char*>(salt->data()), static_cast<int>(salt->size()),
                        static_cast<int>(*iterations), EVP_sha256(), static_cast<int>(salted.size()),
                        salted.data()) != 1)
    return fail("SCRAM key derivation failed (PBKDF2)");

  const std::string client_final_without_proof =
      "c=" + std::string(kGs2HeaderBase64) + ",r=" + std::string(*nonce);
  const std::string auth_message =
      client_first_bare_ + "," + std::string(server_first) + "," + client_final_without_proof;

  if (!hmac_sha256(salted.data(), salted.size(), "Client Key", client_key) ||
      !sha256(client_key, stored_key) ||
      !hmac_sha256(stored_key.data(), stored_key.size(), auth_message, client_signature) ||
      !hmac_sha256(salted.data(), salted.size(), "Server Key", server_key) ||
      !hmac_sha256(server_key.data(), server_key.size(), auth_message, server_signature_))
    return fail("SCRAM computation failed (HMAC/SHA-256)");
  for (std::size_t i = 0; i < proof.size(); ++i) proof[i] = client_key[i] ^ client_signature[i];

  const std::string client_final =
      client_final_without_proof + ",p=" + base64_encode(proof.data(), proof.size());
  MessageWriter(out).begin('p').raw(client_final).end();
  state_ = State::sasl_final_sent;
  return Step::reply;
}

ClientAuth::Step ClientAuth::on_sasl_final(std::string_view server_final) {
  const auto attrs = split_attributes(server_final);
  if (auto e = attribute(attrs[0], 'e')) return fail("SCRAM server reported an error: " + std::string(*e));
  const auto verifier = attribute(attrs[0], 'v');
  if (!verifier) return fail("malformed SCRAM server-final-message (missing v=)");
  const auto signature = base64_decode(*verifier);
  if (!signature) return fail("SCRAM server signature is not valid base64");
  if (signature->size() != server_signature_.size() ||
      CRYPTO_memcmp(signature->data(), server_signature_.data(), server_signature_.size()) != 0)
    return fail("SCRAM server signature does not match: the server did not prove it knows the password");
  wipe_secrets();
  state_ = State::sasl_verified;
  return Step::wait;
}

}  // namespace pgshift::protocol
