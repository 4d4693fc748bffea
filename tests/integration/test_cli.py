"""The command line (issue #14 item 6) on the real binary: --version, exit codes 0 ok, 1 usage,
2 refused by the server, 3 unreachable or timed out; one-line errors; --json; --timeout; tail
naming its subscription and exiting 2 on a refused one; help on every command and option; the
commands `serve --demo` (make run) prints work from any directory."""
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import threading
import time

import conftest
from conftest import BIN, rid

SUBCOMMANDS = [["serve"], ["app"], ["app", "create"], ["publish"], ["tail"], ["config"],
               ["config", "check"], ["routes"], ["bench"]]


def cli(*args, timeout=30, cwd=None):
    return subprocess.run([BIN] + list(args), capture_output=True, timeout=timeout, text=True,
                          cwd=cwd)


def one_line_error(p):
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert "/usr/include" not in p.stderr and "boost" not in p.stderr.lower(), p.stderr
    return lines[0]


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_version():
    p = cli("--version")
    assert p.returncode == 0, p
    assert re.match(r"^herald \d+\.\d+\.\d+", p.stdout), p.stdout


def test_usage_errors_exit_1_with_one_line():
    for args in ([], ["nope"], ["publish", "--server", "http://127.0.0.1:1"],
                 ["publish", "--server", "http://127.0.0.1:1", "--api-key", "k", "--topic", "/t",
                  "--type", "x", "--timeout", "10x"],
                 ["publish", "--server", "http://127.0.0.1:1", "--api-key", "k", "--topic", "/t",
                  "--type", "x", "--timeout", "0"],
                 ["publish", "--server", "htp://127.0.0.1:1", "--api-key", "k", "--topic", "/t",
                  "--type", "x"],
                 ["publish", "--server", "http://127.0.0.1:1", "--api-key", "k", "--topic", "/t",
                  "--type", "x", "--data", "{not json"],
                 ["tail", "--bogus"], ["config", "check"]):
        p = cli(*args)
        assert p.returncode == 1, (args, p.returncode, p.stderr)
        one_line_error(p)


def test_refused_by_the_server_exits_2(srv):
    e = srv.setup()
    p = cli("publish", "--server", srv.base, "--api-key", "hk_wrong", "--topic", "/it/x",
            "--type", "it.x")
    assert p.returncode == 2, p
    assert "HTTP 401" in one_line_error(p), p.stderr
    p = cli("publish", "--server", srv.base, "--api-key", e.pkey, "--topic", "no-slash",
            "--type", "it.x")
    assert p.returncode == 2 and "HTTP 4" in one_line_error(p), p
    p = cli("app", "create", "--server", srv.base, "--admin-key", "wrong", "--tenant", e.tenant,
            "--name", rid("n"))
    assert p.returncode == 2 and "HTTP 401" in one_line_error(p), p


def test_unreachable_exits_3():
    port = closed_port()
    for args in (["publish", "--api-key", "k", "--topic", "/t", "--type", "x"],
                 ["app", "create", "--admin-key", "k", "--tenant", "t", "--name", "n"],
                 ["tail", "--api-key", "k"]):
        p = cli(*(args + ["--server", "http://127.0.0.1:%d" % port]))
        assert p.returncode == 3, (args, p.returncode, p.stderr)
        assert "refused" in one_line_error(p).lower(), p.stderr


def test_timeout_against_a_server_that_never_answers_exits_3():
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(16)  # accepted by the kernel, never answered
    base = "http://127.0.0.1:%d" % lst.getsockname()[1]
    try:
        for args in (["publish", "--api-key", "k", "--topic", "/t", "--type", "x"],
                     ["tail", "--api-key", "k"]):
            t0 = time.monotonic()
            p = cli(*(args + ["--server", base, "--timeout", "1"]), timeout=20)
            took = time.monotonic() - t0
            assert p.returncode == 3, (args, p.returncode, p.stderr)
            assert took < 3, (args, took)
            assert "within 1 s" in one_line_error(p), p.stderr
    finally:
        lst.close()


