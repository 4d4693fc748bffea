"""Cluster keys (issue 16, item 1): without HERALD_TOKEN_KEY / HERALD_ADMIN_KEY, the first node
on a Redis creates the token key and the admin key there, and every later node finds the same
ones: a token one node signs verifies on another, and each node's DATA/admin.key holds the
cluster's admin key (what the CLI on that machine reads).
"""
import os

import conftest
from cluster import RedisServer
from conftest import BASE_ENV, Server, aio

NO_KEYS = dict(BASE_ENV, HERALD_TOKEN_KEY="", HERALD_ADMIN_KEY="")


def read_admin_key(node):
    with open(os.path.join(node.data, "admin.key")) as f:
        return f.read().strip()


@aio
async def test_nodes_share_the_keys_the_first_one_created(monkeypatch):
    redis = RedisServer().start()
    nodes = []
    try:
        a = Server(store=redis.url, env=NO_KEYS)
        nodes.append(a)
        a.start()
        key = read_admin_key(a)
        assert key.startswith("hka_") and key != conftest.ADMIN_KEY, key
        monkeypatch.setattr(conftest, "ADMIN_KEY", key)  # the harness's admin calls use it
        e = a.setup()  # nodes load the directory at start: provision before the second one
        b = Server(store=redis.url, env=NO_KEYS)
        nodes.append(b)
        b.start()
        assert read_admin_key(b) == key
        assert b.http("GET", "/v1/admin/connections", admin=True).status == 200

        # Tokens signed on one node verify on the other, both ways.
        for signer, verifier in ((a, b), (b, a)):
            ws = await verifier.ws(query={"access_token": signer.ws_token(e.app)})
            welcome = await ws.recv_json()
            assert welcome["type"] == "welcome", welcome
            await ws.close()

        # A node given another token key by the environment does not accept the cluster's.
        c = Server(store=redis.url, env=dict(NO_KEYS, HERALD_TOKEN_KEY="7b" * 32))
        nodes.append(c)
        c.start()
        tok = a.access_token(e.app)
        r = c.http("POST", "/v1/ws-tokens", token=tok)
        assert r.status == 401, (r.status, r.raw)
    finally:
        for n in nodes:
            try:
                n.terminate()
            finally:
                n.cleanup()
        redis.cleanup()
