"""HTML report: built from real SOL 5m data with a few fake trades; offline, complete, atomic."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from perpbot.ml.trading_metrics import drawdown_series, format_metrics_table, metrics_table, trading_metrics
from perpbot.backtest.report import drawdown_figure, equity_figure, price_figure, write_html_report
from perpbot.types import TRADE_COLUMNS, ExitReason

CAPITAL = 1000.0


@pytest.fixture(scope="module")
def setup(sol5m):
    """Two strategies on the real data: buy-and-hold and three fake trades (2 long, 1 short)."""
    marks = pd.DatetimeIndex(sol5m["timestamp"] + pd.Timedelta(minutes=5))  # equity at bar closes
    opens = sol5m["open"].to_numpy()
    n = len(sol5m)
    spec = [  # side, entry bar, exit bar, exit reason (int code, label or enum: all accepted)
        (1, 100, 400, int(ExitReason.STOP_LOSS)),
        (-1, 5_000, 5_600, "take_profit"),
        (1, 60_000, n - 1, ExitReason.END_OF_DATA),
    ]
    rows = []
    for i, (side, e, x, reason) in enumerate(spec):
        gross = side * 2.0 * (opens[x] - opens[e])
        fees = 0.0006 * 2.0 * (opens[e] + opens[x])
        rows.append({c: np.nan for c in TRADE_COLUMNS} | dict(
            trade_id=i, side=side, qty=2.0, entry_time=sol5m["timestamp"].iloc[e], entry_price=opens[e],
            exit_time=sol5m["timestamp"].iloc[x], exit_price=opens[x], exit_reason=reason, gross_pnl=gross,
            fees=fees, funding=0.0, pnl=gross - fees, entry_bar=e, exit_bar=x))
    trades = pd.DataFrame(rows, columns=list(TRADE_COLUMNS))
    realised = np.bincount(trades["exit_bar"].to_numpy(int), weights=trades["pnl"].to_numpy(float), minlength=n)
    results = {
        "fake_trades": {"equity": pd.Series(CAPITAL + np.cumsum(realised), index=marks), "trades": trades},
        "buy_and_hold": {"equity": pd.Series(CAPITAL * sol5m["close"].to_numpy() / opens[0], index=marks),
                         "trades": trades.iloc[:0], "initial_capital": CAPITAL},
    }
    table = metrics_table({k: trading_metrics(v["equity"], v["trades"], CAPITAL) for k, v in results.items()})
    return sol5m, results, table


def test_report_is_complete_offline_and_atomic(setup, tmp_path):
    candles, results, table = setup
    target = tmp_path / "nested" / "dir" / "report.html"
    model = pd.DataFrame({"auc": [0.5312, 0.5077], "log_loss": [0.6901, 0.6925]}, index=["fold 1", "fold 2"])
    out = write_html_report(target, candles=candles, results=results, metrics=table, model_metrics=model,
                            title="SOL/USDT 5m backtest", notes=["model probabilities are <out-of-sample>"])
    assert out == target.resolve() and target.exists()
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]  # no temp file left behind
    text = target.read_text(encoding="utf-8")
    size_mb = len(text.encode()) / 1e6
    assert size_mb < 2, f"report is {size_mb:.1f} MB"

    assert "fake_trades" in text and "buy_and_hold" in text and "SOL/USDT 5m backtest" in text
    shown = format_metrics_table(table)
    for metric in ("total_return", "max_drawdown", "final_equity", "fees_paid"):
        for name in results:
            assert f"<td>{shown.loc[metric, name]}</td>" in text, (metric, name)
    assert "<td>0.5312</td>" in text and "<td>0.6925</td>" in text  # model metrics table
    assert "&lt;out-of-sample&gt;" in text  # notes are escaped

    # offline: plotly.js (its finance bundle) embedded exactly once, no external script at all (so no CDN)
    assert re.search(r"<script[^>]*\bsrc\s*=", text, re.IGNORECASE) is None
    assert text.count("* plotly.js (finance - minified) v") == 1
    assert text.count("Plotly.newPlot(") == 4  # equity, drawdown, rolling Sharpe, price (no model panel given)
    assert "Model charts: not available" in text and "Risk halts: not available" in text

    # trade markers of the primary (first) strategy, counts in the legend names
    for name in ("long entry (2)", "short entry (1)", "exit: stop_loss (1)", "exit: take_profit (1)",
                 "exit: end_of_data (1)"):
        assert f'"name":"{name}"' in text, name


def test_price_figure_resamples_candles_and_places_markers(setup):
    candles, results, _ = setup
    trades = results["fake_trades"]["trades"]
    fig = price_figure(candles, trades, strategy="fake_trades")
    candle, *markers = fig.data
    assert len(candle.x) == len(candles) // 12 == 7_200  # 5m -> 1h
    first = candles.iloc[:12]
    assert (candle.open[0], candle.high[0], candle.low[0], candle.close[0]) == (
        first["open"].iloc[0], first["high"].max(), first["low"].min(), first["close"].iloc[-1])
    assert candle.x[0] == "2025-04-07 00:00" and candle.x[-1] == "2026-01-31 23:00"
    by_name = {m.name: m for m in markers}
    assert sum(len(m.x) for m in markers) == 2 * len(trades)
    short = by_name["short entry (1)"]
    assert list(short.y) == [trades["entry_price"].iloc[1]]
    assert list(short.x) == [trades["entry_time"].iloc[1].strftime("%Y-%m-%d %H:%M")]
    assert list(by_name["exit: stop_loss (1)"].y) == [trades["exit_price"].iloc[0]]


def test_equity_and_drawdown_figures_downsample_without_losing_extremes(setup):
    _, results, _ = setup
    eq = results["buy_and_hold"]["equity"]
    efig = equity_figure(results)
    assert [t.name for t in efig.data] == ["fake_trades", "buy_and_hold"]
    assert len(efig.data[1].y) == 7_200 and efig.data[1].y[-1] == eq.iloc[-1]  # last value per hour
    # a regular hourly grid is sent as its first bar-close label and a step (ms), not 7,200 dates
    assert efig.data[1].x is None and efig.data[1].x0 == "2025-04-07 01:00" and efig.data[1].dx == 3_600_000
    dfig = drawdown_figure(results)
    worst = drawdown_series(eq, initial_capital=CAPITAL).min() * 100
    assert min(dfig.data[1].y) == pytest.approx(worst, rel=1e-12)  # per-hour minimum keeps the trough


def test_bad_input_writes_nothing(setup, tmp_path):
    candles, results, table = setup
    target = tmp_path / "r.html"
    with pytest.raises(ValueError, match="results"):
        write_html_report(target, candles=candles, results={}, metrics=table, title="x")
    with pytest.raises(ValueError, match="equity"):
        write_html_report(target, candles=candles, results={"a": {"trades": pd.DataFrame()}}, metrics=table,
                          title="x")
    with pytest.raises(ValueError, match=r"candles: missing columns \['close'\]"):
        write_html_report(target, candles=candles.drop(columns="close"), results=results, metrics=table,
                          title="x")
    assert list(tmp_path.iterdir()) == []


def test_data_source_names_the_venue_of_the_file_and_the_simulated_rules():
    from perpbot.backtest.report_page import data_source

    src = data_source("../shared/data/binance-usdm/SOLUSDT-5m.parquet", "5m", "bitget")
    assert (src["venue"], src["symbol"], src["timeframe"], src["rules"]) == ("Binance USDS-M", "SOLUSDT", "5m", "Bitget")
    assert src["text"] == ("data: Binance USDS-M SOLUSDT 5m (../shared/data/binance-usdm/SOLUSDT-5m.parquet) · "
                           "simulated venue rules: Bitget")
    # a file downloaded by `perpbot download` (data store layout <dir>/<ccxt id>/<market id>-<tf>.parquet)
    own = data_source("data/bitget/SOLUSDTUSDT-1h.parquet", None, "bitget")
    assert (own["venue"], own["symbol"], own["timeframe"]) == ("Bitget", "SOLUSDTUSDT", "1h")
    odd = data_source("/tmp/candles.parquet", "5m", "bitget")
    assert odd["venue"] is None and odd["text"] == "data: venue not recorded 5m (/tmp/candles.parquet) · " \
                                                   "simulated venue rules: Bitget"
    assert data_source(None, "5m", None)["text"] == "data: venue not recorded 5m (in-memory candles)"


def test_trade_windows_merge_and_long_trades_keep_only_their_ends():
    from perpbot.backtest.report_zoom import merge_ranges, price_decimals, trade_windows

    # short trades: [entry - pad, exit + pad]; overlapping windows merge; clipped to [0, n)
    assert trade_windows(1000, [5, 40], [10, 60], pad=24, max_span=288) == [(0, 85)]
    assert trade_windows(1000, [100, 500], [110, 505], pad=24, max_span=288) == [(76, 135), (476, 530)]
    # a trade longer than max_span: its entry and exit windows only
    assert trade_windows(1000, [100], [700], pad=10, max_span=288) == [(90, 111), (690, 711)]
    assert merge_ranges([(5, 10), (10, 12), (-3, 2), (990, 1200)], 1000) == [(0, 2), (5, 12), (990, 1000)]
    assert price_decimals([105.84, 106.2, 100.0]) == 2 and price_decimals([133.195, 1.0]) == 3
    assert price_decimals([0.1 + 0.2]) == 1  # 0.30000000000000004 is 0.3 to 1e-9
    assert price_decimals([1e9]) == 0 and price_decimals([3e9]) is None  # int32 range: 2**31 = 2.1e9


def test_monthly_returns_and_breakdowns_by_hand():
    from perpbot.backtest.report_tables import exit_reason_breakdown, monthly_returns, side_breakdown

    idx = pd.DatetimeIndex(["2025-01-31 12:00", "2025-02-01 00:00", "2025-02-01 00:05", "2025-03-15 00:00"], tz="UTC")
    eq = pd.Series([1100.0, 1210.0, 1000.0, 1500.0], index=idx)
    table = monthly_returns(eq, 1000.0)
    # the mark at 02-01 00:00 closes January: Jan = 1210/1000 - 1, Feb = 1000/1210 - 1, Mar = 1500/1000 - 1
    assert table.loc[2025, "Jan"] == pytest.approx(0.21) and table.loc[2025, "Feb"] == pytest.approx(1000 / 1210 - 1)
    assert table.loc[2025, "Mar"] == pytest.approx(0.5) and table.loc[2025, "year"] == pytest.approx(0.5)
    assert table.loc[2025, ["Apr", "Dec"]].isna().all()
    with pytest.raises(ValueError, match="tz-aware"):
        monthly_returns(pd.Series([1.0], index=pd.DatetimeIndex(["2025-01-01"])))
    trades = pd.DataFrame({"side": [1, 1, -1, -1], "qty": [1.0] * 4, "entry_price": [100.0] * 4,
                           "pnl": [3.0, -1.0, 2.0, -2.0], "fees": [0.1] * 4, "funding": [0.0, 0.05, 0.0, 0.0],
                           "exit_reason": ["take_profit", "stop_loss", "take_profit", "signal"]})
    sides = side_breakdown(trades)
    assert sides.loc["long", "trades"] == 2 and sides.loc["long", "net_pnl"] == 2.0
    assert sides.loc["long", "profit_factor"] == 3.0 and sides.loc["short", "win_rate"] == 0.5
    assert sides.loc["all", "fees"] == pytest.approx(0.4) and sides.loc["all", "avg_return"] == pytest.approx(0.005)
    reasons = exit_reason_breakdown(trades)
    assert list(reasons.index) == ["take_profit", "stop_loss", "signal"]
    assert reasons["trades"].tolist() == [2, 1, 1] and reasons.loc["take_profit", "net_pnl"] == 5.0


def test_zoom_payload_decodes_to_the_exact_candles_and_falls_back_to_floats(sol5m):
    from perpbot.backtest.report_zoom import zoom_payload

    c = sol5m.iloc[:2000].reset_index(drop=True)
    trades = pd.DataFrame({"entry_time": c["timestamp"].iloc[[100, 1500]].to_numpy(),
                           "exit_time": c["timestamp"].iloc[[110, 1990]].to_numpy()})
    z = zoom_payload(c, {"x": trades})
    # 24 candles before the entry and after the exit; the 490-candle trade (> 288) keeps only its two ends
    rows = [*range(76, 135), *range(1476, 1525), *range(1966, 2000)]
    ms = c["timestamp"].astype("datetime64[ms, UTC]").astype("int64").to_numpy()
    assert [s[:2] for s in z["segments"]] == [[int(ms[76]), 59], [int(ms[1476]), 49], [int(ms[1966]), 34]]
    o, k, got = None, 0, []
    for _, count, first in z["segments"]:
        for j in range(count):
            o = first if j == 0 else close + z["d_open"][k]  # noqa: F821 (set by the previous iteration)
            close = o + z["body"][k]
            got.append([o, max(o, close) + z["upper"][k], min(o, close) - z["lower"][k], close])
            k += 1
    want = c.loc[rows, ["open", "high", "low", "close"]].to_numpy()
    assert z["scale"] == 2 and (np.asarray(got) / 100.0 == want).all()  # the same doubles as the file's
    # prices on no decimal grid: plain floats instead of deltas
    odd = c.assign(**{k: c[k] / 3.0 for k in ("open", "high", "low", "close")})
    f = zoom_payload(odd, {"x": trades})
    assert f["scale"] is None and f["segments"][0][2] is None and "d_open" not in f
    assert f["open"] == (c.loc[rows, "open"] / 3.0).tolist()
