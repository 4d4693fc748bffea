"""Fixtures and helpers for the native-protocol integration suite (native.md, design.md §4).

Every test talks to the REAL binary (env HERALD_BIN, default build/release/herald) started on
127.0.0.1:0 with a known admin key. Every network operation carries a timeout; every test
body runs under an overall asyncio deadline (see `aio`).
"""
import asyncio
import base64
import functools
import json
import os
import random
import signal
import socket
import string
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import websockets

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("HERALD_BIN", os.path.join(ROOT, "build", "release", "herald"))
ADMIN_KEY = "itest-admin-key-0123456789abcdef"
HTTP_TIMEOUT = 10
RECV_TIMEOUT = 5
TEST_DEADLINE = 45  # seconds, per async test body


def rid(prefix="t"):
    return prefix + "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(10))


# --------------------------------------------------------------------------- the server process

class Server:
    def __init__(self, store="memory", env=None, data=None, args=None):
        self.store = store
        self.args = list(args or [])  # more `herald serve` arguments, e.g. ["--config", FILE]
        self.extra_env = dict(env or {})
        self._tmp = None
        if data is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="herald-itest-")
            data = self._tmp.name
        self.data = data
        self.proc = None
        self.base = None
        self.port = None
        self.returncode = None
        # An https:// server (core.tls_cert_file): the ssl.SSLContext its clients verify with.
        self.ssl_context = None

    def start(self):
        env = dict(os.environ)
        env["HERALD_ADMIN_KEY"] = ADMIN_KEY
        env.update({k: str(v) for k, v in self.extra_env.items()})
        self.out_path = os.path.join(self.data, "stdout.log")
        self.err_path = os.path.join(self.data, "stderr.log")
        out = open(self.out_path, "ab")
        err = open(self.err_path, "ab")
        start_size = os.path.getsize(self.out_path)
        argv = [BIN, "serve", "--listen", "127.0.0.1:0", "--data", self.data]
        if self.store != "sqlite":  # sqlite is the default store: leave the flag out
            argv += ["--store", self.store]
        argv += self.args
        self.proc = subprocess.Popen(argv,
            stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        out.close()
        err.close()
        deadline = time.monotonic() + 15
        line = b""
        while time.monotonic() < deadline:
            with open(self.out_path, "rb") as f:
                f.seek(start_size)
                line = f.readline()
            if line.endswith(b"\n"):
                break
            if self.proc.poll() is not None:
                raise RuntimeError("herald exited early: " + self.stderr_tail())
            time.sleep(0.02)
        else:
            self.kill()
            raise RuntimeError("herald did not print its listening line: " + self.stderr_tail())
        text = line.decode().strip()
        assert text.startswith(("herald listening on http://",
                                "herald listening on https://")), text
        self.base = text[len("herald listening on "):]
        scheme, hostport = self.base.split("://", 1)
        assert hostport.startswith("127.0.0.1:"), text
        self.port = int(hostport.rsplit(":", 1)[1])
        self.ws_base = ("wss://" if scheme == "https" else "ws://") + hostport
        return self

    def stderr_tail(self, n=3000):
        try:
            with open(self.err_path, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def terminate(self, timeout=20):
        """SIGTERM our own process, wait; returns the exit code."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError("herald did not exit within %ss of SIGTERM" % timeout)
        self.returncode = self.proc.returncode
        self.proc = None
        return self.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.proc is not None:
            self.returncode = self.proc.returncode
        self.proc = None

    def cleanup(self):
        if self._tmp is not None:
            self._tmp.cleanup()

    # ----------------------------------------------------------------------- HTTP
    def http(self, method, path, body=None, token=None, headers=None, admin=False, timeout=HTTP_TIMEOUT):
        """One HTTP call. Returns Resp(status, headers, raw bytes, parsed JSON or None)."""
        hdrs = {}
        if admin:
            hdrs["Authorization"] = "Bearer " + ADMIN_KEY
        elif token is not None:
            hdrs["Authorization"] = "Bearer " + token
        data = None
        if body is not None:
            if isinstance(body, (bytes, bytearray)):
                data = bytes(body)
            elif isinstance(body, str):
                data = body.encode()
            else:
                data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        hdrs.update(headers or {})
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.ssl_context) as r:
                return Resp(r.status, dict(r.headers), r.read())
        except urllib.error.HTTPError as e:
            raw = e.read()
            return Resp(e.code, dict(e.headers), raw)

    # ----------------------------------------------------------------------- admin helpers
    def admin(self, method, path, body=None, expect=None):
        r = self.http(method, path, body=body, admin=True)
        if expect is not None:
            assert r.status == expect, (method, path, r.status, r.raw)
        return r

    def tenant(self, parent=None):
        tid = rid("ten")
        body = {"id": tid}
        if parent:
            body["parent"] = parent
        self.admin("POST", "/v1/admin/tenants", body, expect=201)
        return tid

    def app(self, tenant, role="app", scopes=None, name=None):
        body = {"tenant": tenant, "name": name or rid("app"), "role": role}
        if scopes is not None:
            body["scopes"] = scopes
        return self.admin("POST", "/v1/admin/apps", body, expect=201).json

    def setup(self):
        """A fresh tenant with an `app`-role app, a publisher and a tenant-local admin app."""
        t = self.tenant()
        return Env(self, t, self.app(t, "app"), self.app(t, "publisher"))

    def publish(self, key, body, headers=None, expect=201):
        r = self.http("POST", "/v1/events", body=body, token=key, headers=headers)
        if expect is not None:
            assert r.status == expect, (r.status, r.raw)
        return r

    def history(self, key, query="", expect=200):
        r = self.http("GET", "/v1/events" + (("?" + query) if query else ""), token=key)
        if expect is not None:
            assert r.status == expect, (r.status, r.raw)
        return r

    def access_token(self, app):
        r = self.http("POST", "/v1/oauth/token", body="grant_type=client_credentials",
                      headers={"Content-Type": "application/x-www-form-urlencoded",
                               "Authorization": basic(app["client_id"], app["client_secret"])})
        assert r.status == 200, r.raw
        return r.json["access_token"]

    def ws_token(self, app):
        tok = self.access_token(app)
        r = self.http("POST", "/v1/ws-tokens", token=tok)
        assert r.status == 200, r.raw
        return r.json["ws_access_token"]

    # ----------------------------------------------------------------------- WebSocket helpers
    async def ws(self, query=None, headers=None, **kw):
        url = self.ws_base + "/v1/ws"
        if query:
            url += "?" + (query if isinstance(query, str) else urllib.parse.urlencode(query))
        if self.ssl_context is not None:
            kw.setdefault("ssl", self.ssl_context)
        conn = await asyncio.wait_for(websockets.connect(
            url, extra_headers=headers or {}, ping_interval=None, close_timeout=2,
            max_size=None, open_timeout=RECV_TIMEOUT, **kw), RECV_TIMEOUT + 1)
        return WS(conn)

    async def ws_auth(self, key, query=None, **kw):
        """Authenticated socket (Authorization header with an API key); returns (ws, welcome)."""
        ws = await self.ws(query=query, headers={"Authorization": "Bearer " + key}, **kw)
        welcome = await ws.recv_json()
        assert welcome["type"] == "welcome", welcome
        return ws, welcome


class Env:
    def __init__(self, srv, tenant, app, pub):
        self.srv, self.tenant, self.app, self.pub = srv, tenant, app, pub
        self.key = app["api_key"]
        self.pkey = pub["api_key"]

    def ev(self, topic_suffix="/x", type_="it.test", data=None, **extra):
        body = {"topic": "/it" + topic_suffix, "type": type_, "data": data if data is not None else {}}
        body.update(extra)
        return body

    def publish(self, *events, headers=None):
        body = events[0] if len(events) == 1 else list(events)
        return self.srv.publish(self.pkey, body, headers=headers).json["events"]


class Resp:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.raw = raw
        try:
            self.json = json.loads(raw) if raw else None
        except ValueError:
            self.json = None

    @property
    def code(self):
        """The native error code of an error body."""
        assert isinstance(self.json, dict) and "error" in self.json, self.raw
        err = self.json["error"]
        assert isinstance(err.get("message"), str), self.raw
        return err["code"]

    def __repr__(self):
        return "Resp(%s, %r)" % (self.status, self.raw[:300])


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()



def rc_app_and_user(s):
    """A fresh tenant with an `app`-role app and a RingCentral user (extension 101, password
    "right-pw") on server `s`: (app, login)."""
    t = s.tenant()
    app = s.app(t, "app")
    login = rid("u")
    s.admin("POST", "/v1/admin/users", {"tenant": t, "login": login, "password": "right-pw",
                                        "extension_id": "101"}, expect=201)
    return app, login


class WS:
    """A websockets client with bounded receives."""

    def __init__(self, conn):
        self.conn = conn
        self.pings = 0  # server {"type":"ping"} messages skipped

    async def send(self, obj):
        await self.conn.send(obj if isinstance(obj, (str, bytes)) else json.dumps(obj))

    async def recv_raw(self, timeout=RECV_TIMEOUT):
        return await asyncio.wait_for(self.conn.recv(), timeout)

    async def recv_json(self, timeout=RECV_TIMEOUT, skip_ping=True):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise asyncio.TimeoutError("no message within %ss" % timeout)
            msg = json.loads(await asyncio.wait_for(self.conn.recv(), left))
            if skip_ping and msg.get("type") == "ping" and "id" not in msg:
                self.pings += 1
                continue
            return msg

    async def request(self, obj, timeout=RECV_TIMEOUT):
        """Send a request and return the reply with its id (events arriving meanwhile are kept)."""
        await self.send(obj)
        others = []
        while True:
            m = await self.recv_json(timeout)
            if m.get("id") == obj.get("id") and m.get("type") in ("ack", "error", "pong"):
                m["_others"] = others
                return m
            others.append(m)

    async def subscribe(self, filters, rid_="s1", snapshot=None):
        body = {"type": "subscribe", "id": rid_, "filters": filters}
        if snapshot is not None:
            body["snapshot"] = snapshot
        ack = await self.request(body)
        assert ack["type"] == "ack", ack
        return ack

    async def events(self, n, timeout=RECV_TIMEOUT):
        out = []
        while len(out) < n:
            m = await self.recv_json(timeout)
            assert m["type"] == "event", m
            out.append(m)
        return out

    async def no_message(self, wait=0.6):
        """Assert nothing (other than a heartbeat ping) arrives within `wait` seconds."""
        try:
            m = await self.recv_json(wait)
        except asyncio.TimeoutError:
            return
        raise AssertionError("unexpected message: %r" % (m,))

    async def closed(self, timeout=RECV_TIMEOUT):
        """Read until the server closes; returns (close code, reason, messages read before)."""
        msgs = []
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("socket not closed within %ss; got %r" % (timeout, msgs))
                raw = await asyncio.wait_for(self.conn.recv(), left)
                msgs.append(json.loads(raw))
        except websockets.ConnectionClosed:
            pass
        await asyncio.wait_for(self.conn.wait_closed(), timeout)
        return self.conn.close_code, self.conn.close_reason, msgs

    async def close(self):
        try:
            await asyncio.wait_for(self.conn.close(), 3)
        except (asyncio.TimeoutError, websockets.ConnectionClosed, OSError):
            pass


def aio(fn):
    """Run an `async def` test under asyncio.run with an overall deadline."""
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        async def body():
            return await asyncio.wait_for(fn(*a, **kw), TEST_DEADLINE)
        return asyncio.run(body())
    return wrapper


# --------------------------------------------------------------------------- raw RFC 6455 client

class RawWS:
    """A minimal blocking RFC 6455 client that never answers ping frames by itself."""

    def __init__(self, port, path="/v1/ws", headers=None, timeout=RECV_TIMEOUT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1:%d" % port, "Upgrade: websocket",
                 "Connection: Upgrade", "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
        for k, v in (headers or {}).items():
            lines.append("%s: %s" % (k, v))
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise AssertionError("connection closed during the handshake: %r" % buf)
            buf += chunk
        head, self.buf = buf.split(b"\r\n\r\n", 1)
        self.status_line = head.split(b"\r\n")[0].decode()
        self.status = int(self.status_line.split()[1])

    def _read(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("frame not complete in time")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self, timeout=RECV_TIMEOUT):
        """Returns (opcode, payload) of the next frame (no fragmentation support needed here)."""
        deadline = time.monotonic() + timeout
        b1, b2 = self._read(2, deadline)
        opcode = b1 & 0x0F
        n = b2 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read(2, deadline))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read(8, deadline))[0]
        if b2 & 0x80:
            mask = self._read(4, deadline)
            data = bytes(c ^ mask[i % 4] for i, c in enumerate(self._read(n, deadline)))
        else:
            data = self._read(n, deadline)
        return opcode, data

    def send_frame(self, opcode, payload):
        if isinstance(payload, str):
            payload = payload.encode()
        head = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        self.sock.sendall(head + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload)))

    def send_json(self, obj):
        self.send_frame(1, json.dumps(obj))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# --------------------------------------------------------------------------- fixtures

class Servers:
    """Starts servers on demand and stops every one of them (by its own PID) at teardown."""

    def __init__(self):
        self.all = []

    def start(self, store="memory", env=None, data=None, args=None):
        s = Server(store=store, env=env, data=data, args=args).start()
        self.all.append(s)
        return s

    def stop_all(self):
        codes = []
        for s in self.all:
            try:
                rc = s.terminate()
                codes.append((s, rc))
            finally:
                s.cleanup()
        self.all = []
        return codes


# Short timers that do not disturb ordinary tests.
BASE_ENV = {
    "HERALD_NATIVE_RECOVERY_WINDOW": 60,
    "HERALD_NATIVE_AUTH_TIMEOUT": 2,
}


@pytest.fixture(scope="session")
def servers():
    s = Servers()
    yield s
    bad = [(x.base, rc, x.stderr_tail()) for x, rc in s.stop_all() if rc != 0]
    assert not bad, "servers exited non-zero after SIGTERM: %r" % bad


@pytest.fixture(scope="session")
def srv(servers):
    """The shared memory-store server."""
    return servers.start("memory", BASE_ENV)


@pytest.fixture(scope="session")
def sqlite_srv(servers):
    """The shared server on the default (sqlite) store."""
    return servers.start("sqlite", BASE_ENV)


@pytest.fixture(params=["memory", "sqlite"])
def any_srv(request, srv, sqlite_srv):
    return srv if request.param == "memory" else sqlite_srv


@pytest.fixture
def env(srv):
    return srv.setup()


# --------------------------------------------------------------------------- cluster mode

class Clusters:
    """Starts clusters (cluster.py: a redis-server and herald nodes) on demand; stop_all ends
    every process of every one of them, by its own PID."""

    def __init__(self):
        self.all = []

    def new(self, redis_options=None, env=None, args=None):
        import cluster  # cluster.py imports this module: imported here, not at the top
        c = cluster.Cluster(redis_options=redis_options, env=env, args=args)
        self.all.append(c)
        return c

    def start(self, n=3, **kw):
        """A new cluster of `n` nodes and a fresh tenant with its apps (an Env on node 0)."""
        c = self.new(**kw)
        return c, c.start(n, provision=lambda node: node.setup())

    def stop_all(self):
        codes = []
        for c in self.all:
            codes += c.stop()
        self.all = []
        return codes


@pytest.fixture
def clusters():
    """`clusters.new(...)` then `.start(n, provision)`; at teardown every node still running
    must exit 0 on SIGTERM (a sanitizer report or a hang fails the test)."""
    c = Clusters()
    try:
        yield c
    finally:
        codes = c.stop_all()
    bad = [(s.base, rc, s.stderr_tail()) for s, rc in codes if rc != 0]
    assert not bad, "nodes exited non-zero after SIGTERM: %r" % bad
