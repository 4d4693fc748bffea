// The load engine behind `herald bench`: N subscriber WebSocket connections spread over K
// threads (each thread its own io_context{1}, many connections per thread, one coroutine per
// connection) and P publishers, for either server: Herald's native protocol (subscribers on
// /v1/ws, publishers batching POST /v1/events on keep-alive HTTP connections) or NATS over
// WebSocket (CONNECT, SUB, PUB, MSG, PING/PONG). Same shapes, same payload bytes, same
// accounting for both. No Asio in this header.
// Thread ownership: run_load() is called on one thread (the main thread), which starts the
// load threads, orchestrates the phases through atomics, joins the threads and returns.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/servers.h"

namespace herald::bench {

enum class server_kind { herald, nats };

struct load_options {
  server_kind kind = server_kind::herald;
  // The servers (at least one; servers.h). Several: nodes of one cluster; subscriber i
  // connects to servers[subscriber_server(i, n)] and publishing stream s posts to
  // servers[stream_server(s, n)], so each node takes its share of both (docs/performance.md).
  std::vector<server_address> servers{{"http://127.0.0.1:8080", "127.0.0.1", "8080", "/"}};
  std::string ws_path = "/v1/ws";  // Herald's WebSocket path; NATS: each server's target
  std::string sub_key, pub_key;    // Herald API keys (app role, publisher role)
  std::size_t subscribers = 1000;
  std::size_t threads = 2;
  std::size_t publishers = 1;
  std::size_t topics = 1;
  std::size_t payload_bytes = 64;
  std::size_t batch = 100;  // events per POST (Herald) or per WebSocket frame (NATS)
  double rate = 0;          // events/s over all publishers; 0: max rate
  double duration_s = 5;    // publishing time; 0: no publishing
  double idle_s = 0;        // idle time after connecting (server CPU and RSS measured)
  double drain_s = 5;       // wait for outstanding deliveries after publishing stops
  double connect_timeout_s = 60;
  std::size_t connect_concurrency = 200;  // handshakes in flight at once, over all threads
  std::size_t window = 0;  // max rate: deliveries outstanding before publishers wait; 0: auto
  // For RSS and CPU, summed over them (a cluster: its nodes and Redis); empty: not measured.
  std::vector<int> server_pids;
  // Requests outstanding per publisher: N streams (connections) each, see accounting.h.
  std::size_t inflight = 1;
  // Slow subscribers (accounting.h is_slow): after each read they pause slow_pause_s. Their
  // deliveries, latency and closes are reported apart from the others'.
  double slow_fraction = 0;
  double slow_pause_s = 1.0;
  // Resume storm (Herald only): subscribe, publish one event per topic, write `storm_ready_file`
  // and wait for the server to drain (close 1012) and come back on the same address (restarted
  // on the same data by whoever runs the bench), publish `storm_missed` events per topic, then
  // resume every session at once.
  bool storm = false;
  std::string storm_ready_file;
  double storm_restart_timeout_s = 60;
  std::size_t storm_missed = 2;
};

struct load_result {
  // connections
  std::size_t connected = 0, connect_errors = 0, disconnects = 0;
  int last_close_code = 0;
  std::string first_error;
  double connect_s = 0, connect_rate = 0, connect_p50_ms = 0, connect_p99_ms = 0;
  // publishing
  std::uint64_t published = 0, publish_errors = 0;
  double publish_s = 0, publish_rate = 0;
  // deliveries
  std::uint64_t delivered = 0, expected = 0, window_deliveries = 0;
  double deliveries_per_s = 0;
  double lat_p50_us = 0, lat_p90_us = 0, lat_p99_us = 0, lat_p999_us = 0, lat_max_us = 0,
         lat_mean_us = 0;
  // lost: skipped (a later event of the same publisher arrived, this one never did);
  // undelivered: not arrived by the end of the drain (the server was behind).
  std::uint64_t lost = 0, undelivered = 0, duplicates = 0, reordered = 0, seq_gaps = 0,
                seq_backwards = 0;
  // resources (server measured only with a pid)
  bool server_measured = false;
  std::uint64_t server_rss_before = 0, server_rss_connected = 0, server_rss_end = 0,
                server_rss_peak = 0;
  double server_rss_per_conn = 0, server_cpu_pct = 0, server_idle_cpu_pct = 0;
  double client_cpu_pct = 0;
  // During the connect phase: the server's CPU (of one core) and its CPU time per connection.
  double server_connect_cpu_pct = 0, server_connect_cpu_us = 0, client_connect_cpu_pct = 0;
  unsigned client_cpus = 1;
  bool client_bound = false;
  // Herald publish-to-commit: POST sent -> 201 read, per request (0 for NATS: no ack).
  std::uint64_t pub_requests = 0;
  double pub_p50_us = 0, pub_p99_us = 0, pub_max_us = 0;
  // slow subscribers (--slow-fraction)
  std::size_t slow_subscribers = 0, slow_disconnects = 0;
  int slow_last_close_code = 0;
  std::uint64_t slow_delivered = 0, slow_expected = 0;
  double slow_lat_p99_us = 0;
  // resume storm (--resume-storm)
  std::size_t storm_sessions = 0, storm_drain_closes = 0, storm_welcomed = 0, storm_recovered = 0,
              storm_caught_up = 0, storm_errors = 0;
  int storm_drain_close_code = 0;
  std::uint64_t storm_gaps = 0, storm_duplicates = 0, storm_replayed = 0, storm_expected = 0;
  double storm_restart_s = 0, storm_last_recovered_s = 0, storm_last_caught_up_s = 0,
         storm_welcome_p50_ms = 0, storm_welcome_p99_ms = 0;
  std::string storm_recovery_errors;  // "reason:count,..." of recovered:false welcomes
};

// Runs one measurement. Throws std::runtime_error only for bad options or an unreachable
// server at start; failures under load are counted in the result.
load_result run_load(const load_options& opts);
// The resume storm (opts.storm): see load_options. Throws as run_load.
load_result run_resume_storm(const load_options& opts);

// The topic (Herald) or subject (NATS) of topic number i.
std::string topic_name(server_kind kind, std::size_t i);

}  // namespace herald::bench
