"""native.md §3.3 snapshot, §3.6 recovery, §1 session (one socket; resume closes 1000)."""
import asyncio

import pytest
import websockets

from conftest import aio, rid


# --------------------------------------------------------------------------- snapshot

@aio
async def test_snapshot_states_first_then_live(env):
    srv = env.srv
    s1, s2, s3 = rid("a"), rid("b"), rid("c")
    env.publish({"topic": "/snap/1", "type": "st", "subject": s1, "retain": True, "data": {"v": "s1-old"}})
    last1 = env.publish({"topic": "/snap/1", "type": "st", "subject": s1, "retain": True, "data": {"v": "s1"}})[0]
    last2 = env.publish({"topic": "/snap/2", "type": "st", "subject": s2, "retain": True, "data": {"v": "s2"}})[0]
    env.publish({"topic": "/snap/1", "type": "st", "subject": s1, "data": {"v": "not retained"}})
    env.publish({"topic": "/other", "type": "st", "subject": s3, "retain": True, "data": {"v": "other topic"}})
    # Another tenant's retained state never shows.
    other = srv.setup()
    other.publish({"topic": "/snap/9", "type": "st", "subject": rid("z"), "retain": True, "data": {"v": "x"}})

    ws, _ = await srv.ws_auth(env.key)
    ack = await ws.subscribe([{"topic": "/snap/**"}], snapshot=True)
    sid = ack["subscription"]["id"]
    evs = await ws.events(2)
    assert [m["seq"] for m in evs] == [1, 2]
    assert all(m["subscription"] == sid for m in evs)
    got = {m["event"]["subject"]: m["event"] for m in evs}
    assert set(got) == {s1, s2}
    assert got[s1]["data"] == {"v": "s1"} and got[s1]["offset"] == last1["offset"]
    assert got[s1]["id"] == last1["id"] and got[s1]["time"] == last1["time"]
    assert got[s2]["data"] == {"v": "s2"} and got[s2]["offset"] == last2["offset"]
    await ws.no_message(0.4)
    # Then live events, continuing the seq.
    env.publish({"topic": "/snap/3", "type": "st", "data": {"v": "live"}})
    live = await ws.events(1)
    assert live[0]["seq"] == 3 and live[0]["event"]["data"] == {"v": "live"}
    # A re-subscribe re-sends copies.
    await ws.subscribe([{"topic": "/snap/2"}], rid_="s2", snapshot=True)
    again = await ws.events(1)
    assert again[0]["seq"] == 4 and again[0]["event"]["subject"] == s2
    await ws.no_message(0.4)
    await ws.close()


@aio
async def test_snapshot_false_sends_no_copies(env):
    env.publish({"topic": "/snap/1", "type": "st", "subject": rid("a"), "retain": True, "data": {}})
    ws, _ = await env.srv.ws_auth(env.key)
    await ws.subscribe([{"topic": "/snap/**"}], snapshot=False)
    await ws.no_message(0.6)
    await ws.close()


@aio
async def test_snapshot_respects_filter_subjects_and_types(env):
    a, b = rid("a"), rid("b")
    env.publish({"topic": "/snap/1", "type": "t.one", "subject": a, "retain": True, "data": {}})
    env.publish({"topic": "/snap/1", "type": "t.two", "subject": b, "retain": True, "data": {}})
    ws, _ = await env.srv.ws_auth(env.key)
    await ws.subscribe([{"topic": "/snap/**", "subjects": [a, b], "types": ["t.two"]}], snapshot=True)
    evs = await ws.events(1)
    assert evs[0]["event"]["subject"] == b and evs[0]["seq"] == 1
    await ws.no_message(0.5)
    await ws.close()


# --------------------------------------------------------------------------- resume

async def session_with_events(env, n_read=2):
    srv = env.srv
    ws, w = await srv.ws_auth(env.key)
    await ws.subscribe([{"topic": "/r/**"}])
    for i in range(n_read):
        env.publish({"topic": "/r/x", "type": "t", "data": {"i": i}})
    evs = await ws.events(n_read)
    assert [m["seq"] for m in evs] == list(range(1, n_read + 1))
    return ws, w


