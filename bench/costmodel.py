#!/usr/bin/env python3
"""Fits Herald's server CPU per published event to the bench grid (docs/performance.md).

Usage: costmodel.py GRID.jsonl      (bench/run.sh writes docs/bench/grid.jsonl in full mode)

Model, least squares of the relative error over the grid's runs (each a `herald bench` JSON
line), so that the cheap cells weigh as much as the dear ones:
    CPU µs per event = a + c/batch + m·(b + e/batch) + d·log2(topics)
m: subscribers matched per event (subscribers / topics), batch: events per POST, topics: topics
in use. a: per event; c: per request (HTTP, JSON, the commit); b: per delivery; e: per delivery
per request (what batching saves on each delivery: fewer, larger socket writes); d: per doubling
of the topics. Prints Markdown: the constants, every run with its fit and residual, and R².
Standard library only.
"""
import json
import math
import sys

TERMS = ["a (per event, µs)", "c (per request, µs)", "b (per delivery, µs)",
         "e (per delivery per request, µs)", "d (per doubling of topics, µs)"]
NAMES = ["a", "c/batch", "b·m", "e·m/batch", "d·log2(topics)"]


def features(r):
    m = r["subscribers"] / r["topics"]
    return [1.0, 1.0 / r["batch"], m, m / r["batch"], math.log2(r["topics"])]


def solve(a, y):
    """Least squares by the normal equations (AᵀA x = Aᵀy), Gaussian elimination."""
    n = len(a[0])
    m = [[sum(row[i] * row[j] for row in a) for j in range(n)] +
         [sum(row[i] * yy for row, yy in zip(a, y))] for i in range(n)]
    for col in range(n):
        piv = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[piv] = m[piv], m[col]
        if abs(m[col][col]) < 1e-12:
            raise ValueError("the grid does not determine term %d" % col)
        for r in range(n):
            if r != col:
                f = m[r][col] / m[col][col]
                m[r] = [x - f * z for x, z in zip(m[r], m[col])]
    return [m[i][n] / m[i][i] for i in range(n)]


def main():
    runs = []
    for line in open(sys.argv[1]):
        line = line.strip()
        if not line:
            continue
        r = json.loads(line)
        if r.get("meta") or not r.get("publish_rate") or "server_cpu_pct" not in r:
            continue
        r["cpu_us_per_event"] = r["server_cpu_pct"] / 100 / r["publish_rate"] * 1e6
        runs.append(r)
    if len(runs) < 4:
        sys.exit("costmodel: need at least 4 runs, have %d" % len(runs))
    # Topics vary in only some grids: without them, drop the d term.
    use = [0, 1, 2, 3, 4] if len({r["topics"] for r in runs}) > 1 else [0, 1, 2, 3]
    a = [[features(r)[i] for i in use] for r in runs]
    y = [r["cpu_us_per_event"] for r in runs]
    # Relative error: each run's equation divided by its measured value.
    x = solve([[f / yy for f in row] for row, yy in zip(a, y)], [1.0] * len(y))
    fit = [sum(c * f for c, f in zip(x, row)) for row in a]
    mean = sum(y) / len(y)
    ss_res = sum((yy - ff) ** 2 for yy, ff in zip(y, fit))
    ss_tot = sum((yy - mean) ** 2 for yy in y)
    r2 = 1 - ss_res / ss_tot if ss_tot else 1.0
    worst = max(abs(yy - ff) / yy for yy, ff in zip(y, fit)) * 100
    out = ["Server CPU per published event = " + " + ".join(NAMES[i] for i in use) +
           f" (least squares of the relative error over {len(runs)} runs; R² = {r2:.3f}, "
           f"largest residual {worst:.0f} %)", "",
           "| constant | value |", "|---|---:|"]
    for i, c in zip(use, x):
        out.append(f"| {TERMS[i]} | {c:.3f} |")
    out += ["", "| subscribers | topics | m | batch | server CPU % | events/s | deliveries/s | "
            "µs/event measured | fitted | residual | load tool CPU-bound |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r, yy, ff in zip(runs, y, fit):
        out.append(f"| {r['subscribers']} | {r['topics']} | {r['subscribers'] / r['topics']:g} | "
                   f"{r['batch']} | {r['server_cpu_pct']:.0f} | {r['publish_rate']:,.0f} | "
                   f"{r['deliveries_per_s']:,.0f} | {yy:.2f} | {ff:.2f} | "
                   f"{(yy - ff) / yy * 100 if yy else 0:+.0f} % | "
                   f"{'yes' if r.get('client_bound') else 'no'} |")
    print("\n".join(out))


if __name__ == "__main__":
    main()
