"""Small windows of the full-resolution candles around each trade, for the report's trade zoom.

A year of 5m candles is 86,400 bars; the report embeds only the bars near some trade:
``pad`` bars before each entry and after each exit, and the bars in between when the trade
lasted at most ``max_span`` bars (a longer trade gets its entry and exit windows only; the
page hides the gap with a plotly range break). Overlapping windows are merged. Prices are
stored exactly as integers in units of the price step (``10**-decimals`` USDT), delta-coded per
candle (small numbers), so the page's deflate-compressed data block holds a 5m candle in ~4 bytes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["merge_ranges", "price_decimals", "trade_windows", "zoom_payload"]


def price_decimals(prices: np.ndarray, max_decimals: int = 8) -> int | None:
    """Smallest d <= ``max_decimals`` with every price an integer multiple of 10**-d (to 1e-9
    relative), and ``max|price| * 10**d < 2**31``; None when there is none."""
    p = np.asarray(prices, dtype=np.float64)
    p = p[np.isfinite(p)]
    if p.size == 0:
        return 0
    top = float(np.abs(p).max())
    for d in range(max_decimals + 1):
        scaled = p * 10.0 ** d
        if top * 10.0 ** d >= 2 ** 31:
            return None
        if np.all(np.abs(scaled - np.round(scaled)) <= 1e-9 * np.maximum(1.0, np.abs(scaled))):
            return d
    return None


def trade_windows(n: int, entry_bar: np.ndarray, exit_bar: np.ndarray, *, pad: int = 24,
                  max_span: int = 288) -> list[tuple[int, int]]:
    """Merged ``[start, stop)`` row ranges (within ``[0, n)``) around trades given by bar indices."""
    ranges = []
    for e, x in zip(np.asarray(entry_bar, np.int64), np.asarray(exit_bar, np.int64)):
        if x - e <= max_span:
            ranges.append((e - pad, x + pad + 1))
        else:
            ranges += [(e - pad, e + pad + 1), (x - pad, x + pad + 1)]
    return merge_ranges(ranges, n)


def merge_ranges(ranges, n: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges clipped to ``[0, n)``, sorted, overlapping or touching ones merged."""
    out: list[list[int]] = []
    for a, b in sorted((max(0, a), min(n, b)) for a, b in ranges):
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def _bars(times_ms: np.ndarray, trade_times) -> np.ndarray:
    """Row of each trade time among the candle open times (the candle containing it)."""
    t = pd.to_datetime(pd.Series(trade_times), utc=True)
    ms = np.array([np.iinfo(np.int64).min if pd.isna(v) else v.value // 1_000_000 for v in t], dtype=np.int64)
    return np.clip(np.searchsorted(times_ms, ms, side="right") - 1, 0, len(times_ms) - 1)


def _windows(times_ms, trades_by_strategy, pad, max_span, budget):
    """(merged row ranges, strategies covered): the strategies in order, each added when the union
    of the windows stays within ``budget`` bars (a strategy that does not fit is skipped)."""
    n = len(times_ms)
    rows: list[tuple[int, int]] = []
    covered = []
    last = pd.Timestamp(int(times_ms[-1]), unit="ms", tz="UTC")
    for name, trades in trades_by_strategy.items():
        if len(trades) == 0:
            covered.append(name)
            continue
        e = _bars(times_ms, trades["entry_time"])
        x = _bars(times_ms, pd.to_datetime(trades["exit_time"], utc=True).fillna(last))
        more = merge_ranges(rows + trade_windows(n, e, x, pad=pad, max_span=max_span), n)
        if sum(b - a for a, b in more) > budget:
            continue
        rows = more
        covered.append(name)
    return rows, covered


def zoom_payload(candles: pd.DataFrame, trades_by_strategy: dict[str, pd.DataFrame], *,
                 max_bars: int = 60_000) -> dict:
    """Candle windows around the trades of the strategies, for the page's zoom panel (JSON-able).

    ``candles``: ``timestamp`` (UTC candle opens) + open/high/low/close (USDT), the backtested
    candles; ``trades_by_strategy``: name -> trades frame (entry_time, exit_time), most important
    first. Windows use ``pad`` = 24 bars and ``max_span`` = 288 bars, shrunk to (12, 96) then
    (6, 36) until every strategy fits in ``max_bars``; at the smallest windows a strategy that does
    not fit is left out (``covered`` lists the ones included).

    Returns ``{"bar_ms", "pad", "max_span", "covered", "scale", "segments", "d_open", "body",
    "upper", "lower"}``: segment k = ``[start_ms, count, first_open]`` holds ``count``
    consecutive candles every ``bar_ms`` from ``start_ms`` (a gap in the candles splits a
    segment). Prices are integers in units of ``10**-scale`` USDT, delta-coded per candle:
    ``open = previous close + d_open`` (``first_open`` for a segment's first candle; its
    ``d_open`` is 0), ``close = open + body``, ``high = max(open, close) + upper``,
    ``low = min(open, close) - lower``; each a list of ints, one per embedded candle. When the
    prices are on no decimal grid (``price_decimals`` is None), ``scale`` and every ``first_open``
    are None and ``open``/``high``/``low``/``close`` hold the plain float prices instead.
    Raises ``ValueError`` without a ``timestamp`` column.
    """
    if "timestamp" not in candles.columns:
        raise ValueError("candles: need a 'timestamp' column (candle open times, UTC)")
    times_ms = pd.to_datetime(candles["timestamp"], utc=True).astype("datetime64[ms, UTC]").astype("int64") \
        .to_numpy(np.int64)
    bar_ms = int(np.median(np.diff(times_ms))) if len(times_ms) > 1 else 0
    for pad, max_span in ((24, 288), (12, 96), (6, 36)):
        rows, covered = _windows(times_ms, trades_by_strategy, pad, max_span, max_bars)
        if len(covered) == len(trades_by_strategy):
            break
    segments, picks = [], []
    for a, b in rows:
        gaps = np.flatnonzero(np.diff(times_ms[a:b]) != bar_ms) + 1
        for s, t in zip(np.concatenate(([0], gaps)), np.concatenate((gaps, [b - a]))):
            segments.append([int(times_ms[a + s]), int(t - s)])
            picks.append(np.arange(a + s, a + t))
    idx = np.concatenate(picks) if picks else np.zeros(0, np.int64)
    o, h, lo, c = (candles[k].to_numpy(np.float64)[idx] for k in ("open", "high", "low", "close"))
    d = price_decimals(np.concatenate([o, h, lo, c])) if idx.size else 0
    out = {"bar_ms": bar_ms, "pad": pad, "max_span": max_span, "covered": covered, "scale": d,
           "segments": [seg + [None] for seg in segments]}
    if d is None:  # prices on no decimal grid (e.g. synthetic data): plain floats
        out.update(open=o.tolist(), high=h.tolist(), low=lo.tolist(), close=c.tolist())
        return out
    o, h, lo, c = (np.round(v * 10.0 ** d).astype(np.int64) for v in (o, h, lo, c))
    d_open = np.zeros(idx.size, np.int64)
    first = np.cumsum([0] + [seg[1] for seg in segments[:-1]]).astype(np.int64) if segments else np.zeros(0, np.int64)
    if idx.size:
        d_open[1:] = o[1:] - c[:-1]
        d_open[first] = 0
    out["segments"] = [seg + [int(o[f])] for seg, f in zip(segments, first)]
    for key, arr in (("d_open", d_open), ("body", c - o), ("upper", h - np.maximum(o, c)),
                     ("lower", np.minimum(o, c) - lo)):
        out[key] = arr.tolist()
    return out
