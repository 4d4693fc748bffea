"""Issue 13 (hardening), items 3, 5, 7 and 9, driven on the real binary as an attacker or an
operator would: one failed-authentication policy, rights changes at once, bounded replies and
exact requests. Each test prints what it measured (pytest -s shows it)."""
import asyncio
import json
import os
import socket
import struct
import time
import urllib.parse

import websockets

from conftest import RECV_TIMEOUT, RawWS, aio, basic, rid

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
RC = "/ringcentral/restapi"


# --------------------------------------------------------------------------- helpers

def rc_user(s, tenant, admin, ext):
    login = rid("u")
    u = s.admin("POST", "/v1/admin/users", {"tenant": tenant, "login": login, "password": "pw-right",
                                            "extension_id": ext, "admin": admin}, expect=201)
    return u.json["id"], login


def rc_password_token(s, app, login, password="pw-right", remote_ip=None):
    headers = dict(FORM, Authorization=basic(app["client_id"], app["client_secret"]))
    if remote_ip:
        headers["X-Forwarded-For"] = remote_ip
    return s.http("POST", RC + "/oauth/token", headers=headers,
                  body=urllib.parse.urlencode({"grant_type": "password", "username": login,
                                               "password": password}))


async def rc_socket(s, app, login):
    """A RingCentral socket of user `login`: (connection, its ConnectionDetails frame)."""
    r = rc_password_token(s, app, login)
    assert r.status == 200, r
    w = s.http("POST", RC + "/oauth/wstoken", token=r.json["access_token"])
    assert w.status == 200, w
    url = w.json["uri"] + "?access_token=" + w.json["ws_access_token"]
    ws = await asyncio.wait_for(websockets.connect(url, ping_interval=None, close_timeout=2),
                                RECV_TIMEOUT)
    first = json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT))
    assert first[0]["type"] == "ConnectionDetails", first
    return ws


async def rc_subscribe(ws, topics):
    await ws.send(json.dumps([
        {"type": "ClientRequest", "messageId": "m-sub", "method": "POST",
         "path": "/restapi/v1.0/subscription"},
        {"eventFilters": topics, "deliveryMode": {"transportType": "WebSocket"}}]))
    while True:
        f = json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT))
        if f[0].get("messageId") == "m-sub":
            assert f[0]["status"] == 200, f
            return f[1]["id"]


async def rc_notifications(ws, wait):
    """ServerNotification bodies that arrive within `wait` seconds."""
    got = []
    deadline = time.monotonic() + wait
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return got
        try:
            f = json.loads(await asyncio.wait_for(ws.recv(), left))
        except asyncio.TimeoutError:
            return got
        if f[0]["type"] == "ServerNotification":
            got.append(f[1])


async def closed_within(ws, seconds):
    """(close code, seconds it took, frames read before), or fails if it stays open."""
    t0 = time.monotonic()
    frames = []
    try:
        while time.monotonic() - t0 < seconds:
            frames.append(await asyncio.wait_for(ws.recv(), seconds - (time.monotonic() - t0)))
    except websockets.ConnectionClosed:
        return ws.close_code, time.monotonic() - t0, frames
    except asyncio.TimeoutError:
        pass
    raise AssertionError("still open after %.1fs; got %r" % (seconds, frames))


# --------------------------------------------------------------------------- item 5

def ext_topic(tenant, ext):
    return "/restapi/v1.0/account/%s/extension/%s/message-store" % (tenant, ext)


