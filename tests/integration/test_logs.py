"""Issue #14, logs and metrics on the real binary: `core.log_format=json` gives one JSON object
per stderr line (ts, level, msg and the event's fields); socket open/close, authentication
failures, limit refusals, admin changes, start and drain each log a line; floods are summarised;
no secret is ever logged; /metrics passes promtool with the families of the same events."""
import json
import re
import shutil
import subprocess
import time
import urllib.request

from conftest import ADMIN_KEY, Server, aio

SECRET_TOKEN = "hk_ThisIsABadSecretToken0123456789"
SECRET_WS = "hk_AnotherSecretWsToken9876543210"
FLOOD = 200


def log_lines(s):
    with open(s.err_path, "rb") as f:
        raw = f.read().decode()
    out = []
    for line in raw.splitlines():
        obj = json.loads(line)  # every line of the log is one JSON object
        assert isinstance(obj, dict), line
        assert {"ts", "level", "msg"} <= obj.keys(), line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", obj["ts"]), line
        assert obj["level"] in ("debug", "info", "warn", "error"), line
        out.append(obj)
    return raw, out


def events(lines, kind, **fields):
    return [l for l in lines if l.get("event") == kind and
            all(l.get(k) == v for k, v in fields.items())]


def wait_for(s, pred, timeout=6):
    deadline = time.monotonic() + timeout
    while True:
        raw, lines = log_lines(s)
        if pred(lines) or time.monotonic() > deadline:
            return raw, lines
        time.sleep(0.1)


def scrape(s):
    with urllib.request.urlopen(s.base + "/metrics", timeout=10) as r:
        return r.read().decode()


def metric(text, name, **labels):
    """The value of the one series of `name` with exactly `labels`, or None."""
    for line in text.splitlines():
        m = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if got == {k: str(v) for k, v in labels.items()}:
            return float(m.group(3))
    return None


