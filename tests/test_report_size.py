"""The report of `perpbot demo`-sized input stays under 2 MB without dropping a trade.

A full year of real SOL/USDT 5m candles (86,400 bars) with funding, four strategies like the demo:
an "AI" whose probabilities look 12 bars ahead (a deliberate cheat that trades far more often than
the demo's model, so the trade lists and zoom windows are larger than the demo's) beside
buy-and-hold, ema-cross and scoring.
"""

from __future__ import annotations

import numpy as np

from perpbot.backtest.honesty import honesty_for_runs
from perpbot.backtest.report_page import read_data_script
from perpbot.backtest.runner import run_strategies, write_report
from perpbot.config import load_settings
from perpbot.data.market import load_market
from perpbot.strategy.signals import BASELINES

LIMIT = 2_000_000  # bytes


def lookahead_proba(candles, horizon: int = 12, move: float = 0.008) -> np.ndarray:
    """p_up / p_down 0.7 when the close ``horizon`` bars ahead is ``move`` above / below (a look-ahead cheat)."""
    c = candles["close"].to_numpy(np.float64)
    fut = np.full(c.size, np.nan)
    fut[:-horizon] = c[horizon:] / c[:-horizon] - 1.0
    up = np.where(fut > move, 0.7, np.where(fut < -move, 0.1, 0.2))
    down = np.where(fut < -move, 0.7, np.where(fut > move, 0.1, 0.2))
    proba = np.column_stack([down, 1.0 - up - down, up])
    proba[~np.isfinite(fut)] = np.nan
    proba[:8640] = np.nan  # no prediction in the first 30 days, as before a walk-forward model's first fold
    return proba


def test_full_year_four_strategies_under_2_mb(tmp_path, sol5m_path, sol_funding_path, sol_mark8h_path):
    s = load_settings(None, output_dir=tmp_path, candles_file=sol5m_path, funding_file=sol_funding_path,
                      mark_file=sol_mark8h_path, decision="threshold")  # a bare walk-forward model: no EV tables
    market = load_market(sol5m_path, "5m", funding_file=sol_funding_path, mark_file=sol_mark8h_path)
    assert len(market.candles) == 86_400
    runs = run_strategies(s, market, ["ai", *BASELINES], proba=lookahead_proba(market.candles))
    counts = {k: len(r.result.trades) for k, r in runs.items()}
    assert counts["ai"] > 300 and sum(counts.values()) > 500, counts  # more trades than the demo's ~320
    out = write_report(tmp_path / "report.html", s, market, runs, honesty=honesty_for_runs(s, market, runs, reps=100))
    size = out.stat().st_size
    assert size < LIMIT, f"report is {size:,} bytes"
    text = out.read_text(encoding="utf-8")
    data = read_data_script(text, "perpbot-report-data")
    assert {k: len(v["id"]) for k, v in data["trades"].items()} == counts  # every trade listed
    assert data["zoom"]["covered"] == list(runs)  # and zoomable
    assert f"long entry ({(runs['ai'].result.trades['side'] > 0).sum()})" in text  # every AI entry marked
    assert "halt: ema-cross (1)" in text and "halt: scoring (3)" in text