@aio
async def test_user_demoted_from_admin_loses_other_extensions_at_once(srv):
    t = srv.tenant()
    app, pub = srv.app(t, "app"), srv.app(t, "publisher")
    uid, login = rc_user(srv, t, True, "201")
    ws = await rc_socket(srv, app, login)
    # An admin user may watch another extension's store.
    await rc_subscribe(ws, [ext_topic(t, "202")])
    srv.publish(pub["api_key"], {"topic": ext_topic(t, "202"), "type": "it.msg", "data": {"n": 1}})
    assert len(await rc_notifications(ws, 2)) == 1
    # The operator demotes the user: the subscription is no longer allowed, so the socket
    # closes with RingCentral's revoked code well within 1 s.
    t0 = time.monotonic()
    srv.admin("PATCH", "/v1/admin/users/" + uid, {"admin": False}, expect=200)
    code, took, frames = await closed_within(ws, 1.0)
    took = time.monotonic() - t0
    print("demoted RC user: socket closed %d after %.0f ms" % (code, took * 1000))
    assert code == 4001, (code, frames)
    assert any("HRD-401" in f for f in frames), frames
    # A new socket of the demoted user may not take the other extension back.
    ws2 = await rc_socket(srv, app, login)
    await ws2.send(json.dumps([
        {"type": "ClientRequest", "messageId": "m2", "method": "POST",
         "path": "/restapi/v1.0/subscription"},
        {"eventFilters": [ext_topic(t, "202")], "deliveryMode": {"transportType": "WebSocket"}}]))
    f = json.loads(await asyncio.wait_for(ws2.recv(), RECV_TIMEOUT))
    assert f[0]["status"] == 403, f
    await ws2.close()


@aio
async def test_user_moved_to_another_extension_loses_the_old_one(srv):
    t = srv.tenant()
    app = srv.app(t, "app")
    uid, login = rc_user(srv, t, False, "701")
    ws = await rc_socket(srv, app, login)
    await rc_subscribe(ws, ["/restapi/v1.0/account/~/extension/~/message-store"])  # 701
    t0 = time.monotonic()
    srv.admin("PATCH", "/v1/admin/users/" + uid, {"extension_id": "702"}, expect=200)
    code, _, frames = await closed_within(ws, 1.0)
    print("RC user moved 701 -> 702: socket on 701 closed %d after %.0f ms"
          % (code, (time.monotonic() - t0) * 1000))
    assert code == 4001, (code, frames)


@aio
async def test_user_trackers_narrowed_stop_events_on_the_open_socket(srv):
    t = srv.tenant()
    app, pub = srv.app(t, "app"), srv.app(t, "publisher")
    uid, login = rc_user(srv, t, False, "301")
    # Tracker ids are decimals (the tracker dialect's rule for subjects of kind tracker).
    for trk in ("7001", "7002"):
        srv.admin("PUT", "/v1/admin/subjects/" + trk, {"tenant": t, "kind": "tracker"})
    ws = await rc_socket(srv, app, login)
    topic = ext_topic(t, "301")
    await rc_subscribe(ws, [topic])

    def send(trk, n):
        srv.publish(pub["api_key"], {"topic": topic, "type": "it.pos", "subject": trk,
                                     "data": {"n": n}})

    send("7001", 1)
    send("7002", 2)
    assert len(await rc_notifications(ws, 1.5)) == 2
    # Allow-list narrowed to 7001: 7002's events stop within 1 s, 7001's go on, the socket
    # stays open (its subscription itself is still allowed).
    srv.admin("PATCH", "/v1/admin/users/" + uid, {"trackers": ["7001"]}, expect=200)
    await asyncio.sleep(1.0)
    send("7002", 3)
    send("7001", 4)
    got = await rc_notifications(ws, 1.5)
    print("trackers narrowed: after 1 s the socket got %r" % [g["body"] for g in got])
    assert [g["body"]["n"] for g in got] == [4], got
    await ws.close()


