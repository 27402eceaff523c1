"""The optional QuantStats tearsheet: perpbot's daily returns, QuantStats' figures for them.

Cross-check with an independent implementation: QuantStats' Sharpe ratio and cumulative return of
the tearsheet equal perpbot's own metrics of the same real backtest (ema-cross beside buy-and-hold
on the first 6,000 SOL/USDT 5m candles, ~21 days).
"""

from __future__ import annotations

import re
import sys

import numpy as np
import pandas as pd
import pytest

from perpbot.ml.trading_metrics import daily_returns
from perpbot.backtest.runner import run_strategies
from perpbot.backtest.tearsheet import daily_return_series, tearsheet_for_runs, write_tearsheet
from perpbot.config import load_settings
from perpbot.data.market import load_market


@pytest.fixture(scope="module")
def runs(sol5m_path):
    s = load_settings(None, candles_file=sol5m_path, funding_file=None, mark_file=None)
    market = load_market(sol5m_path, "5m").slice(0, 6000)
    return s, run_strategies(s, market, ["ema-cross", "buy-and-hold"])


def test_daily_return_series_is_perpbots_daily_returns_by_day(runs):
    s, r = runs
    eq = r["ema-cross"].result.equity
    series = daily_return_series(eq, s.starting_capital)
    np.testing.assert_array_equal(series.to_numpy(), daily_returns(eq, s.starting_capital))
    # 6,000 bars from 2025-04-07 00:00 close at 2025-04-27 20:00: 21 UTC days, the first one 2025-04-07
    assert list(series.index[[0, -1]]) == [pd.Timestamp("2025-04-07"), pd.Timestamp("2025-04-27")]
    assert len(series) == 21 and (series.index[1:] - series.index[:-1] == pd.Timedelta(days=1)).all()


def test_tearsheet_figures_equal_perpbot_metrics(runs, tmp_path):
    pytest.importorskip("quantstats")
    s, r = runs
    out = tearsheet_for_runs(tmp_path / "sheets" / "ema.html", r, s.starting_capital, strategy="ema-cross")
    assert [p.name for p in out.parent.iterdir()] == ["ema.html"]  # no temp file left
    text = out.read_text(encoding="utf-8")
    assert "perpbot — ema-cross vs buy-and-hold" in text
    assert re.search(r"https?://qtpylib", text) is None  # no remote favicon
    bh, ema = r["buy-and-hold"].metrics, r["ema-cross"].metrics
    # QuantStats' table: benchmark column first, then the strategy
    assert f"<td>Sharpe</td><td>{bh['sharpe']:.2f}</td><td>{ema['sharpe']:.2f}</td>" in text
    assert (f"<td>Cumulative Return</td><td>{bh['total_return'] * 100:.2f}%</td>"
            f"<td>{ema['total_return'] * 100:.2f}%</td>") in text


def test_without_quantstats_one_clear_error_and_nothing_written(runs, tmp_path, monkeypatch):
    s, r = runs
    monkeypatch.setitem(sys.modules, "quantstats", None)  # makes "import quantstats" raise ImportError
    with pytest.raises(RuntimeError, match=r"pip install 'perpbot\[tearsheet\]'"):
        write_tearsheet(tmp_path / "x.html", r["ema-cross"].result.equity, initial_capital=s.starting_capital)
    with pytest.raises(ValueError, match="strategy 'nope'"):
        tearsheet_for_runs(tmp_path / "y.html", r, s.starting_capital, strategy="nope")
    assert list(tmp_path.iterdir()) == []


def test_report_command_writes_the_tearsheet_of_the_ai(tmp_path, sol5m, sol_funding_path, sol_mark8h_path):
    from _cli_helpers import perpbot

    sol5m.iloc[:8_000].to_parquet(tmp_path / "candles.parquet")
    (tmp_path / "perpbot.toml").write_text(
        f'candles_file = "{tmp_path / "candles.parquet"}"\nfunding_file = "{sol_funding_path}"\n'
        f'mark_file = "{sol_mark8h_path}"\nmodel = "logreg"\ntrain_days = 7\ntest_days = 7\noutput_dir = "out"\n')
    assert perpbot(["train"], tmp_path).returncode == 0
    r = perpbot(["report", "--output", "out/report.html", "--tearsheet", "out/tearsheet.html"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "tearsheet: " in r.stdout and (tmp_path / "out" / "report.html").is_file()
    html = (tmp_path / "out" / "tearsheet.html").read_text()
    assert "perpbot — ai vs buy-and-hold" in html and "Sharpe" in html
