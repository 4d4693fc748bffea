"""Issue #13 items 4, 8 and 10 on the real binary: resume is exact or says so (retention), an
idempotent publish is exact across kill -9, and sessions survive kill -9.

Driven as an operator would: the sqlite store on a data directory of our own, SIGKILL of our
own server process (by its PID), a restart on the same data, clients that resume and retry.
"""
import asyncio
import json
import os
import random
import sqlite3
import threading
import time
import urllib.error
import urllib.request

from conftest import Server, aio


def start(data=None, env=None):
    return Server("sqlite", env=env or {}, data=data).start()


def restart_after_kill(srv, tenant_env=None):
    """kill -9 our own server (SIGKILL by its PID) and start a new one on the same data
    directory; `tenant_env` (an Env) is pointed at the new one."""
    srv.kill()
    new = Server("sqlite", env=srv.extra_env, data=srv.data).start()
    if tenant_env is not None:
        tenant_env.srv = new
    return new


def history_all(srv, key):
    out, cursor = [], None
    while True:
        q = "?limit=1000" + ("&cursor=" + cursor if cursor else "")
        page = srv.history(key, q[1:]).json
        out += page["events"]
        cursor = page["next_cursor"]
        if cursor is None:
            return out


async def subscribed(env, topic="/c/**", snapshot=None):
    ws, w = await env.srv.ws_auth(env.key)
    await ws.subscribe([{"topic": topic}], snapshot=snapshot)
    return ws, w


def pub(env, i, topic="/c/x", **extra):
    body = {"topic": topic, "type": "t", "data": {"i": i}}
    body.update(extra)
    return env.publish(body)[0]


# --------------------------------------------------------------------------- item 4

@aio
async def test_resume_over_a_pruned_gap_is_buffer_overflow_not_relabelled():
    # Retention 1 s, run every second; a ring of 3. Retained states survive pruning, plain
    # events do not: the log keeps holes inside the session's gap.
    srv = first = start(env={"HERALD_CORE_LOG_RETENTION": 1, "HERALD_CORE_PRUNE_INTERVAL": 1,
                     "HERALD_NATIVE_RECOVERY_BUFFER": 3})
    try:
        e = srv.setup()
        ws, w = await subscribed(e)
        await ws.close()
        await asyncio.sleep(0.2)
        for i in range(6):  # seq 1..6: 1, 3, 5 retained (kept), 2, 4, 6 plain (pruned)
            extra = {"subject": "s%d" % i, "retain": True} if i % 2 == 0 else {}
            pub(e, i, **extra)
        await asyncio.sleep(3.5)  # older than the retention, and a prune has run
        kept = [x["data"]["i"] for x in history_all(srv, e.key)]
        assert kept == [0, 2, 4], kept  # the holes the test is about
        for i in range(6, 9):  # seq 7..9: the ring
            pub(e, i)
        # Before: counting kept events relabelled them 1..3 and replayed 7..9 again as 4..6.
        ws2, w2 = await srv.ws_auth(e.key, query={"resume": w["resume_token"], "last_seq": 0})
        assert w2["recovered"] is False and w2["recovery_error"] == "buffer_overflow", w2
        await ws2.no_message(0.4)
        await ws2.close()
        # A gap the log still holds whole (after the pruning) is replayed with original seqs.
        ws, w = await subscribed(e)
        await ws.close()
        await asyncio.sleep(0.2)
        for i in range(10):
            pub(e, 100 + i)
        ws3, w3 = await srv.ws_auth(e.key, query={"resume": w["resume_token"], "last_seq": 2})
        assert w3["recovered"] is True, w3
        evs = await ws3.events(8)
        assert [m["seq"] for m in evs] == list(range(3, 11))
        assert [m["event"]["data"]["i"] for m in evs] == list(range(102, 110))
        await ws3.no_message(0.3)
        await ws3.close()
        assert srv.terminate() == 0  # a clean drain (a sanitizer report would fail it)
    finally:
        srv.kill()
        first.cleanup()


# --------------------------------------------------------------------------- item 8

