"""native.md §2.1 publish, §4 event identity (byte-exact data), §5 size limits."""
import json
import re

import pytest

from conftest import aio, rid

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def history_all(srv, key, query=""):
    r = srv.history(key, query)
    return r.json["events"]


def raw_event_data(raw_body, index=0):
    """The exact bytes of `"data":` in the index-th event object of a raw JSON reply."""
    # Events render data last or in the middle; find the balanced object after "data":
    text = raw_body.decode()
    pos = -1
    for _ in range(index + 1):
        pos = text.index('"data":', pos + 1)
    i = pos + len('"data":')
    depth, j, in_str, esc = 0, i, False, False
    while True:
        c = text[j]
        if in_str:
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[i:j + 1]
        j += 1


def test_publish_single_reply_shape(any_srv):
    srv = any_srv
    e = srv.setup()
    r = srv.publish(e.pkey, e.ev(data={"a": 1}))
    assert r.status == 201
    evs = r.json["events"]
    assert len(evs) == 1
    x = evs[0]
    assert set(x) == {"id", "offset", "time", "tenant"}, x
    assert x["id"].startswith("evt_")
    assert isinstance(x["offset"], int)
    assert TIME_RE.match(x["time"]), x["time"]
    assert x["tenant"] == e.tenant
    h = history_all(srv, e.key)
    assert len(h) == 1
    assert h[0]["id"] == x["id"] and h[0]["offset"] == x["offset"] and h[0]["time"] == x["time"]
    assert h[0]["tenant"] == e.tenant and h[0]["topic"] == "/it/x" and h[0]["type"] == "it.test"
    assert h[0]["data"] == {"a": 1}


def test_publish_batch_offsets_increase(any_srv):
    srv = any_srv
    e = srv.setup()
    evs = e.publish(*[e.ev(data={"i": i}) for i in range(5)])
    assert len(evs) == 5
    offs = [x["offset"] for x in evs]
    assert offs == sorted(offs) and len(set(offs)) == 5
    times = [x["time"] for x in evs]
    assert times == sorted(times)
    h = history_all(srv, e.key)
    assert [x["data"]["i"] for x in h] == list(range(5))
    assert [x["offset"] for x in h] == offs


def test_batch_all_or_nothing(any_srv):
    srv = any_srv
    e = srv.setup()
    bad = [e.ev(data={"i": 0}), e.ev(data={"i": 1}), {"topic": "/it/x", "type": "bad type!", "data": {}}]
    r = srv.publish(e.pkey, bad, expect=400)
    assert r.code == "bad_message" and "type" in r.json["error"]["message"], r
    bad = [e.ev(data={"i": 0}), {"topic": "/it/x", "type": "t", "data": {}, "offset": 3}]
    assert srv.publish(e.pkey, bad, expect=400).code == "bad_message"
    bad = [e.ev(), e.ev(retain=True)]
    assert srv.publish(e.pkey, bad, expect=400).code == "bad_message"
    bad = [e.ev(), 5]
    assert srv.publish(e.pkey, bad, expect=400).code == "bad_message"
    assert history_all(srv, e.key) == []


DATA_SPELLINGS = [
    '{"price":1.50,"big":1e3,"neg":-0.0,"e":2E+10,"s":"a\\u00e9\\n"}',
    '{ "a" :  [1 ,2,\t3 ] ,\n "b":{"c":1.0}  }',
    '{"x":100000000000000000000000000001,"y":0.1000000000000000055511151231257827}',
    '{}',
    '{"nested":{"deep":[{"k":"v"},null,true,false]},"u":"\\ud83d\\ude00"}',
]


@pytest.mark.parametrize("data", DATA_SPELLINGS)
@aio
async def test_data_byte_exact(srv, data):
    e = srv.setup()
    ws, _ = await srv.ws_auth(e.key)
    await ws.subscribe([{"topic": "/**"}])
    subj = rid("s")
    body = '{"topic":"/it/raw","type":"raw.t","subject":"%s","retain":true,"data":%s}' % (subj, data)
    srv.publish(e.pkey, body)
    raw = await ws.recv_raw()
    assert json.loads(raw)["type"] == "event"
    assert raw_event_data(raw.encode()) == data, raw
    h = srv.history(e.key)
    assert raw_event_data(h.raw) == data, h.raw
    st = srv.http("GET", "/v1/subjects/%s/state" % subj, token=e.key)
    assert st.status == 200, st
    assert raw_event_data(st.raw) == data, st.raw
    await ws.close()


