"""Issue 13 (hardening), driven as an attacker or an operator would, on the real binary."""
import asyncio
import base64
import os
import socket
import subprocess
import time
import urllib.parse

import pytest

from conftest import ADMIN_KEY, basic, rc_app_and_user, rid


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for %d" % pid)


def masked_frame(opcode, payload):
    mask = os.urandom(4)
    body = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
    assert len(payload) < 126
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


def open_raw(port, headers=None, rcvbuf=4096):
    """A WebSocket upgrade on a socket with a tiny receive buffer: what the server writes to a
    client that never reads piles up on the server's side, not in this process's kernel."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    lines = ["GET /v1/ws HTTP/1.1", "Host: 127.0.0.1:%d" % port, "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
    lines += ["%s: %s" % kv for kv in (headers or {}).items()]
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        assert chunk, buf
        buf += chunk
    assert buf.startswith(b"HTTP/1.1 101"), buf[:200]
    return s


def ping_flood(srv, sock, seconds):
    """Sends ping frames (125-byte payloads) and never reads, until the server drops the
    connection or `seconds` pass. Returns (closed, seconds taken, bytes sent, peak RSS)."""
    batch = b"".join(masked_frame(0x9, os.urandom(125)) for _ in range(64))
    sock.settimeout(0.5)
    sent = 0
    peak = rss_bytes(srv.proc.pid)
    t0 = time.monotonic()
    last_sample = t0
    while time.monotonic() - t0 < seconds:
        try:
            sock.sendall(batch)
            sent += len(batch)
        except socket.timeout:
            pass  # the server's receive side is full for now; keep pressing
        except OSError:  # reset or broken pipe: the server dropped us
            return True, time.monotonic() - t0, sent, max(peak, rss_bytes(srv.proc.pid))
        if time.monotonic() - last_sample > 0.05:
            peak = max(peak, rss_bytes(srv.proc.pid))
            last_sample = time.monotonic()
    return False, time.monotonic() - t0, sent, max(peak, rss_bytes(srv.proc.pid))


def _sanitized():
    """True for an ASan build of the binary (its allocator and shadow memory add resident pages
    of their own: the release bound of a few MB becomes 16 MB there, still far below the
    unbounded growth, +115 MB in 20 s, that this guards against)."""
    binary = os.environ.get("HERALD_BIN", "")
    try:
        out = subprocess.run(["ldd", binary], capture_output=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return b"libasan" in out


RSS_SLACK = 16 * 1024 * 1024 if _sanitized() else 4 * 1024 * 1024


@pytest.fixture(scope="module")
def flood_srv(servers):
    # A long auth deadline, so that only the queue bound can end an unauthenticated flood; a
    # short closing handshake, so that a socket that never reads is dropped soon after.
    # Under ASan (the sanitize build) freed memory waits in the allocator's quarantine and
    # counts as resident; without a quarantine the RSS figures mean what they do in release.
    asan = os.environ.get("ASAN_OPTIONS", "")
    return servers.start("memory", {"HERALD_NATIVE_AUTH_TIMEOUT": 60,
                                    "HERALD_NATIVE_CLOSE_TIMEOUT": 1,
                                    "HERALD_NATIVE_HEARTBEAT_INTERVAL": 600,
                                    "HERALD_NATIVE_IDLE_TIMEOUT": 600,
                                    "ASAN_OPTIONS": (asan + ":" if asan else "") +
                                    "quarantine_size_mb=0"})


def test_ping_flood_unauthenticated_is_cut_and_rss_bounded(flood_srv):
    before = rss_bytes(flood_srv.proc.pid)
    sock = open_raw(flood_srv.port)
    try:
        closed, took, sent, peak = ping_flood(flood_srv, sock, 20)
    finally:
        sock.close()
    after = rss_bytes(flood_srv.proc.pid)
    print("unauthenticated ping flood: closed=%s after %.2fs, %d bytes of pings sent, "
          "RSS before %d, peak %d, after %d" % (closed, took, sent, before, peak, after))
    assert closed, "server still accepting pings after %.1fs (%d bytes)" % (took, sent)
    # The unauthenticated bound is 64 KiB: a few MB is generous.
    assert peak - before < RSS_SLACK, (before, peak)
    assert flood_srv.http("GET", "/healthz").status == 200


def test_ping_flood_authenticated_is_cut_at_send_queue_bound(flood_srv):
    e = flood_srv.setup()
    before = rss_bytes(flood_srv.proc.pid)
    sock = open_raw(flood_srv.port, headers={"Authorization": "Bearer " + e.key})
    try:
        closed, took, sent, peak = ping_flood(flood_srv, sock, 25)
    finally:
        sock.close()
    after = rss_bytes(flood_srv.proc.pid)
    print("authenticated ping flood: closed=%s after %.2fs, %d bytes of pings sent, "
          "RSS before %d, peak %d, after %d" % (closed, took, sent, before, peak, after))
    assert closed, "server still accepting pings after %.1fs (%d bytes)" % (took, sent)
    # core.send_queue_bytes (4 MiB by default) of pongs, and a few MB beside.
    assert peak - before < 4 * 1024 * 1024 + RSS_SLACK, (before, peak)
    assert flood_srv.http("GET", "/healthz").status == 200


# --------------------------------------------------------------------------- item 2: drain


async def _drain_under_request_load(servers, sockets=20, per_socket=200):
    s = servers.start("sqlite", {"HERALD_NATIVE_MAX_INFLIGHT": 100000,
                                 "HERALD_CORE_BLOCKING_THREADS": 2,
                                 "HERALD_NATIVE_CLOSE_TIMEOUT": 2})
    e = s.setup()
    for _ in range(4):
        e.publish(*[e.ev(data={"n": i, "pad": "x" * 200}) for i in range(100)])
    socks, tokens = [], []
    for _ in range(sockets):
        ws, w = await s.ws_auth(e.key)
        await ws.subscribe([{"topic": "/it/drain"}])
        socks.append(ws)
        tokens.append(w["resume_token"])
    # Every socket queues history reads on the blocking pool, far more than it can run before
    # the signal: the drain finds work running and work waiting.
    for i in range(per_socket):
        for j, ws in enumerate(socks):
            await ws.send({"type": "request", "id": "r%d_%d" % (j, i), "method": "GET",
                           "path": "/v1/events?limit=100"})
    await asyncio.sleep(0.05)
    t0 = time.monotonic()
    rc = await asyncio.get_running_loop().run_in_executor(None, s.terminate)
    took = time.monotonic() - t0
    for ws in socks:
        await ws.close()
    return rc, took, s, e, tokens


async def _resume_all(s, key, tokens):
    out = []
    for t in tokens:
        ws, w = await s.ws_auth(key, query={"resume": t, "last_seq": 0})
        out.append(w["recovered"])
        await ws.close()
    return out


def test_sigterm_with_requests_queued_on_the_pool_exits_0(servers):
    results = []
    for _ in range(5):
        rc, took, s, e, tokens = asyncio.run(asyncio.wait_for(
            _drain_under_request_load(servers, sockets=10, per_socket=100), 40))
        results.append((rc, round(took, 2)))
        assert rc == 0, (results, s.stderr_tail())
    print("SIGTERM under request-over-socket load: (exit code, seconds) per run:", results)
    # The drain persisted the sessions: restarted on the same data, every one resumes.
    again = servers.start("sqlite", {"HERALD_NATIVE_RECOVERY_WINDOW": 60}, data=s.data)
    recovered = asyncio.run(asyncio.wait_for(_resume_all(again, e.key, tokens), 40))
    print("sessions resumed after the restart: %d of %d" % (sum(recovered), len(recovered)))
    assert all(recovered), recovered


# --------------------------------------------------------------------------- item 3: auth failures

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
RC_TOKEN = "/ringcentral/restapi/oauth/token"


def rc_token(s, app, fields, secret=None):
    return s.http("POST", RC_TOKEN, body=urllib.parse.urlencode(fields),
                  headers=dict(FORM, Authorization=basic(app["client_id"],
                                                         secret or app["client_secret"])))


def assert_rc_too_many(r):
    assert r.status == 429, r
    assert r.json["errorCode"] == "CMN-301", r.raw
    assert int(r.headers["retry-after"]) >= 1, r.headers


LIMITED = {"HERALD_NATIVE_AUTH_FAIL_RATE": 1, "HERALD_NATIVE_AUTH_FAIL_BURST": 3}


def test_rc_password_guessing_counts_and_gets_429(servers):
    s = servers.start("memory", LIMITED)
    app, login = rc_app_and_user(s)
    # Ordinary failures keep RingCentral's 400 invalid_grant until the limiter (burst 3, 1/s)
    # is empty, then 429. Each check costs a password hash (~50 ms in release, ~300 ms under
    # ASan), so the bucket refills a little meanwhile: the bound allows for the time taken.
    t0 = time.monotonic()
    tries = 0
    while True:
        r = rc_token(s, app, {"grant_type": "password", "username": login, "password": "bad"})
        tries += 1
        if r.status == 429:
            break
        assert r.status == 400 and r.json["error"] == "invalid_grant", r
        assert tries <= 3 + int(time.monotonic() - t0) + 1, (tries, time.monotonic() - t0)
    assert tries >= 4, tries  # the burst of 3 failures is allowed first
    assert_rc_too_many(r)
    # A valid client secret (client-credentials grant) is not refused for those failures.
    r = rc_token(s, app, {"grant_type": "client_credentials"})
    assert r.status == 200, r
    # Once the bucket refills, the right password logs in.
    time.sleep(int(r.headers.get("retry-after", "1")) + 1.2)
    r = rc_token(s, app, {"grant_type": "password", "username": login, "password": "right-pw"})
    assert r.status == 200 and r.json["owner_id"] == "101", r


def test_rc_client_secret_guessing_counts_and_gets_429(servers):
    s = servers.start("memory", LIMITED)
    app, _ = rc_app_and_user(s)
    for _ in range(3):
        r = rc_token(s, app, {"grant_type": "client_credentials"}, secret="wrong")
        assert r.status == 401 and r.json["error"] == "invalid_client", r
    assert_rc_too_many(rc_token(s, app, {"grant_type": "client_credentials"}, secret="wrong"))
    # The revoke path checks the same secret: past the limit it answers the same way.
    r = s.http("POST", "/ringcentral/restapi/oauth/revoke", body="token=x",
               headers=dict(FORM, Authorization=basic(app["client_id"], "wrong")))
    assert_rc_too_many(r)
    assert rc_token(s, app, {"grant_type": "client_credentials"}).status == 200


def test_rc_password_check_takes_as_long_for_an_unknown_login(servers):
    s = servers.start("memory")  # default limit: 20 failures in a burst (14 here)
    app, login = rc_app_and_user(s)

    # Known and unknown logins alternate, so a burst of load on this shared machine falls on both
    # series alike; 8 of each stays under the burst limit.
    times = {"known": [], "unknown": []}
    nobody = rid("nobody")
    for _ in range(8):
        for kind, username in (("known", login), ("unknown", nobody)):
            t0 = time.monotonic()
            r = rc_token(s, app, {"grant_type": "password", "username": username,
                                  "password": "bad"})
            times[kind].append((time.monotonic() - t0) * 1000)
            assert r.status == 400 and r.json["error"] == "invalid_grant", r
    known, unknown = (sorted(times[k])[4] for k in ("known", "unknown"))
    print("password grant, wrong password: known login %.1f ms, unknown login %.1f ms (median of 8)"
          % (known, unknown))
    # Before: 35 ms against 0.2 ms (175x). The same PBKDF2 work either way now; the bounds leave
    # room for a loaded machine's noise and still catch a check that skips the hash. Timing is a
    # property of the release build: ASan instruments our code but not OpenSSL's, which skews the
    # ratio; make test checks it in the release tier of the same run.
    if not _sanitized():
        assert 0.33 < unknown / known < 3, (known, unknown)


# --------------------------------------------------------------------------- item 9: exactness


def raw_http(port, head):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(head)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1]), data


def test_oversized_headers_431_long_request_line_414(srv):
    status, raw = raw_http(srv.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " +
                           b"a" * 40000 + b"\r\n\r\n")
    assert status == 431, raw[:300]
    status, raw = raw_http(srv.port, b"GET /healthz?" + b"a" * 40000 +
                           b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 414, raw[:300]
    # A path past max_path_bytes but within the header limit: the route's 414, as before.
    status, raw = raw_http(srv.port, b"GET /healthz?" + b"a" * 9000 +
                           b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 414, raw[:300]


def test_ws_token_uri_ignores_host_header(env):
    srv = env.srv
    tok = srv.access_token(env.app)
    r = srv.http("POST", "/v1/ws-tokens", token=tok, headers={"Host": "evil.example:666"})
    assert r.status == 200, r
    assert r.json["uri"].startswith("ws://127.0.0.1:%d/" % srv.port), r.json
    app, _ = rc_app_and_user(srv)
    at = rc_token(srv, app, {"grant_type": "client_credentials"}).json["access_token"]
    r = srv.http("POST", "/ringcentral/restapi/oauth/wstoken", token=at,
                 headers={"Host": "evil.example:666"})
    assert r.status == 200, r
    assert r.json["uri"] == "ws://127.0.0.1:%d/ringcentral/ws" % srv.port, r.json


def test_ws_token_uri_uses_public_url(servers):
    s = servers.start("memory", {"HERALD_CORE_PUBLIC_URL": "https://herald.example.com"})
    e = s.setup()
    r = s.http("POST", "/v1/ws-tokens", token=s.access_token(e.app),
               headers={"Host": "evil.example:666"})
    assert r.json["uri"].startswith("wss://herald.example.com/"), r.json


def test_private_metrics_need_the_exact_admin_key(servers):
    s = servers.start("memory", {"HERALD_CORE_METRICS_PUBLIC": "false"})
    assert s.http("GET", "/metrics").status == 401
    for wrong in (ADMIN_KEY[:-1], ADMIN_KEY + "x", ADMIN_KEY[:-1] + "!", ""):
        assert s.http("GET", "/metrics", headers={"Authorization": "Bearer " + wrong}).status == 401
    r = s.http("GET", "/metrics", admin=True)
    assert r.status == 200 and b"herald_" in r.raw, r


@pytest.mark.parametrize("topic", ["/it/a\u0000b", "/it/a\nb", "/it/\u007f", "/it/*",
                                   "/it/**", "/it/**/x", "/*/x"])
def test_publish_refuses_control_characters_and_wildcard_segments(env, topic):
    r = env.srv.publish(env.pkey, {"topic": topic, "type": "t", "data": {}}, expect=400)
    assert r.code == "bad_message", r
    assert env.srv.history(env.key, "limit=10").json["events"] == []


def test_publish_accepts_a_star_inside_a_segment(env):
    env.srv.publish(env.pkey, {"topic": "/it/a*b/c**", "type": "t", "data": {}}, expect=201)
