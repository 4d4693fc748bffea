// The store contract: one suite run against every back end (memory, and sqlite in a fresh
// temporary directory), plus the sqlite-only guarantees (group commit, savepoints, reopen).
#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/clock.h"
#include "store/memory/memory_store.h"
#include "store/redis/redis_server_for_test.h"
#include "store/sqlite/sqlite_store.h"
#include "store/store.h"
#include "store/test_helpers.h"

namespace herald {
namespace {

namespace fs = std::filesystem;

std::string make_temp_dir() {
  std::string tmpl = (fs::temp_directory_path() / "herald_store_test_XXXXXX").string();
  char* p = mkdtemp(tmpl.data());
  EXPECT_NE(p, nullptr);
  return tmpl;
}

using test::draft;
using test::one;

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

std::vector<std::int64_t> offsets_of(const std::vector<event_ptr>& evs) {
  std::vector<std::int64_t> out;
  for (const auto& e : evs) out.push_back(e->offset);
  return out;
}

// Records what the append listener sees.
struct listener_log {
  std::mutex mu;
  std::vector<std::vector<event_ptr>> batches;

  store::append_listener fn() {
    return [this](std::vector<event_ptr> b) {
      std::lock_guard lk(mu);
      batches.push_back(std::move(b));
    };
  }
  std::vector<std::int64_t> offsets() {
    std::lock_guard lk(mu);
    std::vector<std::int64_t> out;
    for (const auto& b : batches) {
      for (const auto& e : b) out.push_back(e->offset);
    }
    return out;
  }
  std::size_t count() {
    std::lock_guard lk(mu);
    return batches.size();
  }
};

class store_contract : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir();
    std::string spec = GetParam();
    if (spec == "redis") {  // a fresh redis-server per test (killed by PID when it ends)
      redis_ = std::make_unique<redis::redis_server_for_test>();
      spec = redis_->url();
    }
    auto s = open_store(spec, dir_);
    ASSERT_TRUE(s.ok()) << s.err().message;
    st_ = std::move(*s);
  }
  void TearDown() override {
    if (st_) st_->close();
    st_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  event_ptr append1(event_draft d) {
    auto r = st_->append(one(std::move(d)));
    EXPECT_TRUE(r.ok()) << r.err().message;
    if (!r.ok() || r->size() != 1) return nullptr;
    return r->front();
  }

  std::vector<event_ptr> read(log_query q) {
    auto r = st_->read(q);
    EXPECT_TRUE(r.ok()) << r.err().message;
    return r.ok() ? std::move(*r) : std::vector<event_ptr>{};
  }

  std::unique_ptr<redis::redis_server_for_test> redis_;
  std::string dir_;
  std::unique_ptr<store> st_;
};

TEST_P(store_contract, append_fills_every_field) {
  const std::int64_t t0 = now_ms();
  std::vector<event_draft> batch;
  batch.push_back(draft("acme", "msg-1", false, "{ \"a\" : 1,\n \"s\":\"\\u00e9 é\" }"));
  batch.push_back(draft("acme"));
  batch.back().app = "app_1";
  batch.push_back(draft("acme", "msg-2", true));
  auto r = st_->append(std::move(batch));
  const std::int64_t t1 = now_ms();
  ASSERT_TRUE(r.ok()) << r.err().message;
  ASSERT_EQ(r->size(), 3u);
  const auto& e = *r;
  EXPECT_EQ(offsets_of(e), (std::vector<std::int64_t>{1, 2, 3}));
  std::set<std::string> ids;
  for (const auto& ev : e) {
    EXPECT_EQ(ev->id.rfind("evt_", 0), 0u) << ev->id;
    ids.insert(ev->id);
    EXPECT_GE(ev->time_ms, t0);
    EXPECT_LE(ev->time_ms, t1);
    EXPECT_EQ(ev->tenant, "acme");
    EXPECT_EQ(ev->topic, "/t/acme/things");
    EXPECT_EQ(ev->type, "thing.happened");
  }
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(e[0]->data, "{ \"a\" : 1,\n \"s\":\"\\u00e9 é\" }");
  EXPECT_EQ(e[0]->subject, "msg-1");
  EXPECT_FALSE(e[0]->retain);
  EXPECT_EQ(e[1]->app, "app_1");
  EXPECT_EQ(e[1]->subject, "");
  EXPECT_TRUE(e[2]->retain);

  // What read() returns is the same, byte for byte.
  auto back = read(log_query{});
  ASSERT_EQ(back.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(back[i]->id, e[i]->id);
    EXPECT_EQ(back[i]->offset, e[i]->offset);
    EXPECT_EQ(back[i]->time_ms, e[i]->time_ms);
    EXPECT_EQ(back[i]->data, e[i]->data);
    EXPECT_EQ(back[i]->app, e[i]->app);
    EXPECT_EQ(back[i]->subject, e[i]->subject);
    EXPECT_EQ(back[i]->retain, e[i]->retain);
    EXPECT_EQ(back[i]->topic, e[i]->topic);
    EXPECT_EQ(back[i]->type, e[i]->type);
  }
  ASSERT_NE(back[0]->data_object(), nullptr);
}

// A batch larger than any one statement of a back end (sqlite inserts rows in chunks of 64, 16,
// 4 and 1): 64 + 64 + 16 + 4 + 3 = 151 events, every field distinct, stored and read back in
// order, with their states and first-seen subjects.
TEST_P(store_contract, a_large_batch_keeps_every_field_in_order) {
  constexpr int n = 151;
  std::vector<event_draft> batch;
  for (int i = 0; i < n; ++i) {
    const std::string tenant = i % 3 == 0 ? "acme" : "beta";
    const std::string subject = i % 5 == 0 ? "" : "dev-" + std::to_string(i % 7);
    batch.push_back(draft(tenant, subject, !subject.empty() && i % 2 == 0,
                          " {\"i\": " + std::to_string(i) + ", \"a\": [1, {\"b\": null}]}\n",
                          "type." + std::to_string(i)));
    batch.back().topic = "/t/" + tenant + "/n" + std::to_string(i);
    batch.back().app = "app_" + std::to_string(i % 4);
  }
  const std::vector<event_draft> sent = batch;
  auto r = st_->append(std::move(batch));
  ASSERT_TRUE(r.ok()) << r.err().message;
  ASSERT_EQ(r->size(), static_cast<std::size_t>(n));
  log_query all;
  all.limit = 1000;
  auto back = read(all);
  ASSERT_EQ(back.size(), static_cast<std::size_t>(n));
  std::map<std::pair<std::string, std::string>, std::int64_t> last_retained;
  for (int i = 0; i < n; ++i) {
    const event_draft& d = sent[static_cast<std::size_t>(i)];
    const event& e = *back[static_cast<std::size_t>(i)];
    EXPECT_EQ(e.offset, i + 1);
    EXPECT_EQ(e.id, (*r)[static_cast<std::size_t>(i)]->id);
    EXPECT_EQ(e.time_ms, (*r)[static_cast<std::size_t>(i)]->time_ms);
    EXPECT_EQ(e.topic, d.topic);
    EXPECT_EQ(e.type, d.type);
    EXPECT_EQ(e.tenant, d.tenant);
    EXPECT_EQ(e.app, d.app);
    EXPECT_EQ(e.subject, d.subject);
    EXPECT_EQ(e.data, d.data);
    EXPECT_EQ(e.retain, d.retain);
    if (d.retain) last_retained[{d.tenant, d.subject}] = e.offset;
  }
  log_query beta;
  beta.tenants = {"beta"};
  beta.limit = 1000;
  EXPECT_EQ(read(beta).size(), static_cast<std::size_t>(n - (n + 2) / 3));
  ASSERT_FALSE(last_retained.empty());
  for (const auto& [key, off] : last_retained) {
    auto s = st_->state(key.first, key.second);
    ASSERT_TRUE(s.ok() && s->has_value()) << key.first << "/" << key.second;
    EXPECT_EQ((**s)->offset, off);
    auto seen = st_->subject_seen(key.first, key.second);
    EXPECT_TRUE(seen.ok() && *seen);
  }
  auto next = append1(draft("acme"));
  ASSERT_NE(next, nullptr);
  EXPECT_EQ(next->offset, n + 1);
}

// The same with what one publish sends: every event of the batch of one tenant, type, app and
// subject (sqlite binds those once per chunk), then a batch whose 64th event alone differs.
TEST_P(store_contract, a_large_batch_of_one_publish_keeps_every_field_in_order) {
  auto batch_of = [](int n, const std::string& subject, bool retain) {
    std::vector<event_draft> batch;
    for (int i = 0; i < n; ++i) {
      batch.push_back(draft("acme", subject, retain, R"({"i":)" + std::to_string(i) + "}"));
      batch.back().topic = "/t/acme/n" + std::to_string(i);
      batch.back().app = "app_1";
    }
    return batch;
  };
  std::vector<event_draft> first = batch_of(87, "dev-1", true);  // 64 + 16 + 4 + 3
  std::vector<event_draft> second = batch_of(70, "", false);     // 64 + 4 + 2
  second[63].subject = "dev-2";
  second[63].type = "other.type";
  std::vector<event_draft> sent = first;
  sent.insert(sent.end(), second.begin(), second.end());
  auto a = st_->append(std::move(first));
  ASSERT_TRUE(a.ok()) << a.err().message;
  auto b = st_->append(std::move(second));
  ASSERT_TRUE(b.ok()) << b.err().message;
  std::vector<event_ptr> got = *a;
  got.insert(got.end(), b->begin(), b->end());
  log_query all;
  all.limit = 1000;
  auto back = read(all);
  ASSERT_EQ(back.size(), sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) {
    const event_draft& d = sent[i];
    const event& e = *back[i];
    EXPECT_EQ(e.offset, static_cast<std::int64_t>(i + 1));
    EXPECT_EQ(e.id, got[i]->id);
    EXPECT_EQ(e.time_ms, got[i]->time_ms);
    EXPECT_EQ(e.topic, d.topic);
    EXPECT_EQ(e.type, d.type) << i;
    EXPECT_EQ(e.tenant, d.tenant);
    EXPECT_EQ(e.app, d.app);
    EXPECT_EQ(e.subject, d.subject) << i;
    EXPECT_EQ(e.data, d.data);
    EXPECT_EQ(e.retain, d.retain);
  }
  auto s = st_->state("acme", "dev-1");
  ASSERT_TRUE(s.ok() && s->has_value());
  EXPECT_EQ((**s)->offset, 87);
  auto seen = st_->subject_seen("acme", "dev-2");
  EXPECT_TRUE(seen.ok() && *seen);
  log_query by_subject;
  by_subject.subject = "dev-2";
  EXPECT_EQ(offsets_of(read(by_subject)), (std::vector<std::int64_t>{87 + 64}));
}

TEST_P(store_contract, offsets_increase_and_times_never_decrease) {
  std::int64_t last_off = 0, last_time = 0;
  for (int i = 0; i < 50; ++i) {
    auto e = append1(draft(i % 2 ? "a" : "b"));
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->offset, last_off + 1);
    EXPECT_GE(e->time_ms, last_time);
    last_off = e->offset;
    last_time = e->time_ms;
  }
}

