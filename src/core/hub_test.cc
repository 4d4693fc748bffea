#include "core/hub.h"

#include <condition_variable>
#include <deque>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "core/clock.h"
#include "core/directory.h"

namespace herald {
namespace {

// A shard stand-in: one thread draining a FIFO of tasks.
class test_shard {
 public:
  explicit test_shard(std::size_t i) : thread_([this, i] {
    hub::bind_thread(i);
    for (;;) {
      std::function<void()> t;
      {
        std::unique_lock l(mu_);
        cv_.wait(l, [&] { return stop_ || !q_.empty(); });
        if (q_.empty()) return;
        t = std::move(q_.front());
        q_.pop_front();
      }
      t();
    }
  }) {}
  ~test_shard() {
    {
      std::lock_guard l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void post(std::function<void()> t) {
    {
      std::lock_guard l(mu_);
      q_.push_back(std::move(t));
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> q_;
  bool stop_ = false;
  std::thread thread_;
};

struct recording_sink : session_sink {
  principal p;
  std::vector<std::uint64_t> seqs;
  std::vector<std::int64_t> offsets;
  int kicked = 0;
  void on_deliver(const delivery_ref& d) override {
    seqs.push_back(d.seq);
    offsets.push_back(d.ev->offset);
  }
  void on_batch_end() override {}
  void on_kick(int code, const std::string&, bool) override { kicked = code; }
  const principal& who() const override { return p; }
  connection_info info() const override { return {}; }
};

class hub_test : public ::testing::Test {
 protected:
  void SetUp() override {
    for (std::size_t i = 0; i < 2; ++i) shards_.push_back(std::make_unique<test_shard>(i));
    std::vector<hub::post_fn> posts;
    for (auto& s : shards_) posts.push_back([p = s.get()](hub::task t) { p->post(std::move(t)); });
    hub_options o;
    o.recovery_buffer = 5;
    o.recovery_window_ms = 60000;
    hub_ = std::make_unique<hub>(posts, &dir_, o);
    who_.tenant = "t1";
    who_.app_id = "app_1";
    who_.scopes = scope_subscribe;
  }
  void TearDown() override {
    shards_.clear();  // stop threads before the hub goes
    hub_.reset();
  }
  // Runs fn on shard i and waits.
  template <class F>
  void on(std::size_t i, F fn) {
    std::promise<void> done;
    shards_[i]->post([&] {
      fn();
      done.set_value();
    });
    done.get_future().get();
  }
  void sync() {
    for (std::size_t i = 0; i < shards_.size(); ++i) on(i, [] {});
    for (std::size_t i = 0; i < shards_.size(); ++i) on(i, [] {});
  }
  static event_ptr make_event(std::int64_t offset, const std::string& subject = "",
                              const std::string& tenant = "t1") {
    auto e = std::make_shared<event>();
    e->offset = offset;
    e->tenant = tenant;
    e->topic = "/a";
    e->type = "t";
    e->subject = subject;
    e->data = "{}";
    return e;
  }
  void publish(int n, const std::string& subject = "") {
    std::vector<event_ptr> batch;
    for (int i = 0; i < n; ++i) batch.push_back(make_event(++offset_, subject));
    hub_->publish(std::move(batch));
    sync();
  }
  // A session on shard 0, for `sink`, subscribed to every topic of t1.
  struct opened {
    session_ref ref;
    std::string token;
    std::uint64_t conn = 0;
  };
  opened open_subscribed(recording_sink& sink, bool gathering = false) {
    return open_with(sink, all(), gathering);
  }
  opened open_with(recording_sink& sink, const subscription& sub, bool gathering = false) {
    opened o;
    on(0, [&] {
      o.conn = hub_->register_sink(&sink);
      o.ref = hub_->open_session(who_, "native", {0, o.conn});
      hub_->with_session(o.ref, [&](session* s) {
        hub_->set_subscription(*s, sub, gathering);
        o.token = s->resume_token;
      });
    });
    return o;
  }
  // The socket of `o` goes away (resumable).
  void detach(const opened& o) {
    on(0, [&] { hub_->with_session(o.ref, [&](session* s) { hub_->detach(*s, o.conn, true); }); });
  }
  // Resumes from a new sink on shard 1 and waits for the outcome.
  resume_outcome resume_from_1(recording_sink& sink, const std::string& token,
                               std::uint64_t last_seq, const principal& who) {
    std::promise<resume_outcome> out;
    on(1, [&] {
      auto c = hub_->register_sink(&sink);
      hub_->resume(token, last_seq, who, {1, c}, [&](resume_outcome o) { out.set_value(o); });
    });
    return out.get_future().get();
  }
  subscription all() {
    subscription s;
    s.id = "sub_1";
    s.filters.push_back(*filter::compile({"/**", {}, {}, {}}, "t1", {}));
    return s;
  }

  directory dir_;
  std::vector<std::unique_ptr<test_shard>> shards_;
  std::unique_ptr<hub> hub_;
  principal who_;
  std::int64_t offset_ = 0;
};

TEST_F(hub_test, delivers_in_order_with_contiguous_seq) {
  recording_sink sink;
  open_subscribed(sink);
  publish(3);
  publish(2);
  EXPECT_EQ(sink.seqs, (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(sink.offsets, (std::vector<std::int64_t>{1, 2, 3, 4, 5}));
}

TEST_F(hub_test, a_trie_match_still_checks_what_a_filter_adds_to_its_topic) {
  auto only = [](filter_spec spec) {
    subscription s;
    s.id = "sub_x";
    s.filters.push_back(*filter::compile(spec, "t1", {}));
    return s;
  };
  recording_sink typed, subjects, plain, other;
  open_with(typed, only({"/a", std::vector<std::string>{"x"}, {}, {}}));
  open_with(subjects, only({"/a", {}, std::vector<std::string>{"s2"}, {}}));
  open_with(plain, only({"/*", {}, {}, {}}));
  open_with(other, only({"/b", {}, {}, {}}));
  publish(2, "s1");  // topic "/a", type "t", subject "s1"
  publish(1, "s2");
  EXPECT_TRUE(typed.seqs.empty());
  EXPECT_EQ(subjects.offsets, (std::vector<std::int64_t>{3}));
  EXPECT_EQ(plain.offsets, (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_TRUE(other.seqs.empty());
}

TEST_F(hub_test, resume_on_other_shard_replays_then_goes_live) {
  recording_sink first, second;
  const opened o = open_subscribed(first);
  publish(2);
  detach(o);
  publish(2);  // seq 3, 4 while detached
  ASSERT_EQ(resume_from_1(second, o.token, 2, who_).error, recovery_error::none);
  publish(1);
  EXPECT_EQ(second.seqs, (std::vector<std::uint64_t>{3, 4, 5}));
  EXPECT_EQ(second.offsets, (std::vector<std::int64_t>{3, 4, 5}));
}

TEST_F(hub_test, resume_failures_are_explicit) {
  recording_sink sink, other;
  const opened o = open_subscribed(sink);
  publish(8);  // ring holds the last 5: seq 4..8
  auto try_resume = [&](const std::string& t, std::uint64_t last, const principal& p) {
    return resume_from_1(other, t, last, p).error;
  };
  EXPECT_EQ(try_resume(o.token, 1, who_), recovery_error::buffer_overflow);
  EXPECT_EQ(try_resume("ses_nope.x", 1, who_), recovery_error::unknown_session);
  EXPECT_EQ(try_resume(o.token + "x", 1, who_), recovery_error::unknown_session);
  EXPECT_EQ(try_resume(o.token, 99, who_), recovery_error::unknown_session);
  principal stranger = who_;
  stranger.app_id = "app_2";
  EXPECT_EQ(try_resume(o.token, 7, stranger), recovery_error::forbidden);
  // A socket still attached is replaced.
  EXPECT_EQ(try_resume(o.token, 7, who_), recovery_error::none);
  sync();
  EXPECT_EQ(sink.kicked, 1000);
}

TEST_F(hub_test, snapshot_copies_come_first_and_suppress_older_live_events) {
  recording_sink sink;
  const opened o = open_subscribed(sink, true);
  publish(2, "s1");  // held while gathering
  const event_ptr copy = make_event(2, "s1");
  on(0, [&] {
    hub_->with_session(o.ref, [&](session* s) { hub_->release_snapshot(*s, {copy}); });
  });
  publish(1, "s1");
  publish(1, "s2");
  // The copy (offset 2) first; held live events of s1 at offsets <= 2 are skipped.
  EXPECT_EQ(sink.seqs, (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(sink.offsets, (std::vector<std::int64_t>{2, 3, 4}));
}

}  // namespace
}  // namespace herald

namespace herald {
namespace {

// A hub whose log is a vector: resumes older than the ring page it.
class hub_log_test : public hub_test {
 protected:
  void SetUp() override {
    for (std::size_t i = 0; i < 2; ++i) shards_.push_back(std::make_unique<test_shard>(i));
    std::vector<hub::post_fn> posts;
    for (auto& s : shards_) posts.push_back([p = s.get()](hub::task t) { p->post(std::move(t)); });
    hub_options o;
    o.recovery_buffer = 3;
    o.recovery_window_ms = 60000;
    o.read_log = [this](std::int64_t after, std::size_t limit) {
      std::lock_guard l(log_mu_);
      std::vector<event_ptr> out;
      for (const auto& e : log_)
        if (e->offset > after && out.size() < limit) out.push_back(e);
      return out;
    };
    o.blocking = [](std::function<void()> f) { std::thread(std::move(f)).detach(); };
    hub_ = std::make_unique<hub>(posts, &dir_, o);
    who_.tenant = "t1";
    who_.app_id = "app_1";
  }
  void publish_logged(int n, const std::string& tenant = "t1") {
    std::vector<event_ptr> batch;
    for (int i = 0; i < n; ++i) {
      auto e = make_event(++offset_, "", tenant);
      batch.push_back(e);
      std::lock_guard l(log_mu_);
      log_.push_back(e);
    }
    hub_->publish(std::move(batch));
    sync();
  }
  std::mutex log_mu_;
  std::vector<event_ptr> log_;
};

TEST_F(hub_log_test, gap_older_than_ring_is_paged_from_the_log) {
  recording_sink first, second;
  publish_logged(2);  // before the subscription: never this session's
  const opened o = open_subscribed(first);
  publish_logged(1);
  publish_logged(1, "t2");  // another tenant's: not matched, not counted
  detach(o);
  publish_logged(6);  // seq 2..7; the ring keeps 5..7
  ASSERT_EQ(resume_from_1(second, o.token, 1, who_).error, recovery_error::none);
  sync();
  publish_logged(1);
  EXPECT_EQ(second.seqs, (std::vector<std::uint64_t>{2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(second.offsets, (std::vector<std::int64_t>{5, 6, 7, 8, 9, 10, 11}));
}

TEST_F(hub_log_test, policy_change_in_the_gap_fails_explicitly) {
  recording_sink first, second;
  const opened o = open_subscribed(first);
  publish_logged(6);
  dir_.put_subject({"t1", "s", "k", "s", "{}", true, false, 0});  // a flag change
  EXPECT_EQ(resume_from_1(second, o.token, 1, who_).error, recovery_error::buffer_overflow);
}

TEST_F(hub_log_test, export_import_keeps_seq_and_catches_up) {
  recording_sink first, second;
  const opened o = open_subscribed(first);
  publish_logged(4);
  // Stop the shards, export, and start a new hub on the same log.
  shards_.clear();
  auto states = hub_->export_sessions();
  ASSERT_EQ(states.size(), 1u);
  EXPECT_EQ(states[0].seq, 4u);
  {
    std::lock_guard l(log_mu_);  // committed after the export, never matched before
    log_.push_back(make_event(++offset_));
  }
  SetUp();
  hub_->import_sessions(states);
  ASSERT_EQ(resume_from_1(second, o.token, 2, who_).error, recovery_error::none);
  sync();
  EXPECT_EQ(second.seqs, (std::vector<std::uint64_t>{3, 4, 5}));
  EXPECT_EQ(second.offsets, (std::vector<std::int64_t>{3, 4, 5}));
}

}  // namespace
}  // namespace herald

namespace herald {
namespace {

TEST_F(hub_test, a_connection_gone_during_the_hand_over_is_not_called_and_the_session_detaches) {
  recording_sink first, second;
  const opened o = open_subscribed(first);
  publish(2);
  detach(o);
  bool called = false;
  on(1, [&] {
    auto c2 = hub_->register_sink(&second);
    hub_->resume(o.token, 0, who_, {1, c2}, [&](resume_outcome) { called = true; });
    hub_->unregister_sink(c2);  // the socket closes before the hand-over reaches it
  });
  sync();
  sync();
  EXPECT_FALSE(called);
  EXPECT_TRUE(second.seqs.empty());
  std::uint64_t attached = 1;
  on(0, [&] { hub_->with_session(o.ref, [&](session* s) { attached = s ? s->sink.conn : 99; }); });
  EXPECT_EQ(attached, 0u);  // detached: its recovery window runs
}

TEST_F(hub_test, the_tick_expires_only_sessions_detached_longer_than_the_window) {
  recording_sink a, b, b_again;
  const opened gone = open_subscribed(a);
  const opened back = open_subscribed(b);
  detach(gone);
  detach(back);
  ASSERT_EQ(resume_from_1(b_again, back.token, 0, who_).error, recovery_error::none);
  sync();
  on(0, [&] { hub_->tick(now_ms() + 1000); });  // inside the window: nothing expires
  EXPECT_EQ(hub_->stats().sessions_open.load(), 2u);
  on(0, [&] { hub_->tick(now_ms() + 61000); });  // past the 60 s window
  EXPECT_EQ(hub_->stats().sessions_open.load(), 1u);
  recording_sink late;
  EXPECT_EQ(resume_from_1(late, gone.token, 0, who_).error, recovery_error::expired);
  // The re-attached session stays, also after detaching again and a tick inside the window.
  on(1, [&] { hub_->with_session(back.ref, [&](session* s) { hub_->detach(*s, s->sink.conn, true); }); });
  on(0, [&] { hub_->tick(now_ms() + 1000); });
  EXPECT_EQ(hub_->stats().sessions_open.load(), 1u);
}

}  // namespace
}  // namespace herald
