"""The cluster harness itself (cluster.py): the redis-server it starts keeps every
acknowledged write across `kill -9` (appendonly yes, appendfsync always: the premise of the
chaos tests), and teardown ends every process it started."""
import os

from cluster import RedisServer
from conftest import Clusters


def test_redis_acknowledged_writes_survive_kill9_and_restart():
    r = RedisServer().start()
    try:
        assert r.cmd("CONFIG", "GET", "appendfsync") == [b"appendfsync", b"always"]
        for i in range(200):
            assert r.cmd("XADD", "s", "%d-0" % (i + 1), "e", "v%d" % i) == b"%d-0" % (i + 1)
        port, pid = r.port, r.proc.pid
        r.kill9()
        assert r.kills == 1
        r.restart()
        assert (r.port, r.proc.pid != pid) == (port, True)
        assert r.cmd("XLEN", "s") == 200
        assert r.cmd("XRANGE", "s", "200-0", "+")[0][1] == [b"e", b"v199"]
    finally:
        r.cleanup()
    assert not os.path.exists(r.dir)


def test_redis_options_override_the_defaults():
    r = RedisServer({"appendonly": "no", "maxmemory-policy": "allkeys-lru"}).start()
    try:
        assert r.cmd("CONFIG", "GET", "appendonly") == [b"appendonly", b"no"]
        assert r.cmd("CONFIG", "GET", "maxmemory-policy") == [b"maxmemory-policy", b"allkeys-lru"]
    finally:
        r.cleanup()


def test_stop_all_ends_every_process_it_started():
    cs = Clusters()
    c = cs.new()
    c.redis.start()
    pid = c.redis.proc.pid
    assert cs.stop_all() == []
    try:
        os.kill(pid, 0)
        raise AssertionError("redis-server %d still running after stop_all" % pid)
    except ProcessLookupError:
        pass


def test_a_missing_redis_server_is_a_failure_naming_the_package(monkeypatch):
    import cluster
    monkeypatch.setattr(cluster, "REDIS_BIN", "/nonexistent/redis-server")
    try:
        RedisServer()
    except AssertionError as exc:
        assert "redis-server" in str(exc) and "scripts/deps.sh" in str(exc), exc
    else:
        raise AssertionError("no failure without a redis-server")
