"""GET /v1/admin/why and `herald why` (issue #14 item 2) on the real binary: one case per rule.

Each case makes a session miss (or get) an event for one reason and checks the verdict names
that rule, as docs/admin-api.md ("why") lists them.
"""
import asyncio
import json
import random
import subprocess
import time
import urllib.parse

import websockets

from conftest import ADMIN_KEY, BIN, aio, rid


def why(srv, event, session, expect=200):
    q = urllib.parse.urlencode({"event": event, "session": session})
    r = srv.admin("GET", "/v1/admin/why?" + q)
    assert r.status == expect, (r.status, r.raw)
    return r.json


async def subscribed(env, filters=None):
    ws, w = await env.srv.ws_auth(env.key)
    await ws.subscribe(filters or [{"topic": "/it/**"}])
    return ws, w["session"]


def pub(env, topic="/it/x", type_="it.test", data=None, **extra):
    return env.publish(env.ev(topic[3:], type_, data, **extra))[0]


def refused(v, rule):
    assert v["delivered"] is False and v["rule"] == rule, v
    assert isinstance(v["detail"], str) and v["detail"], v
    return v


@aio
async def test_delivered_gives_seq_and_time(any_srv):
    env = any_srv.setup()  # both stores: the event is looked up in the log by id
    ws, ses = await subscribed(env)
    pub(env)
    e = pub(env)
    evs = await ws.events(2)
    v = why(env.srv, e["id"], ses)
    assert v["delivered"] is True and v["seq"] == evs[1]["seq"] == 2, v
    assert v["at"] == e["time"] and v["event"] == e["id"] and v["session"] == ses, v
    assert v["dialect"] == "native" and "rule" not in v, v
    assert v["filters"] == [{"filter": {"topic": "/it/**"}, "matched": True}], v
    await ws.close()


@aio
async def test_delivered_in_cluster_mode(clusters):
    # The cluster store finds the event by the offset its id carries (docs/cluster.md): one
    # entry of the tenant's log in Redis, published through the other node.
    c, env = clusters.start(2)
    ws, ses = await subscribed(env)
    e = c.nodes[1].publish(env.pkey, env.ev("/x", "it.test")).json["events"][0]
    evs = await ws.events(1)
    assert evs[0]["event"]["id"] == e["id"], evs
    v = why(env.srv, e["id"], ses)
    assert v["delivered"] is True and v["seq"] == evs[0]["seq"] == 1, v
    assert v["at"] == e["time"] and v["event"] == e["id"], v
    # The same offset with another random part is no event of the log.
    forged = e["id"][:-1] + ("b" if e["id"].endswith("a") else "a")
    r = env.srv.admin("GET", "/v1/admin/why?" + urllib.parse.urlencode(
        {"event": forged, "session": ses}))
    assert r.status == 404 and "event '%s'" % forged in r.json["error"]["message"], r
    await ws.close()


@aio
async def test_no_filter_matched_names_each_filter(env):
    ws, ses = await subscribed(env, [{"topic": "/it/a", "types": ["it.other"]},
                                     {"topic": "/it/b/*"},
                                     {"topic": "/it/**", "where": {"k": "v"}},
                                     {"topic": "/it/**", "subjects": ["s1"]}])
    e = pub(env, "/it/a", "it.test", {"k": "w"})
    v = refused(why(env.srv, e["id"], ses), "no_filter_matched")
    whys = [f["why"] for f in v["filters"]]
    assert [f["matched"] for f in v["filters"]] == [False] * 4, v
    assert "type 'it.test'" in whys[0], whys
    assert "topic '/it/a' does not match '/it/b/*'" in whys[1], whys
    assert "data.k" in whys[2], whys
    assert "no subject" in whys[3], whys
    assert v["seq"] is None, v
    await ws.no_message(0.3)
    await ws.close()


