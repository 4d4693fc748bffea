"""native.md §3.3 requests and replies, §3.4 events, §1 filters, §3.8 errors, §5 limits."""
import asyncio
import json

import pytest

from conftest import aio, rid


def sub_filters(ack):
    return ack["subscription"]["filters"]


@aio
async def test_subscribe_ack_shape(env):
    ws, _ = await env.srv.ws_auth(env.key)
    f = {"topic": "/it/**", "types": ["it.*"], "where": {"k": "v"}}
    ack = await ws.subscribe([f], rid_="r1")
    assert ack["type"] == "ack" and ack["id"] == "r1"
    sub = ack["subscription"]
    assert sub["id"].startswith("sub_")
    assert sub["filters"] == [f]
    assert sub["subjects"] == {}
    await ws.close()


@aio
async def test_events_seq_contiguous_offset_order(env):
    srv = env.srv
    ws, _ = await srv.ws_auth(env.key)
    ack = await ws.subscribe([{"topic": "/it/**"}])
    sid = ack["subscription"]["id"]
    replies = env.publish(*[env.ev(data={"i": i}) for i in range(5)])
    for i in range(5, 10):
        replies += env.publish(env.ev(data={"i": i}))
    evs = await ws.events(10)
    assert [m["seq"] for m in evs] == list(range(1, 11))
    assert all(m["subscription"] == sid for m in evs)
    assert [m["event"]["data"]["i"] for m in evs] == list(range(10))
    assert [m["event"]["offset"] for m in evs] == [r["offset"] for r in replies]
    for m, r in zip(evs, replies):
        e = m["event"]
        assert e["id"] == r["id"] and e["time"] == r["time"] and e["tenant"] == env.tenant
        assert e["topic"] == "/it/x" and e["type"] == "it.test"
    await ws.no_message(0.3)
    await ws.close()


@aio
async def test_filters_wildcards_tilde_types_where(env):
    srv = env.srv
    t = env.tenant
    cases = [
        ({"topic": "/a/*/c"}, ["/a/b/c", "/a/x/c"], ["/a/b/c/d", "/a/c", "/a/b/d"]),
        ({"topic": "/a/**"}, ["/a/b", "/a/b/c/d"], ["/a", "/b/a"]),
        ({"topic": "/**"}, ["/z", "/a/b/c"], []),
        ({"topic": "/ten/~/x"}, ["/ten/%s/x" % t], ["/ten/other/x"]),
    ]
    for flt, yes, no in cases:
        ws, _ = await srv.ws_auth(env.key)
        await ws.subscribe([flt])
        for topic in no + yes:
            env.publish({"topic": topic, "type": "f.t", "data": {"topic": topic}})
        got = [m["event"]["topic"] for m in await ws.events(len(yes))]
        assert got == yes, (flt, got)
        await ws.no_message(0.3)
        await ws.close()

    # types, exact and prefix
    ws, _ = await srv.ws_auth(env.key)
    await ws.subscribe([{"topic": "/**", "types": ["txt.*", "call.start"]}])
    for ty in ["mms.x", "txt.inbound", "call.end", "call.start", "txt"]:
        env.publish({"topic": "/t", "type": ty, "data": {}})
    got = [m["event"]["type"] for m in await ws.events(2)]
    assert got == ["txt.inbound", "call.start"]
    await ws.no_message(0.3)
    await ws.close()


@aio
async def test_filter_where_rules(env):
    ws, _ = await env.srv.ws_auth(env.key)
    await ws.subscribe([{"topic": "/**", "where": {"n": 3, "s": "x"}}])
    datas = ['{"n":3,"s":"x","i":0}', '{"n":3.0,"s":"x","i":1}', '{"n":30e-1,"s":"x","i":2}',
             '{"n":"3","s":"x","i":3}', '{"s":"x","i":4}', '{"n":3,"s":"y","i":5}',
             '{"n":4,"s":"x","i":6}', '{"n":3,"i":7}', '{"n":3,"s":"x","extra":{"a":1},"i":8}']
    for d in datas:
        env.srv.publish(env.pkey, '{"topic":"/w","type":"w","data":%s}' % d)
    got = [m["event"]["data"]["i"] for m in await ws.events(4)]
    assert got == [0, 1, 2, 8]
    await ws.no_message(0.3)
    await ws.close()


