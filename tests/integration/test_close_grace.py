"""The Zoom and smsgw closing handshake bound, `[zoom] close_grace` and `[smsgw] close_grace`:
after the server's close frame a client that never answers it is dropped at that dialect's
grace, not at the native `close_timeout` (set far longer here)."""
import struct
import time

import pytest

from conftest import RawWS


@pytest.fixture(scope="module")
def grace_srv(servers):
    return servers.start("memory", {"HERALD_NATIVE_CLOSE_TIMEOUT": 30,
                                    "HERALD_ZOOM_CLOSE_GRACE": 1,
                                    "HERALD_SMSGW_CLOSE_GRACE": 2,
                                    "HERALD_SMSGW_AUTH_TIMEOUT": 1})


def close_then_drop(raw):
    """Reads up to the server's close frame, never answers it; returns (code, seconds from the
    close frame to the TCP drop)."""
    while True:
        op, data = raw.recv_frame(timeout=10)
        if op == 8:
            break
    closed_at = time.monotonic()
    try:
        raw.recv_frame(timeout=40)
        raise AssertionError("a frame after the close frame")
    except EOFError:
        pass
    return struct.unpack("!H", data[:2])[0], time.monotonic() - closed_at


def test_zoom_drops_a_silent_client_at_its_close_grace(grace_srv):
    raw = RawWS(grace_srv.port, path="/zoom/ws?subscriptionId=nope")
    try:
        assert raw.status == 101
        code, waited = close_then_drop(raw)  # no token: "token is empty", 4001
        assert code == 4001
        assert 0.8 <= waited < 5, waited  # close_grace 1 s, not close_timeout's 30
    finally:
        raw.close()


def test_smsgw_drops_a_silent_client_at_its_close_grace(grace_srv):
    raw = RawWS(grace_srv.port, path="/smsgw/ws")
    try:
        assert raw.status == 101
        code, waited = close_then_drop(raw)  # no auth frame within 1 s: 1008
        assert code == 1008
        assert 1.8 <= waited < 6, waited  # close_grace 2 s, not close_timeout's 30
    finally:
        raw.close()