@aio
async def test_admin_app_demoted_stops_other_tenants_and_resume_uses_new_rights(srv):
    home, other = srv.tenant(), srv.tenant()
    adm = srv.app(home, "admin")
    pub_home, pub_other = srv.app(home, "publisher"), srv.app(other, "publisher")
    ws, welcome = await srv.ws_auth(adm["api_key"])
    await ws.subscribe([{"topic": "/it/**"}])
    srv.publish(pub_other["api_key"], {"topic": "/it/x", "type": "it.t", "data": {"n": 1}})
    assert (await ws.events(1))[0]["event"]["tenant"] == other
    srv.admin("PATCH", "/v1/admin/apps/" + adm["id"], {"role": "app"}, expect=200)
    await asyncio.sleep(1.0)
    srv.publish(pub_other["api_key"], {"topic": "/it/x", "type": "it.t", "data": {"n": 2}})
    srv.publish(pub_home["api_key"], {"topic": "/it/x", "type": "it.t", "data": {"n": 3}})
    ev = (await ws.events(1))[0]
    assert ev["event"]["tenant"] == home and ev["event"]["data"] == {"n": 3}, ev
    await ws.no_message(0.5)
    last_seq = ev["seq"]
    await ws.close()
    # Detached: another tenant's event matches the ring under no rights the app still has; a
    # resume never replays it.
    srv.publish(pub_other["api_key"], {"topic": "/it/x", "type": "it.t", "data": {"n": 4}})
    srv.publish(pub_home["api_key"], {"topic": "/it/x", "type": "it.t", "data": {"n": 5}})
    ws2, w2 = await srv.ws_auth(adm["api_key"], query={"resume": welcome["resume_token"],
                                                       "last_seq": str(last_seq)})
    assert w2.get("recovered") is True, w2
    got = await ws2.events(1)
    assert got[0]["event"]["data"] == {"n": 5}, got
    await ws2.no_message(0.5)
    await ws2.close()


@aio
async def test_app_losing_subscribe_scope_closes_4001(srv):
    t = srv.tenant()
    a = srv.app(t, "app")
    ws, _ = await srv.ws_auth(a["api_key"])
    await ws.subscribe([{"topic": "/it/**"}])
    t0 = time.monotonic()
    srv.admin("PATCH", "/v1/admin/apps/" + a["id"], {"scopes": ["history"]}, expect=200)
    code, reason, _ = await ws.closed(1.5)
    took = time.monotonic() - t0
    print("scope withdrawn: closed %d %r after %.0f ms" % (code, reason, took * 1000))
    assert code == 4001 and took < 1.0, (code, reason, took)
    # The app can no longer open a socket either.
    ws2 = await srv.ws(headers={"Authorization": "Bearer " + a["api_key"]})
    code, _, msgs = await ws2.closed()
    assert code in (4001, 4003), (code, msgs)


# --------------------------------------------------------------------------- item 3

LIMITED = {"HERALD_NATIVE_AUTH_FAIL_RATE": 1, "HERALD_NATIVE_AUTH_FAIL_BURST": 3}
RATE, BURST = 1, 3


def guess_until_limited(guess, most=12):
    """Calls guess(i) until it answers 429 (at most `most` times); returns (codes, seconds from
    the first call to the one refused). The bucket starts full (BURST) and refills RATE per
    second, so however slow the machine (a sanitizer build under load), the failures let
    through before the 429 are at most BURST + RATE x elapsed (+1: a partly refilled token)."""
    codes = []
    start = time.monotonic()
    elapsed = 0.0
    for i in range(most):
        at = time.monotonic() - start
        codes.append(guess(i))
        if codes[-1] == 429:
            elapsed = at
            break
    return codes, elapsed


def assert_limited(codes, elapsed):
    assert codes[:BURST] == [400] * BURST, codes
    assert codes[-1] == 429, codes
    assert set(codes[:-1]) == {400}, codes
    assert len(codes) - 1 <= BURST + int(RATE * elapsed) + 1, (codes, elapsed)