@aio
async def test_filter_subjects(env):
    ws, _ = await env.srv.ws_auth(env.key)
    await ws.subscribe([{"topic": "/**", "subjects": ["s1", "s2"]}])
    for s in ["s0", "s1", "s3", "s2"]:
        env.publish(env.ev(subject=s))
    env.publish(env.ev())
    got = [m["event"]["subject"] for m in await ws.events(2)]
    assert got == ["s1", "s2"]
    await ws.no_message(0.3)
    await ws.close()


@aio
async def test_several_filters_one_delivery(env):
    ws, _ = await env.srv.ws_auth(env.key)
    await ws.subscribe([{"topic": "/it/**"}, {"topic": "/it/x"}, {"topic": "/**", "types": ["it.test"]}])
    env.publish(env.ev())
    evs = await ws.events(1)
    assert evs[0]["seq"] == 1
    await ws.no_message(0.4)  # no duplicate
    await ws.close()


@aio
async def test_subscribe_replaces(env):
    ws, _ = await env.srv.ws_auth(env.key)
    a1 = await ws.subscribe([{"topic": "/a"}], rid_="r1")
    a2 = await ws.subscribe([{"topic": "/b"}], rid_="r2")
    assert a1["subscription"]["id"] != a2["subscription"]["id"]
    env.publish({"topic": "/a", "type": "t", "data": {}})
    env.publish({"topic": "/b", "type": "t", "data": {}})
    evs = await ws.events(1)
    assert evs[0]["event"]["topic"] == "/b"
    assert evs[0]["subscription"] == a2["subscription"]["id"]
    await ws.no_message(0.3)
    await ws.close()


@pytest.mark.parametrize("bad", [
    [{"topic": "no-slash"}],
    [{"topic": "/a//b"}],
    [{"topic": "/**/x"}],
    [{"types": ["x"]}],
    [{"topic": "/a", "where": {"k": [1]}}],
    [{"topic": "/a", "where": "k"}],
    [{"topic": "/a", "types": "x"}],
    [],
    ["/a"],
])
@aio
async def test_rejected_subscribe_keeps_previous(env, bad):
    ws, _ = await env.srv.ws_auth(env.key)
    good = await ws.subscribe([{"topic": "/keep"}], rid_="g")
    r = await ws.request({"type": "subscribe", "id": "bad1", "filters": bad})
    assert r["type"] == "error" and r["id"] == "bad1", r
    assert r["code"] in ("invalid_filter", "bad_message"), r
    assert isinstance(r["message"], str) and r["message"]
    env.publish({"topic": "/keep", "type": "t", "data": {}})
    evs = await ws.events(1)
    assert evs[0]["subscription"] == good["subscription"]["id"]
    await ws.close()


@aio
async def test_filter_limits_invalid_filter(servers):
    s = servers.start("memory", {"HERALD_NATIVE_MAX_FILTERS": 2, "HERALD_NATIVE_MAX_SUBJECTS_PER_FILTER": 2,
                                 "HERALD_NATIVE_MAX_WHERE_KEYS": 1, "HERALD_NATIVE_MAX_TYPES_PER_FILTER": 1})
    e = s.setup()
    ws, _ = await s.ws_auth(e.key)
    for i, filters in enumerate([
            [{"topic": "/a"}, {"topic": "/b"}, {"topic": "/c"}],
            [{"topic": "/a", "subjects": ["x", "y", "z"]}],
            [{"topic": "/a", "where": {"a": 1, "b": 2}}],
            [{"topic": "/a", "types": ["a", "b"]}]]):
        r = await ws.request({"type": "subscribe", "id": "x%d" % i, "filters": filters})
        assert r["type"] == "error" and r["code"] == "invalid_filter", (filters, r)
    ok = await ws.subscribe([{"topic": "/a", "subjects": ["x", "y"], "where": {"a": 1}, "types": ["a"]},
                             {"topic": "/b"}])
    assert len(ok["subscription"]["filters"]) == 2
    await ws.close()