@aio
async def test_resume_recovers_missed_events_query(env):
    srv = env.srv
    ws, w = await session_with_events(env)
    sub_id = None
    await ws.close()
    await asyncio.sleep(0.2)
    for i in range(2, 5):
        env.publish({"topic": "/r/x", "type": "t", "data": {"i": i}})
    ws2, w2 = await srv.ws_auth(env.key, query={"resume": w["resume_token"], "last_seq": 2})
    assert w2["recovered"] is True and w2["session"] == w["session"], w2
    assert "recovery_error" not in w2
    evs = await ws2.events(3)
    assert [m["seq"] for m in evs] == [3, 4, 5]
    assert [m["event"]["data"]["i"] for m in evs] == [2, 3, 4]
    # The subscription is restored: live events follow, no gap, no duplicate.
    env.publish({"topic": "/r/x", "type": "t", "data": {"i": 5}})
    live = await ws2.events(1)
    assert live[0]["seq"] == 6 and live[0]["event"]["data"]["i"] == 5
    await ws2.no_message(0.4)
    del sub_id
    await ws2.close()


@aio
async def test_resume_in_band_and_partial_last_seq(env):
    srv = env.srv
    ws, w = await session_with_events(env, n_read=3)
    await ws.close()
    await asyncio.sleep(0.2)
    env.publish({"topic": "/r/x", "type": "t", "data": {"i": 3}})
    ws2 = await srv.ws()
    await ws2.send({"type": "auth", "api_key": env.key, "resume": w["resume_token"], "last_seq": 1})
    w2 = await ws2.recv_json()
    assert w2["type"] == "welcome" and w2["recovered"] is True and w2["session"] == w["session"], w2
    evs = await ws2.events(3)
    assert [m["seq"] for m in evs] == [2, 3, 4]
    assert [m["event"]["data"]["i"] for m in evs] == [1, 2, 3]
    await ws2.no_message(0.4)
    await ws2.close()


@aio
async def test_resume_replaces_attached_socket_1000(env):
    srv = env.srv
    ws, w = await session_with_events(env)
    ws2, w2 = await srv.ws_auth(env.key, query={"resume": w["resume_token"], "last_seq": 2})
    assert w2["recovered"] is True and w2["session"] == w["session"]
    code, reason, msgs = await ws.closed()
    assert code == 1000 and reason == "replaced", (code, reason, msgs)
    env.publish({"topic": "/r/x", "type": "t", "data": {"i": 9}})
    evs = await ws2.events(1)
    assert evs[0]["seq"] == 3 and evs[0]["event"]["data"]["i"] == 9
    await ws2.close()


@aio
async def test_resume_unknown_session(env):
    ws, w = await env.srv.ws_auth(env.key, query={"resume": "not-a-real-token", "last_seq": 0})
    assert w["recovered"] is False and w["recovery_error"] == "unknown_session", w
    assert w["seq"] == 0 and w["session"].startswith("ses_")
    await ws.close()


@aio
async def test_resume_forbidden_other_principal(env):
    srv = env.srv
    ws, w = await session_with_events(env)
    await ws.close()
    other_app = srv.app(env.tenant, "app")
    ws2, w2 = await srv.ws_auth(other_app["api_key"], query={"resume": w["resume_token"], "last_seq": 2})
    assert w2["recovered"] is False and w2["recovery_error"] == "forbidden", w2
    assert w2["session"] != w["session"] and w2["seq"] == 0
    # No event of the other session leaks to the new one.
    env.publish({"topic": "/r/x", "type": "t", "data": {"i": 7}})
    await ws2.no_message(0.5)
    await ws2.close()
    # And the rightful owner can still resume.
    ws3, w3 = await srv.ws_auth(env.key, query={"resume": w["resume_token"], "last_seq": 2})
    assert w3["recovered"] is True, w3
    evs = await ws3.events(1)
    assert evs[0]["seq"] == 3 and evs[0]["event"]["data"]["i"] == 7
    await ws3.close()


