"""Zoom compatibility suite (zoom.md §9): a client written to the Zoom WebSocket documentation
(Python `websockets`, /usr/bin/python3) against the real `herald` binary (env HERALD_BIN) on
127.0.0.1:0. Each scenario of §9 is one function; every network wait has a timeout. Exit 0
when all pass; prints the failures otherwise.

Run by hand: HERALD_BIN=build/release/herald /usr/bin/python3 tests/compat/zoom/run.py
"""
import asyncio
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

import websockets

BIN = os.environ.get("HERALD_BIN", "build/release/herald")
ADMIN_KEY = "zoom-compat-admin-key-0123456789"
T = 5  # seconds, every receive


class Server:
    def __init__(self, env=None):
        self.tmp = tempfile.TemporaryDirectory(prefix="herald-zoom-compat-")
        full = dict(os.environ, HERALD_ADMIN_KEY=ADMIN_KEY)
        full.update(env or {})
        self.out = open(os.path.join(self.tmp.name, "out.log"), "w+b")
        self.proc = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--data",
                                      self.tmp.name, "--store", "memory"],
                                     stdout=self.out, stderr=subprocess.STDOUT, env=full)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            self.out.seek(0)
            m = re.search(rb"herald listening on (http://[^\s]+)", self.out.read())
            if m:
                self.base = m.group(1).decode()
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("herald did not start")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def http(self, method, path, body=None, headers=None, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def admin(self, method, path, body=None):
        st, _, raw = self.http(method, path, body, {"Authorization": "Bearer " + ADMIN_KEY,
                                                    "Content-Type": "application/json"})
        return st, (json.loads(raw) if raw else None)

    # Setup of zoom.md §5: tenant, a Zoom app, a publisher, a subscription.
    def tenant(self, tid, parent=None):
        body = {"id": tid}
        if parent:
            body["parent"] = parent
        st, _ = self.admin("POST", "/v1/admin/tenants", body)
        assert st == 201, st

    def app(self, tenant, role="app"):
        st, a = self.admin("POST", "/v1/admin/apps", {"tenant": tenant, "name": role, "role": role})
        assert st == 201, (st, a)
        return a

    def subscription(self, tenant, events, **extra):
        st, s = self.admin("POST", "/v1/admin/zoom/subscriptions",
                           dict(tenant=tenant, events=events, **extra))
        assert st == 201, (st, s)
        return s

    def token(self, app):
        basic = base64.b64encode(f"{app['client_id']}:{app['client_secret']}".encode()).decode()
        st, _, raw = self.http("POST", "/zoom/oauth/token?grant_type=client_credentials", raw=b"",
                               headers={"Authorization": "Basic " + basic,
                                        "Content-Type": "application/x-www-form-urlencoded"})
        assert st == 200, (st, raw)
        return json.loads(raw)["access_token"]

    def publish(self, pub, events):
        st, _, raw = self.http("POST", "/v1/events", events,
                               {"Authorization": "Bearer " + pub["api_key"],
                                "Content-Type": "application/json"})
        assert st == 201, (st, raw)
        return json.loads(raw)["events"]


def basic(app, secret=None):
    s = secret if secret is not None else app["client_secret"]
    return "Basic " + base64.b64encode(f"{app['client_id']}:{s}".encode()).decode()


async def connect(url):
    return await websockets.connect(url, open_timeout=T, ping_interval=None, max_size=2**22)


async def recv_json(ws, timeout=T):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def expect_close(ws, code, reason=None, timeout=T):
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except websockets.ConnectionClosed as e:
        assert e.code == code, (e.code, e.reason)
        if reason is not None:
            assert e.reason == reason, e.reason


async def open_ok(url):
    ws = await connect(url)
    first = await recv_json(ws)
    assert first == {"module": "build_connection", "success": True, "content": "success",
                     "header": {}}, first
    return ws


async def quiet(ws, seconds=0.5):
    try:
        msg = await asyncio.wait_for(ws.recv(), seconds)
    except asyncio.TimeoutError:
        return
    raise AssertionError("unexpected frame: " + str(msg))


# ---------------------------------------------------------------- scenarios (zoom.md §9)

def s1_token(srv, w):
    app = w["app"]
    st, h, raw = srv.http("POST", "/zoom/oauth/token?grant_type=client_credentials", raw=b"",
                          headers={"Authorization": basic(app),
                                   "Content-Type": "application/x-www-form-urlencoded"})
    assert st == 200, (st, raw)
    body = json.loads(raw)
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}, body
    assert body["token_type"] == "bearer" and body["expires_in"] == 3599
    assert isinstance(body["scope"], str)
    assert re.fullmatch(r"[A-Za-z0-9._-]+", body["access_token"]), body["access_token"]
    assert h.get("Cache-Control") == "no-store"
    # account_credentials with account_id in the body
    st, _, raw = srv.http("POST", "/zoom/oauth/token",
                          raw=f"grant_type=account_credentials&account_id={w['m']}".encode(),
                          headers={"Authorization": basic(app),
                                   "Content-Type": "application/x-www-form-urlencoded"})
    assert st == 200, raw

    def refused(status, error, reason, path, raw_body=b"", auth=basic(app), method="POST"):
        st, h, raw = srv.http(method, path, raw=raw_body if method == "POST" else None,
                              headers={"Authorization": auth,
                                       "Content-Type": "application/x-www-form-urlencoded"})
        assert st == status, (st, raw)
        assert json.loads(raw) == {"reason": reason, "error": error}, raw
        assert h.get("Cache-Control") == "no-store"
        return h

    refused(401, "invalid_client", "Invalid client_id or client_secret",
            "/zoom/oauth/token?grant_type=client_credentials", auth=basic(app, "wrong"))
    refused(401, "invalid_client", "Invalid client_id or client_secret",
            "/zoom/oauth/token?grant_type=client_credentials", auth="")
    refused(400, "invalid_request", "Invalid account_id",
            "/zoom/oauth/token?grant_type=account_credentials&account_id=nope")
    refused(400, "invalid_request", "Missing account_id",
            "/zoom/oauth/token?grant_type=account_credentials")
    refused(400, "unsupported_grant_type", "Unsupported grant type",
            "/zoom/oauth/token?grant_type=password")
    refused(400, "unsupported_grant_type", "Unsupported grant type", "/zoom/oauth/token")
    refused(413, "invalid_request", "Request too large", "/zoom/oauth/token",
            raw_body=b"x=" + b"a" * 9000)
    h = refused(405, "invalid_request", "Method not allowed", "/zoom/oauth/token", method="GET")
    assert h.get("Allow") == "POST"
    # a non-upgrade request to the socket path
    st, _, raw = srv.http("GET", "/zoom/ws?subscriptionId=x")
    assert st == 426 and json.loads(raw) == {"reason": "WebSocket upgrade required",
                                             "error": "invalid_request"}, (st, raw)