@aio
async def test_unsubscribe(env):
    ws, _ = await env.srv.ws_auth(env.key)
    await ws.subscribe([{"topic": "/a"}, {"topic": "/b"}])
    r = await ws.request({"type": "unsubscribe", "id": "u1", "filters": [{"topic": "/a"}]})
    assert r["type"] == "ack" and r["id"] == "u1", r
    env.publish({"topic": "/a", "type": "t", "data": {"i": 0}})
    env.publish({"topic": "/b", "type": "t", "data": {"i": 1}})
    evs = await ws.events(1)
    assert evs[0]["event"]["data"]["i"] == 1 and evs[0]["seq"] == 1
    r = await ws.request({"type": "unsubscribe", "id": "u2"})
    assert r["type"] == "ack" and r["id"] == "u2", r
    env.publish({"topic": "/b", "type": "t", "data": {"i": 2}})
    await ws.no_message(0.5)
    # Subscribing again continues the seq.
    await ws.subscribe([{"topic": "/b"}])
    env.publish({"topic": "/b", "type": "t", "data": {"i": 3}})
    evs = await ws.events(1)
    assert evs[0]["event"]["data"]["i"] == 3 and evs[0]["seq"] == 2
    await ws.close()


@aio
async def test_errors_unknown_type_bad_json_bad_message(env):
    ws, _ = await env.srv.ws_auth(env.key)
    r = await ws.request({"type": "frobnicate", "id": "e1", "extra": 1})
    assert r["type"] == "error" and r["code"] == "unknown_type" and r["id"] == "e1", r
    await ws.send("{not json")
    m = await ws.recv_json()
    assert m["type"] == "error" and m["code"] == "bad_json", m
    for bad in ['[1,2]', '"str"', '{"id":"e2"}', '{"type":5,"id":"e3"}']:
        await ws.send(bad)
        m = await ws.recv_json()
        assert m["type"] == "error" and m["code"] == "bad_message", (bad, m)
        assert m["message"]
    r = await ws.request({"type": "subscribe", "id": "e4", "filters": "nope"})
    assert r["code"] == "bad_message" and "filters" in r["message"], r
    r = await ws.request({"type": "request", "id": "e5", "method": "GET"})
    assert r["code"] == "bad_message" and "path" in r["message"], r
    # Unknown fields are ignored.
    r = await ws.request({"type": "ping", "id": "p1", "whatever": {"x": 1}})
    assert r == {"type": "pong", "id": "p1", "_others": []}, r
    # Still open and working.
    await ws.subscribe([{"topic": "/ok"}])
    await ws.close()


@aio
async def test_ping_pong(env):
    ws, _ = await env.srv.ws_auth(env.key)
    for i in range(3):
        r = await ws.request({"type": "ping", "id": "p%d" % i})
        assert r["type"] == "pong" and r["id"] == "p%d" % i
    await ws.close()


