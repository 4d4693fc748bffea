"""The cluster store, smoke (docs/cluster.md): one herald on `--store redis://127.0.0.1:PORT`
(a real redis-server on a free loopback port in a temp dir, with AOF, killed by its PID).
A publish reaches a native socket; after a restart of herald the registry (tenant, apps) and
the event are still there, readable through history and state. The 3-node cluster tests live
elsewhere (their own harness).
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import BASE_ENV, aio, rid

REDIS = os.environ.get("HERALD_REDIS_SERVER", "/usr/bin/redis-server")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    def __init__(self, extra=()):
        if not os.access(REDIS, os.X_OK):
            raise AssertionError("redis-server is not installed (%s): run scripts/deps.sh" % REDIS)
        self.dir = tempfile.mkdtemp(prefix="herald-redis-")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", self.dir,
             "--logfile", os.path.join(self.dir, "log"), "--daemonize", "no", *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                assert self.proc.poll() is None, "redis-server exited: " + self.log()
                time.sleep(0.02)
        raise AssertionError("redis-server did not listen: " + self.log())

    def log(self):
        try:
            with open(os.path.join(self.dir, "log")) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def redis():
    r = Redis()
    yield r
    r.stop()


@aio
async def test_publish_reaches_a_socket_and_survives_a_restart(servers, redis):
    srv = servers.start(redis.url, BASE_ENV)
    assert "appendfsync=always" in open(srv.out_path).read() + srv.stderr_tail(20000)
    e = srv.setup()
    ws, _ = await srv.ws_auth(e.key)
    await ws.subscribe([{"topic": "/**"}])
    subj = rid("s")
    data = '{"k":"v\\u0000","n":[1,2.50]}'
    body = '{"topic":"/it/c","type":"it.c","subject":"%s","retain":true,"data":%s}' % (subj, data)
    sent = srv.publish(e.pkey, body).json["events"][0]
    got = await ws.recv_json()
    assert got["type"] == "event" and got["event"]["id"] == sent["id"], got
    await ws.close()

    assert srv.terminate() == 0
    srv.start()  # the same data dir, the same Redis: the registry and the log come back
    h = srv.history(e.key).json["events"]
    assert [x["id"] for x in h] == [sent["id"]], h
    assert '"data":' + data in srv.history(e.key).raw.decode()
    st = srv.http("GET", "/v1/subjects/%s/state" % subj, token=e.key)
    assert st.status == 200 and st.json["id"] == sent["id"], st
    # Offsets go on after the restart.
    again = srv.publish(e.pkey, {"topic": "/it/c", "type": "it.c", "data": {}}).json["events"][0]
    assert again["offset"] == sent["offset"] + 1, (sent, again)


def test_an_evicting_policy_is_refused_at_start(servers):
    r = Redis(extra=("--maxmemory-policy", "allkeys-lru"))
    try:
        with pytest.raises(RuntimeError) as exc:
            servers.start(r.url, BASE_ENV)
        assert "maxmemory-policy" in str(exc.value), exc.value
    finally:
        r.stop()


def test_unreachable_redis_is_refused_at_start(servers):
    port = free_port()  # nothing listens there
    with pytest.raises(RuntimeError) as exc:
        servers.start("redis://127.0.0.1:%d" % port, dict(BASE_ENV, HERALD_REDIS_CONNECT_TIMEOUT_MS=300))
    assert "127.0.0.1:%d" % port in str(exc.value), exc.value
