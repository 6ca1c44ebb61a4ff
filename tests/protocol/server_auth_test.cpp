// ServerAuth and Secret: stored-secret parsing (SCRAM verifiers, MD5 hashes, plaintext),
// RFC 7677's SCRAM-SHA-256 example from the server's side, round trips against ClientAuth
// (SCRAM, MD5, cleartext), wrong passwords, every check of the client's SCRAM messages
// (channel binding, nonces, proofs, order, sizes), doomed and mock exchanges,
// tls-server-end-point channel binding data, and SCRAM pass-through: the ClientKey
// ServerAuth recovers lets ClientAuth log in to a second server with the same verifier.
// Expected values were computed independently with Python's hashlib/hmac.
#include "protocol/server_auth.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/client_auth.hpp"
#include "protocol/messages.hpp"
#include "test_util.hpp"

namespace pgshift::protocol {
namespace {

using namespace std::string_literals;
using test::be32;
using test::typed;
using Step = ServerAuth::Step;
using Failure = ServerAuth::Failure;

// RFC 7677 section 3.
constexpr std::string_view kPassword = "pencil";
constexpr std::string_view kClientNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const std::string kSalt = scram::base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==").value();
const std::string kRfcVerifier =
    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
const std::string kRfcClientKey = "pg/JI9Z+hkSpLRa5btpe9GVrDHJcSEN0viVTVXaZbos=";
const std::string kRfcClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const std::string kRfcServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const std::string kRfcClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+"
    "Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const std::string kRfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
// The same with PostgreSQL's empty user name ("n=,").
const std::string kPgClientFirst = "n,,n=,r=rOprNGfwEbeRWgbNEkqO";
const std::string kPgClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=qvT2SWdEH5Q06albL+"
    "hjSYuUhCG7VndFyzIb7CK4n9k=";
const std::string kPgServerFinal = "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=";
const std::string kCombinedNonce = std::string(kClientNonce) + std::string(kServerNonce);

// ---- helpers ----

Secret parse_secret(std::string_view text) {
  std::string error;
  auto s = Secret::parse(text, error);
  EXPECT_TRUE(s) << error;
  return s ? std::move(*s) : Secret::mock("parse failed");
}

Secret rfc_secret() {
  std::string error;
  auto s = Secret::from_password(kPassword, kSalt, 4096, error);
  EXPECT_TRUE(s) << error;
  return std::move(*s);
}

bool parses(std::string_view text) {
  std::string error;
  return Secret::parse(text, error).has_value();
}

std::string parse_error(std::string_view text) {
  std::string error;
  EXPECT_FALSE(Secret::parse(text, error)) << text;
  return error;
}

struct Message {
  char type = 0;
  std::string body;
};

// The backend messages in `out`, which must be whole.
std::vector<Message> messages(std::string_view out) {
  std::vector<Message> list;
  while (!out.empty()) {
    const ParseResult r = parse_frame(out, Direction::backend, {});
    EXPECT_EQ(r.status, ParseStatus::complete) << test::hex(out);
    if (r.status != ParseStatus::complete) break;
    list.push_back({r.frame.type, std::string(r.frame.body)});
    out.remove_prefix(r.frame.bytes.size());
  }
  return list;
}

// An Authentication message body: code + data.
std::string auth(std::uint32_t code, std::string_view data = {}) { return be32(code) + std::string(data); }

// Feeds `bytes` (one whole frontend message) to the server.
Step feed(ServerAuth& server, const std::string& bytes, std::string& out) {
  const Frame f{bytes[0], std::string_view(bytes).substr(header_size), bytes};
  return server.on_message(f, out);
}

Step feed(ServerAuth& server, const std::string& bytes) {
  std::string out;
  return feed(server, bytes, out);
}

std::string sasl_initial(std::string_view mechanism, std::string_view data) {
  return typed(
      'p', std::string(mechanism) + '\0' + be32(static_cast<std::uint32_t>(data.size())) + std::string(data));
}
std::string sasl_initial(std::string_view data) { return sasl_initial("SCRAM-SHA-256", data); }
std::string sasl_response(std::string_view data) { return typed('p', data); }
std::string password_message(std::string_view password) { return typed('p', std::string(password) + '\0'); }

ServerAuth rfc_server(ServerAuth::Options options = {}) {
  options.server_nonce = std::string(kServerNonce);
  return ServerAuth("user", rfc_secret(), AuthMethod::scram_sha_256, std::move(options));
}

// Starts a fixed-nonce SCRAM server and feeds it `client_first`.
Step after_client_first(ServerAuth& server, std::string_view client_first, std::string& out,
                        std::string_view mechanism = "SCRAM-SHA-256") {
  std::string first;
  EXPECT_EQ(server.start(first), Step::reply);
  return feed(server, sasl_initial(mechanism, client_first), out);
}

// The ErrorResponse in `out` (the last message).
struct ErrorSeen {
  std::string severity, sqlstate, message;
};
ErrorSeen error_in(const std::string& out) {
  const auto list = messages(out);
  if (list.empty() || list.back().type != 'E') {
    ADD_FAILURE() << "no ErrorResponse in " << test::hex(out);
    return {};
  }
  const std::string bytes = typed('E', list.back().body);
  ErrorFieldsView e;
  EXPECT_TRUE(e.parse({'E', std::string_view(bytes).substr(header_size), bytes}));
  return {std::string(e.severity), std::string(e.sqlstate.value_or("")), std::string(e.message)};
}

void expect_wrong_password(const ServerAuth& server, const std::string& out, std::string_view user = "user") {
  EXPECT_TRUE(server.is_failed());
  EXPECT_FALSE(server.is_done());
  EXPECT_EQ(server.failure(), Failure::wrong_password) << server.error();
  EXPECT_FALSE(server.client_key());
  const ErrorSeen e = error_in(out);
  EXPECT_EQ(e.severity, "FATAL");
  EXPECT_EQ(e.sqlstate, "28P01");
  EXPECT_EQ(e.message, "password authentication failed for user \"" + std::string(user) + "\"");
  EXPECT_EQ(messages(out).size(), 1u);  // no SASLFinal, no AuthenticationOk
}

void expect_violation(const ServerAuth& server, const std::string& out, std::string_view error_contains,
                      std::string_view sqlstate = "08P01") {
  EXPECT_TRUE(server.is_failed());
  EXPECT_EQ(server.failure(), Failure::protocol_violation) << server.error();
  EXPECT_NE(server.error().find(error_contains), std::string::npos) << server.error();
  EXPECT_EQ(error_in(out).sqlstate, sqlstate) << server.error();
  EXPECT_EQ(messages(out).size(), 1u);
  EXPECT_FALSE(server.client_key());
}

// Runs a whole exchange between `server` and `client`, passing messages both ways.
struct Exchange {
  Step server = Step::reply;
  ClientAuth::Step client = ClientAuth::Step::reply;
  std::string codes;                         // Authentication codes the server sent, e.g. "10,11,12,0"
  std::string last_server_out;               // the server's final output (error or SASLFinal + Ok)
  std::vector<std::string> client_messages;  // what the client sent
};

Exchange run(ServerAuth& server, ClientAuth& client) {
  Exchange x;
  std::string out;
  x.server = server.start(out);
  for (int round = 0; round < 10; ++round) {
    x.last_server_out = out;
    std::string reply;
    for (const Message& m : messages(out)) {
      if (m.type == 'R') {
        if (!x.codes.empty()) x.codes += ",";
        x.codes += std::to_string(read_u32(m.body.data()));
      }
      const std::string bytes = typed(m.type, m.body);
      x.client = client.on_message({m.type, std::string_view(bytes).substr(header_size), bytes}, reply);
    }
    if (x.server != Step::reply || reply.empty()) break;
    x.client_messages.push_back(reply);
    out.clear();
    x.server = feed(server, reply, out);
  }
  return x;
}

Exchange login(ServerAuth& server, std::string_view password, ClientAuth::Options options = {}) {
  ClientAuth client("user", std::string(password), std::move(options));
  return run(server, client);
}

void expect_success(const Exchange& x, const ServerAuth& server, std::string_view codes) {
  EXPECT_EQ(x.server, Step::done) << server.error();
  EXPECT_EQ(x.client, ClientAuth::Step::done);
  EXPECT_TRUE(server.is_done());
  EXPECT_TRUE(server.error().empty()) << server.error();
  EXPECT_EQ(server.failure(), Failure::none);
  EXPECT_EQ(x.codes, codes);
}

// ClientKey, the proof and the channel-binding field for a hand-built client-final.
std::string client_key_of(std::string_view password, std::string_view salt, std::uint32_t iterations) {
  scram::Digest salted{}, key{};
  EXPECT_TRUE(scram::salted_password(password, salt, iterations, salted));
  EXPECT_TRUE(scram::hmac_sha256(salted.data(), salted.size(), "Client Key", key));
  return std::string(reinterpret_cast<const char*>(key.data()), key.size());
}

std::string proof_for(std::string_view client_key, std::string_view auth_message) {
  scram::Digest key{}, stored{}, signature{};
  std::copy(client_key.begin(), client_key.end(), key.begin());
  EXPECT_TRUE(scram::sha256(key, stored));
  EXPECT_TRUE(scram::hmac_sha256(stored.data(), stored.size(), auth_message, signature));
  std::string proof(32, '\0');
  for (std::size_t i = 0; i < proof.size(); ++i) proof[i] = static_cast<char>(key[i] ^ signature[i]);
  return scram::base64_encode(proof);
}

// A correct client-final for the RFC password, given the client-first-message-bare, the
// server-first-message and the channel-binding field.
std::string client_final_for(std::string_view bare, std::string_view server_first, std::string_view c) {
  const std::string nonce =
      std::string(scram::attribute(scram::split_attributes(server_first)[0], 'r').value());
  const std::string without_proof = "c=" + std::string(c) + ",r=" + nonce;
  const std::string auth_message = std::string(bare) + "," + std::string(server_first) + "," + without_proof;
  return without_proof + ",p=" + proof_for(client_key_of(kPassword, kSalt, 4096), auth_message);
}

std::string server_first_in(const std::string& out) {
  const auto list = messages(out);
  EXPECT_EQ(list.size(), 1u);
  if (list.empty()) return {};
  EXPECT_EQ(list[0].type, 'R');
  EXPECT_EQ(read_u32(list[0].body.data()), 11u);
  return list[0].body.substr(4);
}

// ---- Secret ----

TEST(Secret, ParsesScramVerifier) {
  const Secret s = parse_secret(kRfcVerifier);
  EXPECT_EQ(s.kind(), Secret::Kind::scram_sha_256);
  EXPECT_FALSE(s.is_mock());
  ASSERT_TRUE(s.scram());
  EXPECT_EQ(s.scram()->iterations, 4096u);
  EXPECT_EQ(s.scram()->salt, kSalt);
  EXPECT_EQ(s.scram()->to_text(), kRfcVerifier);
  EXPECT_FALSE(s.md5_hash("user"));
  EXPECT_TRUE(s.plaintext().empty());
}

TEST(Secret, DerivedVerifierMatchesRfc7677) {
  const Secret s = rfc_secret();
  EXPECT_EQ(s.kind(), Secret::Kind::plaintext);
  ASSERT_TRUE(s.scram());
  EXPECT_EQ(s.scram()->to_text(), kRfcVerifier);
  EXPECT_EQ(s.plaintext(), kPassword);
}

TEST(Secret, PlaintextGetsRandomSaltAnd4096Iterations) {
  const Secret a = parse_secret("pencil");
  const Secret b = parse_secret("pencil");
  EXPECT_EQ(a.kind(), Secret::Kind::plaintext);
  ASSERT_TRUE(a.scram() && b.scram());
  EXPECT_EQ(a.scram()->iterations, 4096u);
  EXPECT_EQ(a.scram()->salt.size(), 16u);
  EXPECT_NE(a.scram()->salt, b.scram()->salt);
  auto expected = ScramVerifier::derive(kPassword, a.scram()->salt, 4096);
  ASSERT_TRUE(expected);
  EXPECT_EQ(a.scram()->to_text(), expected->to_text());
}

TEST(Secret, Md5HashStoredOrComputed) {
  const Secret stored = parse_secret("md54a0a68b43b6cd5cf266fa02f196e2371");
  EXPECT_EQ(stored.kind(), Secret::Kind::md5);
  EXPECT_FALSE(stored.scram());
  EXPECT_EQ(stored.md5_hash("alice"), "md54a0a68b43b6cd5cf266fa02f196e2371");
  const Secret plain = parse_secret("secret");
  EXPECT_EQ(plain.md5_hash("alice"), "md54a0a68b43b6cd5cf266fa02f196e2371");  // md5("secret" "alice")
  EXPECT_EQ(plain.md5_hash("user"), "md520eb1b22a92b5c573dc1eb4331fc49ee");
}

TEST(Secret, MalformedVerifiersAreRejectedWithAReason) {
  const std::string salt_keys =
      ":W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
      "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
  const std::string stored = "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=";
  const std::string server = "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
  const std::string p = "SCRAM-SHA-256$";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {p, "expected <iterations>"},
      {p + "4096:W22ZaJ0SNY7soEsUEjb6gQ==", "expected <iterations>"},
      {p + "4096:W22ZaJ0SNY7soEsUEjb6gQ==$" + stored, "expected <iterations>"},
      {p + "4096W22ZaJ0SNY7soEsUEjb6gQ==$" + stored + ":" + server, "expected <iterations>"},
      {p + "0" + salt_keys, "iteration count"},
      {p + "10000001" + salt_keys, "iteration count"},
      {p + "99999999999" + salt_keys, "iteration count"},
      {p + "-1" + salt_keys, "iteration count"},
      {p + "+4096" + salt_keys, "iteration count"},
      {p + "04096" + salt_keys, "iteration count"},
      {p + " 4096" + salt_keys, "iteration count"},
      {p + salt_keys, "iteration count"},
      {p + "4096:$" + stored + ":" + server, "salt"},
      {p + "4096:W22ZaJ0SNY7soEsUEjb6gQ=$" + stored + ":" + server, "salt"},
      {p + "4096:W22ZaJ0SNY7soEsUEjb6gR==$" + stored + ":" + server, "salt"},  // unused bits set
      {p + "4096:W22ZaJ0SNY7so EsUEjb6gQ==$" + stored + ":" + server, "salt"},
      {p + "4096:" + std::string(1368, 'A') + "$" + stored + ":" + server, "salt"},  // 1026 bytes
      {p + "4096:W22ZaJ0SNY7soEsUEjb6gQ==$" + stored.substr(0, 40) + ":" + server, "StoredKey"},
      {p + "4096:W22ZaJ0SNY7soEsUEjb6gQ==$" + scram::base64_encode(std::string(31, 'k')) + ":" + server,
       "StoredKey"},
      {p + "4096:W22ZaJ0SNY7soEsUEjb6gQ==$" + scram::base64_encode(std::string(33, 'k')) + ":" + server,
       "StoredKey"},
      {p + "4096:W22ZaJ0SNY7soEsUEjb6gQ==$" + stored + ":" + server.substr(1), "ServerKey"},
      {p + "4096:W22ZaJ0SNY7soEsUEjb6gQ==$" + stored + ":" + server + "\n", "ServerKey"},
      {p + "4096:W22ZaJ0SNY7soEsUEjb6gQ==$" + stored + ":" + server + "$x", "ServerKey"},
      {p + "4096:W22ZaJ0SNY7soEsUEjb6gQ==$" + stored + ":" + server + ":" + server, "ServerKey"},
      {p + "4096:W22ZaJ0SNY7soEsUEjb6gQ==$" + stored + ":", "ServerKey"},
  };
  for (const auto& [text, reason] : cases) {
    SCOPED_TRACE(text);
    const std::string error = parse_error(text);
    EXPECT_NE(error.find(reason), std::string::npos) << error;
    EXPECT_EQ(error.find(stored), std::string::npos) << error;  // never quotes the secret
    EXPECT_EQ(error.find(server), std::string::npos) << error;
  }
  // The longest salt accepted: 1024 bytes.
  EXPECT_TRUE(
      parses(p + "4096:" + scram::base64_encode(std::string(1024, 's')) + "$" + stored + ":" + server));
  EXPECT_TRUE(parses(p + "10000000" + salt_keys));
  EXPECT_TRUE(parses(p + "1" + salt_keys));
}

TEST(Secret, MalformedMd5AndPlaintextEdgeCases) {
  EXPECT_NE(parse_error("md54A0A68B43B6CD5CF266FA02F196E2371").find("lower-case hex"), std::string::npos);
  EXPECT_NE(parse_error("md54a0a68b43b6cd5cf266fa02f196e237g").find("lower-case hex"), std::string::npos);
  EXPECT_NE(parse_error("").find("empty"), std::string::npos);
  EXPECT_NE(parse_error("pass\0word"s).find("NUL"), std::string::npos);
  EXPECT_NE(parse_error(std::string(1025, 'x')).find("longer than"), std::string::npos);
  EXPECT_EQ(parse_secret(std::string(1024, 'x')).kind(), Secret::Kind::plaintext);
  // Not 35 characters, or another prefix: a plaintext password.
  EXPECT_EQ(parse_secret("md5").kind(), Secret::Kind::plaintext);
  EXPECT_EQ(parse_secret("md54a0a68b43b6cd5cf266fa02f196e237").kind(), Secret::Kind::plaintext);
  EXPECT_EQ(parse_secret("md54a0a68b43b6cd5cf266fa02f196e23711").kind(), Secret::Kind::plaintext);
  EXPECT_EQ(parse_secret("SCRAM-SHA-256").kind(), Secret::Kind::plaintext);
  // from_password never reads a verifier.
  std::string error;
  auto literal = Secret::from_password(kRfcVerifier, error);
  ASSERT_TRUE(literal) << error;
  EXPECT_EQ(literal->kind(), Secret::Kind::plaintext);
  EXPECT_EQ(literal->plaintext(), kRfcVerifier);
  EXPECT_FALSE(Secret::from_password("pw", "", 4096, error));
  EXPECT_FALSE(Secret::from_password("pw", "salt", 0, error));
}

TEST(Secret, VerifyPassword) {
  const Secret scram = parse_secret(kRfcVerifier);
  EXPECT_TRUE(scram.verify_password("pencil", "anyone"));
  EXPECT_FALSE(scram.verify_password("pencil!", "anyone"));
  EXPECT_FALSE(scram.verify_password("", "anyone"));
  const Secret md5 = parse_secret("md54a0a68b43b6cd5cf266fa02f196e2371");
  EXPECT_TRUE(md5.verify_password("secret", "alice"));
  EXPECT_FALSE(md5.verify_password("secret", "bob"));
  EXPECT_FALSE(md5.verify_password("Secret", "alice"));
  const Secret plain = parse_secret("secret");
  EXPECT_TRUE(plain.verify_password("secret", "bob"));
  EXPECT_FALSE(plain.verify_password("secre", "bob"));
  EXPECT_FALSE(plain.verify_password("secret\0"s, "bob"));
  EXPECT_FALSE(Secret::mock("bob").verify_password("secret", "bob"));
}

TEST(Secret, MockSaltIsStablePerUser) {
  const Secret a = Secret::mock("ghost");
  const Secret b = Secret::mock("ghost");
  const Secret c = Secret::mock("phantom");
  EXPECT_TRUE(a.is_mock());
  EXPECT_EQ(a.kind(), Secret::Kind::scram_sha_256);
  ASSERT_TRUE(a.scram() && b.scram() && c.scram());
  EXPECT_EQ(a.scram()->salt, b.scram()->salt);
  EXPECT_NE(a.scram()->salt, c.scram()->salt);
  EXPECT_EQ(a.scram()->salt.size(), 16u);
  EXPECT_EQ(a.scram()->iterations, 4096u);
}

TEST(Secret, ChooseMethod) {
  const Secret scram = parse_secret(kRfcVerifier);
  const Secret md5 = parse_secret("md54a0a68b43b6cd5cf266fa02f196e2371");
  const Secret plain = parse_secret("secret");
  EXPECT_EQ(choose_method(scram), AuthMethod::scram_sha_256);
  EXPECT_EQ(choose_method(scram, true), AuthMethod::scram_sha_256);
  EXPECT_EQ(choose_method(md5), AuthMethod::md5);
  EXPECT_EQ(choose_method(md5, true), AuthMethod::md5);
  EXPECT_EQ(choose_method(plain), AuthMethod::scram_sha_256);
  EXPECT_EQ(choose_method(plain, true), AuthMethod::md5);
}

// ---- SCRAM: RFC 7677 from the server's side ----

TEST(ServerAuthScram, OffersScramSha256) {
  ServerAuth server = rfc_server();
  std::string out = "prefix";
  ASSERT_EQ(server.start(out), Step::reply);
  EXPECT_EQ(out, "prefix" + typed('R', auth(10, "SCRAM-SHA-256\0\0"s)));
}

TEST(ServerAuthScram, OffersPlusFirstWithChannelBinding) {
  ServerAuth server = rfc_server({.channel_binding = std::string(32, 'h')});
  std::string out;
  ASSERT_EQ(server.start(out), Step::reply);
  EXPECT_EQ(out, typed('R', auth(10, "SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"s)));
}

TEST(ServerAuthScram, Rfc7677Vector) {
  for (bool parsed : {false, true}) {
    SCOPED_TRACE(parsed ? "parsed verifier" : "derived from the password");
    ServerAuth server("user", parsed ? parse_secret(kRfcVerifier) : rfc_secret(), AuthMethod::scram_sha_256,
                      {.server_nonce = std::string(kServerNonce)});
    std::string out;
    ASSERT_EQ(after_client_first(server, kRfcClientFirst, out), Step::reply) << server.error();
    EXPECT_EQ(out, typed('R', auth(11, kRfcServerFirst)));
    EXPECT_FALSE(server.client_key());
    out.clear();
    ASSERT_EQ(feed(server, sasl_response(kRfcClientFinal), out), Step::done) << server.error();
    EXPECT_EQ(out, typed('R', auth(12, kRfcServerFinal)) + typed('R', auth(0)));
    EXPECT_TRUE(server.is_done());
    EXPECT_FALSE(server.channel_bound());
    const auto key = server.client_key();
    ASSERT_TRUE(key);
    EXPECT_EQ(scram::base64_encode(key->bytes.data(), key->bytes.size()), kRfcClientKey);
  }
}

TEST(ServerAuthScram, PostgresEmptyUserName) {
  ServerAuth server = rfc_server();
  std::string out;
  ASSERT_EQ(after_client_first(server, kPgClientFirst, out), Step::reply);
  EXPECT_EQ(out, typed('R', auth(11, kRfcServerFirst)));
  out.clear();
  ASSERT_EQ(feed(server, sasl_response(kPgClientFinal), out), Step::done) << server.error();
  EXPECT_EQ(out, typed('R', auth(12, kPgServerFinal)) + typed('R', auth(0)));
}

TEST(ServerAuthScram, NoInitialResponse) {
  // RFC 4422: the client may send the mechanism without data; an empty challenge follows.
  ServerAuth server = rfc_server();
  std::string out;
  ASSERT_EQ(server.start(out), Step::reply);
  out.clear();
  ASSERT_EQ(feed(server, typed('p', "SCRAM-SHA-256\0"s + be32(0xffffffff)), out), Step::reply)
      << server.error();
  EXPECT_EQ(out, typed('R', auth(11)));
  out.clear();
  ASSERT_EQ(feed(server, sasl_response(kPgClientFirst), out), Step::reply) << server.error();
  EXPECT_EQ(out, typed('R', auth(11, kRfcServerFirst)));
  out.clear();
  EXPECT_EQ(feed(server, sasl_response(kPgClientFinal), out), Step::done) << server.error();
}

TEST(ServerAuthScram, RandomServerNonce) {
  auto server_nonce = [] {
    ServerAuth server("user", rfc_secret(), AuthMethod::scram_sha_256);
    std::string out;
    EXPECT_EQ(after_client_first(server, kPgClientFirst, out), Step::reply);
    const std::string first = server_first_in(out);
    const std::string nonce(scram::attribute(scram::split_attributes(first)[0], 'r').value());
    EXPECT_TRUE(nonce.starts_with(kClientNonce));
    return nonce.substr(kClientNonce.size());
  };
  const std::string a = server_nonce();
  const std::string b = server_nonce();
  EXPECT_EQ(a.size(), 24u);  // 18 random bytes, base64
  EXPECT_TRUE(scram::base64_decode(a));
  EXPECT_NE(a, b);
}

// ---- round trips against ClientAuth ----

TEST(ServerAuthRoundTrip, ScramWithEveryScramCapableSecret) {
  for (const std::string& text : {kRfcVerifier, std::string(kPassword)}) {
    SCOPED_TRACE(text);
    ServerAuth server("user", parse_secret(text), AuthMethod::scram_sha_256);
    const Exchange x = login(server, kPassword);
    expect_success(x, server, "10,11,12,0");
    EXPECT_TRUE(server.client_key());
  }
}

TEST(ServerAuthRoundTrip, Md5) {
  for (const std::string& text : {"md520c46e3762c864548e296b33c3406aa9"s, std::string(kPassword)}) {
    SCOPED_TRACE(text);
    ServerAuth server("user", parse_secret(text), AuthMethod::md5);
    const Exchange x = login(server, kPassword);
    expect_success(x, server, "5,0");
    EXPECT_FALSE(server.client_key());
  }
}

TEST(ServerAuthRoundTrip, Md5WithFixedSaltSendsIt) {
  ServerAuth server("alice", parse_secret("secret"), AuthMethod::md5, {.md5_salt = "\x01\x02\x03\x04"});
  std::string out;
  ASSERT_EQ(server.start(out), Step::reply);
  EXPECT_EQ(out, typed('R', auth(5, "\x01\x02\x03\x04")));
  out.clear();
  // The value ClientAuth's known vector sends for alice/secret and this salt.
  EXPECT_EQ(feed(server, password_message("md598a0412b9c31436fc53776e863350083"), out), Step::done);
  EXPECT_EQ(out, typed('R', auth(0)));
}

TEST(ServerAuthRoundTrip, CleartextWithEveryKindOfSecret) {
  for (const std::string& text :
       {kRfcVerifier, "md520c46e3762c864548e296b33c3406aa9"s, std::string(kPassword)}) {
    SCOPED_TRACE(text);
    ServerAuth server("user", parse_secret(text), AuthMethod::cleartext);
    const Exchange x = login(server, kPassword);
    expect_success(x, server, "3,0");
    ASSERT_EQ(x.client_messages.size(), 1u);
    EXPECT_EQ(x.client_messages[0], password_message(kPassword));
    EXPECT_EQ(server.cleartext_password(), kPassword);  // pgshift may log in with it
  }
}

TEST(ServerAuthRoundTrip, NoCleartextPasswordKeptOtherwise) {
  for (AuthMethod method : {AuthMethod::scram_sha_256, AuthMethod::md5}) {
    ServerAuth server("user", parse_secret(kPassword), method);
    const Exchange x = login(server, kPassword);
    EXPECT_EQ(x.server, Step::done);
    EXPECT_TRUE(server.cleartext_password().empty());
  }
  ServerAuth wrong("user", parse_secret(kPassword), AuthMethod::cleartext);
  login(wrong, "pencil-wrong");
  EXPECT_TRUE(wrong.cleartext_password().empty());
}

TEST(ServerAuthRoundTrip, WrongPasswordForEveryMethod) {
  const std::vector<std::pair<AuthMethod, std::string>> cases = {
      {AuthMethod::scram_sha_256, "10,11"}, {AuthMethod::md5, "5"}, {AuthMethod::cleartext, "3"}};
  for (const auto& [method, codes] : cases) {
    SCOPED_TRACE(codes);
    ServerAuth server("user", parse_secret(kPassword), method);
    const Exchange x = login(server, "pencil-wrong");
    EXPECT_EQ(x.server, Step::failed);
    EXPECT_EQ(x.codes, codes);
    expect_wrong_password(server, x.last_server_out);
    EXPECT_EQ(server.error().find("pencil"), std::string::npos) << server.error();
    // ClientAuth reads the ErrorResponse and fails with it.
    EXPECT_EQ(x.client, ClientAuth::Step::failed);
  }
}

TEST(ServerAuthRoundTrip, ClientAuthReadsTheErrorResponse) {
  ServerAuth server("alice", parse_secret(kPassword), AuthMethod::scram_sha_256);
  ClientAuth client("alice", "wrong");
  const Exchange x = run(server, client);
  EXPECT_EQ(x.client, ClientAuth::Step::failed);
  EXPECT_NE(client.error().find("server error 28P01: password authentication failed for user \"alice\""),
            std::string::npos)
      << client.error();
}

// ---- SCRAM checks ----

TEST(ServerAuthScram, TamperedProofFails) {
  ServerAuth server = rfc_server();
  std::string out;
  ASSERT_EQ(after_client_first(server, kRfcClientFirst, out), Step::reply);
  std::string tampered = kRfcClientFinal;
  tampered[tampered.size() - 5] = tampered[tampered.size() - 5] == 'A' ? 'B' : 'A';
  out.clear();
  EXPECT_EQ(feed(server, sasl_response(tampered), out), Step::failed);
  expect_wrong_password(server, out);
  EXPECT_NE(server.error().find("proof"), std::string::npos);
}

TEST(ServerAuthScram, NonceMustBeClientNoncePlusServerNonce) {
  const std::string proof = ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
  for (const std::string& nonce :
       {std::string(kClientNonce), std::string(kServerNonce), kCombinedNonce + "x",
        kCombinedNonce.substr(0, kCombinedNonce.size() - 1), "X" + kCombinedNonce.substr(1),
        std::string(kServerNonce) + std::string(kClientNonce)}) {
    SCOPED_TRACE(nonce);
    ServerAuth server = rfc_server();
    std::string out;
    ASSERT_EQ(after_client_first(server, kRfcClientFirst, out), Step::reply);
    out.clear();
    EXPECT_EQ(feed(server, sasl_response("c=biws,r=" + nonce + proof), out), Step::failed);
    expect_violation(server, out, "Nonce does not match");
  }
}

TEST(ServerAuthScram, ReplayedClientFinalFromAnotherExchangeFails) {
  // Exchange A succeeds; its client-final replayed into exchange B (same client nonce,
  // fresh server nonce) must not.
  ServerAuth a("user", rfc_secret(), AuthMethod::scram_sha_256);
  const Exchange x = login(a, kPassword, {.client_nonce = std::string(kClientNonce)});
  expect_success(x, a, "10,11,12,0");
  ASSERT_EQ(x.client_messages.size(), 2u);

  ServerAuth b("user", rfc_secret(), AuthMethod::scram_sha_256);
  std::string out;
  ASSERT_EQ(b.start(out), Step::reply);
  ASSERT_EQ(feed(b, x.client_messages[0]), Step::reply);
  out.clear();
  EXPECT_EQ(feed(b, x.client_messages[1], out), Step::failed);
  expect_violation(b, out, "Nonce does not match");
  EXPECT_EQ(error_in(out).message, "invalid SCRAM response") << "PostgreSQL's message for it";
}

TEST(ServerAuthScram, UnofferedMechanismsAreRejected) {
  for (const std::string& mechanism :
       {"SCRAM-SHA-1"s, "SCRAM-SHA-256-PLUS"s, ""s, "scram-sha-256"s, "PLAIN"s}) {
    SCOPED_TRACE(mechanism);
    ServerAuth server = rfc_server();
    std::string out;
    EXPECT_EQ(after_client_first(server, kPgClientFirst, out, mechanism), Step::failed);
    expect_violation(server, out, "invalid SASL authentication mechanism");
  }
}

TEST(ServerAuthScram, YFlagIsAcceptedWhenPlusWasNotOffered) {
  // "y": the client could bind but thinks the server cannot; true here (no TLS).
  ServerAuth server = rfc_server();
  std::string out;
  ASSERT_EQ(after_client_first(server, "y,,n=,r=" + std::string(kClientNonce), out), Step::reply);
  const std::string server_first = server_first_in(out);
  out.clear();
  // The channel-binding field carries the gs2 header the client sent: base64("y,,").
  EXPECT_EQ(
      feed(server, sasl_response(client_final_for("n=,r=" + std::string(kClientNonce), server_first, "eSws")),
           out),
      Step::done)
      << server.error();
}

TEST(ServerAuthScram, YFlagIsADowngradeWhenPlusWasOffered) {
  ServerAuth server = rfc_server({.channel_binding = std::string(32, 'h')});
  std::string out;
  EXPECT_EQ(after_client_first(server, "y,,n=,r=" + std::string(kClientNonce), out), Step::failed);
  expect_violation(server, out, "SCRAM channel binding negotiation error");
}

TEST(ServerAuthScram, ChannelBindingFieldMustMatchTheGs2Header) {
  // Without PLUS: "n,," must come back as "biws", not "eSws" or anything else.
  for (const std::string& c : {"eSws"s, "cD10bHMtc2VydmVyLWVuZC1wb2ludCws"s, ""s, "biws="s}) {
    SCOPED_TRACE(c);
    ServerAuth server = rfc_server();
    std::string out;
    ASSERT_EQ(after_client_first(server, kPgClientFirst, out), Step::reply);
    const std::string server_first = server_first_in(out);
    out.clear();
    EXPECT_EQ(
        feed(server, sasl_response(client_final_for("n=,r=" + std::string(kClientNonce), server_first, c)),
             out),
        Step::failed);
    expect_violation(server, out, "unexpected SCRAM channel-binding attribute");
  }
}

struct PlusCase {
  std::string cb_data;  // what the client binds to
  bool ok;
};

TEST(ServerAuthScram, PlusWithChannelBinding) {
  const std::string server_cb(32, '\x5a');
  for (const PlusCase& pc : {PlusCase{server_cb, true}, PlusCase{std::string(32, '\x5b'), false},
                             PlusCase{server_cb.substr(1), false}, PlusCase{"", false}}) {
    SCOPED_TRACE(test::hex(pc.cb_data));
    ServerAuth server = rfc_server({.channel_binding = server_cb});
    std::string out;
    const std::string gs2 = "p=tls-server-end-point,,";
    const std::string bare = "n=,r=" + std::string(kClientNonce);
    ASSERT_EQ(after_client_first(server, gs2 + bare, out, "SCRAM-SHA-256-PLUS"), Step::reply)
        << server.error();
    const std::string server_first = server_first_in(out);
    out.clear();
    const Step step = feed(
        server, sasl_response(client_final_for(bare, server_first, scram::base64_encode(gs2 + pc.cb_data))),
        out);
    if (pc.ok) {
      EXPECT_EQ(step, Step::done) << server.error();
      EXPECT_TRUE(server.channel_bound());
      EXPECT_EQ(messages(out).size(), 2u);
    } else {
      EXPECT_EQ(step, Step::failed);
      expect_violation(server, out, "SCRAM channel binding check failed");
      EXPECT_FALSE(server.channel_bound());
    }
  }
}

TEST(ServerAuthScram, PlainMechanismStillWorksWhenPlusIsOffered) {
  ServerAuth server("user", rfc_secret(), AuthMethod::scram_sha_256,
                    {.channel_binding = std::string(32, 'h')});
  const Exchange x = login(server, kPassword);  // ClientAuth picks SCRAM-SHA-256 with "n,,"
  expect_success(x, server, "10,11,12,0");
  EXPECT_FALSE(server.channel_bound());
}

// Client-first-messages the server must refuse, per mechanism and offer.
struct BadFirst {
  std::string name;
  std::string mechanism;
  bool offer_plus;
  std::string client_first;
  std::string error;
  std::string sqlstate = "08P01";
};

std::string bad_first_name(const ::testing::TestParamInfo<BadFirst>& info) { return info.param.name; }

class ServerAuthBadClientFirst : public ::testing::TestWithParam<BadFirst> {};

TEST_P(ServerAuthBadClientFirst, FailsCleanly) {
  const BadFirst& c = GetParam();
  ServerAuth server = rfc_server({.channel_binding = c.offer_plus ? std::string(32, 'h') : std::string()});
  std::string out;
  EXPECT_EQ(after_client_first(server, c.client_first, out, c.mechanism), Step::failed);
  expect_violation(server, out, c.error, c.sqlstate);
  // Nothing more is accepted, and nothing more is sent.
  out.clear();
  EXPECT_EQ(feed(server, sasl_response(kPgClientFinal), out), Step::failed);
  EXPECT_TRUE(out.empty());
}

const std::string kBare = "n=,r=" + std::string(kClientNonce);
const std::string kPlus = "SCRAM-SHA-256-PLUS";
const std::string kPlain = "SCRAM-SHA-256";

INSTANTIATE_TEST_SUITE_P(
    , ServerAuthBadClientFirst,
    ::testing::Values(
        BadFirst{"Empty", kPlain, false, "", "The message is empty"},
        BadFirst{"TooLong", kPlain, false, "n,,n=" + std::string(2100, 'u') + ",r=abc", "too long"},
        BadFirst{"Nul", kPlain, false, "n,,n=,r=abc\0def"s, "NUL"},
        BadFirst{"UnknownFlag", kPlain, false, "x,," + kBare, "Unexpected channel-binding flag"},
        BadFirst{"NoCommaAfterFlag", kPlain, false, "n" + kBare, "Comma expected"},
        BadFirst{"OnlyFlag", kPlain, false, "n", "Comma expected"},
        BadFirst{"Authzid", kPlain, false, "n,a=admin," + kBare, "authorization identity", "0A000"},
        BadFirst{"GarbageBeforeBare", kPlain, false, "n,x," + kBare, "Unexpected attribute"},
        BadFirst{"MissingSecondComma", kPlain, false, "n," + kBare, "Unexpected attribute"},
        BadFirst{"PlusWithoutBinding", kPlus, true, "n,," + kBare, "does not include channel binding"},
        BadFirst{"PlusWithY", kPlus, true, "y,," + kBare, "negotiation error"},
        BadFirst{"PlainWithBinding", kPlain, true, "p=tls-server-end-point,," + kBare,
                 "without channel binding"},
        BadFirst{"PlainWithBindingNotOffered", kPlain, false, "p=tls-server-end-point,," + kBare,
                 "without channel binding"},
        BadFirst{"PlusNotOffered", kPlus, false, "p=tls-server-end-point,," + kBare, "invalid SASL"},
        BadFirst{"TlsUnique", kPlus, true, "p=tls-unique,," + kBare,
                 "unsupported SCRAM channel-binding type"},
        BadFirst{"EmptyBindingType", kPlus, true, "p=,," + kBare, "unsupported SCRAM channel-binding type"},
        BadFirst{"BindingFlagWithoutEquals", kPlus, true, "ptls-server-end-point,," + kBare, "Expected '='"},
        BadFirst{"MandatoryExtension", kPlain, false, "n,,m=ext," + kBare, "unsupported SCRAM extension",
                 "0A000"},
        BadFirst{"OptionalExtension", kPlain, false, "n,," + kBare + ",x=ext", "unsupported SCRAM extensions",
                 "0A000"},
        BadFirst{"MissingUser", kPlain, false, "n,,r=" + std::string(kClientNonce),
                 "Expected attribute \"n\""},
        BadFirst{"MissingNonce", kPlain, false, "n,,n=", "Expected attribute \"r\""},
        BadFirst{"NonceFirst", kPlain, false, "n,,r=abc,n=", "Expected attribute \"n\""},
        BadFirst{"EmptyNonce", kPlain, false, "n,,n=,r=", "The nonce must be"},
        BadFirst{"NonceTooLong", kPlain, false, "n,,n=,r=" + std::string(513, 'x'), "The nonce must be"},
        BadFirst{"NonceWithSpace", kPlain, false, "n,,n=,r=ab cd", "Non-printable"},
        BadFirst{"NonceWithControl", kPlain, false, "n,,n=,r=ab\x01", "Non-printable"},
        BadFirst{"NonceWithHighBit", kPlain, false, "n,,n=,r=ab\xc3\xa9", "Non-printable"}),
    bad_first_name);

TEST(ServerAuthScram, LongestNonceIsAccepted) {
  ServerAuth server = rfc_server();
  std::string out;
  EXPECT_EQ(after_client_first(server, "n,,n=,r=" + std::string(512, 'x'), out), Step::reply)
      << server.error();
}

// Client-final-messages the server must refuse (after kRfcClientFirst).
class ServerAuthBadClientFinal : public ::testing::TestWithParam<BadFirst> {};

TEST_P(ServerAuthBadClientFinal, FailsCleanly) {
  ServerAuth server = rfc_server();
  std::string out;
  ASSERT_EQ(after_client_first(server, kRfcClientFirst, out), Step::reply);
  out.clear();
  EXPECT_EQ(feed(server, sasl_response(GetParam().client_first), out), Step::failed);
  expect_violation(server, out, GetParam().error, GetParam().sqlstate);
}

const std::string kFinalNonce = "r=" + kCombinedNonce;
const std::string kProof = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";

INSTANTIATE_TEST_SUITE_P(
    , ServerAuthBadClientFinal,
    ::testing::Values(
        BadFirst{"Empty", "", false, "", "Expected attribute \"c\""},
        BadFirst{"TooLong", "", false, "c=biws," + kFinalNonce + ",p=" + std::string(2100, 'A'), "too long"},
        BadFirst{"Nul", "", false, "c=biws," + kFinalNonce + "\0,"s + kProof, "NUL"},
        BadFirst{"NonceFirst", "", false, kFinalNonce + ",c=biws," + kProof, "Expected attribute \"c\""},
        BadFirst{"ProofFirst", "", false, kProof + ",c=biws," + kFinalNonce, "Expected attribute \"c\""},
        BadFirst{"MissingNonce", "", false, "c=biws," + kProof, "Expected attribute \"r\""},
        BadFirst{"MissingProof", "", false, "c=biws," + kFinalNonce, "Expected attribute \"p\""},
        BadFirst{"Extension", "", false, "c=biws," + kFinalNonce + ",x=ext," + kProof,
                 "unsupported SCRAM extensions", "0A000"},
        BadFirst{"GarbageAfterProof", "", false, "c=biws," + kFinalNonce + "," + kProof + ",x=1",
                 "Expected attribute \"p\""},
        BadFirst{"ShortProof", "", false,
                 "c=biws," + kFinalNonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7An", "Malformed proof"},
        BadFirst{"LongProof", "", false,
                 "c=biws," + kFinalNonce + ",p=" + scram::base64_encode(std::string(33, 'p')),
                 "Malformed proof"},
        BadFirst{"ProofNotBase64", "", false,
                 "c=biws," + kFinalNonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ",
                 "Malformed proof"},
        BadFirst{
            "ProofNonCanonical", "", false,
            "c=biws," + kFinalNonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVR=", "Malformed proof"}),
    bad_first_name);

TEST(ServerAuthScram, MalformedSaslInitialResponse) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "invalid message format"},
      {"SCRAM-SHA-256", "invalid message format"},                                  // no NUL
      {"SCRAM-SHA-256\0"s, "invalid message format"},                               // no length
      {"SCRAM-SHA-256\0\0\0\0"s, "invalid message format"},                         // short length
      {"SCRAM-SHA-256\0"s + be32(100) + kPgClientFirst, "invalid message format"},  // length beyond the data
      {"SCRAM-SHA-256\0"s + be32(5) + kPgClientFirst, "invalid message format"},    // data beyond the length
      {"SCRAM-SHA-256\0"s + be32(0xffffffff) + "x", "invalid message format"},
      {"SCRAM-SHA-256\0"s + be32(0), "The message is empty"},
  };
  for (const auto& [body, error] : cases) {
    SCOPED_TRACE(test::hex(body));
    ServerAuth server = rfc_server();
    std::string out;
    ASSERT_EQ(server.start(out), Step::reply);
    out.clear();
    EXPECT_EQ(feed(server, typed('p', body), out), Step::failed);
    expect_violation(server, out, error);
  }
}

// ---- order and message types ----

TEST(ServerAuthOrder, OtherMessageTypesAreViolations) {
  for (AuthMethod method : {AuthMethod::scram_sha_256, AuthMethod::md5, AuthMethod::cleartext}) {
    ServerAuth server("user", rfc_secret(), method);
    std::string out;
    ASSERT_EQ(server.start(out), Step::reply);
    out.clear();
    EXPECT_EQ(feed(server, typed('Q', "SELECT 1\0"s), out), Step::failed);
    expect_violation(server, out,
                     method == AuthMethod::scram_sha_256 ? "expected SASL response, got message type 'Q'"
                                                         : "expected password response");
  }
}

TEST(ServerAuthOrder, TerminateMeansTheClientLeft) {
  ServerAuth server = rfc_server();
  std::string out;
  ASSERT_EQ(server.start(out), Step::reply);
  out.clear();
  EXPECT_EQ(feed(server, typed('X', ""), out), Step::failed);
  EXPECT_EQ(server.failure(), Failure::client_left);
  EXPECT_TRUE(out.empty());  // nobody to tell
}

TEST(ServerAuthOrder, MessageBeforeStartAndStartTwice) {
  {
    ServerAuth server = rfc_server();
    std::string out;
    EXPECT_EQ(feed(server, sasl_initial(kPgClientFirst), out), Step::failed);
    EXPECT_EQ(server.failure(), Failure::internal);
  }
  {
    ServerAuth server = rfc_server();
    std::string out;
    ASSERT_EQ(server.start(out), Step::reply);
    EXPECT_EQ(server.start(out), Step::failed);
    EXPECT_EQ(server.failure(), Failure::internal);
  }
}

TEST(ServerAuthOrder, NothingIsAcceptedAfterDoneOrFailed) {
  ServerAuth done = rfc_server();
  std::string out;
  ASSERT_EQ(after_client_first(done, kPgClientFirst, out), Step::reply);
  ASSERT_EQ(feed(done, sasl_response(kPgClientFinal)), Step::done);
  out.clear();
  EXPECT_EQ(feed(done, sasl_response(kPgClientFinal), out), Step::failed);
  EXPECT_TRUE(out.empty());
  EXPECT_TRUE(done.is_done());  // a stray call does not undo the login
  EXPECT_TRUE(done.client_key());

  ServerAuth failed = rfc_server();
  ASSERT_EQ(after_client_first(failed, "x", out), Step::failed);
  const std::string error = failed.error();
  out.clear();
  EXPECT_EQ(feed(failed, sasl_initial(kPgClientFirst), out), Step::failed);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(failed.error(), error);
}

TEST(ServerAuthOrder, SecondClientFirstIsTakenAsClientFinal) {
  // After server-first, a SASLInitialResponse is not a client-final-message.
  ServerAuth server = rfc_server();
  std::string out;
  ASSERT_EQ(after_client_first(server, kPgClientFirst, out), Step::reply);
  out.clear();
  EXPECT_EQ(feed(server, sasl_initial(kPgClientFirst), out), Step::failed);
  expect_violation(server, out, "malformed SCRAM message");
}

// ---- password messages ----

TEST(ServerAuthPassword, MalformedPasswordMessages) {
  for (AuthMethod method : {AuthMethod::md5, AuthMethod::cleartext}) {
    for (const std::string& body :
         {""s, "pencil"s, "pen\0cil\0"s, "pencil\0\0"s, std::string(1101, 'x') + '\0'}) {
      SCOPED_TRACE(test::hex(body.substr(0, 16)));
      ServerAuth server("user", rfc_secret(), method);
      std::string out;
      ASSERT_EQ(server.start(out), Step::reply);
      out.clear();
      EXPECT_EQ(feed(server, typed('p', body), out), Step::failed);
      expect_violation(server, out, "invalid password packet size");
    }
  }
}

TEST(ServerAuthPassword, EmptyPasswordFails) {
  for (AuthMethod method : {AuthMethod::md5, AuthMethod::cleartext}) {
    ServerAuth server("user", rfc_secret(), method);
    std::string out;
    ASSERT_EQ(server.start(out), Step::reply);
    out.clear();
    EXPECT_EQ(feed(server, password_message(""), out), Step::failed);
    expect_wrong_password(server, out);
    EXPECT_NE(server.error().find("empty password"), std::string::npos);
  }
}

TEST(ServerAuthPassword, Md5AnswerIsComparedExactly) {
  const std::string right = "md598a0412b9c31436fc53776e863350083";
  std::string upper = right;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const std::string& answer : {upper, right.substr(0, 34), right + "0", right.substr(3), "secret"s}) {
    SCOPED_TRACE(answer);
    ServerAuth server("alice", parse_secret("secret"), AuthMethod::md5, {.md5_salt = "\x01\x02\x03\x04"});
    std::string out;
    ASSERT_EQ(server.start(out), Step::reply);
    out.clear();
    EXPECT_EQ(feed(server, password_message(answer), out), Step::failed);
    expect_wrong_password(server, out, "alice");
  }
}

