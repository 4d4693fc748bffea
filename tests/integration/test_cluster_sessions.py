"""Issue 16 item 4 on the real binaries (a redis-server and two herald nodes, cluster.py):
a session resumes on another node with `recovered: true` and its original seqs while events
are published on both nodes, the old node's socket closes `replaced`; an admin kick sent to
one node closes a socket on the other within a second; /v1/admin/connections on any node lists
every node's sockets with their `node`; a RingCentral login created on one node is known to the
other, and its end there closes its socket on the other within a second; a drained node's
clients (1012) resume on another node with `recovered: true`."""
import asyncio
import time
import urllib.parse

import websockets

from conftest import aio, basic, rc_app_and_user, rid


def provision(node):
    return node.setup()


def pub(node, e, i, topic="/it/x"):
    r = node.publish(e.pkey, {"topic": topic, "type": "it.test", "data": {"i": i}})
    return r.json["events"][0]


def rows_of(node, **query):
    q = "&".join("%s=%s" % kv for kv in query.items())
    r = node.admin("GET", "/v1/admin/connections" + ("?" + q if q else ""), expect=200)
    return r.json["connections"]


async def wait_rows(node, pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        rows = [r for r in rows_of(node) if pred(r)]
        if rows or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.05)


@aio
async def test_a_session_resumes_on_another_node_with_its_seqs(clusters):
    c = clusters.new()
    e = c.start(2, provision)
    a, b = c.nodes
    ws, w = await a.ws_auth(e.key)
    await ws.subscribe([{"topic": "/it/**"}])
    for i in range(3):
        pub(a, e, i)
    got = await ws.events(3)
    assert [m["seq"] for m in got] == [1, 2, 3]
    # Published on both nodes while the client is away from its socket on A.
    pub(a, e, 3)
    pub(b, e, 4)
    pub(b, e, 5)
    pub(a, e, 6)
    more = await ws.events(4)  # A delivers them live: every batch reaches every node
    assert [(m["seq"], m["event"]["data"]["i"]) for m in more] == [(4, 3), (5, 4), (6, 5), (7, 6)]
    # The client moves to B having read up to seq 3 (say its last four were lost in transit).
    ws2, w2 = await b.ws_auth(e.key, query={"resume": w["resume_token"], "last_seq": 3})
    assert w2["recovered"] is True and w2["session"] == w["session"], w2
    evs = await ws2.events(4)
    assert [(m["seq"], m["event"]["data"]["i"]) for m in evs] == [(4, 3), (5, 4), (6, 5), (7, 6)]
    code, reason, _ = await ws.closed(timeout=3)
    assert (code, reason) == (1000, "replaced")
    # Live after the move, published on either node: no gap, no duplicate.
    pub(a, e, 7)
    pub(b, e, 8)
    live = await ws2.events(2)
    assert [(m["seq"], m["event"]["data"]["i"]) for m in live] == [(8, 7), (9, 8)]
    await ws2.no_message(0.3)
    # A no longer holds it: the listing shows it once, on B.
    rows = rows_of(a)
    assert [r["node"] for r in rows if r["session"] == w["session"]] == \
        [r["node"] for r in rows_of(b) if r["session"] == w["session"]]
    assert len([r for r in rows if r["session"] == w["session"]]) == 1
    # And back to A, from the record B keeps current: still exact.
    await ws2.close()
    ws3, w3 = await a.ws_auth(e.key, query={"resume": w["resume_token"], "last_seq": 7})
    assert w3["recovered"] is True, w3
    evs = await ws3.events(2)
    assert [m["seq"] for m in evs] == [8, 9]
    # A forged token for the session is unknown on a node that does not hold it.
    forged = w["resume_token"].split(".")[0] + ".not-the-secret"
    ws4, w4 = await b.ws_auth(e.key, query={"resume": forged, "last_seq": 0})
    assert w4["recovered"] is False and w4.get("recovery_error") == "unknown_session", w4
    for s in (ws3, ws4):
        await s.close()


