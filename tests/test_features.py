"""Tests for perpbot.features on real SOLUSDT 5m data: exact values against independent
pandas/numpy re-computations, warm-up, causality (look-ahead and recursive) and speed."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from perpbot.data import validate_candles
from perpbot.features import (
    FEATURE_SET_VERSION,
    RECOMMENDED_WINDOW,
    WARMUP_BARS,
    compute_features,
    compute_latest,
    feature_names,
    features_hash,
    lookahead_violations,
    perturb_after,
    recursive_violations,
)


@pytest.fixture(scope="module")
def feats(c5, funding) -> pd.DataFrame:
    return compute_features(c5, funding)


# ---------------------------------------------------------------- shape and names

def test_shape_names_dtypes(c5, feats):
    names = feature_names()
    assert list(feats.columns) == names and len(set(names)) == len(names)
    assert 40 <= len(names) <= 60
    assert feature_names(with_funding=False) == names[:-2] and names[-2:] == ["funding_last", "funding_mean3"]
    assert feats.index.equals(c5.index) and len(feats) == 86_400
    assert (feats.dtypes == np.float64).all()
    assert not np.isinf(feats.to_numpy()).any()
    assert list(compute_features(c5.iloc[:500]).columns) == feature_names(with_funding=False)


def test_features_hash():
    names = feature_names()
    expected = hashlib.sha256("\n".join([FEATURE_SET_VERSION, *names]).encode()).hexdigest()[:16]
    assert features_hash(names) == expected and len(expected) == 16
    assert features_hash(names[:-1]) != expected
    assert features_hash(list(reversed(names))) != expected


def test_warmup_bars_is_tight(feats):
    nan_rows = feats.isna().any(axis=1).to_numpy()
    assert not nan_rows[WARMUP_BARS:].any()  # every feature defined from row WARMUP_BARS on
    assert nan_rows[WARMUP_BARS - 1]  # ... and not one row earlier
    assert feats.loc[WARMUP_BARS - 1, "close_ema50"] != feats.loc[WARMUP_BARS - 1, "close_ema50"]  # NaN: EMA(50)


# ---------------------------------------------------------------- exact values

def _rolling(x: np.ndarray, n: int, fn) -> np.ndarray:
    """fn over each trailing window of n values (exact per window, no running sums); NaN before."""
    out = np.full(len(x), np.nan)
    out[n - 1:] = fn(sliding_window_view(x, n), axis=1)
    return out


def _ema(x: np.ndarray, n: int) -> np.ndarray:
    """Textbook EMA seeded with the SMA of the first n values (TA-Lib's default)."""
    out = np.full_like(x, np.nan)
    a = 2.0 / (n + 1)
    out[n - 1] = x[:n].mean()
    for i in range(n, len(x)):
        out[i] = a * x[i] + (1 - a) * out[i - 1]
    return out


def _wilder_rsi(c: np.ndarray, n: int = 14) -> np.ndarray:
    """Wilder's RSI: first averages are simple means of n changes, then avg = (avg*(n-1) + x) / n."""
    d = np.diff(c)
    gain, loss = np.clip(d, 0, None), np.clip(-d, 0, None)
    out = np.full_like(c, np.nan)
    ag, al = gain[:n].mean(), loss[:n].mean()
    out[n] = 100 - 100 / (1 + ag / al)
    for i in range(n + 1, len(c)):
        ag = (ag * (n - 1) + gain[i - 1]) / n
        al = (al * (n - 1) + loss[i - 1]) / n
        out[i] = 100 - 100 / (1 + ag / al)
    return out


def _wilder_atr(h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: int = 14) -> np.ndarray:
    tr = np.maximum(h[1:], c[:-1]) - np.minimum(lo[1:], c[:-1])  # true range from bar 1 on
    out = np.full_like(c, np.nan)
    atr = tr[:n].mean()
    out[n] = atr
    for i in range(n + 1, len(c)):
        atr = (atr * (n - 1) + tr[i - 1]) / n
        out[i] = atr
    return out


def test_returns_and_rolling_vs_pandas(c5, feats):
    close = c5["close"]
    lr = np.log(close / close.shift(1))
    for k in (1, 3, 6, 12, 24):
        np.testing.assert_allclose(feats[f"logret{k}"], np.log(close / close.shift(k)), rtol=1e-12, err_msg=str(k))
    np.testing.assert_array_equal(feats["logret1_lag2"], lr.shift(2))
    for k in (12, 48):  # population std (ddof=0) of 1-bar log returns, two-pass per window
        np.testing.assert_allclose(feats[f"logret_std{k}"], _rolling(lr.to_numpy(), k, np.std), rtol=1e-8,
                                   err_msg=str(k))
    np.testing.assert_allclose(feats["sma5_sma20"], close.rolling(5).mean() / close.rolling(20).mean() - 1,
                               rtol=1e-8, atol=1e-13)
    np.testing.assert_allclose(feats["dist_high48"], close / c5["high"].rolling(48).max() - 1, rtol=1e-12)
    # Bollinger(20, 2): exact two-pass mean/std per window (pandas' rolling std is off by up to
    # 1.7e-8 in %b here; TA-Lib agrees with the two-pass value to 2e-11)
    mid, sd = _rolling(close.to_numpy(), 20, np.mean), _rolling(close.to_numpy(), 20, np.std)
    np.testing.assert_allclose(feats["bb_pctb"], (close - (mid - 2 * sd)) / (4 * sd), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(feats["bb_width"], 4 * sd / mid, rtol=1e-9)
    np.testing.assert_allclose(feats["volume_sma20"], c5["volume"] / c5["volume"].rolling(20).mean(), rtol=1e-9)
    signed = np.sign(close.diff()) * c5["volume"]
    obv12 = signed.rolling(12).sum() / c5["volume"].rolling(12).sum()
    np.testing.assert_allclose(feats["obv_slope12"][12:], obv12[12:], rtol=1e-6, atol=1e-9)


def test_recursive_indicators_vs_hand_implementations(c5, feats):
    n = 20_000  # hand loops are slow in Python; the first 20k rows suffice
    c, h, lo = (c5[k].to_numpy()[:n] for k in ("close", "high", "low"))
    f = feats.iloc[:n]
    np.testing.assert_allclose(f["close_ema20"], c / _ema(c, 20) - 1, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(f["ema20_ema50"], _ema(c, 20) / _ema(c, 50) - 1, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(f["rsi14"], _wilder_rsi(c, 14), rtol=1e-9)
    np.testing.assert_allclose(f["rsi14_lag1"][1:], _wilder_rsi(c, 14)[:-1], rtol=1e-9)
    np.testing.assert_allclose(f["atr14_close"], _wilder_atr(h, lo, c, 14) / c, rtol=1e-9)
    # TA-Lib aligns MACD's two EMAs to start together (the EMA(12) is seeded at row 14, not 11)
    fast = np.full_like(c, np.nan)
    fast[25:] = _ema(c[14:], 12)[11:]
    macd = fast - _ema(c, 26)
    np.testing.assert_allclose(f["macd"][33:], (macd / c)[33:], rtol=1e-9, atol=1e-15)


def test_calendar_candle_and_pattern_features(c5, feats):
    assert c5["timestamp"].iloc[0] == pd.Timestamp("2025-04-07", tz="UTC")  # a Monday, 00:00
    assert feats.loc[0, "dow_sin"] == 0.0 and feats.loc[0, "dow_cos"] == 1.0
    assert feats.loc[0, "hour_sin"] == 0.0 and feats.loc[0, "hour_cos"] == 1.0
    six = c5.index[(c5["timestamp"].dt.hour == 6) & (c5["timestamp"].dt.minute == 0)]
    assert len(six) == 300 and (feats.loc[six, "hour_sin"] == 1.0).all()
    r = c5.iloc[40]  # o=105.37 h=105.63 l=105.01 c=105.28
    assert feats.loc[40, "body"] == pytest.approx(105.28 / 105.37 - 1, rel=1e-12)
    assert feats.loc[40, "upper_wick"] == pytest.approx((105.63 - 105.37) / 105.28, rel=1e-12)
    assert feats.loc[40, "lower_wick"] == pytest.approx((105.28 - 105.01) / 105.28, rel=1e-12)
    assert r["close"] == 105.28
    for p in ("doji", "engulfing", "hammer", "shootingstar", "harami", "morningstar", "eveningstar", "marubozu"):
        vals = feats[p].iloc[WARMUP_BARS:]
        assert set(np.unique(vals)) <= {-1.0, 0.0, 1.0}, p
        assert (vals != 0).any(), p  # each pattern occurs somewhere in ten months of 5m data


def test_funding_features_known_at_close(c5, funding, feats):
    # settlement 2025-10-11 00:00 (rate -0.00302761): known at the close of the 23:55 candle, not before
    i = 53_855
    assert c5["timestamp"].iloc[i] == pd.Timestamp("2025-10-10 23:55", tz="UTC")
    assert feats.loc[i, "funding_last"] == -0.00302761
    assert feats.loc[i - 1, "funding_last"] == 3.06e-06  # 2025-10-10 16:00 settlement
    ev = funding[(funding["timestamp"] >= "2025-10-10 08:00") & (funding["timestamp"] <= "2025-10-11 00:00")]
    assert len(ev) == 3
    assert feats.loc[i, "funding_mean3"] == pytest.approx(ev["funding_rate"].mean(), rel=1e-12)
    # causal in the funding input too: dropping every event after candle t's close changes nothing up to t
    t = 40_000
    close_t = c5["timestamp"].iloc[t] + pd.Timedelta(minutes=5)
    cut = compute_features(c5.iloc[: t + 1], funding[funding["timestamp"] <= close_t])
    pd.testing.assert_frame_equal(cut, feats.iloc[: t + 1])


# ---------------------------------------------------------------- causality

def test_perturb_after_keeps_ohlc_valid_and_prefix(c5):
    sub = c5.iloc[:3000]
    out = perturb_after(sub, 1000, np.random.default_rng(1))
    validate_candles(out, "5m")  # still valid OHLC, no DataError
    pd.testing.assert_frame_equal(out.iloc[:1001], sub.iloc[:1001])
    for col in ("open", "high", "low", "close", "volume"):
        assert (out[col].iloc[1001:] != sub[col].iloc[1001:]).mean() > 0.9, col


def test_no_lookahead(c5, funding):
    sub = c5.iloc[:6000]
    fn = lambda d: compute_features(d, funding)  # noqa: E731
    assert lookahead_violations(fn, sub, [0, 30, WARMUP_BARS, 500, 2999, 5998]) == []


def test_lookahead_checker_catches_leaks(c5):
    sub = c5.iloc[:3000]

    def leaky(d: pd.DataFrame) -> pd.DataFrame:
        f = compute_features(d)
        f["next_close"] = d["close"].shift(-1) / d["close"] - 1  # tomorrow's return: a leak
        f["centered_sma"] = d["close"].rolling(5, center=True).mean()  # centred window: a leak
        return f

    assert lookahead_violations(leaky, sub, [100, 2000]) == ["next_close", "centered_sma"]
    # full-sample normalisation leaks too (a Series comes back as column "value")
    assert lookahead_violations(lambda d: (d["close"] - d["close"].mean()) / d["close"].std(), sub, [100]) == ["value"]
    assert lookahead_violations(lambda d: d["close"].to_numpy() * 2, sub, [100]) == []


def test_recursive_window_matches_batch(c5, funding, feats):
    t_idx = list(range(RECOMMENDED_WINDOW + WARMUP_BARS, len(c5), 1_439)) + [len(c5) - 1]
    assert len(t_idx) >= 55
    fn = lambda d: compute_features(d, funding)  # noqa: E731
    assert recursive_violations(fn, c5, RECOMMENDED_WINDOW, t_idx) == []
    # the window matters: 300 bars are too few for the slow recursive indicators (EMA(50), ADX, NATR)
    short = recursive_violations(fn, c5.iloc[:20_000], 300, range(2_000, 20_000, 500))
    assert {"close_ema50", "ema20_ema50", "adx14", "natr24"} <= set(short)
    assert "logret1" not in short and "sma5_sma20" not in short  # finite-window features are exact anyway


def test_compute_latest(c5, funding, feats):
    t = 70_000
    win = c5.iloc[t - RECOMMENDED_WINDOW + 1: t + 1]
    row = compute_latest(win, funding)
    assert row.name == c5["timestamp"].iloc[t]
    assert list(row.index) == feature_names() and row.dtype == np.float64
    pd.testing.assert_series_equal(row, compute_features(win, funding).iloc[-1], check_names=False)
    np.testing.assert_allclose(row.to_numpy(), feats.iloc[t].to_numpy(), rtol=1e-9, atol=1e-12)
