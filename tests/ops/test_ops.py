"""Operability tests on the real binary (env HERALD_BIN): the OpenAPI/AsyncAPI files against the
routes the server registers (`herald routes`), `herald config check`, /metrics through
`promtool check metrics`, and the Prometheus rules and Grafana dashboard in deploy/.
The .deb is tested in test_package.py. Everything talks to 127.0.0.1 only.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("HERALD_BIN", os.path.join(ROOT, "build", "release", "herald"))
DOCS = os.path.join(ROOT, "docs")
DEPLOY = os.path.join(ROOT, "deploy")
ADMIN_KEY = "ops-test-admin-key-0123456789abcdef"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def run(*args, check=True, timeout=60, **kw):
    p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"herald {' '.join(args)} exited {p.returncode}: {p.stderr}")
    return p


def norm(path):
    """A path pattern with its parameter names dropped: /a/{id} and /a/{x} are one route."""
    return re.sub(r"\{[^}/]*\}", "{}", path)


def registered(config=None):
    """(http, ws): the routes and socket paths `herald routes` prints for a configuration."""
    args = ["routes"] + (["--config", config] if config else [])
    http, ws = set(), set()
    for line in run(*args).stdout.splitlines():
        method, path = line.split(" ", 1)
        (ws.add(path) if method == "WS" else http.add((method, norm(path))))
    return http, ws


def built_dialects():
    """The dialects compiled into this binary: the tables `herald config` lists, but core."""
    tables = {line.split(".", 1)[0] for line in run("config").stdout.splitlines() if "." in line}
    return tables - {"core"}


def documented_routes():
    """{(METHOD, path): dialect} from docs/openapi.yaml; the dialect is the first tag."""
    with open(os.path.join(DOCS, "openapi.yaml")) as f:
        api = yaml.safe_load(f)
    out = {}
    for path, item in api["paths"].items():
        for method, op in item.items():
            if method in HTTP_METHODS:
                out[(method.upper(), norm(path))] = op["tags"][0]
    return out


def documented_sockets():
    with open(os.path.join(DOCS, "asyncapi.yaml")) as f:
        api = yaml.safe_load(f)
    return {ch["address"]: ch["tags"][0]["name"] for ch in api["channels"].values()}


# --------------------------------------------------------------------------- docs vs routes

def in_binary(owner, built):
    # The admin API is always there; a dialect's routes only when it is compiled in (a dialect
    # documented ahead of its code, or one left out of a build, is not demanded).
    return owner == "admin" or owner in built


def assert_same(served, docs, built, file):
    """Each served entry is in `docs`; each entry of `docs` owned by a dialect in the binary
    is served."""
    missing = sorted(r for r in served if r not in docs)
    not_served = sorted(r for r, owner in docs.items() if in_binary(owner, built) and r not in served)
    assert not missing, f"served by the binary but missing from docs/{file}: {missing}"
    assert not not_served, (
        f"docs/{file} names what the binary does not serve: {not_served} (a dialect answering "
        "in its own serve() must still add its routes to its router: smsgw::add_smsgw_routes)")


def test_every_registered_route_is_in_openapi_and_every_documented_one_is_served():
    http, _ = registered()
    built = built_dialects()
    assert {"native", "ringcentral", "zoom", "smsgw"} <= built, built
    assert_same(http, documented_routes(), built, "openapi.yaml")
    # Sanity: the comparison saw every dialect's routes, not an empty list.
    assert ("GET", "/v1/events") in http and ("GET", "/smsgw/v1/sms/messages") in http
    assert ("POST", "/ringcentral/restapi/oauth/token") in http
    assert ("POST", "/v1/admin/zoom/subscriptions") in http
    assert len(http) >= 60, len(http)


def test_openapi_operation_ids_are_unique_and_tags_name_a_dialect():
    with open(os.path.join(DOCS, "openapi.yaml")) as f:
        api = yaml.safe_load(f)
    tags = {t["name"] for t in api["tags"]}
    ids = []
    for path, item in api["paths"].items():
        for method, op in item.items():
            if method in HTTP_METHODS:
                assert op.get("tags") and op["tags"][0] in tags, (method, path)
                if "operationId" in op:
                    ids.append(op["operationId"])
    dupes = {i for i in ids if ids.count(i) > 1}
    assert not dupes, dupes


def test_every_socket_is_in_asyncapi_and_every_channel_is_served():
    _, ws = registered()
    assert {"/v1/ws", "/ringcentral/ws", "/zoom/ws", "/smsgw/ws"} <= ws, ws
    assert_same(ws, documented_sockets(), built_dialects(), "asyncapi.yaml")


def test_routes_follow_the_configuration(tmp_path):
    # A disabled dialect serves nothing, but keeps its admin calls (design.md §4); a moved
    # prefix moves its routes and socket.
    cfg = tmp_path / "h.toml"
    cfg.write_text('[zoom]\nenabled = false\n\n[smsgw]\nprefix = "/sms"\n')
    http, ws = registered(str(cfg))
    assert ("POST", "/zoom/oauth/token") not in http and "/zoom/ws" not in ws
    assert ("POST", "/v1/admin/zoom/subscriptions") in http
    assert ("GET", "/sms/v1/sms/messages") in http and "/sms/ws" in ws
    assert ("GET", "/smsgw/v1/sms/messages") not in http


def test_routes_does_not_listen_or_write_the_data_directory(tmp_path):
    cfg = tmp_path / "h.toml"
    data = tmp_path / "data"
    cfg.write_text(f'[core]\ndata = "{data}"\nlisten = "127.0.0.1:1"\n')
    t0 = time.monotonic()
    p = run("routes", "--config", str(cfg), timeout=30)
    assert time.monotonic() - t0 < 20
    assert "GET /readyz" in p.stdout.splitlines()
    assert not data.exists()


# --------------------------------------------------------------------------- config check

def check(tmp_path, text, name="herald.toml"):
    f = tmp_path / name
    f.write_text(text)
    return run("config", "check", "--config", str(f), check=False), str(f)


def test_config_check_accepts_the_packaged_file():
    f = os.path.join(ROOT, "packaging", "herald.toml")
    p = run("config", "check", "--config", f, check=False)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == f"{f}: ok"


def test_config_check_unknown_key_names_line_and_nearest_key(tmp_path):
    p, f = check(tmp_path, '[core]\nlisten = "127.0.0.1:0"\nshrads = 2\n')
    assert p.returncode == 1
    assert f"{f}:3: unknown configuration key 'core.shrads'; did you mean 'shards'?" in p.stderr, p.stderr


def test_config_check_unknown_table_suggests_the_dialect(tmp_path):
    p, f = check(tmp_path, '\n[ringcentrl]\nidle_timeout = 5\n')
    assert p.returncode == 1
    assert f"{f}:3: unknown configuration key 'ringcentrl.idle_timeout'; did you mean 'ringcentral'?" \
        in p.stderr, p.stderr


def test_config_check_far_off_key_gets_no_suggestion(tmp_path):
    p, f = check(tmp_path, '[native]\ncompletely_unrelated = 1\n')
    assert p.returncode == 1
    assert "unknown configuration key 'native.completely_unrelated'" in p.stderr
    assert "did you mean" not in p.stderr


def test_config_check_bad_values_each_with_their_line(tmp_path):
    p, f = check(tmp_path, '[native]\nmax_batch = "lots"\n\n[core]\nmetrics_public = "maybe"\n'
                           'shards = -1\nlog_retention = 1.5\n')
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 4, p.stderr
    assert lines[0].startswith(f"{f}:2: ") and "native.max_batch" in lines[0] and "'lots'" in lines[0]
    assert lines[1].startswith(f"{f}:5: ") and "core.metrics_public" in lines[1]
    assert lines[2].startswith(f"{f}:6: ") and "core.shards" in lines[2]
    assert lines[3].startswith(f"{f}:7: ") and "core.log_retention" in lines[3]


def test_config_check_rules_point_at_the_key(tmp_path):
    p, f = check(tmp_path, '[ringcentral]\nenabled = true\n\n[zoom]\nprefix = "/ringcentral"\n')
    assert p.returncode == 1
    assert p.stderr.startswith(f"{f}:5: zoom.prefix: '/ringcentral' is ringcentral's prefix already"), \
        p.stderr


def test_config_check_listen_needs_a_strict_port(tmp_path):
    for bad in ("127.0.0.1:8080x", "127.0.0.1", "127.0.0.1:65536", ":80"):
        p, f = check(tmp_path, f'[core]\nlisten = "{bad}"\n')
        assert p.returncode == 1, bad
        assert p.stderr.startswith(f"{f}:2: core.listen: expected HOST:PORT"), p.stderr
    p, f = check(tmp_path, '[core]\nlisten = "[::1]:0"\n')
    assert p.returncode == 0, p.stderr


def test_config_check_knows_the_redis_table_and_node_id(tmp_path):
    p, f = check(tmp_path, '[redis]\ncommand_timeout_ms = 2000\nconect_timeout_ms = 5\n')
    assert p.returncode == 1
    assert f"{f}:3: unknown configuration key 'redis.conect_timeout_ms'; did you mean " \
        "'connect_timeout_ms'?" in p.stderr, p.stderr
    p, f = check(tmp_path, '[redis]\n\ncommand_timeout_ms = 0\n')
    assert p.returncode == 1
    assert p.stderr.startswith(f"{f}:3: redis.command_timeout_ms: "), p.stderr
    p, f = check(tmp_path, '[core]\nnode_id = "node a"\n')
    assert p.returncode == 1
    assert p.stderr.startswith(f"{f}:2: core.node_id: "), p.stderr
    p, f = check(tmp_path, '[core]\nstore = "redis://10.0.0.5:6379/2"\nnode_id = "n1"\n'
                           '[redis]\nlog_max_events = 0\nfeed_wait_ms = 50\n')
    assert p.returncode == 0, p.stderr


def test_config_check_cluster_control_bounds(tmp_path):
    p, _ = check(tmp_path, '[redis]\nnode_lease_ms = 1000\nnode_renew_ms = 1000\n')
    assert p.returncode == 1 and "redis.node_lease_ms: must be more than node_renew_ms" in \
        p.stderr, p.stderr
    p, _ = check(tmp_path, '[redis]\ncontrol_max_len = 10\n')
    assert p.returncode == 1 and "redis.control_max_len" in p.stderr, p.stderr
    p, _ = check(tmp_path, '[redis]\nnode_lease_ms = 5000\nnode_renew_ms = 500\n'
                           'control_max_len = 200\nask_timeout_ms = 100\n')
    assert p.returncode == 0, p.stderr


def test_config_check_toml_syntax_error_has_its_line(tmp_path):
    p, f = check(tmp_path, '[core]\nlisten = "127.0.0.1:0"\nshards = = 2\n')
    assert p.returncode == 1
    assert f"config file {f}:3:" in p.stderr, p.stderr


def test_config_check_missing_file_and_missing_flag(tmp_path):
    p = run("config", "check", "--config", str(tmp_path / "nope.toml"), check=False)
    assert p.returncode == 1 and "nope.toml" in p.stderr
    p = run("config", "check", check=False)
    assert p.returncode != 0 and "--config" in p.stderr


def test_config_check_ignores_the_environment(tmp_path):
    # The file alone is judged: a bad HERALD_* variable in the shell does not fail it.
    env = dict(os.environ, HERALD_CORE_SHARDS="not-a-number")
    f = tmp_path / "ok.toml"
    f.write_text("[core]\nshards = 2\n")
    p = subprocess.run([BIN, "config", "check", "--config", str(f)], capture_output=True,
                       text=True, env=env, timeout=30)
    assert p.returncode == 0, p.stderr


def test_serve_refuses_a_bad_file_with_the_same_hint(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("[core]\nlisen = \"127.0.0.1:0\"\n")
    p = run("serve", "--config", str(f), "--data", str(tmp_path / "d"), check=False, timeout=30)
    assert p.returncode == 1
    assert "unknown configuration key 'core.lisen'; did you mean 'listen'?" in p.stderr, p.stderr
    assert f"{f}:2" in p.stderr


# --------------------------------------------------------------------------- a live server

class Server:
    def __init__(self, tmp):
        self.data = os.path.join(tmp, "data")
        env = dict(os.environ, HERALD_ADMIN_KEY=ADMIN_KEY)
        self.log = open(os.path.join(tmp, "stderr.log"), "wb")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--listen", "127.0.0.1:0", "--data", self.data, "--store", "memory"],
            stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL, env=env)
        line = self.proc.stdout.readline().decode()
        m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert m, f"no listening line: {line!r}"
        self.base = m.group(1)

    def http(self, method, path, body=None, key=None):
        req = urllib.request.Request(self.base + path, method=method,
                                     data=None if body is None else json.dumps(body).encode())
        if key:
            req.add_header("Authorization", "Bearer " + key)
        if body is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, raw

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def scrape():
    """One /metrics text from a server that published, delivered, closed and resumed."""
    import asyncio
    import websockets
    tmp = tempfile.mkdtemp(prefix="herald-ops-")
    srv = Server(tmp)
    try:
        srv.http("POST", "/v1/admin/tenants", {"id": "ops"}, ADMIN_KEY)
        _, pub = srv.http("POST", "/v1/admin/apps", {"tenant": "ops", "name": "p", "role": "publisher"}, ADMIN_KEY)
        _, sub = srv.http("POST", "/v1/admin/apps", {"tenant": "ops", "name": "s", "role": "app"}, ADMIN_KEY)
        pub_key, sub_key = json.loads(pub)["api_key"], json.loads(sub)["api_key"]
        ws_url = srv.base.replace("http://", "ws://") + "/v1/ws?access_token=" + sub_key

        async def socket_life():
            async with websockets.connect(ws_url, open_timeout=10) as ws:
                welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
                await ws.send(json.dumps({"type": "subscribe", "id": "1", "filters": [{"topic": "/**"}]}))
                assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "ack"
                status, _ = srv.http("POST", "/v1/events", {"topic": "/x", "type": "t", "data": {}}, pub_key)
                assert status == 201
                assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "event"
            # Resume the session the close left behind: a recovery outcome.
            async with websockets.connect(ws_url + "&resume=" + welcome["resume_token"] + "&last_seq=1",
                                          open_timeout=10) as ws:
                assert json.loads(await asyncio.wait_for(ws.recv(), 10))["recovered"] is True

        asyncio.run(asyncio.wait_for(socket_life(), 30))
        _, text = srv.http("GET", "/metrics")
        yield text.decode()
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def families(text):
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def test_metrics_pass_promtool(scrape):
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing (Debian package prometheus; scripts/deps.sh installs it)"
    p = subprocess.run([promtool, "check", "metrics"], input=scrape, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), \
        f"promtool check metrics:\n{p.stdout}{p.stderr}"
    fam = families(scrape)
    assert "herald_publish_commit_seconds" in fam and "herald_publish_commit_ms" not in fam
    # Seconds: the one publish above took well under a second, so it sits below le="1".
    m = re.search(r'^herald_publish_commit_seconds_bucket\{[^}]*le="1"[^}]*\} (\d+)$', scrape, re.M)
    assert m and int(m.group(1)) >= 1, scrape
    # (Other labels, such as a dialect, may stand beside these.)
    assert re.search(r'^herald_closes_total\{[^}]*code="1000"[^}]*\} [1-9]', scrape, re.M), scrape
    assert re.search(r'^herald_recoveries_total\{[^}]*outcome="recovered"[^}]*\} 1$', scrape, re.M), scrape


def test_promtool_catches_what_we_fixed():
    # The check above can fail: promtool refuses a millisecond histogram like the old one.
    bad = ("# HELP herald_publish_commit_ms x\n# TYPE herald_publish_commit_ms histogram\n"
           'herald_publish_commit_ms_bucket{le="+Inf"} 0\nherald_publish_commit_ms_sum 0\n'
           "herald_publish_commit_ms_count 0\n")
    p = subprocess.run(["promtool", "check", "metrics"], input=bad, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode != 0 and "abbreviated units" in p.stdout + p.stderr, p.stdout + p.stderr


# --------------------------------------------------------------------------- deploy/

def test_alert_rules_check_and_unit_tests():
    d = os.path.join(DEPLOY, "prometheus")
    p = subprocess.run(["promtool", "check", "rules", "herald-alerts.yml"], cwd=d,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "SUCCESS" in p.stdout, p.stdout + p.stderr
    p = subprocess.run(["promtool", "test", "rules", "herald-alerts.test.yml"], cwd=d,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "SUCCESS" in p.stdout, p.stdout + p.stderr


def metric_names(text):
    names = set(re.findall(r"\bherald_[a-z0-9_]+", text))
    return {re.sub(r"_(bucket|sum|count)$", "", n) for n in names}


def test_dashboard_and_rules_query_only_metrics_herald_exposes(scrape):
    fam = families(scrape)
    with open(os.path.join(DEPLOY, "grafana", "herald-dashboard.json")) as f:
        dash = json.load(f)
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 8
    used = metric_names("\n".join(exprs))
    with open(os.path.join(DEPLOY, "prometheus", "herald-alerts.yml")) as f:
        used |= metric_names(f.read())
    unknown = sorted(used - fam)
    assert not unknown, f"deploy/ queries metrics /metrics does not expose: {unknown}"
    # Every family Herald exposes has a panel.
    assert not sorted(fam - metric_names("\n".join(exprs))), sorted(fam - metric_names("\n".join(exprs)))


# --------------------------------------------------------------------------- docs/ links

def test_markdown_links_in_docs_resolve():
    # Relative links in README.md and docs/**.md name files of the repository (the docs stand
    # alone). A page of a dialect not built into this binary may be linked ahead of it.
    built = built_dialects()
    pages = [os.path.join(ROOT, "README.md")]
    for d, _, files in os.walk(DOCS):
        pages += [os.path.join(d, f) for f in files if f.endswith(".md")]
    broken = []
    for page in pages:
        with open(page) as f:
            text = f.read()
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path = os.path.normpath(os.path.join(os.path.dirname(page), target))
            dialect_page = os.path.basename(os.path.dirname(path)) == "dialects"
            ahead = dialect_page and os.path.splitext(os.path.basename(path))[0] not in built
            if not os.path.exists(path) and not ahead:
                broken.append((os.path.relpath(page, ROOT), target))
    assert len(pages) >= 10 and not broken, broken
