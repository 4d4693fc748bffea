"""Every dialect in cluster mode (issue 16: "every dialect works unchanged in cluster mode"), on
the real binaries: a redis-server and two or three herald nodes (cluster.py), real WebSocket
clients speaking each dialect's wire as its single-node tests do (tests/compat/*).

- Zoom (zoom.md §3.5, §3.7): a `herald=1` session resumed on another node after its node drains
  (1012) and after `kill -9`, the events published meanwhile on any node arriving once, in order,
  with their seqs; the older socket on another node closed `1000 replaced` by a resume and by a
  plain (non-resuming) socket of the same subscription; a subscription deleted through one node
  closes its socket on another.
- SMS gateway (smsgw.md §2.1, §5): a `wst_` token is single use across nodes.
- Tracker (tracker.md §3, §5.5, §5.6): a subscription through one node gets what another node
  publishes and the lifecycle of an admin change made on another node; after a drain the
  client's reconnect to another node keeps its tracking id and its re-subscribe snapshot has the
  state published while it was away; a logout on another node reaches the socket.
- RingCentral (ringcentral.md "Subscriptions", "Recovery"): a session with a subscription made
  on node A is recovered on node B (`wsc`); there its subscription, created on A, is read,
  renewed and deleted by id.
"""
import asyncio
import json
import time
import urllib.parse
import uuid

import websockets

from conftest import aio, basic, rid
from test_cluster_sessions import rc_form

T = 5  # seconds: every receive


async def connect(url):
    return await asyncio.wait_for(
        websockets.connect(url, ping_interval=None, close_timeout=2, max_size=None,
                           open_timeout=T), T + 1)


async def recv_json(ws, timeout=T):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def closed(ws, timeout=T):
    """Reads until the server closes: (code, reason, the JSON frames read before)."""
    frames = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            assert left > 0, "socket not closed within %ss; got %r" % (timeout, frames)
            try:
                raw = await asyncio.wait_for(ws.recv(), left)
            except asyncio.TimeoutError:
                raise AssertionError("socket not closed within %ss; got %r" % (timeout, frames))
            try:
                frames.append(json.loads(raw))
            except ValueError:
                frames.append(raw)
    except websockets.ConnectionClosed:
        pass
    return ws.close_code, ws.close_reason, frames


async def quiet(ws, seconds=0.3, skip=lambda m: False):
    """Nothing (but frames `skip` accepts) arrives within `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        try:
            raw = await asyncio.wait_for(ws.recv(), left)
        except asyncio.TimeoutError:
            return
        m = json.loads(raw) if raw[:1] in ("{", "[") else raw
        assert skip(m), "unexpected frame: %r" % (m,)


async def wait_known(node, check, what, timeout=3.0):
    """A record written on another node reaches `node` over the control stream (within about
    a second, docs/cluster.md): polls `check()` until it is true."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "%s never learnt %s" % (node.base, what)
        await asyncio.sleep(0.02)


# --------------------------------------------------------------------------- Zoom

def zoom_world(node):
    t = node.tenant()
    app = node.app(t, "app")
    pub = node.app(t, "publisher")
    sub = node.admin("POST", "/v1/admin/zoom/subscriptions",
                     {"tenant": t, "events": ["meeting.*"]}, expect=201).json
    return {"tenant": t, "app": app, "pub": pub, "sub": sub}