TEST(ServerAuthPassword, RandomMd5Salt) {
  auto salt = [] {
    ServerAuth server("user", rfc_secret(), AuthMethod::md5);
    std::string out;
    EXPECT_EQ(server.start(out), Step::reply);
    const auto list = messages(out);
    EXPECT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0].body.size(), 8u);
    return list[0].body.substr(4);
  };
  EXPECT_NE(salt(), salt());  // fails with probability 2^-32
}

TEST(ServerAuthPassword, CleartextRequest) {
  ServerAuth server("user", rfc_secret(), AuthMethod::cleartext);
  std::string out;
  ASSERT_EQ(server.start(out), Step::reply);
  EXPECT_EQ(out, typed('R', auth(3)));
  out.clear();
  EXPECT_EQ(feed(server, password_message("pencil!"), out), Step::failed);
  expect_wrong_password(server, out);
  EXPECT_EQ(server.error().find("pencil"), std::string::npos) << server.error();
}

// ---- doomed exchanges ----

TEST(ServerAuthDoomed, ScramWithAnMd5SecretFailsLikeAWrongPassword) {
  ServerAuth server("user", parse_secret("md520c46e3762c864548e296b33c3406aa9"), AuthMethod::scram_sha_256);
  const Exchange x = login(server, kPassword);
  EXPECT_EQ(x.codes, "10,11");  // the whole exchange runs
  expect_wrong_password(server, x.last_server_out);
  EXPECT_NE(server.error().find("MD5 hash"), std::string::npos) << server.error();
}

