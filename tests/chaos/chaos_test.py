"""Chaos: >= 200 subscribers on the real binary; random abrupt disconnects (TCP close without a
close frame) and resumes; a server restart (SIGTERM, same data dir) in the middle; 5 % of the
clients read slowly (and get cut with 4010); a publisher pushes events throughout; then a
kill -9 (SIGKILL, same data dir, no drain) at three quarters: sessions whose subscription was
acknowledged resume from the crash-safe records with nothing lost or duplicated.

Asserts, per session: seq contiguous from 1, no duplicate, offsets increasing, and every
acknowledged event delivered exactly once while the client stayed inside the recovery window;
a resume that fails must say so (recovered:false + recovery_error). Prints what it checked.
Bounded: CHAOS_SECONDS (default 16) of publishing, then a drain of at most 60 s."""
import asyncio
import json
import os
import random
import sys
import tempfile
import threading
import time

import websockets

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

CLIENTS = int(os.environ.get("CHAOS_CLIENTS", "200"))
SECONDS = float(os.environ.get("CHAOS_SECONDS", "16"))
SLOW_SHARE = 0.05


class state:
    t0 = time.time()
    phase = "first server"
    base = None          # current server URL (changes across the restart)
    up = threading.Event()
    stop = False


class publisher(threading.Thread):
    def __init__(self, key):
        super().__init__(daemon=True)
        self.key, self.acked, self.errors, self.n = key, [], 0, 0

    def run(self):
        cli = None
        while not state.stop:
            if not state.up.wait(0.2):
                cli = None
                continue
            if cli is None:
                cli = harness.client(state.base, self.key)
            batch = [{"topic": "/chaos/%d" % (self.n + i % 3), "type": "tick",
                      "data": {"n": self.n + i, "pad": "x" * 200}} for i in range(10)]
            try:
                status, body = cli.call("POST", "/v1/events", batch)
            except Exception:
                cli = None
                self.errors += 1
                time.sleep(0.05)
                continue
            if status == 201:
                self.acked.extend(e["offset"] for e in body["events"])
                self.n += 10
            else:
                self.errors += 1
            time.sleep(0.01)


class subscriber:
    def __init__(self, i, key, slow):
        self.i, self.key, self.slow = i, key, slow
        self.session = None
        self.token = None
        self.last_seq = 0
        self.first_offset = None   # offset frontier when the current session subscribed
        self.offsets = []          # every offset received, in order, across the session chain
        self.seqs = {}             # session id -> seqs received
        self.chains = 0            # sessions this client used
        self.explicit_failures = []
        self.abrupt = 0
        self.cut_4010 = 0
        self.resumed = 0
        self.window_ok = True      # never outside its window (so nothing may be missing)
        self.history = []          # the last connection steps, printed when an assertion fails

    async def connect_once(self):
        ws = await websockets.connect(state.base.replace("http://", "ws://") + "/v1/ws",
                                      ping_interval=None, max_queue=None if not self.slow else 16,
                                      open_timeout=10)
        auth = {"type": "auth", "api_key": self.key}
        if self.token:
            auth.update(resume=self.token, last_seq=self.last_seq)
        await ws.send(json.dumps(auth))
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert welcome["type"] == "welcome", welcome
        self.note("t=%.2f %s resume=%s last_seq=%d -> recovered=%s session=%s" % (
            time.time() - state.t0, state.phase, bool(self.token), self.last_seq,
            welcome.get("recovered"), welcome["session"]))
        if self.token and welcome["recovered"]:
            assert welcome["session"] == self.session
            self.resumed += 1
        else:
            if self.token:
                assert "recovery_error" in welcome, welcome  # explicit, never silent
                self.explicit_failures.append(welcome["recovery_error"])
                self.window_ok = False
            self.session, self.last_seq = welcome["session"], 0
            self.seqs[self.session] = []
            self.chains += 1
        self.token = welcome["resume_token"]
        if "subscription" not in welcome:
            # A new session, or one whose subscribe never took effect: (re)subscribe. The ack
            # says from which offset on events are matched.
            await ws.send(json.dumps({"type": "subscribe", "id": "s",
                                      "filters": [{"topic": "/chaos/**"}]}))
            while True:
                m = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if m.get("type") == "ack":
                    break
                if m.get("type") == "event":
                    self.take(m)
            if self.first_offset is None:
                self.first_offset = m["subscription"]["from_offset"]
        return ws

    async def run(self, deadline):
        while time.time() < deadline:
            if not state.up.is_set():
                await asyncio.sleep(0.1)
                continue
            try:
                ws = await self.connect_once()
            except Exception:
                await asyncio.sleep(0.2)
                continue
            cut_at = time.time() + random.uniform(1.0, 6.0)
            try:
                while time.time() < deadline:
                    if time.time() > cut_at and not state.stop:
                        ws.transport.abort()  # TCP close, no close frame
                        self.note("t=%.2f %s abort at seq %d" % (time.time() - state.t0,
                                                                  state.phase, self.last_seq))
                        self.abrupt += 1
                        await asyncio.sleep(random.uniform(0, 1.5))
                        break
                    try:
                        raw = await asyncio.wait_for(ws.recv(), 0.5)
                    except asyncio.TimeoutError:
                        continue
                    m = json.loads(raw)
                    if m["type"] == "event":
                        self.take(m)
                        if self.slow:
                            await asyncio.sleep(0.05)
                    elif m["type"] == "ping":
                        await ws.send('{"type":"pong"}')
            except websockets.ConnectionClosed as e:
                self.note("t=%.2f %s closed %s at seq %d" % (
                    time.time() - state.t0, state.phase, e.rcvd.code if e.rcvd else None,
                    self.last_seq))
                if e.rcvd and e.rcvd.code == 4010:
                    self.cut_4010 += 1
                await asyncio.sleep(random.uniform(0, 0.5))
            finally:
                ws.transport.abort()

    def note(self, line):
        self.history = self.history[-19:] + [line]

    def take(self, m):
        seq = m["seq"]
        assert seq == self.last_seq + 1, "client %d session %s: seq %d (offset %s) after %d " \
            "(offset %s); its last steps:\n  %s" % (
                self.i, self.session, seq, m["event"]["offset"], self.last_seq,
                self.offsets[-1] if self.offsets else None, "\n  ".join(self.history))
        self.last_seq = seq
        self.seqs[self.session].append(seq)
        off = m["event"]["offset"]
        assert not self.offsets or off > self.offsets[-1], "offset order"
        self.offsets.append(off)

    async def drain(self, until_offset, deadline):
        """Reconnects (resuming) and reads until the last acknowledged offset arrived."""
        while time.time() < deadline and (not self.offsets or self.offsets[-1] < until_offset):
            try:
                ws = await self.connect_once()
                while not self.offsets or self.offsets[-1] < until_offset:
                    m = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    if m["type"] == "event":
                        self.take(m)
                await ws.close()
            except (websockets.ConnectionClosed, asyncio.TimeoutError, OSError):
                await asyncio.sleep(0.2)


