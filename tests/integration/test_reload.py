"""SIGHUP reloads the configuration file (issue #14 item 5): reloadable limits change without
dropping a socket, a restart-only change is logged and not applied, a broken file is refused
whole with the old values still in force. The real binary, started with --config FILE."""
import asyncio
import os
import signal
import socket
import time

from test_transport import _closed_within, _rc_open, rc_ws_url


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
