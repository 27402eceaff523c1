"""The dashboard's reads through real HTTP (/risk, /daily, /indicators, /logs) and the WebSocket's
status pushes, over the ledger of tests/test_api.py (run 2: ema-cross, run 3: buy-and-hold on 20,000
SOL 5m candles). Expected numbers from the ledger, the candles file, TA-Lib and pandas."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perpbot.api import create_app
from perpbot.bot.context import BotContext
from perpbot.bot.control import BotControl
from perpbot.bot.events import EventBus

from _api_helpers import TOKEN, recv_json, serving, ws  # noqa: E402
from test_api import client, filled, log_lines, settings_for  # noqa: F401 (module fixtures: a ledger of its own)


# ---------------------------------------------------------------------------------------- dashboard reads
def _day_key(index):
    return (index - pd.Timedelta(1, "ns")).floor("D")


def test_risk_and_daily_profit_equal_the_ledger_and_follow_the_running_bot(filled, client, sol5m):
    led, ctl = filled["led"], filled["ctx"].control
    eq = led.equity(2)
    last, peak = float(eq.iloc[-1]), max(1000.0, float(eq.max()))
    day = _day_key(eq.index[-1:])[0]
    start = float(eq[eq.index <= day].iloc[-1])
    r = client.get("/api/v1/risk", params={"run_id": 2}).json()
    assert r["running"] is False and r["equity"] == pytest.approx(last, abs=1e-9) and r["peak_equity"] == pytest.approx(peak)
    assert r["drawdown"] == pytest.approx(last / peak - 1, abs=1e-12)
    assert r["max_drawdown"] == pytest.approx(led.get_run(2)["metrics"]["max_drawdown"], abs=1e-12)
    assert r["day"] == day.strftime("%Y-%m-%d") and r["daily_pnl"] == pytest.approx(last - start, abs=1e-9)
    assert r["notional"] == 0.0 and r["leverage"] == 0.0 and r["max_leverage"] == 3.0
    halts = led.risk_events(2)
    halts = halts[halts.event.isin(["daily_loss_halt", "max_drawdown_halt"])]
    assert r["halt_count"] == len(halts) and [h["event"] for h in r["halts"]] == list(halts.event.tail(50))

    days = client.get("/api/v1/daily", params={"run_id": 2}).json()["days"]
    close = eq.groupby(_day_key(eq.index)).last()
    assert [d["day"] for d in days] == [d.strftime("%Y-%m-%d") for d in close.index]
    assert [d["pnl"] for d in days] == pytest.approx(list(close.diff().fillna(close.iloc[0] - 1000.0)), abs=1e-9)
    assert sum(d["pnl"] for d in days) == pytest.approx(last - 1000.0, abs=1e-6)

    # the bot runs run 2: its status equity is the latest point, its position the exposure
    t = eq.index[-1]  # the latest cycle's candle opens at the last recorded close
    mark = float(sol5m.loc[sol5m.timestamp == t, "close"].iloc[0])
    ctl.update_status(run_id=2, running=True, equity=last - 12.5, position={"side": -1, "qty": 3.0, "entry_price": 1.0},
                      last_candle_time=t.isoformat())
    try:
        r = client.get("/api/v1/risk").json()
        day = _day_key(pd.DatetimeIndex([t + pd.Timedelta(minutes=5)]))[0]
        start = float(eq[eq.index <= day].iloc[-1])
        assert r["run_id"] == 2 and r["running"] is True and r["equity"] == pytest.approx(last - 12.5)
        assert r["daily_pnl"] == pytest.approx(last - 12.5 - start, abs=1e-9)
        assert r["position_side"] == -1 and r["mark_price"] == mark and r["notional"] == pytest.approx(3.0 * mark)
        assert r["leverage"] == pytest.approx(3.0 * mark / (last - 12.5))
        assert client.get("/api/v1/daily").json()["days"][-1]["equity"] == pytest.approx(last - 12.5)
    finally:
        ctl.update_status(run_id=None, running=False, equity=None, position=None, last_candle_time=None)


def test_risk_carries_the_value_at_risk_and_worst_days_of_the_bot_s_position(filled, client, sol5m):
    """VaR / ES 95 and 99 % and the stress days of the running bot's position, over the daily closes of
    the candles up to its latest candle (by hand: pandas resample, the partial day dropped, np.quantile)."""
    led, ctl = filled["led"], filled["ctx"].control
    flat = client.get("/api/v1/risk", params={"run_id": 2}).json()  # not the bot's run: no position
    assert flat["value_at_risk"]["levels"] == [{"level": 0.95, "var": 0.0, "es": 0.0},
                                               {"level": 0.99, "var": 0.0, "es": 0.0}]
    assert flat["value_at_risk"]["stress"] == [] and flat["value_at_risk_error"] is None
    t = led.equity(2).index[-1]
    upto = sol5m[sol5m.timestamp <= t]
    mark = float(upto.close.iloc[-1])
    closes = upto.set_index("timestamp").close.resample("1D").last()
    if upto.timestamp.iloc[-1].strftime("%H:%M") != "23:55":
        closes = closes.iloc[:-1]  # the bot's day is not over
    rets = closes.pct_change().dropna()
    liq = mark * 1.08  # a short liquidated 8 % above the mark
    ctl.update_status(run_id=2, running=True, equity=1000.0, last_candle_time=t.isoformat(),
                      position={"side": -1, "qty": 3.0, "entry_price": mark, "liquidation_price": liq})
    try:
        v = client.get("/api/v1/risk").json()["value_at_risk"]
    finally:
        ctl.update_status(run_id=None, running=False, equity=None, position=None, last_candle_time=None)
    pnl = -3.0 * mark * rets.to_numpy()
    assert v["n_days"] == len(rets) >= 60 and v["last_day"] == rets.index[-1].strftime("%Y-%m-%d")
    assert v["exposure"] == pytest.approx(3.0 * mark)
    for got, level in zip(v["levels"], (0.95, 0.99)):
        q = np.quantile(pnl, 1 - level)
        assert got["var"] == pytest.approx(-q, rel=1e-12) and got["es"] == pytest.approx(-pnl[pnl <= q].mean(), rel=1e-12)
    worst = rets.nlargest(5)  # a short fears the rallies
    assert [d["day"] for d in v["stress"]] == [d.strftime("%Y-%m-%d") for d in worst.index]
    assert [d["pnl"] for d in v["stress"]] == pytest.approx(list(-3.0 * mark * worst), rel=1e-12)
    assert [d["liquidated"] for d in v["stress"]] == [bool(r >= 0.08 - 1e-12) for r in worst]
    assert any(d["liquidated"] for d in v["stress"]) and not all(d["liquidated"] for d in v["stress"])


def test_indicator_lines_are_the_strategy_s(filled, client, sol5m):
    import talib

    from perpbot.api.dash_routes import indicator_lines

    body = client.get("/api/v1/indicators", params={"run_id": 2, "limit": 300}).json()
    assert body["strategy"] == "ema-cross" and [ln["name"] for ln in body["lines"]] == ["EMA 20", "EMA 50"]
    c = sol5m.iloc[:20000]
    for ln, period in zip(body["lines"], (20, 50)):
        assert list(pd.to_datetime(ln["time"])) == list(c.timestamp.iloc[-300:])
        assert ln["value"] == pytest.approx(list(talib.EMA(c.close.to_numpy(), period)[-300:]), rel=1e-9)
    assert client.get("/api/v1/indicators", params={"run_id": 3}).json()["lines"] == []  # buy-and-hold
    # Donchian channel: independently with pandas, the previous 20 bars' extremes
    window = c.iloc[:200]
    up, lo = indicator_lines("meta:donchian", window)
    assert up["name"] == "Donchian upper 20" and lo["name"] == "Donchian lower 20"
    want_up = window.high.shift(1).rolling(20).max().to_numpy()
    want_lo = window.low.shift(1).rolling(20).min().to_numpy()
    assert np.isnan(up["value"][:20]).all() and np.isnan(want_up[:20]).all()
    assert up["value"][20:] == pytest.approx(want_up[20:]) and lo["value"][20:] == pytest.approx(want_lo[20:])


def test_log_tail_is_limited_and_never_shows_secrets(filled, client):
    path = Path(filled["s"].output_dir) / "logs" / "perpbot.jsonl"
    if path.exists():
        path.unlink()
    assert client.get("/api/v1/logs").json() == {"file": "logs/perpbot.jsonl", "exists": False, "lines": [],
                                                 "truncated": False}
    path.parent.mkdir(exist_ok=True)
    lines = [json.dumps({"event": "cycle", "bar": i, "level": "info"}) for i in range(30)]
    lines[-1] = json.dumps({"event": "login", "level": "warning", "url": f"/x?token={TOKEN}",
                            "nested": {"password": "hunter2-secret"}, "api_secret": "s3cr3t-value"})
    path.write_text("\n".join(lines) + "\n")
    body = client.get("/api/v1/logs", params={"lines": 3}).json()
    assert body["file"] == "logs/perpbot.jsonl" and body["exists"] is True and body["truncated"] is True
    assert [ln.get("bar") for ln in body["lines"]] == [27, 28, None]
    assert body["lines"][-1] == {"event": "login", "level": "warning", "url": "/x?token=***",
                                 "nested": {"password": "***"}, "api_secret": "***"}
    assert client.get("/api/v1/logs", params={"lines": 1000}).json()["truncated"] is False
    for bad in (0, 1001):
        assert client.get("/api/v1/logs", params={"lines": bad}).status_code == 422
    path.unlink()


def test_websocket_pushes_status_changes_only_when_asked(tmp_path, sol5m_path):
    """A replay that ends publishes no event: ?status=1 clients get {"type": "status"} on every change of
    running / paused / mode / run_id; other clients get events only."""
    ctl = BotControl(EventBus(), mode="paper")
    ctx = BotContext(settings_for(tmp_path, sol5m_path), ctl)
    with serving(create_app(ctx, TOKEN)) as base, ws(base, f"?token={TOKEN}&status=1") as follow, ws(base) as plain:
        assert recv_json(follow)["type"] == "hello" and recv_json(plain)["type"] == "hello"
        ctl.update_status(running=True, cycles=5)
        msg = recv_json(follow)
        assert msg["type"] == "status" and msg["status"]["running"] is True and msg["status"]["cycles"] == 5
        ctl.update_status(cycles=6)  # not a watched field: nothing sent
        ctl.update_status(running=False)
        msg = recv_json(follow)
        assert msg["type"] == "status" and msg["status"]["running"] is False and msg["status"]["cycles"] == 6
        ctl.events.publish("error", message="only events for plain clients")
        assert recv_json(plain)["type"] == "event" and recv_json(follow)["kind"] == "error"


def test_risk_card_carries_the_live_calls_against_the_model(tmp_path, sol5m_path):
    """/risk's model_live: the run's recorded calls with their realised labels beside the model's
    out-of-sample precision (40 long calls at p_up 0.7, 16 hits, out-of-sample precision 0.60: drift)."""
    import httpx
    from types import SimpleNamespace

    from perpbot.storage.ledger import Ledger

    s = settings_for(tmp_path, sol5m_path)
    led = Ledger(s.ledger)
    rid = led.start_run("paper", "ai", s.symbol, "5m")
    t = pd.date_range("2025-06-01", periods=41, freq="5min", tz="UTC")
    led.record_predictions(rid, pd.DataFrame({"time": t, "p_down": 0.1, "p_flat": 0.2, "p_up": 0.7,
                                              "confidence": 0.7, "signal": 1, "decision": "buy"}))
    led.record_outcomes(rid, pd.Series([1.0] * 16 + [-1.0] * 24 + [np.nan], index=t))
    led.record_equity(rid, pd.Series([1000.0, 1001.0], index=t[:2]))
    ctx = BotContext(s, BotControl(EventBus(), mode="paper"), bundle=SimpleNamespace(oos_metrics={"precision": 0.6}))
    with serving(create_app(ctx, TOKEN)) as base:
        r = httpx.get(f"{base}/api/v1/risk", params={"run_id": rid}, headers={"Authorization": f"Bearer {TOKEN}"},
                      trust_env=False).json()
    m = r["model_live"]
    assert (m["n_calls"], m["n_labelled"], m["n_pending"]) == (41, 40, 1)
    assert m["precision"] == pytest.approx(0.4) and m["oos_precision"] == pytest.approx(0.6) and m["drift"] is True
    assert m["p_value"] == pytest.approx(0.008341770891180388, rel=1e-9)
    led.close()
