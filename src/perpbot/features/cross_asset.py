"""The ``cross_asset`` feature group: BTC and ETH returns, volatility, correlation and relative
strength, from their candles (``../shared/data``: ``BTCUSDT-1h.parquet``, ``ETHUSDT-1h.parquet``).

Both series are compared on a common grid ``L`` = the slower of the candles' timeframe and the
other asset's timeframe (1h with the shared files): the traded candles are resampled to ``L``
(complete buckets only) and paired with the other asset's bars of the same open time. Every
value belongs to a CLOSED ``L`` bar and is joined by its close time (``open + L <= candle
close``), so a 5m candle never sees the hour still forming, of either asset.

Per asset ``a`` (``btc``, ``eth``; names ``xa_<a>_<x>``), over closed ``L`` bars:

| x | definition | unit |
|---|---|---|
| ``logret1`` | ln(close_k / close_{k-1}) of the asset | log return |
| ``logret4`` | ln(close_k / close_{k-4}) | log return |
| ``logret24`` | ln(close_k / close_{k-24}) | log return |
| ``vol24`` | sample std of its last 24 one-bar log returns | log return |
| ``corr24`` | Pearson correlation of the traded and the asset's last 24 one-bar log returns | -1..1 |
| ``relstr24`` | traded logret24 - asset logret24 (relative strength) | log return |

Windows are finite (25 bars of ``L``): a trailing window of 26 x L/base candles gives the
batch value exactly (312 candles at 5m with 1h series). Flat listing rows (BTC 2019-09-08) give
zero variance: correlation NaN, never inf.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perpbot.data.resample import resample_candles
from perpbot.data.validate import DataError, timeframe_to_ms, timestamps_to_ms
from perpbot.features.asof import asof_rows, asof_take, bar_close_ms, candle_timeframe

__all__ = ["CROSS_ASSETS", "CROSS_STATS", "cross_asset_features", "cross_asset_names", "cross_window_bars"]

CROSS_ASSETS = ("btc", "eth")
CROSS_STATS = ("logret1", "logret4", "logret24", "vol24", "corr24", "relstr24")
_W = 24


def cross_asset_names() -> list[str]:
    """Column names of :func:`cross_asset_features`, in order."""
    return [f"xa_{a}_{x}" for a in CROSS_ASSETS for x in CROSS_STATS]


def cross_window_bars(timeframe: str, other_timeframe: str = "1h") -> int:
    """Candles a trailing window needs for every value to equal the batch value."""
    grid = max(timeframe_to_ms(timeframe), timeframe_to_ms(other_timeframe))
    return (_W + 2) * grid // timeframe_to_ms(timeframe)


def _logret(c: np.ndarray, k: int) -> np.ndarray:
    out = np.full(len(c), np.nan)
    if len(c) > k:
        out[k:] = np.log(c[k:] / c[:-k])
    return out


def _windows(x: np.ndarray) -> np.ndarray:
    return np.lib.stride_tricks.sliding_window_view(x, _W)


def pair_stats(own_close: np.ndarray, other_close: np.ndarray) -> dict[str, np.ndarray]:
    """:data:`CROSS_STATS` per bar of two close series on the same grid (float64 (m,) each)."""
    m = len(own_close)
    r_own, r_oth = _logret(own_close, 1), _logret(other_close, 1)
    vol = np.full(m, np.nan)
    corr = np.full(m, np.nan)
    if m >= _W:
        wo, wa = _windows(r_own), _windows(r_oth)
        vol[_W - 1:] = np.std(wa, axis=1, ddof=1)
        do, da = wo - wo.mean(axis=1, keepdims=True), wa - wa.mean(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            corr[_W - 1:] = (do * da).sum(axis=1) / np.sqrt((do * do).sum(axis=1) * (da * da).sum(axis=1))
    return {"logret1": r_oth, "logret4": _logret(other_close, 4), "logret24": _logret(other_close, _W),
            "vol24": vol, "corr24": corr, "relstr24": _logret(own_close, _W) - _logret(other_close, _W)}


def _one(candles: pd.DataFrame, tf: str, other: pd.DataFrame) -> dict[str, np.ndarray]:
    otf = other.attrs.get("timeframe") or candle_timeframe(other)
    grid = otf if timeframe_to_ms(otf) >= timeframe_to_ms(tf) else tf
    own = candles[["timestamp", "open", "high", "low", "close", "volume"]].reset_index(drop=True)
    own.attrs["timeframe"] = tf
    own_bars = resample_candles(own, grid)
    # only the other asset's bars that overlap the candles (a file from 2019 is not reprocessed per cycle)
    o_ms = timestamps_to_ms(other["timestamp"], "cross-asset candles")
    lo, hi = np.searchsorted(o_ms, [int(timestamps_to_ms(own_bars["timestamp"])[0]) if len(own_bars) else 0,
                                    int(timestamps_to_ms(own_bars["timestamp"])[-1]) + 1 if len(own_bars) else 0])
    oth = other.iloc[lo:hi].reset_index(drop=True)
    oth.attrs["timeframe"] = otf
    if grid != otf:
        oth = resample_candles(oth, grid)
    n = len(candles)
    if not len(own_bars) or not len(oth):
        return {x: np.full(n, np.nan) for x in CROSS_STATS}
    # pair by bar open time; a missing bar on either side leaves a NaN hole (no forward fill)
    grid_ms = timestamps_to_ms(own_bars["timestamp"])
    j = np.searchsorted(timestamps_to_ms(oth["timestamp"]), grid_ms)
    j = np.minimum(j, len(oth) - 1)
    hit = timestamps_to_ms(oth["timestamp"])[j] == grid_ms
    other_close = np.where(hit, oth["close"].to_numpy(np.float64)[j], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        stats = pair_stats(own_bars["close"].to_numpy(np.float64), other_close)
    idx = asof_rows(bar_close_ms(candles, tf), grid_ms + timeframe_to_ms(grid))
    return {x: asof_take(np.where(np.isfinite(v), v, np.nan), idx) for x, v in stats.items()}


def cross_asset_features(candles: pd.DataFrame, others: dict[str, pd.DataFrame | None]) -> pd.DataFrame:
    """The ``cross_asset`` columns (:func:`cross_asset_names`, float64) for every candle.

    ``candles``: the traded candles (validated, UTC opens). ``others``: ``{"btc": frame,
    "eth": frame}`` of validated candles (any timeframe on the UTC grid, e.g. 1h).
    Raises DataError when an asset's candles are missing.
    """
    missing = [a for a in CROSS_ASSETS if others.get(a) is None]
    if missing:
        raise DataError(f"feature group cross_asset needs {', '.join(missing)} candles (settings btc_file / "
                        "eth_file)")
    out = pd.DataFrame(np.nan, index=candles.index, columns=cross_asset_names())
    if not len(candles):
        return out
    tf = candle_timeframe(candles)
    for a in CROSS_ASSETS:
        for x, v in _one(candles, tf, others[a]).items():
            out[f"xa_{a}_{x}"] = v
    return out
