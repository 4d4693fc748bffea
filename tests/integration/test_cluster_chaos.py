"""Cluster mode (issue 16) under failures, on the real binaries (cluster.py): a node killed
with SIGKILL while publishers post keyed events round-robin across the nodes; Redis killed
with SIGKILL and restarted (appendfsync always); the nodes' pub/sub connections killed
(`CLIENT KILL TYPE pubsub`) again and again under load. Nothing acknowledged is lost or
doubled, and every socket's seq is contiguous and equal to the log's order for its filter.

Each test prints one `figures:` line (events, kills, duration); `pytest -s` shows it."""
import asyncio
import itertools
import json
import random
import threading
import time

import websockets

from cluster import history_all
from conftest import aio

RETRY_STATUSES = (409, 500, 502, 503)  # 409: the same key in progress on that node


class KeyedPublisher:
    """Threads posting events with an Idempotency-Key each, round-robin across the nodes; a
    failure (refused or cut connection, 503, in progress) is retried on the next node with
    the same key and body until a 201, within `deadline_s`."""

    def __init__(self, nodes, pkey, topic_of=lambda n: "/it/chaos/x"):
        self.nodes, self.pkey, self.topic_of = nodes, pkey, topic_of
        self.replies = {}  # key -> the 201 reply's event
        self.attempts = 0
        self.failures = {}  # what made a retry: status or exception name -> count
        self.lock = threading.Lock()
        self.rr = itertools.count()
        self.stop_new = threading.Event()
        self.errors = []

    def body(self, n):
        return json.dumps({"topic": self.topic_of(n), "type": "t", "data": {"n": n}})

    def post(self, n, deadline):
        key = "key-%05d" % n
        while time.monotonic() < deadline:
            node = self.nodes[next(self.rr) % len(self.nodes)]
            with self.lock:
                self.attempts += 1
            why = None
            try:
                r = node.http("POST", "/v1/events", body=self.body(n), token=self.pkey,
                              headers={"Idempotency-Key": key}, timeout=5)
                if r.status == 201:
                    with self.lock:
                        self.replies[key] = r.json["events"][0]
                    return
                if r.status not in RETRY_STATUSES:
                    raise AssertionError("key %s: %s %r" % (key, r.status, r.raw))
                why = r.status
            except OSError as exc:  # the node is dead or died mid-request
                why = type(exc).__name__
            with self.lock:
                self.failures[why] = self.failures.get(why, 0) + 1
            time.sleep(0.01)
        raise AssertionError("key %s not acknowledged within the deadline" % key)

    def run(self, threads, seconds, deadline_s):
        """Each thread takes new numbers for `seconds`, then finishes what it holds."""
        counter = itertools.count()
        end_new = time.monotonic() + seconds
        deadline = time.monotonic() + deadline_s

        def worker():
            try:
                while time.monotonic() < end_new and not self.stop_new.is_set():
                    self.post(next(counter), deadline)
            except Exception as exc:
                self.errors.append(repr(exc))

        self.threads = [threading.Thread(target=worker) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def join(self, timeout):
        for t in self.threads:
            t.join(timeout)
        assert not any(t.is_alive() for t in self.threads), "publishers still running"
        assert not self.errors, self.errors[:5]


def check_log_exact(log, replies):
    """Every acknowledged key is in the log exactly once, as acknowledged; no id twice."""
    ids = [x["id"] for x in log]
    assert len(ids) == len(set(ids)), "an event id twice in the log"
    by_n = {}
    for x in log:
        by_n.setdefault(x["data"]["n"], []).append(x)
    twice = {n: [x["offset"] for x in v] for n, v in by_n.items() if len(v) != 1}
    assert not twice, "keys with more than one event: %r" % twice
    for key, rep in replies.items():
        n = int(key.split("-")[1])
        assert n in by_n, "acknowledged %s (offset %s) is not in the log" % (key, rep["offset"])
        x = by_n[n][0]
        assert (x["id"], x["offset"], x["time"]) == (rep["id"], rep["offset"], rep["time"]), key
    offsets = [x["offset"] for x in log]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)


async def check_sockets(socks, log, timeout=10, read_before=None):
    """Each socket: seq 1..k contiguous, events = the log filtered, in the log's order.
    `read_before`: label -> the event messages the test already read from that socket."""
    for label, ws, flt in socks:
        want = [x["id"] for x in log if flt(x["topic"])]
        msgs = list((read_before or {}).get(label, []))
        msgs += await ws.events(len(want) - len(msgs), timeout=timeout)
        assert [m["seq"] for m in msgs] == list(range(1, len(want) + 1)), label
        got = [m["event"]["id"] for m in msgs]
        if got != want:
            first = next(i for i, (g, w) in enumerate(zip(got, want)) if g != w)
            raise AssertionError("%s: differs from the log at #%d: %r vs %r"
                                 % (label, first, msgs[first]["event"], want[first]))
        await ws.no_message(0.3)


