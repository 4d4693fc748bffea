#include "core/principal.h"

#include <gtest/gtest.h>

#include "core/directory.h"

namespace herald {
namespace {

event_ptr ev(std::string tenant, std::string topic, std::string app = "", std::string subject = "",
             std::string type = "t") {
  auto e = std::make_shared<event>();
  e->tenant = std::move(tenant);
  e->topic = std::move(topic);
  e->app = std::move(app);
  e->subject = std::move(subject);
  e->type = std::move(type);
  e->data = "{}";
  return e;
}

TEST(policy, app_roles) {
  principal a;
  a.tenant = "t1";
  a.app_id = "app_a";
  a.app_role = role::app;
  EXPECT_TRUE(may_see(a, *ev("t1", "/x"), nullptr));
  EXPECT_FALSE(may_see(a, *ev("t2", "/x"), nullptr));
  EXPECT_TRUE(may_see(a, *ev("t1", "/x", "app_a"), nullptr));
  EXPECT_FALSE(may_see(a, *ev("t1", "/x", "app_b"), nullptr));
  a.app_role = role::admin;
  EXPECT_TRUE(may_see(a, *ev("t2", "/x", "app_b"), nullptr));
  a.app_role = role::publisher;
  EXPECT_FALSE(may_see(a, *ev("t1", "/x"), nullptr));
}

TEST(policy, user_restrictions) {
  principal u;
  u.kind = principal_kind::user;
  u.tenant = "t1";
  u.extension_id = "101";
  EXPECT_TRUE(may_see(u, *ev("t1", "/account/t1/extension/101/sms", "app_x"), nullptr));
  EXPECT_FALSE(may_see(u, *ev("t1", "/account/t1/extension/102/sms"), nullptr));
  EXPECT_FALSE(may_see(u, *ev("t2", "/account/t2/extension/101/sms"), nullptr));
  u.user_admin = true;
  EXPECT_TRUE(may_see(u, *ev("t1", "/account/t1/extension/102/sms"), nullptr));
  EXPECT_FALSE(may_see(u, *ev("t2", "/x"), nullptr));

  directory d;
  d.put_subject({"t1", "trk1", "tracker", "trk1", "{}", false, false, 0});
  d.put_subject({"t1", "trk2", "tracker", "trk2", "{}", true, false, 0});
  u.trackers = std::vector<std::string>{"trk2"};
  EXPECT_FALSE(may_see(u, *ev("t1", "/x", "", "trk1"), &d));
  EXPECT_FALSE(may_see(u, *ev("t1", "/x", "", "trk2", "state"), &d));  // blocked
  EXPECT_TRUE(may_see(u, *ev("t1", "/x", "", "trk2", "lifecycle"), &d));
  EXPECT_TRUE(may_see(u, *ev("t1", "/x", "", "other"), &d));
  // A corrupted subject: only its (last) lifecycle event still reaches those who held it.
  d.put_subject({"t1", "trk2", "tracker", "trk2", "{}", false, true, 0});
  EXPECT_FALSE(may_see(u, *ev("t1", "/x", "", "trk2", "state"), &d));
  EXPECT_TRUE(may_see(u, *ev("t1", "/x", "", "trk2", "lifecycle"), &d));
}

TEST(directory, subtree) {
  directory d;
  d.add_tenant({"root", "", 0});
  d.add_tenant({"child", "root", 0});
  d.add_tenant({"grand", "child", 0});
  d.add_tenant({"other", "", 0});
  EXPECT_TRUE(d.in_subtree("grand", "root"));
  EXPECT_TRUE(d.in_subtree("root", "root"));
  EXPECT_FALSE(d.in_subtree("other", "root"));
  EXPECT_FALSE(d.in_subtree("root", "child"));
}

}  // namespace
}  // namespace herald
