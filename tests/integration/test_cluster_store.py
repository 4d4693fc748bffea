"""The cluster store, smoke (docs/cluster.md): one herald on `--store redis://127.0.0.1:PORT`
(cluster.py's redis-server: a free loopback port, a temp dir, AOF, killed by its PID).
A publish reaches a native socket; after a restart of herald the registry (tenant, apps) and
the event are still there, readable through history and state. The 3-node cluster tests live
elsewhere (their own harness).
"""
import time

import pytest

from cluster import RedisServer, free_port
from conftest import BASE_ENV, aio, rid


@pytest.fixture
def redis():
    r = RedisServer().start()  # appendonly yes, appendfsync always (cluster.py)
    yield r
    r.cleanup()


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
    r = RedisServer({"maxmemory-policy": "allkeys-lru"}).start()
    try:
        with pytest.raises(RuntimeError) as exc:
            servers.start(r.url, BASE_ENV)
        assert "maxmemory-policy=allkeys-lru" in str(exc.value), exc.value
    finally:
        r.cleanup()


def test_unreachable_redis_is_refused_at_start(servers):
    port = free_port()  # nothing listens there
    with pytest.raises(RuntimeError) as exc:
        servers.start("redis://127.0.0.1:%d" % port, dict(BASE_ENV, HERALD_REDIS_CONNECT_TIMEOUT_MS=300))
    assert "127.0.0.1:%d" % port in str(exc.value), exc.value


def test_redis_down_answers_503_and_publishing_resumes_after_restart(servers, redis):
    srv = servers.start(redis.url, BASE_ENV)
    e = srv.setup()
    first = e.publish(e.ev())[0]
    redis.kill9()
    t0 = time.monotonic()
    r = srv.publish(e.pkey, e.ev(), expect=None)
    assert r.status == 503, r
    assert time.monotonic() - t0 < 2, "a publish to a dead Redis must fail fast"
    assert "redis" in r.raw.decode().lower(), r.raw
    assert srv.http("GET", "/readyz").status == 503
    redis.restart()  # the AOF (appendfsync always) brings back everything acknowledged
    deadline = time.monotonic() + 10
    while True:
        r = srv.publish(e.pkey, e.ev(), expect=None)
        if r.status == 201 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert r.status == 201, r
    assert r.json["events"][0]["offset"] == first["offset"] + 1, (first, r.json)
    h = srv.history(e.key).json["events"]
    assert [x["offset"] for x in h] == [first["offset"], first["offset"] + 1], h