TEST_P(store_contract, invalid_batch_stores_nothing) {
  auto bad = [&](event_draft d, const std::string& field) {
    std::vector<event_draft> batch;
    batch.push_back(draft("acme", "s1", true));
    batch.push_back(std::move(d));
    auto r = st_->append(std::move(batch));
    ASSERT_FALSE(r.ok()) << field;
    EXPECT_EQ(r.err().code, errc::bad_message) << field;
    EXPECT_NE(r.err().message.find("events[1]." + field), std::string::npos) << r.err().message;
  };
  bad(draft(""), "tenant");
  bad(draft("acme", "", false, R"({"a":1})", ""), "type");
  auto no_topic = draft("acme");
  no_topic.topic = "";
  bad(std::move(no_topic), "topic");
  bad(draft("acme", "", true), "retain");
  bad(draft("acme", "", false, "[1,2]"), "data");
  bad(draft("acme", "", false, "{\"a\":"), "data");
  bad(draft("acme", "", false, ""), "data");
  bad(draft("acme", "", false, "{} {}"), "data");
  bad(draft("acme", "", false, "{}x"), "data");
  bad(draft("acme", "", false, "{\"s\":\"\xff\"}"), "data");  // not UTF-8
  bad(draft("acme", "", false,
            std::string(33, '[').insert(0, "{\"a\":") + std::string(33, ']') + "}"),
      "data");  // deeper than the parser's default 32

  EXPECT_TRUE(read(log_query{}).empty());
  auto st = st_->state("acme", "s1");
  ASSERT_TRUE(st.ok());
  EXPECT_FALSE(st->has_value());
  auto seen = st_->subject_seen("acme", "s1");
  ASSERT_TRUE(seen.ok());
  EXPECT_FALSE(*seen);
  // Nothing was consumed: the next offset is still 1.
  auto e = append1(draft("acme"));
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->offset, 1);
}

TEST_P(store_contract, empty_batch_is_a_no_op) {
  auto r = st_->append({});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  EXPECT_TRUE(read(log_query{}).empty());
}

