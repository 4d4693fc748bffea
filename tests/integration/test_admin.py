"""design.md §4 admin API and its effect on the native protocol (subjects, connections,
app deletion, key rotation)."""
import asyncio
import json
import time

import pytest

from conftest import ADMIN_KEY, aio, rid


def test_admin_needs_key(srv):
    for method, path in [("GET", "/v1/admin/tenants"), ("POST", "/v1/admin/tenants"),
                         ("GET", "/v1/admin/connections")]:
        r = srv.http(method, path, body={} if method == "POST" else None)
        assert r.status == 401 and r.code == "auth_failed", r
        r = srv.http(method, path, body={} if method == "POST" else None, token="wrong" + ADMIN_KEY)
        assert r.status == 401 and r.code == "auth_failed", r
    # An app's API key is not the admin key.
    e = srv.setup()
    assert srv.http("GET", "/v1/admin/tenants", token=e.key).status == 401


def test_admin_body_limit_413(srv):
    r = srv.admin("POST", "/v1/admin/tenants", {"id": rid(), "pad": "x" * 70000})
    assert r.status == 413 and r.code == "too_large", r


def test_tenants(srv):
    t = rid("ten")
    r = srv.admin("POST", "/v1/admin/tenants", {"id": t}, expect=201)
    assert r.json["id"] == t and r.json["parent"] is None
    assert srv.admin("POST", "/v1/admin/tenants", {"id": t}).status == 409
    for bad in [{"id": "has space"}, {"id": ""}, {"id": "x" * 65}, {}, {"id": 5}]:
        r = srv.admin("POST", "/v1/admin/tenants", bad)
        assert r.status == 400 and r.code == "bad_message", (bad, r)
    r = srv.admin("POST", "/v1/admin/tenants", {"id": rid(), "parent": "no-such-" + rid()})
    assert r.status == 404 and r.code == "not_found", r
    c = rid("child")
    r = srv.admin("POST", "/v1/admin/tenants", {"id": c, "parent": t}, expect=201)
    assert r.json["parent"] == t
    g = srv.admin("GET", "/v1/admin/tenants/" + c, expect=200).json
    assert g["id"] == c and g["parent"] == t
    assert srv.admin("GET", "/v1/admin/tenants/nope-" + rid()).status == 404
    # list with paging
    ids, cursor = [], None
    for _ in range(200):
        r = srv.admin("GET", "/v1/admin/tenants?limit=2" + ("&cursor=" + cursor if cursor else ""), expect=200)
        assert len(r.json["tenants"]) <= 2
        ids += [x["id"] for x in r.json["tenants"]]
        cursor = r.json["next_cursor"]
        if cursor is None:
            break
    assert t in ids and c in ids and len(ids) == len(set(ids))


def test_apps(srv):
    t = srv.tenant()
    r = srv.admin("POST", "/v1/admin/apps", {"tenant": t, "name": "n1", "role": "app"}, expect=201).json
    assert set(r) >= {"id", "tenant", "name", "role", "scopes", "client_id", "client_secret", "api_key"}
    assert r["id"].startswith("app_") and r["tenant"] == t and r["role"] == "app"
    assert sorted(r["scopes"]) == ["history", "subscribe"]
    p = srv.admin("POST", "/v1/admin/apps", {"tenant": t, "name": "p", "role": "publisher"}, expect=201).json
    assert p["scopes"] == ["publish"]
    s = srv.admin("POST", "/v1/admin/apps", {"tenant": t, "name": "s", "role": "app", "scopes": ["history"]},
                  expect=201).json
    assert s["scopes"] == ["history"]
    g = srv.admin("POST", "/v1/admin/apps", {"tenant": t, "name": "g", "role": "app", "api_key_format": "sgw"},
                  expect=201).json
    assert g["api_key"].startswith("sgw_") and len(g["api_key"]) == 36
    for bad in [{"tenant": t, "name": "x", "role": "root"},
                {"tenant": t, "role": "app"},
                {"tenant": t, "name": "x", "role": "publisher", "scopes": ["publish", "subscribe"]},
                {"tenant": t, "name": "x", "role": "app", "scopes": ["fly"]},
                {"tenant": t, "name": "x", "role": "app", "api_key_format": "weird"}]:
        rr = srv.admin("POST", "/v1/admin/apps", bad)
        assert rr.status == 400 and rr.code == "bad_message", (bad, rr)
    rr = srv.admin("POST", "/v1/admin/apps", {"tenant": "nope-" + rid(), "name": "x", "role": "app"})
    assert rr.status == 404, rr
    got = srv.admin("GET", "/v1/admin/apps/" + r["id"], expect=200).json
    assert got["id"] == r["id"] and "client_secret" not in got and "api_key" not in got
    lst = srv.admin("GET", "/v1/admin/apps?tenant=" + t, expect=200).json
    assert sorted(a["id"] for a in lst["apps"]) == sorted([r["id"], p["id"], s["id"], g["id"]])
    assert all("client_secret" not in a and "api_key" not in a for a in lst["apps"])
    assert lst["next_cursor"] is None
    assert srv.admin("DELETE", "/v1/admin/apps/" + s["id"]).status == 204
    assert srv.admin("GET", "/v1/admin/apps/" + s["id"]).status == 404
    assert srv.admin("DELETE", "/v1/admin/apps/" + s["id"]).status == 404
    # Deleted app's credentials fail.
    assert srv.history(s["api_key"], expect=None).status == 401


