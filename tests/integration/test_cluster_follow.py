"""Cluster mode's fan-out (issue 16): a node receives the events of the tenants its sessions
need, one Redis message per event per interested node (`redis.follow_tenants`, on by
default). Redis's own counters show who is subscribed to what: each tenant's channel
`herald:ev:<tenant>` has one subscriber per node holding a session of the tenant, and none
for a node with no session of it; the sockets still get every event of their tenant once, in
log order, whichever node published it; once no session needs a tenant (a detached one
still does, until its window ends) it is unfollowed (`redis.unfollow_after_ms`) and followed
again by the next one."""
import time

from cluster import history_all
from conftest import aio

ENV = {"HERALD_REDIS_UNFOLLOW_AFTER_MS": 5000, "HERALD_NATIVE_RECOVERY_WINDOW": 3}


def numsub(c, *tenants):
    """Subscribers of each tenant's channel, by tenant."""
    r = c.redis.cmd("PUBSUB", "NUMSUB", *["herald:ev:" + t for t in tenants])
    return {k.decode()[len("herald:ev:"):] if isinstance(k, bytes) else k[len("herald:ev:"):]: v
            for k, v in zip(r[0::2], r[1::2])}


def pub(node, env, i):
    return node.publish(env.pkey, env.ev("/f", data={"i": i})).json["events"][0]


@aio
async def test_each_tenant_reaches_only_the_nodes_with_its_sessions(clusters):
    c = clusters.new(env=ENV)
    ea, eb = c.start(3, provision=lambda node: (node.setup(), node.setup()))
    n0, n1, n2 = c.nodes
    assert numsub(c, ea.tenant, eb.tenant) == {ea.tenant: 0, eb.tenant: 0}
    wa, _ = await n0.ws_auth(ea.key)
    await wa.subscribe([{"topic": "/it/**"}])
    wb, _ = await n1.ws_auth(eb.key)
    await wb.subscribe([{"topic": "/it/**"}])
    # The subscribe was acknowledged once its tenant delivers on the node: subscribed already.
    assert numsub(c, ea.tenant, eb.tenant) == {ea.tenant: 1, eb.tenant: 1}
    assert c.redis.cmd("PUBSUB", "NUMPAT") == 0  # nobody follows every tenant
    # Interleaved publishes through every node, the third one following no tenant.
    for i in range(30):
        node = c.nodes[i % 3]
        pub(node, ea if i % 2 == 0 else eb, i)
    for ws, env in ((wa, ea), (wb, eb)):
        log = history_all(n2, env.key)
        msgs = await ws.events(len(log), timeout=10)
        assert [m["seq"] for m in msgs] == list(range(1, len(log) + 1))
        assert [(m["event"]["offset"], m["event"]["id"]) for m in msgs] == \
            [(x["offset"], x["id"]) for x in log]
        assert len(log) == 15
        await ws.no_message(0.3)
    # A second session of A, on n2 now: n2 follows A too (two subscribers), still not B.
    wa2, _ = await n2.ws_auth(ea.key)
    await wa2.subscribe([{"topic": "/it/**"}])
    assert numsub(c, ea.tenant, eb.tenant) == {ea.tenant: 2, eb.tenant: 1}
    pub(n1, ea, 100)
    for ws in (wa, wa2):
        (m,) = await ws.events(1)
        assert m["event"]["data"] == {"i": 100}
    await wb.no_message(0.3)
    # B's last socket closes: its session stays resumable for its window (3 s), its ring still
    # taking B's events, so n1 keeps B; once it expired, n1 unfollows B after
    # redis.unfollow_after_ms (5 s; ticks of 1 s).
    await wb.close()
    time.sleep(2)
    assert numsub(c, eb.tenant)[eb.tenant] == 1
    deadline = time.monotonic() + 20
    while numsub(c, eb.tenant)[eb.tenant] != 0:
        assert time.monotonic() < deadline, "B still followed 20 s after its last session"
        time.sleep(0.2)
    # ... and its next session follows it again, getting what is published after.
    wb2, _ = await n1.ws_auth(eb.key)
    await wb2.subscribe([{"topic": "/it/**"}])
    assert numsub(c, eb.tenant)[eb.tenant] == 1
    pub(n0, eb, 200)
    (m,) = await wb2.events(1)
    assert (m["seq"], m["event"]["data"]) == (1, {"i": 200})
    for ws in (wa, wa2, wb2):
        await ws.close()


@aio
async def test_an_admin_app_session_follows_every_tenant(clusters):
    c = clusters.new(env=ENV)
    ea, eb = c.start(2, provision=lambda node: (node.setup(), node.setup()))
    n0, n1 = c.nodes
    admin = n0.app(ea.tenant, "admin")
    ws, _ = await n1.ws_auth(admin["api_key"])
    await ws.subscribe([{"topic": "/it/**"}])
    assert c.redis.cmd("PUBSUB", "NUMPAT") == 1
    pub(n0, ea, 1)
    pub(n0, eb, 2)
    msgs = await ws.events(2)
    assert [(m["seq"], m["event"]["data"]["i"]) for m in msgs] == [(1, 1), (2, 2)]
    await ws.close()
