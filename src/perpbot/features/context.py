"""The ``context`` feature group: market-context series recorded by ``perpbot collect``.

Input: the rows of :func:`perpbot.intel.collect.read_collected` (one symbol; ``taken_at`` is
when each row became known). A row is seen by a candle from that candle's close on (close =
open + timeframe >= ``taken_at``); each column carries its last non-missing observation
forward (an as-of join), never backwards: before the first observation, or when the last one
is older than ``max_age``, the feature is NaN. Nothing is back-filled, so the missing history
before the collector started stays missing (the model's NaN handling decides what that means).

| column | from | unit |
|---|---|---|
| ``ctx_funding_pct`` | ``funding_pct`` (CoinGlass mean over USDT-margined venues) | percent per interval |
| ``ctx_venue_funding`` | ``venue_funding`` | fraction per interval |
| ``ctx_oi_change_24h`` | ``oi_change_24h_pct`` (CoinGlass, all venues) | percent |
| ``ctx_taker_buy`` | ``taker_buy_pct`` − 50 | percentage points |
| ``ctx_liq_imbalance`` | (``liq_short_usd`` − ``liq_long_usd``) / their sum | fraction in [-1, 1] |
| ``ctx_fear_greed`` | ``fear_greed`` | 0..100 |
| ``ctx_sentiment`` | ``sentiment`` (news / Reddit score) | [-1, 1] |
| ``ctx_spread_bps`` | ``spread_bps`` (top of the venue's book) | basis points |
| ``ctx_book_imbalance`` | ``book_imbalance`` (top-N depth) | fraction in [-1, 1] |

Hook into :mod:`perpbot.features.build`: a feature group ``context`` whose columns are
:data:`CONTEXT_NAMES` and whose values are ``context_features(candles, collected)``
(:func:`compute_with_context` does exactly that beside the version-1 features until then).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perpbot.data.validate import infer_timeframe, timeframe_to_ms, timestamps_to_ms

__all__ = ["CONTEXT_NAMES", "DEFAULT_MAX_AGE", "compute_with_context", "context_features"]

CONTEXT_NAMES = ("ctx_funding_pct", "ctx_venue_funding", "ctx_oi_change_24h", "ctx_taker_buy", "ctx_liq_imbalance",
                 "ctx_fear_greed", "ctx_sentiment", "ctx_spread_bps", "ctx_book_imbalance")
#: An observation older than this is stale (NaN): the collector was down.
DEFAULT_MAX_AGE = pd.Timedelta(hours=6)


def _source(collected: pd.DataFrame) -> dict[str, np.ndarray]:
    g = {c: collected[c].to_numpy(np.float64) if c in collected else np.full(len(collected), np.nan)
         for c in ("funding_pct", "venue_funding", "oi_change_24h_pct", "taker_buy_pct", "liq_long_usd",
                   "liq_short_usd", "fear_greed", "sentiment", "spread_bps", "book_imbalance")}
    with np.errstate(divide="ignore", invalid="ignore"):
        liq = (g["liq_short_usd"] - g["liq_long_usd"]) / (g["liq_short_usd"] + g["liq_long_usd"])
    return {"ctx_funding_pct": g["funding_pct"], "ctx_venue_funding": g["venue_funding"],
            "ctx_oi_change_24h": g["oi_change_24h_pct"], "ctx_taker_buy": g["taker_buy_pct"] - 50.0,
            "ctx_liq_imbalance": np.where(np.isfinite(liq), liq, np.nan), "ctx_fear_greed": g["fear_greed"],
            "ctx_sentiment": g["sentiment"], "ctx_spread_bps": g["spread_bps"],
            "ctx_book_imbalance": g["book_imbalance"]}


def context_features(candles: pd.DataFrame, collected: pd.DataFrame | None,
                     max_age: pd.Timedelta | None = DEFAULT_MAX_AGE) -> pd.DataFrame:
    """The ``context`` columns (:data:`CONTEXT_NAMES`, float64) for every candle (module docstring).

    ``candles``: ``timestamp`` (UTC open), timeframe from ``attrs["timeframe"]`` or inferred.
    ``collected``: :func:`perpbot.intel.collect.read_collected` rows or None (all NaN).
    ``max_age``: staleness limit (None: none). Index = ``candles.index``.
    """
    ts = timestamps_to_ms(candles["timestamp"], "<candles>")
    out = pd.DataFrame(np.nan, index=candles.index, columns=list(CONTEXT_NAMES))
    if collected is None or not len(collected) or not len(ts):
        return out
    tf = candles.attrs.get("timeframe") or infer_timeframe(ts, "<candles>")
    close = ts + timeframe_to_ms(tf)
    order = np.argsort(timestamps_to_ms(collected["taken_at"], "collected"), kind="stable")
    known = timestamps_to_ms(collected["taken_at"], "collected")[order]
    limit = None if max_age is None else int(max_age / pd.Timedelta(milliseconds=1))
    for name, values in _source(collected).items():
        v = values[order]
        ok = np.isfinite(v)
        k_ms, k_v = known[ok], v[ok]
        i = np.searchsorted(k_ms, close, side="right") - 1
        col = np.where(i >= 0, k_v[np.maximum(i, 0)] if len(k_v) else np.nan, np.nan)
        if limit is not None and len(k_ms):
            col = np.where((i >= 0) & (close - k_ms[np.maximum(i, 0)] <= limit), col, np.nan)
        out[name] = col
    return out


def compute_with_context(candles: pd.DataFrame, funding: pd.DataFrame | None, collected: pd.DataFrame | None,
                         max_age: pd.Timedelta | None = DEFAULT_MAX_AGE) -> pd.DataFrame:
    """:func:`perpbot.features.build.compute_features` with the ``context`` columns appended."""
    from perpbot.features.build import compute_features

    return pd.concat([compute_features(candles, funding), context_features(candles, collected, max_age)], axis=1)