TEST_P(store_contract, listener_sees_every_batch_in_offset_order_before_append_returns) {
  listener_log log;
  st_->set_append_listener(log.fn());
  for (int i = 0; i < 5; ++i) {
    std::vector<event_draft> b;
    for (int k = 0; k <= i; ++k) b.push_back(draft("acme"));
    auto r = st_->append(std::move(b));
    ASSERT_TRUE(r.ok());
    // The listener already saw this batch.
    auto seen = log.offsets();
    ASSERT_FALSE(seen.empty());
    EXPECT_EQ(seen.back(), r->back()->offset);
  }
  EXPECT_EQ(log.count(), 5u);

  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        std::vector<event_draft> b;
        b.push_back(draft("acme"));
        b.push_back(draft("beta"));
        EXPECT_TRUE(st_->append(std::move(b)).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  auto offs = log.offsets();
  ASSERT_EQ(offs.size(), 15u + 200u);
  for (std::size_t i = 0; i < offs.size(); ++i) {
    EXPECT_EQ(offs[i], static_cast<std::int64_t>(i + 1));
  }
  // Each batch arrives whole; the cluster store's in one call per run of one tenant's events
  // (one pub/sub message per tenant: a node may follow one tenant and not the other).
  const std::size_t per_batch = GetParam() == "redis" ? 1 : 2;
  EXPECT_EQ(log.count(), 5u + 200u / per_batch);
  std::lock_guard lk(log.mu);
  for (std::size_t i = 5; i < log.batches.size(); ++i) EXPECT_EQ(log.batches[i].size(), per_batch);
}

TEST_P(store_contract, listener_may_read_what_was_just_committed) {
  std::mutex mu;
  std::vector<std::size_t> visible;  // per batch: how many of its events read() returned
  st_->set_append_listener([&](std::vector<event_ptr> b) {
    log_query q;
    q.after_offset = b.front()->offset - 1;
    auto r = st_->read(q);
    auto s = st_->state(b.front()->tenant, b.front()->subject);
    std::lock_guard lk(mu);
    visible.push_back(r.ok() ? r->size() : 0);
    EXPECT_TRUE(s.ok() && s->has_value());
  });
  std::vector<event_draft> b;
  b.push_back(draft("acme", "dev-1", true));
  b.push_back(draft("acme", "dev-1"));
  ASSERT_TRUE(st_->append(std::move(b)).ok());
  ASSERT_NE(append1(draft("acme", "dev-1", true)), nullptr);
  std::lock_guard lk(mu);
  EXPECT_EQ(visible, (std::vector<std::size_t>{2, 1}));
}

TEST_P(store_contract, read_bounds) {
  // acme: s1 s2 s1 | beta: s1 | gamma: -   (times spaced apart)
  std::vector<event_ptr> e;
  e.push_back(append1(draft("acme", "s1")));
  sleep_ms(3);
  e.push_back(append1(draft("beta", "s1")));
  sleep_ms(3);
  e.push_back(append1(draft("acme", "s2")));
  sleep_ms(3);
  e.push_back(append1(draft("gamma")));
  sleep_ms(3);
  e.push_back(append1(draft("acme", "s1")));
  for (const auto& p : e) ASSERT_NE(p, nullptr);

  EXPECT_EQ(offsets_of(read(log_query{})), (std::vector<std::int64_t>{1, 2, 3, 4, 5}));

  log_query q;
  q.tenants = {"acme"};
  EXPECT_EQ(offsets_of(read(q)), (std::vector<std::int64_t>{1, 3, 5}));
  q.tenants = {"acme", "gamma"};
  EXPECT_EQ(offsets_of(read(q)), (std::vector<std::int64_t>{1, 3, 4, 5}));
  q.tenants = {"nobody"};
  EXPECT_TRUE(read(q).empty());

  q = {};
  q.after_offset = 3;
  EXPECT_EQ(offsets_of(read(q)), (std::vector<std::int64_t>{4, 5}));
  q.after_offset = 5;
  EXPECT_TRUE(read(q).empty());

  q = {};
  q.since_ms = e[2]->time_ms;
  EXPECT_EQ(offsets_of(read(q)), (std::vector<std::int64_t>{3, 4, 5}));
  q.until_ms = e[4]->time_ms;
  EXPECT_EQ(offsets_of(read(q)), (std::vector<std::int64_t>{3, 4}));
  q.since_ms.reset();
  EXPECT_EQ(offsets_of(read(q)), (std::vector<std::int64_t>{1, 2, 3, 4}));
  q.until_ms = e[0]->time_ms;
  EXPECT_TRUE(read(q).empty());
  q = {};
  q.since_ms = e[4]->time_ms + 1000;
  EXPECT_TRUE(read(q).empty());
  q = {};
  q.until_ms = e[4]->time_ms + 1000;
  EXPECT_EQ(read(q).size(), 5u);

  // Tenants with time bounds (sqlite: through the tenant runs, stopped by the bound).
  q = {};
  q.tenants = {"acme"};
  q.until_ms = e[4]->time_ms;
  EXPECT_EQ(offsets_of(read(q)), (std::vector<std::int64_t>{1, 3}));
  q.since_ms = e[1]->time_ms;
  EXPECT_EQ(offsets_of(read(q)), (std::vector<std::int64_t>{3}));
  q.tenants = {"acme", "gamma"};
  EXPECT_EQ(offsets_of(read(q)), (std::vector<std::int64_t>{3, 4}));
  q.since_ms.reset();
  q.until_ms = e[3]->time_ms;
  EXPECT_EQ(offsets_of(read(q)), (std::vector<std::int64_t>{1, 3}));
  q = {};
  q.tenants = {"gamma"};
  q.subject = "";
  EXPECT_EQ(offsets_of(read(q)), (std::vector<std::int64_t>{4}));

  q = {};
  q.subject = "s1";
  EXPECT_EQ(offsets_of(read(q)), (std::vector<std::int64_t>{1, 2, 5}));
  q.tenants = {"acme"};
  EXPECT_EQ(offsets_of(read(q)), (std::vector<std::int64_t>{1, 5}));
  q.after_offset = 1;
  EXPECT_EQ(offsets_of(read(q)), (std::vector<std::int64_t>{5}));

  q = {};
  q.limit = 2;
  EXPECT_EQ(offsets_of(read(q)), (std::vector<std::int64_t>{1, 2}));
  q.tenants = {"acme"};
  q.after_offset = 1;
  EXPECT_EQ(offsets_of(read(q)), (std::vector<std::int64_t>{3, 5}));
  q.limit = 0;
  EXPECT_TRUE(read(q).empty());
}

TEST_P(store_contract, retained_state_latest_wins) {
  auto a = append1(draft("acme", "dev-1", true, R"({"v":1})"));
  auto b = append1(draft("acme", "dev-2", true, R"({"v":2})"));
  append1(draft("acme", "dev-1", false, R"({"v":"live"})"));  // not retained
  auto c = append1(draft("acme", "dev-1", true, R"({"v":3})"));
  auto d = append1(draft("beta", "dev-1", true, R"({"v":4})"));
  ASSERT_TRUE(a && b && c && d);

  auto s = st_->state("acme", "dev-1");
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(s->has_value());
  EXPECT_EQ((**s)->offset, c->offset);
  EXPECT_EQ((**s)->data, R"({"v":3})");
  EXPECT_EQ((**s)->id, c->id);
  EXPECT_EQ((**s)->time_ms, c->time_ms);
  EXPECT_TRUE((**s)->retain);

  s = st_->state("beta", "dev-1");
  ASSERT_TRUE(s.ok() && s->has_value());
  EXPECT_EQ((**s)->offset, d->offset);
  s = st_->state("acme", "dev-9");
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->has_value());
  s = st_->state("gamma", "dev-1");
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->has_value());

  auto all = st_->states({});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(offsets_of(*all), (std::vector<std::int64_t>{b->offset, c->offset, d->offset}));
  auto acme = st_->states({"acme"});
  ASSERT_TRUE(acme.ok());
  EXPECT_EQ(offsets_of(*acme), (std::vector<std::int64_t>{b->offset, c->offset}));
  auto two = st_->states({"beta", "acme"});
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->size(), 3u);
  auto none = st_->states({"gamma"});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_P(store_contract, subject_seen_per_tenant) {
  append1(draft("acme", "msg-1"));
  append1(draft("acme"));
  auto seen = [&](const char* t, const char* s) {
    auto r = st_->subject_seen(t, s);
    EXPECT_TRUE(r.ok());
    return r.ok() && *r;
  };
  EXPECT_TRUE(seen("acme", "msg-1"));
  EXPECT_FALSE(seen("beta", "msg-1"));
  EXPECT_FALSE(seen("acme", "msg-2"));
  EXPECT_FALSE(seen("acme", ""));
}

TEST_P(store_contract, records_put_get_erase_load) {
  ASSERT_TRUE(st_->put_record("app", "app_1", R"({"name":"one"})").ok());
  ASSERT_TRUE(st_->put_record("app", "app_2", R"({"name":"two"})").ok());
  ASSERT_TRUE(st_->put_record("tenant", "app_1", R"({"other":"kind"})").ok());
  auto g = st_->get_record("app", "app_1");
  ASSERT_TRUE(g.ok());
  ASSERT_TRUE(g->has_value());
  EXPECT_EQ(**g, R"({"name":"one"})");

  ASSERT_TRUE(st_->put_record("app", "app_1", R"({"name":"uno"})").ok());  // replaces
  g = st_->get_record("app", "app_1");
  ASSERT_TRUE(g.ok() && g->has_value());
  EXPECT_EQ(**g, R"({"name":"uno"})");

  auto all = st_->load_records("app");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  std::set<std::string> keys;
  for (const auto& r : *all) keys.insert(r.key + "=" + r.json);
  EXPECT_EQ(keys, (std::set<std::string>{R"(app_1={"name":"uno"})", R"(app_2={"name":"two"})"}));

  ASSERT_TRUE(st_->erase_record("app", "app_1").ok());
  ASSERT_TRUE(st_->erase_record("app", "missing").ok());
  g = st_->get_record("app", "app_1");
  ASSERT_TRUE(g.ok());
  EXPECT_FALSE(g->has_value());
  all = st_->load_records("app");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 1u);
  auto other = st_->get_record("tenant", "app_1");
  ASSERT_TRUE(other.ok() && other->has_value());
  auto empty = st_->load_records("nothing");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST_P(store_contract, put_record_if_absent_keeps_the_first) {
  auto first = st_->put_record_if_absent("cluster", "token_key", R"({"key":"one"})");
  ASSERT_TRUE(first.ok()) << first.err().message;
  EXPECT_EQ(*first, R"({"key":"one"})");
  auto second = st_->put_record_if_absent("cluster", "token_key", R"({"key":"two"})");
  ASSERT_TRUE(second.ok()) << second.err().message;
  EXPECT_EQ(*second, R"({"key":"one"})");  // the record already there wins, and stays
  auto g = st_->get_record("cluster", "token_key");
  ASSERT_TRUE(g.ok() && g->has_value());
  EXPECT_EQ(**g, R"({"key":"one"})");
}