def test_data_byte_exact_in_batch_sqlite(sqlite_srv):
    srv = sqlite_srv
    e = srv.setup()
    body = '[{"topic":"/it/a","type":"t","data":%s} , {"data":%s,"topic":"/it/b","type":"t"}]' % (
        DATA_SPELLINGS[0], DATA_SPELLINGS[1])
    srv.publish(e.pkey, body)
    h = srv.history(e.key)
    assert raw_event_data(h.raw, 0) == DATA_SPELLINGS[0]
    assert raw_event_data(h.raw, 1) == DATA_SPELLINGS[1]


@pytest.mark.parametrize("field,value", [("id", "evt_mine"), ("offset", 7), ("time", "2026-01-01T00:00:00.000Z")])
def test_server_fields_in_body_400(srv, field, value):
    e = srv.setup()
    ev = e.ev()
    ev[field] = value
    r = srv.publish(e.pkey, ev, expect=400)
    assert r.code == "bad_message" and field in r.json["error"]["message"], r
    assert history_all(srv, e.key) == []


@pytest.mark.parametrize("body,field", [
    ({"type": "t", "data": {}}, "topic"),
    ({"topic": "it/x", "type": "t", "data": {}}, "topic"),
    ({"topic": "/it//x", "type": "t", "data": {}}, "topic"),
    ({"topic": "/" + "a" * 1030, "type": "t", "data": {}}, "topic"),
    ({"topic": "/it/x", "data": {}}, "type"),
    ({"topic": "/it/x", "type": "a b", "data": {}}, "type"),
    ({"topic": "/it/x", "type": "t" * 129, "data": {}}, "type"),
    ({"topic": "/it/x", "type": "t"}, "data"),
    ({"topic": "/it/x", "type": "t", "data": [1]}, "data"),
    ({"topic": "/it/x", "type": "t", "data": "x"}, "data"),
    ({"topic": "/it/x", "type": "t", "data": {}, "subject": "a/b"}, "subject"),
    ({"topic": "/it/x", "type": "t", "data": {}, "subject": "s" * 129}, "subject"),
    ({"topic": "/it/x", "type": "t", "data": {}, "retain": True}, "retain"),
    ({"topic": "/it/x", "type": "t", "data": {}, "retain": "yes"}, "retain"),
    ({"topic": 5, "type": "t", "data": {}}, "topic"),
])
def test_bad_event_400_names_field(srv, body, field):
    e = srv.setup()
    r = srv.publish(e.pkey, body, expect=400)
    assert r.code == "bad_message", r
    assert field in r.json["error"]["message"], r
    assert history_all(srv, e.key) == []


def test_bad_json_body_400(env):
    r = env.srv.publish(env.pkey, '{"topic":', expect=400)
    assert r.json["error"]["code"] in ("bad_json", "bad_message"), r
    r = env.srv.publish(env.pkey, '"just a string"', expect=400)
    assert r.code == "bad_message"
    r = env.srv.publish(env.pkey, '[]', expect=400)
    assert r.code == "bad_message"


def test_tenant_rules(srv):
    e = srv.setup()
    other = srv.tenant()
    # Another tenant: only an admin app.
    r = srv.publish(e.pkey, e.ev(tenant=other), expect=403)
    assert r.code == "forbidden", r
    # An admin app that also publishes.
    adm = srv.app(e.tenant, "admin", scopes=["publish", "history", "subscribe"])
    r = srv.publish(adm["api_key"], e.ev(tenant=other, data={"to": "other"}))
    assert r.json["events"][0]["tenant"] == other
    # Unknown tenant: 400 (even for admin).
    r = srv.publish(adm["api_key"], e.ev(tenant="no-such-tenant-" + rid()), expect=400)
    assert r.code == "bad_message" and "tenant" in r.json["error"]["message"]
    # A batch naming several tenants: 400, nothing stored.
    r = srv.publish(adm["api_key"], [e.ev(tenant=other), e.ev(tenant=e.tenant)], expect=400)
    assert r.code == "bad_message" and "tenant" in r.json["error"]["message"]
    # The own tenant named explicitly is fine.
    srv.publish(e.pkey, e.ev(tenant=e.tenant))
    other_app = srv.app(other, "app")
    h = history_all(srv, other_app["api_key"])
    assert [x["data"] for x in h] == [{"to": "other"}]
    assert len(history_all(srv, e.key)) == 1


def test_app_must_belong_to_tenant(srv):
    e = srv.setup()
    other = srv.tenant()
    other_app = srv.app(other, "app")
    r = srv.publish(e.pkey, e.ev(app=other_app["id"]), expect=400)
    assert r.code == "bad_message" and "app" in r.json["error"]["message"]
    r = srv.publish(e.pkey, e.ev(app="app_doesnotexist"), expect=400)
    assert r.code == "bad_message" and "app" in r.json["error"]["message"]
    ok = srv.publish(e.pkey, e.ev(app=e.app["id"]))
    assert ok.status == 201
    h = history_all(srv, e.key)
    assert len(h) == 1 and h[0]["app"] == e.app["id"]


