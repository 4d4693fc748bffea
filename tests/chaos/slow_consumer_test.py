"""A slow reader is cut with 4010 while the server's RSS stays within a stated bound, and a
fast reader in the same run loses nothing (native.md §3.7, design.md §5).

One subscriber never reads; another reads everything; a publisher pushes SLOW_MB MiB of events.
The non-reader must be closed (4010 if its close frame gets through, else an abnormal close), the
server's RSS growth must stay under RSS_BOUND_MIB, and the fast reader must get every
acknowledged event in order. Bounded: at most ~60 s."""
import asyncio
import json
import os
import sys
import tempfile
import time

import websockets

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

SEND_QUEUE = 1 << 20      # 1 MiB per socket for this run
PAYLOAD = 4096
EVENTS = 8000             # ~32 MiB published, 32x the non-reader's bound
RSS_BOUND_MIB = 64        # growth allowed over the idle server (queues, SQLite cache, buffers)


async def subscribe(url, key, reads):
    ws = await websockets.connect(url, ping_interval=None, max_queue=None if reads else 1,
                                  read_limit=2 ** 16 if not reads else 2 ** 20, max_size=2 ** 22)
    await ws.send(json.dumps({"type": "auth", "api_key": key}))
    json.loads(await asyncio.wait_for(ws.recv(), 10))
    await ws.send(json.dumps({"type": "subscribe", "id": "s", "filters": [{"topic": "/slow/**"}]}))
    while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "ack":
        pass
    return ws


async def main():
    with tempfile.TemporaryDirectory() as data:
        env = {"HERALD_CORE_SEND_QUEUE_BYTES": str(SEND_QUEUE), "HERALD_NATIVE_CLOSE_TIMEOUT": "2"}
        # Under ASan the allocator keeps freed memory in a quarantine (256 MiB by default):
        # shrink it so RSS measures the server, not the sanitizer.
        env["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS", "") +
                               ":quarantine_size_mb=8:thread_local_quarantine_size_kb=64").lstrip(":")
        srv = harness.server(data, env).start()
        app_key, pub_key = harness.setup_tenant(srv.base, "slow")
        rss0 = srv.rss_kib()
        slow = await subscribe(srv.ws_url, app_key, reads=False)
        # The non-reader's kernel buffers fill; stop reading at the TCP level entirely.
        slow.transport.pause_reading()
        fast = await subscribe(srv.ws_url, app_key, reads=True)
        pub = harness.client(srv.base, pub_key)
        acked, got, peak = [], [], 0

        async def reader():
            while len(got) < EVENTS:
                m = json.loads(await asyncio.wait_for(fast.recv(), 20))
                if m["type"] == "event":
                    got.append(m["event"]["offset"])
                elif m["type"] == "ping":
                    await fast.send('{"type":"pong"}')

        task = asyncio.create_task(reader())
        pad = "y" * PAYLOAD
        for i in range(0, EVENTS, 50):
            batch = [{"topic": "/slow/a", "type": "bulk", "data": {"i": i + k, "pad": pad}}
                     for k in range(50)]
            status, body = await asyncio.to_thread(pub.call, "POST", "/v1/events", batch)
            assert status == 201, (status, body)
            acked.extend(e["offset"] for e in body["events"])
            peak = max(peak, srv.rss_kib())
        await asyncio.wait_for(task, 30)
        # The non-reader: its socket must be closed by the server (close frame or TCP drop).
        slow.transport.resume_reading()
        deadline = time.time() + 15
        code = None
        while time.time() < deadline:
            try:
                await asyncio.wait_for(slow.recv(), 1)
            except asyncio.TimeoutError:
                continue
            except websockets.ConnectionClosed as e:
                code = e.rcvd.code if e.rcvd else 1006
                break
        peak = max(peak, srv.rss_kib())
        assert srv.stop() == 0
    growth_mib = (peak - rss0) / 1024
    assert code in (4010, 1006), "the slow reader was not cut (code %s)" % code
    assert got == acked, "the fast reader lost or reordered events"
    assert growth_mib < RSS_BOUND_MIB, "RSS grew %.1f MiB" % growth_mib
    print("slow consumer: published %d events (%.0f MiB); slow reader closed with %s; fast reader "
          "got all %d in order; server RSS %.1f -> %.1f MiB (growth %.1f < %d MiB bound)" % (
              EVENTS, EVENTS * PAYLOAD / 2 ** 20, code, len(got), rss0 / 1024, peak / 1024,
              growth_mib, RSS_BOUND_MIB))
    print("1 passed, 0 failed")


if __name__ == "__main__":
    asyncio.run(main())
