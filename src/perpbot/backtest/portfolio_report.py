"""The HTML report of a portfolio backtest (``perpbot backtest --symbols A,B,... --report FILE``).

One page in the single-symbol report's layout (:func:`perpbot.backtest.report.write_html_report`):

* one column per symbol, then ``portfolio``: the account (equity and drawdown of the shared balance,
  every trade, the account's halts and every symbol's risk events, its metrics);
* a symbol's column is its **contribution**: the starting capital plus the cumulative net PnL (fees and
  funding included) of that symbol's closed trades, stepped at each exit, so the symbols' columns add
  up to the account at every flat moment (:func:`contribution_equity`); its metrics are computed on that
  curve and its trades;
* the price chart shows the first symbol's candles with its trades (each symbol trades on its own prices).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd


def contribution_equity(index: pd.DatetimeIndex, trades: pd.DataFrame, capital: float) -> pd.Series:
    """``capital`` + the cumulative net PnL (USDT) of ``trades`` closed by each time of ``index`` (UTC bar
    closes; a trade counts from its ``exit_time``), float64 of ``len(index)``."""
    if trades.empty:
        return pd.Series(float(capital), index=index, dtype="float64")
    pnl = trades.groupby("exit_time")["pnl"].sum().sort_index().cumsum()
    steps = pnl.reindex(index.union(pnl.index)).ffill().reindex(index).fillna(0.0)
    return (float(capital) + steps).astype("float64")


def write_portfolio_report(path: str | os.PathLike, settings: dict, markets: dict, run, strategy: str) -> Path:
    """Write the report of ``run`` (:class:`perpbot.app.portfolio.PortfolioRun`) to ``path``.

    ``settings`` / ``markets``: per symbol, in the run's order (the first one's candles are drawn).
    Returns the resolved path; raises ValueError on bad inputs (nothing written), as
    :func:`~perpbot.backtest.report.write_html_report`."""
    from perpbot.backtest.report import write_html_report
    from perpbot.backtest.report_page import data_source
    from perpbot.ml.trading_metrics import metrics_table, trading_metrics

    res = run.result
    symbols = list(markets)
    first = symbols[0]
    results: dict[str, dict] = {}
    metrics: dict[str, dict] = {}
    for sym in symbols:
        trades = res.per_symbol[sym].trades
        equity = contribution_equity(res.equity.index, trades, res.capital)
        results[sym] = {"equity": equity, "trades": trades, "risk_events": res.per_symbol[sym].risk_events,
                        "initial_capital": res.capital}
        metrics[sym] = trading_metrics(equity, trades, res.capital)
    results["portfolio"] = {"equity": res.equity, "trades": res.trades, "risk_events": res.risk_events,
                            "initial_capital": res.capital}
    metrics["portfolio"] = run.metrics
    m0, s0 = markets[first], settings[first]
    source = data_source(m0.source, m0.timeframe, s0.exchange)
    title = f"perpbot portfolio backtest — {', '.join(symbols)} {m0.timeframe} ({strategy}, one account)"
    b = res.breakdown
    notes = [f"{sym}: {int(b.loc[sym, 'trades'])} trades, net {b.loc[sym, 'pnl']:,.2f} USDT "
             f"(fees {b.loc[sym, 'fees']:,.2f}, funding {b.loc[sym, 'funding']:,.2f})" for sym in symbols]
    counts = res.risk_events["event"].astype(str).value_counts()
    if len(counts):
        notes.append("risk events: " + ", ".join(f"{k} {int(v)}" for k, v in counts.items()))
    notes.append(f"A symbol's column is its contribution to the account (capital + its closed trades' net PnL); "
                 f"the price chart shows {first}.")
    return write_html_report(path, candles=m0.candles, results=results, metrics=metrics_table(metrics),
                             title=title, notes=notes, source=source)