TEST_P(store_contract, prune_records_drops_only_expired_records_of_the_kind) {
  const std::int64_t now = now_ms();
  const auto doc = [](const std::string& expires) {
    return R"({"x":1,"expires_ms":)" + expires + "}";
  };
  ASSERT_TRUE(st_->put_record("idem", "old", doc(std::to_string(now - 1000))).ok());
  ASSERT_TRUE(st_->put_record("idem", "edge", doc(std::to_string(now))).ok());
  ASSERT_TRUE(st_->put_record("idem", "live", doc(std::to_string(now + 60000))).ok());
  ASSERT_TRUE(st_->put_record("idem", "never", doc("0")).ok());
  ASSERT_TRUE(st_->put_record("idem", "null", doc("null")).ok());
  ASSERT_TRUE(st_->put_record("idem", "none", R"({"x":1})").ok());
  ASSERT_TRUE(st_->put_record("login", "old", doc(std::to_string(now - 1000))).ok());
  auto gone = st_->prune_records("idem", now);
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(*gone, 2u);
  auto left = st_->load_records("idem");
  ASSERT_TRUE(left.ok());
  std::set<std::string> keys;
  for (const auto& r : *left) keys.insert(r.key);
  EXPECT_EQ(keys, (std::set<std::string>{"live", "never", "null", "none"}));
  // Another kind is untouched until it is pruned itself.
  auto login = st_->get_record("login", "old");
  ASSERT_TRUE(login.ok() && login->has_value());
  gone = st_->prune_records("login", now);
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(*gone, 1u);
  gone = st_->prune_records("nothing", now);
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(*gone, 0u);
}

TEST_P(store_contract, claim_once_true_then_false) {
  const std::int64_t exp = now_ms() + 60000;
  auto a = st_->claim_once("tok-1", exp);
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(*a);
  auto b = st_->claim_once("tok-1", exp);
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(*b);
  auto c = st_->claim_once("tok-2", exp);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(*c);

  // Concurrent claims of one key: exactly one wins.
  std::atomic<int> wins{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      auto r = st_->claim_once("race", exp);
      if (r.ok() && *r) ++wins;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wins.load(), 1);
}

// Time bounds on a log with holes: pruning leaves retained states behind among the gone
// events, and every since/until bound still selects exactly the events of those times
// (SQLite finds a time bound by bisecting offsets, with no index on time).
TEST_P(store_contract, time_bounds_hold_on_a_pruned_log_with_holes) {
  std::vector<event_ptr> all;
  for (int round = 0; round < 6; ++round) {
    for (int i = 0; i < 5; ++i) {
      const bool state = i == 2;  // one retained state per round, on its own subject
      auto e = append1(draft("acme", state ? "dev-" + std::to_string(round) : "", state));
      ASSERT_NE(e, nullptr);
      all.push_back(e);
    }
    sleep_ms(3);
  }
  const std::int64_t cut = all[15]->time_ms;  // rounds 0-2 pruned but their states
  ASSERT_TRUE(st_->prune(cut).ok());
  const auto kept = read(log_query{});
  ASSERT_EQ(kept.size(), 3u + 15u);
  std::vector<std::int64_t> times;
  for (const auto& e : kept) times.push_back(e->time_ms);
  times.push_back(times.back() + 1);
  times.push_back(times.front() - 1);
  for (std::int64_t t : times) {
    std::vector<std::int64_t> since, until;
    for (const auto& e : kept) (e->time_ms >= t ? since : until).push_back(e->offset);
    log_query q;
    q.since_ms = t;
    EXPECT_EQ(offsets_of(read(q)), since) << "since " << t;
    q = {};
    q.until_ms = t;
    EXPECT_EQ(offsets_of(read(q)), until) << "until " << t;
  }
  log_query q;  // a subject's events by the subject index
  q.subject = "dev-4";
  EXPECT_EQ(offsets_of(read(q)), (std::vector<std::int64_t>{all[22]->offset}));
}

TEST_P(store_contract, prune_keeps_retained_states_and_drops_expired_guards) {
  auto old_state_superseded = append1(draft("acme", "dev-1", true, R"({"v":1})"));
  auto old_plain = append1(draft("acme", "msg-1"));
  auto old_state = append1(draft("acme", "dev-2", true, R"({"v":2})"));
  auto cur_state = append1(draft("acme", "dev-1", true, R"({"v":3})"));
  sleep_ms(5);
  const std::int64_t cut = now_ms();
  sleep_ms(5);
  auto fresh = append1(draft("acme", "msg-2"));
  ASSERT_TRUE(old_state_superseded && old_plain && old_state && cur_state && fresh);

  ASSERT_TRUE(st_->claim_once("expired", now_ms() - 1000).ok());
  ASSERT_TRUE(st_->claim_once("live", now_ms() + 600000).ok());

  ASSERT_TRUE(st_->prune(cut).ok());
  EXPECT_EQ(offsets_of(read(log_query{})),
            (std::vector<std::int64_t>{old_state->offset, cur_state->offset, fresh->offset}));
  auto s1 = st_->state("acme", "dev-1");
  ASSERT_TRUE(s1.ok() && s1->has_value());
  EXPECT_EQ((**s1)->data, R"({"v":3})");
  auto s2 = st_->state("acme", "dev-2");
  ASSERT_TRUE(s2.ok() && s2->has_value());
  EXPECT_EQ((**s2)->data, R"({"v":2})");
  // First-seen subjects are registry data, not log data: they survive.
  auto seen = st_->subject_seen("acme", "msg-1");
  ASSERT_TRUE(seen.ok());
  EXPECT_TRUE(*seen);

  auto again = st_->claim_once("expired", now_ms() + 1000);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(*again);
  auto live = st_->claim_once("live", now_ms() + 1000);
  ASSERT_TRUE(live.ok());
  EXPECT_FALSE(*live);

  // Pruning everything keeps only the states; offsets continue after the pruned ones.
  ASSERT_TRUE(st_->prune(now_ms() + 60000).ok());
  EXPECT_EQ(offsets_of(read(log_query{})),
            (std::vector<std::int64_t>{old_state->offset, cur_state->offset}));
  auto next = append1(draft("acme"));
  ASSERT_NE(next, nullptr);
  EXPECT_EQ(next->offset, fresh->offset + 1);
  EXPECT_GE(next->time_ms, fresh->time_ms);
}

TEST_P(store_contract, find_event_by_id_and_whether_retention_pruned_any) {
  auto state = append1(draft("acme", "dev-1", true, R"({"v":1})"));
  auto plain = append1(draft("acme", "msg-1"));
  sleep_ms(5);
  const std::int64_t cut = now_ms();
  sleep_ms(5);
  auto fresh = append1(draft("acme"));
  ASSERT_TRUE(state && plain && fresh);
  for (const event_ptr& e : {state, plain, fresh}) {
    auto f = st_->find_event(e->id);
    ASSERT_TRUE(f.ok());
    ASSERT_NE(f->ev, nullptr) << e->id;
    EXPECT_EQ(f->ev->offset, e->offset);
    EXPECT_EQ(f->ev->data, e->data);
    EXPECT_FALSE(f->pruned_any);
  }
  auto none = st_->find_event("evt_nope");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->ev, nullptr);
  EXPECT_FALSE(none->pruned_any);

  ASSERT_TRUE(st_->prune(cut).ok());
  auto gone = st_->find_event(plain->id);
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->ev, nullptr);  // pruned, and its id no longer found
  EXPECT_TRUE(gone->pruned_any);
  auto kept = st_->find_event(state->id);  // a retained state's event stays
  ASSERT_TRUE(kept.ok() && kept->ev);
  EXPECT_EQ(kept->ev->offset, state->offset);
  auto later = append1(draft("acme"));
  auto found = st_->find_event(later->id);
  ASSERT_TRUE(found.ok() && found->ev);
  EXPECT_EQ(found->ev->offset, later->offset);
}

