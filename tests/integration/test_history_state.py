"""native.md §2 GET /v1/events, state, health; §4 history bounds, state rules."""
import re
import time
import urllib.parse

import pytest

from conftest import rid


def q(**kw):
    return urllib.parse.urlencode(kw)


def hist(srv, key, **kw):
    return srv.history(key, q(**kw)).json


def test_history_paging_with_cursor(any_srv):
    srv = any_srv
    e = srv.setup()
    e.publish(*[e.ev(data={"i": i}) for i in range(7)])
    page = hist(srv, e.key, limit=3)
    got = [x["data"]["i"] for x in page["events"]]
    assert got == [0, 1, 2]
    assert isinstance(page["next_cursor"], str) and page["next_cursor"]
    seen = list(got)
    cursor = page["next_cursor"]
    for _ in range(10):
        # Parameters beside the cursor are ignored (the cursor carries the query).
        page = hist(srv, e.key, cursor=cursor, limit=1000, topic="/nothing")
        seen += [x["data"]["i"] for x in page["events"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(range(7))
    assert cursor is None
    # Everything at once: next_cursor null.
    page = hist(srv, e.key)
    assert len(page["events"]) == 7 and page["next_cursor"] is None


def test_history_oldest_first_and_default_limit_100(srv):
    e = srv.setup()
    e.publish(*[e.ev(data={"i": i}) for i in range(105)])
    page = hist(srv, e.key)
    assert [x["data"]["i"] for x in page["events"]] == list(range(100))
    assert page["next_cursor"] is not None
    rest = hist(srv, e.key, cursor=page["next_cursor"])
    assert [x["data"]["i"] for x in rest["events"]] == list(range(100, 105))


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "abc"])
def test_history_limit_bounds(env, limit):
    r = env.srv.history(env.key, q(limit=limit), expect=400)
    assert r.code == "bad_message"


def test_history_limit_1000_ok(env):
    assert env.srv.history(env.key, q(limit=1000)).json["events"] == []


def test_history_since_offset(any_srv):
    srv = any_srv
    e = srv.setup()
    evs = e.publish(*[e.ev(data={"i": i}) for i in range(5)])
    page = hist(srv, e.key, since="offset:%d" % evs[1]["offset"])
    assert [x["data"]["i"] for x in page["events"]] == [2, 3, 4]
    page = hist(srv, e.key, since="offset:%d" % evs[4]["offset"])
    assert page["events"] == []


def test_history_since_time_and_until_exclusive(any_srv):
    srv = any_srv
    e = srv.setup()
    first = e.publish(e.ev(data={"i": 0}))[0]
    time.sleep(0.02)
    second = e.publish(e.ev(data={"i": 1}))[0]
    time.sleep(0.02)
    third = e.publish(e.ev(data={"i": 2}))[0]
    assert first["time"] < second["time"] < third["time"]
    # since is inclusive (time >= since).
    page = hist(srv, e.key, since=second["time"])
    assert [x["data"]["i"] for x in page["events"]] == [1, 2]
    # until is exclusive.
    page = hist(srv, e.key, until=second["time"])
    assert [x["data"]["i"] for x in page["events"]] == [0]
    page = hist(srv, e.key, since=first["time"], until=third["time"])
    assert [x["data"]["i"] for x in page["events"]] == [0, 1]


@pytest.mark.parametrize("param,value", [("since", "yesterday"), ("since", "offset:x"), ("until", "nope")])
def test_history_bad_bounds_400(env, param, value):
    r = env.srv.history(env.key, q(**{param: value}), expect=400)
    assert r.code == "bad_message"


def test_history_bad_cursor_400(env):
    r = env.srv.history(env.key, q(cursor="!!notacursor"), expect=400)
    assert r.code == "bad_message"


def test_history_filters(any_srv):
    srv = any_srv
    e = srv.setup()
    e.publish(
        {"topic": "/acc/1/sms", "type": "txt.inbound", "subject": "m1", "data": {"i": 0}},
        {"topic": "/acc/1/sms", "type": "txt.status", "subject": "m2", "data": {"i": 1}},
        {"topic": "/acc/2/sms", "type": "txt.inbound", "subject": "m1", "data": {"i": 2}},
        {"topic": "/acc/1/voice/x", "type": "call.start", "data": {"i": 3}},
        {"topic": "/other", "type": "x", "data": {"i": 4}},
    )

    def ids(**kw):
        return [x["data"]["i"] for x in hist(srv, e.key, **kw)["events"]]

    assert ids() == [0, 1, 2, 3, 4]
    assert ids(topic="/acc/1/sms") == [0, 1]
    assert ids(topic="/acc/*/sms") == [0, 1, 2]
    assert ids(topic="/acc/**") == [0, 1, 2, 3]
    assert ids(topic="/**") == [0, 1, 2, 3, 4]
    assert ids(types="txt.inbound") == [0, 2]
    assert ids(types="txt.*") == [0, 1, 2]
    assert ids(types="call.start,x") == [3, 4]
    assert ids(subject="m1") == [0, 2]
    assert ids(subject="m1", topic="/acc/2/*") == [2]


