#include "core/hub.h"

#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <optional>
#include <thread>
#include <utility>

#include <gtest/gtest.h>

#include "core/clock.h"
#include "core/directory.h"

namespace herald {
namespace {

// A shard stand-in: one thread draining a FIFO of tasks.
class test_shard {
 public:
  explicit test_shard(std::size_t i)
      : thread_([this, i] {
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
  std::optional<close_reason> kicked;
  void on_deliver(const delivery_ref& d) override {
    seqs.push_back(d.seq);
    offsets.push_back(d.ev->offset);
  }
  void on_batch_end() override {}
  void on_kick(const kick& k) override { kicked = k.why; }
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

// Counts the deliveries of each batch (on_batch_end: what a socket writes at once).
struct batch_sink : recording_sink {
  std::vector<std::size_t> batches;
  std::size_t open = 0;
  void on_deliver(const delivery_ref& d) override {
    recording_sink::on_deliver(d);
    ++open;
  }
  void on_batch_end() override { batches.push_back(std::exchange(open, 0)); }
};

TEST_F(hub_test, batches_published_while_the_shards_are_busy_are_fanned_out_together) {
  batch_sink local, remote;  // a sink on the session's shard, one on the other shard
  open_subscribed(local);
  opened o;
  on(1, [&] {
    o.conn = hub_->register_sink(&remote);
    o.ref = hub_->open_session(who_, "native", {1, o.conn});
    hub_->with_session(o.ref, [&](session* s) { hub_->set_subscription(*s, all(), false); });
  });
  sync();
  // Both shards busy while three batches (offsets 1-2, 3, 4-6) are published.
  std::promise<void> go0, go1;
  auto held0 = go0.get_future().share(), held1 = go1.get_future().share();
  shards_[0]->post([held0] { held0.wait(); });
  shards_[1]->post([held1] { held1.wait(); });
  for (int n : {2, 1, 3}) {
    std::vector<event_ptr> batch;
    for (int i = 0; i < n; ++i) batch.push_back(make_event(++offset_));
    hub_->publish(std::move(batch));
  }
  go0.set_value();
  go1.set_value();
  sync();
  for (batch_sink* k : {&local, &remote}) {
    EXPECT_EQ(k->batches, (std::vector<std::size_t>{6}));  // one pass, one write
    EXPECT_EQ(k->seqs, (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6}));
    EXPECT_EQ(k->offsets, (std::vector<std::int64_t>{1, 2, 3, 4, 5, 6}));  // log order
  }
  publish(1);  // an idle shard fans a batch out on its own
  EXPECT_EQ(local.batches, (std::vector<std::size_t>{6, 1}));
  EXPECT_EQ(local.seqs.back(), 7u);
}

TEST_F(hub_test, a_busy_shard_joins_batches_only_up_to_the_drain_bound) {
  batch_sink sink;
  open_subscribed(sink);
  sync();
  std::promise<void> go;
  auto held = go.get_future().share();
  shards_[0]->post([held] { held.wait(); });
  shards_[1]->post([held] { held.wait(); });
  // 100 + 100 join (200); a third 100 would pass the bound: a drain of its own, which the
  // fourth joins; a batch bigger than the bound goes alone, whole.
  ASSERT_EQ(hub::max_drain_events, 256u);
  for (std::size_t n : {100, 100, 100, 100, 300}) {
    std::vector<event_ptr> batch;
    for (std::size_t i = 0; i < n; ++i) batch.push_back(make_event(++offset_));
    hub_->publish(std::move(batch));
  }
  go.set_value();
  sync();
  EXPECT_EQ(sink.batches, (std::vector<std::size_t>{200, 200, 300}));
  ASSERT_EQ(sink.seqs.size(), 700u);
  for (std::size_t i = 0; i < sink.seqs.size(); ++i) {
    EXPECT_EQ(sink.seqs[i], i + 1);
    EXPECT_EQ(sink.offsets[i], static_cast<std::int64_t>(i + 1));
  }
}

TEST_F(hub_test, a_task_posted_between_two_publishes_runs_between_their_fan_outs) {
  batch_sink sink;
  open_subscribed(sink);
  sync();
  std::promise<void> go;
  auto held = go.get_future().share();
  shards_[0]->post([held] { held.wait(); });
  std::vector<event_ptr> a{make_event(++offset_), make_event(++offset_)};
  hub_->publish(std::move(a));
  std::size_t seen_by_task = 99;
  hub_->post(0, [&] { seen_by_task = sink.offsets.size(); });
  std::vector<event_ptr> b{make_event(++offset_)};
  hub_->publish(std::move(b));
  go.set_value();
  sync();
  EXPECT_EQ(seen_by_task, 2u);  // after the first batch, before the second
  EXPECT_EQ(sink.batches, (std::vector<std::size_t>{2, 1}));
  EXPECT_EQ(sink.seqs, (std::vector<std::uint64_t>{1, 2, 3}));
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

// A resume onto a socket of the session's own shard: a batch matched while the hand-over is in
// flight goes by post; the next batch, fanned out after the hand-over ran but before that post,
// must not overtake it (the socket would see a later seq first and drop the earlier ones).
TEST_F(hub_test, a_same_shard_resume_keeps_order_when_a_batch_lands_mid_hand_over) {
  recording_sink first, second;
  const opened o = open_subscribed(first);
  publish(2);
  detach(o);
  publish(2);  // seq 3, 4 while detached
  // Another session on shard 0 whose socket publishes batch C from inside batch B's fan-out:
  // C's fan-out is then queued behind the hand-over and ahead of B's post to the socket.
  struct publishing_sink : recording_sink {
    std::function<void()> once;
    void on_deliver(const delivery_ref& d) override {
      recording_sink::on_deliver(d);
      if (once) std::exchange(once, nullptr)();
    }
  } other;
  open_subscribed(other);
  sync();
  std::promise<void> go;
  auto held = go.get_future().share();
  shards_[0]->post([held] { held.wait(); });
  std::promise<resume_outcome> out;
  shards_[0]->post([&] {  // the resume, from a new socket on shard 0 (the session's home)
    const auto c = hub_->register_sink(&second);
    hub_->resume(o.token, 4, who_, {0, c}, [&](resume_outcome r) { out.set_value(r); });
  });
  other.once = [&] {
    std::vector<event_ptr> c{make_event(++offset_)};
    hub_->publish(std::move(c));  // batch C: seq 7
  };
  std::vector<event_ptr> b{make_event(++offset_), make_event(++offset_)};
  hub_->publish(std::move(b));  // batch B: seq 5, 6
  go.set_value();
  sync();
  sync();
  ASSERT_EQ(out.get_future().get().error, recovery_error::none);
  EXPECT_EQ(second.seqs, (std::vector<std::uint64_t>{5, 6, 7}));
  EXPECT_EQ(second.offsets, (std::vector<std::int64_t>{5, 6, 7}));
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
  EXPECT_EQ(sink.kicked, close_reason::replaced);
}

TEST_F(hub_test, snapshot_copies_come_first_and_suppress_older_live_events) {
  recording_sink sink;
  const opened o = open_subscribed(sink, true);
  publish(2, "s1");  // held while gathering
  const event_ptr copy = make_event(2, "s1");
  on(0,
     [&] { hub_->with_session(o.ref, [&](session* s) { hub_->release_snapshot(*s, {copy}); }); });
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
    o.blocking = [this](std::function<void()> f) {
      std::lock_guard l(blocking_mu_);
      blocking_.emplace_back(std::move(f));
    };
    if (tweak_) tweak_(o);
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
  // A log page read runs on a thread of ours and then posts to a shard, whose task may start
  // another: until a round of shard tasks and joins finds nothing, work is still in flight and
  // could touch log_ or a shard after the fixture is gone.
  void TearDown() override {
    do {
      sync();
    } while (join_blocking() != 0);
    hub_test::TearDown();
    join_blocking();  // what the shards' last tasks started, if any
  }
  ~hub_log_test() override { join_blocking(); }  // TearDown did not run (SetUp failed)
  // Joins every blocking thread started so far; returns how many.
  std::size_t join_blocking() {
    std::vector<std::thread> ts;
    {
      std::lock_guard l(blocking_mu_);
      ts.swap(blocking_);
    }
    for (auto& t : ts) t.join();
    return ts.size();
  }
  std::mutex log_mu_;
  std::vector<event_ptr> log_;
  std::mutex blocking_mu_;
  std::vector<std::thread> blocking_;
  std::function<void(hub_options&)> tweak_;
};

// The same with crash-safe records: a map stands in for the store, and `hold_` keeps each
// write "not yet durable" until release().
class hub_crash_test : public hub_log_test {
 protected:
  void SetUp() override {
    tweak_ = [this](hub_options& o) {
      o.persist = [this](const std::string& id, std::optional<session_state> st,
                         std::function<void()> done) {
        {
          std::lock_guard l(rec_mu_);
          if (st)
            records_[id] = *st;
          else
            records_.erase(id);
          if (hold_) return held_.push_back(std::move(done));
        }
        done();
      };
      o.token_digest = [](std::string_view t) { return "d:" + std::string(t); };
      if (extra_) extra_(o);
    };
    hub_log_test::SetUp();
  }
  std::function<void(hub_options&)> extra_;  // a subclass's options on top
  void release() {
    std::vector<std::function<void()>> h;
    {
      std::lock_guard l(rec_mu_);
      h.swap(held_);
      hold_ = false;
    }
    for (auto& d : h) d();
    sync();
  }
  // The records as a crash leaves them: a new hub on the same log imports them.
  void crash_and_restart() {
    shards_.clear();
    std::vector<session_state> states;
    {
      std::lock_guard l(rec_mu_);
      for (const auto& [id, st] : records_) states.push_back(st);
    }
    hub_.reset();
    SetUp();
    hub_->import_sessions(states);
  }
  std::mutex rec_mu_;
  std::map<std::string, session_state> records_;
  bool hold_ = false;
  std::vector<std::function<void()>> held_;
};

TEST_F(hub_crash_test, subscribe_ack_waits_for_its_record_then_events_follow) {
  recording_sink sink;
  hold_ = true;
  opened o;
  on(0, [&] {
    o.conn = hub_->register_sink(&sink);
    o.ref = hub_->open_session(who_, "native", {0, o.conn});
    hub_->with_session_then(o.ref, {0, o.conn}, [&](session* s) -> hub::task {
      hub_->set_subscription(*s, all(), false);
      return [&sink] { sink.seqs.push_back(0); };  // the ack, as a marker
    });
  });
  publish_logged(2);
  EXPECT_TRUE(sink.seqs.empty());  // neither the ack nor the events before the record
  {
    std::lock_guard l(rec_mu_);
    ASSERT_EQ(records_.size(), 1u);
    const session_state& st = records_.begin()->second;
    EXPECT_TRUE(st.resume_token.empty());  // a digest only
    EXPECT_EQ(st.resume_hash.rfind("d:" + st.id + ".", 0), 0u);
    EXPECT_TRUE(st.has_sub && st.anchor_valid && st.exact);
  }
  release();
  EXPECT_EQ(sink.seqs, (std::vector<std::uint64_t>{0, 1, 2}));
  EXPECT_EQ(sink.offsets, (std::vector<std::int64_t>{1, 2}));
}

TEST_F(hub_crash_test, crash_import_recounts_seq_and_resumes_exactly) {
  recording_sink first, second;
  publish_logged(1);  // before the subscription
  const opened o = open_subscribed(first);
  publish_logged(4);  // seq 1..4 at offsets 2..5
  {
    std::lock_guard l(log_mu_);  // committed, never fanned out: the crash came first
    log_.push_back(make_event(++offset_));
  }
  crash_and_restart();
  publish_logged(1);  // offset 7: seq 6 after the restart
  ASSERT_EQ(resume_from_1(second, o.token, 1, who_).error, recovery_error::none);
  sync();
  EXPECT_EQ(second.seqs, (std::vector<std::uint64_t>{2, 3, 4, 5, 6}));
  EXPECT_EQ(second.offsets, (std::vector<std::int64_t>{3, 4, 5, 6, 7}));
  recording_sink third;
  EXPECT_EQ(resume_from_1(third, o.token + "x", 1, who_).error, recovery_error::unknown_session);
}

TEST_F(hub_crash_test, crash_import_over_a_pruned_log_is_explicit) {
  recording_sink first, second;
  const opened o = open_subscribed(first);
  publish_logged(4);
  {
    std::lock_guard l(log_mu_);
    log_.erase(log_.begin() + 1);  // retention took offset 2 after the anchor
  }
  crash_and_restart();
  EXPECT_EQ(resume_from_1(second, o.token, 4, who_).error, recovery_error::buffer_overflow);
}

TEST_F(hub_crash_test, imported_session_past_its_window_is_expired_not_unknown) {
  recording_sink first, second;
  const opened o = open_subscribed(first);
  crash_and_restart();
  for (std::size_t i = 0; i < 2; ++i) on(i, [&] { hub_->tick(now_ms() + 120000); });
  EXPECT_EQ(resume_from_1(second, o.token, 0, who_).error, recovery_error::expired);
  std::lock_guard l(rec_mu_);
  EXPECT_TRUE(records_.empty());  // expiry forgets the record too
}

TEST_F(hub_crash_test, dropped_session_forgets_its_record) {
  recording_sink first;
  const opened o = open_subscribed(first);
  on(0, [&] { hub_->with_session(o.ref, [&](session* s) { hub_->detach(*s, o.conn, false); }); });
  sync();
  std::lock_guard l(rec_mu_);
  EXPECT_TRUE(records_.empty());
}

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

TEST_F(hub_log_test, pruned_gap_fails_explicitly_never_relabels) {
  recording_sink first, second, third;
  const opened o = open_subscribed(first);
  detach(o);
  publish_logged(12);  // seq 1..12 at offsets 1..12; the ring keeps 10..12
  {
    std::lock_guard l(log_mu_);  // retention took offsets 2..4 (1 kept: a retained state)
    log_.erase(log_.begin() + 1, log_.begin() + 4);
  }
  // Counting matches would call offsets 5..13 seqs 2..9 (relabelled, duplicating 10..12).
  EXPECT_EQ(resume_from_1(second, o.token, 1, who_).error, recovery_error::buffer_overflow);
  sync();
  EXPECT_TRUE(second.seqs.empty());
  // The session stays; a gap the ring holds is still exact.
  ASSERT_EQ(resume_from_1(third, o.token, 9, who_).error, recovery_error::none);
  sync();
  EXPECT_EQ(third.seqs, (std::vector<std::uint64_t>{10, 11, 12}));
  EXPECT_EQ(third.offsets, (std::vector<std::int64_t>{10, 11, 12}));
}

// A store that bounds each tenant's log apart trims one tenant's events out of the middle of
// the offsets (redis: store::hole_tenants). A session of another tenant counts across that hole
// exactly; a hole that held its own tenant's events, or one the store cannot name, still fails
// the resume explicitly.
class hub_hole_test : public hub_log_test {
 protected:
  void SetUp() override {
    tweak_ = [this](hub_options& o) {
      o.hole_tenants = [this](std::int64_t first,
                              std::int64_t last) -> std::optional<std::vector<std::string>> {
        std::lock_guard l(log_mu_);
        holes_asked_.emplace_back(first, last);
        return named_;
      };
    };
    hub_log_test::SetUp();
  }
  // t1's session detached at seq 0; t1 1..3 (offsets 1..3), t2 at 4..6, t1 again at 7..12; the
  // ring keeps t1's 10..12. Then t2's events leave the log.
  opened detached_over_a_hole(recording_sink& first) {
    const opened o = open_subscribed(first);
    detach(o);
    publish_logged(3);
    publish_logged(3, "t2");
    publish_logged(6);
    std::lock_guard l(log_mu_);
    log_.erase(log_.begin() + 3, log_.begin() + 6);
    return o;
  }
  std::optional<std::vector<std::string>> named_;
  std::vector<std::pair<std::int64_t, std::int64_t>> holes_asked_;
};

// Cluster mode following tenants (hub_follow.cc): a node receives only the tenants its
// sessions need. What waits for a tenant runs once the store answers, and each shard's
// frontier rises to where the tenant starts: a resume counting along the log from an anchor
// taken after it never counts the tenant's events this node was not handed.
class hub_follow_test : public hub_log_test {
 protected:
  void SetUp() override {
    tweak_ = [this](hub_options& o) {
      o.follow = [this](const std::string& t) {
        std::lock_guard l(log_mu_);
        followed_.push_back(t);
      };
      o.unfollow = [this](const std::string& t) {
        std::lock_guard l(log_mu_);
        unfollowed_.push_back(t);
      };
      o.unfollow_after_ms = 1000;
    };
    hub_log_test::SetUp();
  }
  // t1 asked for (by a call on shard 0 for `sink`) and answered, from offset 0.
  void follow_delivered(recording_sink& sink) {
    on(0, [&] {
      const std::uint64_t c = hub_->register_sink(&sink);
      hub_->when_delivering({"t1"}, {0, c}, [] {});
    });
    hub_->tenant_delivering("t1", 0);
    sync();
  }
  std::vector<std::string> followed_, unfollowed_;  // under log_mu_
};

TEST_F(hub_follow_test, waiting_tasks_run_once_the_tenant_delivers_from_its_frontier) {
  recording_sink first, second;
  std::atomic<int> ran{0};
  on(0, [&] {
    const std::uint64_t c = hub_->register_sink(&first);
    for (int i = 0; i < 2; ++i) hub_->when_delivering({"t1"}, {0, c}, [&] { ++ran; });
  });
  sync();
  EXPECT_EQ(ran.load(), 0);
  EXPECT_FALSE(hub_->delivers({"t1"}));
  {
    std::lock_guard l(log_mu_);
    EXPECT_EQ(followed_, std::vector<std::string>{"t1"});  // asked once
  }
  // The store: t1 delivers after offset 40 (other tenants' events up to it were published).
  offset_ = 40;
  hub_->tenant_delivering("t1", 40);
  sync();
  EXPECT_EQ(ran.load(), 2);
  EXPECT_TRUE(hub_->delivers({"t1"}));
  // A session subscribed now is anchored at 40: a resume past its ring (3) counts t1's events
  // from the log after 40, exactly; anchored at 0 it would meet offsets 1..40 missing.
  const opened o = open_subscribed(first);
  detach(o);
  publish_logged(6);
  ASSERT_EQ(resume_from_1(second, o.token, 0, who_).error, recovery_error::none);
  sync();
  EXPECT_EQ(second.seqs, (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(second.offsets, (std::vector<std::int64_t>{41, 42, 43, 44, 45, 46}));
}

TEST_F(hub_follow_test, a_tenant_is_unfollowed_only_once_no_session_needs_it_for_a_while) {
  recording_sink sink;
  follow_delivered(sink);
  const opened o = open_subscribed(sink);
  const std::int64_t t0 = now_ms();
  auto tick = [&](std::int64_t at) {
    for (std::size_t i = 0; i < 2; ++i) on(i, [&] { hub_->tick(at); });
  };
  tick(t0 + 20000);  // attached
  detach(o);
  tick(t0 + 40000);  // detached, within its window (60 s): its ring still takes t1's events
  {
    std::lock_guard l(log_mu_);
    EXPECT_TRUE(unfollowed_.empty());
  }
  tick(t0 + 70000);  // the session expired: nobody needed t1 since t0 + 40000
  EXPECT_FALSE(hub_->delivers({"t1"}));
  std::lock_guard l(log_mu_);
  EXPECT_EQ(unfollowed_, std::vector<std::string>{"t1"});
}

TEST_F(hub_follow_test, a_tenant_told_delivering_is_needed_from_then_on) {
  recording_sink sink;
  follow_delivered(sink);
  // Past unfollow_after_ms (1 s) since the follow, a caller is told t1 delivers (and installs
  // a subscription on that word): a sweep right after must not drop it.
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  EXPECT_TRUE(hub_->delivers({"t1"}));
  on(1, [&] { hub_->tick(now_ms() + 500); });
  EXPECT_TRUE(hub_->delivers({"t1"}));
  std::lock_guard l(log_mu_);
  EXPECT_TRUE(unfollowed_.empty());
}

TEST_F(hub_follow_test, a_tenant_a_session_needs_is_followed_again_by_the_sweep) {
  recording_sink sink;
  open_subscribed(sink);  // installed without asking (as if its tenant had just been dropped)
  on(0, [&] { hub_->tick(now_ms()); });
  std::lock_guard l(log_mu_);
  EXPECT_EQ(followed_, std::vector<std::string>{"t1"});
}

TEST_F(hub_hole_test, another_tenants_hole_keeps_the_count_exact) {
  named_ = std::vector<std::string>{"t2"};
  recording_sink first, second;
  const opened o = detached_over_a_hole(first);
  ASSERT_EQ(resume_from_1(second, o.token, 1, who_).error, recovery_error::none);
  sync();
  EXPECT_EQ(second.seqs, (std::vector<std::uint64_t>{2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(second.offsets, (std::vector<std::int64_t>{2, 3, 7, 8, 9, 10, 11, 12}));
  std::lock_guard l(log_mu_);
  EXPECT_EQ(holes_asked_, (std::vector<std::pair<std::int64_t, std::int64_t>>{{4, 6}}));
}

TEST_F(hub_hole_test, a_hole_of_its_own_tenant_or_unnamed_fails_explicitly) {
  for (auto named : {std::optional<std::vector<std::string>>{{"t2", "t1"}},
                     std::optional<std::vector<std::string>>{}}) {
    named_ = named;
    recording_sink first, second;
    const opened o = detached_over_a_hole(first);
    EXPECT_EQ(resume_from_1(second, o.token, 1, who_).error, recovery_error::buffer_overflow);
    sync();
    EXPECT_TRUE(second.seqs.empty());
    std::lock_guard l(log_mu_);
    log_.clear();
  }
}

TEST_F(hub_log_test, explain_gives_the_seq_or_the_first_rule) {
  recording_sink first;
  publish_logged(2);  // offsets 1, 2: before the subscription
  const opened o = open_subscribed(first);
  publish_logged(1);        // offset 3: seq 1
  publish_logged(1, "t2");  // offset 4: another tenant's
  publish_logged(6);        // offsets 5..10: seq 2..7; the ring keeps 5..7
  auto at = [&](std::int64_t off) {
    std::lock_guard l(log_mu_);
    return log_[static_cast<std::size_t>(off - 1)];
  };
  auto v = hub_->explain(o.ref.id, "", at(6));  // past the ring: counted from the anchor
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->delivered) << v->rule << ": " << v->detail;
  EXPECT_EQ(v->seq, std::optional<std::uint64_t>(3));
  v = hub_->explain(o.ref.id, "", at(10));  // in the ring
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->delivered);
  EXPECT_EQ(v->seq, std::optional<std::uint64_t>(7));
  EXPECT_EQ(first.seqs.back(), 7u);
  v = hub_->explain(o.ref.id, "", at(4));
  ASSERT_TRUE(v);
  EXPECT_FALSE(v->delivered);
  EXPECT_EQ(v->rule, "tenant");
  v = hub_->explain(o.ref.id, "", at(1));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->rule, "before_subscription");
  detach(o);
  publish_logged(1);  // offset 11: seq 8, matched while detached
  v = hub_->explain(o.ref.id, "", at(11));
  ASSERT_TRUE(v);
  EXPECT_FALSE(v->delivered);
  EXPECT_EQ(v->rule, "session_detached");
  EXPECT_EQ(v->seq, std::optional<std::uint64_t>(8));
  EXPECT_FALSE(hub_->explain("ses_nope", "", at(1)));
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

// Cluster mode: a second hub (another node) on the same log adopts a session the first one
// stored, while its shards run. A gate can hold the adoption's log read so that events are
// published in the middle of it.
class hub_adopt_test : public hub_crash_test {
 protected:
  hub_adopt_test() {
    extra_ = [this](hub_options& o) {
      o.start_offset = offset_;  // the log's end as this node starts
      auto read = o.read_log;
      o.read_log = [this, read](std::int64_t after, std::size_t limit) {
        {
          std::unique_lock l(gate_mu_);
          if (gate_armed_) {
            gate_armed_ = false;
            gate_reached_ = true;
            gate_cv_.notify_all();
            gate_cv_.wait(l, [&] { return gate_open_; });
          }
        }
        return read(after, limit);
      };
      o.adopt = [this](const std::string& id) -> std::optional<session_state> {
        std::lock_guard l(rec_mu_);
        ++adopt_calls_;
        auto it = stored_.find(id);
        if (it == stored_.end()) return std::nullopt;
        return it->second;
      };
      o.adopted = [this](const std::string& id) {
        std::lock_guard l(rec_mu_);
        adopted_.push_back(id);
      };
    };
  }
  // The first node stops; its sessions' states are what the store holds; a second node starts
  // on the same log (holding no session).
  void move_to_second_node() {
    shards_.clear();
    for (auto& st : hub_->export_sessions()) stored_[st.id] = st;
    hub_.reset();
    SetUp();
  }
  void wait_gate() {
    std::unique_lock l(gate_mu_);
    gate_cv_.wait(l, [&] { return gate_reached_; });
  }
  void open_gate() {
    std::lock_guard l(gate_mu_);
    gate_open_ = true;
    gate_cv_.notify_all();
  }
  std::map<std::string, session_state> stored_;
  std::vector<std::string> adopted_;
  int adopt_calls_ = 0;
  std::mutex gate_mu_;
  std::condition_variable gate_cv_;
  bool gate_armed_ = false, gate_reached_ = false, gate_open_ = false;
};

TEST_F(hub_adopt_test, a_session_stored_by_another_node_resumes_with_exact_seqs) {
  recording_sink first, second;
  const opened o = open_subscribed(first);
  publish_logged(4);  // seq 1..4 on the first node
  move_to_second_node();
  {
    std::lock_guard l(log_mu_);  // committed after the export, never matched there
    log_.push_back(make_event(++offset_));
  }
  publish_logged(2);  // offsets 6, 7: seen by this node before the resume (no session yet)
  {
    std::lock_guard l(gate_mu_);
    gate_armed_ = true;
  }
  std::promise<resume_outcome> out;
  on(1, [&] {
    auto c = hub_->register_sink(&second);
    hub_->resume(o.token, 2, who_, {1, c}, [&](resume_outcome r) { out.set_value(r); });
  });
  wait_gate();        // the adoption is matching offsets 6..7 from the log
  publish_logged(2);  // offsets 8, 9 arrive live meanwhile: held, then seq 8, 9
  open_gate();
  auto fut = out.get_future();
  while (fut.wait_for(std::chrono::milliseconds(5)) != std::future_status::ready) {
    join_blocking();
    sync();
  }
  const resume_outcome r = fut.get();
  ASSERT_EQ(r.error, recovery_error::none);
  EXPECT_EQ(r.seq, 2u);
  ASSERT_TRUE(r.sub_id);
  EXPECT_EQ(*r.sub_id, "sub_1");
  do {
    sync();
  } while (join_blocking() != 0);
  publish_logged(1);  // live after the hand-over
  EXPECT_EQ(second.seqs, (std::vector<std::uint64_t>{3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(second.offsets, (std::vector<std::int64_t>{3, 4, 5, 6, 7, 8, 9, 10}));
  std::lock_guard l(rec_mu_);
  EXPECT_EQ(adopted_, (std::vector<std::string>{o.ref.id}));
  EXPECT_EQ(adopt_calls_, 1);
}

TEST_F(hub_adopt_test, a_wrong_token_or_an_unknown_session_adopts_nothing) {
  recording_sink first, second, third, fourth;
  const opened o = open_subscribed(first);
  publish_logged(2);
  move_to_second_node();
  EXPECT_EQ(resume_from_1(second, o.token + "x", 0, who_).error, recovery_error::unknown_session);
  EXPECT_EQ(resume_from_1(third, "ses_nope.secret", 0, who_).error,
            recovery_error::unknown_session);
  EXPECT_EQ(hub_->stats().sessions_open.load(), 0u);  // nothing was installed
  ASSERT_EQ(resume_from_1(fourth, o.token, 1, who_).error, recovery_error::none);
  do {
    sync();
  } while (join_blocking() != 0);
  EXPECT_EQ(fourth.seqs, (std::vector<std::uint64_t>{2}));
  std::lock_guard l(rec_mu_);
  EXPECT_EQ(adopted_.size(), 1u);
}

TEST_F(hub_adopt_test, let_go_closes_the_socket_replaced_and_keeps_the_record) {
  recording_sink first, second;
  const opened o = open_subscribed(first);
  publish_logged(1);
  hub_->let_go(o.ref.id);
  sync();
  ASSERT_TRUE(first.kicked);
  EXPECT_EQ(*first.kicked, close_reason::replaced);
  EXPECT_EQ(hub_->stats().sessions_open.load(), 0u);
  {
    std::lock_guard l(rec_mu_);
    EXPECT_TRUE(records_.contains(o.ref.id));  // the adopting node's now: not erased
  }
  // This node no longer holds it; with the record it can adopt it back.
  {
    std::lock_guard l(rec_mu_);
    stored_[o.ref.id] = records_.at(o.ref.id);
  }
  ASSERT_EQ(resume_from_1(second, o.token, 0, who_).error, recovery_error::none);
  do {
    sync();
  } while (join_blocking() != 0);
  EXPECT_EQ(second.seqs, (std::vector<std::uint64_t>{1}));
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
  on(1, [&] {
    hub_->with_session(back.ref, [&](session* s) { hub_->detach(*s, s->sink.conn, true); });
  });
  on(0, [&] { hub_->tick(now_ms() + 1000); });
  EXPECT_EQ(hub_->stats().sessions_open.load(), 1u);
}

}  // namespace
}  // namespace herald

namespace herald {
namespace {

// A recording sink that also logs, in arrival order, each delivery's subscription id and the
// markers tasks leave, so tests can check what reached the socket before what.
struct marking_sink : recording_sink {
  std::vector<std::string> log;
  void on_deliver(const delivery_ref& d) override {
    recording_sink::on_deliver(d);
    log.push_back(d.subscription_id ? *d.subscription_id : std::string("-"));
  }
};

subscription topic_sub(const std::string& id) {
  subscription s;
  s.id = id;
  s.filters.push_back(*filter::compile({"/**", {}, {}, {}}, "t1", {}));
  return s;
}

// Every "sub_1" delivery, then the marker, then every "sub_2" delivery.
void expect_marker_between(const std::vector<std::string>& log) {
  std::string want = "sub_1";
  int acks = 0;
  for (const std::string& entry : log) {
    if (entry == "ack") {
      ++acks;
      want = "sub_2";
    } else {
      EXPECT_EQ(entry, want);
    }
  }
  EXPECT_EQ(acks, 1);
}

TEST_F(hub_test, with_session_then_acks_before_the_new_subscriptions_events_across_shards) {
  // The session is homed on shard 0, its socket on shard 1 (moved there by a resume): the ack
  // travels by post, as the events do, and must stay between old and new subscription.
  for (int round = 0; round < 20; ++round) {
    recording_sink first;
    marking_sink second;
    const opened o = open_with(first, topic_sub("sub_1"));
    ASSERT_EQ(resume_from_1(second, o.token, 0, who_).error, recovery_error::none);
    sync();
    std::uint64_t conn = 0;
    on(0, [&] { hub_->with_session(o.ref, [&](session* s) { conn = s->sink.conn; }); });
    const sink_ref me{1, conn};
    std::vector<event_ptr> before, after;
    for (int i = 0; i < 3; ++i) before.push_back(make_event(++offset_));
    for (int i = 0; i < 3; ++i) after.push_back(make_event(++offset_));
    hub_->publish(before);
    on(1, [&] {
      hub_->with_session_then(o.ref, me, [&, me](session* s) -> hub::task {
        EXPECT_EQ(hub::current_shard(), 0u);
        if (s != nullptr) hub_->set_subscription(*s, topic_sub("sub_2"), false);
        return [&, me] {
          EXPECT_EQ(hub::current_shard(), me.shard);
          second.log.push_back("ack");
        };
      });
    });
    hub_->publish(after);
    sync();
    EXPECT_EQ(second.seqs.size(), 6u);
    expect_marker_between(second.log);
    on(0, [&] { hub_->unregister_sink(o.conn); });  // the sinks end with this round
    on(1, [&] { hub_->unregister_sink(conn); });
  }
}

TEST_F(hub_test, with_session_then_acks_before_the_new_subscriptions_events_on_one_shard) {
  // Session and socket both on shard 0: events are direct calls, the ack runs inline.
  for (int round = 0; round < 20; ++round) {
    marking_sink sink;
    const opened o = open_with(sink, topic_sub("sub_1"));
    const sink_ref me{0, o.conn};
    std::vector<event_ptr> before, after;
    for (int i = 0; i < 3; ++i) before.push_back(make_event(++offset_));
    for (int i = 0; i < 3; ++i) after.push_back(make_event(++offset_));
    hub_->publish(before);
    // From shard 1 (not the socket's shard) and from shard 0 itself, alternately.
    on(round % 2, [&] {
      hub_->with_session_then(o.ref, me, [&](session* s) -> hub::task {
        hub_->set_subscription(*s, topic_sub("sub_2"), false);
        return [&] { sink.log.push_back("ack"); };
      });
    });
    hub_->publish(after);
    sync();
    EXPECT_EQ(sink.seqs.size(), 6u);
    expect_marker_between(sink.log);
    on(0, [&] { hub_->unregister_sink(o.conn); });  // the sink ends with this round
  }
}

TEST_F(hub_test, with_session_then_skips_a_socket_gone_and_reports_a_session_gone) {
  recording_sink sink, other;
  const opened o = open_subscribed(sink);
  // The socket goes before its continuation runs: the continuation is dropped.
  bool home_ran = false, continued = false;
  on(0, [&] {
    hub_->with_session_then(o.ref, {0, o.conn}, [&](session* s) -> hub::task {
      home_ran = s != nullptr;
      hub_->unregister_sink(o.conn);
      return [&] { continued = true; };
    });
  });
  sync();
  EXPECT_TRUE(home_ran);
  EXPECT_FALSE(continued);
  // A session gone: `home` sees nullptr; its task still reaches a live socket. No task: nothing.
  std::uint64_t c1 = 0;
  on(1, [&] { c1 = hub_->register_sink(&other); });
  bool saw_null = false;
  continued = false;
  on(1, [&] {
    hub_->with_session_then(session_ref{0, "ses_gone"}, {1, c1}, [&](session* s) -> hub::task {
      saw_null = s == nullptr;
      return [&] { continued = hub::current_shard() == 1; };
    });
    hub_->with_session_then(session_ref{0, "ses_gone"}, {1, c1},
                            [](session*) -> hub::task { return nullptr; });
  });
  sync();
  EXPECT_TRUE(saw_null);
  EXPECT_TRUE(continued);
}

TEST_F(hub_test, on_socket_shard_runs_there_only_while_the_sink_is_registered) {
  recording_sink sink;
  std::uint64_t c = 0;
  on(1, [&] { c = hub_->register_sink(&sink); });
  std::vector<std::size_t> ran;
  on(0, [&] { hub_->on_socket_shard({1, c}, [&] { ran.push_back(hub::current_shard()); }); });
  on(1, [&] { hub_->on_socket_shard({1, c}, [&] { ran.push_back(hub::current_shard()); }); });
  sync();
  EXPECT_EQ(ran, (std::vector<std::size_t>{1, 1}));
  // Posted to shard 1 before the unregister: runs. Posted after it: dropped.
  on(0, [&] { hub_->on_socket_shard({1, c}, [&] { ran.push_back(99); }); });
  on(1, [&] { hub_->unregister_sink(c); });
  on(0, [&] { hub_->on_socket_shard({1, c}, [&] { ran.push_back(98); }); });
  sync();
  EXPECT_EQ(ran, (std::vector<std::size_t>{1, 1, 99}));
}

TEST_F(hub_log_test, session_options_set_ring_window_and_log_replay) {
  recording_sink first, second, third;
  opened o;
  on(0, [&] {
    o.conn = hub_->register_sink(&first);
    session_options opts;
    opts.seq_base = 40;
    opts.ring_capacity = 2;
    opts.recovery_window_ms = 1000;
    opts.log_replay = false;
    o.ref = hub_->open_session(who_, "ringcentral", {0, o.conn}, opts);
    hub_->with_session(o.ref, [&](session* s) {
      EXPECT_EQ(s->ring_capacity, 2u);
      EXPECT_EQ(s->recovery_window_ms, 1000);
      EXPECT_FALSE(s->log_replay);
      hub_->set_subscription(*s, all(), false);
      o.token = s->resume_token;
    });
  });
  publish_logged(4);  // seq 1..4; the ring keeps 3..4
  detach(o);
  // Older than the ring of 2, and not paged from the log although the hub could.
  EXPECT_EQ(resume_from_1(second, o.token, 1, who_).error, recovery_error::buffer_overflow);
  const resume_outcome ok = resume_from_1(second, o.token, 2, who_);
  ASSERT_EQ(ok.error, recovery_error::none);
  EXPECT_EQ(ok.seq_base, 40u);
  sync();
  EXPECT_EQ(second.seqs, (std::vector<std::uint64_t>{3, 4}));
  // The session's own window (1 s), not the hub's (60 s).
  on(0,
     [&] { hub_->with_session(o.ref, [&](session* s) { hub_->detach(*s, s->sink.conn, true); }); });
  on(0, [&] { hub_->tick(now_ms() + 2000); });
  EXPECT_EQ(resume_from_1(third, o.token, 4, who_).error, recovery_error::expired);
  // Zeros take the hub's settings.
  recording_sink fourth;
  on(0, [&] {
    const auto c = hub_->register_sink(&fourth);
    const session_ref r = hub_->open_session(who_, "native", {0, c}, session_options{});
    hub_->with_session(r, [&](session* s) {
      EXPECT_EQ(s->ring_capacity, 3u);
      EXPECT_EQ(s->recovery_window_ms, 60000);
      EXPECT_TRUE(s->log_replay);
      EXPECT_EQ(s->seq_base, 0u);
    });
  });
}

TEST_F(hub_test, clear_subscription_forget_id_hides_it_from_a_later_resume) {
  recording_sink sinks[2][2];  // outlive the loop: the hub keeps them registered
  for (const bool forget : {false, true}) {
    recording_sink& first = sinks[forget][0];
    recording_sink& second = sinks[forget][1];
    const opened o = open_subscribed(first);
    on(0, [&] {
      hub_->with_session(o.ref, [&](session* s) { hub_->clear_subscription(*s, forget); });
    });
    detach(o);
    const resume_outcome r = resume_from_1(second, o.token, 0, who_);
    ASSERT_EQ(r.error, recovery_error::none);
    if (forget) {
      EXPECT_EQ(r.sub_id, nullptr);
    } else {
      ASSERT_NE(r.sub_id, nullptr);
      EXPECT_EQ(*r.sub_id, "sub_1");
    }
    publish(1);
    EXPECT_TRUE(second.seqs.empty());  // no subscription either way
  }
}

}  // namespace
}  // namespace herald

namespace herald {
namespace {

// Debug builds check that a home-shard function runs on the session's home shard, not merely
// on some shard. No shard threads here: this thread stands in for shard 1, then shard 0.
TEST(hub_shard_asserts, a_home_shard_call_from_another_shard_dies) {
#ifdef NDEBUG
  GTEST_SKIP() << "asserts are compiled out (NDEBUG)";
#else
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        std::vector<hub::post_fn> posts(2, [](hub::task) {});
        hub h(posts, nullptr, hub_options{});
        principal who;
        who.tenant = "t1";
        hub::bind_thread(1);
        const session_ref ref = h.open_session(who, "native", {1, 7});
        session* s = nullptr;
        h.with_session(ref, [&](session* found) { s = found; });  // inline: on shard 1
        hub::bind_thread(0);
        h.clear_subscription(*s, true);  // shard 0 is not its home
      },
      "this_shard == shard");
#endif
}

}  // namespace
}  // namespace herald

namespace herald {
namespace {

// An adoption's count checks the hole before the first event past `upto` too: offsets
// (processed, upto] all gone from the log (a tenant's bound trimmed them) followed by an event
// past upto are not "no match, exact" — the resume says the gap was lost.
TEST_F(hub_adopt_test, a_hole_up_to_upto_before_an_event_past_it_is_not_exact) {
  recording_sink first, second;
  const opened o = open_subscribed(first);
  publish_logged(4);  // seq 1..4 on the first node
  move_to_second_node();
  publish_logged(2);  // offsets 5, 6: this session's matches, seen by this node (upto 6)
  {
    std::lock_guard l(log_mu_);  // trimmed from the log; offset 7 committed, not yet seen
    log_.erase(log_.end() - 2, log_.end());
    log_.push_back(make_event(++offset_));
  }
  std::promise<resume_outcome> out;
  on(1, [&] {
    auto c = hub_->register_sink(&second);
    hub_->resume(o.token, 4, who_, {1, c}, [&](resume_outcome r) { out.set_value(r); });
  });
  auto fut = out.get_future();
  while (fut.wait_for(std::chrono::milliseconds(5)) != std::future_status::ready) {
    join_blocking();
    sync();
  }
  EXPECT_EQ(fut.get().error, recovery_error::buffer_overflow)
      << "recovered at seq 4 although the session's matches at offsets 5, 6 are gone";
}

}  // namespace
}  // namespace herald