TEST_P(store_contract, concurrent_appends_get_unique_contiguous_offsets) {
  constexpr int threads_n = 8, per_thread = 200;
  std::mutex mu;
  std::vector<std::int64_t> offs;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < threads_n; ++t) {
    threads.emplace_back([&, t] {
      std::int64_t last_off = 0, last_time = 0;
      for (int i = 0; i < per_thread; ++i) {
        auto r = st_->append(
            one(draft("t" + std::to_string(t), "s" + std::to_string(i % 7), i % 3 == 0)));
        if (!r.ok() || r->size() != 1) {
          ++failures;
          continue;
        }
        const auto& e = r->front();
        // Each publisher's own events go forward in offset and time.
        if (e->offset <= last_off || e->time_ms < last_time) ++failures;
        last_off = e->offset;
        last_time = e->time_ms;
        std::lock_guard lk(mu);
        offs.push_back(e->offset);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  std::sort(offs.begin(), offs.end());
  ASSERT_EQ(offs.size(), static_cast<std::size_t>(threads_n * per_thread));
  for (std::size_t i = 0; i < offs.size(); ++i) {
    ASSERT_EQ(offs[i], static_cast<std::int64_t>(i + 1));
  }
  // And the log agrees: times never decrease along offsets.
  log_query q;
  q.limit = 10000;
  auto all = read(q);
  ASSERT_EQ(all.size(), offs.size());
  for (std::size_t i = 1; i < all.size(); ++i) {
    ASSERT_GE(all[i]->time_ms, all[i - 1]->time_ms);
    ASSERT_EQ(all[i]->offset, all[i - 1]->offset + 1);
  }
}

TEST_P(store_contract, append_with_record_commits_both_built_from_the_events) {
  append_record with{"idem", "k1", [](const std::vector<event_ptr>& evs) {
                       return "{\"id\":\"" + evs.front()->id +
                              "\",\"offset\":" + std::to_string(evs.back()->offset) + "}";
                     }};
  std::vector<event_draft> b;
  b.push_back(draft("acme"));
  b.push_back(draft("acme"));
  auto r = st_->append(std::move(b), std::move(with));
  ASSERT_TRUE(r.ok()) << r.err().message;
  auto rec = st_->get_record("idem", "k1");
  ASSERT_TRUE(rec.ok() && rec->has_value());
  EXPECT_EQ(**rec, "{\"id\":\"" + r->front()->id + "\",\"offset\":2}");
  // An invalid batch stores neither the events nor the record.
  append_record never{"idem", "k2", [](const std::vector<event_ptr>&) { return "{}"; }};
  ASSERT_FALSE(st_->append(one(draft("")), std::move(never)).ok());
  auto none = st_->get_record("idem", "k2");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST_P(store_contract, write_records_puts_and_erases_in_order) {
  ASSERT_TRUE(st_->put_record("session", "a", "{\"v\":1}").ok());
  std::vector<record_write> w;
  w.push_back({"b", "{\"v\":2}"});
  w.push_back({"a", std::nullopt});
  w.push_back({"c", "{\"v\":3}"});
  w.push_back({"c", "{\"v\":4}"});
  ASSERT_TRUE(st_->write_records("session", std::move(w)).ok());
  auto all = st_->load_records("session");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ(*st_->get_record("session", "b"), std::optional<std::string>("{\"v\":2}"));
  EXPECT_EQ(*st_->get_record("session", "c"), std::optional<std::string>("{\"v\":4}"));
}

TEST_P(store_contract, close_makes_appends_unavailable) {
  ASSERT_NE(append1(draft("acme")), nullptr);
  EXPECT_TRUE(st_->ping().ok());
  st_->close();
  auto r = st_->append(one(draft("acme")));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::unavailable);
  EXPECT_FALSE(st_->ping().ok());
  st_->close();  // idempotent
}

INSTANTIATE_TEST_SUITE_P(backends, store_contract, ::testing::Values("memory", "sqlite", "redis"),
                         [](const ::testing::TestParamInfo<std::string>& tp) { return tp.param; });

TEST(open_store, rejects_unknown_specs) {
  auto r = open_store("postgres", "/tmp");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::bad_message);
  EXPECT_NE(r.err().message.find("postgres"), std::string::npos);
  auto bad_url = open_store("redis://localhost:99999", "/tmp");
  ASSERT_FALSE(bad_url.ok());
  EXPECT_EQ(bad_url.err().code, errc::bad_message);
  EXPECT_NE(bad_url.err().message.find("port"), std::string::npos) << bad_url.err().message;
  // Nothing listens on port 1: unavailable, naming the address, within the connect timeout.
  store_open_options o;
  o.redis.connect_timeout_ms = 300;
  const auto t0 = now_ms();
  auto redis = open_store("redis://127.0.0.1:1", "/tmp", o);
  ASSERT_FALSE(redis.ok());
  EXPECT_EQ(redis.err().code, errc::unavailable);
  EXPECT_NE(redis.err().message.find("127.0.0.1:1"), std::string::npos) << redis.err().message;
  EXPECT_LT(now_ms() - t0, 3000);
  auto m = open_store("memory", "");
  ASSERT_TRUE(m.ok());
  EXPECT_STREQ((*m)->name(), "memory");
}

TEST(open_store, sqlite_creates_data_dir) {
  const std::string base = make_temp_dir();
  const std::string dir = base + "/nested/data";
  {
    auto s = open_store("sqlite", dir);
    ASSERT_TRUE(s.ok()) << s.err().message;
    EXPECT_STREQ((*s)->name(), "sqlite");
    EXPECT_TRUE(fs::exists(dir + "/herald.db"));
  }
  std::error_code ec;
  fs::remove_all(base, ec);
}

// ---- sqlite only ----

class sqlite_only : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir();
    reopen();
  }
  void TearDown() override {
    if (st_) st_->close();
    st_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void reopen() {
    if (st_) st_->close();
    st_.reset();
    auto s = sqlite_store::open(dir_);
    ASSERT_TRUE(s.ok()) << s.err().message;
    st_ = std::move(*s);
  }
  // Starts `n` threads that each append one batch made by make(i), and waits until all n
  // batches sit in the (paused) writer's queue.
  using append_result = std::optional<result<std::vector<event_ptr>>>;
  template <class Make>
  std::vector<std::thread> queue_appends(int n, Make make, std::vector<append_result>& out) {
    out.resize(static_cast<std::size_t>(n));
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([this, i, make, &out] {
        out[static_cast<std::size_t>(i)].emplace(st_->append(make(i)));
      });
    }
    for (int spin = 0; spin < 5000 && st_->queued_for_test() < static_cast<std::size_t>(n);
         ++spin) {
      sleep_ms(1);
    }
    EXPECT_EQ(st_->queued_for_test(), static_cast<std::size_t>(n));
    return threads;
  }

  std::string dir_;
  std::unique_ptr<sqlite_store> st_;
};

