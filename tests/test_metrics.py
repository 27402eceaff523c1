"""Trading metrics: hand-worked numbers on tiny curves, independent re-computation on real SOL data."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from perpbot.ml.trading_metrics import (
    METRIC_NAMES,
    drawdown_series,
    format_metrics_table,
    metrics_table,
    trading_metrics,
)
from perpbot.types import TRADE_COLUMNS

UTC = "UTC"


def _trades(rows: list[dict]) -> pd.DataFrame:
    base = {c: np.nan for c in TRADE_COLUMNS}
    return pd.DataFrame([{**base, **r} for r in rows], columns=list(TRADE_COLUMNS))


NO_TRADES = pd.DataFrame(columns=list(TRADE_COLUMNS))


@pytest.fixture
def hand_curve() -> pd.Series:
    # intraday spike to 150 on day 1, day-end marks 110, 99, 108.9, 130.68; 120 is an intraday mark on day 3
    idx = pd.to_datetime([
        "2024-01-01 12:00", "2024-01-02 00:00", "2024-01-03 00:00",
        "2024-01-03 06:00", "2024-01-04 00:00", "2024-01-05 00:00",
    ]).tz_localize(UTC)
    return pd.Series([150.0, 110.0, 99.0, 120.0, 108.9, 130.68], index=idx)


@pytest.fixture
def hand_trades() -> pd.DataFrame:
    return _trades([
        dict(pnl=10.0, qty=1.0, entry_price=100.0, fees=1.0, funding=0.5, entry_bar=0, exit_bar=0),
        dict(pnl=-5.0, qty=2.0, entry_price=50.0, fees=1.0, funding=-0.2, entry_bar=0, exit_bar=1),
        dict(pnl=20.0, qty=1.0, entry_price=200.0, fees=2.0, funding=0.0, entry_bar=3, exit_bar=3),
        dict(pnl=-15.0, qty=1.0, entry_price=100.0, fees=1.0, funding=0.1, entry_bar=3, exit_bar=4),
        dict(pnl=5.0, qty=-1.0, entry_price=100.0, fees=1.0, funding=0.0, entry_bar=4, exit_bar=4),
    ])


def test_drawdown_hand_example():
    idx = pd.date_range("2024-01-01", periods=5, freq="1D", tz=UTC)
    eq = pd.Series([100.0, 120.0, 90.0, 130.0, 65.0], index=idx)
    dd = drawdown_series(eq)
    assert dd.tolist() == pytest.approx([0.0, 0.0, -0.25, 0.0, -0.5], abs=1e-15)
    assert trading_metrics(eq, NO_TRADES, 100.0)["max_drawdown"] == pytest.approx(-0.5, abs=1e-15)
    # the initial capital is the first peak: falling from 200 to 100 is a 50 % drawdown
    assert drawdown_series(eq, initial_capital=200.0).iloc[0] == pytest.approx(-0.5)
    assert trading_metrics(eq, NO_TRADES, 200.0)["max_drawdown"] == pytest.approx(-0.675)  # 65 / 200 - 1


def test_hand_curve_returns_and_ratios(hand_curve, hand_trades):
    m = trading_metrics(hand_curve, hand_trades, 100.0)
    assert list(m) == list(METRIC_NAMES)
    assert m["total_return"] == pytest.approx(0.3068, abs=1e-12)
    assert m["final_equity"] == 130.68
    years = 3.5 / 365  # 2024-01-01 12:00 -> 2024-01-05 00:00
    assert m["cagr"] == pytest.approx(1.3068 ** (1 / years) - 1, rel=1e-12)
    # day-end equities 110, 99, 108.9, 130.68 from 100 -> daily returns +10 %, -10 %, +10 %, +20 %
    r = [0.1, -0.1, 0.1, 0.2]
    # mean 0.075, sample sd = sqrt(0.0475 / 3); downside deviation = sqrt(0.01 / 4) = 0.05
    assert m["sharpe"] == pytest.approx(0.075 / math.sqrt(0.0475 / 3) * math.sqrt(365), rel=1e-9)
    assert m["sharpe"] == pytest.approx(statistics.mean(r) / statistics.stdev(r) * math.sqrt(365), rel=1e-9)
    assert m["sortino"] == pytest.approx(1.5 * math.sqrt(365), rel=1e-9)
    # peak 150 (intraday), trough 99 afterwards
    assert m["max_drawdown"] == pytest.approx(99 / 150 - 1, abs=1e-15)
    assert m["calmar"] == pytest.approx(m["cagr"] / 0.34, rel=1e-12)


def test_hand_trade_statistics(hand_curve, hand_trades):
    m = trading_metrics(hand_curve, hand_trades, 100.0)
    assert m["trade_count"] == 5
    assert m["win_rate"] == pytest.approx(0.6)            # 10, 20, 5 win
    assert m["profit_factor"] == pytest.approx(35 / 20)   # (10+20+5) / (5+15)
    assert m["avg_trade"] == pytest.approx(3.0)           # 15 / 5
    # returns on |qty| * entry_price: 10/100, -5/100, 20/200, -15/100, 5/100
    assert m["avg_trade_return"] == pytest.approx((0.1 - 0.05 + 0.1 - 0.15 + 0.05) / 5)
    assert m["fees_paid"] == pytest.approx(6.0)
    assert m["funding_paid"] == pytest.approx(0.4)
    # bars 0,1 (trades 1,2) and 3,4 (trades 3,4,5) are covered, bar 2 and 5 are not: 4 of 6
    assert m["exposure"] == pytest.approx(4 / 6)
    pos = np.array([0.0, 1.0, -1.0, 0.0, 0.0, 2.0])
    assert trading_metrics(hand_curve, hand_trades, 100.0, position=pos)["exposure"] == pytest.approx(0.5)


def test_per_bar_annualisation(hand_curve):
    m = trading_metrics(hand_curve, NO_TRADES, 100.0, periods_per_year=1000.0)
    v = [100.0, *hand_curve.tolist()]
    r = [b / a - 1 for a, b in zip(v[:-1], v[1:])]
    assert m["sharpe"] == pytest.approx(statistics.mean(r) / statistics.stdev(r) * math.sqrt(1000), rel=1e-9)
    dd = math.sqrt(sum(min(x, 0.0) ** 2 for x in r) / len(r))
    assert m["sortino"] == pytest.approx(statistics.mean(r) / dd * math.sqrt(1000), rel=1e-9)


def test_no_trades_and_edge_values(hand_curve):
    m = trading_metrics(hand_curve, NO_TRADES, 100.0)
    assert m["trade_count"] == 0 and m["fees_paid"] == 0 and m["funding_paid"] == 0 and m["exposure"] == 0
    for k in ("win_rate", "profit_factor", "avg_trade", "avg_trade_return"):
        assert math.isnan(m[k]), k
    assert trading_metrics(hand_curve, pd.DataFrame(), 100.0)["trade_count"] == 0  # column-less empty frame
    winners = _trades([dict(pnl=3.0, qty=1.0, entry_price=10.0, fees=0.0, funding=0.0, entry_bar=0, exit_bar=1)])
    assert trading_metrics(hand_curve, winners, 100.0)["profit_factor"] == math.inf
    # flat equity: no drawdown, no variance -> calmar and sharpe undefined
    idx = pd.date_range("2024-01-01", periods=4, freq="1D", tz=UTC)
    flat = trading_metrics(pd.Series(100.0, index=idx), NO_TRADES, 100.0)
    assert flat["max_drawdown"] == 0.0 and flat["total_return"] == 0.0 and flat["cagr"] == 0.0
    assert math.isnan(flat["sharpe"]) and math.isnan(flat["sortino"]) and math.isnan(flat["calmar"])
    # a single mark: no time span -> cagr undefined
    one = trading_metrics(pd.Series([110.0], index=idx[:1]), NO_TRADES, 100.0)
    assert one["total_return"] == pytest.approx(0.1) and math.isnan(one["cagr"])


def test_bad_input_is_rejected(hand_curve, hand_trades):
    with pytest.raises(ValueError, match="tz-aware"):
        trading_metrics(hand_curve.tz_localize(None), NO_TRADES, 100.0)
    with pytest.raises(ValueError, match="non-finite value at position 2"):
        trading_metrics(hand_curve.where(np.arange(6) != 2), NO_TRADES, 100.0)
    with pytest.raises(ValueError, match="empty"):
        trading_metrics(hand_curve.iloc[:0], NO_TRADES, 100.0)
    with pytest.raises(ValueError, match="strictly increasing"):
        trading_metrics(hand_curve.iloc[::-1], NO_TRADES, 100.0)
    with pytest.raises(ValueError, match="initial_capital"):
        trading_metrics(hand_curve, NO_TRADES, 0.0)
    with pytest.raises(ValueError, match=r"missing columns \['fees'\]"):
        trading_metrics(hand_curve, hand_trades.drop(columns="fees"), 100.0)
    with pytest.raises(ValueError, match="position"):
        trading_metrics(hand_curve, hand_trades, 100.0, position=np.zeros(5))
    bad = hand_trades.copy()
    bad.loc[0, "exit_bar"] = 6
    with pytest.raises(ValueError, match="exit_bar"):
        trading_metrics(hand_curve, bad, 100.0)
    with pytest.raises(TypeError, match="Series"):
        trading_metrics(hand_curve.to_numpy(), NO_TRADES, 100.0)


def test_buy_and_hold_on_real_data_matches_independent_computation(sol5m):
    close = sol5m["close"].to_numpy()
    marks = sol5m["timestamp"] + pd.Timedelta(minutes=5)  # equity marks bar closes
    capital = 1000.0
    eq = pd.Series(capital * close / sol5m["open"].iloc[0], index=pd.DatetimeIndex(marks))
    m = trading_metrics(eq, NO_TRADES, capital)
    assert m["total_return"] == pytest.approx(close[-1] / sol5m["open"].iloc[0] - 1, rel=1e-12)
    assert m["max_drawdown"] == pytest.approx(
        float((eq / np.maximum(eq.cummax(), capital) - 1).min()), rel=1e-12)
    # independent daily sampling: the marks at exactly 00:00 UTC are the day ends (first: 2025-04-08)
    day_end = eq[(eq.index.hour == 0) & (eq.index.minute == 0)]
    assert len(day_end) == 300 and day_end.index[-1] == pd.Timestamp("2026-02-01", tz=UTC)
    r = np.diff(np.concatenate(([capital], day_end.to_numpy()))) / np.concatenate(([capital], day_end.to_numpy()[:-1]))
    assert m["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(365), rel=1e-9)
    downside = math.sqrt(np.mean(np.minimum(r, 0) ** 2))
    assert m["sortino"] == pytest.approx(r.mean() / downside * math.sqrt(365), rel=1e-9)
    years = (eq.index[-1] - eq.index[0]).total_seconds() / (365 * 86400)
    assert m["cagr"] == pytest.approx((eq.iloc[-1] / capital) ** (1 / years) - 1, rel=1e-12)


def test_metrics_table_and_formatting(hand_curve, hand_trades):
    a = trading_metrics(hand_curve, hand_trades, 100.0)
    b = trading_metrics(hand_curve, NO_TRADES, 100.0)
    table = metrics_table({"model": a, "buy_and_hold": b})
    assert list(table.columns) == ["model", "buy_and_hold"]
    assert list(table.index) == list(METRIC_NAMES)
    assert table.loc["win_rate", "model"] == pytest.approx(0.6)
    text = format_metrics_table(table)
    assert text.loc["total_return", "model"] == "30.68%"
    assert text.loc["max_drawdown", "model"] == "-34.00%"
    assert text.loc["final_equity", "model"] == "130.68 USDT"
    assert text.loc["avg_trade", "model"] == "3.00 USDT"
    assert text.loc["profit_factor", "model"] == "1.75"
    assert text.loc["trade_count", "model"] == "5"
    assert text.loc["win_rate", "buy_and_hold"] == "n/a"
    big = format_metrics_table(pd.DataFrame({"x": [1234567.891, math.inf, -0.2345]},
                                            index=["final_equity", "profit_factor", "cagr"]))
    assert big["x"].tolist() == ["1,234,567.89 USDT", "inf", "-23.45%"]
    with pytest.raises(ValueError, match="empty"):
        metrics_table({})
