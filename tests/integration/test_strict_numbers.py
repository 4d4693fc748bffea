"""Numbers read from a request are strict (issue "One dialect seam", item 3): decimal digits only,
the whole text, no sign or space, no overflow. A bad one answers 400 bad_message naming the
parameter and quoting what was sent; a lenient parse used to read `limit=10abc` as 10."""
import base64
import json
import os
import subprocess
import tempfile
import urllib.parse

import pytest

from conftest import BIN


def q(**kw):
    return urllib.parse.urlencode(kw)


def cursor(query, after=0):
    raw = json.dumps({"q": query, "a": after}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def bad_number(r, name):
    assert r.status == 400, r
    assert r.code == "bad_message", r
    msg = r.json["error"]["message"]
    assert msg.startswith(name + ": "), msg
    return msg


@pytest.mark.parametrize("limit", ["10abc", " 10", "10 ", "+10", "1e2", "0x10", "1.0", "",
                                   "99999999999999999999999"])
def test_history_limit_not_a_number_400_naming_limit(env, limit):
    msg = bad_number(env.srv.history(env.key, q(limit=limit), expect=None), "limit")
    assert ("'%s'" % limit) in msg, msg


def test_history_limit_message_quotes_the_text(env):
    r = env.srv.history(env.key, "limit=10abc", expect=None)
    assert bad_number(r, "limit") == "limit: not a number: '10abc'"


def test_history_limit_out_of_bounds_names_the_range(env):
    r = env.srv.history(env.key, "limit=1001", expect=None)
    assert bad_number(r, "limit") == "limit: must be from 1 to 1000, got '1001'"


def test_history_limit_leading_zeros_are_decimal(env):
    env.publish(*[env.ev(data={"i": i}) for i in range(12)])
    # "010" is ten, not octal eight and not an error.
    assert len(env.srv.history(env.key, q(limit="010")).json["events"]) == 10


def test_history_limit_non_ascii_is_escaped_in_valid_json(env):
    r = env.srv.history(env.key, "limit=1%FF%22", expect=None)
    assert r.json is not None, r.raw  # the body is still JSON (UTF-8) despite the 0xff byte
    assert bad_number(r, "limit") == "limit: not a number: '1\\xff\"'"


@pytest.mark.parametrize("n", ["5x", "-1", "+1", " 1", "", "99999999999999999999"])
def test_history_since_offset_strict_400_naming_since(env, n):
    r = env.srv.history(env.key, q(since="offset:" + n), expect=None)
    msg = bad_number(r, "since offset")
    assert ("'%s'" % n) in msg, msg


def test_history_since_offset_largest_int64_is_accepted(env):
    r = env.srv.history(env.key, q(since="offset:9223372036854775807"))
    assert r.json["events"] == [] and r.json["next_cursor"] is None


def test_history_since_offset_past_int64_is_refused(env):
    r = env.srv.history(env.key, q(since="offset:9223372036854775808"), expect=None)
    bad_number(r, "since offset")


def test_history_cursor_query_numbers_are_strict(env):
    # A cursor carries the whole query; its numbers are read by the same strict parser.
    r = env.srv.history(env.key, q(cursor=cursor("limit=10abc")), expect=None)
    assert bad_number(r, "limit") == "limit: not a number: '10abc'"
    r = env.srv.history(env.key, q(cursor=cursor("since=offset:7z")), expect=None)
    bad_number(r, "since offset")


@pytest.mark.parametrize("path", ["/v1/admin/tenants", "/v1/admin/apps", "/v1/admin/users"])
@pytest.mark.parametrize("limit", ["2x", "-2", " 2", ""])
def test_admin_list_limit_strict_400_naming_limit(srv, path, limit):
    r = srv.admin("GET", path + "?" + q(limit=limit))
    bad_number(r, "limit")


def test_admin_list_limit_valid_still_pages(srv):
    srv.tenant()
    srv.tenant()
    r = srv.admin("GET", "/v1/admin/tenants?limit=1", expect=200)
    assert len(r.json["tenants"]) == 1 and r.json["next_cursor"]


@pytest.mark.parametrize("listen", ["127.0.0.1:80x", "127.0.0.1:+80", "127.0.0.1:", "127.0.0.1:65536",
                                    "127.0.0.1: 80"])
def test_serve_listen_port_is_strict(listen):
    with tempfile.TemporaryDirectory(prefix="herald-itest-") as data:
        p = subprocess.run([BIN, "serve", "--listen", listen, "--data", data, "--store", "memory"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=15,
                           env=dict(os.environ, HERALD_ADMIN_KEY="itest-admin-key-0123456789abcdef"))
    assert p.returncode != 0, (p.stdout, p.stderr)
    assert b"listening" not in p.stdout, p.stdout
    assert b"port" in p.stderr and b"--listen" in p.stderr, p.stderr
