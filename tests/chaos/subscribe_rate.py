"""Subscribe rate on the real binary (sqlite store): CLIENTS sockets each send ROUNDS subscribes
back to back (each replaces the last, so each writes a crash-safe session record whose ack
waits until it is durable). Prints subscribes per second and the ack latency percentiles.
A measurement, not a CI test: HERALD_BIN=build/rel/herald /usr/bin/python3 tests/chaos/subscribe_rate.py
"""
import asyncio
import json
import os
import sys
import tempfile
import time

import websockets

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

CLIENTS = int(os.environ.get("SUB_CLIENTS", "50"))
ROUNDS = int(os.environ.get("SUB_ROUNDS", "40"))


async def client(url, key, lat):
    async with websockets.connect(url, ping_interval=None, open_timeout=10) as ws:
        await ws.send(json.dumps({"type": "auth", "api_key": key}))
        json.loads(await asyncio.wait_for(ws.recv(), 10))
        for r in range(ROUNDS):
            t0 = time.perf_counter()
            await ws.send(json.dumps({"type": "subscribe", "id": "s%d" % r,
                                      "filters": [{"topic": "/bench/%d/**" % r}]}))
            while True:
                m = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if m.get("id") == "s%d" % r:
                    assert m["type"] == "ack", m
                    break
            lat.append((time.perf_counter() - t0) * 1000)


async def main():
    with tempfile.TemporaryDirectory() as data:
        srv = harness.server(data).start()
        try:
            key, _ = harness.setup_tenant(srv.base)
            lat = []
            t0 = time.perf_counter()
            await asyncio.gather(*(client(srv.ws_url, key, lat) for _ in range(CLIENTS)))
            dt = time.perf_counter() - t0
        finally:
            assert srv.stop() == 0
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]  # noqa: E731
    print("subscribe_rate: %d clients x %d subscribes: %.0f subscribes/s, ack p50 %.2f ms, "
          "p99 %.2f ms" % (CLIENTS, ROUNDS, len(lat) / dt, pct(0.5), pct(0.99)))


if __name__ == "__main__":
    asyncio.run(main())