@aio
async def test_json_logs_and_metrics_of_a_scripted_run():
    s = Server("memory", env={
        "HERALD_CORE_LOG_FORMAT": "json",
        "HERALD_CORE_LOG_FLOOD_LINES": 5,
        "HERALD_CORE_METRICS_TENANT_LIMIT": 1,
        "HERALD_NATIVE_AUTH_FAIL_BURST": 100000,
        "HERALD_NATIVE_PUBLISH_RATE": 1,
        "HERALD_NATIVE_PUBLISH_BURST": 2,
    }).start()
    try:
        e = s.setup()  # admin changes: a tenant and two apps
        secrets = [ADMIN_KEY, SECRET_TOKEN, SECRET_WS, e.key, e.pkey,
                   e.app["client_secret"], e.pub["client_secret"]]

        # A socket that authenticates, receives an event and is closed by the client.
        ws, _ = await s.ws_auth(e.key)
        await ws.subscribe([{"topic": "/**"}])
        e.publish(e.ev())
        got = await ws.recv_json()
        assert got["type"] == "event", got
        await ws.close()

        # A second tenant's socket: past metrics_tenant_limit=1 its label is _other.
        e2 = s.setup()
        secrets += [e2.key, e2.pkey]
        ws2, _ = await s.ws_auth(e2.key)
        await ws2.close()

        # Authentication failures: a bad bearer on a socket (4001) and a flood over HTTP.
        bad = await s.ws(headers={"Authorization": "Bearer " + SECRET_WS})
        code, _, _ = await bad.closed()
        assert code == 4001, code
        for _ in range(FLOOD):
            assert s.history(SECRET_TOKEN, expect=None).status == 401

        # A limit refusal: the app's publish rate (429).
        codes = [s.publish(e.pkey, [e.ev()], expect=None).status for _ in range(4)]
        assert 429 in codes, codes

        def flood_counted(ls):  # every failure a line or in a summary (the last window ended)
            return len(events(ls, "auth_failure", reason="invalid")) + sum(
                l["suppressed"] for l in ls
                if l.get("kind") == "auth_failure" and l["msg"].startswith("suppressed")) == FLOOD + 1

        raw, lines = wait_for(s, flood_counted)

        # Start.
        start = events(lines, "start")
        assert len(start) == 1 and start[0]["store"] == "memory", start

        # Admin changes: POST tenant and apps, the path and status, never the body.
        admin = events(lines, "admin_change", method="POST", path="/v1/admin/tenants")
        assert len(admin) == 2 and admin[0]["status"] == 201, admin
        assert len(events(lines, "admin_change", path="/v1/admin/apps")) == 4

        # Socket open and close, with the fields of the issue.
        opened = events(lines, "socket_open", tenant=e.tenant)
        assert len(opened) == 1, opened
        o = opened[0]
        assert o["dialect"] == "native" and o["app"] == e.app["id"], o
        assert o["remote"].startswith("127.0.0.1") and o["conn"].startswith("con_"), o
        closed = events(lines, "socket_close", conn=o["conn"])
        assert len(closed) == 1, closed
        c = closed[0]
        assert c["tenant"] == e.tenant and c["dialect"] == "native", c
        assert c["code"] == 1000 and c["reason"] == "client", c
        assert c["delivered"] == 1 and isinstance(c["duration_ms"], int) and c["duration_ms"] >= 0
        assert c["remote"] == o["remote"] and c["app"] == e.app["id"], c

        # The socket's authentication failure, and its close line (4001, auth_failed).
        ws_fail = events(lines, "auth_failure", dialect="native", reason="invalid")
        assert any(l["remote"].startswith("127.0.0.1") and l["detail"] for l in ws_fail), ws_fail
        assert events(lines, "socket_close", code=4001, reason="auth_failed"), lines[-20:]

        # The flood: far fewer lines than failures, and summaries counting the rest.
        fails = events(lines, "auth_failure", reason="invalid")
        summaries = [l for l in lines if l.get("kind") == "auth_failure" and
                     l.get("reason") == "invalid" and l["msg"].startswith("suppressed")]
        assert len(fails) < FLOOD / 4, len(fails)
        assert summaries and all(l["suppressed"] > 0 for l in summaries), summaries
        assert summaries[0]["msg"] == "suppressed %d similar lines" % summaries[0]["suppressed"]
        # Each failure is either a line or counted in a summary.
        assert len(fails) + sum(l["suppressed"] for l in summaries) == FLOOD + 1

        # The 429 refusal line.
        ref = events(lines, "refusal", limit="publish_rate")
        assert ref and ref[0]["code"] == 429 and ref[0]["dialect"] == "native", ref

        # No secret anywhere in the log.
        for secret in secrets:
            assert secret not in raw, "a secret was logged"

        # Metrics: promtool, then the families with the values of this run.
        text = scrape(s)
        promtool = shutil.which("promtool")
        assert promtool, "promtool missing (Debian package prometheus)"
        p = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 0, f"promtool check metrics:\n{p.stdout}{p.stderr}"
        assert metric(text, "herald_auth_failures_total", dialect="native",
                      reason="invalid") == FLOOD + 1
        assert metric(text, "herald_refusals_total", dialect="native",
                      limit="publish_rate") == codes.count(429)
        assert metric(text, "herald_closes_total", dialect="native", tenant=e.tenant,
                      code=1000) == 1
        assert metric(text, "herald_closes_total", dialect="native", tenant="_other",
                      code=1000) == 1
        assert metric(text, "herald_closes_total", dialect="native", tenant="_none",
                      code=4001) == 1
        assert metric(text, "herald_publish_delivery_seconds_count") >= 1
        assert metric(text, "herald_store_errors_total") == 0
        assert e2.tenant not in text  # its label is _other
    finally:
        rc = s.terminate()
        try:
            raw, lines = log_lines(s)
        finally:
            s.cleanup()
    assert rc == 0
    assert events(lines, "drain") and events(lines, "stop"), lines[-5:]


def test_text_format_is_key_value_and_level_filters():
    s = Server("memory", env={"HERALD_CORE_LOG_LEVEL": "warn"}).start()
    try:
        s.setup()  # admin changes log at info: filtered out at warn
        assert s.history(SECRET_TOKEN, expect=None).status == 401
        time.sleep(0.3)
        with open(s.err_path) as f:
            text = f.read()
        assert "admin change" not in text and "authentication failed" not in text, text
    finally:
        s.terminate()
        s.cleanup()
    s = Server("memory").start()  # default: info, text
    try:
        assert s.history(SECRET_TOKEN, expect=None).status == 401
        time.sleep(0.3)
        with open(s.err_path) as f:
            text = f.read()
        assert re.search(r"^\S+Z info authentication failed event=auth_failure dialect=native "
                         r"reason=invalid remote=127\.0\.0\.1", text, re.M), text
        assert SECRET_TOKEN not in text
    finally:
        s.terminate()
        s.cleanup()


def test_bad_log_keys_are_refused_by_name():
    for key, value, what in [("LOG_LEVEL", "verbose", "core.log_level"),
                             ("LOG_FORMAT", "xml", "core.log_format"),
                             ("LOG_FLOOD_LINES", "-1", "core.log_flood_lines"),
                             ("METRICS_TENANT_LIMIT", "1x", "core.metrics_tenant_limit")]:
        s = Server("memory", env={"HERALD_CORE_" + key: value})
        try:
            s.start()
            s.terminate()
            raise AssertionError(f"{what}={value} was accepted")
        except RuntimeError as e:
            assert what in str(e), (what, str(e))
        finally:
            s.kill()
            s.cleanup()


