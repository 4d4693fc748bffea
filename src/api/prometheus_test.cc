#include "api/prometheus.h"

#include <gtest/gtest.h>

namespace herald {
namespace {

TEST(prometheus, a_series_has_help_type_and_value) {
  std::string out;
  write_metric(out, "herald_x", "gauge", "An x.", 3);
  EXPECT_EQ(out, "# HELP herald_x An x.\n# TYPE herald_x gauge\nherald_x 3\n");
}

TEST(prometheus, histogram_buckets_are_cumulative_in_seconds) {
  histogram h;
  h.observe(0.1);   // <= 0.25
  h.observe(0.3);   // <= 0.5
  h.observe(2000);  // above every bound
  std::string out;
  write_histogram(out, "herald_h", "H.", h);
  EXPECT_NE(out.find("# TYPE herald_h histogram\n"), std::string::npos);
  EXPECT_NE(out.find("herald_h_bucket{le=\"0.00025\"} 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("herald_h_bucket{le=\"0.0005\"} 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("herald_h_bucket{le=\"1\"} 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("herald_h_bucket{le=\"+Inf\"} 3\n"), std::string::npos) << out;
  EXPECT_NE(out.find("herald_h_sum 2.000"), std::string::npos) << out;  // 2000.4 ms
  EXPECT_NE(out.find("herald_h_count 3\n"), std::string::npos) << out;
}

TEST(prometheus, labelled_counter_one_series_per_value_escaped) {
  labelled_counter c;
  c.add("1000");
  c.add("1000");
  c.add("a\"b\\c\n");
  std::string out;
  write_labelled(out, "herald_c", "code", "C.", c);
  EXPECT_EQ(out,
            "# HELP herald_c C.\n# TYPE herald_c counter\n"
            "herald_c{code=\"1000\"} 2\n"
            "herald_c{code=\"a\\\"b\\\\c\\n\"} 1\n");
}

}  // namespace
}  // namespace herald
