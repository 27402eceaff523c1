"""A recording HTTP stub on 127.0.0.1 for the venue request tests (stdlib server in a thread).

Every request is recorded as a :class:`Seen` (method, path, query, body, headers); the answer
comes from ``routes[(method, path)]`` (a JSON-able object, or a callable ``(Seen) -> object``;
a path ending in ``*`` matches every path it prefixes), else ``fallback``. ``delays[(method, path)]`` holds an answer back that many seconds (the
timeout tests), once. The real ccxt clients are pointed here by :func:`point_at`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlparse


@dataclass
class Seen:
    method: str
    path: str
    raw_query: str
    body: str
    headers: dict = field(default_factory=dict)

    @property
    def query(self) -> dict:
        return dict(parse_qsl(self.raw_query, keep_blank_values=True))

    @property
    def json(self):
        return json.loads(self.body) if self.body else None

    @property
    def form(self) -> dict:
        return dict(parse_qsl(self.body, keep_blank_values=True))


class VenueStub:
    """Records requests and answers them from ``routes``; use as a context manager."""

    def __init__(self, routes: dict, fallback=None) -> None:
        self.routes = dict(routes)
        self.fallback = fallback if fallback is not None else {}
        self.delays: dict[tuple[str, str], float] = {}
        self.seen: list[Seen] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave at once (no delayed-ACK stall)

            def log_message(self, *_args):
                pass

            def _serve(self):
                url = urlparse(self.path)
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n).decode() if n else ""
                seen = Seen(self.command, url.path, url.query, body, {k.lower(): v for k, v in self.headers.items()})
                stub.seen.append(seen)
                key = (self.command, url.path)
                delay = stub.delays.pop(key, 0.0)
                if delay:
                    time.sleep(delay)
                answer = stub.routes.get(key)
                if answer is None:  # a route ending in "*" answers every path it prefixes
                    answer = next((v for (m, pth), v in stub.routes.items()
                                   if m == self.command and pth.endswith("*") and url.path.startswith(pth[:-1])),
                                  stub.fallback)
                if callable(answer):
                    answer = answer(seen)
                data = json.dumps(answer).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

            do_GET = do_POST = do_DELETE = do_PUT = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def requests(self, *paths: str) -> list[Seen]:
        """Recorded requests, optionally only those to ``paths``."""
        return [s for s in self.seen if not paths or s.path in paths]

    def clear(self) -> None:
        self.seen.clear()

    def __enter__(self) -> "VenueStub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


_HOST = re.compile(r"^https?://[^/]+")


def point_at(ex, base_url: str) -> None:
    """Replace the scheme and host of every REST url of ccxt client ``ex`` by ``base_url``
    (paths kept; ``{hostname}`` templates resolved first; websocket urls left alone)."""

    def swap(value):
        if isinstance(value, dict):
            return {k: (v if k == "ws" else swap(v)) for k, v in value.items()}
        if isinstance(value, str) and value.startswith("http"):
            return _HOST.sub(base_url, ex.implode_hostname(value))
        return value

    ex.urls["api"] = swap(ex.urls["api"])