def test_idempotent_publish_is_exact_across_kill9():
    """Publishers retry each keyed event until acknowledged while the server is killed with
    SIGKILL and restarted three times: every key ends with exactly one event in the log, and a
    retry after the last restart answers the first result (same id and offset)."""
    srv = first = start()
    e = srv.setup()
    state = {"srv": srv}
    keys = ["k%03d" % i for i in range(240)]
    replies = {}
    lock = threading.Lock()
    stop = threading.Event()

    def post(key):
        body = json.dumps({"topic": "/idem/x", "type": "t", "data": {"key": key}}).encode()
        while not stop.is_set():
            base = state["srv"].base
            req = urllib.request.Request(base + "/v1/events", data=body, method="POST", headers={
                "Authorization": "Bearer " + e.pkey, "Content-Type": "application/json",
                "Idempotency-Key": key})
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    if r.status == 201:
                        return json.loads(r.read())["events"][0]
            except urllib.error.HTTPError as err:
                if err.code not in (409, 503):  # in progress / store closing: retry
                    raise AssertionError("key %s: %s %r" % (key, err.code, err.read()))
            except (OSError, ValueError):
                pass  # killed mid-request: retry
            time.sleep(0.01)
        return None

    def worker(part):
        for key in part:
            r = post(key)
            with lock:
                replies[key] = r

    threads = [threading.Thread(target=worker, args=(keys[i::6],)) for i in range(6)]
    for t in threads:
        t.start()
    try:
        for _ in range(3):
            time.sleep(random.uniform(0.3, 0.8))
            state["srv"] = restart_after_kill(state["srv"])
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads), "publishers still retrying"
        srv = state["srv"]
        logged = {}
        for ev in history_all(srv, e.key):
            logged.setdefault(ev["data"]["key"], []).append((ev["id"], ev["offset"]))
        twice = {k: v for k, v in logged.items() if len(v) != 1}
        assert not twice, "keys with more than one event: %r" % twice
        assert sorted(logged) == keys
        for key in keys:
            assert (replies[key]["id"], replies[key]["offset"]) == logged[key][0], key
        # A late retry of some keys: the first result, never a new event.
        for key in keys[:20]:
            r = srv.publish(e.pkey, {"topic": "/idem/x", "type": "t", "data": {"key": key}},
                            headers={"Idempotency-Key": key})
            got = r.json["events"][0]
            assert (got["id"], got["offset"]) == logged[key][0]
        assert len(history_all(srv, e.key)) == len(keys)
        assert srv.terminate() == 0
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        state["srv"].kill()
        first.cleanup()


def test_idempotency_records_expire_with_the_window():
    srv = first = start(env={"HERALD_CORE_IDEMPOTENCY_WINDOW": 1, "HERALD_CORE_PRUNE_INTERVAL": 1})
    try:
        e = srv.setup()
        body = {"topic": "/idem/x", "type": "t", "data": {}}
        one = srv.publish(e.pkey, body, headers={"Idempotency-Key": "w1"}).json["events"][0]
        again = srv.publish(e.pkey, body, headers={"Idempotency-Key": "w1"}).json["events"][0]
        assert again["id"] == one["id"]
        time.sleep(2.5)  # past the window, and a prune has run: the record is gone
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(srv.data, "herald.db"), uri=True)
        try:
            left = db.execute("SELECT count(*) FROM records WHERE kind = 'idem'").fetchone()[0]
        finally:
            db.close()
        assert left == 0
        later = srv.publish(e.pkey, body, headers={"Idempotency-Key": "w1"}).json["events"][0]
        assert later["id"] != one["id"] and later["offset"] > one["offset"]
        assert srv.terminate() == 0  # a clean drain (a sanitizer report would fail it)
    finally:
        srv.kill()
        first.cleanup()


# --------------------------------------------------------------------------- item 10