@aio
async def test_other_tenant_and_other_app(srv, env):
    ws, ses = await subscribed(env)
    other = srv.setup()
    e = pub(other)
    refused(why(srv, e["id"], ses), "tenant")
    # An event bound to another app of the same tenant.
    app2 = srv.app(env.tenant)
    e2 = pub(env, app=app2["id"])
    v = refused(why(srv, e2["id"], ses), "app")
    assert app2["id"] in v["detail"], v
    await ws.no_message(0.3)
    await ws.close()


async def gone(srv, session):
    """Waits until no socket of `session` is listed (the server has detached it)."""
    for _ in range(100):
        rows = srv.admin("GET", "/v1/admin/connections?limit=1000").json["connections"]
        if all(c["session"] != session for c in rows):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("session %s still has a socket" % session)


@aio
async def test_subject_blocked_and_corrupted(srv, env):
    s1, s2 = rid("sub"), rid("sub")
    for s in (s1, s2):
        r = srv.admin("PUT", "/v1/admin/subjects/" + s, {"tenant": env.tenant, "kind": "device"})
        assert r.status == 201, r
    r = srv.admin("PUT", "/v1/admin/subjects/" + s1, {"tenant": env.tenant, "blocked": True})
    assert r.status == 200, r
    ws, w = await srv.ws_auth(env.key)
    await ws.subscribe([{"topic": "/it/**"}])
    ses = w["session"]
    e1 = pub(env, subject=s1)
    v = refused(why(srv, e1["id"], ses), "subject_blocked")
    assert s1 in v["detail"] and v["seq"] is None, v
    # Matched while detached (seq 1), corrupted before the resume: the replay leaves it out.
    await ws.close()
    await gone(srv, ses)
    e2 = pub(env, subject=s2)
    srv.admin("DELETE", "/v1/admin/subjects/%s?tenant=%s" % (s2, env.tenant), expect=204)
    ws2, w2 = await srv.ws_auth(env.key, query={"resume": w["resume_token"], "last_seq": 0})
    assert w2["recovered"] is True, w2
    await asyncio.sleep(0.3)
    v = refused(why(srv, e2["id"], ses), "subject_corrupted")
    assert s2 in v["detail"] and v["seq"] == 1, v
    await ws2.close()


@aio
async def test_session_detached_then_resumed(env):
    ws, w = await env.srv.ws_auth(env.key)
    await ws.subscribe([{"topic": "/it/**"}])
    ses = w["session"]
    await ws.close()
    await gone(env.srv, ses)
    e = pub(env)
    v = refused(why(env.srv, e["id"], ses), "session_detached")
    assert v["seq"] == 1, v  # matched as seq 1: waiting in the ring
    ws2, w2 = await env.srv.ws_auth(env.key, query={"resume": w["resume_token"], "last_seq": 0})
    assert w2["recovered"] is True, w2
    await ws2.events(1)
    await asyncio.sleep(0.2)
    v = why(env.srv, e["id"], ses)
    assert v["delivered"] is True and v["seq"] == 1, v
    await ws2.close()


@aio
async def test_role_of_a_detached_sessions_app(srv, env):
    """An app demoted to publisher while its session waits for a resume: the detached session
    takes the new rights at once (as a socket would), so later events are kept out by the role
    rule, the same predicate the fan-out applies."""
    ws, ses = await subscribed(env)
    await ws.close()
    await gone(srv, ses)
    before = pub(env)  # matched while detached: waits in the ring as seq 1
    refused(why(srv, before["id"], ses), "session_detached")
    srv.admin("PATCH", "/v1/admin/apps/" + env.app["id"], {"role": "publisher"}, expect=200)
    e = pub(env)
    v = refused(why(srv, e["id"], ses), "role")
    assert "publisher" in v["detail"] and v["seq"] is None, v


