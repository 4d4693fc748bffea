"""Cross-tenant isolation (design.md §5; native.md §1 scoping, §3.3 subjects statuses):
socket, history, state and request-over-socket."""
from conftest import aio, rid


@aio
async def test_tenant_isolation_every_path(srv):
    a, b = srv.setup(), srv.setup()
    subj = rid("shared")  # the same subject id in both tenants: unrelated
    wa, _ = await srv.ws_auth(a.key)
    wb, _ = await srv.ws_auth(b.key)
    await wa.subscribe([{"topic": "/**"}])
    await wb.subscribe([{"topic": "/**"}])
    a.publish({"topic": "/iso", "type": "t", "subject": subj, "retain": True, "data": {"owner": "a"}})
    b.publish({"topic": "/iso", "type": "t", "subject": subj, "retain": True, "data": {"owner": "b"}})
    ea = await wa.events(1)
    eb = await wb.events(1)
    assert ea[0]["event"]["data"] == {"owner": "a"} and ea[0]["event"]["tenant"] == a.tenant
    assert eb[0]["event"]["data"] == {"owner": "b"} and eb[0]["event"]["tenant"] == b.tenant
    await wa.no_message(0.4)
    await wb.no_message(0.1)
    # history
    assert [e["data"] for e in srv.history(a.key).json["events"]] == [{"owner": "a"}]
    assert [e["data"] for e in srv.history(b.key, "tenant=" + a.tenant).json["events"]] == [{"owner": "b"}]
    # state: each tenant sees its own
    assert srv.http("GET", "/v1/subjects/%s/state" % subj, token=a.key).json["data"] == {"owner": "a"}
    r = srv.http("GET", "/v1/subjects/%s/state?tenant=%s" % (subj, a.tenant), token=b.key)
    assert r.status == 200 and r.json["data"] == {"owner": "b"}
    # request over the socket: the socket's identity
    r = await wb.request({"type": "request", "id": "h", "method": "GET",
                          "path": "/v1/events?tenant=" + a.tenant})
    assert r["status"] == 200 and [e["data"] for e in r["body"]["events"]] == [{"owner": "b"}], r
    r = await wb.request({"type": "request", "id": "s", "method": "GET",
                          "path": "/v1/subjects/%s/state?tenant=%s" % (subj, a.tenant)})
    assert r["status"] == 200 and r["body"]["data"] == {"owner": "b"}, r
    await wa.close()
    await wb.close()


@aio
async def test_subject_status_never_reveals_other_tenant(srv):
    a, b = srv.setup(), srv.setup()
    only_a = rid("only")
    a.publish({"topic": "/iso", "type": "t", "subject": only_a, "data": {}})
    ws, _ = await srv.ws_auth(b.key)
    ack = await ws.subscribe([{"topic": "/**", "subjects": [only_a]}])
    assert ack["subscription"]["subjects"] == {only_a: "unknown"}
    a.publish({"topic": "/iso", "type": "t", "subject": only_a, "data": {}})
    await ws.no_message(0.5)
    await ws.close()
    ws, _ = await srv.ws_auth(a.key)
    ack = await ws.subscribe([{"topic": "/**", "subjects": [only_a]}])
    assert ack["subscription"]["subjects"] == {only_a: "ok"}
    await ws.close()


@aio
async def test_tilde_and_literal_other_tenant_topic(srv):
    a, b = srv.setup(), srv.setup()
    ws, _ = await srv.ws_auth(b.key)
    # b names a's tenant id literally: still only b's events.
    await ws.subscribe([{"topic": "/t/%s/**" % a.tenant}])
    a.publish({"topic": "/t/%s/x" % a.tenant, "type": "t", "data": {}})
    await ws.no_message(0.5)
    await ws.close()


@aio
async def test_admin_socket_sees_every_tenant_and_app_events(srv):
    a, b = srv.setup(), srv.setup()
    adm = srv.app(a.tenant, "admin")
    ws, _ = await srv.ws_auth(adm["api_key"])
    await ws.subscribe([{"topic": "/adm-%s/**" % a.tenant}])
    a.publish({"topic": "/adm-%s/x" % a.tenant, "type": "t", "data": {"n": 1}})
    b.publish({"topic": "/adm-%s/x" % a.tenant, "type": "t", "data": {"n": 2}, "app": b.app["id"]})
    evs = await ws.events(2)
    assert [(m["event"]["tenant"], m["event"]["data"]["n"]) for m in evs] == [(a.tenant, 1), (b.tenant, 2)]
    assert evs[1]["event"]["app"] == b.app["id"]
    await ws.close()


@aio
async def test_app_role_sees_own_app_events_only(srv):
    e = srv.setup()
    other = srv.app(e.tenant, "app")
    w1, _ = await srv.ws_auth(e.key)
    w2, _ = await srv.ws_auth(other["api_key"])
    await w1.subscribe([{"topic": "/**"}])
    await w2.subscribe([{"topic": "/**"}])
    e.publish({"topic": "/p", "type": "t", "app": e.app["id"], "data": {"to": "e"}})
    e.publish({"topic": "/p", "type": "t", "data": {"to": "all"}})
    assert [m["event"]["data"]["to"] for m in await w1.events(2)] == ["e", "all"]
    got = await w2.events(1)
    assert got[0]["event"]["data"]["to"] == "all" and got[0]["seq"] == 1
    await w2.no_message(0.4)
    await w1.close()
    await w2.close()


@aio
async def test_parent_tenant_does_not_see_child_for_app_role(srv):
    parent = srv.tenant()
    child = srv.tenant(parent=parent)
    papp = srv.app(parent, "app")
    cpub = srv.app(child, "publisher")
    ws, _ = await srv.ws_auth(papp["api_key"])
    await ws.subscribe([{"topic": "/**"}])
    srv.publish(cpub["api_key"], {"topic": "/c", "type": "t", "data": {}})
    await ws.no_message(0.5)
    assert srv.history(papp["api_key"]).json["events"] == []
    await ws.close()
