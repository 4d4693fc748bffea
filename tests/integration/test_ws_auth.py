"""native.md §3.1 authentication, §3.2 welcome, §4 handshake and auth deadline."""
import asyncio
import re

import pytest

from conftest import RawWS, aio

DEFAULT_LIMITS = {"heartbeat_interval": 30, "idle_timeout": 1800, "absolute_timeout": 86400,
                  "recovery_window": 60,  # BASE_ENV sets 60
                  "recovery_buffer": 1000, "max_inflight": 10, "max_message_bytes": 65536,
                  "max_connections_per_session": 50}


def check_welcome(w, recovered=False):
    assert w["type"] == "welcome", w
    assert re.match(r"^ses_", w["session"]), w
    assert isinstance(w["resume_token"], str) and w["resume_token"], w
    assert w["seq"] == 0 and w["recovered"] is recovered, w
    assert "recovery_error" not in w, w


@aio
async def test_auth_query_ws_token(env):
    ws = await env.srv.ws(query={"access_token": env.srv.ws_token(env.app)})
    w = await ws.recv_json()
    check_welcome(w)
    assert w["limits"] == DEFAULT_LIMITS
    await ws.close()


@aio
async def test_auth_query_access_token(env):
    ws = await env.srv.ws(query={"access_token": env.srv.access_token(env.app)})
    check_welcome(await ws.recv_json())
    await ws.close()


@aio
async def test_auth_header_api_key_and_access_token(env):
    ws, w = await env.srv.ws_auth(env.key)
    check_welcome(w)
    await ws.close()
    ws, w = await env.srv.ws_auth(env.srv.access_token(env.app))
    check_welcome(w)
    await ws.close()


@pytest.mark.parametrize("kind", ["api_key", "token_access", "token_ws"])
@aio
async def test_auth_in_band(env, kind):
    srv = env.srv
    ws = await srv.ws()
    if kind == "api_key":
        await ws.send({"type": "auth", "api_key": env.key})
    elif kind == "token_access":
        await ws.send({"type": "auth", "token": srv.access_token(env.app)})
    else:
        await ws.send({"type": "auth", "token": srv.ws_token(env.app)})
    check_welcome(await ws.recv_json())
    # A second auth after success is an error, not a re-auth.
    r = await ws.request({"type": "auth", "id": "a2", "api_key": env.key})
    assert r["type"] == "error", r
    await ws.close()


@pytest.mark.parametrize("how", ["query", "header", "inband_token", "inband_key", "first_not_auth",
                                 "inband_empty"])
@aio
async def test_auth_failure_4001(env, how):
    srv = env.srv
    if how == "query":
        ws = await srv.ws(query={"access_token": "bogus.token.value"})
    elif how == "header":
        ws = await srv.ws(headers={"Authorization": "Bearer hk_wrong"})
    else:
        ws = await srv.ws()
        msg = {"inband_token": {"type": "auth", "token": "x.y.z"},
               "inband_key": {"type": "auth", "api_key": "hk_wrong"},
               "first_not_auth": {"type": "subscribe", "id": "1", "filters": [{"topic": "/**"}]},
               "inband_empty": {"type": "auth"}}[how]
        await ws.send(msg)
    code, _, msgs = await ws.closed()
    assert code == 4001, (code, msgs)
    assert len(msgs) == 1 and msgs[0]["type"] == "error" and msgs[0]["code"] == "auth_failed", msgs
    assert isinstance(msgs[0]["message"], str)


@aio
async def test_publisher_cannot_subscribe_4003(env):
    # A publisher cannot subscribe: forbidden + 4003 (on every auth path).
    srv = env.srv
    for attempt in ("header", "inband", "query"):
        if attempt == "header":
            ws = await srv.ws(headers={"Authorization": "Bearer " + env.pkey})
        elif attempt == "query":
            ws = await srv.ws(query={"access_token": srv.access_token(env.pub)})
        else:
            ws = await srv.ws()
            await ws.send({"type": "auth", "api_key": env.pkey})
        code, _, msgs = await ws.closed()
        assert code == 4003, (attempt, code, msgs)
        assert len(msgs) == 1 and msgs[0]["type"] == "error" and msgs[0]["code"] == "forbidden", msgs


@aio
async def test_app_without_subscribe_scope_4003(srv):
    t = srv.tenant()
    a = srv.app(t, "app", scopes=["history"])
    ws = await srv.ws(headers={"Authorization": "Bearer " + a["api_key"]})
    code, _, msgs = await ws.closed()
    assert code == 4003 and [m["code"] for m in msgs] == ["forbidden"], (code, msgs)


@aio
async def test_auth_timeout_4002(env):
    # BASE_ENV: auth_timeout 2 s. Nothing is sent before the error.
    ws = await env.srv.ws()
    t0 = asyncio.get_running_loop().time()
    code, _, msgs = await ws.closed(timeout=6)
    took = asyncio.get_running_loop().time() - t0
    assert code == 4002, (code, msgs)
    assert [(m["type"], m["code"]) for m in msgs] == [("error", "auth_timeout")], msgs
    assert 1.5 <= took <= 4.5, took


def test_handshake_always_101_with_bad_credentials(env):
    # Bad credentials are answered in-band, never by an HTTP status (§4).
    for headers, path in [({"Authorization": "Bearer nope"}, "/v1/ws"),
                          ({}, "/v1/ws?access_token=garbage"),
                          ({}, "/v1/ws")]:
        raw = RawWS(env.srv.port, path=path, headers=headers)
        try:
            assert raw.status == 101, raw.status_line
        finally:
            raw.close()


@aio
async def test_nothing_sent_before_auth(env):
    ws = await env.srv.ws()
    await ws.no_message(0.8)
    await ws.send({"type": "auth", "api_key": env.key})
    check_welcome(await ws.recv_json())
    await ws.close()


@aio
async def test_welcome_limits_in_force(servers):
    s = servers.start("memory", {"HERALD_NATIVE_HEARTBEAT_INTERVAL": 7, "HERALD_NATIVE_IDLE_TIMEOUT": 70,
                                 "HERALD_NATIVE_ABSOLUTE_TIMEOUT": 700, "HERALD_NATIVE_RECOVERY_WINDOW": 17,
                                 "HERALD_NATIVE_RECOVERY_BUFFER": 11, "HERALD_NATIVE_MAX_INFLIGHT": 3,
                                 "HERALD_NATIVE_MAX_MESSAGE_BYTES": 4096,
                                 "HERALD_NATIVE_MAX_CONNECTIONS_PER_SESSION": 5})
    e = s.setup()
    ws, w = await s.ws_auth(e.key)
    assert w["limits"] == {"heartbeat_interval": 7, "idle_timeout": 70, "absolute_timeout": 700,
                           "recovery_window": 17, "recovery_buffer": 11, "max_inflight": 3,
                           "max_message_bytes": 4096, "max_connections_per_session": 5}
    await ws.close()
