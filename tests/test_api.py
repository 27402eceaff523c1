"""REST + WebSocket API through real HTTP (uvicorn on 127.0.0.1, httpx, websockets) over a
ledger filled by a real backtest (ema-cross + buy-and-hold on 20,000 SOL 5m candles)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from starlette.routing import Route, WebSocketRoute
from websockets.exceptions import ConnectionClosed

from perpbot.api import create_app
from perpbot.api.routes import NO_RUNS, downsample_index
from perpbot.bot.context import BotContext
from perpbot.bot.control import BotControl
from perpbot.bot.events import EventBus
from perpbot.bot.paper import PaperBot
from perpbot.app.jobs import backtest_job
from perpbot.config import load_settings
from perpbot.data.market import load_market
from perpbot.storage.ledger import Ledger

from _api_helpers import AUTH, TOKEN, next_event, recv_json, serving, ws  # noqa: E402
STATIC = Path(__file__).resolve().parents[1] / "src" / "perpbot" / "api" / "static"


class Captured(logging.Handler):
    """Log lines of the server side (uvicorn, fastapi, perpbot); the test's own clients log URLs too."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] in ("uvicorn", "fastapi", "starlette", "perpbot"):
            self.lines.append(self.format(record))


def settings_for(tmp, sol5m_path):
    return load_settings(None, output_dir=tmp, funding=False, candles_file=sol5m_path)


@pytest.fixture(scope="module")
def log_lines():
    handler = Captured()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler.lines
    root.removeHandler(handler)


@pytest.fixture(scope="module")
def filled(tmp_path_factory, sol5m_path, log_lines):
    """Run 1: model calls written directly; runs 2, 3: ema-cross and buy-and-hold backtests."""
    s = settings_for(tmp_path_factory.mktemp("api"), sol5m_path)
    market = load_market(sol5m_path, "5m").slice(0, 20000)
    led = Ledger(s.ledger)
    c = market.candles
    rid = led.start_run("backtest", "ai", s.symbol, s.timeframe, data_range=(c.timestamp.iloc[0], c.timestamp.iloc[-1]))
    r = c["close"].pct_change().fillna(0.0).to_numpy()[1000:1300]
    up = 1 / (1 + np.exp(-400 * r))
    preds = pd.DataFrame({"time": c.timestamp.iloc[1000:1300].to_numpy(), "bar": np.arange(1000, 1300),
                          "p_down": (1 - up) * 0.8, "p_flat": np.full(300, 0.2), "p_up": up * 0.8,
                          "confidence": np.maximum(up, 1 - up) * 0.8, "signal": np.sign(r).astype(int),
                          "decision": np.where(r > 0, "buy", np.where(r < 0, "sell", "hold")), "model_version": "v-test"})
    led.record_predictions(rid, preds)
    led.finish_run(rid)
    out = backtest_job(s, ["ema-cross", "buy-and-hold"], market=market, ledger=led)
    assert out.run_ids == {"ema-cross": 2, "buy-and-hold": 3}
    ctx = BotContext(s, BotControl(EventBus()))
    app = create_app(ctx, TOKEN)
    with serving(app) as base:
        yield {"s": s, "market": market, "out": out, "led": led, "preds": preds, "ctx": ctx, "app": app, "base": base}


@pytest.fixture(scope="module")
def client(filled):
    with httpx.Client(base_url=filled["base"], headers=AUTH, trust_env=False, timeout=30) as c:
        yield c


# ---------------------------------------------------------------------------------------- auth
def test_token_is_required_to_build_and_health_is_public(filled):
    for bad in ("", "   ", None):
        with pytest.raises(ValueError, match="set PERPBOT_API_TOKEN"):
            create_app(filled["ctx"], bad)
    r = httpx.get(filled["base"] + "/health", trust_env=False)
    body = r.json()
    assert r.status_code == 200 and (body["status"], body["version"]) == ("ok", "0.1.0")
    assert set(body) == {"status", "version", "uptime_s", "running", "last_candle_time", "lag_s", "errors"}
    assert body["uptime_s"] > 0 and body["running"] is False and body["errors"] == 0