TEST(ServerAuthDoomed, Md5WithAScramSecretFailsLikeAWrongPassword) {
  ServerAuth server("user", parse_secret(kRfcVerifier), AuthMethod::md5);
  const Exchange x = login(server, kPassword);
  EXPECT_EQ(x.codes, "5");
  expect_wrong_password(server, x.last_server_out);
  EXPECT_NE(server.error().find("SCRAM verifier"), std::string::npos) << server.error();
}

TEST(ServerAuthDoomed, MockSecretForEveryMethod) {
  for (AuthMethod method : {AuthMethod::scram_sha_256, AuthMethod::md5, AuthMethod::cleartext}) {
    ServerAuth server("ghost", Secret::mock("ghost"), method);
    const Exchange x = login(server, kPassword);
    EXPECT_EQ(x.server, Step::failed);
    expect_wrong_password(server, x.last_server_out, "ghost");
    EXPECT_NE(server.error().find("mock"), std::string::npos) << server.error();
  }
}

TEST(ServerAuthDoomed, MockShowsTheSameSaltEachTime) {
  auto salt_shown = [] {
    ServerAuth server("ghost", Secret::mock("ghost"), AuthMethod::scram_sha_256);
    std::string out;
    EXPECT_EQ(after_client_first(server, kPgClientFirst, out), Step::reply);
    return std::string(scram::attribute(scram::split_attributes(server_first_in(out))[1], 's').value());
  };
  EXPECT_EQ(salt_shown(), salt_shown());
}

