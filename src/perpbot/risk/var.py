"""Portfolio value-at-risk, expected shortfall and a stress report by historical simulation.

Method (historical simulation, P. Jorion, *Value at Risk*, 3rd ed., 2007): every UTC day of the
data is one scenario. The daily return of
a symbol is close-to-close, ``r_d = close_d / close_{d-1} - 1``, where ``close_d`` is the close of
the last candle opening on UTC day ``d`` (the candle that closes at the next 00:00). The scenario
PnL of today's positions is, in USDT,

    PnL_d = sum over positions of side x qty x mark x r_d(symbol)

(``side`` +1 long / -1 short, ``qty`` in base asset, ``mark`` the current price in USDT), i.e.
today's positions re-marked by each historical day's move, linearly (no liquidation cap, no
fees or funding). Horizon: one day, no scaling.

* ``VaR_a = -quantile(PnL, 1 - a)`` with numpy's default quantile (``method="linear"``,
  Hyndman & Fan type 7). **Losses are positive**: a VaR of 12.5 means "a loss of 12.5 USDT or more
  on one day in (1 - a) of the days"; a negative VaR would mean that quantile is still a gain.
* ``ES_a = -mean(PnL_d for PnL_d <= quantile(PnL, 1 - a))``: the mean loss of the scenarios at or
  beyond the VaR (expected shortfall / CVaR), positive for a loss as VaR; ``ES_a >= VaR_a``.
* **Stress**: the ``worst`` days of lowest portfolio PnL (for one position: the days of the largest
  move against its direction), each with its date, return per symbol, PnL today and the
  liquidation check: the day's move reaches the liquidation price when
  ``side x r_d <= side x (liq - mark) / mark`` (close-to-close moves; a day's intraday extreme can go
  further).

Days: a day whose previous calendar day has no close gives no return (a gap in the data), and the
last day of the data counts only once it is complete (its last candle closes at the next 00:00).
A flat account (no positions, or all of zero quantity) has VaR 0, ES 0 and no stress days, and
needs no data. Several symbols are aligned on the days they all have.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

#: Confidence levels reported by default (fractions).
LEVELS = (0.95, 0.99)
#: Worst days of the stress report by default.
WORST_DAYS = 5
#: Fewest daily returns a VaR is computed from (below this the 99 % tail is not a tail).
MIN_DAYS = 30
METHOD = "historical simulation, 1-day horizon, close-to-close UTC daily returns, numpy linear quantile"
DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class OpenPosition:
    """One open position: ``symbol``, ``side`` (+1 long / -1 short), ``qty`` (base asset, >= 0),
    ``mark`` (current price, USDT, > 0), ``liquidation_price`` (USDT, None when unknown)."""

    symbol: str
    side: int
    qty: float
    mark: float
    liquidation_price: float | None = None

    def __post_init__(self) -> None:
        if self.side not in (1, -1):
            raise ValueError(f"{self.symbol}: side must be +1 (long) or -1 (short), got {self.side!r}")
        if not np.isfinite(self.qty) or self.qty < 0:
            raise ValueError(f"{self.symbol}: qty must be a finite quantity >= 0, got {self.qty!r}")
        if not np.isfinite(self.mark) or self.mark <= 0:
            raise ValueError(f"{self.symbol}: mark price must be finite and > 0, got {self.mark!r}")

    @property
    def notional(self) -> float:
        """``qty x mark`` (USDT, >= 0)."""
        return float(self.qty * self.mark)

    @property
    def liquidation_move(self) -> float | None:
        """``(liquidation_price - mark) / mark`` (fraction; < 0 for a long, > 0 for a short), or None."""
        liq = self.liquidation_price
        if liq is None or not np.isfinite(liq) or liq <= 0:
            return None
        return float((liq - self.mark) / self.mark)


def position_from(symbol: str, position: Mapping[str, Any] | None, mark: float | None) -> list[OpenPosition]:
    """``[OpenPosition]`` of a position dict as the ledger, the venue or the bot's status give it
    (``side`` "long" / "short" / "flat" or +1 / -1 / 0, ``qty``, ``liquidation_price``, optional
    ``mark_price``); ``mark`` (USDT) overrides ``mark_price`` when given. ``[]`` when flat.
    Raises ValueError when open without a usable mark price."""
    if not position:
        return []
    side = position.get("side")
    if isinstance(side, str):
        if side not in ("long", "short", "flat"):
            raise ValueError(f"{symbol}: unknown position side {side!r}")
        side = {"long": 1, "short": -1, "flat": 0}[side]
    qty = abs(float(position.get("qty") or 0.0))
    if not side or qty == 0:
        return []
    price = mark if mark is not None else position.get("mark_price")
    if price is None or not np.isfinite(float(price)):
        raise ValueError(f"{symbol}: no mark price for the open position")
    liq = position.get("liquidation_price")
    return [OpenPosition(symbol, int(np.sign(side)), qty, float(price),
                         None if liq is None or pd.isna(liq) else float(liq))]


def daily_closes(candles: pd.DataFrame) -> pd.Series:
    """Close of each complete UTC day of ``candles`` (columns ``timestamp``: candle open time, tz-aware
    UTC; ``close``: USDT), indexed by the day (00:00 UTC, tz-aware). The last day is dropped
    unless its last candle closes at the next 00:00 (the candle step is the most common timestamp
    difference). Raises ValueError without those columns or with unsorted / duplicate timestamps."""
    if not {"timestamp", "close"} <= set(candles.columns):
        raise ValueError("candles need the columns 'timestamp' and 'close'")
    ts = pd.DatetimeIndex(candles["timestamp"])
    if ts.tz is None:
        raise ValueError("candle timestamps must be tz-aware UTC")
    ts = ts.tz_convert("UTC")
    if len(ts) > 1 and not (ts[1:] > ts[:-1]).all():
        raise ValueError("candle timestamps must be strictly increasing")
    close = pd.Series(candles["close"].to_numpy(np.float64), index=ts)
    if not len(close):
        return close
    days = close.groupby(ts.floor("D")).last()
    step = pd.Series(ts[1:] - ts[:-1]).mode().iloc[0] if len(ts) > 1 else DAY
    if ts[-1] + step < days.index[-1] + DAY:
        days = days.iloc[:-1]
    return days


def daily_returns(candles: pd.DataFrame) -> pd.Series:
    """Close-to-close return of each complete UTC day whose previous calendar day has a close
    (fractions, indexed by the day; :func:`daily_closes`). Raises ValueError as
    :func:`daily_closes` and on non-positive or non-finite closes."""
    closes = daily_closes(candles)
    values = closes.to_numpy(np.float64)
    if not np.isfinite(values).all() or (values <= 0).any():
        raise ValueError("daily closes must be finite and > 0")
    ret = closes / closes.shift(1) - 1.0
    consecutive = (closes.index.to_series().diff() == DAY).to_numpy()
    return ret[consecutive].rename("ret")


def scenario_pnl(positions: Sequence[OpenPosition], returns: Mapping[str, pd.Series]) -> pd.DataFrame:
    """Per-day PnL of ``positions`` re-marked by each day's returns: DataFrame indexed by day with
    one column of returns per symbol (fractions, ``ret:<symbol>``) and ``pnl`` (USDT, sum over the
    positions of side x qty x mark x r). Days are those every symbol has. Raises ValueError when a
    position's symbol has no returns."""
    symbols = list(dict.fromkeys(p.symbol for p in positions))
    missing = [s for s in symbols if s not in returns]
    if missing:
        raise ValueError(f"no daily returns for {', '.join(missing)}")
    rets = pd.concat({s: pd.Series(returns[s], dtype=np.float64) for s in symbols}, axis=1, join="inner").dropna()
    pnl = np.zeros(len(rets))
    for p in positions:
        pnl += p.side * p.qty * p.mark * rets[p.symbol].to_numpy(np.float64)
    out = rets.rename(columns=lambda s: f"ret:{s}")
    out["pnl"] = pnl
    return out


