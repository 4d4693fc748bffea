"""The dialect seam end to end (issue "One dialect seam", item 1): the test-only echo dialect
(tests/dialects/echo/, one line in src/app/dialects.cc) is served by `herald_test` (HERALD_BIN)
with nothing else of app/ naming it: its table is in `herald config` and strict, its prefix
routes (longest prefix wins), unknown paths get its own answer, refusals before routing come in
its body, and `enabled = false` removes its routes but keeps its admin call."""
import asyncio
import importlib.util
import os
import socket
import subprocess
import tempfile

import pytest
import websockets

_spec = importlib.util.spec_from_file_location(
    "herald_itest", os.path.join(os.path.dirname(__file__), "..", "integration", "conftest.py"))
itest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(itest)
BIN = itest.BIN


@pytest.fixture
def start():
    started = []

    def run(**env):
        s = itest.Server(env=env).start()
        started.append(s)
        return s
    yield run
    for s in started:
        s.terminate()
        s.cleanup()


def run_bin(*args, env=None, timeout=15):
    return subprocess.run([BIN, *args], stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=timeout, env=dict(os.environ, **(env or {})))


def serve_with_config(text):
    with tempfile.TemporaryDirectory(prefix="herald-dtest-") as d:
        path = os.path.join(d, "herald.toml")
        with open(path, "w") as f:
            f.write(text)
        return run_bin("serve", "--config", path, "--listen", "127.0.0.1:0", "--data", d,
                       "--store", "memory", env={"HERALD_ADMIN_KEY": itest.ADMIN_KEY})


def raw_http(srv, data, timeout=10):
    """Sends raw bytes, returns (status, body bytes) of the reply (the server closes)."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except OSError:
            pass  # the server may answer and close before reading it all
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


# ---------------------------------------------------------------- configuration

def test_config_lists_the_echo_table():
    p = run_bin("config")
    assert p.returncode == 0, p.stderr
    lines = {l.split()[0]: l.split() for l in p.stdout.decode().splitlines() if l.strip()}
    for key in ("enabled", "prefix", "listen", "max_frame_bytes", "ping_reply"):
        assert "echo." + key in lines, p.stdout
    assert lines["echo.enabled"][1] == "true"
    assert lines["echo.prefix"][1] == "/echo"
    assert lines["echo.max_frame_bytes"][1:3] == ["4096", "bytes"]
    # The production tables are still all there.
    assert "native.heartbeat_interval" in lines and "ringcentral.notify_pause_ms" in lines
    assert "core.send_queue_bytes" in lines


def test_unknown_key_in_its_table_is_an_error_naming_it():
    p = serve_with_config("[echo]\nmax_frame_bytes = 100\nbogus = 1\n")
    assert p.returncode != 0
    assert b"listening" not in p.stdout
    assert b"unknown configuration key 'echo.bogus'" in p.stderr, p.stderr


def test_its_values_parse_strictly_and_its_rules_hold():
    p = serve_with_config("[echo]\nmax_frame_bytes = '10x'\n")
    assert p.returncode != 0 and b"echo.max_frame_bytes" in p.stderr, p.stderr
    p = serve_with_config("[echo]\nmax_frame_bytes = 8\n")
    assert p.returncode != 0 and b"echo.max_frame_bytes: at least 16" in p.stderr, p.stderr
    p = serve_with_config("[echo]\nprefix = '/ringcentral'\n")
    assert p.returncode != 0 and b"echo.prefix" in p.stderr, p.stderr


# ---------------------------------------------------------------- routing

def test_its_prefix_routes_with_its_config(start):
    srv = start(HERALD_ECHO_PING_REPLY="hello")
    r = srv.http("GET", "/echo/ping")
    assert r.status == 200 and r.json == {"reply": "hello"}, r
    assert srv.http("GET", "/echo//ping").json == {"reply": "hello"}  # "//" after the prefix
    assert srv.http("GET", "/healthz").status == 200                    # native untouched
    assert srv.http("GET", "/echoes/ping").status == 404                # a prefix ends at '/'


def test_unknown_path_under_its_prefix_gets_its_answer(start):
    srv = start()
    r = srv.http("GET", "/echo/nope")
    assert r.status == 404 and r.json == {"echo_error": "no such path", "path": "/nope"}, r
    r = srv.http("GET", "/echo")
    assert r.status == 404 and r.json["echo_error"] == "no such path", r


def test_longest_prefix_wins(start):
    srv = start(HERALD_ECHO_PREFIX="/ringcentral/echo")
    assert srv.http("GET", "/ringcentral/echo/ping").json == {"reply": "pong"}
    r = srv.http("GET", "/ringcentral/echoes")  # RingCentral's: its CMN-102 404
    assert r.status == 404 and r.json["errorCode"] == "CMN-102", r
    assert srv.http("GET", "/echo/ping").status == 404


def test_its_socket_echoes_text(start):
    srv = start()

    assert srv.admin("POST", "/v1/admin/tenants", {"id": "acme"}).status == 201
    app = srv.admin("POST", "/v1/admin/apps", {"tenant": "acme", "name": "e", "role": "app"})
    key = app.json["api_key"]

    async def body():
        async with websockets.connect(srv.ws_base + "/echo/ws", open_timeout=5, close_timeout=2,
                                      extra_headers={"Authorization": "Bearer " + key}) as ws:
            # The seam's socket core admitted it: a session exists.
            assert (await asyncio.wait_for(ws.recv(), 5)).startswith("welcome ses_")
            for text in ("hi", "x" * 3000, "{\"a\":1}"):
                await ws.send(text)
                assert await asyncio.wait_for(ws.recv(), 5) == text
    asyncio.run(asyncio.wait_for(body(), 30))


def test_disabling_it_removes_its_routes_but_keeps_its_admin_call(start):
    srv = start(HERALD_ECHO_ENABLED="false")
    r = srv.http("GET", "/echo/ping")
    assert r.status == 404 and r.code == "not_found", r  # nobody serves it: native 404

    async def upgrade():
        with pytest.raises(Exception):
            async with websockets.connect(srv.ws_base + "/echo/ws", open_timeout=5):
                pass
    asyncio.run(asyncio.wait_for(upgrade(), 30))
    r = srv.admin("GET", "/v1/admin/echo")
    assert r.status == 200 and r.json == {"dialect": "echo", "enabled": False}, r
    assert srv.http("GET", "/v1/admin/echo").status == 401  # the admin key is still required


# ---------------------------------------------------------------- refusals before routing

def test_transport_refusals_come_in_the_owners_body(start):
    srv = start()
    big = b"x" * (1048576 + 10)
    req = (b"POST %s HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n")
    status, body = raw_http(srv, req % (b"/echo/ping", len(big)) + big)
    assert status == 413 and b'"echo_error":"request body too large"' in body, body
    status, body = raw_http(srv, req % (b"/v1/events", len(big)) + big)
    assert status == 413 and b'"code":"too_large"' in body, body
    status, body = raw_http(srv, req % (b"/ringcentral/restapi/oauth/token", len(big)) + big)
    assert status == 413 and b'"errorCode":"CMN-101"' in body, body
    long_header = b"GET /echo/ping HTTP/1.1\r\nHost: h\r\nX-Pad: " + b"p" * 20000 + b"\r\n\r\n"  # 431
    status, body = raw_http(srv, long_header)
    assert status == 431 and b"echo_error" in body, body
    status, body = raw_http(srv, b"GET /echo/%zz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert status == 400 and b"echo_error" in body, body
    status, body = raw_http(srv, b"GET /v1/%zz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert status == 400 and b'"code":"bad_message"' in body, body