def test_users(srv):
    t = srv.tenant()
    u = srv.admin("POST", "/v1/admin/users", {"tenant": t, "login": "alice", "password": "pw"}, expect=201).json
    assert u["id"].startswith("usr_") and u["tenant"] == t and u["login"] == "alice"
    assert u["name"] == "alice" and u["blocked"] is False and u["admin"] is False
    assert u["time_zone"] == "UTC" and u["trackers"] is None and u["password_set"] is True
    assert u["extension_number"] == u["extension_id"] and u["extension_id"]
    assert "password" not in u and "password_hash" not in u
    assert srv.admin("POST", "/v1/admin/users", {"tenant": t, "login": "alice"}).status == 409
    assert srv.admin("POST", "/v1/admin/users", {"tenant": t, "login": "bob",
                                                 "extension_id": u["extension_id"]}).status == 409
    p = srv.admin("PATCH", "/v1/admin/users/" + u["id"], {"name": "Alice A", "admin": True}, expect=200).json
    assert p["name"] == "Alice A" and p["admin"] is True and p["login"] == "alice"
    assert srv.admin("PATCH", "/v1/admin/users/" + u["id"], {"tenant": "x"}).status == 400
    assert srv.admin("GET", "/v1/admin/users/" + u["id"], expect=200).json["name"] == "Alice A"
    lst = srv.admin("GET", "/v1/admin/users?tenant=" + t, expect=200).json
    assert [x["id"] for x in lst["users"]] == [u["id"]]
    assert srv.admin("DELETE", "/v1/admin/users/" + u["id"]).status == 204
    assert srv.admin("GET", "/v1/admin/users/" + u["id"]).status == 404


def test_subjects_crud(srv):
    t = srv.tenant()
    s = rid("sub")
    r = srv.admin("PUT", "/v1/admin/subjects/" + s, {"tenant": t, "kind": "device"})
    assert r.status == 201, r
    rec = r.json
    assert rec["id"] == s and rec["tenant"] == t and rec["kind"] == "device" and rec["label"] == s
    assert rec["attrs"] == {} and rec["blocked"] is False and rec["corrupted"] is False and rec["created_at"]
    r = srv.admin("PUT", "/v1/admin/subjects/" + s, {"tenant": t, "label": "L", "attrs": {"a": 1}})
    assert r.status == 200 and r.json["label"] == "L" and r.json["attrs"] == {"a": 1} and r.json["kind"] == "device"
    r = srv.admin("PUT", "/v1/admin/subjects/" + s, {"tenant": t, "kind": "other"})
    assert r.status == 409 and r.code == "conflict", r
    r = srv.admin("PUT", "/v1/admin/subjects/" + rid(), {"tenant": t, "kind": "BAD KIND"})
    assert r.status == 400, r
    r = srv.admin("PUT", "/v1/admin/subjects/" + rid(), {"tenant": t})
    assert r.status == 400, r
    g = srv.admin("GET", "/v1/admin/subjects/%s?tenant=%s" % (s, t), expect=200).json
    assert g["label"] == "L"
    assert srv.admin("GET", "/v1/admin/subjects/" + s, expect=200).json["id"] == s  # one tenant holds it
    # Another tenant with the same id: unrelated, and the tenant-less GET is ambiguous (400).
    t2 = srv.tenant()
    assert srv.admin("PUT", "/v1/admin/subjects/" + s, {"tenant": t2, "kind": "x"}).status == 201
    assert srv.admin("GET", "/v1/admin/subjects/" + s).status == 400
    lst = srv.admin("GET", "/v1/admin/subjects?tenant=%s&kind=device" % t, expect=200).json
    assert [x["id"] for x in lst["subjects"]] == [s]
    assert srv.admin("DELETE", "/v1/admin/subjects/%s?tenant=%s" % (s, t)).status == 204
    g = srv.admin("GET", "/v1/admin/subjects/%s?tenant=%s" % (s, t), expect=200).json
    assert g["corrupted"] is True
    r = srv.admin("PUT", "/v1/admin/subjects/" + s, {"tenant": t, "label": "again"})
    assert r.status == 409 and r.code == "already_corrupted", r
    # The other tenant's subject of the same id is untouched.
    assert srv.admin("GET", "/v1/admin/subjects/%s?tenant=%s" % (s, t2)).json["corrupted"] is False
    assert srv.admin("GET", "/v1/admin/subjects/nope%s?tenant=%s" % (rid(), t)).status == 404


