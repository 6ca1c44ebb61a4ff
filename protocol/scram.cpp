#include "protocol/scram.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>

#include "protocol/log_text.hpp"

namespace pgshift::protocol::scram {
namespace {

constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::size_t kMaxLoggedText = 512;

int base64_value(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

void wipe(std::string& s) noexcept {
  OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

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

bool hmac_sha256(const unsigned char* key, std::size_t key_len, std::string_view data, Digest& out) {
  unsigned int len = 0;
  return HMAC(EVP_sha256(), key, static_cast<int>(key_len),
              reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(),
              &len) != nullptr &&
         len == out.size();
}

bool sha256(const Digest& in, Digest& out) {
  unsigned int len = 0;
  return EVP_Digest(in.data(), in.size(), out.data(), &len, EVP_sha256(), nullptr) == 1 && len == out.size();
}

bool sha256(std::string_view in, Digest& out) {
  unsigned int len = 0;
  return EVP_Digest(in.data(), in.size(), out.data(), &len, EVP_sha256(), nullptr) == 1 && len == out.size();
}

bool salted_password(std::string_view password, std::string_view salt, std::uint32_t iterations,
                     Digest& out) {
  return iterations >= 1 && iterations <= max_iterations &&
         PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                           reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()),
                           static_cast<int>(iterations), EVP_sha256(), static_cast<int>(out.size()),
                           out.data()) == 1;
}

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
  OPENSSL_cleanse(md.data(), md.size());
  return hex;
}

bool printable_nonce(std::string_view s) noexcept {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x21 && c <= 0x7e && c != ','; });
}

bool has_control_characters(std::string_view s) noexcept {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

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
  if (v < 1 || v > max_iterations) return std::nullopt;
  return static_cast<std::uint32_t>(v);
}

// One escaping for every logged text (protocol/log_text.hpp): server and client
// text ends up in logs.
std::string printable_text(std::string_view s) { return log_text(s, kMaxLoggedText); }

}  // namespace pgshift::protocol::scram

namespace pgshift::protocol {
namespace {

constexpr std::string_view kVerifierPrefix = "SCRAM-SHA-256$";

bool decode_key(std::string_view b64, ScramKey& out) {
  auto raw = scram::base64_decode(b64);
  if (!raw || raw->size() != out.bytes.size()) {
    if (raw) scram::wipe(*raw);
    return false;
  }
  std::copy(raw->begin(), raw->end(), out.bytes.begin());
  scram::wipe(*raw);
  return true;
}

}  // namespace

std::optional<ScramVerifier> ScramVerifier::parse(std::string_view text, std::string& error) {
  if (!text.starts_with(kVerifierPrefix)) {
    error = "not a SCRAM-SHA-256 verifier (expected the prefix \"SCRAM-SHA-256$\")";
    return std::nullopt;
  }
  text.remove_prefix(kVerifierPrefix.size());
  const auto dollar = text.find('$');
  const std::string_view params = text.substr(0, dollar);
  const std::string_view keys =
      dollar == std::string_view::npos ? std::string_view() : text.substr(dollar + 1);
  const auto params_colon = params.find(':');
  const auto keys_colon = keys.find(':');
  if (dollar == std::string_view::npos || params_colon == std::string_view::npos ||
      keys_colon == std::string_view::npos) {
    error = "malformed SCRAM-SHA-256 verifier (expected <iterations>:<salt>$<StoredKey>:<ServerKey>)";
    return std::nullopt;
  }
  const std::string_view iterations_text = params.substr(0, params_colon);
  ScramVerifier v;
  const auto iterations = scram::parse_iterations(iterations_text);
  if (!iterations || iterations_text.front() == '0') {
    error = "SCRAM-SHA-256 verifier: the iteration count must be a decimal number in 1.." +
            std::to_string(scram::max_iterations);
    return std::nullopt;
  }
  v.iterations = *iterations;
  auto salt = scram::base64_decode(params.substr(params_colon + 1));
  if (!salt || salt->empty() || salt->size() > max_salt_size) {
    error = "SCRAM-SHA-256 verifier: the salt must be canonical base64 of 1.." +
            std::to_string(max_salt_size) + " bytes";
    return std::nullopt;
  }
  v.salt = std::move(*salt);
  if (!decode_key(keys.substr(0, keys_colon), v.stored_key)) {
    error = "SCRAM-SHA-256 verifier: the StoredKey must be canonical base64 of 32 bytes";
    return std::nullopt;
  }
  if (!decode_key(keys.substr(keys_colon + 1), v.server_key)) {
    error = "SCRAM-SHA-256 verifier: the ServerKey must be canonical base64 of 32 bytes";
    return std::nullopt;
  }
  return v;
}

std::optional<ScramVerifier> ScramVerifier::derive(std::string_view password, std::string_view salt,
                                                   std::uint32_t iterations) {
  if (salt.empty() || salt.size() > max_salt_size) return std::nullopt;
  scram::Digest salted{}, client_key{};
  scram::Cleanse wipe_salted(salted), wipe_client_key(client_key);
  ScramVerifier v;
  v.iterations = iterations;
  v.salt = std::string(salt);
  if (!scram::salted_password(password, salt, iterations, salted) ||
      !scram::hmac_sha256(salted.data(), salted.size(), "Client Key", client_key) ||
      !scram::sha256(client_key, v.stored_key.bytes) ||
      !scram::hmac_sha256(salted.data(), salted.size(), "Server Key", v.server_key.bytes))
    return std::nullopt;
  return v;
}

std::string ScramVerifier::to_text() const {
  return std::string(kVerifierPrefix) + std::to_string(iterations) + ":" + scram::base64_encode(salt) + "$" +
         scram::base64_encode(stored_key.bytes.data(), stored_key.bytes.size()) + ":" +
         scram::base64_encode(server_key.bytes.data(), server_key.bytes.size());
}

}  // namespace pgshift::protocol
