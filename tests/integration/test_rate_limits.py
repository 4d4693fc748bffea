"""Rate limits of issue "Delivery guarantees" §4: publish rate per app (429 + Retry-After) and
failed authentications per address (429 on REST, too_many_requests + 4029 on a socket; a
valid credential is still accepted, issue 13 §3)."""
from conftest import aio


def test_publish_rate_is_enforced_per_app(servers):
    s = servers.start("memory", {"HERALD_NATIVE_PUBLISH_RATE": 5, "HERALD_NATIVE_PUBLISH_BURST": 10})
    e = s.setup()
    batch = [e.ev(data={"i": i}) for i in range(10)]
    assert s.publish(e.pkey, batch).status == 201          # the burst
    r = s.publish(e.pkey, [e.ev()], expect=None)             # over it
    assert r.status == 429 and r.code == "too_many_requests", r
    assert int(r.headers["retry-after"]) >= 1
    # Nothing of the refused publish was stored.
    assert len(s.history(e.key, "limit=100").json["events"]) == 10
    # Another app of the tenant has its own bucket.
    other = s.app(e.tenant, "publisher")
    assert s.publish(other["api_key"], [e.ev()]).status == 201


@aio
async def test_failed_authentications_are_rate_limited_per_address(servers):
    s = servers.start("memory", {"HERALD_NATIVE_AUTH_FAIL_RATE": 1, "HERALD_NATIVE_AUTH_FAIL_BURST": 3})
    e = s.setup()
    for _ in range(3):
        assert s.history("hk_wrong", expect=None).status == 401
    r = s.history("hk_wrong", expect=None)  # past the limit, until it refills
    assert r.status == 429 and r.code == "too_many_requests", r
    assert int(r.headers["retry-after"]) >= 1
    # Issue 13 §3: a valid key is never refused for others' failures from the same address.
    assert s.history(e.key, expect=None).status == 200
    ws, welcome = await s.ws_auth(e.key)
    await ws.close()
    ws = await s.ws(headers={"Authorization": "Bearer hk_wrong"})
    code, _, msgs = await ws.closed()
    assert code == 4029, (code, msgs)
    assert msgs and msgs[0]["type"] == "error" and msgs[0]["code"] == "too_many_requests", msgs
