"""SIGHUP reloads the configuration file (issue #14 item 5): reloadable limits change without
dropping a socket, a restart-only change is logged and not applied, a broken file is refused
whole with the old values still in force. The real binary, started with --config FILE."""
import asyncio
import json
import os
import signal
import socket
import time
import urllib.parse

from conftest import basic
from test_transport import FORM, _closed_within, _rc_open, rc_ws_url


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def logs(s):
    out = b""
    for p in (s.out_path, s.err_path):
        with open(p, "rb") as f:
            out += f.read()
    return out.decode(errors="replace")


def hup_and_wait(s, marker, timeout=10):
    """SIGHUP our own server and wait for `marker` in its logs past what was there before."""
    before = len(logs(s))
    s.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = logs(s)[before:]
        if marker in text:
            return text
        time.sleep(0.05)
    raise AssertionError("no %r in the log after SIGHUP: %r" % (marker, logs(s)[before:]))


def publish_until_refused(s, key, n):
    """Publishes n single events back to back: the statuses."""
    return [s.publish(key, {"topic": "/it/reload", "type": "it.r", "data": {"i": i}},
                      expect=None).status for i in range(n)]


CONFIG = """[core]
blocking_threads = 8
max_connections_per_address = 0

[native]
publish_rate = 1000
publish_burst = 1000
"""


def test_sighup_applies_limits_keeps_sockets_and_refuses_a_bad_file(servers, tmp_path):
    cfg = str(tmp_path / "herald.toml")
    write(cfg, CONFIG)
    s = servers.start("memory", args=["--config", cfg])
    e = s.setup()
    assert publish_until_refused(s, e.pkey, 5) == [201] * 5

    async def run():
        ws, _ = await s.ws_auth(e.key)
        await ws.subscribe([{"topic": "/it/**"}])
        rc, first = await _rc_open(rc_ws_url(s, s.app(e.tenant, "app")))
        assert first, first

        # A reloadable limit lowered, a restart-only key changed.
        write(cfg, CONFIG.replace("blocking_threads = 8", "blocking_threads = 3")
              .replace("publish_rate = 1000", "publish_rate = 1")
              .replace("publish_burst = 1000", "publish_burst = 2"))
        text = hup_and_wait(s, "key(s) applied")
        assert "native.publish_rate = 1 (was 1000)" in text, text
        assert ("core.blocking_threads changed in %s but needs a restart; keeping 8" % cfg) in text, text
        # The new limit is enforced: a burst of 2, then 429.
        assert publish_until_refused(s, e.pkey, 3) == [201, 201, 429]
        # Both sockets are still open; the native one still receives.
        got = await ws.events(2)
        assert [g["event"]["data"]["i"] for g in got[-2:]] == [0, 1], got
        assert await _closed_within(rc, 0.5) is None

        # A broken file: refused whole (the line and key named), the old values stay.
        write(cfg, CONFIG.replace("publish_rate = 1000", "publish_rate = 1000\npublsh_burst = 9"))
        text = hup_and_wait(s, "refused")
        assert "publsh_burst" in text and "did you mean 'publish_burst'" in text, text
        assert ":7" in text, text  # the line of the unknown key
        assert "key(s) applied" not in text, text
        assert publish_until_refused(s, e.pkey, 1) == [429]  # publish_rate 1 still in force
        write(cfg, CONFIG.replace("publish_rate = 1000", 'publish_rate = "fast"'))
        text = hup_and_wait(s, "refused")
        assert "native.publish_rate" in text, text
        assert s.proc.poll() is None
        await ws.request({"type": "ping", "id": "p1"})
        assert await _closed_within(rc, 0.2) is None
        await ws.close()
        await rc.close()

    asyncio.run(asyncio.wait_for(run(), 60))


def test_sighup_applies_connection_bounds_to_new_connections(servers, tmp_path):
    cfg = str(tmp_path / "herald.toml")
    write(cfg, CONFIG)
    s = servers.start("memory", args=["--config", cfg])
    held = [socket.create_connection(("127.0.0.1", s.port), timeout=5) for _ in range(3)]

    def healthz(c):  # one keep-alive request: the server has accepted the connection
        c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while not data.endswith(b"}"):  # the whole reply (a JSON body)
            chunk = c.recv(4096)
            assert chunk, data
            data += chunk
        assert data.startswith(b"HTTP/1.1 200"), data

    try:
        for c in held:
            healthz(c)
        write(cfg, CONFIG.replace("max_connections_per_address = 0",
                                  "max_connections_per_address = 2"))
        text = hup_and_wait(s, "key(s) applied")
        assert "core.max_connections_per_address = 2 (was 0)" in text, text
        # The three opened before stay; of new connections two are accepted, the third 429.
        new = [socket.create_connection(("127.0.0.1", s.port), timeout=5) for _ in range(2)]
        held += new
        r = s.http("GET", "/healthz")
        assert r.status == 429, r
        for c in held[3:]:
            c.close()
        deadline = time.monotonic() + 10  # the server sees the closes as it gets to them
        while s.http("GET", "/healthz").status != 200:
            assert time.monotonic() < deadline, "still refused after the closes"
            time.sleep(0.1)
        for c in held[:3]:  # the old connections still answer
            healthz(c)
    finally:
        for c in held:
            c.close()