@aio
async def test_corrupted_subject(srv):
    e = srv.setup()
    s = rid("c")
    e.publish(e.ev(subject=s, retain=True, data={"v": 1}))
    assert srv.http("GET", "/v1/subjects/%s/state" % s, token=e.key).status == 200
    srv.admin("PUT", "/v1/admin/subjects/" + s, {"tenant": e.tenant, "kind": "device", "corrupted": True},
              expect=201)
    before = srv.history(e.key).json["events"]
    r = srv.publish(e.pkey, e.ev(subject=s), expect=409)
    assert r.code == "subject_corrupted", r
    r = srv.publish(e.pkey, [e.ev(data={"batch": 1}), e.ev(subject=s)], expect=409)  # all-or-nothing
    assert r.code == "subject_corrupted"
    assert srv.history(e.key).json["events"] == before
    r = srv.http("GET", "/v1/subjects/%s/state" % s, token=e.key)
    assert r.status == 404, r
    ws, _ = await srv.ws_auth(e.key)
    ack = await ws.subscribe([{"topic": "/**", "subjects": [s]}])
    assert ack["subscription"]["subjects"] == {s: "unknown"}
    await ws.close()
    # A publish in another tenant naming the same subject id is unaffected.
    other = srv.setup()
    assert srv.publish(other.pkey, other.ev(subject=s)).status == 201


@aio
async def test_blocked_subject(srv):
    e = srv.setup()
    s = rid("b")
    e.publish(e.ev(subject=s, retain=True, data={"v": "before"}))
    srv.admin("PUT", "/v1/admin/subjects/" + s, {"tenant": e.tenant, "kind": "device", "blocked": True},
              expect=201)
    ws, _ = await srv.ws_auth(e.key)
    ack = await ws.subscribe([{"topic": "/**", "subjects": [s, "never_" + rid()]}])
    st = ack["subscription"]["subjects"]
    assert st[s] == "blocked" and list(st.values()).count("unknown") == 1, st
    r = srv.publish(e.pkey, e.ev(subject=s, retain=True, data={"v": "during"}))
    assert r.status == 201  # stored
    await ws.no_message(0.6)  # not delivered to an app-role principal
    assert srv.http("GET", "/v1/subjects/%s/state" % s, token=e.key).status == 404
    assert [x["data"]["v"] for x in srv.history(e.key).json["events"]] == []
    # Stored and retained: an admin sees it.
    adm = srv.app(e.tenant, "admin")
    h = srv.history(adm["api_key"], "tenant=" + e.tenant).json["events"]
    assert [x["data"]["v"] for x in h] == ["before", "during"]
    st = srv.http("GET", "/v1/subjects/%s/state" % s, token=adm["api_key"])
    assert st.status == 200 and st.json["data"] == {"v": "during"}
    # Unblock: delivery resumes.
    srv.admin("PUT", "/v1/admin/subjects/" + s, {"tenant": e.tenant, "blocked": False}, expect=200)
    e.publish(e.ev(subject=s, data={"v": "after"}))
    evs = await ws.events(1)
    assert evs[0]["event"]["data"] == {"v": "after"} and evs[0]["seq"] == 1
    await ws.close()


