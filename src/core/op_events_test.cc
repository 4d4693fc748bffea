// op_events (issue #14): the labels of authentication failures and refusals come from the
// error's cause, never from its message, and each event counts its metric under that label.
#include "core/op_events.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/metrics.h"

namespace herald {
namespace {

TEST(op_events, auth_reason_is_the_cause_whatever_the_message) {
  EXPECT_EQ(op_events::auth_failure_reason(error_cause::missing), "missing");
  EXPECT_EQ(op_events::auth_failure_reason(error_cause::malformed), "malformed");
  EXPECT_EQ(op_events::auth_failure_reason(error_cause::expired), "expired");
  EXPECT_EQ(op_events::auth_failure_reason(error_cause::reused), "reused");
  EXPECT_EQ(op_events::auth_failure_reason(error_cause::revoked), "revoked");
  EXPECT_EQ(op_events::auth_failure_reason(error_cause::wrong_kind), "wrong_kind");
  // No cause, or a limit's: invalid (a message saying "expired" changes nothing).
  const error reworded{errc::auth_failed, "this token expired and is missing", {}};
  EXPECT_EQ(op_events::auth_failure_reason(reworded.cause), "invalid");
  EXPECT_EQ(op_events::auth_failure_reason(error_cause::publish_rate), "invalid");
}

TEST(op_events, refusal_limit_is_the_cause_whatever_the_message) {
  EXPECT_EQ(op_events::refusal_limit(error_cause::auth_failures), "auth_failures");
  EXPECT_EQ(op_events::refusal_limit(error_cause::connections), "connections");
  EXPECT_EQ(op_events::refusal_limit(error_cause::connections_per_app), "connections_per_app");
  EXPECT_EQ(op_events::refusal_limit(error_cause::connections_per_tenant),
            "connections_per_tenant");
  EXPECT_EQ(op_events::refusal_limit(error_cause::connections_per_session),
            "connections_per_session");
  EXPECT_EQ(op_events::refusal_limit(error_cause::publish_rate), "publish_rate");
  const error reworded{errc::too_many_requests, "too many publish connections for this tenant", {}};
  EXPECT_EQ(op_events::refusal_limit(reworded.cause), "rate");
  EXPECT_EQ(op_events::refusal_limit(error_cause::expired), "rate");
}

TEST(op_events, events_count_under_their_labels) {
  auto& m = global_metrics();
  auto count = [](const labelled_counter& c, std::vector<std::string> labels) {
    const auto snap = c.snapshot();
    const auto it = snap.find(labels);
    return it == snap.end() ? std::uint64_t{0} : it->second;
  };
  const auto auth0 = count(m.auth_failures, {"test", "expired"});
  const auto ref0 = count(m.refusals, {"none", "max_connections"});
  op_events::auth_failed("test", op_events::auth_failure_reason(error_cause::expired), "", "x");
  op_events::refused("none", "max_connections", "", "127.0.0.9", 503, "full");
  EXPECT_EQ(count(m.auth_failures, {"test", "expired"}), auth0 + 1);
  EXPECT_EQ(count(m.refusals, {"none", "max_connections"}), ref0 + 1);
}

}  // namespace
}  // namespace herald