def test_json_output_parses_and_text_is_the_default(srv):
    e = srv.setup()
    p = cli("publish", "--server", srv.base, "--api-key", e.pkey, "--topic", "/it/cli",
            "--type", "it.cli", "--data", '{"n":1}', "--json")
    assert p.returncode == 0, p
    assert json.loads(p.stdout)["events"][0]["offset"] >= 0
    p = cli("publish", "--server", srv.base, "--api-key", e.pkey, "--topic", "/it/cli",
            "--type", "it.cli")
    assert p.returncode == 0 and p.stdout.startswith("events: "), p.stdout
    p = cli("app", "create", "--server", srv.base, "--admin-key", conftest.ADMIN_KEY,
            "--tenant", e.tenant, "--name", rid("cli"), "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["api_key"], p
    p = cli("app", "create", "--server", srv.base, "--admin-key", conftest.ADMIN_KEY,
            "--tenant", e.tenant, "--name", rid("cli"))
    assert p.returncode == 0 and re.search(r"^api_key: \S+$", p.stdout, re.M), p.stdout
    keys = json.loads(cli("config", "--json").stdout)
    assert {"core.listen", "native.publish_rate"} <= {k["key"] for k in keys}
    assert [k["reloadable"] for k in keys if k["key"] == "native.publish_rate"] == [True]
    assert [k["reloadable"] for k in keys if k["key"] == "core.listen"] == [False]
    routes = json.loads(cli("routes", "--json").stdout)
    assert {"method": "POST", "path": "/v1/events"} in routes, routes
    p = cli("config", "check", "--config", "/nonexistent.toml", "--json")
    assert p.returncode == 1 and json.loads(p.stdout)["ok"] is False, p


def read_lines(stream, out):
    for line in stream:
        out.append(line)


def test_tail_names_its_subscription_and_prints_events(srv):
    e = srv.setup()
    tail = subprocess.Popen([BIN, "tail", "--server", srv.base, "--api-key", e.key, "--topic",
                             "/it/tail/**", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    out, err = [], []
    threads = [threading.Thread(target=read_lines, args=(tail.stdout, out), daemon=True),
               threading.Thread(target=read_lines, args=(tail.stderr, err), daemon=True)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 10
        while not err and time.monotonic() < deadline:
            time.sleep(0.05)
        assert err and "subscribed" in err[0] and "/it/tail/**" in err[0], err
        e.publish(e.ev("/tail/a", data={"i": 1}))
        while not out and time.monotonic() < deadline:
            time.sleep(0.05)
        assert out and json.loads(out[0])["data"] == {"i": 1}, out
    finally:
        tail.send_signal(signal.SIGTERM)
        tail.wait(10)


def test_tail_reconnects_within_timeout_then_exits_3():
    """Once connected, a lost server is retried only for --timeout from the loss: every attempt
    and every wait between them fit in it, then tail exits 3 with one line saying so."""
    s = conftest.Server("memory").start()
    tail = None
    try:
        e = s.setup()
        tail = subprocess.Popen([BIN, "tail", "--server", s.base, "--api-key", e.key, "--topic",
                                 "/it/**", "--timeout", "1.5"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        err = []
        threading.Thread(target=read_lines, args=(tail.stderr, err), daemon=True).start()
        deadline = time.monotonic() + 10
        while not err and time.monotonic() < deadline:
            time.sleep(0.05)
        assert err and "subscribed" in err[0], err
        assert s.terminate() == 0  # drained: the socket closes, then nothing listens
        lost = time.monotonic()
        rc = tail.wait(10)
        took = time.monotonic() - lost
        assert rc == 3, (rc, err)
        assert took < 4.0, (took, err)  # 1.5 s from the loss, not backoffs up to 10 s each
        time.sleep(0.1)
        assert any("reconnecting" in l for l in err), err
        assert "could not reconnect" in err[-1] and "within 1.5 s" in err[-1], err
    finally:
        if tail is not None and tail.poll() is None:
            tail.kill()
            tail.wait(10)
        s.cleanup()


def test_tail_refused_subscribe_or_auth_exits_2(srv):
    e = srv.setup()
    p = cli("tail", "--server", srv.base, "--api-key", e.key, "--topic", "no-slash",
            timeout=20)
    assert p.returncode == 2, p
    line = one_line_error(p)
    assert "subscribe" in line and "invalid_filter" in line, line
    p = cli("tail", "--server", srv.base, "--api-key", "hk_wrong", timeout=20)
    assert p.returncode == 2 and "auth_failed" in one_line_error(p), p


def test_every_command_and_option_has_help():
    for sub in SUBCOMMANDS:
        p = cli(*(sub + ["--help"]))
        assert p.returncode == 0, (sub, p)
        lines = p.stdout.splitlines()
        opts = [(l, lines[i + 1] if i + 1 < len(lines) else "") for i, l in enumerate(lines)
                if re.match(r"^\s+-", l)]
        assert opts, (sub, p.stdout)
        for line, after in opts:
            if re.match(r"^\s{20,}\S", after):  # a long option's help goes on the next line
                continue
            if line.strip().startswith("-h,"):
                continue
            # "--name TYPE[:CHECK] [REQUIRED] help text": something past the option's spec.
            words = line.split()[1:]
            while words and re.match(r"^(TEXT|INT|UINT|FLOAT|BOOLEAN|REQUIRED|x\d+|\.\.\.)"
                                     r"(:\S+)?$", words[0]):
                words.pop(0)
            assert words, (sub, line)
    top = cli("--help").stdout
    for sub in ("serve", "app", "publish", "tail", "config", "routes", "bench"):
        assert re.search(r"^\s+%s\s+\S" % sub, top, re.M), (sub, top)


def test_demo_commands_work_from_any_directory(tmp_path):
    """`make run` is `herald serve --demo`: run each command it prints from /tmp."""
    data = tmp_path / "var"
    env = dict(os.environ, HERALD_ADMIN_KEY=conftest.ADMIN_KEY)
    out_path = tmp_path / "out"
    with open(out_path, "wb") as out:
        srv = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--data", str(data),
                                "--store", "memory", "--demo"], stdout=out,
                               stderr=subprocess.DEVNULL, env=env, cwd=str(tmp_path))
    try:
        deadline = time.monotonic() + 15
        text = ""
        while time.monotonic() < deadline and "curl" not in text:
            text = out_path.read_text()
            time.sleep(0.05)
        cmds = [l.strip() for l in text.splitlines() if l.startswith("  ")]
        assert len(cmds) == 3, text
        tail_cmd, pub_cmd, curl_cmd = cmds
        assert shlex.split(tail_cmd)[0].startswith("/"), tail_cmd
        assert str(data) in text, text  # the credentials file, by its absolute path
        tail = subprocess.Popen(shlex.split(tail_cmd) + ["--json"], cwd="/tmp",
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        got, err = [], []
        threading.Thread(target=read_lines, args=(tail.stdout, got), daemon=True).start()
        threading.Thread(target=read_lines, args=(tail.stderr, err), daemon=True).start()
        try:
            while not err and time.monotonic() < deadline:
                time.sleep(0.05)
            assert err and "subscribed" in err[0], err
            p = subprocess.run(shlex.split(pub_cmd), cwd="/tmp", capture_output=True, text=True,
                               timeout=20)
            assert p.returncode == 0, p
            p = subprocess.run(shlex.split(curl_cmd), cwd="/tmp", capture_output=True,
                               text=True, timeout=20)
            assert p.returncode == 0 and '"offset"' in p.stdout, p
            while len(got) < 2 and time.monotonic() < deadline + 10:
                time.sleep(0.05)
            assert [json.loads(g)["topic"] for g in got] == ["/demo/hello"] * 2, got
        finally:
            tail.send_signal(signal.SIGTERM)
            tail.wait(10)
    finally:
        srv.send_signal(signal.SIGTERM)
        srv.wait(20)


def test_readme_lists_every_command_and_key():
    with open(os.path.join(conftest.ROOT, "README.md")) as f:
        readme = f.read()
    for sub in SUBCOMMANDS:
        assert "`herald %s" % " ".join(sub) in readme, sub
    rows = [l for l in readme.splitlines() if l.startswith("| `")]
    missing = []
    for k in json.loads(cli("config", "--json").stdout):
        table, key = k["key"].split(".", 1)
        ok = any(l.startswith("| `%s." % table) and
                 ("`%s`" % k["key"] in l or "`%s`" % key in l.split("|")[1]) for l in rows)
        if not ok:
            missing.append(k["key"])
        if k["reloadable"] and ok:
            row = [l for l in rows if l.startswith("| `%s." % table) and
                   ("`%s`" % k["key"] in l or "`%s`" % key in l.split("|")[1])][0]
            assert "[SIGHUP]" in row, row
    assert not missing, missing
