"""GET /v1/admin/connections (issue #14 item 3) on the real binary: each row's subscription,
seq, queued bytes, deliveries and last activity; keyset pages; tenant/app/dialect filters; 400s.
"""
import asyncio
import urllib.parse

from conftest import aio


def page(srv, **q):
    r = srv.admin("GET", "/v1/admin/connections?" + urllib.parse.urlencode(q))
    assert r.status == 200, r
    return r.json


def all_pages(srv, **q):
    rows, cursor, pages = [], None, 0
    while True:
        qq = dict(q)
        if cursor:
            qq["cursor"] = cursor
        p = page(srv, **qq)
        pages += 1
        rows += p["connections"]
        cursor = p["next_cursor"]
        if cursor is None:
            return rows, pages


@aio
async def test_row_fields(env):
    ws, w = await env.srv.ws_auth(env.key)
    await ws.subscribe([{"topic": "/it/**", "types": ["it.a"]}, {"topic": "/~/x"}])
    for _ in range(3):
        env.publish(env.ev("/y", "it.a"))
    await ws.events(3)
    rows = page(env.srv, tenant=env.tenant)["connections"]
    assert len(rows) == 1, rows
    c = rows[0]
    assert c["session"] == w["session"] and c["dialect"] == "native", c
    assert c["subscriptions"] == [{"id": c["subscriptions"][0]["id"], "filters": [
        {"topic": "/it/**", "types": ["it.a"]}, {"topic": "/%s/x" % env.tenant}]}], c
    assert c["seq"] == 3 and c["delivered"] == 3 and c["queued_bytes"] == 0, c
    assert c["last_activity"] >= c["opened_at"], c
    # Not subscribed: no subscriptions, seq 0.
    ws2, w2 = await env.srv.ws_auth(env.key)
    rows = {r["session"]: r for r in page(env.srv, tenant=env.tenant)["connections"]}
    assert rows[w2["session"]]["subscriptions"] == [] and rows[w2["session"]]["seq"] == 0, rows
    await ws.close()
    await ws2.close()


@aio
async def test_pagination_has_no_duplicates_or_gaps(srv):
    env = srv.setup()
    socks = [(await srv.ws_auth(env.key))[0] for _ in range(23)]
    rows, pages = all_pages(srv, tenant=env.tenant, limit=5)
    ids = [r["id"] for r in rows]
    assert len(ids) == 23 and len(set(ids)) == 23 and pages == 5, (len(ids), pages)
    assert ids == sorted(ids)
    # Sockets that open and close between pages shift nothing: each row present throughout is
    # listed exactly once.
    first = page(srv, tenant=env.tenant, limit=10)
    await socks[0].close()
    socks.append((await srv.ws_auth(env.key))[0])
    await asyncio.sleep(0.2)
    rest, _ = all_pages(srv, tenant=env.tenant, limit=10, cursor=first["next_cursor"])
    seen = [r["id"] for r in first["connections"]] + [r["id"] for r in rest]
    assert len(seen) == len(set(seen)), seen
    now, _ = all_pages(srv, tenant=env.tenant)
    stayed = set(ids) & {r["id"] for r in now}
    assert len(stayed) == 22 and stayed <= set(seen), stayed - set(seen)
    for s in socks:
        await s.close()


@aio
async def test_filters(srv):
    env, other = srv.setup(), srv.setup()
    app2 = srv.app(env.tenant)
    a, _ = await srv.ws_auth(env.key)
    b, _ = await srv.ws_auth(app2["api_key"])
    c, _ = await srv.ws_auth(other.key)
    rows = page(srv, tenant=env.tenant)["connections"]
    assert {r["app"] for r in rows} == {env.app["id"], app2["id"]}, rows
    rows = page(srv, app=app2["id"])["connections"]
    assert [r["app"] for r in rows] == [app2["id"]], rows
    rows = page(srv, tenant=other.tenant, dialect="native")["connections"]
    assert len(rows) == 1 and rows[0]["tenant"] == other.tenant, rows
    assert page(srv, tenant=other.tenant, dialect="zoom")["connections"] == []
    for s in (a, b, c):
        await s.close()


def test_bad_parameters(srv):
    for q, name in [("limit=0", "limit"), ("limit=1001", "limit"), ("limit=5x", "limit"),
                    ("limit=+5", "limit"), ("cursor=!!", "cursor"), ("dialect=bogus", "dialect"),
                    ("tenant=a%20b", "tenant"), ("app=", "app")]:
        r = srv.admin("GET", "/v1/admin/connections?" + q)
        assert r.status == 400 and name in r.json["error"]["message"], (q, r)
    assert srv.http("GET", "/v1/admin/connections").status == 401
