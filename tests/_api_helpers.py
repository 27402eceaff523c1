"""Helpers shared by the API tests: uvicorn in a thread, WebSocket clients, the test token."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from contextlib import contextmanager

import uvicorn
from websockets.sync.client import connect

TOKEN = "tok-" + os.urandom(16).hex()  # 36 characters: the API refuses tokens under 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@contextmanager
def serving(app):
    """uvicorn in a thread on a free 127.0.0.1 port; yields the base URL; stops at exit."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def ws(base: str, query: str = f"?token={TOKEN}", **kw):
    return connect(base.replace("http", "ws", 1) + "/api/v1/ws" + query, proxy=None, open_timeout=5, **kw)


def recv_json(conn, timeout=5.0):
    return json.loads(conn.recv(timeout=timeout))


def next_event(conn, kind, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        msg = recv_json(conn, max(0.01, deadline - time.monotonic()))
        if msg["type"] == "event" and msg["kind"] == kind:
            return msg
