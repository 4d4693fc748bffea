#!/usr/bin/env python3
"""What one published event costs the Redis of a cluster (docs/cluster.md, "Capacity").

Starts Debian's redis-server (AOF, appendfsync as given) on a free 127.0.0.1 port and N herald
nodes on it, publishes EVENTS events of PAYLOAD bytes in arrays of BATCH through the nodes
round-robin (THREADS publishers, keep-alive), and reads, from /proc and INFO:
  - Redis CPU (user+system) per event, and per batch;
  - Redis memory per event held in the log (used_memory delta / events);
  - Redis network bytes out per event (total_net_output_bytes delta: the pub/sub copies to N
    nodes plus replies);
  - each node's CPU per event (it receives every batch through the feed).
Everything is our own processes, killed by PID at the end; bounded by --timeout.
Run: /usr/bin/python3 bench/cluster/redis_cost.py --herald build/rel/herald [--nodes 3]
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HZ = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / HZ  # utime + stime


def redis_cmd(port, *args):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        out = b"*%d\r\n" % len(args) + b"".join(
            b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args)
        s.sendall(out)
        data = b""
        while True:
            chunk = s.recv(65536)
            data += chunk
            if not chunk or data.endswith(b"\r\n") and (data[:1] != b"$" or data.count(b"\r\n") >= 2):
                break
        return data


def info(port, key):
    text = redis_cmd(port, "INFO", "all").decode(errors="replace")
    for line in text.split("\r\n"):
        if line.startswith(key + ":"):
            return int(line.split(":", 1)[1])
    raise KeyError(key)


def wait_http(port, deadline):
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("node on port %d not ready" % port)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--herald", required=True)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--events", type=int, default=64000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--payload", type=int, default=64)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--appendfsync", default="always")
    ap.add_argument("--timeout", type=float, default=300)
    a = ap.parse_args()
    deadline = time.monotonic() + a.timeout
    tmp = tempfile.mkdtemp(prefix="herald-rcost-")
    procs = []
    try:
        rport = free_port()
        redis = subprocess.Popen(
            ["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--dir", tmp,
             "--save", "", "--appendonly", "yes", "--appendfsync", a.appendfsync],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(redis)
        while time.monotonic() < deadline:
            try:
                if b"PONG" in redis_cmd(rport, "PING"):
                    break
            except OSError:
                time.sleep(0.05)
        env = dict(os.environ, HERALD_ADMIN_KEY="bench-admin-key-0123456789",
                   HERALD_TOKEN_KEY="5a" * 32, HERALD_LOG_LEVEL="warn")
        ports = []
        for i in range(a.nodes):
            port = free_port()
            data = os.path.join(tmp, "node%d" % i)
            os.makedirs(data)
            p = subprocess.Popen(
                [a.herald, "serve", "--listen", "127.0.0.1:%d" % port, "--data", data,
                 "--store", "redis://127.0.0.1:%d" % rport],
                env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(data, "err"), "wb"))
            procs.append(p)
            ports.append(port)
            wait_http(port, deadline)
            if i == 0:  # nodes load the directory at start: the tenant and app come first
                h = {"Authorization": "Bearer " + env["HERALD_ADMIN_KEY"],
                     "Content-Type": "application/json"}
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request("POST", "/v1/admin/tenants", json.dumps({"id": "bench"}), h)
                r = c.getresponse()
                assert r.status in (200, 201), r.read()
                r.read()
                c.request("POST", "/v1/admin/apps",
                          json.dumps({"tenant": "bench", "name": "pub", "role": "publisher"}), h)
                r = c.getresponse()
                body = r.read()
                assert r.status in (200, 201), body
                pkey = json.loads(body)["api_key"]
        payload = json.dumps({"p": "x" * max(0, a.payload - 8)})
        body = "[" + ",".join(
            '{"topic":"/b/t%d","type":"b.e","data":%s}' % (i, payload) for i in range(a.batch)) + "]"
        requests = a.events // a.batch
        next_req = [0]
        lock = threading.Lock()
        failures = []

        def publisher(k):
            conns = {}
            while True:
                with lock:
                    if next_req[0] >= requests or time.monotonic() > deadline:
                        return
                    n = next_req[0]
                    next_req[0] += 1
                port = ports[n % len(ports)]
                c = conns.get(port) or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conns[port] = c
                c.request("POST", "/v1/events", body,
                          {"Authorization": "Bearer " + pkey, "Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                if r.status != 201:
                    failures.append(r.status)

        r_cpu0 = cpu_s(redis.pid)
        n_cpu0 = [cpu_s(p.pid) for p in procs[1:]]
        mem0 = info(rport, "used_memory")
        net0 = info(rport, "total_net_output_bytes")
        t0 = time.monotonic()
        ts = [threading.Thread(target=publisher, args=(k,)) for k in range(a.threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        wall = time.monotonic() - t0
        time.sleep(0.5)  # the feed's last batches reach every node
        events = requests * a.batch
        r_cpu = cpu_s(redis.pid) - r_cpu0
        n_cpu = [cpu_s(p.pid) - c0 for p, c0 in zip(procs[1:], n_cpu0)]
        mem = info(rport, "used_memory") - mem0
        net = info(rport, "total_net_output_bytes") - net0
        out = {
            "nodes": a.nodes, "events": events, "batch": a.batch, "payload_bytes": a.payload,
            "appendfsync": a.appendfsync, "failures": len(failures), "wall_s": round(wall, 2),
            "events_per_s": round(events / wall),
            "redis_cpu_us_per_event": round(r_cpu / events * 1e6, 2),
            "redis_cpu_us_per_batch": round(r_cpu / requests * 1e6, 1),
            "redis_bytes_per_event": round(mem / events),
            "redis_net_out_bytes_per_event": round(net / events),
            "node_cpu_us_per_event": [round(c / events * 1e6, 2) for c in n_cpu],
        }
        print(json.dumps(out))
        return 0 if not failures else 1
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