def test_password_guesses_count_per_login_across_addresses(servers):
    # Behind a trusted proxy (127.0.0.1 here), each guess claims a new client address: the
    # login's own count still stops them after the burst.
    s = servers.start("memory", dict(LIMITED, HERALD_CORE_TRUSTED_PROXIES="127.0.0.1"))
    t = s.tenant()
    app = s.app(t, "app")
    _, login = rc_user(s, t, False, "401")
    codes, elapsed = guess_until_limited(lambda i: rc_password_token(
        s, app, login, "wrong", remote_ip="10.9.0.%d" % (i + 1)).status)
    print("guesses at one login from as many forwarded addresses: %r in %.2f s" % (codes, elapsed))
    assert_limited(codes, elapsed)
    r = rc_password_token(s, app, login, "wrong", remote_ip="10.9.0.99")
    assert r.status == 429 and r.json["errorCode"] == "CMN-301", r
    assert int(r.headers["retry-after"]) >= 1, r.headers
    # Another login from a fresh address is untouched by that login's count.
    _, other = rc_user(s, t, False, "402")
    assert rc_password_token(s, app, other, remote_ip="10.9.1.1").status == 200


def test_forwarded_for_ignored_from_an_untrusted_peer(servers):
    # No trusted proxies: X-Forwarded-For is the client's to invent, so rotating it changes
    # nothing: every failure counts against 127.0.0.1.
    s = servers.start("memory", LIMITED)
    t = s.tenant()
    app = s.app(t, "app")
    logins = [rc_user(s, t, False, "5%02d" % i)[1] for i in range(12)]  # one per guess
    codes, elapsed = guess_until_limited(lambda i: rc_password_token(
        s, app, logins[i], "wrong", remote_ip="10.8.0.%d" % (i + 1)).status)
    print("guesses at as many logins, forged X-Forwarded-For: %r in %.2f s" % (codes, elapsed))
    assert_limited(codes, elapsed)


def test_valid_key_and_token_pass_while_the_address_is_limited(servers):
    s = servers.start("memory", LIMITED)
    e = s.setup()
    tok = s.access_token(e.app)  # a client secret is guessable: fetched before the attack
    for _ in range(6):
        s.http("GET", "/v1/events", token="hk_" + "x" * 43)  # an attacker's garbage keys
    bad = s.http("GET", "/v1/events", token="hk_" + "y" * 43)
    assert bad.status == 429, bad
    # From the same address, a valid API key and a valid token are checked and pass.
    assert s.http("GET", "/v1/events", token=e.key).status == 200
    assert s.http("GET", "/v1/events", token=tok).status == 200
    # RingCentral's API paths: a bad token counts and, past the limit, answers CMN-301.
    r = s.http("POST", RC + "/oauth/wstoken", token="garbage.token.x")
    assert r.status == 429 and r.json["errorCode"] == "CMN-301", r


# --------------------------------------------------------------------------- item 7

def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_history_reply_stops_at_max_history_bytes_and_pages_on(servers):
    s = servers.start("sqlite", {"HERALD_NATIVE_MAX_HISTORY_BYTES": 1 << 20})
    e = s.setup()
    big = "x" * 200000  # 200 kB events: 5 fit in a 1 MiB reply
    published = []
    for i in range(24):
        published += e.publish(e.ev("/big", data={"i": i, "pad": big}))
    offsets = [p["offset"] for p in published]
    rss0 = rss_kb(s.proc.pid)
    seen, sizes, pages = [], [], 0
    query = "limit=1000"
    while True:
        r = s.history(e.key, query)
        sizes.append(len(r.raw))
        pages += 1
        seen += [ev["offset"] for ev in r.json["events"]]
        if r.json["next_cursor"] is None:
            break
        query = "cursor=" + r.json["next_cursor"]
        assert pages < 20, pages
    rss1 = rss_kb(s.proc.pid)
    print("history of 24 x 200 kB events, max_history_bytes 1 MiB: %d pages, largest %d bytes, "
          "RSS %+d kB" % (pages, max(sizes), rss1 - rss0))
    assert seen == offsets, (seen, offsets)  # every event once, in order, across the pages
    assert max(sizes) <= 1 << 20, sizes
    assert pages >= 5, pages
    # A bad cursor or number is refused, never defaulted.
    for q in ("limit=10abc", "limit=0", "limit=1001", "since=offset:-1", "since=offset:1x",
              "cursor=%%%"):
        assert s.history(e.key, q, expect=None).status == 400, q