def test_history_bad_topic_pattern_400(env):
    r = env.srv.history(env.key, q(topic="no-slash"), expect=400)
    assert r.code == "bad_message"


def test_history_tilde_is_own_tenant(srv):
    e = srv.setup()
    e.publish({"topic": "/t/%s/x" % e.tenant, "type": "t", "data": {"i": 0}},
              {"topic": "/t/zzz/x", "type": "t", "data": {"i": 1}})
    assert [x["data"]["i"] for x in hist(srv, e.key, topic="/t/~/x")["events"]] == [0]


def test_admin_history_spans_tenants_and_narrows(srv):
    a, b = srv.setup(), srv.setup()
    a.publish(a.ev(data={"t": "a"}))
    b.publish(b.ev(data={"t": "b"}, app=b.app["id"]))
    adm = srv.app(a.tenant, "admin")
    evs, page = [], hist(srv, adm["api_key"], topic="/it/**", limit=1000)
    for _ in range(50):
        evs += page["events"]
        if page["next_cursor"] is None:
            break
        page = hist(srv, adm["api_key"], cursor=page["next_cursor"])
    assert page["next_cursor"] is None
    mine = [x for x in evs if x["tenant"] in (a.tenant, b.tenant)]
    assert [x["data"]["t"] for x in mine] == ["a", "b"]
    page = hist(srv, adm["api_key"], tenant=b.tenant)
    assert [x["data"]["t"] for x in page["events"]] == ["b"]


def test_state_endpoint(any_srv):
    srv = any_srv
    e = srv.setup()
    s = rid("s")
    e.publish(e.ev(subject=s, retain=True, data={"v": 1}))
    last = e.publish(e.ev(subject=s, retain=True, data={"v": 2}))[0]
    e.publish(e.ev(subject=s, data={"v": 3}))  # not retained: state unchanged
    r = srv.http("GET", "/v1/subjects/%s/state" % s, token=e.key)
    assert r.status == 200, r
    st = r.json
    assert st["id"] == last["id"] and st["offset"] == last["offset"] and st["time"] == last["time"]
    assert st["subject"] == s and st["tenant"] == e.tenant and st["data"] == {"v": 2}
    assert st["topic"] == "/it/x" and st["type"] == "it.test"
    assert "type" in st and "event" not in st  # the event object itself


def test_state_404s(srv):
    e = srv.setup()
    other = srv.setup()
    s_plain = rid("s")
    s_ret = rid("s")
    e.publish(e.ev(subject=s_plain))
    e.publish(e.ev(subject=s_ret, retain=True))

    def st(key, subj, query=""):
        return srv.http("GET", "/v1/subjects/%s/state%s" % (subj, query), token=key)

    assert st(e.key, s_ret).status == 200
    for subj in ["nope_" + rid(), s_plain]:
        r = st(e.key, subj)
        assert r.status == 404 and r.code == "not_found", r
    r = st(other.key, s_ret)  # other tenant's
    assert r.status == 404 and r.code == "not_found", r
    r = st(other.key, s_ret, "?tenant=" + e.tenant)  # non-admin cannot name a tenant
    assert r.status == 404, r
    adm = srv.app(other.tenant, "admin")
    assert st(adm["api_key"], s_ret).status == 404  # default: its own tenant
    r = st(adm["api_key"], s_ret, "?tenant=" + e.tenant)
    assert r.status == 200 and r.json["tenant"] == e.tenant, r


def test_healthz_readyz(srv):
    r = srv.http("GET", "/healthz")
    assert r.status == 200
    r = srv.http("GET", "/readyz")
    assert r.status == 200


def test_metrics_prometheus(srv):
    e = srv.setup()
    e.publish(e.ev())
    r = srv.http("GET", "/metrics")
    assert r.status == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.raw.decode()
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.eE+-]+|NaN|[+-]Inf$')
    types = {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            types[name] = kind
            continue
        assert sample.match(line), line
    assert types, text
    m = re.search(r"^herald_events_published_total (\S+)$", text, re.M)
    assert m and float(m.group(1)) >= 1, text


def test_unknown_path_404_and_errors_shape(srv):
    r = srv.http("GET", "/v1/nope")
    assert r.status == 404 and r.code == "not_found", r