TEST_F(sqlite_only, find_event_remembers_pruning_across_reopen_and_the_log_has_one_index) {
  auto a = st_->append(one(draft("acme")));
  ASSERT_TRUE(a.ok());
  sleep_ms(5);
  const std::int64_t cut = now_ms();
  sleep_ms(5);
  auto b = st_->append(one(draft("acme")));
  ASSERT_TRUE(b.ok());
  reopen();
  auto f = st_->find_event((*b)[0]->id);
  ASSERT_TRUE(f.ok() && f->ev);
  EXPECT_FALSE(f->pruned_any);
  ASSERT_TRUE(st_->prune(cut).ok());
  reopen();  // counted again at open
  f = st_->find_event((*a)[0]->id);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->ev, nullptr);
  EXPECT_TRUE(f->pruned_any);
  // The log carries one index, no more: each is a B-tree insert per appended event, and one
  // on the random ids cost ~15 us of CPU per event (sqlite_store.cc, find_event); reads by
  // tenant go through tenant_runs.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2((dir_ + "/herald.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr),
            SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "SELECT name FROM sqlite_master WHERE type = 'index' AND "
                               "tbl_name = 'events' ORDER BY name",
                               -1, &q, nullptr),
            SQLITE_OK);
  std::string names;
  while (sqlite3_step(q) == SQLITE_ROW)
    names += reinterpret_cast<const char*>(sqlite3_column_text(q, 0)) + std::string(" ");
  sqlite3_finalize(q);
  sqlite3_close(db);
  EXPECT_EQ(names, "events_subject_set ");
}

// Test helpers on the database file itself (the store holds it open; WAL lets both read).
namespace {
std::vector<std::string> sql_rows(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  std::vector<std::string> out;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &q, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  while (q != nullptr && sqlite3_step(q) == SQLITE_ROW) {
    std::string row;
    for (int c = 0; c < sqlite3_column_count(q); ++c) {
      const unsigned char* t = sqlite3_column_text(q, c);
      row += (c ? " " : "") + std::string(t ? reinterpret_cast<const char*>(t) : "NULL");
    }
    out.push_back(row);
  }
  sqlite3_finalize(q);
  sqlite3_close(db);
  return out;
}

std::vector<std::int64_t> offsets_read(store& s, const std::string& tenant, std::int64_t after = 0,
                                       std::size_t limit = 1000) {
  log_query q;
  q.tenants = {tenant};
  q.after_offset = after;
  q.limit = limit;
  auto r = s.read(q);
  EXPECT_TRUE(r.ok()) << r.err().message;
  return r.ok() ? offsets_of(*r) : std::vector<std::int64_t>{};
}
}  // namespace

// Reads by tenant go through tenant_runs: one row per stretch of one tenant's offsets in a
// transaction, so a group commit of one tenant's batches writes one row, and a transaction
// whose batches alternate tenants writes one per stretch.
TEST_F(sqlite_only, tenant_runs_one_row_per_stretch_of_a_transaction) {
  const std::string db = dir_ + "/herald.db";
  st_->pause_writer_for_test(true);
  std::vector<append_result> results;
  auto threads = queue_appends(
      8,
      [](int i) {
        std::vector<event_draft> b;
        for (int k = 0; k < 3; ++k) b.push_back(draft(i < 4 ? "acme" : (i % 2 ? "beta" : "acme")));
        return b;
      },
      results);
  st_->pause_writer_for_test(false);
  for (auto& t : threads) t.join();
  for (auto& r : results) ASSERT_TRUE(r && r->ok());
  // Queue order is not thread order: the runs follow whatever order the offsets went in.
  std::vector<std::string> want;
  std::string tenant;
  std::int64_t first = 0, last = 0;
  auto all = st_->read(log_query{{}, 0, {}, {}, {}, 1000});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 24u);
  for (const auto& e : *all) {
    if (e->tenant != tenant && first != 0) {
      want.push_back(std::to_string(first) + " " + std::to_string(last) + " " + tenant);
      first = 0;
    }
    if (first == 0) first = e->offset;
    tenant = e->tenant;
    last = e->offset;
  }
  want.push_back(std::to_string(first) + " " + std::to_string(last) + " " + tenant);
  EXPECT_EQ(sql_rows(db, "SELECT first_off, last_off, tenant FROM tenant_runs ORDER BY last_off"),
            want);
  std::vector<std::int64_t> acme, beta;
  for (const auto& e : *all) (e->tenant == "acme" ? acme : beta).push_back(e->offset);
  EXPECT_EQ(offsets_read(*st_, "acme"), acme);
  EXPECT_EQ(offsets_read(*st_, "beta"), beta);
  EXPECT_TRUE(offsets_read(*st_, "gamma").empty());
  // After an offset inside a run, and a limit that ends inside one.
  EXPECT_EQ(offsets_read(*st_, "acme", acme[4], 3),
            (std::vector<std::int64_t>{acme[5], acme[6], acme[7]}));
  // Another transaction: its own run.
  ASSERT_TRUE(st_->append(one(draft("beta"))).ok());
  EXPECT_EQ(offsets_read(*st_, "beta").back(), 25);
  EXPECT_EQ(
      sql_rows(db, "SELECT first_off, last_off, tenant FROM tenant_runs ORDER BY last_off").back(),
      "25 25 beta");
}

// A data directory written before tenant_runs (the index events_tenant, no runs) gets its runs
// rebuilt from the log at open, holes from pruning included, and loses the old index.
TEST_F(sqlite_only, tenant_runs_are_rebuilt_from_an_old_log_at_open) {
  for (int i = 0; i < 12; ++i)
    ASSERT_TRUE(st_->append(one(draft(i % 3 == 2 ? "beta" : "acme"))).ok());
  st_->close();
  st_.reset();
  const std::string db = dir_ + "/herald.db";
  sql_rows(db, "DELETE FROM tenant_runs");
  sql_rows(db, "DELETE FROM events WHERE off IN (4, 5)");  // a hole, as retention leaves
  sql_rows(db, "CREATE INDEX events_tenant ON events(tenant, off)");
  reopen();
  EXPECT_EQ(sql_rows(db, "SELECT first_off, last_off, tenant FROM tenant_runs ORDER BY last_off"),
            (std::vector<std::string>{"1 2 acme", "3 6 beta", "7 8 acme", "9 9 beta", "10 11 acme",
                                      "12 12 beta"}));
  EXPECT_TRUE(sql_rows(db, "SELECT name FROM sqlite_master WHERE name = 'events_tenant'").empty());
  EXPECT_EQ(offsets_read(*st_, "acme"), (std::vector<std::int64_t>{1, 2, 7, 8, 10, 11}));
  EXPECT_EQ(offsets_read(*st_, "beta"), (std::vector<std::int64_t>{3, 6, 9, 12}));
  // Appends continue the log and its runs; a second open rebuilds nothing.
  ASSERT_TRUE(st_->append(one(draft("beta"))).ok());
  reopen();
  EXPECT_EQ(offsets_read(*st_, "beta"), (std::vector<std::int64_t>{3, 6, 9, 12, 13}));
  EXPECT_EQ(sql_rows(db, "SELECT count(*) FROM tenant_runs"), (std::vector<std::string>{"7"}));
}

