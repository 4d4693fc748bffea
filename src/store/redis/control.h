// The cluster's control channel and node registry (docs/cluster.md, "Control channel").
//
// A message is an entry of the stream `herald:ctl` (XADD, auto ID, trimmed MAXLEN ~ max_len)
// with fields n (the sending node), k (its kind) and a (its argument); a PUBLISH on the channel
// `herald:ctl` (the entry ID, then the body) tells the other nodes one is there. Each node reads
// the stream after the last ID it has handled (XRANGE exclusive), so every message reaches it
// once and in stream order: on each notification, when its subscriber is up again after a drop
// (pub/sub is fire-and-forget), and every renew_ms anyway (a notification lost without a drop).
// A node never handles its own messages.
//
// Each message also carries `s`, a dense number (INCR herald:ctlseq in the same Redis Function
// as its XADD): a reader that finds a number past the last one it saw plus one missed what the
// trimming (MAXLEN ~ max_len) took while it could not read, and hears on_gap(how many).
//
// Node registry: the hash `herald:node:<id>` (node, pid, renewed_ms) with a lease of lease_ms,
// renewed every renew_ms, and the set `herald:nodes` of ids registered. stop() deletes this
// node's hash at once (the id stays in the set: the others treat it as lapsed).
//
// The session records a node holds (herald:held:session:<id>, kept by the store's
// herald_records) outlive it: each renewal, a node looks for peers whose lease lapsed and gives
// their records expires_ms = now + the record's recovery_window_ms (held_window_ms when it names
// none), never moving an expiry already set; the id leaves herald:nodes once all are done. A
// node whose own lease had lapsed (a stall, Redis away) takes its records back without expiry
// when it renews again; at start, what an earlier run of the same id left is given an expiry
// and released. docs/cluster.md, "A dead node's sessions".
//
// Threads: on_message runs on the io_thread, in stream order, and must not block. start(),
// publish(), live_nodes() and stop() block (never on the io_thread). No Asio here.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/errc.h"
#include "store/redis/connection.h"
#include "store/redis/subscriber.h"

namespace herald::redis {

struct control_message {
  std::string id;    // the stream entry's ID ("<ms>-<n>")
  std::string node;  // the sending node's id
  std::string kind;  // "taken", "kick", "login_end", "conns", ...
  std::string arg;
};

struct control_options {
  std::string node_id;             // this node (core.node_id)
  std::int64_t lease_ms = 3000;    // a node silent this long leaves the registry
  std::int64_t renew_ms = 1000;    // lease renewal, and the stream's poll
  std::size_t max_len = 10000;     // the stream is trimmed to about this many entries
  std::size_t page = 1000;         // entries per XRANGE, records per expiry step
  std::string prefix = "herald:";  // key prefix
  // The recovery window of a held session record that names none (hub_options').
  std::int64_t held_window_ms = 180000;
  // io_thread, in stream order with on_message: this many messages were trimmed unread.
  std::function<void(std::uint64_t missed)> on_gap;
  // Renewer thread: a line worth logging (a peer's records given an expiry, ours taken back).
  std::function<void(const std::string&)> on_note;
};

class control {
 public:
  using handler = std::function<void(const control_message&)>;
  control(io_thread& io, options conn, control_options opts, handler on_message);
  ~control();  // stop()s
  control(const control&) = delete;
  control& operator=(const control&) = delete;

  // Connects, registers this node and starts after the stream's current end (a node that
  // starts holds nothing earlier messages could concern). Fails naming Redis's error.
  status start(std::int64_t timeout_ms);
  // Deregisters (deletes the node hash) and stops the renewal; no handler runs after it, and
  // publish() and live_nodes() fail from then on.
  void stop();
  // Appends a message and notifies the channel; ok once Redis has the entry.
  status publish(std::string_view kind, std::string_view arg);
  // Ids of the nodes whose lease is live (this one included), sorted.
  result<std::vector<std::string>> live_nodes();
  // The command connection, for a caller's own keys (e.g. replies to a message).
  connection& commands() { return *cmd_; }
  const control_options& opts() const { return opts_; }

  struct state;

 private:
  std::string seq_key() const { return opts_.prefix + "ctlseq"; }
  void renew_loop();
  status renew();
  // Runs FCALL `c`, loading the function library first when Redis lost it.
  result<reply> fcall(const command& c);
  // A page step of herald_node_<what> over node `id`'s held records (KEYS as it wants them).
  command held_step(const char* what, const std::string& id) const;
  // Each false when Redis failed midway: start() fails; renew() runs reclaim_own() again.
  bool release_own();    // start: what an earlier run of this id left
  bool reclaim_own();    // our lease had lapsed and is back
  void expire_lapsed();  // peers whose lease lapsed

  io_thread& io_;
  control_options opts_;
  std::shared_ptr<state> state_;
  std::unique_ptr<connection> cmd_;
  std::unique_ptr<subscriber> sub_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool registered_ = false;   // renewer: the first renewal is done
  bool reclaim_due_ = false;  // renewer: our lease had lapsed, reclaim_own() not done yet
  std::atomic<bool> stopped_{false};
  std::thread renewer_;
};

}  // namespace herald::redis
