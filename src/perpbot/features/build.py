"""Causal feature matrix from OHLCV candles (+ optional funding rates), computed with TA-Lib.

One row per candle; the value at row t uses only candles 0..t (candle t is closed) and
funding events already settled at candle t's close. Batch computation over the whole
history is therefore valid for backtests, and the live/paper loop gets the same numbers
from :func:`compute_latest` on a trailing window of :data:`RECOMMENDED_WINDOW` candles.
No scaling happens here: scalers are fitted on training windows only (perpbot.ml).

Units: ratios and returns are fractions (0.01 = 1 %), log returns are natural logs,
oscillators keep their textbook range (RSI, Stochastic, MFI, ADX in 0..100, Williams %R
in -100..0, CCI unbounded around 0), candlestick patterns are -1 (bearish) / 0 / +1 (bullish),
funding rates are fractions per funding interval.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np
import pandas as pd
import talib
from talib import abstract

from perpbot.data.validate import DataError, infer_timeframe, timeframe_to_ms, timestamps_to_ms

__all__ = [
    "FEATURE_SET_VERSION",
    "RECOMMENDED_WINDOW",
    "WARMUP_BARS",
    "compute_features",
    "compute_latest",
    "feature_names",
    "features_hash",
]

#: Bump when any feature's definition, name or order changes (invalidates trained models).
FEATURE_SET_VERSION = "1"

#: TA-Lib candlestick patterns used as features (output / 100, sign taken -> -1/0/+1).
CDL_PATTERNS = (
    "CDLDOJI", "CDLENGULFING", "CDLHAMMER", "CDLSHOOTINGSTAR", "CDLHARAMI",
    "CDLMORNINGSTAR", "CDLEVENINGSTAR", "CDLMARUBOZU",
)

_CANDLE_FEATURES = [
    # trend: price vs moving averages
    "close_ema10", "close_ema20", "close_ema50", "ema20_ema50", "sma5_sma20", "sma10_sma50",
    # momentum
    "rsi14", "rsi14_lag1", "rsi14_lag2", "rsi7",
    "macd", "macd_signal", "macd_hist",
    "stoch_k", "stoch_d", "willr14", "cci20", "mfi14",
    # volatility
    "bb_pctb", "bb_width", "atr14_close", "natr24", "adx14", "di_diff14",
    "logret_std12", "logret_std48", "vol_ratio_12_48", "hl_range",
    # volume
    "volume_sma20", "volume_sma5_sma20", "obv_slope12", "obv_slope48",
    # returns and lags
    "logret1", "logret3", "logret6", "logret12", "logret24", "logret1_lag1", "logret1_lag2",
    # rolling window
    "dist_high48", "dist_low48", "range_pos48",
    # candle shape and patterns
    "body", "upper_wick", "lower_wick",
    *(p[3:].lower() for p in CDL_PATTERNS),
    # calendar (candle open time, UTC)
    "hour_sin", "hour_cos", "dow_sin", "dow_cos",
]
_FUNDING_FEATURES = ["funding_last", "funding_mean3"]

#: Rows 0 .. WARMUP_BARS-1 may hold NaN; every candle feature is defined from row
#: WARMUP_BARS on. Derived as the largest TA-Lib lookback among the features: EMA(50) and
#: SMA(50) are first defined at row 49 (lookback = period - 1); logret_std48 needs 48
#: one-bar returns (row 48), dist_high48 row 47, MACD(12,26,9) row 33, ADX(14) row 27.
#: Checked against the real data in tests/test_features.py. Also NaN after warm-up: funding
#: features before the first settled funding event, and 0/0 on degenerate input (a window
#: of flat prices or zero volume, e.g. exchange listing artefacts or mark-price candles).
WARMUP_BARS = 49

#: Trailing window (candles) for :func:`compute_latest`: with at least this many candles
#: every feature of the last row equals the full-history batch value to rtol 1e-9 /
#: atol 1e-12. The recursive TA-Lib indicators (EMA, RSI, ATR/NATR, ADX, MACD) forget their
#: seed geometrically; the slowest, EMA(50) (decay 49/51 per bar), still missed that
#: tolerance at 600 bars and passed from 700 on SOLUSDT 5m (worst of 875 checked bars), so
#: at 1000 the seed term is ~1e-7 of the tolerance. (NATR(48), decay 47/48, still failed at
#: 1000 bars, hence NATR(24).) What remains is float rounding in TA-Lib's running sums
#: (worst: bb_pctb at 0.3 of the tolerance).
#: Checked by the recursive test in tests/test_features.py.
RECOMMENDED_WINDOW = 1000

_WEEK_DAYS = 7.0
_DAY_MS = 86_400_000
_HOUR_MS = 3_600_000


def feature_names(with_funding: bool = True) -> list[str]:
    """Column names of :func:`compute_features`, in order (funding columns last)."""
    return list(_CANDLE_FEATURES) + (list(_FUNDING_FEATURES) if with_funding else [])


def features_hash(names: list[str]) -> str:
    """Fingerprint of a feature set: sha256 hex of FEATURE_SET_VERSION + names, first 16 chars.

    Stored with a trained model so it refuses features it was not trained on.
    """
    payload = "\n".join([FEATURE_SET_VERSION, *names]).encode("utf-8")
    return hashlib.sha256(payload).hexdigest()[:16]


def _shift(x: np.ndarray, k: int) -> np.ndarray:
    """x shifted forward by k rows (value at t is x[t-k]); NaN for the first k rows."""
    out = np.full_like(x, np.nan)
    if k < len(x):
        out[k:] = x[: len(x) - k]
    return out


def _logret(c: np.ndarray, k: int) -> np.ndarray:
    out = np.full_like(c, np.nan)
    if k < len(c):
        out[k:] = np.log(c[k:] / c[:-k])
    return out


@functools.cache
def _cdl_lookback(name: str) -> int:
    return int(abstract.Function(name).lookback)


def _pattern(name: str, o, h, lo, c) -> np.ndarray:
    """TA-Lib pattern as -1/0/+1, NaN inside the pattern's lookback (TA-Lib reports 0 there)."""
    raw = getattr(talib, name)(o, h, lo, c).astype(np.float64)
    out = np.sign(raw)
    out[: _cdl_lookback(name)] = np.nan
    return out