class TestRecoveryLimits:
    @pytest.fixture(scope="class")
    def rs(self, servers):
        return servers.start("memory", {"HERALD_NATIVE_RECOVERY_WINDOW": 1,
                                        "HERALD_NATIVE_RECOVERY_BUFFER": 3,
                                        # the ring alone: no paging from the log
                                        "HERALD_NATIVE_MAX_LOG_REPLAY": 0})

    @aio
    async def test_expired(self, rs):
        e = rs.setup()
        ws, w = await session_with_events(e, n_read=1)
        await ws.close()
        await asyncio.sleep(3.2)
        ws2, w2 = await rs.ws_auth(e.key, query={"resume": w["resume_token"], "last_seq": 1})
        assert w2["recovered"] is False and w2["recovery_error"] == "expired", w2
        assert w2["session"] != w["session"] and w2["seq"] == 0
        await ws2.close()

    @aio
    async def test_buffer_overflow(self, rs):
        e = rs.setup()
        ws, w = await session_with_events(e, n_read=1)
        await ws.close()
        for i in range(5):
            e.publish({"topic": "/r/x", "type": "t", "data": {"i": i}})
        ws2, w2 = await rs.ws_auth(e.key, query={"resume": w["resume_token"], "last_seq": 1})
        assert w2["recovered"] is False and w2["recovery_error"] == "buffer_overflow", w2
        assert w2["session"] != w["session"] and w2["seq"] == 0
        await ws2.no_message(0.4)  # a new session has no subscription
        await ws2.close()

    @aio
    async def test_within_buffer_recovers(self, rs):
        e = rs.setup()
        ws, w = await session_with_events(e, n_read=1)
        await ws.close()
        for i in range(3):
            e.publish({"topic": "/r/x", "type": "t", "data": {"i": i}})
        ws2, w2 = await rs.ws_auth(e.key, query={"resume": w["resume_token"], "last_seq": 1})
        assert w2["recovered"] is True, w2
        evs = await ws2.events(3)
        assert [m["seq"] for m in evs] == [2, 3, 4]
        await ws2.close()


@aio
async def test_gap_beyond_the_ring_is_paged_from_the_log(servers):
    # issue "Delivery guarantees": past the ring, within the window, the event log fills in.
    rs = servers.start("memory", {"HERALD_NATIVE_RECOVERY_BUFFER": 3})
    e = rs.setup()
    ws, w = await session_with_events(e, n_read=1)
    await ws.close()
    for i in range(10):
        e.publish({"topic": "/r/x", "type": "t", "data": {"i": i}})
    ws2, w2 = await rs.ws_auth(e.key, query={"resume": w["resume_token"], "last_seq": 1})
    assert w2["recovered"] is True and w2["session"] == w["session"], w2
    evs = await ws2.events(10)
    assert [m["seq"] for m in evs] == list(range(2, 12))
    assert [m["event"]["data"]["i"] for m in evs] == list(range(10))
    await ws2.no_message(0.3)
    await ws2.close()


@aio
async def test_unblock_sends_state_to_snapshot_session_only_if_newer(srv):
    e = srv.setup()
    s_new, s_old = rid("n"), rid("o")
    e.publish({"topic": "/u", "type": "t", "subject": s_new, "retain": True, "data": {"v": "n0"}})
    e.publish({"topic": "/u", "type": "t", "subject": s_old, "retain": True, "data": {"v": "o0"}})
    ws, _ = await srv.ws_auth(e.key)
    await ws.subscribe([{"topic": "/u"}], snapshot=True)
    got = {m["event"]["subject"]: m["event"]["data"]["v"] for m in await ws.events(2)}
    assert got == {s_new: "n0", s_old: "o0"}
    for s in (s_new, s_old):
        srv.admin("PUT", "/v1/admin/subjects/" + s, {"tenant": e.tenant, "kind": "device", "blocked": True},
                  expect=201)
    # While blocked: a new retained state of s_new is stored but not delivered.
    e.publish({"topic": "/u", "type": "t", "subject": s_new, "retain": True, "data": {"v": "n1"}})
    await ws.no_message(0.5)
    for s in (s_new, s_old):
        srv.admin("PUT", "/v1/admin/subjects/" + s, {"tenant": e.tenant, "blocked": False}, expect=200)
    evs = await ws.events(1)
    assert evs[0]["seq"] == 3 and evs[0]["event"]["subject"] == s_new and evs[0]["event"]["data"] == {"v": "n1"}
    await ws.no_message(0.6)  # s_old's state was already delivered: not again
    await ws.close()


