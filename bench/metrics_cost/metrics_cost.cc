// Herald's /metrics writer (src/api/prometheus.cc over core/metrics.h) against prometheus-cpp
// (Debian prometheus-cpp-dev), measured in instructions under callgrind (docs/production.md,
// "Metrics"). Not part of the build: compile and run by hand,
//   g++ -std=c++20 -O2 -DNDEBUG -Isrc bench/metrics_cost/metrics_cost.cc src/api/prometheus.cc \
//       src/core/metrics.cc -lfmt -lprometheus-cpp-core -o /tmp/metrics_cost
//   valgrind --tool=callgrind --toggle-collect='run_case*' /tmp/metrics_cost CASE
// with CASE one of ours_deliver, prom_deliver (one socket delivery's metrics work, 64 times:
// frames_sent and the sampled latency histogram), ours_render, prom_render (one scrape of the
// same series: 9 scalars, 2 histograms, closes of 2 dialects x 100 tenants x 3 codes, 14 auth
// failure, 12 refusal and 4 recovery series).
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "api/prometheus.h"
#include "core/metrics.h"

namespace {

constexpr int deliveries = 64;
const char* const dialects[] = {"native", "ringcentral"};
const char* const codes[] = {"1000", "1006", "4001"};
const char* const reasons[] = {"missing", "malformed",  "expired", "reused",
                               "revoked", "wrong_kind", "invalid"};
const char* const limits[] = {"auth_failures",          "connections_per_app",
                              "connections_per_tenant", "connections_per_session",
                              "publish_rate",           "send_queue"};
const char* const outcomes[] = {"recovered", "gap_too_old", "token_unknown", "expired"};

struct ours {
  herald::metrics m;
  ours() {
    for (const char* d : dialects) {
      for (int t = 0; t < 100; ++t)
        for (const char* c : codes) m.closes.add({d, "tenant" + std::to_string(t), c});
      for (const char* r : reasons) m.auth_failures.add({d, r});
      for (const char* l : limits) m.refusals.add({d, l});
    }
    for (const char* o : outcomes) m.recoveries_by_outcome.add(o);
    for (int i = 0; i < 1000; ++i) m.publish_commit_ms.observe(i % 40);
  }
  // dialect_socket::on_deliver and ws_session's write: the sampled histogram, the frame count.
  void deliver(std::uint64_t& delivered, double ms) {
    if ((++delivered & 63U) == 1) m.publish_delivery_ms.observe(ms);
    m.frames_sent.fetch_add(1, std::memory_order_relaxed);
  }
  std::string render() {
    std::string out;
    for (int i = 0; i < 9; ++i)
      herald::write_metric(out, "herald_scalar_total", "counter", "A scalar.",
                           static_cast<double>(m.frames_sent.load()));
    herald::write_labelled(out, "herald_closes_total", {"dialect", "tenant", "code"}, "Closes.",
                           m.closes);
    herald::write_labelled(out, "herald_auth_failures_total", {"dialect", "reason"}, "Auth.",
                           m.auth_failures);
    herald::write_labelled(out, "herald_refusals_total", {"dialect", "limit"}, "Refusals.",
                           m.refusals);
    herald::write_labelled(out, "herald_recoveries_total", "outcome", "Resumes.",
                           m.recoveries_by_outcome);
    herald::write_histogram(out, "herald_publish_commit_seconds", "Commit.", m.publish_commit_ms);
    herald::write_histogram(out, "herald_publish_delivery_seconds", "Delivery.",
                            m.publish_delivery_ms);
    return out;
  }
};

struct theirs {
  prometheus::Registry reg;
  prometheus::Counter* frames;
  prometheus::Histogram* delivery;
  prometheus::Histogram* commit;
  theirs() {
    const prometheus::Histogram::BucketBoundaries b{0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01,
                                                    0.025,   0.05,   0.1,   0.25,  0.5,   1};
    for (int i = 0; i < 9; ++i)
      prometheus::BuildCounter()
          .Name("herald_scalar" + std::to_string(i) + "_total")
          .Help("A scalar.")
          .Register(reg)
          .Add({});
    frames = &prometheus::BuildCounter()
                  .Name("herald_frames_sent_total")
                  .Help("Frames.")
                  .Register(reg)
                  .Add({});
    auto& closes =
        prometheus::BuildCounter().Name("herald_closes_total").Help("Closes.").Register(reg);
    auto& auth =
        prometheus::BuildCounter().Name("herald_auth_failures_total").Help("Auth.").Register(reg);
    auto& refusals =
        prometheus::BuildCounter().Name("herald_refusals_total").Help("Refusals.").Register(reg);
    auto& recoveries =
        prometheus::BuildCounter().Name("herald_recoveries_total").Help("Resumes.").Register(reg);
    for (const char* d : dialects) {
      for (int t = 0; t < 100; ++t)
        for (const char* c : codes)
          closes.Add({{"dialect", d}, {"tenant", "tenant" + std::to_string(t)}, {"code", c}})
              .Increment();
      for (const char* r : reasons) auth.Add({{"dialect", d}, {"reason", r}}).Increment();
      for (const char* l : limits) refusals.Add({{"dialect", d}, {"limit", l}}).Increment();
    }
    for (const char* o : outcomes) recoveries.Add({{"outcome", o}}).Increment();
    commit = &prometheus::BuildHistogram()
                  .Name("herald_publish_commit_seconds")
                  .Help("Commit.")
                  .Register(reg)
                  .Add({}, b);
    delivery = &prometheus::BuildHistogram()
                    .Name("herald_publish_delivery_seconds")
                    .Help("Delivery.")
                    .Register(reg)
                    .Add({}, b);
    for (int i = 0; i < 1000; ++i) commit->Observe((i % 40) / 1000.0);
  }
  void deliver(std::uint64_t& delivered, double ms) {
    if ((++delivered & 63U) == 1) delivery->Observe(ms / 1000);
    frames->Increment();
  }
  std::string render() { return prometheus::TextSerializer().Serialize(reg.Collect()); }
};

// The measured part: callgrind's --toggle-collect='run_case*' counts only inside it.
__attribute__((noinline)) std::size_t run_case(const char* c, ours& a, theirs& b) {
  std::uint64_t delivered = 0;
  if (std::strcmp(c, "ours_deliver") == 0) {
    for (int i = 0; i < deliveries; ++i) a.deliver(delivered, 3.0);
    return delivered;
  }
  if (std::strcmp(c, "prom_deliver") == 0) {
    for (int i = 0; i < deliveries; ++i) b.deliver(delivered, 3.0);
    return delivered;
  }
  if (std::strcmp(c, "ours_render") == 0) return a.render().size();
  if (std::strcmp(c, "prom_render") == 0) return b.render().size();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: metrics_cost ours_deliver|prom_deliver|ours_render|prom_render\n");
    return 1;
  }
  ours a;
  theirs b;
  const std::size_t n = run_case(argv[1], a, b);
  std::printf("%s: %zu\n", argv[1], n);
  return 0;
}