def var_es(pnl: np.ndarray, level: float) -> tuple[float, float]:
    """(VaR, ES) at confidence ``level`` (0 < level < 1) of scenario PnLs ``pnl`` (USDT), losses
    positive: ``-quantile(pnl, 1 - level)`` (numpy linear) and minus the mean of the PnLs at or below
    that quantile. Raises ValueError on an empty sample or a level outside (0, 1)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be in (0, 1), got {level!r}")
    x = np.asarray(pnl, dtype=np.float64)
    if not len(x):
        raise ValueError("no scenarios")
    q = float(np.quantile(x, 1.0 - level))
    return -q, -float(x[x <= q].mean())


def risk_report(positions: Sequence[OpenPosition], returns: Mapping[str, pd.Series], *,
                levels: Sequence[float] = LEVELS, worst: int = WORST_DAYS, min_days: int = MIN_DAYS) -> dict[str, Any]:
    """VaR, ES and the stress report of ``positions`` over the daily ``returns`` of their symbols
    ({symbol: Series of fractions indexed by UTC day, as :func:`daily_returns`}).

    Returns a dict (JSON-safe): ``method``; ``horizon_days`` 1; ``n_days`` (scenarios used),
    ``first_day`` / ``last_day`` ("YYYY-MM-DD" or None); ``exposure`` (gross notional, USDT);
    ``levels``: ``[{"level": 0.95, "var": USDT, "es": USDT}, ...]`` (losses positive);
    ``stress``: the ``worst`` lowest-PnL days, worst first (ties: earlier day first), each
    ``{"day", "pnl" (USDT), "liquidated" (any position's liquidation reached; None when no
    position has a liquidation price), "legs": [{"symbol", "side", "ret" (fraction), "pnl" (USDT),
    "liquidation_move" (fraction or None), "liquidated" (bool or None)}]}``.
    Flat (no position of non-zero qty): VaR and ES 0, ``stress`` empty, no data needed.
    Raises ValueError with fewer than ``min_days`` common daily returns, or as :func:`scenario_pnl`
    / :func:`var_es`."""
    live = [p for p in positions if p.qty > 0]
    out: dict[str, Any] = {"method": METHOD, "horizon_days": 1, "n_days": 0, "first_day": None, "last_day": None,
                           "exposure": float(sum(p.notional for p in live)), "levels": [], "stress": []}
    if not live:
        for level in levels:
            var_es(np.zeros(1), level)  # the same errors on a bad level
        out["levels"] = [{"level": float(a), "var": 0.0, "es": 0.0} for a in levels]
        return out
    frame = scenario_pnl(live, returns)
    if len(frame) < min_days:
        raise ValueError(f"value-at-risk needs at least {min_days} daily returns, the data has {len(frame)} "
                         f"(complete UTC days with a close the day before)")
    pnl = frame["pnl"].to_numpy(np.float64)
    out.update(n_days=int(len(frame)), first_day=frame.index[0].strftime("%Y-%m-%d"),
               last_day=frame.index[-1].strftime("%Y-%m-%d"))
    out["levels"] = [dict(zip(("level", "var", "es"), (float(a), *var_es(pnl, a)))) for a in levels]
    order = np.argsort(pnl, kind="stable")[: max(0, int(worst))]
    for i in order:
        legs = []
        for p in live:
            r = float(frame[f"ret:{p.symbol}"].iloc[i])
            move = p.liquidation_move
            legs.append({"symbol": p.symbol, "side": p.side, "ret": r, "pnl": p.side * p.qty * p.mark * r,
                         "liquidation_move": move,
                         "liquidated": None if move is None else bool(p.side * r <= p.side * move)})
        flags = [leg["liquidated"] for leg in legs if leg["liquidated"] is not None]
        out["stress"].append({"day": frame.index[i].strftime("%Y-%m-%d"), "pnl": float(pnl[i]),
                              "liquidated": any(flags) if flags else None, "legs": legs})
    return out