def test_sighup_without_config_file_keeps_serving(srv):
    text = hup_and_wait(srv, "no configuration file")
    assert srv.proc.poll() is None and srv.http("GET", "/healthz").status == 200, text


# --------------------------------------------------------------------------- limits of every dialect

LIMITS = """[core]
blocking_threads = 8

[native]
max_message_bytes = 2000
auth_timeout = 30
recovery_buffer = 1000

[ringcentral]
max_frame_bytes = 2000

[zoom]
max_client_frame_bytes = 2000

[smsgw]
max_auth_frame_bytes = 2000

[tracker]
max_frame_bytes = 2000
heartbeat_interval_ms = 30000
"""

RAISED = (LIMITS.replace("= 2000", "= 8000").replace("auth_timeout = 30", "auth_timeout = 1")
          .replace("heartbeat_interval_ms = 30000", "heartbeat_interval_ms = 20000")
          .replace("recovery_buffer = 1000", "recovery_buffer = 7"))

BIG = 3000  # bytes of a client frame: past every 2000 above, within every 8000


async def _open(url, **kw):
    import websockets
    return await websockets.connect(url, ping_interval=None, close_timeout=2, open_timeout=5,
                                    max_size=None, **kw)


async def _recv(ws, timeout=5):
    return await asyncio.wait_for(ws.recv(), timeout)


def _zoom_url(s, e, app):
    """A stored subscription of its own (one socket each) and a token: the socket's URL."""
    sub = s.admin("POST", "/v1/admin/zoom/subscriptions",
                  {"tenant": e.tenant, "events": ["it.*"]}, expect=201).json
    tok = s.http("POST", "/zoom/oauth/token", body="grant_type=client_credentials",
                 headers=dict(FORM, Authorization=basic(app["client_id"], app["client_secret"])))
    assert tok.status == 200, tok.raw
    return sub["ws_url"] + "&access_token=" + urllib.parse.quote(tok.json["access_token"])


async def _dialect_sockets(s, e, app):
    """One open, working socket of every dialect: {name: (ws, first message)}."""
    out = {}
    ws, _ = await s.ws_auth(e.key)
    await ws.subscribe([{"topic": "/it/**"}])
    out["native"] = ws
    out["ringcentral"], first = await _rc_open(rc_ws_url(s, app))
    assert first, first
    z = await _open(_zoom_url(s, e, app))
    built = json.loads(await _recv(z))
    assert built.get("module") == "build_connection" and built.get("success"), built
    out["zoom"] = z
    sg = await _open(s.ws_base + "/smsgw/ws")
    await sg.send(json.dumps({"type": "auth", "apiKey": e.key}))
    assert json.loads(await _recv(sg))["type"] == "auth_ok"
    out["smsgw"] = sg
    t = await _open(s.ws_base + "/tracker/v2/event/subscription")
    out["tracker"] = t
    out["tracker_handshake"] = await _recv(t)
    return out


async def _big_frame_closes(s, e, app, dialect):
    """A fresh socket of `dialect` sends one BIG-byte frame: its close code within 2 s (None:
    still open), and what it answered."""
    pad = "x" * BIG
    if dialect == "native":
        ws = (await s.ws_auth(e.key))[0].conn
        frame = json.dumps({"type": "ping", "id": "big", "pad": pad})
    elif dialect == "ringcentral":
        ws, first = await _rc_open(rc_ws_url(s, app))
        frame = json.dumps([{"type": "ClientRequest", "messageId": "m1", "method": "GET",
                             "path": "/restapi/v1.0/account/~", "pad": pad}])
    elif dialect == "zoom":
        ws = await _open(_zoom_url(s, e, app))
        await _recv(ws)  # build_connection
        frame = json.dumps({"module": "heartbeat", "pad": pad})
    elif dialect == "smsgw":  # the auth frame has its own bound
        ws = await _open(s.ws_base + "/smsgw/ws")
        frame = json.dumps({"type": "auth", "apiKey": e.key, "pad": pad})
    else:
        ws = await _open(s.ws_base + "/tracker/v2/event/subscription")
        await _recv(ws)  # the handshake
        frame = "X" + pad
    assert len(frame) > BIG
    await ws.send(frame)
    answered = []
    try:
        while True:
            answered.append(await asyncio.wait_for(ws.recv(), 2))
    except asyncio.TimeoutError:
        code = None
    except Exception:  # noqa: BLE001 - websockets' ConnectionClosed*
        code = ws.close_code
    await ws.close()
    return code, answered