def test_event_naming_app_visible_only_to_that_app(srv):
    e = srv.setup()
    other_app = srv.app(e.tenant, "app")
    srv.publish(e.pkey, e.ev(app=e.app["id"], data={"for": "a"}))
    srv.publish(e.pkey, e.ev(data={"for": "all"}))
    assert [x["data"]["for"] for x in history_all(srv, e.key)] == ["a", "all"]
    assert [x["data"]["for"] for x in history_all(srv, other_app["api_key"])] == ["all"]


def test_idempotency_key(any_srv):
    srv = any_srv
    e = srv.setup()
    key = rid("idem")
    body = json.dumps(e.ev(data={"n": 1}))
    r1 = srv.publish(e.pkey, body, headers={"Idempotency-Key": key})
    r2 = srv.publish(e.pkey, body, headers={"Idempotency-Key": key})
    assert r2.status == r1.status == 201
    assert r2.raw == r1.raw
    assert len(history_all(srv, e.key)) == 1
    # Same key, another body: 409 conflict, nothing stored.
    r3 = srv.publish(e.pkey, json.dumps(e.ev(data={"n": 2})), headers={"Idempotency-Key": key}, expect=409)
    assert r3.code == "conflict"
    assert len(history_all(srv, e.key)) == 1
    # The key is scoped to the publishing app: another publisher may use it.
    pub2 = srv.app(e.tenant, "publisher")
    r4 = srv.publish(pub2["api_key"], body, headers={"Idempotency-Key": key})
    assert r4.json["events"][0]["id"] != r1.json["events"][0]["id"]
    assert len(history_all(srv, e.key)) == 2


def test_idempotency_key_free_once_answered(env):
    # A retry sent the moment the first reply arrives must get that reply again, never 409
    # "in progress": the key is released before the reply can reach the client (a publish
    # answered later, by the writer's commit, once held it a little past the reply).
    for i in range(40):
        key = rid("again")
        body = json.dumps(env.ev(data={"i": i}))
        r1 = env.srv.publish(env.pkey, body, headers={"Idempotency-Key": key})
        r2 = env.srv.publish(env.pkey, body, headers={"Idempotency-Key": key})
        assert r2.status == r1.status == 201, (i, r2.status)
        assert r2.raw == r1.raw


def test_idempotency_key_bounds(env):
    r = env.srv.publish(env.pkey, env.ev(), headers={"Idempotency-Key": "k" * 129}, expect=400)
    assert r.code == "bad_message"
    ok = env.srv.publish(env.pkey, env.ev(), headers={"Idempotency-Key": "k" * 128})
    assert ok.status == 201


def test_retain_needs_subject_and_sets_state(env):
    srv = env.srv
    r = srv.publish(env.pkey, env.ev(retain=True), expect=400)
    assert "retain" in r.json["error"]["message"]
    s = rid("s")
    srv.publish(env.pkey, env.ev(subject=s, retain=True, data={"v": 1}))
    st = srv.http("GET", "/v1/subjects/%s/state" % s, token=env.key)
    assert st.status == 200 and st.json["data"] == {"v": 1}


class TestLimits:
    @pytest.fixture(scope="class")
    def small(self, servers):
        return servers.start("memory", {"HERALD_NATIVE_MAX_PUBLISH_BYTES": 2048,
                                        "HERALD_NATIVE_MAX_BATCH": 3,
                                        "HERALD_NATIVE_MAX_PATH_BYTES": 300})

    def test_413_over_max_publish_bytes(self, small):
        e = small.setup()
        r = small.publish(e.pkey, e.ev(data={"pad": "x" * 3000}), expect=413)
        assert r.code == "too_large"
        ok = small.publish(e.pkey, e.ev(data={"pad": "x" * 1500}))
        assert ok.status == 201
        assert len(history_all(small, e.key)) == 1

    def test_413_over_max_batch(self, small):
        e = small.setup()
        r = small.publish(e.pkey, [e.ev() for _ in range(4)], expect=413)
        assert r.code == "too_large"
        assert history_all(small, e.key) == []
        assert len(small.publish(e.pkey, [e.ev() for _ in range(3)]).json["events"]) == 3

    def test_414_long_path(self, small):
        e = small.setup()
        r = small.http("GET", "/v1/events?topic=/" + "a" * 400, token=e.key)
        assert r.status == 414, r
        r = small.http("GET", "/v1/events?topic=/" + "a" * 100, token=e.key)
        assert r.status == 200, r

    def test_414_default_8192(self, srv):
        e = srv.setup()
        r = srv.http("GET", "/v1/events?topic=/" + "a" * 9000, token=e.key)
        assert r.status == 414, r
