"""native.md §2: POST /v1/oauth/token, POST /v1/ws-tokens, API keys; §4 ws-token uri."""
import re
import urllib.parse

from conftest import aio, basic

TOKEN_CHARS = re.compile(r"^[A-Za-z0-9._-]+$")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_client_credentials_basic(env):
    srv = env.srv
    r = srv.http("POST", "/v1/oauth/token", body="grant_type=client_credentials",
                 headers=dict(FORM, Authorization=basic(env.app["client_id"], env.app["client_secret"])))
    assert r.status == 200, r
    b = r.json
    assert b["token_type"] == "bearer"
    assert b["expires_in"] == 3600  # access_token_ttl default
    assert TOKEN_CHARS.match(b["access_token"]), b["access_token"]
    assert set(b["scope"].split()) == {"subscribe", "history"}
    # The token authenticates a native call.
    h = srv.history(b["access_token"])
    assert h.json["events"] == []


def test_client_credentials_form(env):
    srv = env.srv
    body = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": env.pub["client_id"],
                                   "client_secret": env.pub["client_secret"]})
    r = srv.http("POST", "/v1/oauth/token", body=body, headers=FORM)
    assert r.status == 200, r
    assert r.json["token_type"] == "bearer"
    assert r.json["scope"].split() == ["publish"]
    tok = r.json["access_token"]
    assert TOKEN_CHARS.match(tok)
    pr = srv.publish(tok, env.ev())
    assert pr.status == 201


def test_client_credentials_ttl_from_config(servers):
    s = servers.start("memory", {"HERALD_NATIVE_ACCESS_TOKEN_TTL": 77})
    e = s.setup()
    r = s.http("POST", "/v1/oauth/token", body="grant_type=client_credentials",
               headers=dict(FORM, Authorization=basic(e.app["client_id"], e.app["client_secret"])))
    assert r.status == 200 and r.json["expires_in"] == 77, r


def test_client_credentials_bad_secret_401(env):
    srv = env.srv
    r = srv.http("POST", "/v1/oauth/token", body="grant_type=client_credentials",
                 headers=dict(FORM, Authorization=basic(env.app["client_id"], "wrong")))
    assert r.status == 401 and r.code == "auth_failed", r
    body = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": env.app["client_id"],
                                   "client_secret": env.app["client_secret"] + "x"})
    r = srv.http("POST", "/v1/oauth/token", body=body, headers=FORM)
    assert r.status == 401 and r.code == "auth_failed", r
    body = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": "cl_nobody",
                                   "client_secret": "x"})
    r = srv.http("POST", "/v1/oauth/token", body=body, headers=FORM)
    assert r.status == 401 and r.code == "auth_failed", r
    r = srv.http("POST", "/v1/oauth/token", body="grant_type=client_credentials", headers=FORM)
    assert r.status == 401, r


def test_client_credentials_bad_grant_type_400(env):
    r = env.srv.http("POST", "/v1/oauth/token", body="grant_type=password",
                     headers=dict(FORM, Authorization=basic(env.app["client_id"], env.app["client_secret"])))
    assert r.status == 400 and r.code == "bad_message", r


def test_api_key_bearer_and_x_api_key(env):
    srv = env.srv
    assert srv.http("GET", "/v1/events", headers={"Authorization": "Bearer " + env.key}).status == 200
    assert srv.http("GET", "/v1/events", headers={"X-API-Key": env.key}).status == 200
    r = srv.http("GET", "/v1/events", headers={"X-API-Key": "hk_not_a_key"})
    assert r.status == 401 and r.code == "auth_failed", r
    r = srv.http("GET", "/v1/events")
    assert r.status == 401 and r.code == "auth_failed", r
    r = srv.http("GET", "/v1/events", token="a.b.c")
    assert r.status == 401 and r.code == "auth_failed", r


def test_scope_outside_caller_403(env):
    srv = env.srv
    # app role has no publish; publisher has no history.
    r = srv.publish(env.key, env.ev(), expect=None)
    assert r.status == 403 and r.code == "forbidden", r
    r = srv.history(env.pkey, expect=None)
    assert r.status == 403 and r.code == "forbidden", r
    r = srv.http("GET", "/v1/subjects/s1/state", token=env.pkey)
    assert r.status == 403 and r.code == "forbidden", r


def test_ws_token_shape_and_uri(env):
    srv = env.srv
    tok = srv.access_token(env.app)
    r = srv.http("POST", "/v1/ws-tokens", token=tok)
    assert r.status == 200, r
    b = r.json
    assert set(b) >= {"ws_access_token", "uri", "expires_in"}
    assert b["expires_in"] == 30
    assert TOKEN_CHARS.match(b["ws_access_token"])
    u = urllib.parse.urlsplit(b["uri"])
    assert u.scheme == "ws" and u.netloc and u.path == "/v1/ws", b["uri"]
    assert u.query == "" and "?" not in b["uri"], b["uri"]
    # An API key with subscribe may also ask for one.
    assert srv.http("POST", "/v1/ws-tokens", token=env.key).status == 200


def test_ws_token_needs_subscribe(env):
    r = env.srv.http("POST", "/v1/ws-tokens", token=env.pkey)
    assert r.status == 403 and r.code == "forbidden", r
    r = env.srv.http("POST", "/v1/ws-tokens")
    assert r.status == 401 and r.code == "auth_failed", r


@aio
async def test_ws_token_single_use(env):
    srv = env.srv
    tok = srv.access_token(env.app)
    r = srv.http("POST", "/v1/ws-tokens", token=tok)
    wst, uri = r.json["ws_access_token"], r.json["uri"]
    ws = await srv.ws(query={"access_token": wst})
    w = await ws.recv_json()
    assert w["type"] == "welcome", w
    await ws.close()
    # Second use of the same token: auth_failed + 4001.
    ws2 = await srv.ws(query={"access_token": wst})
    code, _, msgs = await ws2.closed()
    assert code == 4001, (code, msgs)
    assert [m["type"] for m in msgs] == ["error"] and msgs[0]["code"] == "auth_failed", msgs
    # The uri given works as is once the client appends ?access_token=.
    wst2 = srv.http("POST", "/v1/ws-tokens", token=tok).json["ws_access_token"]
    import websockets
    conn = await websockets.connect(uri + "?access_token=" + wst2, ping_interval=None, open_timeout=5)
    try:
        import asyncio
        import json
        w = json.loads(await asyncio.wait_for(conn.recv(), 5))
        assert w["type"] == "welcome", w
    finally:
        await conn.close()


def test_ws_token_is_not_an_access_token(env):
    srv = env.srv
    wst = srv.ws_token(env.app)
    r = srv.history(wst, expect=None)
    assert r.status == 401 and r.code == "auth_failed", r
