"""Reusable causality checks for anything computed from candles (features, signals, labels'
inputs): the look-ahead test and the recursive (trailing-window) test.

``fn`` is any callable taking a candle frame and returning one value per row: a DataFrame
(columns are checked one by one), a Series or a 1-D array (checked as column ``"value"``),
or a 2-D array (columns ``"0"``, ``"1"``, ...). Rows are matched by position.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

__all__ = ["lookahead_violations", "perturb_after", "recursive_violations"]

Perturb = Callable[[pd.DataFrame, int, np.random.Generator], pd.DataFrame]


def perturb_after(candles: pd.DataFrame, t: int, rng: np.random.Generator, scale: float = 0.05) -> pd.DataFrame:
    """Copy of ``candles`` with every row after position ``t`` changed, OHLC kept valid.

    Each later row gets independent lognormal factors (sigma ``scale``) on open, close,
    high, low and volume; then high = max(high', open', close') and low = min(low', open',
    close'), so high >= max(open, close) >= min(open, close) >= low > 0 still holds and
    intra-bar ratios change too. Timestamps and rows 0..t are untouched.
    """
    out = candles.copy()
    m = len(out) - t - 1
    if m <= 0:
        return out
    factors = np.exp(rng.normal(0.0, scale, size=(5, m)))
    tail = slice(t + 1, None)
    o = out["open"].to_numpy(dtype=np.float64)[tail] * factors[0]
    c = out["close"].to_numpy(dtype=np.float64)[tail] * factors[1]
    h = np.maximum(out["high"].to_numpy(dtype=np.float64)[tail] * factors[2], np.maximum(o, c))
    lo = np.minimum(out["low"].to_numpy(dtype=np.float64)[tail] * factors[3], np.minimum(o, c))
    v = out["volume"].to_numpy(dtype=np.float64)[tail] * factors[4]
    for name, arr in (("open", o), ("high", h), ("low", lo), ("close", c), ("volume", v)):
        col = out[name].to_numpy(dtype=np.float64, copy=True)
        col[t + 1:] = arr
        out[name] = col
    return out


def _as_frame(result: object, n: int) -> pd.DataFrame:
    if isinstance(result, pd.DataFrame):
        frame = result.reset_index(drop=True)
        frame.columns = [str(c) for c in frame.columns]
    elif isinstance(result, pd.Series):
        frame = pd.DataFrame({"value": result.to_numpy()})
    else:
        arr = np.asarray(result)
        if arr.ndim == 1:
            frame = pd.DataFrame({"value": arr})
        elif arr.ndim == 2:
            frame = pd.DataFrame(arr, columns=[str(j) for j in range(arr.shape[1])])
        else:
            raise TypeError(f"fn returned a {arr.ndim}-D array; expected 1-D or 2-D")
    if len(frame) != n:
        raise ValueError(f"fn returned {len(frame)} rows for {n} input candles; expected one value per row")
    return frame


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Exact equality, NaN == NaN."""
    if a.dtype.kind in "fc" or b.dtype.kind in "fc":
        try:
            return bool(np.array_equal(a.astype(np.float64), b.astype(np.float64), equal_nan=True))
        except (TypeError, ValueError):
            pass
    return bool(pd.Series(a, dtype=object).equals(pd.Series(b, dtype=object)))


def _check_t(t_indices: Iterable[int], lo: int, hi: int, what: str) -> list[int]:
    ts = [int(t) for t in t_indices]
    if not ts:
        raise ValueError("t_indices is empty")
    bad = [t for t in ts if not lo <= t <= hi]
    if bad:
        raise ValueError(f"t_indices {bad[:5]} out of range [{lo}, {hi}] ({what})")
    return ts


def lookahead_violations(fn: Callable[[pd.DataFrame], object], candles: pd.DataFrame, t_indices: Iterable[int],
                         perturb: Perturb = perturb_after, seed: int = 0) -> list[str]:
    """Names of output columns whose values at rows <= t change when rows after t change.

    Runs ``fn(candles)`` once, then for each t in ``t_indices`` runs ``fn`` on
    ``perturb(candles, t, rng)`` (default :func:`perturb_after`) and compares rows 0..t
    exactly (NaN equals NaN). A causal ``fn`` returns ``[]``. Columns are listed in output
    order, each once. ``t_indices`` must lie in [0, n-2] (something after t to perturb).
    Raises ValueError for bad ``t_indices`` or an output whose length differs from the input.
    """
    n = len(candles)
    ts = _check_t(t_indices, 0, n - 2, "need at least one row after t")
    base = _as_frame(fn(candles), n)
    rng = np.random.default_rng(seed)
    leaky: set[str] = set()
    for t in ts:
        other = _as_frame(fn(perturb(candles, t, rng)), n)
        for col in base.columns:
            if col in leaky:
                continue
            if col not in other.columns or not _same(base[col].to_numpy()[: t + 1], other[col].to_numpy()[: t + 1]):
                leaky.add(col)
    return [c for c in base.columns if c in leaky]


def recursive_violations(fn: Callable[[pd.DataFrame], object], candles: pd.DataFrame, window: int,
                         t_indices: Iterable[int], rtol: float = 1e-9, atol: float = 1e-12) -> list[str]:
    """Names of output columns whose batch value at t differs from the trailing-window value.

    For each t: batch ``fn(candles)`` row t versus ``fn(candles.iloc[t-window+1 : t+1])``
    last row, compared with ``|a - b| <= atol + rtol * |a|`` (NaN must match NaN).
    Non-numeric columns must be equal. ``t_indices`` must lie in [window-1, n-1].
    Raises ValueError for a bad window / ``t_indices`` or outputs of the wrong length.
    """
    n = len(candles)
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    ts = _check_t(t_indices, window - 1, n - 1, f"window {window} needs t >= window - 1")
    base = _as_frame(fn(candles), n)
    bad: set[str] = set()
    for t in ts:
        win = candles.iloc[t - window + 1: t + 1]
        last = _as_frame(fn(win), window).iloc[-1]
        for col in base.columns:
            if col in bad:
                continue
            if col not in last.index:
                bad.add(col)
                continue
            a, b = base[col].iloc[t], last[col]
            try:
                fa, fb = float(a), float(b)
            except (TypeError, ValueError):
                if not (a == b):
                    bad.add(col)
                continue
            if np.isnan(fa) or np.isnan(fb):
                if not (np.isnan(fa) and np.isnan(fb)):
                    bad.add(col)
            elif not abs(fa - fb) <= atol + rtol * abs(fa):
                bad.add(col)
    return [c for c in base.columns if c in bad]