@aio
async def test_restriction_of_a_users_tracker_list(srv):
    """A RingCentral user whose `trackers` list leaves a tracker out: an event on its own
    extension's topic about that tracker matches the filter but is kept out by the
    restriction rule; one about a listed tracker is delivered."""
    from test_hardening_api import rc_socket, rc_subscribe, rc_notifications, ext_topic
    t = srv.tenant()
    app, publisher = srv.app(t, "app"), srv.app(t, "publisher")
    listed, other = str(random.randint(10 ** 8, 2 * 10 ** 9)), str(random.randint(10 ** 8, 2 * 10 ** 9))
    for tr in (listed, other):
        srv.admin("PUT", "/v1/admin/subjects/" + tr, {"tenant": t, "kind": "tracker"}, expect=201)
    login = rid("u")
    srv.admin("POST", "/v1/admin/users", {"tenant": t, "login": login, "password": "pw-right",
                                          "extension_id": "301", "trackers": [listed]},
              expect=201)
    ws = await rc_socket(srv, app, login)
    await rc_subscribe(ws, ["/restapi/v1.0/account/~/extension/~/message-store"])
    rows = [c for c in srv.admin("GET", "/v1/admin/connections?dialect=ringcentral",
                                 expect=200).json["connections"] if c["tenant"] == t]
    assert len(rows) == 1 and rows[0]["session"], rows
    ses = rows[0]["session"]
    ok, no = srv.publish(publisher["api_key"], [
        {"topic": ext_topic(t, "301"), "type": "it.msg", "subject": listed, "data": {"n": 1}},
        {"topic": ext_topic(t, "301"), "type": "it.msg", "subject": other, "data": {"n": 2}},
    ]).json["events"]
    got = await rc_notifications(ws, 1)
    assert len(got) == 1, got
    v = why(srv, ok["id"], ses)
    assert v["delivered"] is True and v["dialect"] == "ringcentral", v
    v = refused(why(srv, no["id"], ses), "restriction")
    assert other in v["detail"] and v["filters"][0]["matched"] is True, v
    await ws.close()


@aio
async def test_session_expired(servers):
    srv = servers.start("memory", {"HERALD_NATIVE_RECOVERY_WINDOW": 1})
    env = srv.setup()
    ws, ses = await subscribed(env)
    e = pub(env)
    await ws.events(1)
    await ws.close()
    await gone(srv, ses)
    for _ in range(60):  # the window (1 s), then the next tick
        v = why(srv, e["id"], ses)
        if not v["delivered"]:
            break
        await asyncio.sleep(0.1)
    refused(v, "session_expired")
    assert v["seq"] is None and v["filters"] == [], v


@aio
async def test_slow_consumer_cut(servers):
    srv = servers.start("memory", {"HERALD_CORE_SEND_QUEUE_BYTES": 262144,
                                   "HERALD_NATIVE_CLOSE_TIMEOUT": 1})
    env = srv.setup()
    ws, w = await srv.ws_auth(env.key, max_queue=1, read_limit=2 ** 16)
    await ws.subscribe([{"topic": "/**"}])
    pad = "x" * 20000
    for b in range(10):  # ~8 MB to a client that does not read
        await asyncio.to_thread(env.publish, *[env.ev(data={"b": b, "i": i, "pad": pad})
                                               for i in range(40)])
    try:
        while True:
            await ws.recv_raw(timeout=10)
    except (websockets.ConnectionClosed, asyncio.TimeoutError):
        pass
    assert ws.conn.close_code in (4010, 1006), ws.conn.close_code
    await gone(srv, w["session"])
    e = pub(env)
    v = refused(why(srv, e["id"], w["session"]), "slow_consumer")
    assert v["seq"] == 401, v


@aio
async def test_event_pruned(servers):
    srv = servers.start("memory", {"HERALD_CORE_LOG_RETENTION": 1,
                                   "HERALD_CORE_PRUNE_INTERVAL": 1})
    env = srv.setup()
    ws, ses = await subscribed(env, [{"topic": "/nothing"}])
    e = pub(env)
    await asyncio.sleep(3.5)  # older than the retention, and a prune has run
    v = refused(why(srv, e["id"], ses), "event_pruned")
    assert v["filters"] == [], v
    await ws.close()


