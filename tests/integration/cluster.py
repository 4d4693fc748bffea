"""The cluster harness (issue 16): a real `redis-server` and N herald nodes on loopback.

- `RedisServer`: Debian's redis-server on a free 127.0.0.1 port in a temporary directory, by
  default `--appendonly yes --appendfsync always --save ''` (an acknowledged write survives
  `kill -9`); killed and restarted by its PID on the same port and directory (the AOF stays).
  `cmd(...)` sends one command over a fresh RESP connection (CLIENT KILL, XLEN, GET ...).
  A missing redis-server is a failure naming the package, never a skip.
- `Cluster`: the Redis plus nodes, each a conftest `Server` on 127.0.0.1:0 with
  `--store redis://127.0.0.1:P`, its own data directory, and the SAME token key
  (HERALD_TOKEN_KEY) and admin key, so a token signed by one node verifies on every other.
  A node is killed with SIGKILL (`kill9`) or drained with SIGTERM (`drain`, exit code
  returned); `stop()` ends every process (our own PIDs) even after a failed test.

Nodes load the tenant/app directory at start (serve.cc `load_directory`), so a test creates
its tenant and apps on the first node before the others start: `Cluster.start(n, provision)`.
Every wait is bounded.
"""
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from conftest import Server

REDIS_BIN = os.environ.get("HERALD_REDIS_SERVER", "/usr/bin/redis-server")
# One token key for every node of a cluster (64 hex digits = 32 bytes, parse_token_key).
CLUSTER_TOKEN_KEY = "5a" * 32
DEFAULT_REDIS_OPTIONS = {"appendonly": "yes", "appendfsync": "always", "save": ""}
START_TIMEOUT = 15  # seconds for a redis-server to answer PING


def _die_with_parent():
    """preexec_fn: SIGKILL the child if the test process dies (Linux PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- RESP client

class RedisError(Exception):
    pass


def _encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class RespConn:
    """One blocking RESP2 connection with a timeout on every read."""

    def __init__(self, port, timeout=5):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise ConnectionError("bad RESP line %r" % line)

    def call(self, *args):
        self.sock.sendall(_encode(args))
        r = self.read()
        if isinstance(r, RedisError):
            raise r
        return r


# --------------------------------------------------------------------------- redis-server

class RedisServer:
    def __init__(self, options=None):
        """`options` (name -> value, "" allowed) replace or extend DEFAULT_REDIS_OPTIONS."""
        if not os.path.exists(REDIS_BIN):
            raise AssertionError("%s not found: install Debian's redis-server "
                                 "(scripts/deps.sh)" % REDIS_BIN)
        self.options = dict(DEFAULT_REDIS_OPTIONS)
        self.options.update(options or {})
        self.dir = tempfile.mkdtemp(prefix="herald-redis-")
        self.port = None
        self.proc = None
        self.kills = 0

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def _spawn(self):
        argv = [REDIS_BIN, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                "--logfile", os.path.join(self.dir, "redis.log"), "--daemonize", "no"]
        for k, v in self.options.items():
            argv += ["--" + k, str(v)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                return False  # the port was taken meanwhile (or bad options: the log says)
            try:
                c = RespConn(self.port, timeout=1)
                try:
                    # Ours, not another redis-server that took the port first: that one
                    # answers PING too, and ours then exits on "address in use" (above).
                    if c.call("PING") == "PONG" and self._answering_pid(c) == self.proc.pid:
                        return True
                finally:
                    c.close()
            except (OSError, ConnectionError, RedisError):
                pass  # not listening yet, or LOADING the AOF
            time.sleep(0.02)
        self.kill9()
        raise AssertionError("redis-server did not answer PING within %ss: %s"
                             % (START_TIMEOUT, self.log_tail()))

    @staticmethod
    def _answering_pid(conn):
        """The process_id `INFO server` reports: which redis-server answered."""
        info = conn.call("INFO", "server")
        for line in info.decode().splitlines():
            if line.startswith("process_id:"):
                return int(line.split(":", 1)[1])
        raise ConnectionError("INFO server has no process_id")

    def start(self):
        for _ in range(5):
            self.port = free_port()
            if self._spawn():
                return self
        raise AssertionError("redis-server would not start: " + self.log_tail())

    def restart(self):
        """The same port and directory again (the AOF is replayed before PING answers)."""
        assert self.proc is None, "restart of a running redis-server"
        if not self._spawn():
            raise AssertionError("redis-server did not restart on port %d: %s"
                                 % (self.port, self.log_tail()))
        return self

    def kill9(self):
        """SIGKILL of our own redis-server, by its PID, and reap it."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
                self.kills += 1
            self.proc.wait(timeout=10)
        self.proc = None

    def log_tail(self, n=2000):
        try:
            with open(os.path.join(self.dir, "redis.log"), "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return "(no redis.log)"

    def cmd(self, *args, timeout=5):
        c = RespConn(self.port, timeout=timeout)
        try:
            return c.call(*args)
        finally:
            c.close()

    def cleanup(self):
        self.kill9()
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------- herald nodes

def history_all(node, key, query=""):
    """Every event `key` may see through one node's GET /v1/events, following the cursor."""
    out, cursor = [], None
    while True:
        q = "limit=1000" + ("&cursor=" + cursor if cursor else ("&" + query if query else ""))
        page = node.history(key, q).json
        out += page["events"]
        cursor = page["next_cursor"]
        if cursor is None:
            return out


class Cluster:
    def __init__(self, redis_options=None, env=None, args=None):
        self.redis = RedisServer(redis_options)
        self.env = {"HERALD_TOKEN_KEY": CLUSTER_TOKEN_KEY}
        self.env.update(env or {})
        self.args = list(args or [])
        self.nodes = []  # conftest Servers, in start order; a killed one stays (proc None)
        self.node_kills = 0

    def start(self, n=3, provision=None):
        """Redis, node 0, `provision(node0)` (e.g. tenants and apps, which nodes load at
        start), then nodes 1..n-1. Returns provision's result."""
        self.redis.start()
        first = self.add_node()
        result = provision(first) if provision is not None else None
        for _ in range(n - 1):
            self.add_node()
        return result

    def add_node(self, args=None):
        s = Server(store=self.redis.url, env=self.env, args=self.args + list(args or []))
        try:
            s.start()
        except BaseException:  # its error names why; teardown need not report it again
            s.kill()
            s.cleanup()
            raise
        self.nodes.append(s)
        return s

    def live(self):
        return [s for s in self.nodes if s.proc is not None and s.proc.poll() is None]

    def kill9(self, node):
        """SIGKILL of one node (our own PID): nothing drained, nothing flushed."""
        assert node.proc is not None
        node.kill()
        self.node_kills += 1

    def drain(self, node, timeout=20):
        """SIGTERM; returns the exit code (an AssertionError when it does not exit in time)."""
        return node.terminate(timeout=timeout)

    def restart(self, node):
        """Start a stopped node again on its own data directory (a new port)."""
        assert node.proc is None
        return node.start()

    def stop(self):
        """Ends every node (SIGTERM, then SIGKILL past the bound) and the Redis; returns
        [(node, exit code)] of the nodes that were still running."""
        codes = []
        for s in self.nodes:
            if s.proc is None:
                s.cleanup()
                continue
            try:
                codes.append((s, s.terminate(timeout=20)))
            except AssertionError:
                codes.append((s, "no exit within 20 s of SIGTERM"))
            finally:
                s.kill()
                s.cleanup()
        self.redis.cleanup()
        return codes
