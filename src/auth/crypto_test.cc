#include "auth/crypto.h"

#include <set>
#include <string>

#include <gtest/gtest.h>

namespace herald {
namespace {

TEST(Crypto, Sha256KnownVectors) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Crypto, HmacSha256Rfc4231) {
  // Test case 2.
  EXPECT_EQ(hex_encode(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Test case 1.
  EXPECT_EQ(hex_encode(hmac_sha256(std::string(20, '\x0b'), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  // Test case 6: a key longer than the block size.
  EXPECT_EQ(hex_encode(hmac_sha256(std::string(131, '\xaa'),
                                   "Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(Crypto, HmacKeyMatchesOneShot) {
  const hmac_key k("Jefe");
  EXPECT_EQ(hex_encode(k.mac("what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Reusable: the prepared state is never consumed.
  EXPECT_EQ(k.mac("x"), hmac_sha256("Jefe", "x"));
  EXPECT_EQ(k.mac("x"), hmac_sha256("Jefe", "x"));
  EXPECT_EQ(k.mac(""), hmac_sha256("Jefe", ""));
  const hmac_key empty("");
  EXPECT_EQ(empty.mac("m"), hmac_sha256("", "m"));
  const hmac_key moved(hmac_key(std::string(131, '\xaa')));
  EXPECT_EQ(moved.mac("m"), hmac_sha256(std::string(131, '\xaa'), "m"));
}

TEST(Crypto, ConstantTimeEqual) {
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_TRUE(constant_time_equal("secret", "secret"));
  EXPECT_FALSE(constant_time_equal("secret", "secreT"));
  EXPECT_FALSE(constant_time_equal("secret", "secret2"));
  EXPECT_FALSE(constant_time_equal("", "x"));
  EXPECT_TRUE(constant_time_equal(std::string("a\0b", 3), std::string("a\0b", 3)));
  EXPECT_FALSE(constant_time_equal(std::string("a\0b", 3), std::string("a\0c", 3)));
}

TEST(Crypto, Base64UrlRfc4648Vectors) {
  EXPECT_EQ(base64url_encode(""), "");
  EXPECT_EQ(base64url_encode("f"), "Zg");
  EXPECT_EQ(base64url_encode("fo"), "Zm8");
  EXPECT_EQ(base64url_encode("foo"), "Zm9v");
  EXPECT_EQ(base64url_encode("foob"), "Zm9vYg");
  EXPECT_EQ(base64url_encode("fooba"), "Zm9vYmE");
  EXPECT_EQ(base64url_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_EQ(base64url_decode("Zm9vYmE"), "fooba");
  EXPECT_EQ(base64url_decode("-_8"), "\xfb\xff");
  EXPECT_EQ(base64url_decode(""), "");
}

TEST(Crypto, Base64UrlRoundTrips) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (std::size_t n = 0; n <= all.size(); ++n) {
    const std::string in = all.substr(all.size() - n);
    const std::string enc = base64url_encode(in);
    EXPECT_EQ(enc.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                    "0123456789-_"),
              std::string::npos);
    ASSERT_EQ(base64url_decode(enc), in) << n;
  }
  for (int i = 0; i < 50; ++i) {
    const std::string r = random_bytes(static_cast<std::size_t>(i));
    EXPECT_EQ(base64url_decode(base64url_encode(r)), r);
  }
}

TEST(Crypto, Base64UrlRejects) {
  EXPECT_FALSE(base64url_decode("Zg=="));  // padding
  EXPECT_FALSE(base64url_decode("Zg="));
  EXPECT_FALSE(base64url_decode("Z"));      // impossible length
  EXPECT_FALSE(base64url_decode("Zm9vY"));  // impossible length
  EXPECT_FALSE(base64url_decode("Zh"));     // non-zero unused bits (non-canonical)
  EXPECT_FALSE(base64url_decode("Zm9"));    // "fo" is Zm8
  EXPECT_FALSE(base64url_decode("Zm+v"));   // standard alphabet
  EXPECT_FALSE(base64url_decode("Zm/v"));
  EXPECT_FALSE(base64url_decode("Zm9 v"));
  EXPECT_FALSE(base64url_decode("Zm9v\n"));
  EXPECT_FALSE(base64url_decode("Zm.v"));
  EXPECT_FALSE(base64url_decode(std::string("Zm\0v", 4)));
  EXPECT_FALSE(base64url_decode("Zm9\xc3\xa9"));
}

TEST(Crypto, Base64StandardForBasicAuth) {
  EXPECT_EQ(base64_decode("dXNlcjpwYXNz"), "user:pass");
  EXPECT_EQ(base64_decode("Zm9vYmFy"), "foobar");
  EXPECT_EQ(base64_decode("Zm9vYg=="), "foob");
  EXPECT_EQ(base64_decode("Zm9vYmE="), "fooba");
  EXPECT_EQ(base64_decode("Zm9vYg"), "foob");  // padding optional
  EXPECT_EQ(base64_decode("  Zm9vYg==\t"), "foob");
  EXPECT_EQ(base64_decode("+/8="), "\xfb\xff");
  EXPECT_EQ(base64_decode(""), "");
  EXPECT_FALSE(base64_decode("Zm9vYg="));  // wrong padding
  EXPECT_FALSE(base64_decode("Zm9vYmE=="));
  EXPECT_FALSE(base64_decode("Zg==="));
  EXPECT_FALSE(base64_decode("=Zg="));
  EXPECT_FALSE(base64_decode("Zm9v-_8"));  // URL alphabet
  EXPECT_FALSE(base64_decode("Zm9v YmFy"));
  EXPECT_FALSE(base64_decode("Z"));
  EXPECT_FALSE(base64_decode("===="));
}

TEST(Crypto, Hex) {
  EXPECT_EQ(hex_encode("\x01\xab\xff"), "01abff");
  EXPECT_EQ(hex_decode("01abff"), "\x01\xab\xff");
  EXPECT_EQ(hex_decode("01ABFF"), "\x01\xab\xff");
  EXPECT_FALSE(hex_decode("abc"));
  EXPECT_FALSE(hex_decode("zz"));
}

TEST(Crypto, RandomBytes) {
  EXPECT_EQ(random_bytes(0), "");
  EXPECT_EQ(random_bytes(32).size(), 32u);
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) seen.insert(random_bytes(16));
  EXPECT_EQ(seen.size(), 100u);
}

TEST(Crypto, PasswordHashFormatAndVerify) {
  const std::string h = hash_password("correct horse", 1000);
  // pbkdf2-sha256$1000$<22 chars: 16-byte salt>$<43 chars: 32-byte hash>
  ASSERT_EQ(h.rfind("pbkdf2-sha256$1000$", 0), 0u) << h;
  const std::string rest = h.substr(std::string("pbkdf2-sha256$1000$").size());
  const auto dollar = rest.find('$');
  ASSERT_NE(dollar, std::string::npos);
  EXPECT_EQ(base64url_decode(rest.substr(0, dollar))->size(), 16u);
  EXPECT_EQ(base64url_decode(rest.substr(dollar + 1))->size(), 32u);

  EXPECT_TRUE(verify_password("correct horse", h));
  EXPECT_FALSE(verify_password("correct horsE", h));
  EXPECT_FALSE(verify_password("", h));
  EXPECT_FALSE(verify_password("correct horse ", h));

  // A fresh salt each time.
  const std::string h2 = hash_password("correct horse", 1000);
  EXPECT_NE(h, h2);
  EXPECT_TRUE(verify_password("correct horse", h2));

  // The empty password is a password like any other.
  EXPECT_TRUE(verify_password("", hash_password("", 10)));
  EXPECT_FALSE(verify_password("x", hash_password("", 10)));
}

TEST(Crypto, PasswordHashDefaultIterations) {
  const std::string h = hash_password("pw");
  EXPECT_EQ(h.rfind("pbkdf2-sha256$100000$", 0), 0u) << h;
  EXPECT_TRUE(verify_password("pw", h));
}

TEST(Crypto, PasswordVerifyRejectsMalformed) {
  const std::string h = hash_password("pw", 10);
  const auto parts_from = h.find('$', std::string("pbkdf2-sha256$").size());
  const std::string salt_and_hash = h.substr(parts_from);  // "$salt$hash"
  EXPECT_FALSE(verify_password("pw", ""));
  EXPECT_FALSE(verify_password("pw", "pw"));
  EXPECT_FALSE(verify_password("pw", "pbkdf2-sha1$10" + salt_and_hash));
  EXPECT_FALSE(verify_password("pw", "pbkdf2-sha256$11" + salt_and_hash));
  EXPECT_FALSE(verify_password("pw", "pbkdf2-sha256$010" + salt_and_hash));
  EXPECT_FALSE(verify_password("pw", "pbkdf2-sha256$0" + salt_and_hash));
  EXPECT_FALSE(verify_password("pw", "pbkdf2-sha256$-10" + salt_and_hash));
  EXPECT_FALSE(verify_password("pw", "pbkdf2-sha256$99999999" + salt_and_hash));
  EXPECT_FALSE(verify_password("pw", h + "$extra"));
  EXPECT_FALSE(verify_password("pw", h + "="));
  EXPECT_FALSE(verify_password("pw", "pbkdf2-sha256$10$$"));
  EXPECT_TRUE(verify_password("pw", "pbkdf2-sha256$10" + salt_and_hash));
}

TEST(Crypto, HashSecretIsSha256Hex) {
  EXPECT_EQ(hash_secret("abc"), sha256_hex("abc"));
  EXPECT_EQ(hash_secret("abc").size(), 64u);
  EXPECT_NE(hash_secret("abc"), hash_secret("abd"));
}

}  // namespace
}  // namespace herald
