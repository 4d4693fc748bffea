"""`herald bench` against several nodes of one cluster (the bench's cluster rows, docs/cluster.md):
three real nodes on one real redis-server (cluster.py), one bench given every node's URL. The
run must be clean (no loss, duplicate, reordering, seq gap), its subscribers and publishing
streams spread over the nodes; a server outside the cluster is named, within the bound."""
import json
import re
import subprocess
import time

from conftest import ADMIN_KEY, BIN, Server

BENCH_TIMEOUT = 90  # seconds for one bench process (its own phases are bounded far below)


def metric(node, name):
    r = node.http("GET", "/metrics")
    assert r.status == 200, r.status
    m = re.search(r"^%s (\S+)$" % re.escape(name), r.raw.decode(), re.M)
    assert m, "no %s in /metrics" % name
    return float(m.group(1))


def bench(*args):
    return subprocess.run([BIN, "bench", *args], capture_output=True, text=True,
                          timeout=BENCH_TIMEOUT)


def test_one_bench_spreads_subscribers_and_streams_over_three_nodes(clusters):
    c = clusters.new()
    c.start(3)  # the bench creates its tenant and apps through node 0 (--admin-key)
    nodes = c.nodes
    before = [metric(n, "herald_http_requests_total") for n in nodes]
    t0 = time.monotonic()
    # Two nodes in a comma list, the third in a second --url: both forms at once.
    p = bench("--url", nodes[0].base + "," + nodes[1].base, "--url", nodes[2].base,
              "--admin-key", ADMIN_KEY, "--subscribers", "60", "--topics", "4",
              "--publishers", "1", "--inflight", "3", "--batch", "4", "--rate", "300",
              "--duration", "1.5", "--threads", "1", "--drain", "10", "--connect-timeout", "20",
              "--label", "it-cluster", "--check")
    took = time.monotonic() - t0
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    r = json.loads(p.stdout.strip().splitlines()[-1])
    print("3-node bench: %.1f s, %d of %d delivered, p99 %.0f us, commit p99 %.0f us" % (
        took, r["delivered"], r["expected"], r["lat_p99_us"], r["pub_p99_us"]))
    assert r["servers"] == 3
    assert r["clean"] is True
    assert r["connected"] == 60 and r["connect_errors"] == 0
    assert r["published"] > 0 and r["delivered"] == r["expected"] > 0
    assert (r["lost"], r["duplicates"], r["reordered"], r["seq_gaps"]) == (0, 0, 0, 0)
    assert "servers" in p.stderr  # the human table says how many ("..., 3 servers")
    # Subscriber i on node i mod 3, topic i mod 4: each node has 5 subscribers of every topic,
    # so it delivered exactly a third of the copies.
    deliveries = [metric(n, "herald_deliveries_total") for n in nodes]
    for ix, d in enumerate(deliveries):
        assert d == r["delivered"] / 3, (ix, deliveries, r["delivered"])
    # Stream s (of 3) on node s mod 3: every node served one stream's POSTs (upgrades are not
    # HTTP requests here; besides the POSTs a node served a few key probes or admin calls and
    # these /metrics reads). All streams on one node would leave the others with those few.
    served = [metric(n, "herald_http_requests_total") - b for n, b in zip(nodes, before)]
    print("HTTP requests served per node:", served)
    assert min(served) >= 10 and min(served) >= max(served) / 2, served


def test_a_server_outside_the_cluster_is_named_within_the_bound(clusters):
    c = clusters.new()
    c.start(1)
    alone = Server()  # memory store, same admin key: it never hears of the bench's apps
    alone.start()
    try:
        t0 = time.monotonic()
        p = bench("--url", c.nodes[0].base + "," + alone.base, "--admin-key", ADMIN_KEY,
                  "--subscribers", "4", "--duration", "1", "--connect-timeout", "2")
        took = time.monotonic() - t0
    finally:
        alone.terminate()
        alone.cleanup()
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert ("server %s does not accept the bench's API keys after 2.0 s (--connect-timeout): "
            "last answer HTTP 401" % alone.base in p.stderr), p.stderr
    # Probing gently (4 a second) kept the address under the failed-authentication limit.
    assert "too many failed" not in p.stderr, p.stderr
    assert 2 <= took < 20, took


def test_bad_url_lists_are_refused_naming_the_element():
    cases = [
        (["--url", "http://127.0.0.1:1,"], "--url 'http://127.0.0.1:1,': an empty element"),
        (["--url", "http://127.0.0.1:1", "--url", "http://127.0.0.1:1"], "listed twice"),
        (["--url", "http://127.0.0.1:1,https://127.0.0.1:2"],
         "--url 'https://127.0.0.1:2': https:// and wss:// servers are not supported"),
        (["--url", "http://127.0.0.1:70000"], "not '70000'"),
        (["--url", "http://127.0.0.1:1,http://127.0.0.1:2", "--resume-storm"],
         "--resume-storm drives one server"),
    ]
    for args, want in cases:
        p = bench(*args, "--api-key", "k", "--publisher-key", "k")
        assert p.returncode == 1, (args, p.returncode, p.stderr)
        assert want in p.stderr, (args, p.stderr)
    p = bench("--url", "http://127.0.0.1:1", "http://127.0.0.1:2")  # one value per --url
    assert p.returncode != 0 and "not expected" in p.stderr, p.stderr