@aio
async def test_request_over_socket(env):
    srv = env.srv
    other = srv.setup()
    env.publish(env.ev(data={"mine": 1}))
    other.publish(other.ev(data={"theirs": 1}))
    ws, _ = await srv.ws_auth(env.key)
    r = await ws.request({"type": "request", "id": "q1", "method": "GET", "path": "/v1/events?limit=10"})
    assert r["type"] == "ack" and r["id"] == "q1" and r["status"] == 200, r
    assert [e["data"] for e in r["body"]["events"]] == [{"mine": 1}]
    assert r["body"]["next_cursor"] is None
    # Publishing needs the publish scope: the socket's identity (app role) lacks it.
    r = await ws.request({"type": "request", "id": "q2", "method": "POST", "path": "/v1/events",
                          "body": env.ev()})
    assert r["type"] == "ack" and r["status"] == 403 and r["body"]["error"]["code"] == "forbidden", r
    # Unknown subject state: 404 in the ack.
    r = await ws.request({"type": "request", "id": "q3", "method": "GET", "path": "/v1/subjects/nope/state"})
    assert r["status"] == 404 and r["body"]["error"]["code"] == "not_found", r
    # Admin routes are not native routes: not reachable over the socket.
    r = await ws.request({"type": "request", "id": "q4", "method": "GET", "path": "/v1/admin/tenants"})
    assert r["type"] == "ack" and r["status"] in (401, 403, 404), r
    assert "tenants" not in (r["body"] or {}), r
    # Bad query over the socket: the REST status.
    r = await ws.request({"type": "request", "id": "q5", "method": "GET", "path": "/v1/events?limit=0"})
    assert r["status"] == 400 and r["body"]["error"]["code"] == "bad_message", r
    await ws.close()


@aio
async def test_request_over_socket_publish_with_scope(srv):
    t = srv.tenant()
    both = srv.app(t, "app", scopes=["publish", "subscribe", "history"])
    ws, _ = await srv.ws_auth(both["api_key"])
    r = await ws.request({"type": "request", "id": "p", "method": "POST", "path": "/v1/events",
                          "body": {"topic": "/s", "type": "t", "data": {"a": 1}}})
    assert r["status"] == 201, r
    ev = r["body"]["events"][0]
    assert ev["tenant"] == t and ev["id"].startswith("evt_")
    h = srv.history(both["api_key"]).json["events"]
    assert [x["id"] for x in h] == [ev["id"]]
    await ws.close()


class TestSmallLimits:
    @pytest.fixture(scope="class")
    def small(self, servers):
        return servers.start("memory", {"HERALD_NATIVE_MAX_INFLIGHT": 1,
                                        "HERALD_NATIVE_MAX_MESSAGE_BYTES": 1024})

    @aio
    async def test_too_many_requests(self, small):
        e = small.setup()
        e.publish(*[e.ev(data={"pad": "x" * 100}) for _ in range(200)])
        ws, _ = await small.ws_auth(e.key)
        n = 30
        frames = [json.dumps({"type": "request", "id": "r%d" % i, "method": "GET",
                              "path": "/v1/events?limit=1000"}) for i in range(n)]
        await asyncio.gather(*(ws.send(f) for f in frames))
        replies = {}
        while len(replies) < n:
            m = await ws.recv_json(timeout=10)
            assert m["id"] not in replies, m
            replies[m["id"]] = m
        errs = [m for m in replies.values() if m["type"] == "error"]
        acks = [m for m in replies.values() if m["type"] == "ack"]
        assert errs, "no too_many_requests with max_inflight 1 and %d requests in one burst" % n
        assert all(m["code"] == "too_many_requests" for m in errs), errs
        assert acks and all(m["status"] == 200 for m in acks)
        # After the burst, requests work again.
        r = await ws.request({"type": "ping", "id": "after"})
        assert r["type"] == "pong"
        r = await ws.request({"type": "request", "id": "after2", "method": "GET", "path": "/v1/events?limit=1"})
        assert r["type"] == "ack" and r["status"] == 200
        await ws.close()

    @aio
    async def test_frame_over_max_message_bytes_1009(self, small):
        e = small.setup()
        ws, _ = await small.ws_auth(e.key)
        r = await ws.request({"type": "ping", "id": "x" * 900})  # under the bound: fine
        assert r["type"] == "pong"
        await ws.send(json.dumps({"type": "ping", "id": "x" * 2000}))
        code, _, msgs = await ws.closed()
        assert code == 1009, (code, msgs)