def zoom_token(node, app):
    r = node.http("POST", "/zoom/oauth/token?grant_type=client_credentials", body=b"",
                  headers={"Authorization": basic(app["client_id"], app["client_secret"]),
                           "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 200, r
    return r.json["access_token"]


def zoom_url(node, w, **extra):
    q = {"subscriptionId": w["sub"]["id"], "access_token": zoom_token(node, w["app"])}
    q.update(extra)
    return node.ws_base + "/zoom/ws?" + urllib.parse.urlencode(q)


async def zoom_open(node, w, **extra):
    ws = await connect(zoom_url(node, w, **extra))
    first = await recv_json(ws)
    assert first["module"] == "build_connection" and first["success"] is True, first
    return ws, first["header"]


def zoom_pub(node, w, i):
    r = node.publish(w["pub"]["api_key"], {"topic": "/m/%d" % i, "type": "meeting.started",
                                           "data": {"i": i}})
    return r.json["events"][0]


async def zoom_events(ws, n):
    """n message frames: [(seq, i, event id)] (herald=1 headers)."""
    out = []
    while len(out) < n:
        m = await recv_json(ws)
        assert m["module"] == "message", m
        body = json.loads(m["content"])  # the webhook body, a JSON string (zoom.md §3.4)
        assert body["event"] == "meeting.started", body
        out.append((m["header"]["seq"], body["payload"]["object"]["i"], m["header"]["id"]))
    return out


async def zoom_cluster(clusters):
    """Three nodes, the Zoom world made on the first, a herald=1 socket open there."""
    c = clusters.new()
    w = c.start(3, zoom_world)
    ws, h = await zoom_open(c.nodes[0], w, herald="1")
    assert h["seq"] == 0 and h["recovered"] is False, h
    return c, w, ws, h


async def zoom_resume(node, w, h, last_seq, want):
    """Resumes session `h` on `node` from `last_seq`: recovered, exactly `want` (seq, i, id)
    in order, then nothing. Returns the socket."""
    ws, h2 = await zoom_open(node, w, herald="1", resume=h["resume_token"],
                             last_seq=str(last_seq))
    assert h2["recovered"] is True and h2["session"] == h["session"], h2
    got = await zoom_events(ws, len(want))
    assert got == want, (got, want)
    await quiet(ws)
    return ws


@aio
async def test_zoom_session_resumes_on_another_node_after_drain_and_kill9(clusters):
    # Catches: a Zoom session record not adoptable by another node (recovered:false), seqs
    # renumbered by the adopting node, an event published on a third node while the session
    # had no socket missing or doubled, a drained node's Zoom sockets not closed 1012.
    c, w, ws, h = await zoom_cluster(clusters)
    a, b, third = c.nodes
    ids = {0: zoom_pub(a, w, 0)["id"], 1: zoom_pub(b, w, 1)["id"]}
    got = await zoom_events(ws, 2)
    assert got == [(1, 0, ids[0]), (2, 1, ids[1])], got
    # Drain A: its Zoom socket is closed 1012 (zoom.md §7), A exits 0.
    rc = asyncio.get_running_loop().run_in_executor(None, c.drain, a)
    code, _, frames = await closed(ws, timeout=10)
    assert code == 1012, (code, frames)
    assert await rc == 0, a.stderr_tail()
    # Published on both remaining nodes while the session has no socket.
    ids[2] = zoom_pub(b, w, 2)["id"]
    ids[3] = zoom_pub(third, w, 3)["id"]
    # The client resumes on B having read up to seq 1 (seq 2 lost in transit).
    ws2 = await zoom_resume(b, w, h, 1, [(2, 1, ids[1]), (3, 2, ids[2]), (4, 3, ids[3])])
    ids[4] = zoom_pub(third, w, 4)["id"]  # live after the move
    assert await zoom_events(ws2, 1) == [(5, 4, ids[4])]
    # A comes back (its own data directory, a new port); then B dies without a word.
    c.restart(a)
    c.kill9(b)
    await closed(ws2, timeout=5)  # the TCP connection drops (no close frame: 1006)
    ids[5] = zoom_pub(a, w, 5)["id"]
    ids[6] = zoom_pub(third, w, 6)["id"]
    ids[7] = zoom_pub(a, w, 7)["id"]
    # Resume on the third node from B's record, which B never wrote at a drain.
    ws3 = await zoom_resume(third, w, h, 5, [(6, 5, ids[5]), (7, 6, ids[6]), (8, 7, ids[7])])
    ids[8] = zoom_pub(a, w, 8)["id"]
    assert await zoom_events(ws3, 1) == [(9, 8, ids[8])]
    await ws3.close()


@aio
async def test_zoom_newer_socket_on_another_node_replaces_the_older(clusters):
    # Catches: a resume on another node leaving the old node's socket open (it must close
    # 1000 "replaced", zoom.md §3.7) or both sockets getting an event; a plain Zoom client's
    # second socket of one subscription on another node not replacing the first (§3.5 "any
    # node": one socket per subscription across the cluster); a subscription deleted on one
    # node leaving its socket on another open (§5).
    c, w, ws, h = await zoom_cluster(clusters)
    a, b, third = c.nodes
    e0 = zoom_pub(b, w, 0)
    assert await zoom_events(ws, 1) == [(1, 0, e0["id"])]
    # A resume on B while A's socket is still open: A's closes 1000 replaced.
    ws2, h2 = await zoom_open(b, w, herald="1", resume=h["resume_token"], last_seq="1")
    assert h2["recovered"] is True and h2["session"] == h["session"], h2
    code, reason, frames = await closed(ws, timeout=3)
    assert (code, reason) == (1000, "replaced"), (code, reason)
    assert frames == [], frames  # nothing after the takeover reached the old socket
    e1 = zoom_pub(a, w, 1)
    assert await zoom_events(ws2, 1) == [(2, 1, e1["id"])]
    # A plain Zoom client (no herald=1) opens the same subscription on the third node.
    ws3, _ = await zoom_open(third, w)
    code, reason, frames = await closed(ws2, timeout=3)
    assert (code, reason) == (1000, "replaced"), (code, reason, frames)
    assert all(f.get("module") != "message" for f in frames), frames
    e2 = zoom_pub(a, w, 2)
    m = await recv_json(ws3)
    assert m["module"] == "message" and m["header"] == {}, m
    assert json.loads(m["content"])["payload"]["object"] == {"i": 2}, m
    await quiet(ws3)
    assert e2["id"]
    # The subscription deleted through A's admin API: the socket on the third node closes.
    a.admin("DELETE", "/v1/admin/zoom/subscriptions/" + w["sub"]["id"], expect=204)
    code, reason, frames = await closed(ws3, timeout=3)
    assert (code, reason) == (1000, "subscription deleted"), (code, reason, frames)


# --------------------------------------------------------------------------- SMS gateway

def smsgw_world(node):
    t = node.tenant()
    app = node.admin("POST", "/v1/admin/apps", {"tenant": t, "name": rid("sgw"), "role": "app",
                                                "api_key_format": "sgw"}, expect=201).json
    assert app["api_key"].startswith("sgw_"), app
    return {"tenant": t, "app": app, "pub": node.app(t, "publisher")}


def smsgw_token(node, w):
    r = node.http("POST", "/smsgw/v1/ws/token", token=w["app"]["api_key"])
    assert r.status == 200 and r.json["token"].startswith("wst_"), r
    return r.json["token"]


async def smsgw_auth(node, token):
    """A socket authenticated with `token`: (socket, first frame)."""
    ws = await connect(node.ws_base + "/smsgw/ws")
    await ws.send(json.dumps({"type": "auth", "token": token}))
    return ws, await recv_json(ws)


async def smsgw_refused(node, token):
    ws, first = await smsgw_auth(node, token)
    assert first == {"type": "auth_error", "error": "Invalid API key"}, (node.base, first)
    code, reason, _ = await closed(ws)
    assert (code, reason) == (1008, "Invalid API key"), (node.base, code, reason)


@aio
async def test_smsgw_ws_token_is_single_use_across_nodes(clusters):
    # Catches: a redemption guard kept per node (a token used on A accepted again on B), a
    # token record minted on one node unknown on another (smsgw.md §5: "good on any node"),
    # and an sms_status published on B not rendered to a socket on A.
    c = clusters.new()
    w = c.start(2, smsgw_world)
    a, b = c.nodes
    tok = smsgw_token(a, w)
    ws, first = await smsgw_auth(a, tok)
    assert first == {"type": "auth_ok"}, first
    await smsgw_refused(b, tok)
    await smsgw_refused(a, tok)
    # The socket A accepted carries events published on B.
    ev = b.publish(w["pub"]["api_key"], {
        "topic": "/sms/%s/status" % w["tenant"], "type": "sms.status", "tenant": w["tenant"],
        "app": w["app"]["id"], "subject": "msg_c1", "retain": True,
        "data": {"status": "sent", "rcMessageId": "900001"}}).json["events"][0]
    m = await recv_json(ws)
    assert m == {"type": "sms_status", "messageId": "msg_c1", "appId": w["app"]["id"],
                 "tenantId": w["tenant"], "status": "sent", "rcMessageId": "900001",
                 "timestamp": m["timestamp"]}, m
    assert m["timestamp"].endswith("Z") and ev["time"], (m, ev)
    # Minted on B: works on A once, then neither node takes it.
    tok2 = smsgw_token(b, w)
    ws2, first = await smsgw_auth(a, tok2)
    assert first == {"type": "auth_ok"}, first
    await smsgw_refused(a, tok2)
    await smsgw_refused(b, tok2)
    for s in (ws, ws2):
        await s.close()


# --------------------------------------------------------------------------- tracker

TRACKERS = (61001, 61002)


def tracker_world(node):
    t = node.tenant()
    pub = node.app(t, "publisher")
    login = rid("trk")
    node.admin("POST", "/v1/admin/users", {"tenant": t, "login": login, "password": "pw-x"},
               expect=201)
    for tid in TRACKERS:
        r = node.admin("PUT", "/v1/admin/subjects/%d" % tid,
                       {"tenant": t, "kind": "tracker", "label": "truck %d" % tid})
        assert r.status in (200, 201), r
    w = {"tenant": t, "pub": pub, "login": login, "n": 0}
    w["snap"] = tracker_state(node, w, TRACKERS[0])
    return w


def tracker_state(node, w, tid):
    """Publishes a state of tracker `tid` on `node`; returns its data text (byte-exact)."""
    w["n"] += 1
    data = '{"source_id":%d,"speed":%d,"connection_status":"active"}' % (tid, w["n"])
    body = '{"topic":"/trackers/%d","type":"state","subject":"%d","retain":true,"data":%s}' % (
        tid, tid, data)
    node.publish(w["pub"]["api_key"], body)
    return data


def tracker_login(node, w):
    r = node.http("POST", "/tracker/v2/user/auth", body={"login": w["login"], "password": "pw-x"})
    assert r.status == 200 and r.json["success"] is True, r
    return r.json["hash"]


class Tracker:
    """A plain WebSocket Atmosphere client (tracker.md §1: reads the handshake, skips `X`)."""

    def __init__(self, ws, uuid_):
        self.ws, self.uuid = ws, uuid_

    @classmethod
    async def open(cls, node, tracking_id="0"):
        ws = await connect(node.ws_base + "/tracker/v2/event/subscription?" + urllib.parse.urlencode(
            {"X-Atmosphere-tracking-id": tracking_id, "X-Atmosphere-Transport": "websocket",
             "X-Atmosphere-Framework": "2.3.3-javascript"}))
        hs = await asyncio.wait_for(ws.recv(), T)
        parts = hs.split("|")
        assert len(parts) == 4 and parts[2] == "X" and uuid.UUID(parts[0]), hs
        return cls(ws, parts[0])

    async def frame(self):
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), T)
            if raw.strip() == "X":
                continue
            return json.loads(raw)

    async def request(self, action, hash_, trackers):
        await self.ws.send(json.dumps({"action": action, "hash": hash_, "events": ["state"],
                                       "trackers": list(trackers)}))
        return await self.frame()

    async def raw_event(self):
        """The next event frame as text (for byte-exact `data`)."""
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), T)
            if raw.strip() != "X":
                m = json.loads(raw)
                assert m["type"] == "event", m
                return m, raw