// A statement the database rejects (a trigger here) fails its job alone, whether the job ran in
// a savepoint (several statements) or not (one INSERT: SQLite undoes it by itself): the rows it
// had written are gone, its neighbours in the transaction commit, offsets stay dense.
TEST_F(sqlite_only, a_failing_statement_undoes_its_job_alone_with_or_without_a_savepoint) {
  const std::string db = dir_ + "/herald.db";
  sql_rows(db,
           "CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.data LIKE '%boom%' "
           "BEGIN SELECT RAISE(ABORT, 'boom'); END");
  // Job i: its events' data name it; `boom_at` makes one of them fail (-1: none).
  const std::vector<std::pair<int, int>> jobs = {
      {1, -1},   // one event
      {1, 0},    // one event, failing: one statement
      {64, 39},  // one INSERT of 64 rows, the 40th failing: one statement
      {65, 64},  // 64 + 1 rows, the second INSERT failing: a savepoint
      {3, 1},    // 3 single-row INSERTs, the second failing: a savepoint
      {64, -1},  // one INSERT of 64 rows
  };
  st_->pause_writer_for_test(true);
  std::vector<append_result> results;
  auto threads = queue_appends(
      static_cast<int>(jobs.size()),
      [&](int i) {
        std::vector<event_draft> b;
        const auto [n, boom_at] = jobs[static_cast<std::size_t>(i)];
        for (int k = 0; k < n; ++k) {
          b.push_back(
              draft("acme", "", false,
                    R"({"job":)" + std::to_string(i) + (k == boom_at ? R"(,"boom":1})" : "}")));
        }
        return b;
      },
      results);
  st_->pause_writer_for_test(false);
  for (auto& t : threads) t.join();
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    ASSERT_TRUE(results[i].has_value());
    const bool fails = jobs[i].second >= 0;
    EXPECT_EQ(results[i]->ok(), !fails) << "job " << i;
    if (fails && !results[i]->ok()) {
      EXPECT_EQ(results[i]->err().code, errc::conflict) << results[i]->err().message;
    }
  }
  log_query all;
  all.limit = 1000;
  auto back = st_->read(all);
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->size(), 65u);
  std::map<std::string, int> per_job;
  for (std::size_t k = 0; k < back->size(); ++k) {
    EXPECT_EQ((*back)[k]->offset, static_cast<std::int64_t>(k + 1));
    ++per_job[(*back)[k]->data];
  }
  EXPECT_EQ(per_job, (std::map<std::string, int>{{R"({"job":0})", 1}, {R"({"job":5})", 64}}));
  EXPECT_EQ(offsets_read(*st_, "acme").size(), 65u);
  auto next = st_->append(one(draft("acme")));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ((*next)[0]->offset, 66);
}

// Pruning drops the runs left without events, and keeps the run of a retained state's event.
TEST_F(sqlite_only, prune_drops_emptied_tenant_runs) {
  ASSERT_TRUE(st_->append(one(draft("acme", "dev", true))).ok());  // 1, retained: kept
  ASSERT_TRUE(st_->append(one(draft("beta"))).ok());               // 2
  ASSERT_TRUE(st_->append(one(draft("acme"))).ok());               // 3
  sleep_ms(5);
  const std::int64_t cut = now_ms();
  sleep_ms(5);
  ASSERT_TRUE(st_->append(one(draft("beta"))).ok());  // 4
  ASSERT_TRUE(st_->prune(cut).ok());
  const std::string db = dir_ + "/herald.db";
  EXPECT_EQ(sql_rows(db, "SELECT first_off, last_off, tenant FROM tenant_runs ORDER BY last_off"),
            (std::vector<std::string>{"1 1 acme", "4 4 beta"}));
  EXPECT_EQ(offsets_read(*st_, "acme"), (std::vector<std::int64_t>{1}));
  EXPECT_EQ(offsets_read(*st_, "beta"), (std::vector<std::int64_t>{4}));
}

TEST_F(sqlite_only, group_commit_drains_a_burst_in_one_transaction) {
  listener_log log;
  st_->set_append_listener(log.fn());
  const auto tx0 = st_->transactions_for_test();
  st_->pause_writer_for_test(true);
  std::vector<append_result> results;
  auto threads = queue_appends(
      16, [](int i) { return one(draft("t", "s" + std::to_string(i), true)); }, results);
  // Reads do not wait on the writer.
  auto before = st_->read(log_query{});
  EXPECT_TRUE(before.ok() && before->empty());
  st_->pause_writer_for_test(false);
  for (auto& t : threads) t.join();
  EXPECT_EQ(st_->transactions_for_test() - tx0, 1u);
  EXPECT_EQ(log.count(), 16u);
  auto offs = log.offsets();
  for (std::size_t i = 0; i < offs.size(); ++i) {
    EXPECT_EQ(offs[i], static_cast<std::int64_t>(i + 1));
  }
  for (auto& r : results) {
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(r->ok());
  }
  auto states = st_->states({});
  ASSERT_TRUE(states.ok());
  EXPECT_EQ(states->size(), 16u);
}

TEST_F(sqlite_only, append_record_survives_reopen_and_fails_with_its_batch) {
  st_->set_insert_fault_for_test([](const event_draft& d) { return d.data == R"({"bad":1})"; });
  auto rec = [](std::string key) {
    return append_record{"idem", std::move(key), [](const std::vector<event_ptr>& evs) {
                           return "{\"offset\":" + std::to_string(evs.front()->offset) + "}";
                         }};
  };
  ASSERT_TRUE(st_->append(one(draft("acme")), rec("good")).ok());
  ASSERT_FALSE(st_->append(one(draft("acme", "", false, R"({"bad":1})")), rec("bad")).ok());
  reopen();
  auto good = st_->get_record("idem", "good");
  ASSERT_TRUE(good.ok() && good->has_value());
  EXPECT_EQ(**good, "{\"offset\":1}");
  auto bad = st_->get_record("idem", "bad");
  ASSERT_TRUE(bad.ok());
  EXPECT_FALSE(bad->has_value());
  EXPECT_EQ(st_->last_offset(), 1);
}

TEST_F(sqlite_only, a_failing_batch_does_not_fail_its_neighbours) {
  listener_log log;
  st_->set_append_listener(log.fn());
  st_->set_insert_fault_for_test([](const event_draft& d) { return d.data == R"({"bad":1})"; });
  const auto tx0 = st_->transactions_for_test();
  st_->pause_writer_for_test(true);
  std::vector<append_result> results;
  auto threads = queue_appends(
      5,
      [](int i) {
        std::vector<event_draft> b;
        b.push_back(draft("t", "s" + std::to_string(i), true));
        b.push_back(draft("t", "", false, i == 2 ? R"({"bad":1})" : R"({"ok":1})"));
        return b;
      },
      results);
  st_->pause_writer_for_test(false);
  for (auto& t : threads) t.join();
  EXPECT_EQ(st_->transactions_for_test() - tx0, 1u);
  int ok = 0, failed = 0;
  for (auto& r : results) {
    ASSERT_TRUE(r.has_value());
    if (r->ok()) {
      ++ok;
    } else {
      ++failed;
      EXPECT_EQ(r->err().code, errc::conflict);
    }
  }
  EXPECT_EQ(ok, 4);
  EXPECT_EQ(failed, 1);
  EXPECT_EQ(log.count(), 4u);
  // The failed batch left nothing behind and consumed no offsets.
  auto all = st_->read(log_query{});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(offsets_of(*all), (std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 7, 8}));
  for (const auto& e : *all) EXPECT_NE(e->data, R"({"bad":1})");
  auto seen = st_->subject_seen("t", "s2");
  ASSERT_TRUE(seen.ok());
  EXPECT_FALSE(*seen);
  auto s2 = st_->state("t", "s2");
  ASSERT_TRUE(s2.ok());
  EXPECT_FALSE(s2->has_value());
}

