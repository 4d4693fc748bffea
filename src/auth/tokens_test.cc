#include "auth/tokens.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "auth/crypto.h"
#include "core/event.h"

namespace herald {
namespace {

const std::string key32 = std::string(32, 'k');

token_claims sample_claims() {
  token_claims c;
  c.aud = "ringcentral";
  c.kind = "access";
  c.jti = "j1";
  c.principal_kind = "user";
  c.tenant = "4100";
  c.app_id = "app_x";
  c.user_id = "usr_y";
  c.login_session = "lgn_z";
  c.iat_ms = 1'700'000'000'000;
  c.exp_ms = 1'700'000'600'000;
  c.scopes = "subscribe history";
  return c;
}

bool token_alphabet(const std::string& t) {
  return t.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
         std::string::npos;
}

// A correctly signed token whose payload is `payload` verbatim.
std::string sign_raw(std::string_view key, std::string_view payload) {
  std::string t = base64url_encode(payload);
  return t + "." + base64url_encode(hmac_sha256(key, t));
}

TEST(Tokens, RoundTrip) {
  const token_signer s(key32);
  const token_claims c = sample_claims();
  const std::string t = s.issue(c);
  auto v = s.verify(t, c.iat_ms);
  ASSERT_TRUE(v.ok()) << v.err().message;
  EXPECT_EQ(*v, c);
  // Another signer with the same key (another node) accepts it.
  EXPECT_TRUE(token_signer(key32).verify(t, c.iat_ms).ok());
}

TEST(Tokens, RoundTripWithEmptyFields) {
  const token_signer s(key32);
  token_claims c;
  c.aud = "native";
  c.kind = "ws";
  c.principal_kind = "app";
  c.tenant = "t1";
  c.app_id = "app_1";
  c.exp_ms = 5000;
  auto v = s.verify(s.issue(c), 4999);
  ASSERT_TRUE(v.ok()) << v.err().message;
  EXPECT_EQ(*v, c);
  EXPECT_TRUE(v->user_id.empty());
  EXPECT_TRUE(v->login_session.empty());
}

TEST(Tokens, Alphabet) {
  const token_signer s(random_bytes(32));
  for (int i = 0; i < 200; ++i) {
    token_claims c = sample_claims();
    c.jti = random_token(static_cast<std::size_t>(i % 24 + 1));
    c.tenant = "tenant-" + std::to_string(i) + "/é\"\\";
    const std::string t = s.issue(c);
    EXPECT_TRUE(token_alphabet(t)) << t;
    EXPECT_EQ(std::count(t.begin(), t.end(), '.'), 1);
    EXPECT_EQ(s.verify(t, 0)->tenant, c.tenant);
  }
}

TEST(Tokens, TamperedPayloadFails) {
  const token_signer s(key32);
  std::string t = s.issue(sample_claims());
  ASSERT_EQ(t[0], 'e');  // '{' encodes to "e..."
  t[0] = 'f';
  auto v = s.verify(t, 0);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.err().code, errc::auth_failed);
  EXPECT_EQ(v.err().message, "bad signature");
  EXPECT_FALSE(is_token_expired(v.err()));
}

TEST(Tokens, TamperedSignatureFails) {
  const token_signer s(key32);
  std::string t = s.issue(sample_claims());
  const auto dot = t.find('.');
  t[dot + 1] = t[dot + 1] == 'A' ? 'B' : 'A';
  auto v = s.verify(t, 0);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.err().code, errc::auth_failed);
  EXPECT_EQ(v.err().message, "bad signature");
}

TEST(Tokens, WrongKeyFails) {
  const std::string t = token_signer(key32).issue(sample_claims());
  auto v = token_signer(std::string(32, 'K')).verify(t, 0);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.err().message, "bad signature");
}

TEST(Tokens, Expiry) {
  const token_signer s(key32);
  const token_claims c = sample_claims();
  const std::string t = s.issue(c);
  EXPECT_TRUE(s.verify(t, c.exp_ms - 1).ok());
  for (std::int64_t now : {c.exp_ms, c.exp_ms + 1, c.exp_ms + 86'400'000}) {
    auto v = s.verify(t, now);
    ASSERT_FALSE(v.ok());
    EXPECT_EQ(v.err().code, errc::auth_failed);
    EXPECT_EQ(v.err().message, "token expired");
    EXPECT_TRUE(is_token_expired(v.err()));
  }
  // An expired token with a bad signature is a bad token, not an expired one.
  std::string bad = t;
  bad[0] = 'f';
  EXPECT_EQ(s.verify(bad, c.exp_ms + 1).err().message, "bad signature");
}

TEST(Tokens, Malformed) {
  const token_signer s(key32);
  const std::string good = s.issue(sample_claims());
  const auto dot = good.find('.');
  for (const std::string& t : {std::string(), std::string("abc"), std::string("."),
                               std::string("abc."), std::string(".abc"), good + ".x", good + "=",
                               good.substr(0, dot) + "." + good.substr(dot + 1, 10), "!" + good,
                               good.substr(0, dot) + "+" + good.substr(dot),
                               std::string(token_signer::max_token_size + 1, 'a')}) {
    auto v = s.verify(t, 0);
    ASSERT_FALSE(v.ok()) << t;
    EXPECT_EQ(v.err().code, errc::auth_failed);
    EXPECT_EQ(v.err().message, "malformed token") << t;
  }
}