TEST(ServerAuth, UserNameWithNulCannotBreakTheErrorResponse) {
  ServerAuth server("us\0er"s, rfc_secret(), AuthMethod::cleartext);
  std::string out;
  ASSERT_EQ(server.start(out), Step::reply);
  out.clear();
  EXPECT_EQ(feed(server, password_message("wrong"), out), Step::failed);
  expect_wrong_password(server, out, "user");
}

// ---- SCRAM pass-through ----

TEST(ServerAuthPassThrough, RecoveredClientKeyLogsInToASecondServer) {
  const Secret secret = parse_secret(kPassword);
  ServerAuth front("user", secret, AuthMethod::scram_sha_256);
  expect_success(login(front, kPassword), front, "10,11,12,0");
  auto keys = front.client_keys();
  ASSERT_TRUE(keys);
  EXPECT_EQ(keys->verifier.to_text(), secret.scram()->to_text());

  ServerAuth back("user", secret, AuthMethod::scram_sha_256);
  ClientAuth client("user", *keys);
  expect_success(run(back, client), back, "10,11,12,0");
  ASSERT_TRUE(back.client_key());
  EXPECT_TRUE(back.client_key()->equals(keys->client_key));
}

TEST(ServerAuthPassThrough, AnotherVerifierForTheSamePasswordIsRefused) {
  ServerAuth front("user", parse_secret(kPassword), AuthMethod::scram_sha_256);
  expect_success(login(front, kPassword), front, "10,11,12,0");
  auto keys = front.client_keys();
  ASSERT_TRUE(keys);
  ServerAuth back("user", parse_secret(kPassword), AuthMethod::scram_sha_256);  // another random salt
  ClientAuth client("user", *keys);
  const Exchange x = run(back, client);
  EXPECT_EQ(x.client, ClientAuth::Step::failed);
  EXPECT_EQ(x.codes, "10,11");
  EXPECT_NE(client.error().find("salt"), std::string::npos) << client.error();
  EXPECT_FALSE(back.is_done());
}

