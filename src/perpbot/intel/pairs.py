"""Pair selection: rank a venue's USDT-M perpetuals on normalised, weighted factors.

**Factors** (:func:`candle_factors` from closed 1h candles, the rest from the venue):

| factor | definition | unit |
|---|---|---|
| ``volatility`` | ATR(14) of 1h candles (Wilder, TA-Lib) / last close × 100 | percent |
| ``volume`` | 24 h quote volume (ticker; history: Σ volume × close of the last 24 1h candles) | USDT |
| ``momentum`` | \\|last close / close ``lookback`` bars earlier − 1\\| × 100 (both directions tradable) | percent |
| ``trend`` | ADX(14) of 1h candles (TA-Lib) | 0..100 |
| ``funding`` | \\|current funding rate\\| × 100 (history: the last settled rate) | percent per interval |
| ``oi_change`` | open-interest change over 24 h (venue history when ccxt offers it, else the collector's store) | percent |
| ``spread`` | (ask − bid) / mid × 10⁴ from the ticker | basis points |

**Normalisation** (:func:`rank_table`): per factor, the cross-sectional rank of each symbol
among those with a value, scaled to [0, 1] ((rank − 1) / (n − 1), ties share the average
rank; one symbol alone gets 0.5); a missing value gets 0.5 (neutral). **Score** = Σ w_f ×
norm_f / Σ |w_f| over the factors with a weight (``pairs_weights``; a negative weight means
lower is better: by default funding −0.5 and spread −1). Ranked by score, highest first
(ties: symbol name).

**Filters** (live, :func:`rank_venue`): active USDT-settled linear perpetuals; 24 h quote
volume >= ``pairs_min_quote_volume``; spread <= ``pairs_max_spread_bps`` (an unknown spread
passes); at most ``pairs_max_candidates`` of the most liquid get their candles fetched; days
since listing >= ``pairs_min_listing_days`` (the market's ``created`` time, else the first
daily candle the venue has when it has fewer than asked; none: 0 days).
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import talib

__all__ = ["FACTORS", "PairRanking", "candle_factors", "rank_table", "rank_venue", "select_pairs"]

FACTORS = ("volatility", "volume", "momentum", "trend", "funding", "oi_change", "spread")
HOUR_MS, DAY_MS = 3_600_000, 86_400_000
LOOKBACK = 168   # 1h bars of momentum (7 days)


def candle_factors(candles: pd.DataFrame, lookback: int = LOOKBACK) -> dict[str, float]:
    """``volatility``, ``momentum``, ``trend`` and the candle ``volume`` (24 h quote volume) of
    closed 1h candles (columns high, low, close in quote currency, volume in base asset, oldest
    first). NaN for a factor with too few candles (ATR / ADX need 28, momentum ``lookback`` + 1,
    volume 24)."""
    h, lo, c, v = (np.ascontiguousarray(candles[k].to_numpy(np.float64)) for k in ("high", "low", "close", "volume"))
    n = len(c)
    out = {"volatility": math.nan, "momentum": math.nan, "trend": math.nan, "volume": math.nan}
    if n >= 28:
        out["volatility"] = float(talib.ATR(h, lo, c, 14)[-1] / c[-1] * 100.0)
        out["trend"] = float(talib.ADX(h, lo, c, 14)[-1])
    if n >= lookback + 1:
        out["momentum"] = float(abs(c[-1] / c[-1 - lookback] - 1.0) * 100.0)
    if n >= 24:
        out["volume"] = float((v[-24:] * c[-24:]).sum())
    return out


def rank_table(values: pd.DataFrame, weights: dict[str, float]) -> pd.DataFrame:
    """Rank symbols (the index) on their factor ``values`` (columns of :data:`FACTORS`; NaN =
    unknown) with ``weights`` (module docstring). Returns the values, ``n_<factor>`` (the
    normalised value), ``score`` and ``rank`` (1 = best), sorted best first.

    Raises:
        ValueError: an unknown factor in ``weights`` or all weights zero.
    """
    bad = sorted(set(weights) - set(FACTORS))
    if bad:
        raise ValueError(f"unknown factor(s) {', '.join(bad)}; known: {', '.join(FACTORS)}")
    used = {f: float(w) for f, w in weights.items() if w != 0}
    if not used:
        raise ValueError("at least one factor needs a non-zero weight")
    out = values.reindex(columns=list(FACTORS)).astype(np.float64).copy()
    total = sum(abs(w) for w in used.values())
    score = pd.Series(0.0, index=out.index)
    for f in FACTORS:
        col = out[f]
        known = col.notna().sum()
        r = col.rank(method="average")
        norm = (r - 1.0) / (known - 1.0) if known > 1 else pd.Series(0.5, index=out.index)
        out[f"n_{f}"] = norm.fillna(0.5)
        if f in used:
            score += used[f] * out[f"n_{f}"]
    out["score"] = score / total
    out = out.assign(_sym=out.index.astype(str)).sort_values(["score", "_sym"], ascending=[False, True])
    out = out.drop(columns="_sym")
    out["rank"] = np.arange(1, len(out) + 1)
    return out


@dataclass
class PairRanking:
    """A venue's ranking: ``table`` (see :func:`rank_table`, plus ``age_days``), the symbols
    each filter dropped (``dropped``: symbol -> reason), what could not be read
    (``errors``: symbol -> one line), the venue and when (``taken_at`` UTC)."""

    venue: str
    table: pd.DataFrame
    dropped: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    taken_at: pd.Timestamp = field(default_factory=lambda: pd.Timestamp.now(tz="UTC"))

    def top(self, n: int) -> list[str]:
        return [str(s) for s in self.table.index[:n]]

    def to_dict(self) -> dict:
        rows = []
        for sym, r in self.table.iterrows():
            rows.append({"symbol": str(sym), "rank": int(r["rank"]), "score": _json(r["score"]),
                         **{f: _json(r[f]) for f in FACTORS}, "age_days": _json(r.get("age_days")),
                         "normalised": {f: _json(r[f"n_{f}"]) for f in FACTORS}})
        return {"venue": self.venue, "taken_at": self.taken_at.isoformat(), "ranking": rows,
                "dropped": self.dropped, "errors": self.errors}


def _json(x: Any) -> Any:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _f(x: Any) -> float:
    try:
        return float(x) if x is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def usdt_perpetuals(markets: dict[str, Any]) -> list[str]:
    """Unified symbols of the active USDT-settled linear perpetuals of a ccxt market list."""
    return sorted(s for s, m in markets.items() if m.get("swap") and m.get("linear") and m.get("settle") == "USDT"
                  and m.get("active") is not False)


async def _symbol_factors(ex: Any, sym: str, market: dict, now_ms: int, settings: Any, oi_change: Any,
                          lookback: int) -> dict[str, float]:
    rows = await ex.fetch_ohlcv(sym, "1h", None, lookback + 2)
    rows = [r for r in rows if r[0] + HOUR_MS <= now_ms]
    c = pd.DataFrame(rows, columns=["timestamp", "open", "high", "low", "close", "volume"])
    out = candle_factors(c, lookback)
    del out["volume"]            # the ticker's 24 h quote volume is the venue's own figure
    try:
        fr = await ex.fetch_funding_rate(sym)
        out["funding"] = abs(_f(fr.get("fundingRate"))) * 100.0
    except Exception:  # noqa: BLE001 - a venue without funding for this symbol: neutral
        out["funding"] = math.nan
    out["oi_change"] = math.nan
    if oi_change is not None:
        out["oi_change"] = _f(await oi_change(sym, now_ms))
    created = market.get("created")
    if created:
        out["age_days"] = (now_ms - float(created)) / DAY_MS
    else:
        need = int(settings.pairs_min_listing_days) + 2
        days = await ex.fetch_ohlcv(sym, "1d", now_ms - need * DAY_MS, need)
        # fewer daily candles than asked: listed at the first one; none at all: nothing traded yet
        out["age_days"] = 0.0 if not days else (now_ms - days[0][0]) / DAY_MS if len(days) < need else float(need)
    return out


async def rank_venue(exchange: Any, settings: Any, *, now_ms: int | None = None, oi_change: Any = None,
                     lookback: int = LOOKBACK, concurrency: int = 4) -> PairRanking:
    """Rank every USDT-M perpetual of ``exchange`` (an asyncio ccxt client; the caller closes it)
    with the ``pairs_*`` settings (module docstring). ``oi_change``: ``async f(symbol, now_ms)
    -> percent or None`` (None: the factor is neutral for every symbol). ``now_ms``: the venue's
    clock (default the wall clock), which decides which candle is closed.

    Raises whatever ccxt raises for the market list and the tickers (the venue is unusable);
    a failure of one symbol's candles or funding is recorded in ``errors`` and the symbol left out.
    """
    now = int(time.time() * 1000) if now_ms is None else int(now_ms)
    markets = await exchange.load_markets()
    symbols = usdt_perpetuals(markets)
    tickers = await exchange.fetch_tickers(symbols) if symbols else {}
    dropped: dict[str, str] = {}
    base: dict[str, dict[str, float]] = {}
    for sym in symbols:
        t = tickers.get(sym) or {}
        qv, bid, ask = _f(t.get("quoteVolume")), _f(t.get("bid")), _f(t.get("ask"))
        spread = (ask - bid) / ((ask + bid) / 2) * 1e4 if bid > 0 and ask > 0 else math.nan
        if not qv >= settings.pairs_min_quote_volume:
            dropped[sym] = f"24 h quote volume {qv:,.0f} USDT < {settings.pairs_min_quote_volume:,.0f}"
        elif spread > settings.pairs_max_spread_bps:
            dropped[sym] = f"spread {spread:.2f} bps > {settings.pairs_max_spread_bps:g}"
        else:
            base[sym] = {"volume": qv, "spread": spread}
    ordered = sorted(base, key=lambda s: -base[s]["volume"])
    for sym in ordered[settings.pairs_max_candidates:]:
        dropped[sym] = f"beyond the {settings.pairs_max_candidates} most liquid candidates"
    todo = ordered[: settings.pairs_max_candidates]
    gate = asyncio.Semaphore(concurrency)
    errors: dict[str, str] = {}

    async def one(sym: str) -> None:
        async with gate:
            try:
                base[sym].update(await _symbol_factors(exchange, sym, markets[sym], now, settings, oi_change,
                                                       lookback))
            except Exception as exc:  # noqa: BLE001 - one symbol must not stop the ranking
                errors[sym] = f"{type(exc).__name__}: {exc}"[:200]

    await asyncio.gather(*(one(s) for s in todo))
    keep = []
    for sym in todo:
        if sym in errors:
            continue
        age = base[sym].get("age_days", math.nan)
        if age < settings.pairs_min_listing_days:
            dropped[sym] = f"listed {age:.1f} days ago < {settings.pairs_min_listing_days:g}"
            continue
        keep.append(sym)
    frame = pd.DataFrame.from_dict({s: base[s] for s in keep}, orient="index")
    if frame.empty:
        frame = pd.DataFrame(columns=[*FACTORS, "age_days"])
    table = rank_table(frame, settings.pairs_weights)
    table["age_days"] = frame.reindex(table.index).get("age_days")
    return PairRanking(venue=str(getattr(exchange, "id", "venue")), table=table, dropped=dropped, errors=errors,
                       taken_at=pd.Timestamp(now, unit="ms", tz="UTC"))


async def select_pairs(exchange: Any, n: int, settings: Any, **kw: Any) -> list[str]:
    """The ``n`` best-ranked USDT-M perpetuals of ``exchange`` (ccxt unified symbols), for
    ``--symbols auto:N``: :func:`rank_venue` with the settings' weights and filters, best first
    (fewer when fewer pass the filters). Raises ValueError for ``n`` < 1."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return (await rank_venue(exchange, settings, **kw)).top(n)