async def s2_connect_and_heartbeat(srv, w):
    ws = await open_ok(w["url"])
    t0 = time.monotonic()
    await ws.send(json.dumps({"module": "heartbeat"}))
    hb = await recv_json(ws, 1)
    assert hb == {"module": "heartbeat", "success": True, "content": "live", "header": {}}, hb
    assert time.monotonic() - t0 < 1
    await ws.send("heartbeat")  # bare text counts too
    assert (await recv_json(ws, 1))["content"] == "live"
    await ws.close()


async def s3_events(srv, w):
    ws = await open_ok(w["url"])
    batch, want = [], []
    for i in range(50):
        typ = ["meeting.started", "webinar.started", "meeting.ended"][i % 3]
        batch.append({"topic": f"/meetings/{i}", "type": typ, "data": {"i": i}})
    replies = srv.publish(w["pub"], batch)
    for i, (ev, rep) in enumerate(zip(batch, replies)):
        if ev["type"].startswith("meeting."):
            want.append((ev, rep))
    odd = '{"price":1.50,"name":"caf\\u00e9","nested":{"a":[1,2.0]}}'
    st, _, raw = srv.http("POST", "/v1/events",
                          raw=('{"topic":"/m/odd","type":"meeting.updated","data":' + odd + "}").encode(),
                          headers={"Authorization": "Bearer " + w["pub"]["api_key"],
                                   "Content-Type": "application/json"})
    assert st == 201, raw
    odd_rep = json.loads(raw)["events"][0]
    extras = {"operator": "a@b.c", "object": {"id": 9}, "old_object": {"id": 8}}
    extras_rep = srv.publish(w["pub"], {"topic": "/m/x", "type": "meeting.updated", "data": extras})[0]
    got = [await recv_json(ws) for _ in range(len(want) + 2)]
    for (ev, rep), frame in zip(want, got):
        assert frame["module"] == "message" and frame["success"] is True and frame["header"] == {}
        assert isinstance(frame["content"], str)
        inner = json.loads(frame["content"])
        assert list(inner) == ["event", "event_ts", "payload"], inner
        assert inner["event"] == ev["type"]
        assert inner["payload"] == {"account_id": w["m"], "object": ev["data"]}
        ms = rfc3339_ms(rep["time"])
        assert inner["event_ts"] == ms, (inner["event_ts"], rep["time"])
    odd_frame = got[len(want)]
    assert odd_frame["content"].endswith('"object":' + odd + "}}"), odd_frame["content"]
    assert json.loads(odd_frame["content"])["event_ts"] == rfc3339_ms(odd_rep["time"])
    payload = json.loads(got[-1]["content"])["payload"]
    assert list(payload) == ["account_id", "operator", "object", "old_object"], payload
    assert payload["old_object"] == {"id": 8}
    await quiet(ws)
    await ws.close()