def _requests_for(app):
    """(method, path) of every HTTP route (path parameters filled) and the WebSocket paths."""
    http, sockets = [], []
    for route in app.routes:
        path = route.path.replace("{job_id}", "nojob").replace("{name}", "dashboard.css")
        if isinstance(route, WebSocketRoute) or type(route).__name__ == "APIWebSocketRoute":
            sockets.append(path)
        elif isinstance(route, Route):
            http += [(method, path) for method in sorted(route.methods)]
    return http, sockets


def test_every_route_but_health_needs_the_token(filled, client):
    app, base = filled["app"], filled["base"]
    http, sockets = _requests_for(app)
    paths = {p for _, p in http}
    assert {"/api/v1/status", "/api/v1/trades", "/api/v1/equity", "/api/v1/backtests", "/dashboard", "/openapi.json",
            "/static/dashboard.css", "/api/v1/backtests/nojob/report", "/health", "/api/v1/risk", "/api/v1/daily",
            "/api/v1/indicators", "/api/v1/logs"} <= paths and len(http) >= 24
    assert sockets == ["/api/v1/ws"]
    wrong = "x" + TOKEN[1:]
    with httpx.Client(base_url=base, trust_env=False) as anon:
        for method, path in http:
            if path == "/health":
                assert anon.request(method, path).status_code == 200
                continue
            for kwargs, detail in (({}, "missing API token"), ({"headers": {"Authorization": f"Bearer {wrong}"}}, "invalid"),
                                   ({"params": {"token": wrong}}, "invalid"), ({"cookies": {"perpbot_token": wrong}}, "invalid")):
                anon.cookies.clear()
                cookies = kwargs.pop("cookies", {})
                anon.cookies.update(cookies)
                r = anon.request(method, path, **kwargs)
                assert r.status_code == 401, (method, path, kwargs, r.status_code)
                if method != "HEAD":
                    assert detail in r.json()["detail"], (method, path)
                    assert TOKEN not in r.text
        for method, path in http:  # with the token: never 401, and the token never echoed
            r = client.request(method, path, json={} if method == "POST" else None)
            assert r.status_code != 401, (method, path)
            assert TOKEN not in r.text and TOKEN not in str({k: v for k, v in r.headers.items() if k != "set-cookie"})
    filled["ctx"].control.resume(by="test")
    for query in ("", f"?token={wrong}"):
        with ws(base, query) as conn, pytest.raises(ConnectionClosed) as info:
            conn.recv(timeout=5)
        assert info.value.rcvd.code == 1008
    with ws(base, "", additional_headers={"Cookie": f"perpbot_token={wrong}"}) as conn, pytest.raises(ConnectionClosed) as info:
        conn.recv(timeout=5)
    assert info.value.rcvd.code == 1008


def test_dashboard_sets_an_httponly_strict_cookie_that_authenticates(filled):
    if not (STATIC / "dashboard.html").exists():  # the dashboard engineer's file; a placeholder only if absent
        (STATIC / "dashboard.html").write_text("<!doctype html><title>perpbot</title>")
    base = filled["base"]
    with httpx.Client(base_url=base, trust_env=False) as browser:
        r = browser.get("/dashboard", params={"token": TOKEN})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        cookie = r.headers["set-cookie"]
        assert cookie.startswith(f"perpbot_token={TOKEN};") and "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
        assert r.headers["referrer-policy"] == "no-referrer"
        assert browser.get("/api/v1/status").status_code == 200  # the cookie alone
        js = browser.get("/static/plotly.min.js")
        import plotly
        expected = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()
        assert js.status_code == 200 and js.content == expected and "javascript" in js.headers["content-type"]
        assert browser.get("/static/../app.py").status_code == 404
        assert browser.get("/static/nope.js").status_code == 404
        r2 = browser.get("/dashboard", params={"token": "wrong"})  # valid cookie, wrong query: no new cookie
        assert r2.status_code == 200 and "set-cookie" not in r2.headers
        with ws(base, "", additional_headers={"Cookie": f"perpbot_token={TOKEN}"}) as conn:
            assert recv_json(conn)["type"] == "hello"
    with httpx.Client(base_url=base, trust_env=False) as stranger:
        r = stranger.get("/dashboard", params={"token": "wrong"})
        assert r.status_code == 401 and "set-cookie" not in r.headers