async def subscribe_all(nodes, key, filters):
    """For every node and every (label, topic pattern, predicate): one subscribed socket."""
    socks = []
    for ix, node in enumerate(nodes):
        for label, pattern, pred in filters:
            ws, _ = await node.ws_auth(key)
            await ws.subscribe([{"topic": pattern}])
            socks.append(("node%d %s" % (ix, label), ws, pred))
    return socks


class ResumingSession:
    """A native session that, when its node dies, resumes on the next live node with the last
    seq it got, expecting `recovered:true`; it keeps every event message it received."""

    def __init__(self, nodes, key, ix, pattern):
        self.nodes, self.key, self.ix, self.pattern = nodes, key, ix, pattern
        self.msgs, self.resumes, self.errors = [], 0, []

    async def open(self):
        self.ws, w = await self.nodes[self.ix].ws_auth(self.key)
        await self.ws.subscribe([{"topic": self.pattern}])
        self.token, self.session = w["resume_token"], w["session"]

    async def _resume(self):
        deadline = time.monotonic() + 10
        k = 0
        while time.monotonic() < deadline:
            k += 1
            node = self.nodes[(self.ix + k) % len(self.nodes)]
            last = self.msgs[-1]["seq"] if self.msgs else 0
            try:
                ws, w = await node.ws_auth(self.key, query={"resume": self.token, "last_seq": last})
            except (OSError, asyncio.TimeoutError, websockets.WebSocketException):
                await asyncio.sleep(0.05)  # that node is down too, or restarting
                continue
            if w.get("recovered") is not True or w["session"] != self.session:
                raise AssertionError("resume of %s after seq %d on %s: %r"
                                     % (self.session, last, node.base, w))
            self.ws, self.ix = ws, (self.ix + k) % len(self.nodes)
            self.resumes += 1
            return
        raise AssertionError("session %s found no node to resume on within 10 s" % self.session)

    async def run(self):
        try:
            while True:
                try:
                    m = await self.ws.recv_json(timeout=3600)
                except websockets.ConnectionClosed:
                    await self._resume()
                    continue
                assert m["type"] == "event", m
                self.msgs.append(m)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # reported by the test
            self.errors.append(repr(exc))

    async def received(self, n, timeout=10):
        deadline = time.monotonic() + timeout
        while len(self.msgs) < n and not self.errors and time.monotonic() < deadline:
            await asyncio.sleep(0.05)


@aio
async def test_node_kill9_while_publishing_loses_and_doubles_nothing(clusters):
    c, e = clusters.start(3)
    # Two sessions on every node; those of a killed node resume on the next live one.
    sessions = [ResumingSession(c.nodes, e.key, ix % 3, "/it/chaos/**") for ix in range(6)]
    for sess in sessions:
        await sess.open()
    readers = [asyncio.ensure_future(sess.run()) for sess in sessions]
    pub = KeyedPublisher(c.nodes, e.pkey)
    started = time.monotonic()
    pub.run(threads=4, seconds=6, deadline_s=20)
    rng = random.Random(16)
    loop = asyncio.get_running_loop()
    for _ in range(3):
        await asyncio.sleep(rng.uniform(0.6, 1.2))
        victim = c.nodes[rng.choice([1, 2])]
        c.kill9(victim)
        await asyncio.sleep(rng.uniform(0.2, 0.5))
        await loop.run_in_executor(None, c.restart, victim)
    await loop.run_in_executor(None, pub.join, 25)
    duration = time.monotonic() - started
    log = history_all(c.nodes[1], e.key)
    check_log_exact(log, pub.replies)
    assert len(log) == len(pub.replies)  # nothing unacknowledged either (every key retried)
    try:
        for n, sess in enumerate(sessions):
            await sess.received(len(log))
            assert not sess.errors, (n, sess.errors)
            assert [m["seq"] for m in sess.msgs] == list(range(1, len(log) + 1)), \
                (n, "seqs not 1..%d" % len(log), [m["seq"] for m in sess.msgs][-5:])
            assert [m["event"]["id"] for m in sess.msgs] == [x["id"] for x in log], n
    finally:
        for r in readers:
            r.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    for sess in sessions:
        await sess.ws.no_message(0.2)
        await sess.ws.close()
    print("figures: node kill -9: %d events acknowledged, %d attempts, retries %r, "
          "%d node kills, %d sessions (%d resumes on another node), %.1f s"
          % (len(pub.replies), pub.attempts, pub.failures, c.node_kills, len(sessions),
             sum(x.resumes for x in sessions), duration))