def rfc3339_ms(t):
    # "2026-12-04T23:12:42.123Z" (or with more or no fraction) to ms since the epoch.
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?Z", t)
    assert m, t
    import calendar
    secs = calendar.timegm(tuple(int(x) for x in m.groups()[:6]))
    frac = (m.group(7) or "0")[:3].ljust(3, "0")
    return secs * 1000 + int(frac)


async def s4_connect_failures(srv, w):
    base = srv.base.replace("http://", "ws://") + "/zoom/ws"
    other_sub = w["other_sub"]["id"]
    cases = [
        (f"{base}?subscriptionId={w['sub']['id']}", "token is empty", 4001, "invalid_token"),
        (f"{base}?subscriptionId={w['sub']['id']}&access_token=", "token is empty", 4001, None),
        (f"{base}?subscriptionId={w['sub']['id']}&access_token=bad.token", "Invalid Token", 4001,
         "invalid_token"),
        (f"{base}?subscriptionId=AAAAAAAAAAAAAAAAAAAAAA&access_token={w['token']}",
         "Invalid subscriptionId", 4003, "invalid_subscription"),
        (f"{base}?subscriptionId={other_sub}&access_token={w['token']}",
         "Invalid subscriptionId", 4003, None),
        (f"{base}?subscriptionId={w['sub']['id']}&access_token={srv.token(w['pub'])}",
         "Invalid subscriptionId", 4003, None),
    ]
    for url, content, code, reason in cases:
        ws = await connect(url)  # 101 whatever the query holds
        frame = await recv_json(ws)
        assert frame == {"module": "build_connection", "success": False, "content": content,
                         "header": {}}, (url, frame)
        await expect_close(ws, code, reason)


async def s5_replace(srv, w):
    first = await open_ok(w["url"])
    second = await open_ok(w["url"])
    await expect_close(first, 1000, "replaced")
    srv.publish(w["pub"], {"topic": "/m/r", "type": "meeting.started", "data": {"r": 1}})
    frame = await recv_json(second)
    assert json.loads(frame["content"])["payload"]["object"] == {"r": 1}
    await second.close()


async def s6_sub_accounts(srv, w):
    m, s = w["m"], w["s"]
    s_app, s_pub = srv.app(s), srv.app(s, "publisher")
    narrow = await open_ok(w["url"])
    wide_sub = srv.subscription(m, ["meeting.*"], include_sub_accounts=True)
    wide = await open_ok(wide_sub["ws_url"] + "&access_token=" + w["token"])
    child_sub = srv.subscription(s, ["meeting.*"], include_sub_accounts=True)
    child = await open_ok(child_sub["ws_url"] + "&access_token=" + srv.token(s_app))
    srv.publish(s_pub, {"topic": "/m/s", "type": "meeting.started", "data": {"from": "s"}})
    srv.publish(w["pub"], {"topic": "/m/m", "type": "meeting.started", "data": {"from": "m"}})
    got = [json.loads((await recv_json(wide))["content"])["payload"] for _ in range(2)]
    assert got == [{"account_id": s, "object": {"from": "s"}},
                   {"account_id": m, "object": {"from": "m"}}], got
    only_m = json.loads((await recv_json(narrow))["content"])["payload"]
    assert only_m == {"account_id": m, "object": {"from": "m"}}, only_m
    only_s = json.loads((await recv_json(child))["content"])["payload"]
    assert only_s["account_id"] == s
    await quiet(narrow)
    await quiet(child)
    for ws in (narrow, wide, child):
        await ws.close()


