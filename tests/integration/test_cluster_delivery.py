"""Cluster mode (issue 16) on the real binaries: three herald nodes on one real redis-server
(cluster.py). Delivery across nodes in the log's dense order, single-use tokens (a native ws
token, a RingCentral refresh token) accepted on one node and refused on the others, and the
drain of one node with its sessions resuming on the others."""
import asyncio
import threading
import time

from cluster import history_all
from conftest import aio, rc_app_and_user
from test_cluster_sessions import rc_form

TOPIC = "/it/cluster/**"


def publish_from_every_node(nodes, pkey, per_node, tag):
    """One thread per node, each publishing `per_node` events to its node at the same time
    (appends race between nodes). Returns the replies by (node index, i)."""
    replies, errors = {}, []

    def run(ix, node):
        try:
            for i in range(per_node):
                body = {"topic": "/it/cluster/n%d" % ix, "type": "t",
                        "data": {"tag": tag, "node": ix, "i": i}}
                replies[(ix, i)] = node.publish(pkey, body).json["events"][0]
        except Exception as exc:  # reported below: a thread's assertion is not the test's
            errors.append((ix, repr(exc)))

    threads = [threading.Thread(target=run, args=(ix, n)) for ix, n in enumerate(nodes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "publishers still running after 30 s"
    assert not errors, errors
    return replies


async def open_sockets(nodes, key, per_node):
    socks = []
    for ix, node in enumerate(nodes):
        for _ in range(per_node):
            ws, welcome = await node.ws_auth(key)
            await ws.subscribe([{"topic": TOPIC}])
            socks.append((ix, ws))
    return socks


@aio
async def test_every_socket_on_every_node_gets_every_event_once_in_log_order(clusters):
    c, e = clusters.start(3)
    socks = await open_sockets(c.nodes, e.key, per_node=2)
    per_node = 20
    loop = asyncio.get_running_loop()
    replies = await loop.run_in_executor(
        None, publish_from_every_node, c.nodes, e.pkey, per_node, "a")
    total = per_node * len(c.nodes)
    offsets = sorted(r["offset"] for r in replies.values())
    assert len(set(offsets)) == total, "two publishes got one offset: %r" % offsets
    # Dense offsets: one global log, whichever node appended.
    assert offsets == list(range(offsets[0], offsets[0] + total)), offsets
    log = history_all(c.nodes[2], e.key)
    assert [x["offset"] for x in log] == offsets
    assert sorted(x["id"] for x in log) == sorted(r["id"] for r in replies.values())
    got = await asyncio.gather(*(ws.events(total, timeout=10) for _, ws in socks))
    for (ix, ws), msgs in zip(socks, got):
        assert [m["seq"] for m in msgs] == list(range(1, total + 1)), (ix, msgs[:3])
        # Every socket: the log, in its order, each event once, byte-equal identity.
        assert [(m["event"]["offset"], m["event"]["id"], m["event"]["time"]) for m in msgs] == \
            [(x["offset"], x["id"], x["time"]) for x in log], ix
        await ws.no_message(0.3)
    for _, ws in socks:
        await ws.close()


@aio
async def test_ws_token_used_on_one_node_is_refused_on_another(clusters):
    c, e = clusters.start(3)
    a, b, third = c.nodes
    # Issued by node A (the shared token key signs it), used first on node B.
    tok = a.ws_token(e.app)
    ws = await b.ws(query={"access_token": tok})
    welcome = await ws.recv_json()
    assert welcome["type"] == "welcome", welcome
    # The same token on A and on the third node: refused (the guard is in Redis).
    for node in (a, third):
        again = await node.ws(query={"access_token": tok})
        err = await again.recv_json()
        assert err["type"] == "error" and err["code"] == "auth_failed", err
        assert "already used" in err["message"], err
        code, _, _ = await again.closed()
        assert code == 4001
    await ws.close()
    # A fresh token still works on the third node: the refusal was the replay, not the node.
    ws2 = await third.ws(query={"access_token": a.ws_token(e.app)})
    assert (await ws2.recv_json())["type"] == "welcome"
    await ws2.close()


@aio
async def test_drain_of_one_node_closes_its_sockets_1012_and_exits_0(clusters):
    c, e = clusters.start(3)
    a, b, third = c.nodes
    on_a = await open_sockets([a], e.key, per_node=3)
    on_b = await open_sockets([b], e.key, per_node=1)
    loop = asyncio.get_running_loop()
    rc_task = loop.run_in_executor(None, c.drain, a)
    for _, ws in on_a:
        code, _, msgs = await ws.closed(timeout=10)
        assert code == 1012, (code, msgs)
    rc = await asyncio.wait_for(rc_task, 25)
    assert rc == 0, a.stderr_tail()
    # The rest of the cluster carries on: a publish on the third node reaches node B's socket.
    rep = third.publish(e.pkey, {"topic": "/it/cluster/after", "type": "t", "data": {}}).json
    [msg] = await on_b[0][1].events(1)
    assert msg["seq"] == 1 and msg["event"]["id"] == rep["events"][0]["id"]
    await on_b[0][1].close()


@aio
async def test_a_drained_nodes_sessions_resume_on_the_others_recovered(clusters):
    c, e = clusters.start(3)
    a, b, third = c.nodes
    socks = []
    for _ in range(4):
        ws, welcome = await a.ws_auth(e.key)
        await ws.subscribe([{"topic": TOPIC}])
        socks.append((ws, welcome))

    def pub(i):
        return third.publish(e.pkey, {"topic": "/it/cluster/d", "type": "t",
                                      "data": {"i": i}}).json["events"][0]

    first = [pub(i) for i in range(3)]
    for ws, _ in socks:
        assert [m["event"]["id"] for m in await ws.events(3)] == [x["id"] for x in first]
    loop = asyncio.get_running_loop()
    rc_task = loop.run_in_executor(None, c.drain, a)
    for ws, _ in socks:
        code, _, msgs = await ws.closed(timeout=10)
        assert code == 1012, (code, msgs)
    assert await asyncio.wait_for(rc_task, 25) == 0, a.stderr_tail()
    missed = [pub(i) for i in range(3, 7)]  # published while the sessions have no socket
    resumed = []
    for n, (_, welcome) in enumerate(socks):
        node = (b, third)[n % 2]
        ws, w = await node.ws_auth(e.key, query={"resume": welcome["resume_token"],
                                                 "last_seq": 2})
        assert w["recovered"] is True and w["session"] == welcome["session"], (n, w)
        resumed.append(ws)
    for ws in resumed:
        got = await ws.events(5)
        assert [m["seq"] for m in got] == [3, 4, 5, 6, 7], got
        assert [m["event"]["id"] for m in got] == [x["id"] for x in first[2:] + missed]
    live = pub(100)
    for ws in resumed:
        [m] = await ws.events(1)
        assert m["seq"] == 8 and m["event"]["id"] == live["id"], m
        await ws.no_message(0.2)
        await ws.close()


@aio
async def test_rc_refresh_token_used_on_one_node_is_refused_on_the_others(clusters):
    c = clusters.new()
    app, login = c.start(3, rc_app_and_user)
    a, b, third = c.nodes
    r = rc_form(a, "token", app, {"grant_type": "password", "username": login,
                                  "password": "right-pw"})
    assert r.status == 200, r
    refresh, access = r.json["refresh_token"], r.json["access_token"]
    # The login is announced to the other nodes over the control stream: wait until they know
    # it (an access token of it is accepted there) before spending the refresh token.
    for node in (b, third):
        deadline = time.monotonic() + 2
        while node.http("POST", "/ringcentral/restapi/oauth/wstoken", token=access).status != 200:
            assert time.monotonic() < deadline, "node %s never learnt the login" % node.base
            await asyncio.sleep(0.02)
    used = rc_form(b, "token", app, {"grant_type": "refresh_token", "refresh_token": refresh})
    assert used.status == 200 and used.json["refresh_token"] != refresh, used
    for node in (a, third, b):
        again = rc_form(node, "token", app, {"grant_type": "refresh_token",
                                             "refresh_token": refresh})
        assert again.status == 400 and again.json["error"] == "invalid_grant", (node.base, again)
        assert "already used" in again.json["error_description"], again
    # The new refresh token works once, on yet another node.
    fresh = rc_form(third, "token", app, {"grant_type": "refresh_token",
                                          "refresh_token": used.json["refresh_token"]})
    assert fresh.status == 200, fresh