@aio
async def test_unknown_event_session_and_bad_parameters(env):
    ws, ses = await subscribed(env)
    e = pub(env)
    await ws.events(1)
    r = env.srv.admin("GET", "/v1/admin/why?event=evt_nope&session=" + ses)
    assert r.status == 404 and "event 'evt_nope'" in r.json["error"]["message"], r
    r = env.srv.admin("GET", "/v1/admin/why?event=%s&session=ses_nope" % e["id"])
    assert r.status == 404 and "session 'ses_nope'" in r.json["error"]["message"], r
    r = env.srv.admin("GET", "/v1/admin/why?session=" + ses)
    assert r.status == 400 and "event" in r.json["error"]["message"], r
    r = env.srv.admin("GET", "/v1/admin/why?event=" + e["id"])
    assert r.status == 400 and "session" in r.json["error"]["message"], r
    r = env.srv.http("GET", "/v1/admin/why?event=%s&session=%s" % (e["id"], ses))
    assert r.status == 401, r
    await ws.close()


def connection_of(srv, session):
    rows = srv.admin("GET", "/v1/admin/connections?limit=1000", expect=200).json["connections"]
    return [c for c in rows if c["session"] == session]


@aio
async def test_zoom_session(servers):
    """A non-native dialect: a Zoom stored subscription's socket is a hub session like any."""
    srv = servers.start("memory", {})
    t = srv.tenant()
    app = srv.app(t)
    pub_app = srv.app(t, "publisher")
    sub = srv.admin("POST", "/v1/admin/zoom/subscriptions",
                    {"tenant": t, "events": ["meeting.started"]}, expect=201).json
    r = srv.http("POST", "/zoom/oauth/token?grant_type=client_credentials", body=b"",
                 headers={"Content-Type": "application/x-www-form-urlencoded",
                          "Authorization": "Basic " + __import__("base64").b64encode(
                              ("%s:%s" % (app["client_id"], app["client_secret"])).encode()).decode()})
    assert r.status == 200, r
    url = sub["ws_url"] + "&access_token=" + r.json["access_token"]
    ws = await websockets.connect(url, open_timeout=5, ping_interval=None)
    first = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert first["success"] is True, first
    rows = [c for c in srv.admin("GET", "/v1/admin/connections?dialect=zoom",
                                 expect=200).json["connections"] if c["tenant"] == t]
    assert len(rows) == 1 and rows[0]["session"], rows
    ses = rows[0]["session"]
    ok, no = srv.publish(pub_app["api_key"], [
        {"topic": "/z/1", "type": "meeting.started", "data": {"id": 1}},
        {"topic": "/z/1", "type": "meeting.ended", "data": {"id": 1}}]).json["events"]
    await asyncio.wait_for(ws.recv(), 5)
    v = why(srv, ok["id"], ses)
    assert v["delivered"] is True and v["dialect"] == "zoom", v
    v = refused(why(srv, no["id"], ses), "no_filter_matched")
    assert "type 'meeting.ended'" in v["filters"][0]["why"], v
    await ws.close()


@aio
async def test_cli_why(env):
    ws, w = await env.srv.ws_auth(env.key)
    await ws.subscribe([{"topic": "/it/only"}])
    e = pub(env, "/it/other")
    args = [BIN, "why", "--server", env.srv.base, "--event", e["id"], "--session", w["session"],
            "--admin-key", ADMIN_KEY]
    p = await asyncio.to_thread(subprocess.run, args, capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    v = json.loads(p.stdout)
    refused(v, "no_filter_matched")
    p = await asyncio.to_thread(subprocess.run, args[:5] + ["evt_nope"] + args[6:],
                                capture_output=True, text=True, timeout=20)
    assert p.returncode != 0 and "evt_nope" in p.stderr, (p.returncode, p.stdout, p.stderr)
    await ws.close()
