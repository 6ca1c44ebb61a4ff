// A SCRAM proof recorded from a good login is worth nothing on a new connection: the
// server's nonce is new each time, and the proof covers it (RFC 5802). A raw client
// logs in once with the right password, keeping the client-first and client-final
// messages it sent, then replays them on fresh connections. Each replay runs against
// PostgreSQL itself too, so pgshift is held to what PostgreSQL answers.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "harness.hpp"
#include "pgshift_auth.hpp"
#include "protocol/client_auth.hpp"
#include "protocol/frame.hpp"
#include "raw_client.hpp"

namespace pgshift::it {
namespace {

constexpr std::uint32_t kSaslContinue = 11;

// The two messages a SCRAM client sends: SASLInitialResponse (client-first) and
// SASLResponse (client-final), as bytes on the wire.
struct Recorded {
  std::string client_first;
  std::string client_final;
};

std::string startup_for(const std::string& user) {
  StartupOptions options;
  options.user = user;
  return startup_message(options);
}

// A frame over `message` as received, for ClientAuth.
struct OwnedFrame {
  std::string bytes;
  protocol::Frame frame;
  explicit OwnedFrame(const BackendMessage& message) : bytes(1, message.type) {
    const auto length = static_cast<std::uint32_t>(message.body.size() + 4);
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<char>((length >> shift) & 0xff));
    bytes += message.body;
    frame = {message.type, std::string_view(bytes).substr(protocol::header_size), bytes};
  }
};

// The attribute `name` ("r=...") of a SCRAM message, or "".
std::string attribute(std::string_view text, char name) {
  const std::string key = std::string(1, name) + "=";
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t end = std::min(text.find(',', pos), text.size());
    if (text.substr(pos, 2) == key) return std::string(text.substr(pos + 2, end - pos - 2));
    pos = end + 1;
  }
  return "";
}

// A SASLResponse message carrying `text`.
std::string sasl_response(const std::string& text) {
  std::string out(1, 'p');
  const auto length = static_cast<std::uint32_t>(text.size() + 4);
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((length >> shift) & 0xff));
  return out + text;
}

// Logs in as `account` on 127.0.0.1:port with the right password, recording what the
// client sent; the login must succeed.
Recorded record_login(std::uint16_t port, const Account& account) {
  Recorded rec;
  RawClient client(port);
  EXPECT_TRUE(client.send(startup_for(account.user)));
  protocol::ClientAuth auth(account.user, account.password);
  for (int sent = 0;;) {
    auto message = client.read();
    if (!message || message->type != 'R') {
      ADD_FAILURE() << "the recorded login failed: " << (message ? describe(*message) : "[closed]");
      return rec;
    }
    OwnedFrame f(*message);
    std::string out;
    const auto step = auth.on_message(f.frame, out);
    if (step == protocol::ClientAuth::Step::done) break;
    if (step == protocol::ClientAuth::Step::failed) {
      ADD_FAILURE() << "the recorded login failed: " << auth.error();
      return rec;
    }
    if (step != protocol::ClientAuth::Step::reply) continue;  // SASLFinal: nothing to answer
    (sent++ == 0 ? rec.client_first : rec.client_final) = out;
    EXPECT_TRUE(client.send(out));
  }
  EXPECT_EQ(message_types(client.read_until_ready()).back(), 'Z');
  client.terminate();
  return rec;
}

// What a new connection answers a replay: the first message after the client-final.
struct Replay {
  std::string server_first;  // SASLContinue's text, with the new server nonce
  std::optional<BackendMessage> answer;
};

// Starts a new login as `user`, sends the recorded client-first, then what
// `final_for(server_first)` returns.
template <class Final>
Replay replay(std::uint16_t port, const std::string& user, const Recorded& rec, Final final_for) {
  Replay r;
  RawClient client(port);
  EXPECT_TRUE(client.send(startup_for(user)));
  auto offer = client.read();  // AuthenticationSASL
  EXPECT_TRUE(offer && offer->type == 'R') << (offer ? describe(*offer) : "[closed]");
  EXPECT_TRUE(client.send(rec.client_first));
  auto cont = client.read();
  if (!cont || cont->type != 'R' || protocol::read_u32(cont->body.data()) != kSaslContinue) {
    ADD_FAILURE() << "no SASLContinue: " << (cont ? describe(*cont) : "[closed]");
    return r;
  }
  r.server_first = cont->body.substr(4);
  EXPECT_TRUE(client.send(final_for(r.server_first)));
  r.answer = client.read();
  EXPECT_FALSE(client.read()) << "the connection stays open after a refused proof";
  return r;
}