TEST(Tokens, SignedButBadPayloadIsMalformed) {
  const token_signer s(key32);
  for (const char* p :
       {"not json", "[1,2]", "{}", R"({"aud":"native","knd":"ws"})",
        R"({"aud":"native","knd":"ws","exp":"5"})", R"({"aud":1,"knd":"ws","exp":5})",
        R"({"aud":"native","knd":"ws","exp":5,"ten":7})",
        R"({"aud":"native","knd":"ws","exp":5.5})"}) {
    auto v = s.verify(sign_raw(key32, p), 0);
    ASSERT_FALSE(v.ok()) << p;
    EXPECT_EQ(v.err().message, "malformed token") << p;
  }
  auto ok = s.verify(sign_raw(key32, R"({"aud":"native","knd":"ws","exp":5,"zzz":[1]})"), 0);
  ASSERT_TRUE(ok.ok()) << ok.err().message;  // unknown claims are ignored
  EXPECT_EQ(ok->exp_ms, 5);
}

TEST(Tokens, ConcurrentVerify) {
  const token_signer s(key32);
  const std::string t = s.issue(sample_claims());
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 500; ++j) {
        if (s.verify(t, 0).ok() && !s.verify(t + "x", 0).ok()) good.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(good.load(), 2000);
}

// ---- key files

// CamelCase: also the GoogleTest suite name of the TEST_Fs below, like this file's other suites
// (Tokens).
class KeyFiles : public ::testing::Test {  // NOLINT(readability-identifier-naming)
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("herald_auth_test_" + random_token(9));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string path(const char* name) const { return (dir_ / name).string(); }
  static unsigned mode_of(const std::string& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return 0;
    return static_cast<unsigned>(st.st_mode) & 0777u;
  }
  static std::string contents(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  static void write(const std::string& p, const std::string& text) {
    std::ofstream(p, std::ios::binary) << text;
  }

  std::filesystem::path dir_;
};

TEST_F(KeyFiles, TokenKeyCreatedWithMode0600AndReused) {
  const std::string p = path("token.key");
  auto k1 = load_or_create_key(p);
  ASSERT_TRUE(k1.ok()) << k1.err().message;
  EXPECT_EQ(k1->size(), 32u);
  EXPECT_EQ(mode_of(p), 0600u);
  const std::string text = contents(p);
  EXPECT_EQ(text.size(), 64u);
  EXPECT_EQ(text.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(hex_decode(text), *k1);

  auto k2 = load_or_create_key(p);
  ASSERT_TRUE(k2.ok()) << k2.err().message;
  EXPECT_EQ(*k2, *k1);
  EXPECT_EQ(contents(p), text);

  // Tokens survive a restart that reloads the key.
  const std::string t = token_signer(*k1).issue(sample_claims());
  EXPECT_TRUE(token_signer(*k2).verify(t, 0).ok());

  // Different files, different keys.
  EXPECT_NE(*load_or_create_key(path("other.key")), *k1);
}

TEST_F(KeyFiles, TokenKeyHexOrRaw) {
  const std::string hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
  write(path("hex.key"), hex + "\n");
  auto k = load_or_create_key(path("hex.key"));
  ASSERT_TRUE(k.ok()) << k.err().message;
  EXPECT_EQ(*k, *hex_decode(hex));

  write(path("raw.key"), "a raw key of some length");
  k = load_or_create_key(path("raw.key"));
  ASSERT_TRUE(k.ok()) << k.err().message;
  EXPECT_EQ(*k, "a raw key of some length");

  write(path("short.key"), "short");
  k = load_or_create_key(path("short.key"));
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.err().code, errc::internal);

  k = load_or_create_key(path("no/such/dir/token.key"));
  ASSERT_FALSE(k.ok());
  EXPECT_NE(k.err().message.find("no/such/dir/token.key"), std::string::npos);
}

TEST_F(KeyFiles, ParseTokenKey) {
  EXPECT_EQ(parse_token_key(std::string(64, 'a')).value(), std::string(32, '\xaa'));
  EXPECT_EQ(parse_token_key(std::string(64, 'a') + " \r\n").value(), std::string(32, '\xaa'));
  EXPECT_EQ(parse_token_key(std::string(64, 'g')).value(), std::string(64, 'g'));
  EXPECT_EQ(parse_token_key(std::string(16, 'x')).value(), std::string(16, 'x'));
  EXPECT_FALSE(parse_token_key(std::string(15, 'x')).ok());
  EXPECT_FALSE(parse_token_key("").ok());
}

TEST_F(KeyFiles, AdminKeyCreatedOnceWithMode0600) {
  const std::string p = path("admin.key");
  auto a1 = load_or_create_admin_key(p);
  ASSERT_TRUE(a1.ok()) << a1.err().message;
  EXPECT_TRUE(a1->second);
  const std::string key = a1->first;
  EXPECT_EQ(key.rfind("hka_", 0), 0u);
  EXPECT_EQ(key.size(), 4u + 43u);  // 32 bytes as unpadded base64url
  EXPECT_TRUE(token_alphabet(key));
  EXPECT_EQ(mode_of(p), 0600u);
  EXPECT_EQ(contents(p), key);

  auto a2 = load_or_create_admin_key(p);
  ASSERT_TRUE(a2.ok()) << a2.err().message;
  EXPECT_FALSE(a2->second);
  EXPECT_EQ(a2->first, key);
}

TEST_F(KeyFiles, AdminKeyExistingFile) {
  write(path("admin.key"), "  hka_handwritten\n");
  auto a = load_or_create_admin_key(path("admin.key"));
  ASSERT_TRUE(a.ok()) << a.err().message;
  EXPECT_EQ(a->first, "hka_handwritten");
  EXPECT_FALSE(a->second);

  write(path("empty.key"), "\n");
  a = load_or_create_admin_key(path("empty.key"));
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.err().code, errc::internal);

  EXPECT_FALSE(load_or_create_admin_key(path("missing/admin.key")).ok());
}

}  // namespace
}  // namespace herald