# ---------------------------------------------------------------------------------------- data
def test_trades_and_orders_equal_the_ledger(filled, client):
    led, engine = filled["led"], filled["out"].runs["ema-cross"].result.trades
    ledger_trades = led.trades(2)
    assert len(ledger_trades) == len(engine) == 172
    body = client.get("/api/v1/trades", params={"run_id": 2, "limit": 1000}).json()
    assert body["run_id"] == 2 and len(body["trades"]) == 172
    got = pd.DataFrame(body["trades"])
    assert list(got.trade_id) == list(engine.trade_id)
    assert list(got.side) == ["long" if v > 0 else "short" for v in engine.side]
    for col in ("qty", "entry_price", "exit_price", "pnl", "fees", "funding"):
        np.testing.assert_allclose(got[col].to_numpy(float), engine[col].to_numpy(float), rtol=0, atol=1e-9)
    assert got.pnl.sum() == pytest.approx(ledger_trades.pnl.sum(), abs=1e-9)
    assert list(pd.to_datetime(got.entry_time)) == list(ledger_trades.entry_time)
    assert list(got.exit_reason) == list(ledger_trades.exit_reason)
    last5 = client.get("/api/v1/trades", params={"run_id": 2, "limit": 5}).json()["trades"]
    assert [t["trade_id"] for t in last5] == list(engine.trade_id.iloc[-5:])  # most recent last
    assert len(client.get("/api/v1/trades", params={"run_id": 2}).json()["trades"]) == 100
    orders = client.get("/api/v1/orders", params={"run_id": 2, "limit": 1000}).json()["orders"]
    lo = led.orders(2)
    assert len(orders) == len(lo) == 2 * 172
    assert [o["client_order_id"] for o in orders] == list(lo.client_order_id)
    assert orders[0]["client_order_id"] == "pb2-1-open" and orders[0]["side"] == ("buy" if engine.side.iloc[0] > 0 else "sell")
    tail = client.get("/api/v1/orders", params={"run_id": 2, "limit": 3}).json()["orders"]
    assert [o["client_order_id"] for o in tail] == list(lo.client_order_id.iloc[-3:])


@pytest.mark.parametrize("run_id", [2, 3])
def test_equity_and_drawdown_equal_the_ledger_and_metrics(filled, client, run_id):
    eq = filled["led"].equity(run_id)
    metrics = filled["led"].get_run(run_id)["metrics"]
    peak = eq.cummax().clip(lower=filled["s"].starting_capital)  # the metrics' convention: capital = first peak
    dd = eq / peak - 1
    for max_points in (5000, 1000, 10):
        pts = client.get("/api/v1/equity", params={"run_id": run_id, "max_points": max_points}).json()["points"]
        assert len(pts) <= max_points and len(eq) == 20000
        times = pd.to_datetime([p["time"] for p in pts])
        assert times.is_monotonic_increasing and times[0] == eq.index[0] and times[-1] == eq.index[-1]
        np.testing.assert_allclose([p["equity"] for p in pts], eq.loc[times].to_numpy(), rtol=0, atol=1e-9)
        np.testing.assert_allclose([p["drawdown"] for p in pts], dd.loc[times].to_numpy(), rtol=0, atol=1e-12)
        assert min(p["drawdown"] for p in pts) == pytest.approx(metrics["max_drawdown"], abs=1e-9)
        assert pts[-1]["equity"] == pytest.approx(metrics["final_equity"], abs=1e-9)
    assert metrics["max_drawdown"] < -0.05


def test_downsample_is_even_and_keeps_first_last_and_extra():
    idx = downsample_index(20000, 1000, (12345,))
    assert idx[0] == 0 and idx[-1] == 19999 and 12345 in idx and len(idx) <= 1000
    assert np.diff(idx).max() <= int(np.ceil(19999 / 997)) + 1
    assert list(downsample_index(7, 10)) == list(range(7))


