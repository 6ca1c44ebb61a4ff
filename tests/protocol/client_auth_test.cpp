// ClientAuth: the client side of trust, cleartext, MD5 and SCRAM-SHA-256 against
// known vectors (RFC 7677's example; an MD5 vector and the PostgreSQL "n=," SCRAM
// variant computed independently with Python's hashlib/hmac), SCRAM pass-through with a
// ClientKey and verifier instead of the password, and clean failure on every malformed or
// out-of-order server message.
#include "protocol/client_auth.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/messages.hpp"
#include "test_util.hpp"

namespace pgshift::protocol {
namespace {

using namespace std::string_literals;
using test::be32;
using test::typed;
using Step = ClientAuth::Step;

constexpr std::string_view kRfcNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kRfcServerNonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view kRfcSalt = "W22ZaJ0SNY7soEsUEjb6gQ==";
const std::string kRfcServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
// RFC 7677 section 3 ("n=user").
const std::string kRfcClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const std::string kRfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
// The same exchange as PostgreSQL does it ("n=," in client-first-message).
const std::string kPgClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k=";
const std::string kPgServerFinal = "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=";

constexpr std::string_view kPassword = "pencil";

// Feeds one 'R' message (code + data) and returns the step.
Step feed(ClientAuth& auth, std::uint32_t code, std::string_view data, std::string& out) {
  const std::string bytes = typed('R', be32(code) + std::string(data));
  const Frame f{'R', std::string_view(bytes).substr(header_size), bytes};
  return auth.on_message(f, out);
}

Step feed(ClientAuth& auth, std::uint32_t code, std::string_view data = {}) {
  std::string out;
  return feed(auth, code, data, out);
}

// A SASLInitialResponse for SCRAM-SHA-256 carrying `client_first`.
std::string sasl_initial(std::string_view client_first) {
  return typed('p', "SCRAM-SHA-256\0"s + be32(static_cast<std::uint32_t>(client_first.size())) +
                        std::string(client_first));
}

const std::string kScramOnly = "SCRAM-SHA-256\0\0"s;

ClientAuth rfc_client(bool with_username) {
  return ClientAuth("user", std::string(kPassword),
                    {.client_nonce = std::string(kRfcNonce), .scram_username = with_username});
}

// Drives a fixed-nonce client through SASL and SASLContinue with `server_first`.
Step after_server_first(ClientAuth& auth, std::string_view server_first, std::string& out) {
  std::string first;
  EXPECT_EQ(feed(auth, 10, kScramOnly, first), Step::reply);
  return feed(auth, 11, server_first, out);
}

void expect_failed_cleanly(const ClientAuth& auth, std::string_view why_contains) {
  EXPECT_TRUE(auth.is_failed());
  EXPECT_FALSE(auth.is_done());
  EXPECT_NE(auth.error().find(why_contains), std::string::npos) << auth.error();
  EXPECT_EQ(auth.error().find(kPassword), std::string::npos) << auth.error();
}

// ---- trust, cleartext, MD5 ----

TEST(ClientAuth, TrustIsDoneAtOnce) {
  ClientAuth auth("alice", "secret");
  std::string out;
  EXPECT_EQ(feed(auth, 0, {}, out), Step::done);
  EXPECT_TRUE(out.empty());
  EXPECT_TRUE(auth.is_done());
  EXPECT_TRUE(auth.error().empty());
}

TEST(ClientAuth, CleartextSendsPassword) {
  ClientAuth auth("alice", "secret");
  std::string out = "prefix";
  ASSERT_EQ(feed(auth, 3, {}, out), Step::reply);
  EXPECT_EQ(out, "prefix" + typed('p', "secret\0"s));  // appended, not replaced
  std::string none;
  EXPECT_EQ(feed(auth, 0, {}, none), Step::done);
  EXPECT_TRUE(none.empty());
}

TEST(ClientAuth, Md5KnownVector) {
  // "md5" + md5(hex(md5("secret" + "alice")) + salt), computed with Python's hashlib.
  ClientAuth auth("alice", "secret");
  std::string out;
  ASSERT_EQ(feed(auth, 5, "\x01\x02\x03\x04", out), Step::reply);
  EXPECT_EQ(out, typed('p', "md598a0412b9c31436fc53776e863350083\0"s));
  EXPECT_EQ(feed(auth, 0), Step::done);
}

// MD5 pass-through: the stored hash md5("secret" + "alice") gives the same answer as the password.
TEST(ClientAuthMd5Hash, AnswersLikeThePassword) {
  ClientAuth auth("alice", Md5Hash("md54a0a68b43b6cd5cf266fa02f196e2371"));
  std::string out;
  ASSERT_EQ(feed(auth, 5, "\x01\x02\x03\x04", out), Step::reply) << auth.error();
  EXPECT_EQ(out, typed('p', "md598a0412b9c31436fc53776e863350083\0"s));
  EXPECT_EQ(feed(auth, 0), Step::done);
}

TEST(ClientAuthMd5Hash, OtherRequestsAndBadHashesAreRefused) {
  for (std::uint32_t code : {3u, 10u}) {
    SCOPED_TRACE(code);
    ClientAuth auth("alice", Md5Hash("md54a0a68b43b6cd5cf266fa02f196e2371"));
    std::string out;
    EXPECT_EQ(feed(auth, code, code == 10 ? kScramOnly : std::string(), out), Step::failed);
    EXPECT_TRUE(out.empty());
    expect_failed_cleanly(auth, "only an MD5 hash is known");
  }
  for (const char* bad : {"md54A0A68B43B6CD5CF266FA02F196E2371", "4a0a68b43b6cd5cf266fa02f196e2371", "md5", ""}) {
    SCOPED_TRACE(bad);
    ClientAuth auth("alice", Md5Hash(bad));
    std::string out;
    EXPECT_EQ(feed(auth, 5, "\x01\x02\x03\x04", out), Step::failed);
    EXPECT_TRUE(out.empty());
    expect_failed_cleanly(auth, "not a valid MD5 hash");
  }
}

TEST(PassThrough, MakesTheMatchingClientAuth) {
  const PassThrough md5 = PassThrough::md5(Md5Hash("md54a0a68b43b6cd5cf266fa02f196e2371"));
  const PassThrough password = PassThrough::password("secret");
  EXPECT_EQ(md5.kind(), PassThrough::Kind::md5_hash);
  EXPECT_EQ(md5.describe(), "MD5 pass-through");
  EXPECT_EQ(password.describe(), "the client's password");
  for (const PassThrough* p : {&md5, &password}) {
    auto auth = p->client_auth("alice");
    std::string out;
    ASSERT_EQ(feed(*auth, 5, "\x01\x02\x03\x04", out), Step::reply) << auth->error();
    EXPECT_EQ(out, typed('p', "md598a0412b9c31436fc53776e863350083\0"s));
  }
}

TEST(ClientAuth, Md5WithBadSaltLengthFails) {
  ClientAuth auth("alice", "secret");
  EXPECT_EQ(feed(auth, 5, "\x01\x02\x03"), Step::failed);
  expect_failed_cleanly(auth, "malformed");
}

TEST(ClientAuth, PasswordWithNulIsRefused) {
  ClientAuth auth("alice", "sec\0ret"s);
  std::string out;
  EXPECT_EQ(feed(auth, 3, {}, out), Step::failed);
  EXPECT_TRUE(out.empty());
  expect_failed_cleanly(auth, "NUL");
}

TEST(ClientAuth, SecondPasswordRequestFails) {
  ClientAuth auth("alice", std::string(kPassword));
  EXPECT_EQ(feed(auth, 5, "abcd"), Step::reply);
  EXPECT_EQ(feed(auth, 5, "abcd"), Step::failed);
  expect_failed_cleanly(auth, "unexpected MD5");
}

// ---- SCRAM-SHA-256 against RFC 7677 ----

TEST(ClientAuth, ScramRfc7677WithUsername) {
  ClientAuth auth = rfc_client(true);
  std::string out;
  ASSERT_EQ(feed(auth, 10, kScramOnly, out), Step::reply);
  EXPECT_EQ(out, sasl_initial("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"));
  out.clear();
  ASSERT_EQ(feed(auth, 11, kRfcServerFirst, out), Step::reply) << auth.error();
  EXPECT_EQ(out, typed('p', kRfcClientFinal));
  out.clear();
  ASSERT_EQ(feed(auth, 12, kRfcServerFinal, out), Step::wait) << auth.error();
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(feed(auth, 0, {}, out), Step::done);
  EXPECT_TRUE(out.empty());
}

TEST(ClientAuth, ScramPostgresVariantEmptyUsername) {
  ClientAuth auth = rfc_client(false);
  std::string out;
  ASSERT_EQ(feed(auth, 10, kScramOnly, out), Step::reply);
  EXPECT_EQ(out, sasl_initial("n,,n=,r=rOprNGfwEbeRWgbNEkqO"));
  out.clear();
  ASSERT_EQ(feed(auth, 11, kRfcServerFirst, out), Step::reply) << auth.error();
  EXPECT_EQ(out, typed('p', kPgClientFinal));
  ASSERT_EQ(feed(auth, 12, kPgServerFinal), Step::wait) << auth.error();
  EXPECT_EQ(feed(auth, 0), Step::done);
}

TEST(ClientAuth, ScramUsernameIsEscaped) {
  ClientAuth auth("a=b,c", "pw", {.client_nonce = "abc", .scram_username = true});
  std::string out;
  ASSERT_EQ(feed(auth, 10, kScramOnly, out), Step::reply);
  EXPECT_EQ(out, sasl_initial("n,,n=a=3Db=2Cc,r=abc"));
}

TEST(ClientAuth, ScramRandomNonce) {
  auto client_first = [] {
    ClientAuth auth("u", "p");
    std::string out;
    EXPECT_EQ(feed(auth, 10, kScramOnly, out), Step::reply);
    Reader r(std::string_view(out).substr(header_size));
    std::string_view mechanism, data;
    std::uint32_t len = 0;
    EXPECT_TRUE(r.cstring(mechanism) && r.u32(len) && r.bytes(len, data) && r.done());
    EXPECT_EQ(mechanism, "SCRAM-SHA-256");
    return std::string(data);
  };
  const std::string a = client_first();
  const std::string b = client_first();
  ASSERT_TRUE(a.starts_with("n,,n=,r=")) << a;
  EXPECT_EQ(a.size(), 8u + 24u);  // 18 random bytes, base64
  for (char c : a.substr(8))
    EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/') << a;
  EXPECT_NE(a, b);
}

TEST(ClientAuth, ScramPicksPlainMechanismWhenPlusAlsoOffered) {
  ClientAuth auth = rfc_client(false);
  std::string out;
  ASSERT_EQ(feed(auth, 10, "SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"s, out), Step::reply);
  EXPECT_EQ(out, sasl_initial("n,,n=,r=rOprNGfwEbeRWgbNEkqO"));
}

TEST(ClientAuth, ScramExtensionsAfterIterationsAreIgnored) {
  ClientAuth auth = rfc_client(false);
  std::string out;
  // The extension is part of the AuthMessage, so the proof differs from kPgClientFinal.
  ASSERT_EQ(after_server_first(auth, kRfcServerFirst + ",x=ext", out), Step::reply) << auth.error();
  EXPECT_TRUE(std::string_view(out)
                  .substr(header_size)
                  .starts_with("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p="));
  EXPECT_NE(out, typed('p', kPgClientFinal));
}

// ---- refusals ----

TEST(ClientAuth, ScramPlusOnlyIsRefused) {
  ClientAuth auth = rfc_client(false);
  std::string out;
  EXPECT_EQ(feed(auth, 10, "SCRAM-SHA-256-PLUS\0\0"s, out), Step::failed);
  EXPECT_TRUE(out.empty());
  expect_failed_cleanly(auth, "SCRAM-SHA-256-PLUS");
}

TEST(ClientAuth, UnknownSaslMechanismIsRefused) {
  ClientAuth auth = rfc_client(false);
  EXPECT_EQ(feed(auth, 10, "SCRAM-SHA-1\0\0"s), Step::failed);
  expect_failed_cleanly(auth, "SCRAM-SHA-1");
}

TEST(ClientAuth, MalformedMechanismLists) {
  for (const std::string& list : {""s, "\0"s, "SCRAM-SHA-256"s, "SCRAM-SHA-256\0"s, "SCRAM-SHA-256\0\0x"s}) {
    SCOPED_TRACE(test::hex(list));
    ClientAuth auth = rfc_client(false);
    std::string out;
    EXPECT_EQ(feed(auth, 10, list, out), Step::failed);
    EXPECT_TRUE(out.empty());
    EXPECT_TRUE(auth.is_failed());
  }
}

TEST(ClientAuth, UnsupportedMethodsAreRefused) {
  const std::vector<std::pair<std::uint32_t, std::string>> cases = {
      {2, "Kerberos"}, {7, "GSSAPI"}, {8, "GSSAPI"}, {9, "SSPI"}, {6, "code 6"}, {42, "code 42"}};
  for (const auto& [code, name] : cases) {
    SCOPED_TRACE(code);
    ClientAuth auth("alice", std::string(kPassword));
    std::string out;
    EXPECT_EQ(feed(auth, code, {}, out), Step::failed);
    EXPECT_TRUE(out.empty());
    expect_failed_cleanly(auth, name);
  }
}

TEST(ClientAuth, ErrorResponseFailsWithServerMessage) {
  ClientAuth auth("alice", std::string(kPassword));
  std::string out;
  ASSERT_EQ(feed(auth, 3, {}, out), Step::reply);
  // A server echoing the password: the error text must not carry it.
  const std::string bytes =
      typed('E', "SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed (pencil)\0\0"s);
  const Frame f{'E', std::string_view(bytes).substr(header_size), bytes};
  EXPECT_EQ(auth.on_message(f, out), Step::failed);
  expect_failed_cleanly(auth, "28P01: password authentication failed");
}

TEST(ClientAuth, OtherMessageTypesFail) {
  ClientAuth auth("alice", std::string(kPassword));
  const std::string bytes = typed('Z', "I");
  const Frame f{'Z', std::string_view(bytes).substr(header_size), bytes};
  std::string out;
  EXPECT_EQ(auth.on_message(f, out), Step::failed);
  expect_failed_cleanly(auth, "unexpected message type 'Z'");
}

// ---- order ----

TEST(ClientAuth, SaslContinueWithoutInitialResponseFails) {
  ClientAuth auth = rfc_client(false);
  EXPECT_EQ(feed(auth, 11, kRfcServerFirst), Step::failed);
  expect_failed_cleanly(auth, "unexpected AuthenticationSASLContinue");
}

TEST(ClientAuth, SaslFinalBeforeClientFinalFails) {
  ClientAuth auth = rfc_client(false);
  EXPECT_EQ(feed(auth, 10, kScramOnly), Step::reply);
  EXPECT_EQ(feed(auth, 12, kPgServerFinal), Step::failed);
  expect_failed_cleanly(auth, "unexpected AuthenticationSASLFinal");
}

TEST(ClientAuth, SecondSaslContinueFails) {
  ClientAuth auth = rfc_client(false);
  std::string out;
  ASSERT_EQ(after_server_first(auth, kRfcServerFirst, out), Step::reply);
  EXPECT_EQ(feed(auth, 11, kRfcServerFirst), Step::failed);
  expect_failed_cleanly(auth, "unexpected AuthenticationSASLContinue");
}

TEST(ClientAuth, RestartedSaslFails) {
  ClientAuth auth = rfc_client(false);
  EXPECT_EQ(feed(auth, 10, kScramOnly), Step::reply);
  EXPECT_EQ(feed(auth, 10, kScramOnly), Step::failed);
  expect_failed_cleanly(auth, "unexpected AuthenticationSASL");
}

TEST(ClientAuth, OkBeforeServerIsVerifiedFails) {
  {
    ClientAuth auth = rfc_client(false);
    EXPECT_EQ(feed(auth, 10, kScramOnly), Step::reply);
    EXPECT_EQ(feed(auth, 0), Step::failed);
    expect_failed_cleanly(auth, "before the SCRAM exchange completed");
  }
  {
    ClientAuth auth = rfc_client(false);
    std::string out;
    ASSERT_EQ(after_server_first(auth, kRfcServerFirst, out), Step::reply);
    EXPECT_EQ(feed(auth, 0), Step::failed);  // skipping SASLFinal skips the server's proof
    expect_failed_cleanly(auth, "before the SCRAM exchange completed");
  }
}

TEST(ClientAuth, NothingIsAcceptedAfterFailure) {
  ClientAuth auth = rfc_client(false);
  std::string out;
  ASSERT_EQ(after_server_first(auth, kRfcServerFirst, out), Step::reply);
  ASSERT_EQ(feed(auth, 12, kRfcServerFinal), Step::failed);  // the "n=user" signature: wrong here
  const std::string first_error = auth.error();
  out.clear();
  EXPECT_EQ(feed(auth, 0, {}, out), Step::failed);
  EXPECT_EQ(feed(auth, 3, {}, out), Step::failed);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(auth.error(), first_error);
}

TEST(ClientAuth, NothingIsAcceptedAfterDone) {
  ClientAuth auth("alice", std::string(kPassword));
  ASSERT_EQ(feed(auth, 0), Step::done);
  std::string out;
  EXPECT_EQ(feed(auth, 3, {}, out), Step::failed);
  EXPECT_TRUE(out.empty());
  EXPECT_TRUE(auth.is_failed());
}

// ---- malformed server-first-message ----

struct BadMessage {
  std::string name;
  std::string message;
  std::string error;  // a part of the expected error text
};

std::string case_name(const ::testing::TestParamInfo<BadMessage>& param_info) {
  return param_info.param.name;
}

class ClientAuthBadServerFirst : public ::testing::TestWithParam<BadMessage> {};

TEST_P(ClientAuthBadServerFirst, FailsCleanly) {
  ClientAuth auth = rfc_client(false);
  std::string out;
  EXPECT_EQ(after_server_first(auth, GetParam().message, out), Step::failed);
  EXPECT_TRUE(out.empty());
  expect_failed_cleanly(auth, GetParam().error);
  EXPECT_EQ(feed(auth, 12, kPgServerFinal), Step::failed);
}

const std::string kSaltIter = ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const std::string kNonceSalt = "r=" + std::string(kRfcServerNonce) + ",s=" + std::string(kRfcSalt);

INSTANTIATE_TEST_SUITE_P(
    , ClientAuthBadServerFirst,
    ::testing::Values(
        BadMessage{"Empty", "", "malformed"},
        BadMessage{"NonceNotPrefixed", "r=XOprNGfwEbeRWgbNEkqO%hvYDpWUa2" + kSaltIter, "does not extend"},
        BadMessage{"NonceOnlyClientPart", "r=" + std::string(kRfcNonce) + kSaltIter, "does not extend"},
        BadMessage{"NonceShorterThanClient", "r=rOprNG" + kSaltIter, "does not extend"},
        BadMessage{"NonceTooLong", "r=" + std::string(kRfcNonce) + std::string(1100, 'x') + kSaltIter,
                   "too long"},
        BadMessage{"NonceWithSpace", "r=" + std::string(kRfcNonce) + "ab cd" + kSaltIter,
                   "invalid characters"},
        BadMessage{"NonceWithControl", "r=" + std::string(kRfcNonce) + "ab\x01" + kSaltIter,
                   "control characters"},
        BadMessage{"NonceWithNul", "r=" + std::string(kRfcNonce) + "ab\0"s + kSaltIter, "control characters"},
        BadMessage{"MissingNonce", "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,x=y", "missing nonce"},
        BadMessage{"MissingSalt", "r=" + std::string(kRfcServerNonce) + ",i=4096", "expected r=, s= and i="},
        BadMessage{"MissingIterations", kNonceSalt, "expected r=, s= and i="},
        BadMessage{
            "FieldsOutOfOrder",
            "r=" + std::string(kRfcServerNonce) + ",i=4096,s=W22ZaJ0SNY7soEsUEjb6gQ==", "missing salt"},
        BadMessage{"EmptySalt", "r=" + std::string(kRfcServerNonce) + ",s=,i=4096", "base64"},
        BadMessage{"SaltBadLength", "r=" + std::string(kRfcServerNonce) + ",s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096",
                   "base64"},
        BadMessage{"SaltBadCharacter",
                   "r=" + std::string(kRfcServerNonce) + ",s=W22ZaJ0SNY7so*sUEjb6gQ==,i=4096", "base64"},
        BadMessage{"SaltPaddingInside",
                   "r=" + std::string(kRfcServerNonce) + ",s=W2==aJ0SNY7soEsUEjb6gQ==,i=4096", "base64"},
        BadMessage{"SaltNonCanonical",
                   "r=" + std::string(kRfcServerNonce) + ",s=W22ZaJ0SNY7soEsUEjb6gR==,i=4096", "base64"},
        BadMessage{"IterationsZero", kNonceSalt + ",i=0", "iteration count"},
        BadMessage{"IterationsNegative", kNonceSalt + ",i=-1", "iteration count"},
        BadMessage{"IterationsNotNumber", kNonceSalt + ",i=4096x", "iteration count"},
        BadMessage{"IterationsEmpty", kNonceSalt + ",i=", "iteration count"},
        BadMessage{"IterationsTooMany", kNonceSalt + ",i=10000001", "iteration count"},
        BadMessage{"IterationsOverflow", kNonceSalt + ",i=99999999999999999999", "iteration count"},
        BadMessage{"MandatoryExtension", "m=ext," + kNonceSalt + ",i=4096", "unsupported extension"}),
    case_name);

// ---- malformed or wrong server-final-message ----

class ClientAuthBadServerFinal : public ::testing::TestWithParam<BadMessage> {};

TEST_P(ClientAuthBadServerFinal, FailsCleanly) {
  ClientAuth auth = rfc_client(false);
  std::string out;
  ASSERT_EQ(after_server_first(auth, kRfcServerFirst, out), Step::reply) << auth.error();
  out.clear();
  EXPECT_EQ(feed(auth, 12, GetParam().message, out), Step::failed);
  EXPECT_TRUE(out.empty());
  expect_failed_cleanly(auth, GetParam().error);
  EXPECT_EQ(feed(auth, 0), Step::failed);
}

INSTANTIATE_TEST_SUITE_P(
    , ClientAuthBadServerFinal,
    ::testing::Values(
        BadMessage{"WrongSignature", kRfcServerFinal, "does not match"},
        BadMessage{"ShortSignature", "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBt", "does not match"},
        BadMessage{"Empty", "", "missing v="},
        BadMessage{"OtherAttribute", "x=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=", "missing v="},
        BadMessage{"BadBase64", "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg", "base64"},
        BadMessage{"ServerError", "e=invalid-proof", "invalid-proof"}),
    case_name);

// ---- SCRAM pass-through: ClientKey and verifier instead of the password ----

// RFC 7677's verifier and ClientKey for "pencil", computed with Python's hashlib/hmac.
const std::string kRfcVerifier =
    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
const std::string kRfcClientKey = "pg/JI9Z+hkSpLRa5btpe9GVrDHJcSEN0viVTVXaZbos=";

ScramClientKeys rfc_keys() {
  ScramClientKeys keys;
  std::string error;
  auto verifier = ScramVerifier::parse(kRfcVerifier, error);
  EXPECT_TRUE(verifier) << error;
  if (verifier) keys.verifier = *verifier;
  const auto raw = scram::base64_decode(kRfcClientKey);
  EXPECT_TRUE(raw && raw->size() == 32);
  if (raw && raw->size() == 32) std::copy(raw->begin(), raw->end(), keys.client_key.bytes.begin());
  return keys;
}

ClientAuth keys_client(ScramClientKeys keys = rfc_keys()) {
  return ClientAuth("user", std::move(keys),
                    {.client_nonce = std::string(kRfcNonce), .scram_username = false});
}

TEST(ClientAuthKeys, SameMessagesAsWithThePassword) {
  ClientAuth auth = keys_client();
  std::string out;
  ASSERT_EQ(feed(auth, 10, kScramOnly, out), Step::reply);
  EXPECT_EQ(out, sasl_initial("n,,n=,r=rOprNGfwEbeRWgbNEkqO"));
  out.clear();
  ASSERT_EQ(feed(auth, 11, kRfcServerFirst, out), Step::reply) << auth.error();
  EXPECT_EQ(out, typed('p', kPgClientFinal));
  ASSERT_EQ(feed(auth, 12, kPgServerFinal), Step::wait) << auth.error();
  EXPECT_EQ(feed(auth, 0), Step::done);
}

TEST(ClientAuthKeys, OtherSaltOrIterationsAreRefused) {
  for (const std::string& server_first :
       {"r=" + std::string(kRfcServerNonce) + ",s=W22ZaJ0SNY7soEsUEjb6gA==,i=4096",
        "r=" + std::string(kRfcServerNonce) + ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4097",
        "r=" + std::string(kRfcServerNonce) + ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1"}) {
    SCOPED_TRACE(server_first);
    ClientAuth auth = keys_client();
    std::string out;
    EXPECT_EQ(after_server_first(auth, server_first, out), Step::failed);
    EXPECT_TRUE(out.empty());
    expect_failed_cleanly(auth, "salt and iteration count differ from the verifier's");
  }
}

TEST(ClientAuthKeys, WrongServerSignatureIsRefused) {
  ClientAuth auth = keys_client();
  std::string out;
  ASSERT_EQ(after_server_first(auth, kRfcServerFirst, out), Step::reply);
  EXPECT_EQ(feed(auth, 12, kRfcServerFinal), Step::failed);  // the "n=user" exchange's signature
  expect_failed_cleanly(auth, "does not match");
}

TEST(ClientAuthKeys, ServerKeyFromAnotherVerifierIsRefused) {
  ScramClientKeys keys = rfc_keys();
  keys.verifier.server_key.bytes[0] ^= 1;
  ClientAuth auth = keys_client(keys);
  std::string out;
  ASSERT_EQ(after_server_first(auth, kRfcServerFirst, out), Step::reply);
  EXPECT_EQ(out, typed('p', kPgClientFinal));  // the proof depends on ClientKey only
  EXPECT_EQ(feed(auth, 12, kPgServerFinal), Step::failed);
  expect_failed_cleanly(auth, "does not match");
}

TEST(ClientAuthKeys, ClientKeyMustMatchTheStoredKey) {
  ScramClientKeys keys = rfc_keys();
  keys.client_key.bytes[31] ^= 0x80;
  ClientAuth auth = keys_client(keys);
  std::string out;
  EXPECT_EQ(after_server_first(auth, kRfcServerFirst, out), Step::failed);
  EXPECT_TRUE(out.empty());
  expect_failed_cleanly(auth, "ClientKey does not match the verifier's StoredKey");
}

TEST(ClientAuthKeys, PasswordRequestsAreRefused) {
  for (const auto& [code, data] : std::vector<std::pair<std::uint32_t, std::string>>{{3, ""}, {5, "abcd"}}) {
    SCOPED_TRACE(code);
    ClientAuth auth = keys_client();
    std::string out;
    EXPECT_EQ(feed(auth, code, data, out), Step::failed);
    EXPECT_TRUE(out.empty());
    expect_failed_cleanly(auth, "only SCRAM keys are known");
  }
}

TEST(ClientAuthKeys, TrustNeedsNothing) {
  ClientAuth auth = keys_client();
  EXPECT_EQ(feed(auth, 0), Step::done);
}

TEST(ClientAuthKeys, PassThroughOfKeysSendsTheSameMessages) {
  const PassThrough p = PassThrough::scram(rfc_keys());
  EXPECT_EQ(p.kind(), PassThrough::Kind::scram_keys);
  EXPECT_EQ(p.describe(), "SCRAM pass-through");
  auto auth = p.client_auth("user");
  std::string out;
  ASSERT_EQ(feed(*auth, 10, kScramOnly, out), Step::reply);
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out[0], 'p');  // a SASLInitialResponse
  EXPECT_NE(out.find("SCRAM-SHA-256"), std::string::npos);
}

}  // namespace
}  // namespace pgshift::protocol
