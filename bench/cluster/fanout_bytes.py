#!/usr/bin/env python3
"""What per-tenant fan-out saves Redis (docs/cluster.md, "Fan-out"): Redis bytes out per event
with every node following every tenant (redis.follow_tenants=false) against following the
tenants its sessions need (the default).

Three herald nodes on one Redis (the integration tests' harness, tests/integration/cluster.py:
our own processes, killed by PID), two tenants A and B, one socket of A on node 0; EVENTS
publishes through node 1, alternating A and B. Redis's INFO stats total_net_output_bytes over
the publishes, divided by EVENTS. Each mode RUNS times, alternated.
Run: HERALD_BIN=build/rel/herald /usr/bin/python3 bench/cluster/fanout_bytes.py [--events 1000]
"""
import argparse
import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "integration"))
from conftest import Clusters  # noqa: E402  (HERALD_BIN names the binary)


def net_out(c):
    info = c.redis.cmd("INFO", "stats")
    info = info.decode() if isinstance(info, bytes) else info
    for line in info.splitlines():
        if line.startswith("total_net_output_bytes:"):
            return int(line.split(":")[1])
    raise RuntimeError("INFO stats without total_net_output_bytes")


async def run(follow, events):
    cs = Clusters()
    try:
        c = cs.new(env={"HERALD_REDIS_FOLLOW_TENANTS": "true" if follow else "false"})
        ea, eb = c.start(3, provision=lambda node: (node.setup(), node.setup()))
        n0, n1, _ = c.nodes
        ws, _ = await n0.ws_auth(ea.key)
        await ws.subscribe([{"topic": "/it/**"}])
        before = net_out(c)
        for i in range(events):
            env = ea if i % 2 == 0 else eb
            n1.publish(env.pkey, env.ev("/f", data={"i": i}))
        await ws.events(events // 2 + events % 2, timeout=60)
        per_event = (net_out(c) - before) / events
        await ws.close()
        return per_event
    finally:
        cs.stop_all()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=2)
    a = ap.parse_args()
    if a.events < 2 or a.runs < 1:
        sys.exit("fanout_bytes: --events must be at least 2 and --runs at least 1")
    for _ in range(a.runs):
        for follow in (False, True):
            b = asyncio.run(run(follow, a.events))
            print("follow_tenants=%-5s events=%d redis_net_out_bytes_per_event=%.0f"
                  % (str(follow).lower(), a.events, b), flush=True)


if __name__ == "__main__":
    main()
