"""API abuse, through real HTTP (uvicorn on 127.0.0.1, httpx, websockets, raw sockets): server errors
that leak nothing, cross-origin requests with the dashboard cookie, oversized bodies, non-finite
numbers, short tokens, plain HTTP on a public address, percent-encoded token parameters in the logs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from fastapi import Request
from starlette.routing import Route
from websockets.exceptions import InvalidStatus

from perpbot.api import create_app
from perpbot.bot.context import BotContext
from perpbot.bot.control import BotControl
from perpbot.bot.events import EventBus
from perpbot.config import load_settings
from perpbot.logs import configure_logging

from _api_helpers import AUTH, TOKEN, recv_json, serving, ws

SAFE = {"GET", "HEAD", "OPTIONS"}
#: A valid body for every route that takes one (a new body route must be added here).
VALID_BODIES = {"/api/v1/backtests": {"strategy": "ema-cross", "last_bars": 500}}


def _no_nan(text: str):
    def refuse(const):
        raise AssertionError(f"non-standard JSON constant {const} in {text[:200]}")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def logs_to(tmp_path):
    """A log folder for ``configure_logging`` (called in the test itself, so the console handler writes to
    the stderr that capfd captures); console-only logging again afterwards."""
    yield tmp_path / "logs"
    configure_logging(None)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    ctl = BotControl(EventBus())
    ctx = BotContext(load_settings(None, output_dir=tmp_path_factory.mktemp("sec")), ctl)
    app = create_app(ctx, TOKEN)
    with serving(app) as base:
        yield {"app": app, "base": base, "ctl": ctl}


def _state_changing(app) -> list[tuple[str, str]]:
    out = []
    for route in app.routes:
        if isinstance(route, Route):
            out += [(m, route.path.replace("{job_id}", "nojob")) for m in sorted(route.methods - SAFE)]
    return out


# ---------------------------------------------------------------------------------- 500
def test_a_server_error_leaks_the_token_nowhere(tmp_path, capfd, logs_to):
    """A route that raises, called with the bearer header, the query token and the cookie: the 500
    body carries no internals, and neither the server's stderr nor its log file holds the token."""
    log_file = configure_logging(logs_to, "info")
    ctx = BotContext(load_settings(None, output_dir=tmp_path), BotControl())
    app = create_app(ctx, TOKEN)

    @app.get("/api/v1/boom")
    def boom(request: Request):
        headers = dict(request.headers)  # noqa: F841  (what a traceback with locals used to print)
        raise RuntimeError("ledger unreachable")

    @app.get("/api/v1/boom-with-secret")
    def boom_with_secret(request: Request):
        raise ValueError(f"cannot parse {request.headers['authorization']}")  # a careless message

    with serving(app) as base, httpx.Client(base_url=base, trust_env=False, timeout=30) as c:
        c.cookies.set("perpbot_token", TOKEN)
        for path in ("/api/v1/boom", "/api/v1/boom-with-secret"):
            r = c.get(path, params={"token": TOKEN}, headers=AUTH)
            assert r.status_code == 500
            detail = r.json()["detail"]
            assert detail.startswith("internal server error (id ") and "server log" in detail
            assert not any(w in r.text for w in ("RuntimeError", "ValueError", "ledger", "Traceback", TOKEN))
        assert c.get("/api/v1/status", headers=AUTH).status_code == 200  # still serving
    err = capfd.readouterr().err
    text = log_file.read_text(encoding="utf-8")
    for out in (err, text):
        assert TOKEN not in out
        assert "RuntimeError: ledger unreachable" in out and "ValueError: cannot parse Bearer ***" in out
    errors = [json.loads(line) for line in text.splitlines() if '"api_error"' in line]
    assert len(errors) == 2 and {e["path"] for e in errors} == {"/api/v1/boom", "/api/v1/boom-with-secret"}
    assert all(e["level"] == "error" and "Traceback" in e["exception"] and len(e["error_id"]) == 8 for e in errors)
    assert "Exception in ASGI application" not in err + text  # logged once, by the API, not again by uvicorn
    assert err.count("Traceback (most recent call last)") == 2


