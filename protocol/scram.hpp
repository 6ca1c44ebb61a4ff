// Primitives shared by the client (ClientAuth) and the server (ServerAuth) sides of
// PostgreSQL authentication: the SCRAM-SHA-256 key and verifier types, strict base64, the
// SCRAM-SHA-256 hashes, MD5 hex, SCRAM attribute syntax (RFC 5802), and wiping of secret
// buffers. No I/O, no state.
#pragma once

#include <openssl/crypto.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgshift::protocol::scram {

inline constexpr std::string_view mechanism = "SCRAM-SHA-256";
inline constexpr std::string_view mechanism_plus = "SCRAM-SHA-256-PLUS";
inline constexpr std::string_view channel_binding_type = "tls-server-end-point";
inline constexpr std::size_t key_size = 32;         // SHA-256 output
inline constexpr std::size_t raw_nonce_bytes = 18;  // as PostgreSQL and libpq: 24 base64 characters
inline constexpr std::uint32_t max_iterations = 10'000'000;

using Digest = std::array<unsigned char, key_size>;

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

// Overwrites the string's bytes, then empties it.
void wipe(std::string& s) noexcept;

// ---- base64 (RFC 4648, standard alphabet, padded) ----
std::string base64_encode(const unsigned char* data, std::size_t size);
inline std::string base64_encode(std::string_view data) {
  return base64_encode(reinterpret_cast<const unsigned char*>(data.data()), data.size());
}
// Canonical padded base64 only: no whitespace, '=' only as final padding, unused bits zero.
std::optional<std::string> base64_decode(std::string_view in);

// ---- hashes; each returns false only if OpenSSL fails ----
bool hmac_sha256(const unsigned char* key, std::size_t key_size, std::string_view data, Digest& out);
bool sha256(const Digest& in, Digest& out);
bool sha256(std::string_view in, Digest& out);
// PBKDF2-HMAC-SHA-256 ("Hi" in RFC 5802).
bool salted_password(std::string_view password, std::string_view salt, std::uint32_t iterations, Digest& out);
// Lower-case hex MD5 of `data`; nullopt if the digest is unavailable (e.g. FIPS mode).
std::optional<std::string> md5_hex(std::string_view data);

// ---- SCRAM syntax ----
// RFC 5802 "printable": %x21-2B / %x2D-7E (no ',').
bool printable_nonce(std::string_view s) noexcept;
// True if `s` has a byte below 0x20 or 0x7f (NUL included).
bool has_control_characters(std::string_view s) noexcept;
// RFC 5802 saslname: ',' and '=' escaped.
std::string saslname(std::string_view user);
// Splits "a=1,b=2" into attributes.
std::vector<std::string_view> split_attributes(std::string_view s);
// The value of attribute `name` ("r=..." -> "..."), nullopt if `attr` is another one.
std::optional<std::string_view> attribute(std::string_view attr, char name);
// A decimal iteration count in 1..max_iterations.
std::optional<std::uint32_t> parse_iterations(std::string_view s);

// `s` cut to a loggable length and escaped for a log line (protocol::log_text).
std::string printable_text(std::string_view s);

}  // namespace pgshift::protocol::scram

namespace pgshift::protocol {

// A 32-byte SCRAM-SHA-256 key (ClientKey, StoredKey, ServerKey). Every copy wipes itself.
struct ScramKey {
  scram::Digest bytes{};

  ScramKey() = default;
  ScramKey(const ScramKey&) = default;
  ScramKey& operator=(const ScramKey&) = default;
  ~ScramKey() { OPENSSL_cleanse(bytes.data(), bytes.size()); }

  // Constant-time comparison (CRYPTO_memcmp).
  bool equals(const ScramKey& other) const noexcept {
    return CRYPTO_memcmp(bytes.data(), other.bytes.data(), bytes.size()) == 0;
  }
};

// A SCRAM-SHA-256 secret as PostgreSQL stores it in pg_authid.rolpassword:
// "SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>".
// It lets a server check a client's proof, and (with the ClientKey recovered from a proof)
// a client log in to another server that stores the same verifier.
struct ScramVerifier {
  static constexpr std::size_t max_salt_size = 1024;  // bytes, decoded

  std::uint32_t iterations = 0;  // 1..scram::max_iterations
  std::string salt;              // raw bytes, 1..max_salt_size
  ScramKey stored_key;           // H(ClientKey)
  ScramKey server_key;           // HMAC(SaltedPassword, "Server Key")

  ScramVerifier() = default;
  ScramVerifier(const ScramVerifier&) = default;
  ScramVerifier& operator=(const ScramVerifier&) = default;
  ~ScramVerifier() { OPENSSL_cleanse(salt.data(), salt.size()); }

  // Parses the rolpassword text, strictly: the exact layout above, iterations 1..10,000,000
  // in decimal without sign or leading zeros, canonical padded base64, a non-empty salt of at
  // most max_salt_size bytes, keys of exactly 32 bytes. nullopt and `error` (which never
  // quotes the text) when malformed.
  static std::optional<ScramVerifier> parse(std::string_view text, std::string& error);
  // Derives the verifier of `password` (raw bytes, no SASLprep) for `salt` and `iterations`.
  // nullopt if the parameters are out of range or OpenSSL fails.
  static std::optional<ScramVerifier> derive(std::string_view password, std::string_view salt,
                                             std::uint32_t iterations);
  // The rolpassword text.
  std::string to_text() const;
};

// What a SCRAM client needs instead of the password to log in to a server that stores
// `verifier`: the ClientKey (recovered by ServerAuth from a client's proof) and the
// verifier's salt, iteration count and ServerKey (to check the server's signature).
struct ScramClientKeys {
  ScramKey client_key;
  ScramVerifier verifier;
};

}  // namespace pgshift::protocol
