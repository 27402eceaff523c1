"""Optional QuantStats tearsheet of a backtest's equity curve (``pip install 'perpbot[tearsheet]'``).

QuantStats (https://github.com/ranaroussi/quantstats) draws its standard HTML tearsheet —
cumulative returns, drawdowns, monthly heat map, rolling ratios, ~60 metrics — from a series of
periodic returns. Here the returns are the strategy's DAILY returns exactly as perpbot's metrics
define them (:func:`perpbot.ml.trading_metrics.daily_returns`: equity at each UTC day end, the
initial capital before the first day), annualised with 365 periods per year (crypto trades every
day), risk-free rate 0; the benchmark (default buy-and-hold) is treated the same way. No ticker
is ever downloaded: the benchmark is a returns series, never a symbol; the page's remote favicon
link is removed, so the file references nothing online (its charts are inline SVG).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from perpbot.ml.trading_metrics import daily_returns

__all__ = ["daily_return_series", "tearsheet_for_runs", "write_tearsheet"]

_EXTERNAL_ICON = re.compile(r'<link rel="shortcut icon" href="https?://[^"]*"[^>]*>\s*')


def daily_return_series(equity: pd.Series, initial_capital: float) -> pd.Series:
    """:func:`perpbot.ml.trading_metrics.daily_returns` (fractions) indexed by the UTC day they
    cover (tz-naive midnight dates, as QuantStats expects). Raises like ``daily_returns``."""
    values = daily_returns(equity, initial_capital)
    ends = equity.resample("1D", closed="right", label="right").last()
    ends = ends.loc[ends.first_valid_index():ends.last_valid_index()]
    days = (pd.DatetimeIndex(ends.index).tz_convert("UTC").tz_localize(None) - pd.Timedelta(days=1))
    if len(days) != len(values):  # cannot happen: daily_returns samples the same day ends
        raise ValueError("equity: day ends and daily returns disagree")
    return pd.Series(values, index=days, name="returns")


def write_tearsheet(path: str | os.PathLike, equity: pd.Series, *, initial_capital: float,
                    benchmark: pd.Series | None = None, benchmark_capital: float | None = None,
                    title: str = "perpbot strategy") -> Path:
    """Write the QuantStats HTML tearsheet of ``equity`` to ``path`` (atomic; parent dirs created).

    Args:
        equity: account equity in USDT, tz-aware UTC index of bar CLOSES (``BacktestResult.equity``).
        initial_capital: USDT before the first bar (> 0).
        benchmark: optional benchmark equity on the same kind of index (e.g. buy-and-hold's),
            with ``benchmark_capital`` (default ``initial_capital``).
        title: the tearsheet's title.

    Returns the resolved path. Raises ``RuntimeError`` (one line) when QuantStats is not installed,
    ``ValueError`` on bad equity (nothing is written).
    """
    try:
        import quantstats as qs
    except ImportError:
        raise RuntimeError("the QuantStats tearsheet needs the optional extra: pip install 'perpbot[tearsheet]'") \
            from None
    returns = daily_return_series(equity, initial_capital)
    bench = None
    if benchmark is not None:
        bench = daily_return_series(benchmark, benchmark_capital or initial_capital).rename("benchmark")
    if len(returns) < 2 or not np.isfinite(returns.to_numpy()).all():
        raise ValueError("equity: need at least two days of finite returns for a tearsheet")
    target = Path(path).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    quiet = logging.getLogger("matplotlib.font_manager")
    level = quiet.level
    try:
        quiet.setLevel(logging.ERROR)  # "findfont: Font family 'Arial' not found" on machines without Arial
        # match_dates=False: both series cover the same UTC days, as perpbot's metrics count them
        qs.reports.html(returns, benchmark=bench, rf=0.0, title=title, output=tmp, periods_per_year=365,
                        compounded=True, match_dates=False)
        page = Path(tmp).read_text(encoding="utf-8")
        Path(tmp).write_text(_EXTERNAL_ICON.sub("", page), encoding="utf-8")  # offline: no remote favicon
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        quiet.setLevel(level)
    return target


def tearsheet_for_runs(path: str | os.PathLike, runs: dict, initial_capital: float, *, strategy: str | None = None,
                       benchmark: str | None = "buy-and-hold") -> Path:
    """The tearsheet of one run of :func:`perpbot.backtest.runner.run_strategies` (default: the first)
    against another (default buy-and-hold, when present). Raises ``ValueError`` for an unknown
    strategy name, ``RuntimeError`` without QuantStats."""
    name = strategy or next(iter(runs), None)
    if name not in runs:
        raise ValueError(f"strategy {name!r} is not among the runs ({', '.join(runs)})")
    bench = runs.get(benchmark) if benchmark and benchmark != name else None
    return write_tearsheet(path, runs[name].result.equity, initial_capital=initial_capital,
                           benchmark=bench.result.equity if bench is not None else None,
                           title=f"perpbot — {name}" + (f" vs {benchmark}" if bench is not None else ""))