@aio
async def test_admin_kick_and_listing_reach_every_node(clusters):
    c = clusters.new()
    e = c.start(2, provision)
    a, b = c.nodes
    ws, w = await a.ws_auth(e.key)
    wsb, wb = await b.ws_auth(e.key)
    # Each node lists both sockets, each with the node that holds it.
    for node in (a, b):
        rows = await wait_rows(node, lambda r: r["session"] in (w["session"], wb["session"]))
        assert len(rows) == 2, rows
        by_session = {r["session"]: r["node"] for r in rows}
        assert by_session[w["session"]] != by_session[wb["session"]], rows
    row = [r for r in rows_of(b) if r["session"] == w["session"]][0]
    t0 = time.monotonic()
    b.admin("DELETE", "/v1/admin/connections/" + row["id"], expect=204)
    code, reason, _ = await ws.closed(timeout=3)
    took = time.monotonic() - t0
    assert took < 1.0, "the kick took %.3f s" % took
    assert reason == "closed by admin", (code, reason)
    b.admin("DELETE", "/v1/admin/connections/con_nope", expect=404)
    rows = await wait_rows(b, lambda r: r["session"] == wb["session"])
    assert len(rows) == 1
    await wsb.close()


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def rc_form(node, path, app, fields, token=None):
    headers = dict(FORM)
    if token is None:
        headers["Authorization"] = basic(app["client_id"], app["client_secret"])
    return node.http("POST", "/ringcentral/restapi/oauth/" + path,
                     body=urllib.parse.urlencode(fields), headers=headers, token=token)


async def rc_socket(node, at):
    """A RingCentral socket on `node` for access token `at` (of a login made on another node:
    retried until the control stream brought it), its first message read."""
    deadline = time.monotonic() + 2
    while True:
        w = node.http("POST", "/ringcentral/restapi/oauth/wstoken", token=at)
        if w.status == 200 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
    assert w.status == 200, w
    url = w.json["uri"] + "?access_token=" + urllib.parse.quote(w.json["ws_access_token"])
    assert w.json["uri"].startswith(node.ws_base), w.json
    ws = await websockets.connect(url, ping_interval=None, close_timeout=2)
    assert await asyncio.wait_for(ws.recv(), 5)  # the connection details
    return ws


@aio
async def test_a_login_ended_on_one_node_closes_its_socket_on_another(clusters):
    c = clusters.new()
    app, login = c.start(2, rc_app_and_user)
    a, b = c.nodes
    # The login session is created on A; B learns it from the control stream (`record`).
    r = rc_form(a, "token", app, {"grant_type": "password", "username": login,
                                  "password": "right-pw"})
    assert r.status == 200, r
    at = r.json["access_token"]
    ws = await rc_socket(b, at)
    try:
        t0 = time.monotonic()
        r = rc_form(a, "revoke", app, {"token": at})
        assert r.status == 200, r
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 3)
        except websockets.ConnectionClosed:
            pass
        took = time.monotonic() - t0
        assert "revoked" in ws.close_reason, (ws.close_code, ws.close_reason)
        assert took < 1.0, "the login end took %.3f s to close the socket on B" % took
    finally:
        await ws.close()
    # B's directory has the login ended: its access token is refused there too.
    assert b.http("POST", "/ringcentral/restapi/oauth/wstoken", token=at).status == 401


@aio
async def test_a_drained_nodes_clients_resume_on_another_node(clusters):
    c = clusters.new()
    e = c.start(2, provision)
    a, b = c.nodes
    ws, w = await a.ws_auth(e.key)
    await ws.subscribe([{"topic": "/it/**"}])
    for i in range(2):
        pub(a, e, i)
    assert [m["seq"] for m in await ws.events(2)] == [1, 2]
    code = asyncio.get_running_loop().run_in_executor(None, c.drain, a)
    closed, _, _ = await ws.closed(timeout=10)
    assert closed == 1012, closed
    assert await code == 0
    pub(b, e, 2)  # while the session has no socket: counted into it from the log
    ws2, w2 = await b.ws_auth(e.key, query={"resume": w["resume_token"], "last_seq": 2})
    assert w2["recovered"] is True and w2["session"] == w["session"], w2
    evs = await ws2.events(1)
    assert [(m["seq"], m["event"]["data"]["i"]) for m in evs] == [(3, 2)]
    pub(b, e, 3)
    assert [m["seq"] for m in await ws2.events(1)] == [4]
    rows = rows_of(b)  # the drained node left the registry: B answers alone, at once
    assert [r["session"] for r in rows] == [w["session"]], rows
    await ws2.close()