@aio
async def test_slow_consumer_4010_resumable(servers):
    s = servers.start("memory", {"HERALD_CORE_SEND_QUEUE_BYTES": 262144, "HERALD_NATIVE_CLOSE_TIMEOUT": 1})
    e = s.setup()
    ws, w = await s.ws_auth(e.key, max_queue=1, read_limit=2 ** 16)
    await ws.subscribe([{"topic": "/**"}])
    pad = "x" * 20000
    total = 400
    # ~8 MB of events to a client that is not reading.
    for b in range(total // 40):  # 40 x 20 KB per publish: under max_publish_bytes
        await asyncio.to_thread(e.publish, *[e.ev(data={"b": b, "i": i, "pad": pad}) for i in range(40)])
    await asyncio.sleep(1.5)

    async def drain(sock):
        got = []
        try:
            while True:
                m = await sock.recv_json(timeout=10)
                assert m["type"] == "event", m
                got.append(m["seq"])
                if m["seq"] == total:
                    break
        except websockets.ConnectionClosed:
            pass
        return got

    seqs = await drain(ws)
    assert ws.conn.close_code in (4010, 1006), ws.conn.close_code
    assert len(seqs) < total, "everything was delivered: the send-queue bound was never reached"
    # The session stays resumable: resume (again, if the replay overflows too) until complete.
    for _ in range(40):
        if seqs and seqs[-1] == total:
            break
        last = seqs[-1] if seqs else 0
        ws2, w2 = await s.ws_auth(e.key, query={"resume": w["resume_token"], "last_seq": last})
        assert w2["recovered"] is True and w2["session"] == w["session"], w2
        more = await drain(ws2)
        if ws2.conn.close_code is None:
            await ws2.close()
        else:
            assert ws2.conn.close_code in (4010, 1006), ws2.conn.close_code
        seqs += more
    assert seqs == list(range(1, total + 1))


@aio
async def test_max_connections_per_app_4029(servers):
    s = servers.start("memory", {"HERALD_CORE_MAX_CONNECTIONS_PER_APP": 2})
    e = s.setup()
    a, _ = await s.ws_auth(e.key)
    b, _ = await s.ws_auth(e.key)
    c = await s.ws(headers={"Authorization": "Bearer " + e.key})
    code, _, msgs = await c.closed()
    assert code == 4029 and [(m["type"], m["code"]) for m in msgs] == [("error", "too_many_requests")], (code, msgs)
    # Another app of the tenant is unaffected; closing one frees a slot.
    other = s.app(e.tenant, "app")
    d, _ = await s.ws_auth(other["api_key"])
    await a.close()
    await asyncio.sleep(0.3)
    a2, _ = await s.ws_auth(e.key)
    for x in (a2, b, d):
        await x.close()


@aio
async def test_max_connections_per_tenant_4029(servers):
    s = servers.start("memory", {"HERALD_CORE_MAX_CONNECTIONS_PER_TENANT": 2})
    e = s.setup()
    other = s.app(e.tenant, "app")
    a, _ = await s.ws_auth(e.key)
    b, _ = await s.ws_auth(other["api_key"])
    c = await s.ws(headers={"Authorization": "Bearer " + e.key})
    code, _, msgs = await c.closed()
    assert code == 4029 and [(m["type"], m["code"]) for m in msgs] == [("error", "too_many_requests")], (code, msgs)
    # Another tenant is unaffected.
    f = s.setup()
    d, _ = await s.ws_auth(f.key)
    for x in (a, b, d):
        await x.close()
