"""Pair selection on history only (point in time), and its evaluation with the backtester.

**Ranking at a date d** (:func:`history_ranking`): the factors of :mod:`perpbot.intel.pairs`
from data that ended before d — 1h candles whose close (open + 1 h) is <= d (the last
:data:`WINDOW` of them) and funding events settled before d. Open-interest change and spread
have no history here and stay neutral (0.5 for every symbol). A symbol with fewer than
``lookback`` + 1 candles before d is not ranked (not "listed" yet); one whose 24 h quote
volume is below ``min_quote_volume`` is dropped.

**Evaluation** (:func:`evaluate_selector`): weeks start on Mondays 00:00 UTC. For every week
and symbol, each fixed strategy (``ema-cross``, ``buy-and-hold``) is backtested with
:func:`perpbot.backtest.runner.run_strategies` over that week alone (``warmup`` earlier 1h bars
only warm the indicators up; the account starts flat at the week's first bar with
``starting_capital``; fees, slippage and funding as the settings say; a position still open at
the week's end pays the taker fee and slippage of closing it). The week's return of a
selection of N symbols is the mean of theirs (capital split equally, re-split every week); the
period's return compounds the weeks. Compared: the ranking's top-N (re-ranked every week), N
symbols drawn at random every week (``seeds`` draws: mean, median, 5th / 95th percentile, and
the share of draws the ranking beat), and each symbol held alone (SOL: the project's default).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from perpbot.intel.pairs import LOOKBACK, candle_factors, rank_table

__all__ = ["WINDOW", "evaluate_selector", "history_factors", "history_ranking", "week_returns"]

#: 1h candles the history factors read (ATR / ADX seeds decay long before).
WINDOW = 400
HOUR = pd.Timedelta(hours=1)


def history_factors(candles: dict[str, pd.DataFrame], funding: dict[str, pd.DataFrame | None], at: pd.Timestamp,
                    lookback: int = LOOKBACK) -> pd.DataFrame:
    """Factor values (index = coin, columns = factors) from data ended before ``at`` (UTC)."""
    rows = {}
    for coin, c in candles.items():
        known = c[c["timestamp"] + HOUR <= at]
        if len(known) < lookback + 1:
            continue
        f = candle_factors(known.iloc[-WINDOW:], lookback)
        fund = funding.get(coin)
        if fund is not None:
            settled = fund[fund["timestamp"] < at]
            f["funding"] = abs(float(settled["funding_rate"].iloc[-1])) * 100.0 if len(settled) else math.nan
        rows[coin] = f
    return pd.DataFrame.from_dict(rows, orient="index")


def history_ranking(candles: dict[str, pd.DataFrame], funding: dict[str, pd.DataFrame | None], at: pd.Timestamp,
                    weights: dict[str, float], min_quote_volume: float = 0.0,
                    lookback: int = LOOKBACK) -> pd.DataFrame:
    """:func:`~perpbot.intel.pairs.rank_table` of :func:`history_factors` at ``at`` (module docstring)."""
    values = history_factors(candles, funding, at, lookback)
    if len(values):
        values = values[values["volume"] >= min_quote_volume]
    return rank_table(values, weights)


def week_returns(settings: Any, candles: pd.DataFrame, funding: pd.DataFrame | None, coin: str,
                 weeks: list[pd.Timestamp], strategies: tuple[str, ...], warmup: int = 300) -> pd.DataFrame:
    """Return (fraction, after costs) of each strategy over each week, one coin (index = week start)."""
    from perpbot.backtest.runner import run_strategies
    from perpbot.data.market import MarketData

    from perpbot.sim.market_rules import shipped_rules

    rules = shipped_rules(coin)
    tick, lot, least = (rules.tick, rules.lot, rules.min_qty) if rules else (settings.tick_size, settings.lot_size,
                                                                             settings.min_qty)
    s = settings.model_copy(update={"symbol": f"{coin}/USDT:USDT", "timeframe": "1h", "tick_size": tick,
                                    "lot_size": lot, "min_qty": least, "warmup_bars": warmup,
                                    "funding": funding is not None})
    cost = (s.taker_fee + s.slippage) / 100.0
    ts = candles["timestamp"]
    out = {k: [] for k in strategies}
    for d in weeks:
        lo = int(ts.searchsorted(d)) - warmup
        hi = int(ts.searchsorted(d + pd.Timedelta(days=7)))
        c = candles.iloc[max(lo, 0):hi].reset_index(drop=True)
        c.attrs["timeframe"] = "1h"
        runs = run_strategies(s, MarketData(c, "1h", funding=funding), list(strategies))
        for k, r in runs.items():
            exit_cost = abs(float(r.result.position[-1])) * float(c["close"].iloc[-1]) * cost
            out[k].append((float(r.result.equity.iloc[-1]) - exit_cost) / s.starting_capital - 1.0)
    return pd.DataFrame(out, index=pd.DatetimeIndex(weeks, name="week"))


def _compound(r: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.prod(1.0 + r, axis=axis) - 1.0


def evaluate_selector(settings: Any, candles: dict[str, pd.DataFrame], funding: dict[str, pd.DataFrame | None], *,
                      top_ns: tuple[int, ...] = (1, 2), strategies: tuple[str, ...] = ("ema-cross", "buy-and-hold"),
                      seeds: int = 1000, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None,
                      benchmark: str = "SOL", warmup: int = 300) -> dict[str, Any]:
    """Evaluate the history ranking as a weekly selector (module docstring). ``start`` / ``end``
    bound the weeks (default: from the first Monday with ``warmup`` + :data:`WINDOW` hours of
    every coin's history before it, to the last complete week of the shortest file).

    Returns a JSON-able dict: period, weeks, costs, the weekly picks, and per strategy the
    compounded return of each selector (fractions).

    Raises:
        ValueError: fewer than 2 coins, no complete week, or a ``top_n`` outside 1 .. coins − 1.
    """
    coins = sorted(candles)
    if len(coins) < 2 or any(not 1 <= n < len(coins) for n in top_ns):
        raise ValueError(f"need >= 2 coins and 1 <= top_n < {len(coins)}; got {coins}, {list(top_ns)}")
    first = max(c["timestamp"].iloc[0] for c in candles.values()) + (warmup + WINDOW) * HOUR
    last = min(c["timestamp"].iloc[-1] for c in candles.values()) + HOUR
    monday = (first.normalize() - pd.Timedelta(days=first.weekday()))
    if monday < first:
        monday += pd.Timedelta(days=7)
    start = max(monday, start) if start is not None else monday
    end = min(last, end) if end is not None else last
    weeks = list(pd.date_range(start, end - pd.Timedelta(days=7), freq="7D"))
    if not weeks:
        raise ValueError(f"no complete week between {start} and {end}")
    per_coin = {c: week_returns(settings, candles[c], funding.get(c), c, weeks, strategies, warmup) for c in coins}
    picks = []
    for d in weeks:
        table = history_ranking(candles, funding, d, settings.pairs_weights)
        picks.append([str(s) for s in table.index])
    idx = {c: i for i, c in enumerate(coins)}
    results: dict[str, Any] = {}
    rng = np.random.default_rng(0)
    draws = rng.random((seeds, len(weeks), len(coins))).argsort(axis=2)
    for k in strategies:
        r = np.column_stack([per_coin[c][k].to_numpy() for c in coins])       # (weeks, coins)
        res: dict[str, Any] = {f"{c} alone": float(_compound(r[:, idx[c]])) for c in coins}
        for n in top_ns:
            chosen = np.array([[idx[c] for c in p[:n]] for p in picks])          # (weeks, n)
            sel = float(_compound(np.take_along_axis(r, chosen, axis=1).mean(axis=1)))
            rand = _compound(np.take_along_axis(np.broadcast_to(r, draws.shape), draws[:, :, :n], axis=2).mean(axis=2))
            res[f"top-{n}"] = sel
            res[f"random-{n}"] = {"mean": float(rand.mean()), "median": float(np.median(rand)),
                                  "p05": float(np.quantile(rand, 0.05)), "p95": float(np.quantile(rand, 0.95)),
                                  "share_beaten": float((rand < sel).mean())}
        results[k] = res
    top1 = pd.Series([p[0] for p in picks]).value_counts().to_dict()
    return {"period": [weeks[0].isoformat(), (weeks[-1] + pd.Timedelta(days=7)).isoformat()], "weeks": len(weeks),
            "coins": coins, "benchmark": benchmark, "seeds": seeds, "weights": dict(settings.pairs_weights),
            "costs": {"taker_fee_pct": settings.taker_fee, "slippage_pct": settings.slippage,
                      "funding": True, "capital_usdt": settings.starting_capital},
            "weeks_ranked_first": {str(k): int(v) for k, v in top1.items()},
            "picks": [{"week": d.isoformat(), "ranking": p} for d, p in zip(weeks, picks)],
            "results": results}
