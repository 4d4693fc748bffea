#!/usr/bin/env python3
"""Medians, spreads, Herald/NATS ratios and the issue's targets from a bench/run.sh results file.

Usage: summarize.py RESULTS.jsonl OUT_DIR [--readme README.md] | summarize.py --line RUN.json NAME
Writes OUT_DIR/summary.md and the gnuplot data files (throughput.dat, latency.dat, idle.dat);
prints the summary. With --readme, replaces the text between `<!-- bench:begin -->` and
`<!-- bench:end -->` in that file with the targets table. The cluster rows (labels
cluster-<N>-<shape>: 1 and 3 Herald nodes on one Redis) are an extra section of the summary
with the 3-node/1-node ratio, never in the targets (the headline) nor in the README.
Standard library only.
"""
import json
import statistics
import sys
from collections import defaultdict

# shape -> [(metric, unit, better)]; better: "high" or "low"
THROUGHPUT = [("deliveries_per_s", "deliveries/s", "high"), ("publish_rate", "events/s", "high"),
              ("server_cpu_pct", "server CPU %", "low"),
              ("server_cpu_us_per_delivery", "server CPU µs/delivery", "low"),
              ("server_cpu_us_per_event", "server CPU µs/event", "low"),
              ("client_cpu_pct", "load tool CPU %", "low"),
              ("pub_p50_us", "publish→commit p50 µs", "low"),
              ("pub_p99_us", "publish→commit p99 µs", "low")]
LATENCY = [("lat_p50_us", "p50 µs", "low"), ("lat_p99_us", "p99 µs", "low"),
           ("deliveries_per_s", "deliveries/s", "high"), ("server_cpu_pct", "server CPU %", "low"),
           ("pub_p50_us", "publish→commit p50 µs", "low"),
           ("pub_p99_us", "publish→commit p99 µs", "low")]
METRICS = {
    "fanout-1": THROUGHPUT, "fanout-64": THROUGHPUT, "topics-1": THROUGHPUT,
    "topics-64": THROUGHPUT, "fanout-64-memory": THROUGHPUT, "topics-64-memory": THROUGHPUT,
    "latency": LATENCY, "latency-busy": LATENCY,
    "latency-slow": LATENCY + [("slow_disconnects", "slow subscribers cut", "low"),
                               ("slow_lat_p99_us", "slow subscribers' p99 µs", "low")],
    "idle": [("server_rss_per_conn", "RSS B/conn", "low"), ("connect_rate", "connects/s", "high"),
             ("server_connect_cpu_us", "server CPU µs/connect", "low"),
             ("server_idle_cpu_pct", "idle CPU %", "low")],
    "storm": [("storm_sessions", "sessions resumed", "high"),
              ("storm_recovered", "recovered:true", "high"),
              ("storm_caught_up", "all missed events back", "high"),
              ("storm_gaps", "seq gaps", "low"), ("storm_duplicates", "duplicates", "low"),
              ("storm_drain_closes", "closed by the drain", "high"),
              ("storm_restart_s", "drain + restart s", "low"),
              ("storm_last_recovered_s", "to the last recovered s", "low"),
              ("storm_last_caught_up_s", "to the last caught up s", "low")],
}
SHAPES = {
    "fanout-1": "1 topic × 1,000 subscribers, 64 B, max rate, 1 event per request, 16 in flight",
    "fanout-64": "1 topic × 1,000 subscribers, 64 B, max rate, arrays of 64, 16 in flight",
    "topics-1": "1,000 topics × 1 subscriber, max rate, 1 event per request, 16 in flight",
    "topics-64": "1,000 topics × 1 subscriber, max rate, arrays of 64, 16 in flight",
    "fanout-64-memory": "fanout-64 with Herald's memory store (not the default)",
    "topics-64-memory": "topics-64 with Herald's memory store (not the default)",
    "latency": "1 topic × 1,000 subscribers at 200 events/s (16 in flight; each POST carries the events due)",
    "latency-busy": "latency with a CPU-bound process on the server's core",
    "latency-slow": "latency with 5 % of subscribers reading slowly (16 KiB a second)",
    "idle": "idle connections (RSS, connect rate, idle CPU)",
    "storm": "resume storm: sessions subscribed, SIGTERM drain, restart on the same data, all resume at once",
}
# The cluster rows (bench/run.sh, docs/cluster.md): shapes run on 1 and on 3 nodes.
CLUSTER_SHAPES = ("latency", "fanout-64")
CLUSTER_NODES = (1, 3)
CLUSTER = [("deliveries_per_s", "deliveries/s", "high"), ("publish_rate", "events/s", "high"),
           ("lat_p50_us", "p50 µs", "low"), ("lat_p99_us", "p99 µs", "low"),
           ("pub_p50_us", "publish→commit p50 µs", "low"),
           ("pub_p99_us", "publish→commit p99 µs", "low"),
           ("server_cpu_pct", "CPU % (nodes + Redis)", "low"),
           ("server_cpu_us_per_delivery", "CPU µs/delivery (nodes + Redis)", "low")]