_pub = None


def publisher_frontier():
    return _pub.acked[-1] if _pub.acked else 0


async def main():
    global _pub
    random.seed(int(os.environ.get("CHAOS_SEED", "7")))
    with tempfile.TemporaryDirectory() as data:
        env = {"HERALD_NATIVE_RECOVERY_BUFFER": "100", "HERALD_NATIVE_RECOVERY_WINDOW": "60",
               "HERALD_CORE_SEND_QUEUE_BYTES": "32768"}
        srv = harness.server(data, env).start()
        state.base = srv.base
        app_key, pub_key = harness.setup_tenant(srv.base)
        state.up.set()
        _pub = publisher(pub_key)
        slow_n = max(1, int(CLIENTS * SLOW_SHARE))
        subs = [subscriber(i, app_key, i < slow_n) for i in range(CLIENTS)]
        _pub.start()
        deadline = time.time() + SECONDS
        tasks = [asyncio.create_task(s.run(deadline)) for s in subs]

        await asyncio.sleep(SECONDS / 2)
        # SIGTERM while the publisher and the clients keep going: acknowledged events must
        # survive the drain; refused publishes are retried after the restart.
        code = await asyncio.to_thread(srv.stop)
        state.up.clear()
        assert code == 0, "drain must exit 0, got %s" % code
        srv = harness.server(data, env).start()  # same data dir, new port
        state.phase = "after SIGTERM restart"
        state.base = srv.base
        state.up.set()

        await asyncio.sleep(SECONDS / 4)
        # kill -9 mid-traffic: no drain, no export. Acknowledged events and subscriptions are
        # durable; publishes in flight fail and are retried.
        code = await asyncio.to_thread(srv.kill9)
        state.up.clear()
        assert code == -9, "SIGKILL, got %s" % code
        srv = harness.server(data, env).start()
        state.phase = "after kill -9 restart"
        state.base = srv.base
        state.up.set()

        await asyncio.gather(*tasks)
        state.stop = True
        _pub.join(10)
        last = publisher_frontier()
        await asyncio.gather(*(s.drain(last, time.time() + 60) for s in subs))
        assert srv.stop() == 0

    acked = set(_pub.acked)
    checked_sessions = events_checked = complete = 0
    lost = []
    for s in subs:
        for sid, seqs in s.seqs.items():
            checked_sessions += 1
            assert seqs == list(range(1, len(seqs) + 1)), "client %d: seq gap or duplicate" % s.i
        got = s.offsets
        assert len(got) == len(set(got)), "client %d: duplicate event" % s.i
        if s.window_ok and s.first_offset is not None:
            want = {o for o in acked if o > s.first_offset}
            missing = want - set(got)
            if missing:
                print("client %d (slow=%s) lost %d acknowledged events, e.g. %s; got %d, last %s,"
                      " first_offset %s, chains %d, resumes %d, 4010 %d" % (
                          s.i, s.slow, len(missing), sorted(missing)[:5], len(got),
                          got[-1] if got else None, s.first_offset, s.chains, s.resumed,
                          s.cut_4010))
                lost.append(s.i)
                continue
            complete += 1
            events_checked += len(want)
    print("chaos: %d clients (%d slow), %d acknowledged events (%d publish retries), "
          "SIGTERM restart at %.1fs, kill -9 restart at %.1fs" % (
              len(subs), sum(s.slow for s in subs), len(acked), _pub.errors, SECONDS / 2,
              SECONDS * 3 / 4))
    print("chaos: %d abrupt disconnects, %d cut with 4010, %d resumes recovered, "
          "%d explicit recovery failures %s" % (
              sum(s.abrupt for s in subs), sum(s.cut_4010 for s in subs),
              sum(s.resumed for s in subs), sum(len(s.explicit_failures) for s in subs),
              sorted({e for s in subs for e in s.explicit_failures})))
    print("chaos: %d sessions checked contiguous; %d clients checked exactly-once over %d "
          "(client, event) pairs" % (checked_sessions, complete, events_checked))
    assert not lost, "clients lost acknowledged events: %s" % lost
    assert complete >= CLIENTS * 0.9, "too few clients stayed inside their window"
    print("1 passed, 0 failed")


if __name__ == "__main__":
    asyncio.run(main())