def test_metrics_status_balance_positions_config(filled, client):
    led, out = filled["led"], filled["out"]
    body = client.get("/api/v1/metrics", params={"run_id": 2}).json()
    stored = led.get_run(2)["metrics"]
    assert body["metrics"] == stored and body["run"]["strategy"] == "ema-cross" and body["run"]["kind"] == "backtest"
    for k, v in out.runs["ema-cross"].metrics.items():
        assert body["metrics"][k] == (pytest.approx(v, abs=1e-9) if np.isfinite(v) else None), k
    assert body["metrics"]["trade_count"] == 172
    assert client.get("/api/v1/metrics").json()["run_id"] == 3  # default: the latest run
    st = client.get("/api/v1/status").json()
    assert st["run_id"] == 3 and st["paused"] is False and st["running"] is False
    bal = client.get("/api/v1/balance").json()
    last = float(led.equity(3).iloc[-1])
    assert bal["equity"] == pytest.approx(last, abs=1e-9) and bal["pnl"] == pytest.approx(last - 1000.0, abs=1e-9)
    assert bal["starting_capital"] == 1000.0 and bal["currency"] == "USDT"
    assert client.get("/api/v1/positions").json() == {"positions": []}
    ctl = filled["ctx"].control
    ctl.update_status(position={"side": -1, "qty": 6.8, "entry_price": 128.3, "stop_loss": 129.6, "take_profit": 125.7,
                                "liquidation_price": 170.1, "margin": float("nan")})
    try:
        pos = client.get("/api/v1/positions").json()["positions"]
        assert pos == [{"symbol": "SOL/USDT:USDT", "side": "short", "qty": 6.8, "entry_price": 128.3, "stop_loss": 129.6,
                        "take_profit": 125.7, "liquidation_price": 170.1, "margin": None}]
    finally:
        ctl.update_status(position=None)
    cfg = client.get("/api/v1/config").json()  # the mode the bot runs in (its control's), not the settings' default
    assert filled["s"].mode == "backtest" and ctl.status()["mode"] == "paper"
    assert cfg == {**json.loads(json.dumps(filled["s"].public_dict())), "mode": "paper"}
    assert not {"api_token", "api_key", "api_secret", "telegram_token", "smtp_password"} & set(cfg)


def test_candles_end_at_the_run_and_signals_equal_the_ledger(filled, client, sol5m):
    body = client.get("/api/v1/candles", params={"run_id": 2, "limit": 500}).json()
    assert body["symbol"] == "SOL/USDT:USDT" and body["timeframe"] == "5m" and len(body["candles"]) == 500
    raw = sol5m.iloc[19500:20000]
    got = pd.DataFrame(body["candles"])
    assert list(pd.to_datetime(got.time)) == list(raw.timestamp)
    for col in ("open", "high", "low", "close", "volume"):
        assert list(got[col]) == list(raw[col].astype(float))
    assert len(client.get("/api/v1/candles", params={"limit": 10}).json()["candles"]) == 10
    sig = client.get("/api/v1/signals", params={"run_id": 1, "limit": 1000}).json()["signals"]
    preds = filled["preds"]
    assert len(sig) == 300 and [s["decision"] for s in sig] == list(preds.decision)
    np.testing.assert_allclose([s["p_up"] for s in sig], preds.p_up, rtol=0, atol=1e-12)
    assert [s["signal"] for s in sig] == list(preds.signal) and sig[0]["model_version"] == "v-test"
    assert pd.Timestamp(sig[-1]["time"]) == preds.time.iloc[-1]
    assert len(client.get("/api/v1/signals", params={"run_id": 1, "limit": 7}).json()["signals"]) == 7
    assert client.get("/api/v1/signals", params={"run_id": 2}).json() == {"run_id": 2, "signals": []}


