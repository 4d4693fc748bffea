"""design.md §4: SIGTERM drain (sockets closed 1012, exit 0); durability across a restart on
the default (sqlite) store; the listening line and the admin key file."""
import asyncio
import os
import stat
import subprocess
import tempfile
import time

from conftest import BIN, Server, aio


@aio
async def test_sigterm_drain_1012_exit_0(servers):
    s = servers.start("memory")
    e = s.setup()
    socks = []
    for _ in range(3):
        ws, w = await s.ws_auth(e.key)
        await ws.subscribe([{"topic": "/**"}])
        socks.append(ws)
    rc_task = asyncio.get_running_loop().run_in_executor(None, s.terminate)
    for ws in socks:
        code, _, msgs = await ws.closed(timeout=10)
        assert code == 1012, (code, msgs)
    rc = await asyncio.wait_for(rc_task, 25)
    assert rc == 0, s.stderr_tail()


@aio
async def test_sqlite_restart_keeps_events_states_and_registry(servers):
    with tempfile.TemporaryDirectory(prefix="herald-itest-") as data:
        s = Server(store="sqlite", data=data).start()
        try:
            e = s.setup()
            body = '{"topic":"/p","type":"t","subject":"dev1","retain":true,"data":{"n":1.50, "e":1e3}}'
            rep = s.publish(e.pkey, body).json["events"][0]
            rc = s.terminate()
            assert rc == 0, s.stderr_tail()
            s.start()  # same data directory
            h = s.history(e.key)
            assert h.json["events"][0]["id"] == rep["id"] and h.json["events"][0]["offset"] == rep["offset"]
            assert h.json["events"][0]["time"] == rep["time"]
            assert b'"data":{"n":1.50, "e":1e3}' in h.raw, h.raw
            st = s.http("GET", "/v1/subjects/dev1/state", token=e.key)
            assert st.status == 200 and st.json["id"] == rep["id"]
            # Offsets keep increasing after the restart.
            rep2 = s.publish(e.pkey, '{"topic":"/p","type":"t","data":{}}').json["events"][0]
            assert rep2["offset"] > rep["offset"] and rep2["time"] >= rep["time"]
        finally:
            rc = s.terminate()
            assert rc == 0, s.stderr_tail()


def test_generated_admin_key_file(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HERALD_ADMIN_KEY"}
    p = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--store", "memory", "--data", str(tmp_path)],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 10
        line = b""
        import select
        while time.monotonic() < deadline and not line.endswith(b"\n"):
            r, _, _ = select.select([p.stdout], [], [], 0.2)
            if r:
                line += os.read(p.stdout.fileno(), 1)
        assert line.startswith(b"herald listening on http://127.0.0.1:"), line
        keyfile = tmp_path / "admin.key"
        assert keyfile.exists()
        assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
        key = keyfile.read_text().strip()
        assert key
        import urllib.request
        base = line.decode().strip().split(" ")[-1]
        req = urllib.request.Request(base + "/v1/admin/tenants", headers={"Authorization": "Bearer " + key})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200
    finally:
        p.send_signal(15)
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
        p.stdout.close()
    assert p.returncode == 0
