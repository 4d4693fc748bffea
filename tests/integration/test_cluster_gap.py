"""A node that misses trimmed control messages notices and resyncs (issue 16; docs/cluster.md,
"Missed control messages"), on the real binaries (cluster.py: a redis-server and two nodes).

Node B holds a RingCentral socket; B is stopped (SIGSTOP) while A ends that socket's login and
then ends 80 other logins (160 control messages: each login's start and end), past
`redis.control_max_len` = 100 with Redis's stream nodes of 10 entries, so the stream no longer
holds the revoke when B reads again; B's native session was resumed on A meanwhile (its
`taken` trimmed too). After SIGCONT, B finds the gap, logs it, counts it in /metrics, closes
the RingCentral socket `revoked` and the native one `replaced` anyway; its directory has the
login ended."""
import asyncio
import os
import signal
import time

import websockets

from conftest import aio, rc_app_and_user
from test_cluster_sessions import rc_form, rc_socket

ENV = {"HERALD_REDIS_CONTROL_MAX_LEN": 100}
REDIS = {"stream-node-max-entries": 10}


def login(node, app, user):
    r = rc_form(node, "token", app, {"grant_type": "password", "username": user,
                                     "password": "right-pw"})
    assert r.status == 200, r
    return r.json["access_token"]


def gaps(node):
    r = node.http("GET", "/metrics", admin=True)
    assert r.status == 200, r
    for line in r.raw.decode().splitlines():
        if line.startswith("herald_cluster_control_gaps_total "):
            return float(line.split()[1])
    raise AssertionError("no herald_cluster_control_gaps_total in /metrics")


@aio
async def test_a_revoke_trimmed_before_a_stalled_node_read_it_still_closes_its_socket(clusters):
    c = clusters.new(redis_options=REDIS, env=ENV)
    app, user = c.start(2, rc_app_and_user)
    a, b = c.nodes
    at = login(a, app, user)
    ws = await rc_socket(b, at)
    wsn, wn = await b.ws_auth(app["api_key"])  # and a native session on B
    await wsn.subscribe([{"topic": "/it/**"}])
    try:
        assert gaps(b) == 0
        os.kill(b.proc.pid, signal.SIGSTOP)  # our own child, by its PID
        try:
            # The native session moves to A (its `taken` is trimmed too), the login ends.
            wsa, wa = await a.ws_auth(app["api_key"], query={"resume": wn["resume_token"],
                                                              "last_seq": 0})
            assert wa["recovered"] is True and wa["session"] == wn["session"], wa
            r = rc_form(a, "revoke", app, {"token": at})
            assert r.status == 200, r
            for _ in range(80):
                rc_form(a, "revoke", app, {"token": login(a, app, user)})
            ctl = c.redis.cmd("XRANGE", "herald:ctl", "-", "+")
            assert len(ctl) < 100 + 20, len(ctl)  # the revoke and more were trimmed
            numbers = [dict(zip(e[1][::2], e[1][1::2])).get(b"s") for e in ctl]
            print("stream keeps %d messages, numbered %s..%s" % (len(ctl), numbers[0], numbers[-1]))
        finally:
            os.kill(b.proc.pid, signal.SIGCONT)
        t0 = time.monotonic()
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 5)
        except websockets.ConnectionClosed:
            pass
        except asyncio.TimeoutError:
            raise AssertionError("B's socket for the revoked login is still open after SIGCONT")
        took = time.monotonic() - t0
        assert "revoked" in ws.close_reason, (ws.close_code, ws.close_reason)
        print("socket closed %.3f s after SIGCONT" % took)
        assert took < 3.0, took
        # B lets the session A adopted go, as the `taken` it never read would have.
        code, reason, _ = await wsn.closed(timeout=3)
        assert (code, reason) == (1000, "replaced"), (code, reason)
        await wsa.close()
    finally:
        await ws.close()
    assert gaps(b) == 1
    assert "control messages were trimmed before this node read them" in b.stderr_tail(20000)
    # B's directory has the login ended: its access token is refused there too.
    assert b.http("POST", "/ringcentral/restapi/oauth/wstoken", token=at).status == 401