TEST(ServerAuthPassThrough, RecoveredClientKeyIsTheRfcClientKey) {
  ServerAuth front("user", parse_secret(kRfcVerifier), AuthMethod::scram_sha_256);
  expect_success(login(front, kPassword), front, "10,11,12,0");
  const auto key = front.client_key();
  ASSERT_TRUE(key);
  EXPECT_EQ(scram::base64_encode(key->bytes.data(), key->bytes.size()), kRfcClientKey);
}

TEST(ServerAuthPassThrough, NoClientKeyWithoutScram) {
  ServerAuth server("user", parse_secret(kPassword), AuthMethod::cleartext);
  expect_success(login(server, kPassword), server, "3,0");
  EXPECT_FALSE(server.client_key());
  EXPECT_FALSE(server.client_keys());
}

// ---- tls-server-end-point ----

using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

X509Ptr self_signed(EVP_PKEY* key, const EVP_MD* md) {
  X509Ptr cert(X509_new(), &X509_free);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("pgshift-test"),
                             -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  EXPECT_GT(X509_sign(cert.get(), key, md), 0);
  return cert;
}

std::string der_of(X509* cert) {
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert, &der);
  EXPECT_GT(len, 0);
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}

std::string digest_of(std::string_view data, const EVP_MD* md) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EXPECT_EQ(EVP_Digest(data.data(), data.size(), out, &len, md, nullptr), 1);
  return std::string(reinterpret_cast<const char*>(out), len);
}