@aio
async def test_sessions_resume_exactly_after_kill9():
    srv = first = start(env={"HERALD_NATIVE_RECOVERY_BUFFER": 3})
    try:
        e = srv.setup()
        # A: read seq 1..5, then the server dies. B: subscribed (acknowledged) just before.
        a, wa = await subscribed(e)
        for i in range(5):
            pub(e, i)
        got = await a.events(5)
        assert [m["seq"] for m in got] == [1, 2, 3, 4, 5]
        b, wb = await subscribed(e, topic="/c/b/**")
        srv = restart_after_kill(srv, e)
        # Events committed after the restart count into both sessions.
        for i in range(5, 10):
            pub(e, i)
        pub(e, 50, topic="/c/b/y")
        ws, w = await srv.ws_auth(e.key, query={"resume": wa["resume_token"], "last_seq": 2})
        assert w["recovered"] is True and w["session"] == wa["session"], w
        evs = await ws.events(9)  # seq 3..5 from the log (older than the ring), 6..11 after
        assert [m["seq"] for m in evs] == list(range(3, 12))
        assert [m["event"]["data"]["i"] for m in evs] == [2, 3, 4, 5, 6, 7, 8, 9, 50]
        pub(e, 10)  # live after the hand-over: no gap, no duplicate
        live = await ws.events(1)
        assert live[0]["seq"] == 12 and live[0]["event"]["data"]["i"] == 10
        await ws.no_message(0.3)
        await ws.close()
        ws, w = await srv.ws_auth(e.key, query={"resume": wb["resume_token"], "last_seq": 0})
        assert w["recovered"] is True and w["session"] == wb["session"], w
        evs = await ws.events(1)
        assert [(m["seq"], m["event"]["data"]["i"]) for m in evs] == [(1, 50)]
        await ws.no_message(0.3)
        await ws.close()
        # A wrong token for a recorded session is still unknown (the record keeps a digest).
        forged = wa["resume_token"].split(".")[0] + ".not-the-secret"
        ws, w = await srv.ws_auth(e.key, query={"resume": forged, "last_seq": 0})
        assert w["recovered"] is False and w["recovery_error"] == "unknown_session", w
        await ws.close()
        # The records keep no resume token in the clear.
        with open(os.path.join(srv.data, "herald.db"), "rb") as f:
            assert wa["resume_token"].split(".")[1].encode() not in f.read()
        assert srv.terminate() == 0  # a clean drain (a sanitizer report would fail it)
    finally:
        srv.kill()
        first.cleanup()


@aio
async def test_kill9_gap_past_max_log_replay_is_explicit():
    srv = first = start(env={"HERALD_NATIVE_RECOVERY_BUFFER": 2, "HERALD_NATIVE_MAX_LOG_REPLAY": 3})
    try:
        e = srv.setup()
        a, wa = await subscribed(e)
        await a.close()
        srv = restart_after_kill(srv, e)
        for i in range(8):
            pub(e, i)
        ws, w = await srv.ws_auth(e.key, query={"resume": wa["resume_token"], "last_seq": 1})
        assert w["recovered"] is False and w["recovery_error"] == "buffer_overflow", w
        await ws.close()
        # Within the ring it is still exact.
        ws, w = await srv.ws_auth(e.key, query={"resume": wa["resume_token"], "last_seq": 6})
        assert w["recovered"] is True, w
        evs = await ws.events(2)
        assert [(m["seq"], m["event"]["data"]["i"]) for m in evs] == [(7, 6), (8, 7)]
        await ws.close()
        assert srv.terminate() == 0  # a clean drain (a sanitizer report would fail it)
    finally:
        srv.kill()
        first.cleanup()


@aio
async def test_drain_after_crash_keeps_sessions_and_forgets_closed_ones():
    srv = first = start()
    try:
        e = srv.setup()
        a, wa = await subscribed(e)
        pub(e, 0)
        await a.events(1)
        srv = restart_after_kill(srv, e)
        assert srv.terminate() == 0  # a drain right after: the imported session is kept
        srv = e.srv = Server("sqlite", data=srv.data).start()
        pub(e, 1)
        ws, w = await srv.ws_auth(e.key, query={"resume": wa["resume_token"], "last_seq": 1})
        assert w["recovered"] is True, w
        evs = await ws.events(1)
        assert [(m["seq"], m["event"]["data"]["i"]) for m in evs] == [(2, 1)]
        await ws.close()
        assert srv.terminate() == 0  # a clean drain (a sanitizer report would fail it)
    finally:
        srv.kill()
        first.cleanup()
