#include "api/numbers.h"

#include <gtest/gtest.h>

namespace herald {
namespace {

TEST(parse_u64, accepts_plain_decimal_digits) {
  EXPECT_EQ(parse_u64("0"), 0u);
  EXPECT_EQ(parse_u64("7"), 7u);
  EXPECT_EQ(parse_u64("0010"), 10u);  // leading zeros are still decimal, not octal
  EXPECT_EQ(parse_u64("18446744073709551615"), UINT64_MAX);
}

TEST(parse_u64, refuses_anything_else) {
  for (const char* s : {"", " ", "10abc", "abc", " 7", "7 ", "+7", "-7", "-0", "1e3", "0x10", "1.0",
                        "1,000", "\t1", "1\n", "18446744073709551616", "99999999999999999999999"})
    EXPECT_EQ(parse_u64(s), std::nullopt) << "'" << s << "'";
  // An embedded NUL does not end the string early.
  EXPECT_EQ(parse_u64(std::string_view("12\0"
                                       "3",
                                       4)),
            std::nullopt);
}

TEST(parse_i64, accepts_digits_with_an_optional_minus) {
  EXPECT_EQ(parse_i64("0"), 0);
  EXPECT_EQ(parse_i64("-0"), 0);
  EXPECT_EQ(parse_i64("42"), 42);
  EXPECT_EQ(parse_i64("-42"), -42);
  EXPECT_EQ(parse_i64("9223372036854775807"), INT64_MAX);
  EXPECT_EQ(parse_i64("-9223372036854775808"), INT64_MIN);
}

TEST(parse_i64, refuses_anything_else) {
  for (const char* s : {"", "-", "+1", "--1", "- 1", " 1", "1 ", "1a", "-1a", "0x1", "-0x1",
                        "9223372036854775808", "-9223372036854775809", "1.5"})
    EXPECT_EQ(parse_i64(s), std::nullopt) << "'" << s << "'";
}

TEST(number_param, names_the_parameter_and_echoes_the_text) {
  auto r = number_param("limit", "10abc", 1, 1000);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::bad_message);
  EXPECT_EQ(r.err().message, "limit: not a number: '10abc'");

  r = number_param("limit", "5000", 1, 1000);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().message, "limit: must be from 1 to 1000, got '5000'");

  r = number_param("limit", "0", 1, 1000);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().message, "limit: must be from 1 to 1000, got '0'");

  r = number_param("since offset", "99999999999999999999");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().message, "since offset: out of range: '99999999999999999999'");

  r = number_param("limit", "");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().message, "limit: not a number: ''");
}

TEST(number_param, bounds_are_inclusive) {
  EXPECT_EQ(*number_param("limit", "1", 1, 1000), 1u);
  EXPECT_EQ(*number_param("limit", "1000", 1, 1000), 1000u);
}

TEST(number_param, echo_is_short_and_printable) {
  // Bytes outside printable ASCII are escaped, so the error body stays valid UTF-8.
  auto r = number_param("limit", "1\xff\n'");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().message, "limit: not a number: '1\\xff\\x0a''");
  r = number_param("limit", std::string(100, 'x'));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().message, "limit: not a number: '" + std::string(32, 'x') + "...'");
}

}  // namespace
}  // namespace herald