// Passes when `r` ended in an ErrorResponse with `sqlstate` and `message`.
::testing::AssertionResult refused(const Replay& r, const std::string& sqlstate, const std::string& message) {
  if (!r.answer || r.answer->type != 'E')
    return ::testing::AssertionFailure() << "not refused: " << (r.answer ? describe(*r.answer) : "[closed]");
  const auto fields = error_fields(r.answer->body);
  if (fields.count('C') && fields.at('C') == sqlstate && fields.count('M') && fields.at('M') == message)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "refused otherwise: " << describe(*r.answer);
}

class PgshiftAuthReplay : public SharedClusterTest<PgshiftAuthReplay> {
 public:
  static PgCluster::Options cluster_options() { return scram_tls_cluster(); }
  static void prepare(PgCluster& cluster) { create_password_accounts(cluster); }

  static void SetUpTestSuite() {
    SharedClusterTest<PgshiftAuthReplay>::SetUpTestSuite();
    dir_ = std::make_unique<TempDir>("pgshift-it-replay");
    // Client TLS "allow": the raw client speaks plain text (so no channel binding).
    proxy_ = std::make_unique<Pgshift>(cluster(), pgshift_auth_options(make_self_signed_cert(dir_->path(), "pgshift"),
                                                                      write_auth_file(cluster(), dir_->path()), "allow"));
  }
  static void TearDownTestSuite() {
    proxy_.reset();
    dir_.reset();
    SharedClusterTest<PgshiftAuthReplay>::TearDownTestSuite();
  }

 protected:
  // pgshift, then PostgreSQL directly.
  static std::vector<std::uint16_t> ports() { return {proxy_->port(), cluster().port()}; }

  static inline std::unique_ptr<TempDir> dir_;
  static inline std::unique_ptr<Pgshift> proxy_;
};

// The recorded client-final sent as it was: its nonce is the old connection's, so the
// exchange is malformed before the proof is even looked at.
TEST_F(PgshiftAuthReplay, VerbatimReplayRefused) {
  for (std::uint16_t port : ports()) {
    SCOPED_TRACE(port == proxy_->port() ? "pgshift" : "PostgreSQL");
    const Recorded rec = record_login(port, kScramUser);
    ASSERT_FALSE(rec.client_final.empty());
    const Replay r = replay(port, kScramUser.user, rec, [&](const std::string&) { return rec.client_final; });
    EXPECT_TRUE(refused(r, "08P01", "invalid SCRAM response"));
  }
  EXPECT_TRUE(contains(proxy_->log(), "Nonce does not match."));
}

// The recorded proof with the new connection's nonce put in: well formed, but the
// proof was computed over the old nonces, so it is a wrong password.
TEST_F(PgshiftAuthReplay, ProofWithTheNewNonceRefused) {
  for (std::uint16_t port : ports()) {
    SCOPED_TRACE(port == proxy_->port() ? "pgshift" : "PostgreSQL");
    const Recorded rec = record_login(port, kScramUser);
    ASSERT_FALSE(rec.client_final.empty());
    const std::string old_final = rec.client_final.substr(protocol::header_size);
    const Replay r = replay(port, kScramUser.user, rec, [&](const std::string& server_first) {
      return sasl_response("c=" + attribute(old_final, 'c') + ",r=" + attribute(server_first, 'r') +
                           ",p=" + attribute(old_final, 'p'));
    });
    EXPECT_NE(attribute(r.server_first, 'r'), attribute(old_final, 'r')) << "the server nonce was not new";
    EXPECT_TRUE(refused(r, "28P01", "password authentication failed for user \"" + kScramUser.user + "\""));
  }
  // And the password itself still logs in.
  const Recorded again = record_login(proxy_->port(), kScramUser);
  EXPECT_FALSE(again.client_final.empty());
}

}  // namespace
}  // namespace pgshift::it