def test_accept_time_refusals_are_logged_and_counted():
    """max_connections (503) and max_connections_per_address (429) refuse a connection before
    any HTTP, in transport: each refusal still logs a flood-limited `refusal` line (limit, remote)
    and counts herald_refusals_total{dialect="none",limit=...}."""
    from test_transport import raw_get, status_of
    per_address, total, extra = 3, 5, 12
    s = Server("memory", env={
        "HERALD_CORE_LOG_FORMAT": "json",
        "HERALD_CORE_LOG_FLOOD_LINES": 4,
        "HERALD_CORE_MAX_CONNECTIONS": total,
        "HERALD_CORE_MAX_CONNECTIONS_PER_ADDRESS": per_address,
    }).start()
    held = []
    try:
        def hold(source):
            c, reply = raw_get(s.port, source=source)
            held.append(c)
            assert status_of(reply) == 200, reply

        for _ in range(per_address):
            hold("127.0.0.1")
        for _ in range(extra):  # past the address's bound: 429, before any HTTP
            c, reply = raw_get(s.port, source="127.0.0.1")
            c.close()
            assert status_of(reply) == 429, reply
        for _ in range(total - per_address):
            hold("127.0.0.2")
        c, reply = raw_get(s.port, source="127.0.0.3")  # past the server's bound: 503
        c.close()
        assert status_of(reply) == 503, reply

        def counted(limit):
            def pred(ls):
                lines = events(ls, "refusal", limit=limit)
                summed = sum(l["suppressed"] for l in ls if l.get("kind") == "refusal" and
                             l.get("reason") == limit and l["msg"].startswith("suppressed"))
                return len(lines) + summed
            return pred

        raw, lines = wait_for(s, lambda ls: counted("max_connections_per_address")(ls) == extra
                              and counted("max_connections")(ls) == 1)
        per = events(lines, "refusal", limit="max_connections_per_address")
        assert 0 < len(per) < extra, per  # flood-limited: the rest are in a summary
        assert counted("max_connections_per_address")(lines) == extra, per
        assert all(l["dialect"] == "none" and l["code"] == 429 and l["remote"] == "127.0.0.1"
                   for l in per), per
        full = events(lines, "refusal", limit="max_connections")
        assert len(full) == 1, full
        assert full[0]["code"] == 503 and full[0]["remote"] == "127.0.0.3", full
        assert full[0]["dialect"] == "none" and full[0]["detail"], full

        for c in held:  # /metrics needs a free slot
            c.close()
        held.clear()
        text = None
        deadline = time.monotonic() + 5
        while text is None:
            try:
                text = scrape(s)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert metric(text, "herald_refusals_total", dialect="none",
                      limit="max_connections_per_address") == extra
        assert metric(text, "herald_refusals_total", dialect="none",
                      limit="max_connections") == 1
    finally:
        for c in held:
            c.close()
        s.terminate()
        s.cleanup()


@aio
async def test_never_authenticated_sockets_say_so_and_why():
    """A socket that never authenticated logs no open line; its close line says so
    (authenticated: false, its own msg) and why: a bad credential, the auth timeout, or the
    client leaving first. An authenticated socket's close line says authenticated: true."""
    s = Server("memory", env={"HERALD_CORE_LOG_FORMAT": "json",
                              "HERALD_NATIVE_AUTH_TIMEOUT": 1}).start()
    try:
        e = s.setup()
        bad = await s.ws(headers={"Authorization": "Bearer " + SECRET_WS})
        assert (await bad.closed())[0] == 4001
        slow = await s.ws()  # sends nothing: the auth timeout closes it
        assert (await slow.closed(timeout=5))[0] == 4002
        gone = await s.ws()  # leaves before authenticating
        await gone.close()
        ok, _ = await s.ws_auth(e.key)
        await ok.close()

        def never(ls):
            return [l for l in events(ls, "socket_close") if l["authenticated"] is False]

        raw, lines = wait_for(s, lambda ls: len(never(ls)) == 3 and
                              len(events(ls, "socket_close")) == 4)
        by_reason = {l["reason"]: l for l in never(lines)}
        assert set(by_reason) == {"auth_failed", "auth_timeout", "client"}, never(lines)
        for l in by_reason.values():
            assert l["msg"] == "socket closed before authenticating", l
            assert l["tenant"] == "" and l["remote"].startswith("127.0.0.1"), l
        assert by_reason["auth_failed"]["code"] == 4001 and by_reason["auth_failed"]["detail"]
        assert by_reason["auth_timeout"]["code"] == 4002, by_reason
        authed = events(lines, "socket_close", authenticated=True)
        assert len(authed) == 1 and authed[0]["msg"] == "socket closed", authed
        assert authed[0]["tenant"] == e.tenant, authed
        assert len(events(lines, "socket_open")) == 1, lines
        assert SECRET_WS not in raw
    finally:
        s.terminate()
        s.cleanup()
