#!/usr/bin/env python3
"""Medians and Herald/NATS ratios of a bench/run.sh results file (JSON lines).

Usage: summarize.py RESULTS.jsonl OUT_DIR | summarize.py --line RUN.json NAME
Writes OUT_DIR/summary.md and the gnuplot data files (throughput.dat, latency.dat, idle.dat);
prints the summary table. Standard library only.
"""
import json
import statistics
import sys
from collections import defaultdict

# shape -> [(metric, unit, better)]; better: "high" or "low"
METRICS = {
    # At max rate latency is the publishers' window queued in the server: not compared.
    "fanout": [("deliveries_per_s", "deliveries/s", "high"), ("publish_rate", "events/s", "high"),
               ("server_cpu_pct", "server CPU %", "low"),
               ("server_cpu_us_per_delivery", "server CPU µs/delivery", "low")],
    "topics": [("deliveries_per_s", "deliveries/s", "high"), ("publish_rate", "events/s", "high"),
               ("server_cpu_pct", "server CPU %", "low"),
               ("server_cpu_us_per_delivery", "server CPU µs/delivery", "low")],
    "latency": [("lat_p50_us", "p50 µs", "low"), ("lat_p99_us", "p99 µs", "low"),
                ("deliveries_per_s", "deliveries/s", "high"), ("server_cpu_pct", "server CPU %", "low")],
    "idle": [("server_rss_per_conn", "RSS B/conn", "low"), ("connect_rate", "connects/s", "high"),
             ("server_connect_cpu_us", "server CPU µs/connect", "low"),
             ("server_idle_cpu_pct", "idle CPU %", "low")],
}
SHAPES = {
    "fanout": "1 topic x 1,000 subscribers, 64 B, max rate",
    "topics": "1,000 topics x 1 subscriber, 64 B, max rate",
    "latency": "1 topic x 1,000 subscribers, 64 B, 200 msg/s",
    "idle": "idle connections (RSS, connect rate, idle CPU)",
}


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
    print(f"bench: {name}: {r['connected']} conns ({r['connect_rate']:.0f}/s), "
          f"{r['deliveries_per_s']:.0f} deliveries/s, p50 {r['lat_p50_us']:.0f} us, "
          f"p99 {r['lat_p99_us']:.0f} us, RSS/conn {r.get('server_rss_per_conn', 0):.0f} B, "
          f"server CPU {r.get('server_cpu_pct', 0):.0f}%, client CPU {r['client_cpu_pct']:.0f}%, "
          f"clean {r['clean']}, client-bound {r['client_bound']}")


def main():
    if sys.argv[1] == "--line":
        one_line(sys.argv[2], sys.argv[3])
        return
    results, out_dir = sys.argv[1], sys.argv[2]
    meta, runs = {}, defaultdict(list)
    for line in open(results):
        line = line.strip()
        if not line:
            continue
        r = json.loads(line)
        if r.get("meta"):
            meta = r
        else:
            if r.get("deliveries_per_s") and "server_cpu_pct" in r:
                # Server CPU time per delivery: comparable where the load tool, not the
                # server, caps the rate.
                r["server_cpu_us_per_delivery"] = r["server_cpu_pct"] / 100 / r["deliveries_per_s"] * 1e6
            runs[(r["label"], r["server"])].append(r)

    def med(shape, server, key):
        vals = [r[key] for r in runs.get((shape, server), []) if key in r]
        return statistics.median(vals) if vals else None

    lines = []
    lines.append("# Herald vs NATS: bench/run.sh results\n")
    lines.append(f"- date: {meta.get('date')}; mode: {'quick' if meta.get('quick') else 'full'}; "
                 f"runs per shape and server: {meta.get('reps')} (alternating servers)")
    lines.append(f"- machine: {meta.get('machine')}, {meta.get('cpus')} CPUs, {meta.get('memory')}, "
                 f"{meta.get('kernel')}; open files {meta.get('open_files')}")
    lines.append(f"- herald {meta.get('herald')} (memory store, 1 shard); {meta.get('nats')}")
    lines.append(f"- servers pinned to CPU {meta.get('server_cpu')}, load (`herald bench`, 1 thread) "
                 f"to CPU {meta.get('load_cpu')}; all traffic on 127.0.0.1\n")
    lines.append("| shape | metric | Herald (median) | NATS (median) | Herald/NATS | better |")
    lines.append("|---|---|---:|---:|---:|---|")
    for shape, metrics in METRICS.items():
        for key, unit, better in metrics:
            h, n = med(shape, "herald", key), med(shape, "nats", key)
            ratio = (h / n) if (h is not None and n) else None
            lines.append(f"| {shape} | {unit} | {fmt(h)} | {fmt(n)} | "
                         f"{'-' if ratio is None else f'{ratio:.2f}'} | {better}er |")
    lines.append("")
    lines.append("| shape | server | runs | clean runs | lost | undelivered | duplicates | reordered | "
                 "connect errors | disconnects | client-bound runs |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for shape in METRICS:
        for server in ("herald", "nats"):
            rs = runs.get((shape, server), [])
            s = lambda k: sum(r.get(k, 0) for r in rs)
            lines.append(f"| {shape} | {server} | {len(rs)} | {sum(1 for r in rs if r.get('clean'))} | "
                         f"{s('lost')} | {s('undelivered')} | {s('duplicates')} | {s('reordered')} | {s('connect_errors')} | "
                         f"{s('disconnects')} | {sum(1 for r in rs if r.get('client_bound'))} |")
    lines.append("")
    lines.append("Shapes: " + "; ".join(f"**{k}**: {v}" for k, v in SHAPES.items()) + ".")
    errors = sorted({r["first_error"] for rs in runs.values() for r in rs if r.get("first_error")})
    if errors:
        lines.append("\nFirst errors seen: " + "; ".join(f"`{e[:160]}`" for e in errors[:6]))
    text = "\n".join(lines) + "\n"
    open(f"{out_dir}/summary.md", "w").write(text)
    print(text)

    def row(label, shape, key, scale=1.0):
        h, n = med(shape, "herald", key), med(shape, "nats", key)
        return f'"{label}" {0 if h is None else h * scale} {0 if n is None else n * scale}\n'

    with open(f"{out_dir}/throughput.dat", "w") as f:
        f.write("# label herald nats (deliveries/s, medians)\n")
        f.write(row("1 topic x 1000 subs", "fanout", "deliveries_per_s"))
        f.write(row("1000 topics x 1 sub", "topics", "deliveries_per_s"))
    with open(f"{out_dir}/latency.dat", "w") as f:
        f.write("# label herald nats (microseconds, medians; 1 topic x 1000 subs at 200 msg/s)\n")
        f.write(row("p50", "latency", "lat_p50_us"))
        f.write(row("p90", "latency", "lat_p90_us"))
        f.write(row("p99", "latency", "lat_p99_us"))
    with open(f"{out_dir}/idle.dat", "w") as f:
        f.write("# label herald nats (medians)\n")
        f.write(row("RSS KiB/conn", "idle", "server_rss_per_conn", 1 / 1024))
        f.write(row("connects/ms", "idle", "connect_rate", 1 / 1000))
        f.write(row("idle CPU %", "idle", "server_idle_cpu_pct"))


if __name__ == "__main__":
    main()