def test_history_reads_of_large_events_stay_bounded_and_stream(servers):
    # The attacker: a few history reads of pages full of large events (before: 4 reads
    # added 382 MB). Default max_history_bytes (8 MiB).
    s = servers.start("sqlite")
    e = s.setup()
    big = "y" * 500000
    for i in range(40):  # 20 MB of events
        e.publish(e.ev("/bulk", data={"i": i, "pad": big}))
    rss0 = rss_kb(s.proc.pid)
    sizes, cursors = [], []
    for _ in range(4):
        r = s.history(e.key, "limit=1000")
        sizes.append(len(r.raw))
        cursors.append(r.json["next_cursor"])
    rss1 = rss_kb(s.proc.pid)
    print("4 history reads over 40 x 500 kB events: replies %r bytes, RSS %+d kB"
          % (sizes, rss1 - rss0))
    assert max(sizes) <= 8 << 20, sizes
    assert all(c is not None for c in cursors), cursors
    # A page of many small events is written batch by batch (chunked), not built whole.
    e.publish(*[e.ev("/small", data={"i": i}) for i in range(1000)])
    e.publish(*[e.ev("/small", data={"i": i}) for i in range(1000, 1500)])
    r = s.history(e.key, "topic=/it/small&limit=1000")
    assert r.headers.get("transfer-encoding") == "chunked", r.headers
    got = [ev["data"]["i"] for ev in r.json["events"]]
    assert got == list(range(1000)), got[:5]
    r2 = s.history(e.key, "cursor=" + r.json["next_cursor"])
    assert [ev["data"]["i"] for ev in r2.json["events"]] == list(range(1000, 1500))


# --------------------------------------------------------------------------- item 9

def masked_text(obj):
    payload = json.dumps(obj).encode()
    n = len(payload)
    head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) +
                            struct.pack("!H", n))
    mask = os.urandom(4)
    return head + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))


def test_overlapping_snapshots_each_under_its_own_id(srv):
    e = srv.setup()
    # 2,000 retained states under A's filter: its snapshot is still being read on the pool
    # when B, sent right behind it, replaces the subscription.
    for b in range(2):
        e.publish(*[e.ev("/snap/a/%d" % i, subject="a%d-%d" % (b, i), retain=True)
                    for i in range(1000)])
    e.publish(e.ev("/snap/b", subject="sb", data={"s": "b"}, retain=True))
    ws = RawWS(srv.port, headers={"Authorization": "Bearer " + e.key})
    assert json.loads(ws.recv_frame()[1])["type"] == "welcome"
    # Both subscribes in one TCP write: B is read while A's snapshot is on the pool.
    ws.sock.sendall(masked_text({"type": "subscribe", "id": "A", "snapshot": True,
                                 "filters": [{"topic": "/it/snap/a/**"}]}) +
                    masked_text({"type": "subscribe", "id": "B", "snapshot": True,
                                 "filters": [{"topic": "/it/snap/b"}]}))
    subs, by_sub = {}, {}
    while True:
        try:
            m = json.loads(ws.recv_frame(1.0)[1])
        except socket.timeout:
            break
        if m["type"] == "ack":
            subs[m["id"]] = m["subscription"]["id"]
        elif m["type"] == "event":
            by_sub.setdefault(m["subscription"], set()).add(m["event"]["subject"])
    counts = {k: len(v) for k, v in by_sub.items()}
    print("overlapping snapshots: events per subscription id %r (A=%s, B=%s)"
          % (counts, subs.get("A"), subs.get("B")))
    assert by_sub.get(subs["B"]) == {"sb"}, (subs, counts)
    assert by_sub.get(subs["A"]) == {"a%d-%d" % (b, i) for b in range(2) for i in range(1000)}, counts
    ws.close()