async def s7_isolation(srv, w):
    mine = await open_ok(w["url"])
    theirs = await open_ok(w["other_sub"]["ws_url"] + "&access_token=" + srv.token(w["other_app"]))
    app2 = srv.app(w["m"])
    sub2 = srv.subscription(w["m"], ["meeting.*"], app=app2["id"])
    named = await open_ok(sub2["ws_url"] + "&access_token=" + srv.token(app2))
    srv.publish(w["pub"], {"topic": "/m/a", "type": "meeting.started", "app": app2["id"],
                           "data": {"for": "app2"}})
    srv.publish(w["pub"], {"topic": "/m/b", "type": "meeting.started", "data": {"for": "all"}})
    assert json.loads((await recv_json(named))["content"])["payload"]["object"] == {"for": "app2"}
    assert json.loads((await recv_json(mine))["content"])["payload"]["object"] == {"for": "all"}
    await quiet(theirs)
    for ws in (mine, theirs, named):
        await ws.close()


async def s8_idle(srv2, w2):
    silent = await open_ok(w2["url"])
    w2b = srv2.subscription(w2["m"], ["meeting.*"])
    beating = await open_ok(w2b["ws_url"] + "&access_token=" + w2["token"])

    async def beat():
        for _ in range(5):
            await beating.send('{"module":"heartbeat"}')
            assert (await recv_json(beating))["content"] == "live"
            await asyncio.sleep(1)

    t0 = time.monotonic()
    await asyncio.gather(expect_close(silent, 4008, "heartbeat timeout", timeout=6), beat())
    assert time.monotonic() - t0 >= 1.5
    assert beating.open
    await beating.close()


async def s9_garbage(srv, w):
    ws = await open_ok(w["url"])
    await ws.send('{"module":"subscribe"}')
    await ws.send("not json {")
    await ws.send(b"\x00\x01binary")
    await quiet(ws)
    await ws.send("heartbeat")
    assert (await recv_json(ws))["content"] == "live"
    await ws.send("x" * 5000)  # over max_client_frame_bytes (4096)
    await expect_close(ws, 1009)


async def s10_herald_extras(srv, w):
    url = w["url"] + "&herald=1"
    ws = await connect(url)
    ok = await recv_json(ws)
    h = ok["header"]
    assert ok["success"] and h["seq"] == 0 and h["recovered"] is False, ok
    assert h["session"].startswith("ses_") and h["resume_token"]
    srv.publish(w["pub"], {"topic": "/m/1", "type": "meeting.started", "data": {"n": 1}})
    f1 = await recv_json(ws)
    assert f1["header"]["seq"] == 1 and f1["header"]["id"].startswith("evt_"), f1
    assert isinstance(f1["header"]["offset"], int)
    await ws.close()
    srv.publish(w["pub"], [{"topic": "/m/2", "type": "meeting.started", "data": {"n": 2}},
                           {"topic": "/m/3", "type": "meeting.started", "data": {"n": 3}}])
    plain = await open_ok(w["url"])  # without herald=1 a reconnect replays nothing
    await quiet(plain)
    await plain.close()
    back = await connect(url + "&resume=" + h["resume_token"] + "&last_seq=1")
    ok2 = await recv_json(back)
    assert ok2["success"] and ok2["header"]["recovered"] is True, ok2
    seqs = []
    for _ in range(2):
        f = await recv_json(back)
        seqs.append((f["header"]["seq"], json.loads(f["content"])["payload"]["object"]["n"]))
    assert seqs == [(2, 2), (3, 3)], seqs
    await back.close()


