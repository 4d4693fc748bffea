#include "auth/jwt.h"

#include <algorithm>
#include <string>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <gtest/gtest.h>

#include "auth/crypto.h"

namespace herald {
namespace {
namespace json = boost::json;

const std::string key = std::string(32, '\x5a');

json::object sample(std::int64_t iat) {
  return json::object{
      {"iss", "herald"}, {"sub", "usr_1"}, {"ten", "4100"}, {"jti", "jwt_1"}, {"iat", iat}};
}

// header.payload signed with `k`, all parts given as JSON text.
std::string forge(std::string_view header, std::string_view payload, std::string_view k) {
  std::string t = base64url_encode(header) + "." + base64url_encode(payload);
  return t + "." + base64url_encode(hmac_sha256(k, t));
}

TEST(Jwt, KnownVectorFromRfc7519Tooling) {
  // The jwt.io example: HS256, secret "your-256-bit-secret".
  const json::object claims{{"sub", "1234567890"}, {"name", "John Doe"}, {"iat", 1516239022}};
  EXPECT_EQ(jwt_sign(claims, "your-256-bit-secret"),
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
            "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
            "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c");
}

TEST(Jwt, RoundTrip) {
  json::object c = sample(1000);
  c["exp"] = 2000;
  const std::string jwt = jwt_sign(c, key);
  EXPECT_EQ(jwt.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                  "0123456789._-"),
            std::string::npos);
  EXPECT_EQ(std::count(jwt.begin(), jwt.end(), '.'), 2);
  EXPECT_EQ(jwt.rfind("eyJ", 0), 0u);
  EXPECT_EQ(*base64url_decode(jwt.substr(0, jwt.find('.'))), R"({"alg":"HS256","typ":"JWT"})");
  auto v = jwt_verify(jwt, key, 1500);
  ASSERT_TRUE(v.ok()) << v.err().message;
  EXPECT_EQ(*v, c);
  EXPECT_EQ(v->at("sub").as_string(), "usr_1");
}

TEST(Jwt, NoExpNeverExpires) {
  const std::string jwt = jwt_sign(sample(1000), key);
  EXPECT_TRUE(jwt_verify(jwt, key, 4'000'000'000).ok());
}

TEST(Jwt, WrongKey) {
  const std::string jwt = jwt_sign(sample(1000), key);
  auto v = jwt_verify(jwt, std::string(32, '\x5b'), 1000);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.err().code, errc::auth_failed);
  EXPECT_EQ(v.err().message, "bad jwt signature");
}

TEST(Jwt, TamperedPayloadOrSignature) {
  const std::string jwt = jwt_sign(sample(1000), key);
  const auto d1 = jwt.find('.'), d2 = jwt.rfind('.');
  std::string p = jwt;
  p[d1 + 1] = p[d1 + 1] == 'e' ? 'f' : 'e';
  EXPECT_EQ(jwt_verify(p, key, 1000).err().message, "bad jwt signature");
  std::string s = jwt;
  s[d2 + 1] = s[d2 + 1] == 'A' ? 'B' : 'A';
  EXPECT_EQ(jwt_verify(s, key, 1000).err().message, "bad jwt signature");
  // A forged payload with the original signature.
  json::object evil = sample(1000);
  evil["sub"] = "usr_admin";
  const std::string forged =
      jwt.substr(0, d1 + 1) + base64url_encode(json::serialize(evil)) + jwt.substr(d2);
  EXPECT_EQ(jwt_verify(forged, key, 1000).err().message, "bad jwt signature");
}

TEST(Jwt, Expired) {
  json::object c = sample(1000);
  c["exp"] = 2000;
  const std::string jwt = jwt_sign(c, key);
  EXPECT_TRUE(jwt_verify(jwt, key, 1999).ok());
  for (std::int64_t now : {2000, 2001, 100000}) {
    auto v = jwt_verify(jwt, key, now);
    ASSERT_FALSE(v.ok());
    EXPECT_EQ(v.err().code, errc::auth_failed);
    EXPECT_EQ(v.err().message, "jwt expired");
    EXPECT_TRUE(is_jwt_expired(v.err()));
  }
  EXPECT_FALSE(is_jwt_expired(jwt_verify(jwt, "other", 1000).err()));
}

TEST(Jwt, NotBefore) {
  json::object c = sample(1000);
  c["nbf"] = 1500;
  const std::string jwt = jwt_sign(c, key);
  EXPECT_EQ(jwt_verify(jwt, key, 1499).err().message, "jwt not yet valid");
  EXPECT_TRUE(jwt_verify(jwt, key, 1500).ok());
}

TEST(Jwt, AlgNoneAndOthersRejected) {
  const std::string payload = json::serialize(sample(1000));
  const std::string body = base64url_encode(payload);
  // alg none, unsigned: the classic downgrade.
  const std::string none = base64url_encode(R"({"alg":"none","typ":"JWT"})") + "." + body + ".";
  auto v = jwt_verify(none, key, 1000);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.err().code, errc::auth_failed);
  EXPECT_EQ(v.err().message, jwt_bad_alg_message);
  // Even "signed" with our key, other algs are refused.
  for (const char* h : {R"({"alg":"none"})", R"({"alg":"HS512","typ":"JWT"})", R"({"alg":"hs256"})",
                        R"({"typ":"JWT"})", R"({"alg":256})"}) {
    auto r = jwt_verify(forge(h, payload, key), key, 1000);
    ASSERT_FALSE(r.ok()) << h;
    EXPECT_EQ(r.err().message, jwt_bad_alg_message) << h;
  }
  // A header this code did not write but that is HS256 is fine.
  EXPECT_TRUE(jwt_verify(forge(R"({"typ":"JWT","alg":"HS256"})", payload, key), key, 1000).ok());
  EXPECT_FALSE(jwt_verify(forge(R"({"alg":"HS256","crit":["x"]})", payload, key), key, 1000));
}

TEST(Jwt, Malformed) {
  const std::string jwt = jwt_sign(sample(1000), key);
  const auto d1 = jwt.find('.');
  for (const std::string& t :
       {std::string(), std::string("a.b"), jwt.substr(0, jwt.rfind('.')), jwt + ".x", jwt + "=",
        "." + jwt.substr(d1), jwt.substr(0, d1) + "..sig", "!" + jwt, std::string(8193, 'a'),
        forge("[]", "{}", key), forge("{", "{}", key)}) {
    auto v = jwt_verify(t, key, 1000);
    ASSERT_FALSE(v.ok()) << t;
    EXPECT_EQ(v.err().code, errc::auth_failed);
    EXPECT_EQ(v.err().message, "malformed jwt") << t;
  }
  const std::string h = R"({"alg":"HS256","typ":"JWT"})";
  for (const char* p : {"[]", "not json", R"({"exp":"2000"})", R"({"nbf":null})"}) {
    auto v = jwt_verify(forge(h, p, key), key, 1000);
    ASSERT_FALSE(v.ok()) << p;
    EXPECT_EQ(v.err().message, "malformed jwt") << p;
  }
  // Fractional NumericDates are numbers too.
  EXPECT_TRUE(jwt_verify(forge(h, R"({"exp":1000.5})", key), key, 1000).ok());
  EXPECT_FALSE(jwt_verify(forge(h, R"({"exp":1000.5})", key), key, 1001).ok());
}

}  // namespace
}  // namespace herald
