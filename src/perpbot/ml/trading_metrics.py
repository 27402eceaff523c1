"""Trading performance metrics of a backtest (or paper run): returns, risk ratios, trade stats.

Conventions (every report uses them):

- Fractions, not percent: ``total_return = 0.12`` means +12 %.
- ``max_drawdown`` is reported as a NEGATIVE fraction (``-0.23`` = the equity fell 23 %
  below its running peak); 0.0 when the equity never fell.
- Sharpe and Sortino ratios come from DAILY returns: the equity is sampled at each UTC
  day end (its last mark at or before 00:00 UTC of the next day), the initial capital is
  the value before the first day, returns are simple (``e[d] / e[d-1] - 1``), the risk-free
  rate is 0 and the annualisation factor is ``sqrt(365)`` (crypto trades every day).
  Sharpe = ``mean(r) / std(r, ddof=1) * sqrt(365)``; Sortino = ``mean(r) / DD * sqrt(365)``
  with downside deviation ``DD = sqrt(mean(min(r, 0)^2))`` over all days (Sortino &
  Price, 1994). Passing ``periods_per_year`` instead uses per-bar returns annualised by
  ``sqrt(periods_per_year)``.
- CAGR uses a 365-day year and the time from the first to the last equity timestamp:
  ``(final_equity / initial_capital) ** (1 / years) - 1``. Calmar = ``cagr / |max_drawdown|``.
- Amounts in USDT. Undefined values (no trades, zero variance...) are NaN, never an error.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = [
    "METRIC_NAMES",
    "daily_returns",
    "drawdown_series",
    "format_metrics_table",
    "metrics_table",
    "trading_metrics",
]

#: Metric keys in the order reports show them.
METRIC_NAMES = (
    "total_return", "cagr", "sharpe", "sortino", "calmar", "max_drawdown",
    "win_rate", "profit_factor", "avg_trade", "avg_trade_return", "exposure",
    "trade_count", "fees_paid", "funding_paid", "final_equity",
)
_PERCENT = {"total_return", "cagr", "max_drawdown", "win_rate", "avg_trade_return", "exposure"}
_USDT = {"avg_trade", "fees_paid", "funding_paid", "final_equity"}
_COUNT = {"trade_count"}
_TRADE_COLS_USED = ("pnl", "fees", "funding", "qty", "entry_price", "entry_bar", "exit_bar")
_YEAR_S = 365.0 * 86400.0


def _check_equity(equity: pd.Series) -> np.ndarray:
    if not isinstance(equity, pd.Series):
        raise TypeError(f"equity: expected a pandas Series, got {type(equity).__name__}")
    if len(equity) == 0:
        raise ValueError("equity: empty series")
    idx = equity.index
    if not isinstance(idx, pd.DatetimeIndex) or idx.tz is None:
        raise ValueError("equity: index must be a tz-aware (UTC) DatetimeIndex")
    if not idx.is_monotonic_increasing or idx.has_duplicates:
        raise ValueError("equity: index must be strictly increasing timestamps")
    values = equity.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(f"equity: non-finite value at position {int(np.argmax(bad))}")
    return values


def drawdown_series(equity: pd.Series, *, initial_capital: float | None = None) -> pd.Series:
    """Drawdown at each timestamp: ``equity / running_peak - 1`` (a fraction <= 0).

    ``equity`` : USDT, tz-aware UTC DatetimeIndex. When ``initial_capital`` is given it
    is the first peak (a fall below the starting capital counts as drawdown).
    Returns a float64 Series on the same index. Raises ``ValueError`` / ``TypeError``
    on an empty, non-finite or badly indexed series, or a non-positive peak.
    """
    values = _check_equity(equity)
    peak = np.maximum.accumulate(values)
    if initial_capital is not None:
        peak = np.maximum(peak, float(initial_capital))
    if (peak <= 0).any():
        raise ValueError("equity: running peak must be > 0 to compute drawdown")
    return pd.Series(values / peak - 1.0, index=equity.index, name="drawdown")


def _sharpe_sortino(returns: np.ndarray, periods_per_year: float) -> tuple[float, float]:
    if returns.size < 2:
        return math.nan, math.nan
    mean = float(returns.mean())
    scale = math.sqrt(periods_per_year)
    std = float(returns.std(ddof=1))
    sharpe = mean / std * scale if std > 0 else math.nan
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    if downside > 0:
        sortino = mean / downside * scale
    else:
        sortino = math.inf if mean > 0 else math.nan
    return sharpe, sortino


def daily_returns(equity: pd.Series, initial_capital: float) -> np.ndarray:
    """Simple daily returns (fractions) of ``equity`` as the Sharpe/Sortino ratios use them.

    The equity (USDT, tz-aware UTC index of bar CLOSES) is sampled at each UTC day end (its
    last mark at or before 00:00 UTC of the next day; days without a mark carry the equity
    over), ``initial_capital`` is the value before the first day, and the returns are
    ``e[d] / e[d-1] - 1``: a float64 array with one value per day. Raises ``ValueError`` /
    ``TypeError`` on an empty, non-finite or badly indexed series.
    """
    _check_equity(equity)
    # Marks are bar closes: a mark at exactly 00:00 closes the previous UTC day, hence closed="right".
    daily = equity.resample("1D", closed="right", label="right").last()
    # pandas may add empty bins at either end: keep first..last filled bin, carry equity over gap days
    daily = daily.loc[daily.first_valid_index():daily.last_valid_index()].ffill()
    values = np.concatenate(([initial_capital], daily.to_numpy(dtype=np.float64)))
    return values[1:] / values[:-1] - 1.0


def _exposure(n: int, trades: pd.DataFrame, position: np.ndarray | None) -> float:
    if position is not None:
        pos = np.asarray(position)
        if pos.ndim != 1 or pos.size != n:
            raise ValueError(f"position: expected a 1-D array of length {n} (len(equity)), got shape {pos.shape}")
        return float(np.count_nonzero(pos) / n)
    if len(trades) == 0:
        return 0.0
    entry = trades["entry_bar"].to_numpy(dtype=np.int64)
    exit_ = trades["exit_bar"].to_numpy(dtype=np.int64)
    if (entry < 0).any() or (exit_ < entry).any() or (exit_ >= n).any():
        raise ValueError(f"trades: entry_bar/exit_bar must satisfy 0 <= entry_bar <= exit_bar < {n}")
    marks = np.zeros(n + 1, dtype=np.int64)
    np.add.at(marks, entry, 1)
    np.add.at(marks, exit_ + 1, -1)
    return float(np.count_nonzero(np.cumsum(marks[:-1])) / n)


def trading_metrics(
    equity: pd.Series,
    trades: pd.DataFrame,
    initial_capital: float,
    *,
    position: np.ndarray | None = None,
    periods_per_year: float | None = None,
) -> dict[str, float]:
    """Performance metrics of one run (see the module docstring for the definitions).

    Parameters
    ----------
    equity : float Series of account equity in USDT (cash + unrealised PnL), indexed by
        tz-aware UTC timestamps marking bar CLOSES, strictly increasing (a series indexed
        by candle OPEN times should be shifted by one timeframe first, else day ends and
        the CAGR span are off by one bar).
    trades : DataFrame with the ``TRADE_COLUMNS`` of ``perpbot.types`` (at least pnl,
        fees, funding, qty, entry_price, entry_bar, exit_bar); ``pnl`` net USDT,
        ``funding`` > 0 = paid. May be empty (then trade metrics are NaN / 0).
    initial_capital : USDT at the start, > 0.
    position : optional signed position size (base-asset qty) per bar, length
        ``len(equity)``; exposure = fraction of bars where it is non-zero. Without it,
        exposure = fraction of bars covered by some trade's ``entry_bar..exit_bar``
        (both inclusive: a bar in which a position was open at some moment).
    periods_per_year : when given, Sharpe/Sortino use per-bar returns annualised by
        ``sqrt(periods_per_year)`` (e.g. 105120 for 5m bars) instead of daily returns.

    Returns
    -------
    dict with float values for the keys in ``METRIC_NAMES``: total_return, cagr,
    sharpe, sortino, calmar, max_drawdown (<= 0), win_rate (share of trades with
    pnl > 0), profit_factor (sum of positive pnl / |sum of negative pnl|; inf with no
    losing trade), avg_trade (mean net pnl, USDT), avg_trade_return (mean of
    ``pnl / (qty * entry_price)``: net return on the entry notional), exposure,
    trade_count, fees_paid, funding_paid (USDT sums over trades), final_equity.

    Raises
    ------
    ValueError / TypeError : bad equity (empty, NaN, not tz-aware/increasing), missing
        trade columns, bar indices out of range, ``initial_capital <= 0``, bad position.
    """
    values = _check_equity(equity)
    if not (math.isfinite(initial_capital) and initial_capital > 0):
        raise ValueError(f"initial_capital: must be a finite number > 0, got {initial_capital}")
    if not isinstance(trades, pd.DataFrame):
        raise TypeError(f"trades: expected a pandas DataFrame, got {type(trades).__name__}")
    if len(trades) > 0:
        missing = [c for c in _TRADE_COLS_USED if c not in trades.columns]
        if missing:
            raise ValueError(f"trades: missing columns {missing}")
    n = values.size
    final = float(values[-1])
    total_return = final / initial_capital - 1.0

    years = (equity.index[-1] - equity.index[0]).total_seconds() / _YEAR_S
    if years <= 0:
        cagr = math.nan
    elif final <= 0:
        cagr = -1.0
    else:
        cagr = (final / initial_capital) ** (1.0 / years) - 1.0

    peak = np.maximum(np.maximum.accumulate(values), initial_capital)
    max_dd = float(np.min(values / peak - 1.0))
    max_dd = min(max_dd, 0.0)
    calmar = cagr / abs(max_dd) if max_dd < 0 else math.nan

    if periods_per_year is None:
        rets = daily_returns(equity, initial_capital)
        sharpe, sortino = _sharpe_sortino(rets, 365.0)
    else:
        if not periods_per_year > 0:
            raise ValueError(f"periods_per_year: must be > 0, got {periods_per_year}")
        bar_values = np.concatenate(([initial_capital], values))
        sharpe, sortino = _sharpe_sortino(bar_values[1:] / bar_values[:-1] - 1.0, float(periods_per_year))

    count = len(trades)
    if count:
        pnl = trades["pnl"].to_numpy(dtype=np.float64)
        wins, losses = pnl[pnl > 0].sum(), -pnl[pnl < 0].sum()
        win_rate = float(np.mean(pnl > 0))
        profit_factor = float(wins / losses) if losses > 0 else (math.inf if wins > 0 else math.nan)
        avg_trade = float(pnl.mean())
        notional = trades["qty"].to_numpy(dtype=np.float64) * trades["entry_price"].to_numpy(dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            trade_ret = np.where(np.abs(notional) > 0, pnl / np.abs(notional), np.nan)
        avg_trade_return = float(np.nanmean(trade_ret)) if np.isfinite(trade_ret).any() else math.nan
        fees = float(trades["fees"].to_numpy(dtype=np.float64).sum())
        funding = float(trades["funding"].to_numpy(dtype=np.float64).sum())
    else:
        win_rate = profit_factor = avg_trade = avg_trade_return = math.nan
        fees = funding = 0.0

    return {
        "total_return": float(total_return),
        "cagr": float(cagr),
        "sharpe": float(sharpe),
        "sortino": float(sortino),
        "calmar": float(calmar),
        "max_drawdown": max_dd,
        "win_rate": win_rate,
        "profit_factor": profit_factor,
        "avg_trade": avg_trade,
        "avg_trade_return": avg_trade_return,
        "exposure": _exposure(n, trades, position),
        "trade_count": float(count),
        "fees_paid": fees,
        "funding_paid": funding,
        "final_equity": final,
    }


def metrics_table(results: dict[str, dict]) -> pd.DataFrame:
    """Side-by-side metrics: rows = metric (``METRIC_NAMES`` order first), columns = strategy.

    ``results`` maps strategy name -> the dict returned by ``trading_metrics`` (column
    order follows the dict). Raises ``ValueError`` when ``results`` is empty.
    """
    if not results:
        raise ValueError("metrics_table: results is empty")
    table = pd.DataFrame({name: pd.Series(m, dtype="float64") for name, m in results.items()})
    extra = [k for k in table.index if k not in METRIC_NAMES]
    order = [k for k in METRIC_NAMES if k in table.index] + extra
    return table.loc[order]


def _fmt(metric: str, value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    v = float(value)
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if metric in _PERCENT:
        return f"{v * 100:.2f}%"
    if metric in _USDT:
        return f"{v:,.2f} USDT"
    if metric in _COUNT:
        return f"{int(round(v)):d}"
    return f"{v:.2f}"


def format_metrics_table(table: pd.DataFrame) -> pd.DataFrame:
    """Human-friendly strings for a ``metrics_table``: fractions as percent with 2 dp
    (``-0.2345`` -> ``"-23.45%"``), USDT amounts as ``"1,234.56 USDT"``, trade_count as
    an integer, ratios with 2 dp; NaN -> ``"n/a"``, infinity -> ``"inf"``."""
    out = pd.DataFrame(index=table.index, columns=table.columns, dtype=object)
    for metric in table.index:
        for col in table.columns:
            out.loc[metric, col] = _fmt(str(metric), table.loc[metric, col])
    return out