TEST(TlsServerEndPoint, HashesTheCertificateWithItsSignatureHash) {
  KeyPtr ec(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), &EVP_PKEY_free);
  KeyPtr rsa(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{1024}), &EVP_PKEY_free);
  ASSERT_TRUE(ec && rsa);
  struct Case {
    const char* name;
    EVP_PKEY* key;
    const EVP_MD* sign;
    const EVP_MD* expected;  // RFC 5929 4.1: MD5 and SHA-1 become SHA-256
  };
  const std::vector<Case> cases = {
      {"ecdsa-sha256", ec.get(), EVP_sha256(), EVP_sha256()},
      {"ecdsa-sha384", ec.get(), EVP_sha384(), EVP_sha384()},
      {"ecdsa-sha512", ec.get(), EVP_sha512(), EVP_sha512()},
      {"ecdsa-sha1", ec.get(), EVP_sha1(), EVP_sha256()},
      {"rsa-sha256", rsa.get(), EVP_sha256(), EVP_sha256()},
      {"rsa-sha1", rsa.get(), EVP_sha1(), EVP_sha256()},
      {"rsa-md5", rsa.get(), EVP_md5(), EVP_sha256()},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    X509Ptr cert = self_signed(c.key, c.sign);
    const std::string der = der_of(cert.get());
    std::string error;
    const auto binding = tls_server_end_point(cert.get(), error);
    ASSERT_TRUE(binding) << error;
    EXPECT_EQ(test::hex(*binding), test::hex(digest_of(der, c.expected)));
    const auto from_der = tls_server_end_point_der(der, error);
    ASSERT_TRUE(from_der) << error;
    EXPECT_EQ(*from_der, *binding);
  }
}

TEST(TlsServerEndPoint, UndefinedForEd25519AndBadInput) {
  KeyPtr ed(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"), &EVP_PKEY_free);
  ASSERT_TRUE(ed);
  X509Ptr cert = self_signed(ed.get(), nullptr);
  std::string error;
  EXPECT_FALSE(tls_server_end_point(cert.get(), error));
  EXPECT_NE(error.find("Ed25519"), std::string::npos) << error;
  EXPECT_FALSE(tls_server_end_point(nullptr, error));
  EXPECT_FALSE(tls_server_end_point_der("not a certificate", error));
  EXPECT_FALSE(tls_server_end_point_der("", error));
  KeyPtr ec(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), &EVP_PKEY_free);
  X509Ptr good = self_signed(ec.get(), EVP_sha256());
  EXPECT_FALSE(tls_server_end_point_der(der_of(good.get()) + "x", error));  // trailing bytes
}

}  // namespace
}  // namespace pgshift::protocol