def test_validation_errors_are_clear_4xx(filled, client):
    for path, params, field in (("/api/v1/trades", {"limit": 0}, "limit"), ("/api/v1/trades", {"limit": 1001}, "limit"),
                                ("/api/v1/orders", {"limit": "abc"}, "limit"), ("/api/v1/equity", {"max_points": 9}, "max_points"),
                                ("/api/v1/candles", {"limit": 5001}, "limit"), ("/api/v1/signals", {"run_id": 0}, "run_id")):
        r = client.get(path, params=params)
        assert r.status_code == 422, (path, params)
        assert r.json()["detail"][0]["loc"] == ["query", field]
    for path in ("/api/v1/trades", "/api/v1/orders", "/api/v1/signals", "/api/v1/equity", "/api/v1/metrics", "/api/v1/candles"):
        r = client.get(path, params={"run_id": 99})
        assert r.status_code == 404 and r.json() == {"detail": "run 99 not found"}, path
    r = client.post("/api/v1/backtests", json={"strategy": "martingale"})
    assert r.status_code == 422 and "'ema-cross'" in r.json()["detail"][0]["msg"]
    r = client.post("/api/v1/backtests", json={"strategy": "ema-cross", "last_bars": 100})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "last_bars"] and "500" in r.text
    assert client.post("/api/v1/backtests", json={"strategy": "ema-cross", "bars": 1}).status_code == 422
    assert client.post("/api/v1/backtests").status_code == 422
    r = client.get("/api/v1/backtests/nojob")
    assert r.status_code == 404 and r.json() == {"detail": "backtest job nojob not found"}
    assert httpx.get(filled["base"] + "/api/v1/trades?limit=0", trust_env=False).status_code == 401  # auth first


def test_backtest_strategy_choices_are_the_strategies():
    from typing import get_args

    from perpbot.api.models import StrategyName
    from perpbot.strategy.signals import STRATEGIES

    assert get_args(StrategyName) == tuple(STRATEGIES)


def test_empty_ledger_answers_404_with_what_to_do(tmp_path, sol5m_path):
    ctx = BotContext(settings_for(tmp_path, sol5m_path), BotControl())
    with serving(create_app(ctx, TOKEN)) as base, httpx.Client(base_url=base, headers=AUTH, trust_env=False) as c:
        for path in ("/api/v1/trades", "/api/v1/equity", "/api/v1/metrics", "/api/v1/orders", "/api/v1/signals"):
            r = c.get(path)
            assert r.status_code == 404 and r.json() == {"detail": NO_RUNS}, path
        assert "no runs in the ledger" in NO_RUNS
        assert c.get("/api/v1/status").json()["run_id"] is None
        assert c.get("/api/v1/balance").json()["equity"] is None
        assert len(c.get("/api/v1/candles", params={"limit": 20}).json()["candles"]) == 20


# ---------------------------------------------------------------------------------------- live
def test_control_and_bot_events_arrive_on_the_websocket(tmp_path, sol5m_path, filled):
    ctl = BotControl(EventBus())
    ctx = BotContext(settings_for(tmp_path, sol5m_path), ctl)
    with serving(create_app(ctx, TOKEN)) as base, httpx.Client(base_url=base, headers=AUTH, trust_env=False) as c, \
            ws(base) as conn:
        hello = recv_json(conn)
        assert hello["type"] == "hello" and hello["status"]["paused"] is False
        r = c.post("/api/v1/pause").json()
        assert r["ok"] is True and r["status"]["paused"] is True and ctl.paused
        ev = next_event(conn, "paused")
        assert ev["data"] == {"by": "api"} and isinstance(ev["seq"], int) and ev["time"].endswith("+00:00")
        assert c.post("/api/v1/resume").json()["status"]["paused"] is False and not ctl.paused
        assert next_event(conn, "resumed")["seq"] > ev["seq"]
        c.post("/api/v1/force-exit")
        assert next_event(conn, "force_exit")["data"] == {"by": "api"} and ctl.take_force_exit() is True
        s = load_settings(None, funding=False, warmup_bars=60, cooldown_bars=0)
        bot = PaperBot(s, "ema-cross", control=ctl)
        candles = filled["market"].candles.iloc[:400]
        for row in candles.itertuples(index=False):
            bot.on_candle(row.timestamp, row.open, row.high, row.low, row.close, row.volume)
        cycles, exits = [], 0
        while len(cycles) < 400:
            msg = recv_json(conn)
            if msg["kind"] == "cycle":
                cycles.append(msg)
            exits += msg["kind"] == "exit"
        assert [m["data"]["bar"] for m in cycles] == list(range(400))
        assert cycles[-1]["data"]["equity"] == pytest.approx(bot.exchange.equity)
        assert cycles[-1]["data"]["candle_time"] == candles.timestamp.iloc[-1].isoformat()
        assert exits == len(bot.exchange.result().trades) > 0
        assert c.get("/api/v1/status").json()["cycles"] == 400


