"""Predictions meet outcomes (issue 9, item 7): realised labels of recorded predictions, stored
once their horizon has passed, and the live scorecard beside the model's out-of-sample figures."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from perpbot.data.loader import load_candles
from perpbot.ml.outcomes import realised_labels, scorecard, settle_predictions
from perpbot.storage import Ledger

LABELS = {"take_profit": 0.01, "stop_loss": 0.005, "horizon": 12}


def _by_hand(c: pd.DataFrame, i: int, tp: float, sl: float, h: int) -> float:
    """The triple-barrier rule walked bar by bar (stop first when one bar touches both)."""
    entry = c.close.iat[i]
    if i + h >= len(c):
        return math.nan
    long_win = short_win = None
    long_done = short_done = False
    for j in range(i + 1, i + h + 1):
        hi, lo = c.high.iat[j], c.low.iat[j]
        if not long_done:
            if lo <= entry * (1 - sl):
                long_done = True
            elif hi >= entry * (1 + tp):
                long_win, long_done = j, True
        if not short_done:
            if hi >= entry * (1 + sl):
                short_done = True
            elif lo <= entry * (1 - tp):
                short_win, short_done = j, True
    if long_win and short_win:
        return 0.0 if long_win == short_win else (1.0 if long_win < short_win else -1.0)
    return 1.0 if long_win else (-1.0 if short_win else 0.0)


@pytest.fixture(scope="module")
def candles(sol5m_path):
    return load_candles(sol5m_path).iloc[20_000:22_000].reset_index(drop=True)


def test_realised_labels_follow_the_barrier_rule_on_real_candles(candles):
    rows = list(range(0, 1988, 7))
    got = realised_labels(candles.timestamp.iloc[rows], candles, LABELS)
    want = [_by_hand(candles, i, 0.01, 0.005, 12) for i in rows]
    assert got.to_numpy().tolist() == want
    assert set(np.unique(got)) == {-1.0, 0.0, 1.0}  # the slice has wins both ways and flats
    # the last 12 candles' horizon runs past the data: not known yet; unknown times: NaN
    tail = realised_labels(candles.timestamp.iloc[-12:], candles, LABELS)
    assert tail.isna().all()
    assert realised_labels([pd.Timestamp("2020-01-01", tz="UTC")], candles, LABELS).isna().all()
    with pytest.raises(ValueError, match="label_settings lacks horizon"):
        realised_labels(candles.timestamp.iloc[:3], candles, {"take_profit": 0.01, "stop_loss": 0.005})


def test_settle_labels_each_prediction_once_its_horizon_passed(tmp_path, candles):
    led = Ledger(f"sqlite:///{tmp_path / 'p.db'}")
    rid = led.start_run("paper", "ai", "SOL/USDT:USDT", "5m")
    rows = [100, 500, 995, 1_995]  # the last one's horizon is not in the first 1,000 candles nor in all 2,000
    led.record_predictions(rid, pd.DataFrame({
        "time": candles.timestamp.iloc[rows].to_numpy(), "p_down": 0.2, "p_flat": 0.3, "p_up": 0.5,
        "confidence": 0.5, "signal": 1, "decision": "buy"}))
    seen = candles.iloc[:1_000]  # what the bot had seen by then: rows 995 (needs 996..1,007) and 1,995 are open
    assert settle_predictions(led, rid, seen, LABELS) == 2
    assert settle_predictions(led, rid, candles, LABELS) == 1  # 995 now; 1,995 still open
    assert settle_predictions(led, rid, candles, LABELS) == 0  # idempotent
    stored = led.predictions(rid)["realised_label"].tolist()
    want = [_by_hand(candles, i, 0.01, 0.005, 12) for i in rows[:3]]
    assert stored[:3] == want and pd.isna(stored[3])
    led.close()


def test_scorecard_hand_worked_drift_warning():
    # 40 labelled long calls at p_up 0.7 with 16 hits, out-of-sample precision 0.60
    n, hits = 40, 16
    preds = pd.DataFrame({"signal": [1] * n + [1, 0], "p_down": 0.1, "p_up": 0.7,
                          "realised_label": [1.0] * hits + [-1.0] * 12 + [0.0] * 12 + [math.nan, 1.0]})
    card = scorecard(preds, {"precision": 0.60, "precision_base": 0.52})
    assert (card["n_calls"], card["n_labelled"], card["n_pending"]) == (41, 40, 1)
    assert card["precision"] == pytest.approx(0.4, abs=1e-12)
    assert card["mean_confidence"] == pytest.approx(0.7, abs=1e-12)
    assert card["ece"] == pytest.approx(0.3, abs=1e-12)  # one bin: |0.4 - 0.7|
    # P(X <= 16 | n = 40, p = 0.6) = sum_k<=16 C(40,k) 0.6^k 0.4^(40-k) = 0.0083418 (worked with math.comb)
    assert card["p_value"] == pytest.approx(0.008341770891180388, rel=1e-9)
    assert card["drift"] and card["warning"].startswith("live precision 0.400 over 40 labelled calls is below")
    # 19 hits: p = 0.0744 > 0.01: no warning; fewer than min_n labelled calls: no verdict
    preds.loc[16:18, "realised_label"] = 1.0
    ok = scorecard(preds, {"precision": 0.60})
    assert ok["p_value"] == pytest.approx(0.07435155675691377, rel=1e-9) and not ok["drift"] and ok["warning"] is None
    few = scorecard(preds.iloc[:20], {"precision": 0.60})
    assert math.isnan(few["p_value"]) and not few["drift"]


def test_status_shows_live_calls_beside_the_model_and_warns_on_drift(tmp_path):
    from rich.console import Console

    from perpbot.cli.live import render_status, status_report
    from perpbot.config import load_settings

    s = load_settings(None, output_dir=tmp_path)
    led = Ledger(s.ledger)
    rid = led.start_run("live", "ai", "SOL/USDT:USDT", "5m", note="DEMO")
    t = pd.date_range("2025-06-01", periods=42, freq="5min", tz="UTC")
    led.record_predictions(rid, pd.DataFrame({"time": t, "p_down": 0.1, "p_flat": 0.2, "p_up": 0.7,
                                              "confidence": 0.7, "signal": 1, "decision": "buy"}))
    led.record_outcomes(rid, pd.Series([1.0] * 16 + [-1.0] * 24 + [math.nan, math.nan], index=t))
    rep = status_report(s, led, rid, oos_metrics={"precision": 0.60, "precision_base": 0.52})
    card = rep["outcomes"]
    assert (card["n_calls"], card["n_labelled"], card["n_pending"], card["drift"]) == (42, 40, 2, True)
    out = Console(record=True, width=250)
    out.print(render_status(rep))
    assert ("precision 40.0 % over 40 labelled calls (2 pending), mean confidence 70.0 %, ECE 0.300; "
            "out-of-sample 60.0 % (base 52.0 %)  DRIFT") in out.export_text()
    led.close()


def test_daily_summary_carries_the_live_scorecard_and_its_warning(tmp_path):
    from types import SimpleNamespace

    from perpbot.bot.context import BotContext
    from perpbot.bot.control import BotControl
    from perpbot.config import load_settings
    from perpbot.notify.messages import render_summary
    from perpbot.notify.summary import daily_summary

    s = load_settings(None, output_dir=tmp_path, language="id")
    led = Ledger(s.ledger)
    rid = led.start_run("paper", "ai", "SOL/USDT:USDT", "5m")
    t = pd.date_range("2025-06-01", periods=40, freq="5min", tz="UTC")
    led.record_predictions(rid, pd.DataFrame({"time": t, "p_down": 0.1, "p_flat": 0.2, "p_up": 0.7,
                                              "confidence": 0.7, "signal": 1, "decision": "buy"}))
    led.record_outcomes(rid, pd.Series([1.0] * 16 + [0.0] * 24, index=t))
    ctx = BotContext(s, BotControl(), bundle=SimpleNamespace(oos_metrics={"precision": 0.6}))
    d = daily_summary(ctx, "2025-06-01", run_id=rid)
    assert d["model_live"]["n_labelled"] == 40 and d["model_live"]["drift"]
    body = render_summary(d, s, "id").text.splitlines()
    assert body[-2:] == ["Model live: presisi 40,00% dari 40 sinyal berlabel (out-of-sample 60,00%)",
                         "PERINGATAN: presisi live jauh di bawah presisi out-of-sample model (p = 0.0083)"]
    led.close()


def test_live_bot_labels_its_calls_from_its_candle_window(tmp_path, sol5m_path, sol_funding_path, sol_mark8h_path):
    """The live loop on the local Bitget simulator: scripted calls with probabilities are recorded;
    once 12 more candles closed, each carries the label the simulator's candles gave it."""
    import asyncio
    from types import SimpleNamespace

    from _live_helpers import make_bot, ms, settings, step
    from _sim_fixtures import quiet_loggers, running_sim, sim_data

    start = 1100
    data = sim_data(sol5m_path, sol_funding_path, sol_mark8h_path, 1200)
    candles = data[0]
    led = Ledger(f"sqlite:///{tmp_path / 'live.db'}")
    rid = led.start_run("live", "ai", "SOL/USDT:USDT", "5m")
    call_rows = [start + 2, start + 5, start + 30]  # the last one's horizon is not over after 40 candles
    calls = {ms(candles, i): (1 if k % 2 == 0 else -1) for k, i in enumerate(call_rows)}
    p = np.array([0.25, 0.35, 0.40])

    async def go():
        bot = await make_bot(sim, settings(sim, tmp_path), led, rid)
        bot.bundle = SimpleNamespace(version="v-test", features_hash="h-test", label_settings=LABELS)

        def decide(frame):
            sig = calls.get(int(frame["timestamp"].iloc[-1].value // 1_000_000), 0)
            return sig, (p if sig else None)

        bot.signals.decide = decide
        try:
            await step(sim, bot, 40)
            bot.flush()
        finally:
            await bot.ex.close()

    with quiet_loggers("ccxt", "aiohttp", "asyncio", "perpbot.live", "perpbot.bot"), running_sim(data, start) as sim:
        asyncio.run(go())
    preds = led.predictions(rid)
    assert list(preds["signal"]) == [1, -1, 1]
    want = [_by_hand(candles, i, 0.01, 0.005, 12) for i in call_rows[:2]]
    assert preds["realised_label"].tolist()[:2] == want and pd.isna(preds["realised_label"].iloc[2])
    led.close()