async def s_admin(srv, w):
    st, got = srv.admin("GET", "/v1/admin/zoom/subscriptions/" + w["sub"]["id"])
    assert st == 200 and got["events"] == ["meeting.*"] and got["ws_url"].endswith(w["sub"]["id"])
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", got["id"]), got["id"]
    st, lst = srv.admin("GET", "/v1/admin/zoom/subscriptions?tenant=" + w["m"])
    assert st == 200 and any(s["id"] == w["sub"]["id"] for s in lst["subscriptions"])
    st, _ = srv.admin("POST", "/v1/admin/zoom/subscriptions", {"tenant": w["m"], "events": []})
    assert st == 400
    st, _ = srv.admin("POST", "/v1/admin/zoom/subscriptions", {"tenant": "nobody", "events": ["a"]})
    assert st == 404
    sub = srv.subscription(w["m"], ["meeting.*"])
    ws = await open_ok(sub["ws_url"] + "&access_token=" + w["token"])
    st, conns = srv.admin("GET", "/v1/admin/connections")
    assert any(c.get("subscription_id") == sub["id"] for c in conns["connections"]), conns
    st, patched = srv.admin("PATCH", "/v1/admin/zoom/subscriptions/" + sub["id"],
                            {"events": ["webinar.*"]})
    assert st == 200 and patched["events"] == ["webinar.*"]
    await asyncio.sleep(0.2)
    srv.publish(w["pub"], [{"topic": "/m/p", "type": "meeting.started", "data": {}},
                           {"topic": "/m/q", "type": "webinar.started", "data": {}}])
    assert json.loads((await recv_json(ws))["content"])["event"] == "webinar.started"
    st, _ = srv.admin("DELETE", "/v1/admin/zoom/subscriptions/" + sub["id"])
    assert st == 204
    await expect_close(ws, 1000, "subscription deleted")


async def s_app_deleted(srv, w):
    app = srv.app(w["m"])
    sub = srv.subscription(w["m"], ["meeting.*"])
    ws = await open_ok(sub["ws_url"] + "&access_token=" + srv.token(app))
    st, _ = srv.admin("DELETE", "/v1/admin/apps/" + app["id"])
    assert st == 204
    await expect_close(ws, 4001)


def world(srv, m="acme", s="acme-sub"):
    srv.tenant(m)
    srv.tenant(s, parent=m)
    srv.tenant(m + "-other")
    w = {"m": m, "s": s, "app": srv.app(m), "pub": srv.app(m, "publisher")}
    w["sub"] = srv.subscription(m, ["meeting.*"])
    w["token"] = srv.token(w["app"])
    w["url"] = w["sub"]["ws_url"] + "&access_token=" + w["token"]
    w["other_app"] = srv.app(m + "-other")
    w["other_sub"] = srv.subscription(m + "-other", ["meeting.*"])
    return w


async def main():
    failures = []
    srv = Server()
    try:
        w = world(srv)
        steps = [("1 token", s1_token), ("2 connect", s2_connect_and_heartbeat),
                 ("3 events", s3_events), ("4 failures", s4_connect_failures),
                 ("5 replace", s5_replace), ("6 sub-accounts", s6_sub_accounts),
                 ("7 isolation", s7_isolation), ("9 garbage", s9_garbage),
                 ("10 herald extras", s10_herald_extras), ("admin calls", s_admin),
                 ("app deleted", s_app_deleted)]
        for name, fn in steps:
            try:
                r = fn(srv, w)
                if asyncio.iscoroutine(r):
                    await asyncio.wait_for(r, 60)
                print("ok  ", name)
            except Exception:
                failures.append(name)
                print("FAIL", name)
                traceback.print_exc()
    finally:
        srv.stop()
    srv2 = Server({"HERALD_ZOOM_IDLE_TIMEOUT": "2"})
    try:
        try:
            await asyncio.wait_for(s8_idle(srv2, world(srv2)), 60)
            print("ok   8 idle")
        except Exception:
            failures.append("8 idle")
            print("FAIL 8 idle")
            traceback.print_exc()
    finally:
        srv2.stop()
    if failures:
        print("zoom compat: FAILED:", ", ".join(failures))
        return 1
    print("zoom compat: all scenarios passed")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