def test_max_inflight_counts_subscribes_and_unsubscribes(servers):
    s = servers.start("memory", {"HERALD_NATIVE_MAX_INFLIGHT": 2,
                                 "HERALD_CORE_SEND_QUEUE_BYTES": 64 << 20})
    e = s.setup()
    # 10,000 retained states, 2,000 of them under the filter: each snapshot reads all 10,000 on
    # the pool (the matching is done there) and sends 2,000, so it holds its slot for a while.
    for b in range(10):
        e.publish(*[e.ev("/st/%s/%d" % ("in" if b < 2 else "out", i), subject="st%d-%d" % (b, i),
                         retain=True) for i in range(1000)])
    ws = RawWS(s.port, headers={"Authorization": "Bearer " + e.key})
    assert json.loads(ws.recv_frame()[1])["type"] == "welcome"
    # Eight snapshot subscribes and an unsubscribe: at most 2 may wait for their reply. All nine
    # go in ONE TCP write, so the server reads them back to back while the first two snapshots
    # are still being read on the pool. Sent one write each with 2,000 states in all (as this
    # test first did), a loaded machine could finish the first snapshots between two sends,
    # and then nothing was refused.
    msgs = [{"type": "subscribe", "id": "s%d" % i, "filters": [{"topic": "/it/st/in/**"}],
             "snapshot": True} for i in range(8)]
    msgs.append({"type": "unsubscribe", "id": "u"})
    ws.sock.sendall(b"".join(masked_text(m) for m in msgs))
    replies = {}
    while len(replies) < len(msgs):
        op, data = ws.recv_frame()
        if op != 1:
            continue
        m = json.loads(data)
        if m.get("id") is not None and m["type"] in ("ack", "error") and m["id"] not in replies:
            replies[m["id"]] = m.get("code", "ack")
    refused = [k for k, v in replies.items() if v == "too_many_requests"]
    print("max_inflight 2, 9 requests in one write: refused %r" % refused)
    assert refused, replies
    assert replies["s0"] == "ack" and replies["s1"] == "ack", replies
    ws.close()


@aio
async def test_unsubscribe_of_a_large_filter_list_is_exact(servers):
    srv = servers.start("memory", {"HERALD_NATIVE_MAX_MESSAGE_BYTES": 8 << 20})
    e = srv.setup()
    ws, _ = await srv.ws_auth(e.key)
    subjects = ["sub%04d" % i for i in range(1000)]
    filters = [{"topic": "/it/f%d" % i, "subjects": subjects} for i in range(100)]
    await ws.subscribe(filters)
    t0 = time.monotonic()
    ack = await ws.request({"type": "unsubscribe", "id": "u1", "filters": filters[1:]})
    took = time.monotonic() - t0
    print("unsubscribe of 99 filters x 1000 subjects: %.1f ms round trip" % (took * 1000))
    assert ack["type"] == "ack", ack
    # What is left is exactly filters[0]: its events arrive, the removed ones' do not.
    e.publish(e.ev("/f5", subject="sub0001", data={"n": 5}))
    e.publish(e.ev("/f0", subject="sub0001", data={"n": 0}))
    got = await ws.events(1)
    assert got[0]["event"]["data"] == {"n": 0}, got
    await ws.no_message(0.4)
    await ws.close()


@aio
async def test_unparseable_last_seq_is_refused_not_zero(srv):
    e = srv.setup()
    ws, welcome = await srv.ws_auth(e.key)
    await ws.close()
    for bad in ("abc", "1x", "-1", "99999999999999999999999"):
        ws2 = await srv.ws(query={"resume": welcome["resume_token"], "last_seq": bad},
                           headers={"Authorization": "Bearer " + e.key})
        code, reason, msgs = await ws2.closed()
        assert msgs and msgs[0]["type"] == "error" and msgs[0]["code"] == "bad_message", (bad, msgs)