def data_text(raw):
    return raw[raw.index('"data":') + 7:-1]


@aio
async def test_tracker_across_nodes_delivery_lifecycle_reconnect_and_logout(clusters):
    # Catches: a tracker state published on B not reaching a socket on A; a block/unblock made
    # through B's admin API not reaching A's socket (lifecycle frames, then the retained
    # state); a hash made on one node unknown on another (error 4); the drained socket's
    # tracking id not reused on another node; a re-subscribe snapshot missing the state
    # published while the client was away; a logout on another node not reaching the socket
    # (tracker.md §5.5 "every socket on any node"); a close request sent to another node than
    # the socket's leaving it open (§3).
    c = clusters.new()
    w = c.start(3, tracker_world)
    a, b, third = c.nodes
    t1, t2 = TRACKERS
    hash_ = tracker_login(a, w)
    cl = await Tracker.open(a)
    r = await cl.request("subscribe", hash_, [t1, t2])
    assert r == {"type": "response", "action": "subscription/subscribe", "events": ["state"],
                 "data": {"state": {str(t1): "normal", str(t2): "normal"}}}, r
    m, raw = await cl.raw_event()  # the snapshot of t1 (t2 has no state yet)
    assert m["event"] == "state" and data_text(raw) == w["snap"], raw
    # Published through B and the third node: delivered on A, in order, byte-exact.
    sent = [tracker_state(b, w, t2), tracker_state(third, w, t1), tracker_state(b, w, t2)]
    for want in sent:
        m, raw = await cl.raw_event()
        assert data_text(raw) == want, (raw, want)
    # Blocked through B's admin API: A's socket gets `block`, no state, then `unblock` and the
    # state published while blocked.
    b.admin("PUT", "/v1/admin/subjects/%d" % t2, {"tenant": w["tenant"], "kind": "tracker",
                                                  "blocked": True}, expect=200)
    m, _ = await cl.raw_event()
    assert (m["event"], m["data"]["lifecycle_event"]) == ("lifecycle", "block"), m
    while_blocked = tracker_state(third, w, t2)
    await quiet(cl.ws, 0.3, skip=lambda f: f == "X")
    b.admin("PUT", "/v1/admin/subjects/%d" % t2, {"tenant": w["tenant"], "kind": "tracker",
                                                  "blocked": False}, expect=200)
    m, _ = await cl.raw_event()
    assert (m["event"], m["data"]["lifecycle_event"]) == ("lifecycle", "unblock"), m
    m, raw = await cl.raw_event()
    assert m["event"] == "state" and data_text(raw) == while_blocked, raw
    # Drain A: 1012; a state published meanwhile; the client reconnects to B with its UUID.
    rc = asyncio.get_running_loop().run_in_executor(None, c.drain, a)
    code, _, _ = await closed(cl.ws, timeout=10)
    assert code == 1012, code
    assert await rc == 0, a.stderr_tail()
    missed = tracker_state(third, w, t1)
    cl2 = await Tracker.open(b, tracking_id=cl.uuid)
    assert cl2.uuid == cl.uuid  # held by no open socket: reused (tracker.md §3)
    r = await cl2.request("subscribe", hash_, [t1, t2])  # the hash A made, on B
    assert r["data"] == {"state": {str(t1): "normal", str(t2): "normal"}}, r
    snaps = [data_text((await cl2.raw_event())[1]) for _ in range(2)]
    assert snaps == [missed, while_blocked], snaps  # request order, the current states
    live = tracker_state(third, w, t1)
    assert data_text((await cl2.raw_event())[1]) == live
    # The hash ends on the third node: B's socket gets one logout frame and stays open.
    r = third.http("POST", "/tracker/v2/user/logout", body={"hash": hash_})
    assert r.status == 200 and r.json == {"success": True}, r
    m = await cl2.frame()
    assert m == {"type": "event", "event": "logout", "data": "session closed"}, m
    tracker_state(third, w, t1)
    await quiet(cl2.ws, 0.3, skip=lambda f: f == "X")
    r = await cl2.request("subscribe", hash_, [t1])
    assert r["type"] == "error" and r["status"]["code"] == 4, r
    # atmosphere.js's close request is a plain GET that a load balancer may send to another
    # node than the socket's: the socket holding the UUID closes 1000 (tracker.md §3).
    r = third.http("GET", "/tracker/v2/event/subscription?" + urllib.parse.urlencode(
        {"X-Atmosphere-Transport": "close", "X-Atmosphere-tracking-id": cl2.uuid}))
    assert r.status == 200 and r.raw == b"", r
    code, _, _ = await closed(cl2.ws, timeout=3)
    assert code == 1000, code