@aio
async def test_redis_kill9_and_restart_loses_nothing_acknowledged(clusters):
    c, e = clusters.start(3)
    socks = await subscribe_all(c.nodes, e.key, [("all", "/it/**", lambda t: True)])
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    before = [c.nodes[i % 3].publish(e.pkey, {"topic": "/it/r", "type": "t", "data": {"n": i}},
                                     headers={"Idempotency-Key": "before-%d" % i}).json["events"][0]
              for i in range(12)]
    read_before = {label: await ws.events(len(before)) for label, ws, _ in socks}
    c.redis.kill9()
    # While Redis is down: every node answers 503 at once, and sockets stay open.
    outage = {}
    for ix, node in enumerate(c.nodes):
        t = time.monotonic()
        r = await loop.run_in_executor(None, lambda: node.http(
            "POST", "/v1/events", body={"topic": "/it/r", "type": "t", "data": {"n": 100 + ix}},
            token=e.pkey, headers={"Idempotency-Key": "outage-%d" % ix}, timeout=10))
        assert r.status == 503, (ix, r)
        assert r.json["error"]["message"], r
        outage[ix] = time.monotonic() - t
    for label, ws, _ in socks:
        pong = await ws.request({"type": "ping", "id": "p1"})
        assert pong["type"] == "pong" and not pong["_others"], (label, pong)
    await loop.run_in_executor(None, c.redis.restart)
    # The same keys again, each on another node, until accepted: exactly one event each.
    after = []
    for ix in range(3):
        node = c.nodes[(ix + 1) % 3]
        body = {"topic": "/it/r", "type": "t", "data": {"n": 100 + ix}}
        deadline = time.monotonic() + 15
        while True:
            r = await loop.run_in_executor(None, lambda: node.http(
                "POST", "/v1/events", body=body, token=e.pkey,
                headers={"Idempotency-Key": "outage-%d" % ix}, timeout=5))
            if r.status == 201 or time.monotonic() > deadline:
                break
            assert r.status == 503, r
            await asyncio.sleep(0.1)
        assert r.status == 201, ("not accepted within 15 s of the restart", r)
        after.append(r.json["events"][0])
        again = node.publish(e.pkey, body, headers={"Idempotency-Key": "outage-%d" % ix})
        assert again.json["events"][0]["id"] == after[-1]["id"]
    log = history_all(c.nodes[2], e.key)
    replies = {"key-%05d" % i: rep for i, rep in enumerate(before)}
    replies.update({"key-%05d" % (100 + i): rep for i, rep in enumerate(after)})
    check_log_exact(log, replies)
    assert len(log) == 15, [x["data"] for x in log]
    await check_sockets(socks, log, read_before=read_before)
    print("figures: redis kill -9: %d events before, 3 refused during the outage (503 in "
          "%s s), %d after the restart, %d redis kill, %.1f s"
          % (len(before), ["%.3f" % outage[i] for i in range(3)], len(after), c.redis.kills,
             time.monotonic() - started))


@aio
async def test_pubsub_connections_killed_under_load_leave_no_gap(clusters):
    c, e = clusters.start(3)
    filters = [("all", "/it/pk/**", lambda t: True),
               ("even", "/it/pk/even", lambda t: t == "/it/pk/even")]
    socks = await subscribe_all(c.nodes, e.key, filters)
    pub = KeyedPublisher(c.nodes, e.pkey,
                         topic_of=lambda n: "/it/pk/even" if n % 2 == 0 else "/it/pk/odd")
    started = time.monotonic()
    pub.run(threads=3, seconds=5, deadline_s=20)
    loop = asyncio.get_running_loop()
    killed = rounds = 0
    while any(t.is_alive() for t in pub.threads) and time.monotonic() - started < 6:
        await asyncio.sleep(0.15)
        killed += await loop.run_in_executor(None, c.redis.cmd, "CLIENT", "KILL", "TYPE", "pubsub")
        rounds += 1
    await loop.run_in_executor(None, pub.join, 25)
    duration = time.monotonic() - started
    log = history_all(c.nodes[0], e.key)
    check_log_exact(log, pub.replies)
    assert len(log) == len(pub.replies)
    assert killed >= rounds, "CLIENT KILL found no pub/sub connection to kill: %d" % killed
    await check_sockets(socks, log)
    print("figures: CLIENT KILL TYPE pubsub: %d events, %d kill rounds, %d connections "
          "killed, %d sockets checked, %.1f s"
          % (len(log), rounds, killed, len(socks), duration))
