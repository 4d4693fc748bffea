"""A dead node's session records expire (issue 16; docs/cluster.md, "A dead node's sessions"),
on the real binaries (cluster.py: a redis-server and two herald nodes).

- `kill -9` of node A holding two sessions: within its lease and a renewal, B gives both records
  an `expires_ms` of (about) now + the recovery window (read in Redis); one of them resumes on
  B within the window (its record then belongs to B: no expiry, `node` B); after the window the
  other's record is pruned and a resume of it answers `unknown_session`.
- SIGSTOP of A past its lease: its records get the expiry; SIGCONT: A takes them back (no
  expiry) within a renewal, and past the window they are still there and resumable.
Timings (short on purpose): lease 1000 ms renewed every 200 ms, recovery window 4 s, records
pruned every second."""
import asyncio
import json
import os
import signal
import time

from conftest import aio

LEASE_MS = 1000
WINDOW_S = 4
ENV = {"HERALD_REDIS_NODE_LEASE_MS": LEASE_MS, "HERALD_REDIS_NODE_RENEW_MS": 200,
       "HERALD_NATIVE_RECOVERY_WINDOW": WINDOW_S, "HERALD_CORE_PRUNE_INTERVAL": 1}


def provision(node):
    return node.setup()


def record(c, sid):
    """The session's record as Redis holds it (a dict), or None."""
    raw = c.redis.cmd("HGET", "herald:rec:session", sid)
    return None if raw is None else json.loads(raw)


def expiry(c, sid):
    """herald:recexp:session's score for the session (what prune_records goes by), or None."""
    raw = c.redis.cmd("ZSCORE", "herald:recexp:session", sid)
    return None if raw is None else int(float(raw))


async def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("not within %.1f s: %s" % (timeout, what))
        await asyncio.sleep(0.05)


async def two_node_cluster(clusters):
    """The cluster, its env, nodes A and B, and two subscribed sessions on A ((ws, welcome))."""
    c = clusters.new(env=ENV)
    e = c.start(2, provision)
    a, _ = c.nodes
    out = []
    for _ in range(2):
        ws, w = await a.ws_auth(e.key)
        await ws.subscribe([{"topic": "/it/**"}])
        out.append((ws, w))
    return c, e, c.nodes[0], c.nodes[1], out[0], out[1]


@aio
async def test_a_killed_nodes_sessions_expire_after_the_recovery_window(clusters):
    c, e, a, b, (_, w1), (_, w2) = await two_node_cluster(clusters)
    s1, s2 = w1["session"], w2["session"]
    for sid in (s1, s2):  # held by a live node: named, no expiry
        rec = record(c, sid)
        assert rec is not None and "expires_ms" not in rec, rec
        assert expiry(c, sid) is None
    assert record(c, s1)["node"] == record(c, s2)["node"] != ""
    t_kill = time.time()
    c.kill9(a)
    # B notices A's lease lapse within lease + a renewal and gives both records an expiry.
    await wait_for(lambda: expiry(c, s1) and expiry(c, s2), LEASE_MS / 1000 + 2,
                   "the dead node's records get an expiry")
    seen = time.time()
    for sid in (s1, s2):
        exp, rec = expiry(c, sid), record(c, sid)
        assert rec["expires_ms"] == exp, (rec, exp)
        # now (when B noticed) + the window: after the kill, before we saw it.
        assert t_kill * 1000 + WINDOW_S * 1000 - 50 <= exp <= seen * 1000 + WINDOW_S * 1000 + 50, \
            (exp - t_kill * 1000, "ms after the kill")
    print("expiry set %.2f s after the kill, at kill + %.2f s"
          % (seen - t_kill, (expiry(c, s1) / 1000 - t_kill)))
    first_exp = expiry(c, s1)
    await asyncio.sleep(0.5)  # renewals meanwhile never move an expiry already set
    assert expiry(c, s1) == first_exp
    # Within the window the first one resumes on B; its record is B's from then on.
    ws1b, r1 = await b.ws_auth(e.key, query={"resume": w1["resume_token"], "last_seq": 0})
    assert r1["recovered"] is True and r1["session"] == s1, r1
    await wait_for(lambda: expiry(c, s1) is None, 3, "the adopted record loses its expiry")
    rec = record(c, s1)
    assert "expires_ms" not in rec and rec["node"] != record(c, s2)["node"], rec
    # Past the window the other one is pruned, and a resume of it is unknown.
    await wait_for(lambda: record(c, s2) is None, WINDOW_S + 4, "the expired record is pruned")
    gone = time.time()
    assert gone * 1000 >= first_exp - 50
    print("pruned %.2f s after the kill (window %d s)" % (gone - t_kill, WINDOW_S))
    ws2b, r2 = await b.ws_auth(e.key, query={"resume": w2["resume_token"], "last_seq": 0})
    assert r2["recovered"] is False and r2.get("recovery_error") == "unknown_session", r2
    # The adopted one, held by a live node, outlived the window.
    assert record(c, s1) is not None and expiry(c, s1) is None
    # A left the registry once its records were done; B is in it.
    assert c.redis.cmd("SMEMBERS", "herald:nodes") == [rec["node"].encode()]
    for s in (ws1b, ws2b):
        await s.close()


@aio
async def test_a_stalled_node_keeps_its_sessions_when_it_comes_back(clusters):
    c, e, a, b, (ws1, w1), (_, w2) = await two_node_cluster(clusters)
    s1, s2 = w1["session"], w2["session"]
    os.kill(a.proc.pid, signal.SIGSTOP)  # our own child, by its PID
    try:
        await wait_for(lambda: expiry(c, s1) and expiry(c, s2), LEASE_MS / 1000 + 2,
                       "the stalled node's records get an expiry")
    finally:
        os.kill(a.proc.pid, signal.SIGCONT)
    t_back = time.time()
    await wait_for(lambda: expiry(c, s1) is None and expiry(c, s2) is None, 3,
                   "the node back takes its records back")
    print("records taken back %.2f s after SIGCONT" % (time.time() - t_back))
    for sid in (s1, s2):
        assert "expires_ms" not in record(c, sid)
    await asyncio.sleep(WINDOW_S + 1.5)  # past the window and a prune: still there
    for sid in (s1, s2):
        assert record(c, sid) is not None and expiry(c, sid) is None, sid
    # A still delivers to them, and one still moves to B.
    e_pub = a.publish(e.pkey, {"topic": "/it/x", "type": "it.test", "data": {"i": 1}})
    assert e_pub.status in (200, 201), e_pub
    got = await ws1.events(1)
    assert got[0]["event"]["data"]["i"] == 1
    ws2b, r2 = await b.ws_auth(e.key, query={"resume": w2["resume_token"], "last_seq": 1})
    assert r2["recovered"] is True and r2["session"] == s2, r2
    for s in (ws1, ws2b):
        await s.close()