// Sustained concurrent appends: every thread appends again as soon as its last append
// returned. The writer is held after each commit (the listener pauses it) until every thread
// still appending has queued its next batch, so what each transaction takes no longer depends
// on timing: with group commit a transaction takes the whole queue, one append per thread, and
// 8 threads x 200 appends commit in exactly 200 transactions. A writer that committed jobs one
// by one (or took only part of the queue) would need more.
TEST_F(sqlite_only, concurrent_appends_share_transactions) {
  constexpr int n_threads = 8, per_thread = 200;
  listener_log log;
  const auto record = log.fn();
  st_->set_append_listener([this, record](std::vector<event_ptr> b) {
    record(std::move(b));
    st_->pause_writer_for_test(true);  // the callers of this transaction wake after this
  });
  st_->pause_writer_for_test(true);
  const auto tx0 = st_->transactions_for_test();
  std::atomic<int> live{n_threads};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < n_threads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < per_thread; ++i)
        if (!st_->append(one(draft("t"))).ok()) failed.fetch_add(1);
      live.fetch_sub(1);
    });
  }
  // Releases the writer each time every live thread has a batch queued (a thread counts as
  // live until after its last append returned, so a queue that matches `live` is complete).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  bool timed_out = false;
  for (;;) {
    const int n = live.load();
    if (n == 0) break;
    if (std::chrono::steady_clock::now() > deadline) {
      timed_out = true;
      break;
    }
    if (st_->queued_for_test() != static_cast<std::size_t>(n)) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
      continue;
    }
    const auto before = st_->transactions_for_test();
    st_->pause_writer_for_test(false);
    // Until the writer committed what was queued: queued_for_test() still shows it until then.
    while (st_->transactions_for_test() == before && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  st_->set_append_listener(log.fn());  // no more pausing: whatever is left drains
  st_->pause_writer_for_test(false);
  for (auto& t : threads) t.join();
  ASSERT_FALSE(timed_out);
  EXPECT_EQ(failed.load(), 0);
  const auto tx = st_->transactions_for_test() - tx0;
  EXPECT_EQ(tx, static_cast<std::uint64_t>(per_thread));
  const auto offs = log.offsets();
  ASSERT_EQ(offs.size(), static_cast<std::size_t>(n_threads * per_thread));
  for (std::size_t i = 0; i < offs.size(); ++i)
    EXPECT_EQ(offs[i], static_cast<std::int64_t>(i + 1));
  std::printf("[ info ] %d concurrent appends took %llu transactions\n", n_threads * per_thread,
              static_cast<unsigned long long>(tx));
}

TEST_F(sqlite_only, data_survives_reopen_and_offsets_continue) {
  std::vector<event_draft> b;
  b.push_back(draft("acme", "dev-1", true, "{\"x\": [1, 2.50, \"\\u0000\"] }"));
  b.push_back(draft("acme", "msg-1"));
  auto r = st_->append(std::move(b));
  ASSERT_TRUE(r.ok());
  const auto first = *r;
  ASSERT_TRUE(st_->put_record("app", "app_1", R"({"n":1})").ok());
  ASSERT_TRUE(st_->claim_once("tok", now_ms() + 60000).ok());

  reopen();
  auto all = st_->read(log_query{});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ((*all)[i]->id, first[i]->id);
    EXPECT_EQ((*all)[i]->offset, first[i]->offset);
    EXPECT_EQ((*all)[i]->time_ms, first[i]->time_ms);
    EXPECT_EQ((*all)[i]->data, first[i]->data);
  }
  auto s = st_->state("acme", "dev-1");
  ASSERT_TRUE(s.ok() && s->has_value());
  EXPECT_EQ((**s)->id, first[0]->id);
  auto seen = st_->subject_seen("acme", "msg-1");
  ASSERT_TRUE(seen.ok() && *seen);
  auto rec = st_->get_record("app", "app_1");
  ASSERT_TRUE(rec.ok() && rec->has_value());
  auto claim = st_->claim_once("tok", now_ms() + 60000);
  ASSERT_TRUE(claim.ok());
  EXPECT_FALSE(*claim);

  auto next = st_->append(one(draft("acme")));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->front()->offset, 3);
  EXPECT_GE(next->front()->time_ms, first[1]->time_ms);

  // Offsets are never reused, even when the newest events were pruned before a restart.
  ASSERT_TRUE(st_->prune(now_ms() + 60000).ok());
  reopen();
  auto after = st_->append(one(draft("acme")));
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->front()->offset, 4);
}

TEST_F(sqlite_only, one_store_per_data_dir) {
  auto second = sqlite_store::open(dir_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.err().code, errc::unavailable);
  EXPECT_NE(second.err().message.find("in use"), std::string::npos) << second.err().message;
  st_->close();
  st_.reset();  // releases the data_dir
  auto third = sqlite_store::open(dir_);
  ASSERT_TRUE(third.ok()) << third.err().message;
}

TEST_F(sqlite_only, prune_in_chunks) {
  st_->close();
  st_.reset();
  sqlite_options opts;
  opts.prune_chunk = 7;
  auto s = sqlite_store::open(dir_, opts);
  ASSERT_TRUE(s.ok());
  st_ = std::move(*s);
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(st_->append(one(draft("t", "s" + std::to_string(i % 10), i % 10 == 0))).ok());
  }
  const auto tx0 = st_->transactions_for_test();
  ASSERT_TRUE(st_->prune(now_ms() + 60000).ok());
  EXPECT_GT(st_->transactions_for_test() - tx0, 10u);
  auto all = st_->read(log_query{});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);  // only s0's latest retained event
  EXPECT_EQ(all->front()->offset, 91);
}

TEST_F(sqlite_only, closing_commits_what_is_queued) {
  listener_log log;
  st_->set_append_listener(log.fn());
  st_->pause_writer_for_test(true);
  std::vector<append_result> results;
  auto threads = queue_appends(
      3, [](int) { return one(draft("t")); }, results);
  st_->close();  // drains despite the pause
  for (auto& t : threads) t.join();
  for (auto& r : results) {
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(r->ok());
  }
  EXPECT_EQ(log.count(), 3u);
  reopen();
  auto all = st_->read(log_query{});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 3u);
}

// append_async returns at once; the writer answers each call exactly once, after the listener
// saw its batch, and a burst queued from one thread is one transaction (no thread per append).
TEST_F(sqlite_only, append_async_answers_after_the_commit_and_group_commits) {
  listener_log log;
  st_->set_append_listener(log.fn());
  ASSERT_TRUE(st_->appends_async());
  const auto tx0 = st_->transactions_for_test();
  st_->pause_writer_for_test(true);
  std::mutex mu;
  std::vector<std::int64_t> answered;     // first offset of each answer, in answer order
  std::vector<std::size_t> seen_by_then;  // batches the listener had seen at each answer
  for (int i = 0; i < 32; ++i) {
    st_->append_async(one(draft("t")), {}, [&](result<std::vector<event_ptr>> r) {
      ASSERT_TRUE(r.ok()) << r.err().message;
      ASSERT_EQ(r->size(), 1u);
      std::lock_guard lk(mu);
      answered.push_back((*r)[0]->offset);
      seen_by_then.push_back(log.count());
    });
  }
  EXPECT_EQ(st_->queued_for_test(), 32u);  // nothing waited: all 32 are queued
  {
    std::lock_guard lk(mu);
    EXPECT_TRUE(answered.empty());  // nothing answered before the commit
  }
  st_->pause_writer_for_test(false);
  for (int spin = 0; spin < 5000; ++spin) {
    {
      std::lock_guard lk(mu);
      if (answered.size() == 32u) break;
    }
    sleep_ms(1);
  }
  std::lock_guard lk(mu);
  ASSERT_EQ(answered.size(), 32u);
  for (std::size_t i = 0; i < answered.size(); ++i) {
    EXPECT_EQ(answered[i], static_cast<std::int64_t>(i + 1));
    EXPECT_EQ(seen_by_then[i], 32u);  // the listener ran for the whole commit first
  }
  EXPECT_EQ(st_->transactions_for_test() - tx0, 1u);
}

TEST_F(sqlite_only, append_async_after_close_answers_unavailable_and_queued_ones_commit) {
  st_->pause_writer_for_test(true);
  std::atomic<int> ok{0};
  for (int i = 0; i < 3; ++i) {
    st_->append_async(one(draft("t")), {}, [&](result<std::vector<event_ptr>> r) {
      if (r.ok()) ++ok;
    });
  }
  st_->close();  // drains the queued three despite the pause
  EXPECT_EQ(ok.load(), 3);
  std::optional<errc> code;
  st_->append_async(one(draft("t")), {}, [&](result<std::vector<event_ptr>> r) {
    if (!r.ok()) code = r.err().code;
  });
  EXPECT_EQ(code, errc::unavailable);  // answered at once, on the calling thread
  std::optional<errc> bad;
  reopen();
  st_->append_async(one(draft("")), {}, [&](result<std::vector<event_ptr>> r) {
    if (!r.ok()) bad = r.err().code;
  });
  EXPECT_TRUE(bad.has_value());  // an invalid batch is refused before it is queued
}

}  // namespace
}  // namespace herald