def _funding_features(ts_ms: np.ndarray, tf_ms: int, funding: pd.DataFrame) -> dict[str, np.ndarray]:
    """Last settled funding rate known at each candle's close, and the mean of the last 3.

    A funding event at time T is known from the candle whose close (open + timeframe) >= T.
    """
    f_ms = timestamps_to_ms(funding["timestamp"], "funding")
    rate = funding["funding_rate"].to_numpy(dtype=np.float64)
    if len(f_ms) > 1 and (np.diff(f_ms) <= 0).any():
        raise DataError("funding: timestamps not strictly increasing")
    k = np.searchsorted(f_ms, ts_ms + tf_ms, side="right") - 1  # index of the last event with T <= close
    last = np.where(k >= 0, rate[np.maximum(k, 0)], np.nan)
    csum = np.r_[0.0, np.cumsum(rate)]
    mean3 = np.where(k >= 2, (csum[k + 1] - csum[np.maximum(k - 2, 0)]) / 3.0, np.nan)
    return {"funding_last": last, "funding_mean3": mean3}


def compute_features(candles: pd.DataFrame, funding: pd.DataFrame | None = None) -> pd.DataFrame:
    """Feature matrix for every candle.

    Parameters
    ----------
    candles:
        Validated candle frame (see :func:`perpbot.data.load_candles`): ``timestamp``
        (tz-aware UTC candle open), ``open``, ``high``, ``low``, ``close`` (USDT),
        ``volume`` (base asset), sorted, without gaps.
    funding:
        Optional funding frame (``timestamp``, ``funding_rate``); adds ``funding_last``
        (last rate settled at or before the candle's close) and ``funding_mean3`` (mean of
        the last three settled rates). The candles' timeframe comes from
        ``candles.attrs["timeframe"]`` or is inferred from the timestamps.

    Returns
    -------
    DataFrame, float64 columns :func:`feature_names` (``with_funding=funding is not None``),
    index = ``candles.index``. Rows before :data:`WARMUP_BARS` may be NaN.

    Raises DataError for missing columns or bad timestamps.
    """
    missing = [col for col in ("timestamp", "open", "high", "low", "close", "volume") if col not in candles.columns]
    if missing:
        raise DataError(f"<candles>: missing column(s) {', '.join(missing)}")
    ts = timestamps_to_ms(candles["timestamp"], "<candles>")
    names = feature_names(with_funding=funding is not None)
    if len(ts) == 0:
        return pd.DataFrame(np.empty((0, len(names))), index=candles.index, columns=names)
    o, h, lo, c, v = (candles[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close", "volume"))
    f: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        ema10, ema20, ema50 = talib.EMA(c, 10), talib.EMA(c, 20), talib.EMA(c, 50)
        sma5, sma10, sma20, sma50 = talib.SMA(c, 5), talib.SMA(c, 10), talib.SMA(c, 20), talib.SMA(c, 50)
        f["close_ema10"] = c / ema10 - 1.0
        f["close_ema20"] = c / ema20 - 1.0
        f["close_ema50"] = c / ema50 - 1.0
        f["ema20_ema50"] = ema20 / ema50 - 1.0
        f["sma5_sma20"] = sma5 / sma20 - 1.0
        f["sma10_sma50"] = sma10 / sma50 - 1.0

        rsi14 = talib.RSI(c, 14)
        f["rsi14"], f["rsi14_lag1"], f["rsi14_lag2"] = rsi14, _shift(rsi14, 1), _shift(rsi14, 2)
        f["rsi7"] = talib.RSI(c, 7)
        macd, signal, hist = talib.MACD(c, 12, 26, 9)
        f["macd"], f["macd_signal"], f["macd_hist"] = macd / c, signal / c, hist / c
        f["stoch_k"], f["stoch_d"] = talib.STOCH(h, lo, c, fastk_period=14, slowk_period=3, slowk_matype=0,
                                                 slowd_period=3, slowd_matype=0)
        f["willr14"] = talib.WILLR(h, lo, c, 14)
        f["cci20"] = talib.CCI(h, lo, c, 20)
        f["mfi14"] = talib.MFI(h, lo, c, v, 14)

        upper, middle, lower = talib.BBANDS(c, 20, 2.0, 2.0, 0)
        f["bb_pctb"] = (c - lower) / (upper - lower)
        f["bb_width"] = (upper - lower) / middle
        f["atr14_close"] = talib.ATR(h, lo, c, 14) / c
        f["natr24"] = talib.NATR(h, lo, c, 24) / 100.0
        f["adx14"] = talib.ADX(h, lo, c, 14)
        f["di_diff14"] = (talib.PLUS_DI(h, lo, c, 14) - talib.MINUS_DI(h, lo, c, 14)) / 100.0
        r1 = _logret(c, 1)
        std12, std48 = talib.STDDEV(r1, 12, 1.0), talib.STDDEV(r1, 48, 1.0)
        f["logret_std12"], f["logret_std48"] = std12, std48
        f["vol_ratio_12_48"] = std12 / std48
        f["hl_range"] = (h - lo) / c

        vsma5, vsma20 = talib.SMA(v, 5), talib.SMA(v, 20)
        f["volume_sma20"] = v / vsma20
        f["volume_sma5_sma20"] = vsma5 / vsma20
        obv = talib.OBV(c, v)
        f["obv_slope12"] = (obv - _shift(obv, 12)) / talib.SUM(v, 12)
        f["obv_slope48"] = (obv - _shift(obv, 48)) / talib.SUM(v, 48)

        f["logret1"] = r1
        for k in (3, 6, 12, 24):
            f[f"logret{k}"] = _logret(c, k)
        f["logret1_lag1"], f["logret1_lag2"] = _shift(r1, 1), _shift(r1, 2)

        hi48, lo48 = talib.MAX(h, 48), talib.MIN(lo, 48)
        f["dist_high48"] = c / hi48 - 1.0
        f["dist_low48"] = c / lo48 - 1.0
        f["range_pos48"] = (c - lo48) / (hi48 - lo48)

        f["body"] = c / o - 1.0
        f["upper_wick"] = (h - np.maximum(o, c)) / c
        f["lower_wick"] = (np.minimum(o, c) - lo) / c
        for p in CDL_PATTERNS:
            f[p[3:].lower()] = _pattern(p, o, h, lo, c)

        hour = (ts % _DAY_MS) / _HOUR_MS
        dow = ((ts // _DAY_MS) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        f["hour_sin"], f["hour_cos"] = np.sin(2 * np.pi * hour / 24.0), np.cos(2 * np.pi * hour / 24.0)
        f["dow_sin"], f["dow_cos"] = np.sin(2 * np.pi * dow / _WEEK_DAYS), np.cos(2 * np.pi * dow / _WEEK_DAYS)

        if funding is not None:
            tf = candles.attrs.get("timeframe") or infer_timeframe(ts, "<candles>")
            f.update(_funding_features(ts, timeframe_to_ms(tf), funding))

    assert list(f) == names, "feature order drifted from feature_names()"
    values = np.column_stack([f[name] for name in names])
    values[np.isinf(values)] = np.nan  # 0/0 or x/0 on degenerate input (flat prices, zero volume)
    out = pd.DataFrame(values, index=candles.index, columns=names, copy=False)
    return out


def compute_latest(candles_window: pd.DataFrame, funding: pd.DataFrame | None = None) -> pd.Series:
    """Features of the LAST candle of ``candles_window`` (float64 Series named by feature).

    For the live/paper loop: pass the trailing :data:`RECOMMENDED_WINDOW` closed candles;
    the result then equals the batch :func:`compute_features` row to ~1e-9. The Series name
    is the last candle's open timestamp. Raises DataError on an empty window.
    """
    if len(candles_window) == 0:
        raise DataError("<candles>: empty window")
    feats = compute_features(candles_window, funding)
    row = feats.iloc[-1]
    row.name = candles_window["timestamp"].iloc[-1]
    return row