def test_a_stuck_websocket_client_never_blocks_the_publisher(tmp_path, sol5m_path):
    ctl = BotControl(EventBus())
    ctx = BotContext(settings_for(tmp_path, sol5m_path), ctl)
    with serving(create_app(ctx, TOKEN)) as base, ws(base, max_queue=1, close_timeout=0.5) as stuck:
        assert recv_json(stuck)["type"] == "hello"  # then never reads again
        blob = "x" * 4000
        t0 = time.perf_counter()
        for i in range(20_000):  # ~80 MB: far beyond the socket buffers
            ctl.events.publish("cycle", bar=i, blob=blob)
        assert time.perf_counter() - t0 < 5.0
        with ws(base) as fresh, httpx.Client(base_url=base, headers=AUTH, trust_env=False) as c:
            assert recv_json(fresh)["type"] == "hello"
            assert c.get("/health").status_code == 200
            c.post("/api/v1/pause")
            assert next_event(fresh, "paused", timeout=5)["data"] == {"by": "api"}


def test_backtest_jobs_run_one_at_a_time_and_serve_their_report(tmp_path, sol5m_path, sol5m):
    s = settings_for(tmp_path, sol5m_path)
    ctx = BotContext(s, BotControl())
    with serving(create_app(ctx, TOKEN)) as base, httpx.Client(base_url=base, headers=AUTH, trust_env=False) as c:
        ai = c.post("/api/v1/backtests", json={"strategy": "ai"})
        r = c.post("/api/v1/backtests", json={"strategy": "ema-cross", "last_bars": 3000})
        assert ai.status_code == r.status_code == 202 and r.json()["status"] == "queued"
        job_id = r.json()["job_id"]
        early = c.get(f"/api/v1/backtests/{job_id}/report")
        assert early.status_code == 404 and "its report exists once it has finished" in early.json()["detail"]
        deadline = time.monotonic() + 60
        while (job := c.get(f"/api/v1/backtests/{job_id}").json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, job
            time.sleep(0.1)
        failed = c.get(f"/api/v1/backtests/{ai.json()['job_id']}").json()
        assert failed["status"] == "failed" and failed["error"].startswith("model file not found")
        assert c.get(f"/api/v1/backtests/{ai.json()['job_id']}/report").status_code == 404
        assert job["status"] == "finished" and job["error"] is None
        assert pd.Timestamp(job["started_at"]) >= pd.Timestamp(failed["finished_at"])  # one at a time, in order
        rid = job["run_ids"]["ema-cross"]
        run = Ledger(s.ledger).get_run(rid)
        assert run["data_range_start"] == sol5m.timestamp.iloc[-3000] and run["data_range_end"] == sol5m.timestamp.iloc[-1]
        assert job["metrics"]["ema-cross"] == run["metrics"]
        check = backtest_job(s, ["ema-cross"], market=load_market(sol5m_path, "5m").slice(len(sol5m) - 3000))
        assert job["metrics"]["ema-cross"]["final_equity"] == pytest.approx(check.runs["ema-cross"].metrics["final_equity"])
        assert job["metrics"]["ema-cross"]["trade_count"] == len(check.runs["ema-cross"].result.trades) > 0
        report = c.get(job["report_url"])
        assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
        assert report.content == (tmp_path / "reports" / f"{job_id}.html").read_bytes() and b"<html" in report.content[:500]


def test_the_token_never_reaches_the_logs(filled, client, log_lines):
    base = filled["base"]
    with httpx.Client(base_url=base, trust_env=False) as anon:
        anon.get("/api/v1/status", params={"token": TOKEN})
        anon.get("/dashboard", params={"token": TOKEN})
    with ws(base) as conn:
        recv_json(conn)
    deadline = time.monotonic() + 5
    while not any("/dashboard?token=***" in line for line in log_lines):
        assert time.monotonic() < deadline, "no uvicorn access line captured"
        time.sleep(0.05)
    assert not [line for line in log_lines if TOKEN in line]
    assert any("/api/v1/ws?token=***" in line for line in log_lines)

