"""Shared pieces of the chaos and slow-consumer tests: start/stop the real binary, admin and
publish calls. Runs under Debian's /usr/bin/python3 (python3-websockets)."""
import json
import os
import signal
import subprocess
import http.client
import urllib.parse

ADMIN_KEY = "chaos-admin-key"


class server:
    """The real herald binary on 127.0.0.1:0; stop() sends SIGTERM and waits for exit 0."""

    def __init__(self, data_dir, env=None, store="sqlite"):
        self.data_dir = data_dir
        self.store = store
        self.env = dict(os.environ, HERALD_ADMIN_KEY=ADMIN_KEY, **(env or {}))
        self.proc = None
        self.base = None

    def start(self):
        binary = os.environ.get("HERALD_BIN", "build/release/herald")
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:0", "--data", self.data_dir,
             "--store", self.store],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=self.env)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("herald listening on "):
            raise RuntimeError("server did not start: %r" % line)
        self.base = line.split()[-1]
        return self

    @property
    def ws_url(self):
        return self.base.replace("http://", "ws://") + "/v1/ws"

    def stop(self, timeout=30):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill9(self, timeout=30):
        """SIGKILL (our own process, by its PID): nothing is drained or flushed."""
        self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(timeout)

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


class client:
    """A keep-alive HTTP client for admin and publish calls."""

    def __init__(self, base, key):
        u = urllib.parse.urlparse(base)
        self.host, self.port, self.key = u.hostname, u.port, key
        self.conn = None

    def call(self, method, path, body=None, headers=None):
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                h = {"Authorization": "Bearer " + self.key, "Content-Type": "application/json"}
                h.update(headers or {})
                data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
                self.conn.request(method, path, body=data, headers=h)
                r = self.conn.getresponse()
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
            except (ConnectionError, http.client.HTTPException, OSError):
                self.conn = None
                if attempt:
                    raise


def setup_tenant(base, tenant="chaos"):
    admin = client(base, ADMIN_KEY)
    status, _ = admin.call("POST", "/v1/admin/tenants", {"id": tenant})
    assert status in (201, 409), status
    _, app = admin.call("POST", "/v1/admin/apps", {"tenant": tenant, "name": "sub", "role": "app"})
    _, pub = admin.call("POST", "/v1/admin/apps",
                        {"tenant": tenant, "name": "pub", "role": "publisher"})
    return app["api_key"], pub["api_key"]