@aio
async def test_connections_list_and_delete(srv):
    e = srv.setup()
    ws, w = await srv.ws_auth(e.key)
    await ws.subscribe([{"topic": "/**"}])
    conns = srv.admin("GET", "/v1/admin/connections?tenant=" + e.tenant, expect=200).json["connections"]
    assert len(conns) == 1, conns
    c = conns[0]
    for k in ["id", "dialect", "node", "tenant", "app", "user", "login", "session", "remote", "opened_at"]:
        assert k in c, (k, c)
    assert c["id"].startswith("con_") and c["dialect"] == "native" and c["tenant"] == e.tenant
    assert c["app"] == e.app["id"] and c["user"] is None and c["login"] is None
    assert c["session"] == w["session"] and c["remote"].startswith("127.0.0.1")
    all_conns = srv.admin("GET", "/v1/admin/connections", expect=200).json["connections"]
    assert c["id"] in [x["id"] for x in all_conns]
    assert srv.admin("DELETE", "/v1/admin/connections/" + c["id"]).status == 204
    code, reason, msgs = await ws.closed()
    assert code == 1000 and reason == "closed by admin", (code, reason, msgs)
    assert srv.admin("DELETE", "/v1/admin/connections/" + c["id"]).status == 404
    # Its session stays resumable.
    e.publish(e.ev(data={"i": 1}))
    ws2, w2 = await srv.ws_auth(e.key, query={"resume": w["resume_token"], "last_seq": 0})
    assert w2["recovered"] is True and w2["session"] == w["session"], w2
    evs = await ws2.events(1)
    assert evs[0]["seq"] == 1 and evs[0]["event"]["data"] == {"i": 1}
    await ws2.close()


@aio
async def test_app_delete_closes_sockets_4001(srv):
    e = srv.setup()
    socks = []
    for how in ["key", "token", "ws_token"]:
        if how == "key":
            ws, w = await srv.ws_auth(e.key)
        elif how == "token":
            ws, w = await srv.ws_auth(srv.access_token(e.app))
        else:
            ws = await srv.ws(query={"access_token": srv.ws_token(e.app)})
            w = await ws.recv_json()
        socks.append((ws, w))
    t0 = time.monotonic()
    assert srv.admin("DELETE", "/v1/admin/apps/" + e.app["id"]).status == 204
    for ws, _ in socks:
        code, _, msgs = await ws.closed(timeout=3)
        assert code == 4001, (code, msgs)
        assert [(m["type"], m["code"]) for m in msgs] == [("error", "auth_failed")], msgs
    assert time.monotonic() - t0 <= 1.5
    # Credentials gone.
    assert srv.history(e.key, expect=None).status == 401
    ws = await srv.ws(headers={"Authorization": "Bearer " + e.key})
    code, _, msgs = await ws.closed()
    assert code == 4001


@aio
async def test_rotate_key(srv):
    e = srv.setup()
    ws_key, _ = await srv.ws_auth(e.key)
    ws_tok, _ = await srv.ws_auth(srv.access_token(e.app))
    r = srv.admin("POST", "/v1/admin/apps/%s/rotate-key" % e.app["id"])
    assert r.status == 200, r
    new = r.json["api_key"]
    assert new != e.key and new.startswith("hk_")
    # The socket authenticated with the old key closes 4001 within 1 s.
    code, _, msgs = await ws_key.closed(timeout=3)
    assert code == 4001 and [m["code"] for m in msgs] == ["auth_failed"], (code, msgs)
    # Old key fails everywhere; new key works.
    r = srv.history(e.key, expect=None)
    assert r.status == 401 and r.code == "auth_failed"
    ws = await srv.ws()
    await ws.send({"type": "auth", "api_key": e.key})
    code, _, msgs = await ws.closed()
    assert code == 4001 and msgs[0]["code"] == "auth_failed"
    assert srv.history(new).status == 200
    ws2, _ = await srv.ws_auth(new)
    # The token-authenticated socket is not the old key's: it stays open.
    r = await ws_tok.request({"type": "ping", "id": "p"})
    assert r["type"] == "pong"
    await ws2.close()
    await ws_tok.close()
    r = srv.admin("POST", "/v1/admin/apps/app_nope%s/rotate-key" % rid())
    assert r.status == 404