# --------------------------------------------------------------------------- RingCentral

def rc_world(node):
    t = node.tenant()
    app = node.app(t, "app")
    pub = node.app(t, "publisher")
    login = rid("u")
    node.admin("POST", "/v1/admin/users", {"tenant": t, "login": login, "password": "right-pw",
                                           "extension_id": "101"}, expect=201)
    return {"tenant": t, "app": app, "pub": pub, "login": login,
            "topic": "/restapi/v1.0/account/%s/extension/101/message-store" % t}


class RC:
    """A RingCentral WebSocket client: JSON arrays [meta, body] (ringcentral.md "The socket")."""

    def __init__(self, ws, details):
        self.ws, self.details, self.n = ws, details, 0
        self.wsc = details[0]["wsc"]["token"]

    @classmethod
    async def open(cls, node, access, wsc=None):
        r = node.http("POST", "/ringcentral/restapi/oauth/wstoken", token=access)
        assert r.status == 200, r
        url = r.json["uri"] + "?access_token=" + urllib.parse.quote(r.json["ws_access_token"])
        if wsc:
            url += "&wsc=" + urllib.parse.quote(wsc)
        ws = await connect(url)
        first = await recv_json(ws)
        assert first[0]["type"] == "ConnectionDetails", first
        return cls(ws, first)

    async def frame(self):
        m = await recv_json(self.ws)
        if m[0].get("wsc"):
            self.wsc = m[0]["wsc"]["token"]
        return m

    async def request(self, method, path, body=None):
        self.n += 1
        mid = "req-%d" % self.n
        meta = {"type": "ClientRequest", "messageId": mid, "method": method, "path": path}
        await self.ws.send(json.dumps([meta, body] if body is not None else [meta]))
        while True:
            m = await self.frame()
            if m[0]["type"] == "ClientRequest" and m[0]["messageId"] == mid:
                return m[0]["status"], (m[1] if len(m) > 1 else None)
            assert m[0]["type"] == "ServerNotification", m

    async def notes(self, n):
        out = []
        while len(out) < n:
            m = await self.frame()
            assert m[0]["type"] == "ServerNotification", m
            out.append((m[0]["wsc"]["sequence"], m[1]["uuid"], m[1]["subscriptionId"]))
        return out