def cluster_label(nodes, shape):
    return f"cluster-{nodes}-{shape}"


def cluster_section(st, meta):
    """The cluster rows: medians for 1 and 3 nodes and their ratio ([] when none ran)."""
    if not any(st.runs.get((cluster_label(n, s), "herald")) for n in CLUSTER_NODES
               for s in CLUSTER_SHAPES):
        return []
    one, three = CLUSTER_NODES
    lines = ["", "## Cluster (extra rows, not the headline)\n",
             f"Herald nodes with `--store redis://` on one {meta.get('redis', 'redis-server')} "
             f"(AOF, appendfsync {meta.get('redis_appendfsync', '?')}), a fresh Redis per run; "
             "one `herald bench` spreads its subscribers and its 16 publishing streams round-robin "
             "over the nodes' URLs. Nodes and Redis share the server CPU, the load the other: on "
             "a 2-core machine this measures the cluster's overhead, not its scaling.\n",
             f"| shape | metric | {one} node (median) | spread % | {three} nodes (median) | "
             f"spread % | {three}-node/{one}-node | better |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for shape in CLUSTER_SHAPES:
        a, b = cluster_label(one, shape), cluster_label(three, shape)
        for key, unit, better in CLUSTER:
            x, y = st.med(a, "herald", key), st.med(b, "herald", key)
            if x is None and y is None:
                continue
            ratio = y / x if (x and y is not None) else None
            lines.append(f"| {shape} | {unit} | {fmt(x)} | {fmt(st.spread(a, 'herald', key))} | "
                         f"{fmt(y)} | {fmt(st.spread(b, 'herald', key))} | "
                         f"{'-' if ratio is None else f'{ratio:.2f}'} | {better}er |")
    return lines


def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def one_line(path, name):
    """The progress line of one run (bench/run.sh prints it as each run ends)."""
    text = open(path).readline().strip()
    if not text:
        print(f"bench: {name}: no result")
        return
    r = json.loads(text)
    if "storm_sessions" in r:
        print(f"bench: {name}: {r['storm_recovered']} of {r['storm_sessions']} recovered "
              f"(last at {r['storm_last_recovered_s']:.2f} s, caught up {r['storm_caught_up']}, "
              f"last at {r['storm_last_caught_up_s']:.2f} s), gaps {r['storm_gaps']}, "
              f"drain closes {r['storm_drain_closes']} (code {r['storm_drain_close_code']}), "
              f"errors {r['storm_errors']} {r.get('storm_recovery_errors', '')} "
              f"{r.get('first_error', '')[:120]}")
        return
    print(f"bench: {name}: {r['connected']} conns ({r['connect_rate']:.0f}/s), "
          f"{r['deliveries_per_s']:.0f} deliveries/s, {r['publish_rate']:.0f} events/s, "
          f"p50 {r['lat_p50_us']:.0f} us, p99 {r['lat_p99_us']:.0f} us, "
          f"commit p50/p99 {r.get('pub_p50_us', 0):.0f}/{r.get('pub_p99_us', 0):.0f} us, "
          f"RSS/conn {r.get('server_rss_per_conn', 0):.0f} B, "
          f"server CPU {r.get('server_cpu_pct', 0):.0f}%, client CPU {r['client_cpu_pct']:.0f}%, "
          f"slow cut {r.get('slow_disconnects', '-')}, "
          f"clean {r['clean']}, client-bound {r['client_bound']} {r.get('first_error', '')[:120]}")


def load(results):
    meta, runs = {}, defaultdict(list)
    for line in open(results):
        line = line.strip()
        if not line:
            continue
        r = json.loads(line)
        if r.get("meta"):
            meta = r
            continue
        if r.get("deliveries_per_s") and "server_cpu_pct" in r:
            # Server CPU time per delivery and per published event: comparable where the load
            # tool, not the server, caps the rate.
            cpu_s = r["server_cpu_pct"] / 100
            r["server_cpu_us_per_delivery"] = cpu_s / r["deliveries_per_s"] * 1e6
            if r.get("publish_rate"):
                r["server_cpu_us_per_event"] = cpu_s / r["publish_rate"] * 1e6
        runs[(r["label"], r["server"])].append(r)
    return meta, runs


class Stats:
    def __init__(self, runs):
        self.runs = runs

    def vals(self, shape, server, key):
        return [r[key] for r in self.runs.get((shape, server), []) if key in r]

    def med(self, shape, server, key):
        v = self.vals(shape, server, key)
        return statistics.median(v) if v else None

    def spread(self, shape, server, key):
        """(max - min) / median of the runs, in %: how far apart the repetitions were."""
        v = self.vals(shape, server, key)
        if len(v) < 2:
            return None
        m = statistics.median(v)
        return (max(v) - min(v)) / m * 100 if m else None

    def ratio(self, shape, key, shape_n=None):
        h, n = self.med(shape, "herald", key), self.med(shape_n or shape, "nats", key)
        return (h / n) if (h is not None and n) else None

    def client_bound(self, shape, server):
        return any(r.get("client_bound") for r in self.runs.get((shape, server), []))


def targets(st):
    """[(target, Herald, NATS, ratio, wanted, met, note)] for the issue's targets."""
    rows = []

    def add(what, shape, key, want, op, h=None, n=None, ratio=None, note=""):
        h = st.med(shape, "herald", key) if h is None else h
        n = st.med(shape, "nats", key) if n is None and key else n
        if ratio is None and h is not None and n:
            ratio = h / n
        val = ratio
        met = None if val is None else (val >= want if op == ">=" else val <= want)
        rows.append((what, h, n, ratio, f"{op} {want}×" if n is not None else f"{op} {want}",
                     met, note))

    for shape in ("topics-64", "topics-1"):
        cb = " (load tool CPU-bound)" if st.client_bound(shape, "herald") or st.client_bound(shape, "nats") else ""
        add(f"{shape}: deliveries/s", shape, "deliveries_per_s", 1.0, ">=", note=cb.strip())
        h = st.med(shape, "herald", "server_cpu_us_per_event")
        rows.append((f"{shape}: Herald server CPU µs/event", h, st.med(shape, "nats", "server_cpu_us_per_event"),
                     None, "≤ 2.5 µs", None if h is None else h <= 2.5, "absolute"))
    for shape in ("fanout-64", "fanout-1"):
        add(f"{shape}: server CPU µs/delivery", shape, "server_cpu_us_per_delivery", 0.5, "<=")
        bound = st.client_bound(shape, "herald") or st.client_bound(shape, "nats")
        hcpu = st.med(shape, "herald", "server_cpu_pct") or 0
        ccpu = st.med(shape, "herald", "client_cpu_pct") or 0
        note = ("load tool CPU-bound: deliveries/s measure the load tool" if bound else
                f"server core {hcpu:.0f} %, load tool {ccpu:.0f} % busy: the load tool is not the limit")
        if st.med(shape, "herald", "deliveries_per_s") == 0:
            note += "; Herald delivered nothing inside the publishing window (all in the drain)"
        add(f"{shape}: deliveries/s", shape, "deliveries_per_s", 2.0, ">=", note=note)
    add("latency: p50", "latency", "lat_p50_us", 0.5, "<=")
    add("latency: p99", "latency", "lat_p99_us", 0.5, "<=")
    add("latency + CPU-bound neighbour: p99", "latency-busy", "lat_p99_us", 1.0, "<=")
    add("idle: RSS per connection", "idle", "server_rss_per_conn", 0.25, "<=")
    add("idle: connects/s", "idle", "connect_rate", 1.5, ">=")
    sessions = st.med("storm", "herald", "storm_sessions")
    rec = st.med("storm", "herald", "storm_recovered")
    worst = min((r["storm_recovered"] / r["storm_sessions"] for r in st.runs.get(("storm", "herald"), [])
                 if r.get("storm_sessions")), default=None)
    rows.append(("resume storm: recovered (worst run)", rec, sessions, worst, "= 100 %",
                 None if worst is None else worst >= 1.0,
                 f"{fmt(sessions)} sessions; last recovered at "
                 f"{fmt(st.med('storm', 'herald', 'storm_last_recovered_s'))} s"))
    for server in ("herald", "nats"):
        base, slow = st.med("latency", server, "lat_p99_us"), st.med("latency-slow", server, "lat_p99_us")
        r = slow / base if (base and slow is not None) else None
        cut = st.med("latency-slow", server, "slow_disconnects")
        rows.append((f"5 % slow clients: fast clients' p99 ({server})", slow, base, r, "<= 1.2× (vs without)",
                     None if r is None else r <= 1.2, f"slow ones cut: {fmt(cut)} (median)"))
    return rows


def main():
    if sys.argv[1] == "--line":
        one_line(sys.argv[2], sys.argv[3])
        return
    results, out_dir = sys.argv[1], sys.argv[2]
    readme = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--readme" else None
    meta, runs = load(results)
    st = Stats(runs)

    head = [f"- date: {meta.get('date')}; mode: {'quick' if meta.get('quick') else 'full'}; "
            f"runs per shape and server: {meta.get('reps')} (alternating servers)",
            f"- machine: {meta.get('machine')}, {meta.get('cpus')} CPUs, {meta.get('memory')}, "
            f"{meta.get('kernel')}; open files {meta.get('open_files')}",
            f"- herald {meta.get('herald')} (`herald serve` defaults: SQLite store, durable acks, "
            f"1 shard on its core; `-memory` rows: memory store); {meta.get('nats')}",
            f"- servers pinned to CPU {meta.get('server_cpu')}, load (`herald bench`, 1 thread) "
            f"to CPU {meta.get('load_cpu')}; all traffic on 127.0.0.1",
            "- spread: (max − min) / median of the runs of a shape, in %"]

    tl = ["| target | Herald | NATS (or base) | ratio | wanted | met? | note |",
          "|---|---:|---:|---:|---|---|---|"]
    for what, h, n, ratio, want, met, note in targets(st):
        tl.append(f"| {what} | {fmt(h)} | {fmt(n)} | {'-' if ratio is None else f'{ratio:.2f}'} | "
                  f"{want} | {'-' if met is None else ('yes' if met else '**no**')} | {note} |")

    lines = ["# Herald vs NATS: bench/run.sh results\n"] + head + ["", "## Targets (issue #15)\n"] + tl
    lines += ["", "## Every metric\n",
              "| shape | metric | Herald (median) | spread % | NATS (median) | spread % | Herald/NATS | better |",
              "|---|---|---:|---:|---:|---:|---:|---|"]
    for shape, metrics in METRICS.items():
        for key, unit, better in metrics:
            h, n = st.med(shape, "herald", key), st.med(shape, "nats", key)
            if h is None and n is None:
                continue
            ratio = st.ratio(shape, key)
            lines.append(f"| {shape} | {unit} | {fmt(h)} | {fmt(st.spread(shape, 'herald', key))} | "
                         f"{fmt(n)} | {fmt(st.spread(shape, 'nats', key))} | "
                         f"{'-' if ratio is None else f'{ratio:.2f}'} | {better}er |")
    lines += ["", "| shape | server | runs | clean runs | lost | undelivered | duplicates | reordered | "
              "connect errors | disconnects | client-bound runs |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    cluster = [cluster_label(n, s) for s in CLUSTER_SHAPES for n in CLUSTER_NODES]
    for shape in list(METRICS) + cluster:
        for server in ("herald", "nats"):
            rs = runs.get((shape, server), [])
            if not rs:
                continue
            s = lambda k: sum(r.get(k, 0) for r in rs)
            lines.append(f"| {shape} | {server} | {len(rs)} | {sum(1 for r in rs if r.get('clean'))} | "
                         f"{s('lost')} | {s('undelivered')} | {s('duplicates')} | {s('reordered')} | "
                         f"{s('connect_errors')} | {s('disconnects')} | "
                         f"{sum(1 for r in rs if r.get('client_bound'))} |")
    lines += cluster_section(st, meta)
    lines += ["", "Shapes: " + "; ".join(f"**{k}**: {v}" for k, v in SHAPES.items()) + "."]
    errors = sorted({r["first_error"] for rs in runs.values() for r in rs if r.get("first_error")})
    if errors:
        lines.append("\nFirst errors seen: " + "; ".join(f"`{e[:160]}`" for e in errors[:8]))
    text = "\n".join(lines) + "\n"
    open(f"{out_dir}/summary.md", "w").write(text)
    print(text)

    if readme:
        src = open(readme).read()
        a, b = src.find("<!-- bench:begin -->"), src.find("<!-- bench:end -->")
        if a >= 0 and b > a:
            block = "<!-- bench:begin -->\n" + "\n".join(head) + "\n\n" + "\n".join(tl) + "\n"
            open(readme, "w").write(src[:a] + block + src[b:])

    def row(label, shape, key, scale=1.0):
        h, n = st.med(shape, "herald", key), st.med(shape, "nats", key)
        return f'"{label}" {0 if h is None else h * scale} {0 if n is None else n * scale}\n'

    with open(f"{out_dir}/throughput.dat", "w") as f:
        f.write("# label herald nats (deliveries/s, medians)\n")
        for shape in ("fanout-1", "fanout-64", "topics-1", "topics-64"):
            f.write(row(shape, shape, "deliveries_per_s"))
    with open(f"{out_dir}/latency.dat", "w") as f:
        f.write("# label herald nats (microseconds, medians; 1 topic x 1000 subs at 200 msg/s)\n")
        for shape, tag in (("latency", ""), ("latency-busy", " busy"), ("latency-slow", " slow")):
            f.write(row("p50" + tag, shape, "lat_p50_us"))
            f.write(row("p99" + tag, shape, "lat_p99_us"))
    with open(f"{out_dir}/idle.dat", "w") as f:
        f.write("# label herald nats (medians)\n")
        f.write(row("RSS KiB/conn", "idle", "server_rss_per_conn", 1 / 1024))
        f.write(row("connects/ms", "idle", "connect_rate", 1 / 1000))
        f.write(row("idle CPU %", "idle", "server_idle_cpu_pct"))


if __name__ == "__main__":
    main()