# ---------------------------------------------------------------------------------- Origin
def test_foreign_origins_cannot_change_state_with_the_dashboard_cookie(api):
    app, base, ctl = api["app"], api["base"], api["ctl"]
    routes = _state_changing(app)
    assert {("POST", "/api/v1/pause"), ("POST", "/api/v1/resume"), ("POST", "/api/v1/force-exit"),
            ("POST", "/api/v1/backtests")} <= set(routes)
    port = int(base.rsplit(":", 1)[1])
    foreign = [{"Origin": f"http://127.0.0.1:{port + 1}"}, {"Origin": f"http://localhost:{port}"},
               {"Origin": f"https://127.0.0.1:{port}"}, {"Origin": "null"},
               {"Referer": f"http://127.0.0.1:{port + 1}/attack.html"}, {}]  # {}: a cookie with neither header
    with httpx.Client(base_url=base, trust_env=False, timeout=30) as browser:
        browser.cookies.set("perpbot_token", TOKEN)
        for method, path in routes:
            for headers in foreign:
                r = browser.request(method, path, json=VALID_BODIES.get(path), headers=headers)
                assert r.status_code == 403, (method, path, headers, r.status_code, r.text)
                assert TOKEN not in r.text and "attack.html" not in r.text
        assert not ctl.paused and not ctl.take_force_exit()  # nothing happened
        for method, path in routes:
            r = browser.request(method, path, json={"strategy": "nope"} if path in VALID_BODIES else None,
                                headers={"Origin": base})
            assert r.status_code in (200, 422), (method, path, r.status_code, r.text)  # 422: the gate let it through
        ctl.take_force_exit()
        ctl.resume(by="test")
        assert browser.post("/api/v1/pause", headers={"Referer": base + "/dashboard"}).status_code == 200
        assert ctl.paused
        assert browser.post("/api/v1/resume", headers={"Origin": base}).status_code == 200 and not ctl.paused
        assert browser.get("/api/v1/status", headers=foreign[0]).status_code == 200  # reads: SOP keeps them private
    with httpx.Client(base_url=base, trust_env=False, headers=AUTH) as script:  # bearer, no Origin: a script
        assert script.post("/api/v1/pause").status_code == 200 and ctl.paused
        assert script.post("/api/v1/resume").status_code == 200 and not ctl.paused
        assert script.post("/api/v1/pause", headers=foreign[0]).status_code == 403 and not ctl.paused


def test_the_websocket_refuses_foreign_origins(api):
    base = api["base"]
    port = int(base.rsplit(":", 1)[1])
    cookie = {"Cookie": f"perpbot_token={TOKEN}"}
    for origin, query, headers in ((f"http://127.0.0.1:{port + 1}", "", cookie), ("http://evil.example", "", cookie),
                                   (f"http://127.0.0.1:{port + 1}", f"?token={TOKEN}", {})):
        with pytest.raises(InvalidStatus) as info:
            ws(base, query, origin=origin, additional_headers=headers)
        assert info.value.response.status_code == 403
    with ws(base, "", origin=base, additional_headers=cookie) as conn:  # the dashboard itself
        assert recv_json(conn)["type"] == "hello"
    with ws(base) as conn:  # a script: ?token=, no Origin
        assert recv_json(conn)["type"] == "hello"