def test_sighup_reloads_each_dialects_limits_for_new_sockets_and_keeps_open_ones(servers, tmp_path):
    cfg = str(tmp_path / "herald.toml")
    write(cfg, LIMITS)
    s = servers.start("memory", args=["--config", cfg])
    e = s.setup()
    app = s.app(e.tenant, "app")
    dialects = ["native", "ringcentral", "zoom", "smsgw", "tracker"]

    async def run():
        held = await _dialect_sockets(s, e, app)
        assert "|30000|X|" in held["tracker_handshake"], held["tracker_handshake"]
        # The old values in force: a BIG frame is past each dialect's bound (1009), and a
        # native socket that never authenticates is still open after 2.5 s (auth_timeout 30).
        before = {d: await _big_frame_closes(s, e, app, d) for d in dialects}
        assert all(code == 1009 for code, _ in before.values()), before
        quiet = await s.ws()
        assert await _closed_within(quiet.conn, 2.5) is None
        await quiet.conn.close()

        write(cfg, RAISED)
        text = hup_and_wait(s, "key(s) applied")
        for d in dialects:
            key = {"native": "max_message_bytes", "ringcentral": "max_frame_bytes",
                   "zoom": "max_client_frame_bytes", "smsgw": "max_auth_frame_bytes",
                   "tracker": "max_frame_bytes"}[d]
            assert "SIGHUP: %s.%s = 8000 (was 2000)" % (d, key) in text, text
        assert "SIGHUP: native.auth_timeout = 1 (was 30)" in text, text
        assert ("native.recovery_buffer changed in %s but needs a restart; keeping 1000" % cfg) \
            in text, text

        # New sockets get the new values: the same BIG frame is now read and answered by
        # every dialect (none closes 1009), and a silent native socket is closed 4002 (auth
        # timeout) within 1 s and the next timer check.
        after = {d: await _big_frame_closes(s, e, app, d) for d in dialects}
        assert all(code != 1009 for code, _ in after.values()), after
        assert any('"big"' in m for m in after["native"][1]), after["native"]
        assert any('"auth_ok"' in m for m in after["smsgw"][1]), after["smsgw"]
        quiet = await s.ws()
        t0 = time.monotonic()
        assert await _closed_within(quiet.conn, 4) == 4002
        print("silent native socket closed 4002 after %.1f s (auth_timeout 1)" %
              (time.monotonic() - t0))
        t = await _open(s.ws_base + "/tracker/v2/event/subscription")
        assert "|20000|X|" in await _recv(t)  # the new interval is announced to new sockets
        await t.close()

        # Every socket opened before the reload is still open and working.
        s.publish(e.pkey, {"topic": "/it/reload", "type": "it.r", "data": {"after": 1}})
        got = await held["native"].events(1)
        assert got[-1]["event"]["data"] == {"after": 1}, got
        await held["smsgw"].send(json.dumps({"type": "ping"}))
        assert json.loads(await _recv(held["smsgw"]))["type"] == "pong"
        for d in ("ringcentral", "zoom", "tracker"):
            assert await _closed_within(held[d], 0.3) is None, d
        assert s.proc.poll() is None
        for d in dialects:
            await held[d].close()

    asyncio.run(asyncio.wait_for(run(), 90))


def test_sighup_frame_bound_applies_to_an_open_sockets_next_message(servers, tmp_path):
    """The documented rule for sizes: an open socket's next message is read under the new
    bound, lowered or raised, and the socket is otherwise untouched."""
    cfg = str(tmp_path / "herald.toml")
    write(cfg, "[native]\nmax_message_bytes = 8000\n")
    s = servers.start("memory", args=["--config", cfg])
    e = s.setup()

    async def run():
        big = {"type": "ping", "id": "big", "pad": "x" * BIG}
        a, _ = await s.ws_auth(e.key)
        b, _ = await s.ws_auth(e.key)
        assert (await a.request(big))["id"] == "big"  # 3000 bytes within 8000
        write(cfg, "[native]\nmax_message_bytes = 2000\n")
        text = hup_and_wait(s, "key(s) applied")
        assert "SIGHUP: native.max_message_bytes = 2000 (was 8000)" in text, text
        assert (await b.request({"type": "ping", "id": "small"}))["id"] == "small"
        await a.send(big)  # the same frame on the same socket: now past the bound
        assert await _closed_within(a.conn, 5) == 1009
        assert (await b.request({"type": "ping", "id": "again"}))["id"] == "again"
        # Raised again: b, idle and open since the start, reads the big frame now.
        write(cfg, "[native]\nmax_message_bytes = 8000\n")
        hup_and_wait(s, "key(s) applied")
        assert (await b.request(big))["id"] == "big"
        await b.close()

    asyncio.run(asyncio.wait_for(run(), 60))