def rc_pub(node, w, i):
    return node.publish(w["pub"]["api_key"], {"topic": w["topic"], "type": "message-store",
                                              "data": {"i": i}}).json["events"][0]["id"]


SUB = "/restapi/v1.0/subscription"


@aio
async def test_rc_subscription_made_on_one_node_renewed_and_deleted_on_another(clusters):
    # Catches: a RingCentral session (with its subscription) not recoverable on another node,
    # its subscription id unknown there (renew/GET/DELETE by id answering 404 CMN-102), a
    # renewal that changes the id, a delete on B after which events still arrive, and the
    # socket still attached on A not closed by the recovery on B.
    c = clusters.new()
    w = c.start(2, rc_world)
    a, b = c.nodes
    r = rc_form(a, "token", w["app"], {"grant_type": "password", "username": w["login"],
                                       "password": "right-pw"})
    assert r.status == 200, r
    access = r.json["access_token"]
    await wait_known(b, lambda: b.http("POST", "/ringcentral/restapi/oauth/wstoken",
                                       token=access).status == 200, "the login")
    ca = await RC.open(a, access)
    st, sub = await ca.request("POST", SUB, {"eventFilters": [
        "/restapi/v1.0/account/~/extension/~/message-store"],
        "deliveryMode": {"transportType": "WebSocket"}})
    assert st == 200 and sub["eventFilters"] == [w["topic"]], (st, sub)
    e0 = rc_pub(b, w, 0)
    [(seq0, uuid0, sid0)] = await ca.notes(1)
    assert (uuid0, sid0) == (e0, sub["id"])
    wsc = ca.wsc
    missed = [rc_pub(a, w, 1), rc_pub(b, w, 2)]
    got_on_a = await ca.notes(2)  # A delivers them; the client pretends it lost them
    # Recovered on B with the wsc of seq0, while A's socket is still attached.
    cb = await RC.open(b, access, wsc=wsc)
    body = cb.details[1]
    assert body.get("recoveryState") == "Successful", body
    code, _, _ = await closed(ca.ws, timeout=3)
    assert code is not None, "A's socket stayed open after the recovery on B"
    got = await cb.notes(2)
    assert got == got_on_a, (got, got_on_a)
    assert [x[1] for x in got] == missed and [x[0] for x in got] == [seq0 + 1, seq0 + 2], got
    assert all(x[2] == sub["id"] for x in got), got
    # The subscription made on A, by its id, on B.
    st, g = await cb.request("GET", SUB + "/" + sub["id"])
    assert st == 200 and g["id"] == sub["id"] and g["eventFilters"] == [w["topic"]], (st, g)
    st, ren = await cb.request("POST", SUB + "/" + sub["id"] + "/renew")
    assert st == 200 and ren["id"] == sub["id"] and ren["status"] == "Active", (st, ren)
    st, put = await cb.request("PUT", SUB + "/" + sub["id"], {})
    assert st == 200 and put["id"] == sub["id"], (st, put)
    e3 = rc_pub(a, w, 3)  # still delivered after the renewals, from A
    assert [x[1:] for x in await cb.notes(1)] == [(e3, sub["id"])]
    st, _ = await cb.request("DELETE", SUB + "/" + sub["id"])
    assert st == 204, st
    rc_pub(a, w, 4)
    rc_pub(b, w, 5)
    await quiet(cb.ws, 0.4)
    st, _ = await cb.request("GET", SUB + "/" + sub["id"])
    assert st == 404, st
    await cb.ws.close()