# ---------------------------------------------------------------------------------- body size
def test_an_oversized_body_is_refused_with_413(api):
    base = api["base"]
    with httpx.Client(base_url=base, headers=AUTH, trust_env=False, timeout=60) as c:
        r = c.post("/api/v1/backtests", content=b"x" * 12_000_000, headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert r.json() == {"detail": "request body too large: at most 65536 bytes are accepted"}
        assert len(r.content) < 200 and r.headers["connection"] == "close"
        sent = 0
        total = 32 * 2**20

        def stream():  # no Content-Length: chunked transfer encoding
            nonlocal sent
            while sent < total:
                sent += 2**16
                yield b"1" * 2**16

        r = c.post("/api/v1/backtests", content=stream(), headers={"content-type": "application/json"})
        assert r.status_code == 413 and "65536 bytes" in r.json()["detail"] and len(r.content) < 200
        assert sent < total  # answered while most of the 32 MB was still unsent
        assert c.get("/api/v1/status").status_code == 200


def test_a_declared_oversized_body_is_refused_before_it_is_sent(api):
    """Only the headers are sent (Content-Length: 200 MB): the 413 arrives without the body."""
    host, port = api["base"].removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall((f"POST /api/v1/backtests HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {TOKEN}\r\n"
                      f"Content-Type: application/json\r\nContent-Length: {200 * 2**20}\r\n\r\n").encode())
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413 ") and b"request body too large" in reply


def test_the_body_limit_stops_reading_a_stream_at_the_cap():
    """The ASGI guard pulls no more than the cap (+ one chunk) from a 10 MB stream, whatever the app does."""
    import asyncio

    from perpbot.api.guards import BodySizeLimit

    pulled = []

    async def receive():
        pulled.append(2**16)
        return {"type": "http.request", "body": b"x" * 2**16, "more_body": len(pulled) < 160}  # 160 x 64 KiB = 10 MiB

    async def greedy_app(scope, receive_, send):
        while (await receive_()).get("more_body"):
            pass
        raise AssertionError("the app read the whole body")

    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/x", "headers": [(b"transfer-encoding", b"chunked")]}
    asyncio.run(BodySizeLimit(greedy_app, max_bytes=100_000)(scope, receive, send))
    assert sum(pulled) <= 100_000 + 2**16 and len(pulled) == 2
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["detail"] == "request body too large: at most 100000 bytes are accepted"


def test_validation_errors_do_not_echo_large_inputs(api):
    with httpx.Client(base_url=api["base"], headers=AUTH, trust_env=False, timeout=30) as c:
        for body in ({"strategy": "A" * 60_000}, {"strategy": "ema-cross", "last_bars": "9" * 60_000},
                     [{"strategy": "ai"}] * 3_000, {f"k{i}": i for i in range(4_000)}):
            raw = json.dumps(body)
            assert 10_000 < len(raw) <= 65536
            r = c.post("/api/v1/backtests", content=raw, headers={"content-type": "application/json"})
            assert r.status_code == 422 and len(r.content) < 5_000, (len(r.content), r.text[:300])
            assert "A" * 300 not in r.text and "9" * 300 not in r.text
            assert all({"type", "loc", "msg"} <= set(e) for e in _no_nan(r.text)["detail"])
        r = c.post("/api/v1/backtests", json={"strategy": "martingale"})
        assert r.json()["detail"][0]["input"] == "martingale"  # small inputs are still shown


# ---------------------------------------------------------------------------------- numbers
@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
def test_non_finite_numbers_are_422_on_every_numeric_field(api, bad):
    app = api["app"]
    with httpx.Client(base_url=api["base"], headers=AUTH, trust_env=False, timeout=30) as c:
        checked = 0
        for route in app.routes:
            body_field = getattr(route, "body_field", None)
            if body_field is None:
                continue
            assert route.path in VALID_BODIES, f"add a valid body for {route.path} to VALID_BODIES"
            model = body_field.field_info.annotation
            for name, field in model.model_fields.items():
                if not any(t in str(field.annotation) for t in ("int", "float")):
                    continue
                raw = json.dumps({**VALID_BODIES[route.path], name: "@"}).replace('"@"', bad)
                for method in sorted(route.methods - SAFE):
                    r = c.request(method, route.path, content=raw, headers={"content-type": "application/json"})
                    assert r.status_code == 422, (route.path, name, bad, r.status_code, r.text)
                    assert _no_nan(r.text)["detail"][0]["loc"] == ["body", name]
                    checked += 1
        assert checked >= 1
        for path, param in (("/api/v1/trades", "limit"), ("/api/v1/orders", "run_id"), ("/api/v1/equity", "max_points"),
                            ("/api/v1/candles", "limit")):
            r = c.get(path, params={param: bad.lower()})
            assert r.status_code == 422 and _no_nan(r.text)["detail"][0]["loc"] == ["query", param]


# ---------------------------------------------------------------------------------- token
def test_a_short_api_token_is_refused(tmp_path, monkeypatch):
    ctx = BotContext(load_settings(None, output_dir=tmp_path), BotControl())
    for short in ("x", "a" * 31, "tok-" + "0" * 27):
        with pytest.raises(ValueError, match=r"too short .*at least 32.*secrets\.token_urlsafe\(32\)"):
            create_app(ctx, short)
    create_app(ctx, "a" * 32)

    import typer
    from typer.testing import CliRunner

    from perpbot.cli.serve import serve

    tiny = typer.Typer()
    tiny.command()(serve)
    for key in [k for k in os.environ if k.startswith("PERPBOT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PERPBOT_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("PERPBOT_API_TOKEN", "hunter2-short")
    r = CliRunner().invoke(tiny, ["--port", "8123"])
    assert r.exit_code == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: PERPBOT_API_TOKEN is too short (13 characters")
    assert 'python -c "import secrets; print(secrets.token_urlsafe(32))"' in lines[0] and "hunter2" not in lines[0]
    assert not (tmp_path / "out" / "perpbot.db").exists()


def test_plain_http_on_a_public_address_prints_a_warning(tmp_path):
    from perpbot.cli.serve import is_loopback, plain_http_warning

    assert all(is_loopback(h) for h in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "no-such-host.invalid"))
    assert plain_http_warning("127.0.0.1", 8000) is None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERPBOT_")}
    env.update(PERPBOT_OUTPUT_DIR=str(tmp_path), PERPBOT_API_TOKEN=TOKEN)
    err_path = tmp_path / "err.txt"
    proc = subprocess.Popen([sys.executable, "-m", "perpbot", "serve", "--host", "0.0.0.0", "--port", str(port)],
                            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err_path.open("w"))
    try:
        deadline = time.monotonic() + 60
        while "WARNING" not in err_path.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, err_path.read_text()
            time.sleep(0.1)
        while True:  # the warning is printed before uvicorn starts listening
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/health", trust_env=False).status_code == 200
                break
            except httpx.ConnectError:
                assert proc.poll() is None and time.monotonic() < deadline, err_path.read_text()
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    err = err_path.read_text()
    assert f"WARNING: the API listens on 0.0.0.0:{port} over plain HTTP" in err and "Bind 127.0.0.1" in err
    assert TOKEN not in err


# ---------------------------------------------------------------------------------- logs
def test_percent_encoded_token_parameters_are_redacted_in_the_logs(tmp_path, capfd, logs_to):
    log_file = configure_logging(logs_to, "info")
    ctx = BotContext(load_settings(None, output_dir=tmp_path), BotControl())
    other = "my-other-secret-" + "w" * 24  # not the API token: only the parameter name says it is secret
    with serving(create_app(ctx, TOKEN)) as base, httpx.Client(base_url=base, trust_env=False) as c:
        assert c.get(f"/api/v1/status?%74oken={TOKEN}").status_code == 200  # Starlette decodes the name
        assert c.get(f"/api/v1/status?%74oken={other}").status_code == 401
        for name in ("%74oken", "%74%6F%6B%65%6E", "TOKEN", "to%6Ben", "api%5Fkey"):
            assert c.get(f"/health?{name}={other}&x=1").status_code == 200
        with ws(base, f"?%74oken={TOKEN}") as conn:
            assert recv_json(conn)["type"] == "hello"
        deadline = time.monotonic() + 5
        while log_file.read_text(encoding="utf-8").count("?%74oken=***") < 3:
            assert time.monotonic() < deadline, log_file.read_text(encoding="utf-8")
            time.sleep(0.05)
    text = log_file.read_text(encoding="utf-8") + capfd.readouterr().err
    assert TOKEN not in text and other not in text
    assert "GET /health?to%6Ben=***&x=1" in text and "GET /health?api%5Fkey=***&x=1" in text
    assert "/api/v1/ws?%74oken=***" in text
