"""Issue 13 items 6 (bounded sessions and connections) and 11 (TLS), on the real binary,
driven as an attacker or an operator would."""
import asyncio
import hashlib
import json
import os
import resource
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
import warnings

import pytest

import conftest
from conftest import BIN, basic, rid
from test_hardening import _sanitized, rss_bytes


def log_of(s):
    """What the server wrote: log lines go to stderr, startup notes to stdout."""
    text = ""
    for path in (s.out_path, s.err_path):
        with open(path, "rb") as f:
            text += f.read().decode(errors="replace")
    return text


def wait_for(pred, timeout=5.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def raw_get(port, path="/healthz", source=None, timeout=5):
    """A keep-alive HTTP connection that has sent one request; returns (socket, reply bytes)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if source:
        s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        if b"\r\n\r\n" in data:
            head, _, body = data.partition(b"\r\n\r\n")
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    n = int(line.split(b":")[1])
                    while len(body) < n:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        body += chunk
            data = head + b"\r\n\r\n" + body
    except (ConnectionResetError, socket.timeout):
        pass
    return s, data


def status_of(reply):
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else None


# --------------------------------------------------------------------------- item 6: sessions

async def _cycles(s, key, n, topic="/it/bound"):
    """n connect / subscribe / close cycles; returns every welcome's resume token, in order."""
    tokens = []
    for _ in range(n):
        ws, w = await s.ws_auth(key)
        await ws.subscribe([{"topic": topic}])
        tokens.append(w["resume_token"])
        await ws.close()
    return tokens


async def _resume(s, key, token):
    ws, w = await s.ws_auth(key, query={"resume": token, "last_seq": 0})
    await ws.close()
    return w["recovered"], w.get("recovery_error")


def _session_cycles_rss(servers, env, n):
    s = servers.start("memory", env)
    e = s.setup()
    # Events the sessions' rings hold: each detached session keeps its last deliveries.
    e.publish(*[e.ev("/bound", data={"pad": "x" * 2000, "n": i}) for i in range(50)])

    async def run():
        await _cycles(s, e.key, 10)  # warm-up: allocator arenas, the socket machinery
        before = rss_bytes(s.proc.pid)
        tokens = await _cycles(s, e.key, n)
        # Deliveries for every session kept: one event after the cycles lands in every ring.
        e.publish(e.ev("/bound", data={"pad": "y" * 2000}))
        await asyncio.sleep(0.3)
        after = rss_bytes(s.proc.pid)
        return tokens, before, after

    tokens, before, after = asyncio.run(asyncio.wait_for(run(), 120))
    return s, e, tokens, before, after


def test_detached_sessions_are_bounded_per_app_oldest_dropped(servers):
    n, bound = 300, 20
    s, e, tokens, before, after = _session_cycles_rss(
        servers, {"HERALD_NATIVE_RECOVERY_WINDOW": 180, "HERALD_CORE_MAX_SESSIONS_PER_APP": bound,
                  "HERALD_NATIVE_RECOVERY_BUFFER": 1000}, n)
    print("%d connect/subscribe/close cycles, max_sessions_per_app=%d: RSS before %d, after %d "
          "(%+d bytes)" % (n, bound, before, after, after - before))

    async def check():
        # The newest `bound` are kept and resume; the older ones were dropped: expired.
        got_new = [await _resume(s, e.key, t) for t in tokens[-5:]]
        got_old = [await _resume(s, e.key, t) for t in tokens[:5]]
        return got_new, got_old

    got_new, got_old = asyncio.run(asyncio.wait_for(check(), 60))
    assert all(ok for ok, _ in got_new), got_new
    assert all((ok, why) == (False, "expired") for ok, why in got_old), got_old
    # The RSS bound is a release-build property: ASan keeps freed blocks in its quarantine (256 MB
    # by default), so resident memory there grows with allocation churn, not with what is held.
    # The resumes above check the bound itself in both builds.
    if not _sanitized():
        assert after - before < 8 * 1024 * 1024, (before, after)


def test_detached_sessions_are_bounded_per_tenant(servers):
    s = servers.start("memory", {"HERALD_NATIVE_RECOVERY_WINDOW": 180,
                                 "HERALD_CORE_MAX_SESSIONS_PER_TENANT": 3})
    t = s.tenant()
    a1, a2 = s.app(t, "app"), s.app(t, "app")

    async def run():
        first = await _cycles(s, a1["api_key"], 2)   # oldest two, app 1
        second = await _cycles(s, a2["api_key"], 2)  # app 2: the tenant holds 4 > 3
        await asyncio.sleep(0.2)
        # The kept ones first: a resume re-detaches the same session, while a failed one opens
        # a new session (which would count, and push out the next oldest).
        r2 = [await _resume(s, a2["api_key"], x) for x in second]
        r1 = [await _resume(s, a1["api_key"], x) for x in reversed(first)]
        return r1, r2

    r1, r2 = asyncio.run(asyncio.wait_for(run(), 60))
    assert r2 == [(True, None), (True, None)], r2
    assert r1 == [(True, None), (False, "expired")], r1


# --------------------------------------------------------------------------- item 6: connections

RC = "/ringcentral"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def rc_ws_url(s, app):
    r = s.http("POST", RC + "/restapi/oauth/token",
               body=urllib.parse.urlencode({"grant_type": "client_credentials"}),
               headers=dict(FORM, Authorization=basic(app["client_id"], app["client_secret"])))
    assert r.status == 200, r.raw
    w = s.http("POST", RC + "/restapi/oauth/wstoken", token=r.json["access_token"])
    assert w.status == 200, w.raw
    return w.json["uri"] + "?access_token=" + urllib.parse.quote(w.json["ws_access_token"])


async def _rc_open(url, ssl_ctx=None):
    import websockets
    kw = {"ssl": ssl_ctx} if ssl_ctx else {}
    ws = await websockets.connect(url, ping_interval=None, close_timeout=2, open_timeout=5, **kw)
    try:
        first = await asyncio.wait_for(ws.recv(), 5)
    except Exception:  # noqa: BLE001 - closed at once: the close code says why
        first = ""
    return ws, first


async def _closed_within(ws, seconds):
    try:
        while True:
            await asyncio.wait_for(ws.recv(), seconds)
    except asyncio.TimeoutError:
        return None
    except Exception:  # noqa: BLE001 - websockets' ConnectionClosed*
        return ws.close_code


def test_rc_client_credentials_sockets_count_against_the_app_limit(servers):
    """Each client-credentials grant is a login session of its own: before the fix every socket
    counted only against its login, so an app opened as many as it had tokens."""
    s = servers.start("memory", {"HERALD_CORE_MAX_CONNECTIONS_PER_APP": 2})
    t = s.tenant()
    app = s.app(t, "app")

    async def run():
        socks = []
        for _ in range(2):
            ws, _ = await _rc_open(rc_ws_url(s, app))
            socks.append(ws)
        third, first_msg = await _rc_open(rc_ws_url(s, app))
        code = await _closed_within(third, 5)
        still = [await _closed_within(w, 0.5) for w in socks]
        for w in socks:
            await w.close()
        # A slot given back is usable again.
        again, _ = await _rc_open(rc_ws_url(s, app))
        again_code = await _closed_within(again, 0.5)
        await again.close()
        return code, first_msg, still, again_code

    code, msg, still, again_code = asyncio.run(asyncio.wait_for(run(), 60))
    print("RingCentral 3rd client-credentials socket, max_connections_per_app=2: close %s, %s"
          % (code, msg[:200]))
    assert code is not None, "third socket stayed open"
    assert still == [None, None], still
    assert again_code is None


def test_native_sockets_count_against_the_tenant_limit(servers):
    s = servers.start("memory", {"HERALD_CORE_MAX_CONNECTIONS_PER_TENANT": 2})
    t = s.tenant()
    a1, a2 = s.app(t, "app"), s.app(t, "app")

    async def run():
        w1, _ = await s.ws_auth(a1["api_key"])
        w2, _ = await s.ws_auth(a2["api_key"])
        w3 = await s.ws(headers={"Authorization": "Bearer " + a1["api_key"]})
        closed = await w3.closed()
        await w1.close()
        await w2.close()
        return closed

    closed = asyncio.run(asyncio.wait_for(run(), 30))
    assert closed[0] == 4029 and "tenant" in closed[1], closed


def one_more_past(port, n):
    """Holds n keep-alive connections (each answered 200), then opens one more: returns the held
    sockets and that one's reply (its socket closed)."""
    held = []
    try:
        for _ in range(n):
            c, reply = raw_get(port)
            held.append(c)
            assert status_of(reply) == 200, reply
        c, reply = raw_get(port)
        c.close()
        return held, reply
    except BaseException:
        for c in held:
            c.close()
        raise


def test_max_connections_refused_at_accept_with_503(servers):
    s = servers.start("memory", {"HERALD_CORE_MAX_CONNECTIONS": 5})
    held, reply = one_more_past(s.port, 5)
    try:
        print("6th connection with max_connections=5:", reply.split(b"\r\n")[0], reply[-90:])
        assert status_of(reply) == 503, reply
        assert b"too many connections" in reply
        held.pop().close()
        assert wait_for(lambda: status_of(raw_get(s.port)[1]) == 200), "slot not given back"
    finally:
        for c in held:
            c.close()


def test_max_connections_per_address_429_other_address_unaffected(servers):
    s = servers.start("memory", {"HERALD_CORE_MAX_CONNECTIONS_PER_ADDRESS": 3})
    held, reply = one_more_past(s.port, 3)
    try:
        assert status_of(reply) == 429, reply
        # Another loopback source address has its own count.
        c, reply = raw_get(s.port, source="127.0.0.2")
        c.close()
        assert status_of(reply) == 200, reply
    finally:
        for c in held:
            c.close()


def test_open_file_limit_raised_and_connections_refused_before_it(servers, tmp_path):
    """Started with a soft limit of 256 (hard 20,000 here): Herald raises it and says so. Then
    under a hard limit of 256 (a wrapper), 400 connections never exhaust the descriptors: past
    max_connections (the limit less a reserve) they are refused, and the server keeps serving."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        s = servers.start("memory")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    with open("/proc/%d/limits" % s.proc.pid) as f:
        line = [x for x in f if x.startswith("Max open files")][0].split()
    assert int(line[3]) == int(line[4]) == hard, line
    assert wait_for(lambda: "open-file limit raised from 256 to %d" % hard in log_of(s)), \
        log_of(s)

    wrapper = tmp_path / "herald-lowfd"
    wrapper.write_text("#!/bin/sh\nexec prlimit --nofile=256:256 %s \"$@\"\n" % BIN)
    wrapper.chmod(0o755)
    saved = conftest.BIN
    conftest.BIN = str(wrapper)
    try:
        s2 = servers.start("memory")
    finally:
        conftest.BIN = saved
    assert "max_connections=128" in log_of(s2), log_of(s2)
    held, codes = [], {}
    try:
        for _ in range(400):
            try:
                c, reply = raw_get(s2.port, timeout=3)
            except OSError:
                codes["error"] = codes.get("error", 0) + 1
                continue
            codes[status_of(reply)] = codes.get(status_of(reply), 0) + 1
            held.append(c)
        print("400 connections under a descriptor limit of 256:", codes)
        assert codes.get(200) == 128, codes
        assert codes.get(503, 0) >= 200, codes
    finally:
        for c in held:
            c.close()
    assert wait_for(lambda: status_of(raw_get(s2.port)[1]) == 200)
    assert s2.proc.poll() is None


# --------------------------------------------------------------------------- item 11: TLS

def make_cert(directory, cn="127.0.0.1", name="server"):
    """A throwaway self-signed certificate for 127.0.0.1 (made now; no key is committed)."""
    cert, key = os.path.join(directory, name + ".pem"), os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=" + cn,
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=30)
    return cert, key


def fingerprint(port, ctx):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as t:
            return hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest(), t.version()


@pytest.fixture(scope="module")
def tls_srv(servers):
    d = tempfile.mkdtemp(prefix="herald-tls-")
    cert, key = make_cert(d)
    s = servers.start("memory", {"HERALD_CORE_TLS_CERT_FILE": cert,
                                 "HERALD_CORE_TLS_KEY_FILE": key,
                                 "HERALD_NATIVE_RECOVERY_WINDOW": 60})
    s.ssl_context = ssl.create_default_context(cafile=cert)
    s.cert, s.key, s.dir = cert, key, d
    return s


def test_tls_listener_says_https_and_speaks_only_tls_12_plus(tls_srv):
    s = tls_srv
    assert s.base.startswith("https://127.0.0.1:"), s.base
    assert s.http("GET", "/healthz").status == 200
    _, version = fingerprint(s.port, s.ssl_context)
    assert version in ("TLSv1.2", "TLSv1.3"), version
    # Plain HTTP to the TLS port: no HTTP reply, the connection is dropped.
    c, reply = raw_get(s.port)
    c.close()
    assert not reply.startswith(b"HTTP/"), reply[:100]
    # TLS 1.1 and older are refused by the server.
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError):
        fingerprint(s.port, old)
    assert s.http("GET", "/healthz").status == 200


def test_wss_on_every_dialect_prefix(tls_srv):
    """The upgrade completes over TLS on every dialect's socket path (native, RingCentral,
    Zoom, SMS gateway): each then speaks its own protocol over the encrypted stream."""
    s = tls_srv
    import websockets

    e = s.setup()

    async def one(path, headers=None):
        # websockets.connect returns only after the 101 over TLS.
        ws = await websockets.connect(s.ws_base + path, ssl=s.ssl_context, ping_interval=None,
                                      close_timeout=2, open_timeout=5,
                                      extra_headers=headers or {})
        try:
            msg = await asyncio.wait_for(ws.recv(), 5)
        except Exception:  # noqa: BLE001 - closed by the dialect: its close code says why
            msg = None
        code = ws.close_code
        await ws.close()
        return msg, code

    async def run():
        got = {"/v1/ws": await one("/v1/ws", {"Authorization": "Bearer " + e.key})}
        # Without credentials the other dialects answer in their own words, then close.
        for p in (RC + "/ws", "/zoom/ws", "/smsgw/ws"):
            got[p] = await one(p)
        return got

    got = asyncio.run(asyncio.wait_for(run(), 60))
    print("WSS upgrade on each dialect path (first message, close code):", got)
    assert json.loads(got["/v1/ws"][0])["type"] == "welcome", got
    # RingCentral and Zoom refuse a socket without a token at once, over the TLS stream (the
    # SMS gateway waits for its auth message: its upgrade completing is what is shown).
    for path in (RC + "/ws", "/zoom/ws"):
        assert got[path][0] is not None or got[path][1] is not None, (path, got[path])


def test_https_and_wss_native_flow_and_rc_socket(tls_srv):
    s = tls_srv
    e = s.setup()

    async def run():
        ws, w = await s.ws_auth(e.key)
        await ws.subscribe([{"topic": "/it/tls"}])
        e.publish(e.ev("/tls", data={"secret": "over tls"}))
        got = await ws.events(1)
        await ws.close()
        rc, first = await _rc_open(rc_ws_url(s, s.app(e.tenant, "app")), s.ssl_context)
        await rc.close()
        return got, first

    got, first = asyncio.run(asyncio.wait_for(run(), 30))
    assert got[0]["event"]["data"] == {"secret": "over tls"}, got
    assert first, first


def herald_cli(*args, timeout=30):
    return subprocess.run([BIN] + list(args), capture_output=True, timeout=timeout, text=True)


def test_cli_over_https_verifies_and_never_sends_a_key_in_clear(tls_srv):
    s = tls_srv
    e = s.setup()
    # publish and app create against https:// with --ca-file: verified, delivered.
    r = herald_cli("publish", "--server", s.base, "--ca-file", s.cert, "--api-key", e.pkey,
                   "--topic", "/it/cli", "--type", "it.cli", "--data", '{"n":1}')
    assert r.returncode == 0, (r.stdout, r.stderr)
    r = herald_cli("app", "create", "--server", s.base, "--ca-file", s.cert, "--admin-key",
                   conftest.ADMIN_KEY, "--tenant", e.tenant, "--name", rid("cli"), "--json")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert json.loads(r.stdout)["api_key"]
    # Without --ca-file the system store does not know this certificate: no connection, exit 3.
    r = herald_cli("publish", "--server", s.base, "--api-key", e.pkey, "--topic", "/it/cli",
                   "--type", "it.cli")
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "certificate verify failed" in r.stderr, r.stderr
    # tail over wss:// receives what is published over https://.
    tail = subprocess.Popen([BIN, "tail", "--server", s.base, "--ca-file", s.cert, "--api-key",
                             e.key, "--topic", "/it/tail", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = []
        reader = threading.Thread(target=lambda: line.append(tail.stdout.readline()))
        reader.start()
        for i in range(40):
            if line:
                break
            e.publish(e.ev("/tail", data={"i": i}))
            time.sleep(0.25)
        reader.join(5)
        assert line and json.loads(line[0])["topic"] == "/it/tail", (line, tail.poll())
    finally:
        tail.send_signal(signal.SIGTERM)
        tail.wait(10)


def test_cli_sends_no_credential_in_clear_to_an_https_url(tmp_path):
    """A plain TCP listener posing as an https:// server records what the CLI sends it: a TLS
    ClientHello, never an HTTP request with the key (before the fix: the key in clear)."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(8)
    port = lst.getsockname()[1]
    seen = []

    def accept():
        lst.settimeout(20)
        for _ in range(3):
            try:
                c, _ = lst.accept()
            except OSError:
                return
            c.settimeout(3)
            data = b""
            try:
                while len(data) < 65536:
                    chunk = c.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                pass
            seen.append(data)
            c.close()

    th = threading.Thread(target=accept)
    th.start()
    secret = "key_" + rid("secret")
    base = "https://127.0.0.1:%d" % port
    runs = [herald_cli("publish", "--server", base, "--api-key", secret, "--topic", "/t",
                       "--type", "x"),
            herald_cli("app", "create", "--server", base, "--admin-key", secret, "--tenant", "t",
                       "--name", "n")]
    wss = subprocess.Popen([BIN, "tail", "--server", base, "--api-key", secret],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    th.join(25)
    wss.send_signal(signal.SIGTERM)
    wss.wait(10)
    lst.close()
    # The TLS handshake fails: no connection made, exit 3.
    assert [r.returncode for r in runs] == [3, 3], [(r.stdout, r.stderr) for r in runs]
    assert len(seen) == 3, seen
    for data in seen:
        assert secret.encode() not in data, data[:200]
        assert data[:1] == b"\x16", data[:40]  # a TLS handshake record
    # An unknown scheme is refused before anything is sent.
    r = herald_cli("publish", "--server", "htps://127.0.0.1:1", "--api-key", secret, "--topic",
                   "/t", "--type", "x")
    assert r.returncode == 1 and "scheme" in r.stderr, r.stderr


def test_sighup_reloads_the_certificate_and_never_kills(tls_srv, servers):
    s = tls_srv
    old_fp, _ = fingerprint(s.port, s.ssl_context)
    cert2, key2 = make_cert(s.dir, name="next")
    os.replace(cert2, s.cert)
    os.replace(key2, s.key)
    s.proc.send_signal(signal.SIGHUP)
    ctx2 = ssl.create_default_context(cafile=s.cert)
    assert wait_for(lambda: "TLS certificate reloaded" in log_of(s), 5), log_of(s)[-500:]
    new_fp, _ = fingerprint(s.port, ctx2)
    assert new_fp != old_fp
    s.ssl_context = ctx2
    assert s.http("GET", "/healthz").status == 200
    # A broken file: the reload is refused, the running certificate stays, the process lives.
    with open(s.key, "w") as f:
        f.write("not a key\n")
    s.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "not reloaded" in log_of(s), 5), log_of(s)[-500:]
    assert fingerprint(s.port, ctx2)[0] == new_fp
    assert s.proc.poll() is None
    # SIGHUP on a plain server: logged, not fatal.
    p = servers.start("memory")
    p.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "SIGHUP" in log_of(p), 5)
    assert p.proc.poll() is None and p.http("GET", "/healthz").status == 200


def test_tls_start_fails_clearly_on_a_bad_key(tmp_path):
    cert, _ = make_cert(str(tmp_path))
    _, other_key = make_cert(str(tmp_path), name="other")
    env = dict(os.environ, HERALD_ADMIN_KEY=conftest.ADMIN_KEY, HERALD_CORE_TLS_CERT_FILE=cert,
               HERALD_CORE_TLS_KEY_FILE=other_key)
    r = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", "--data", str(tmp_path),
                        "--store", "memory"], env=env, capture_output=True, text=True, timeout=20)
    assert r.returncode != 0
    assert "does not match the certificate" in r.stderr, r.stderr
