"""Baseline strategies (EMA cross, rule scoring) against independent pandas computations on real SOL 5m data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from perpbot.strategy import ema_cross_signals, rule_scores

WARM = 1000  # bars after which pandas' ewm seeding no longer differs from TA-Lib's (decay < 1e-15)


@pytest.fixture(scope="module")
def ohlc(sol5m) -> dict[str, np.ndarray]:
    return {k: sol5m[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close")}


def _ema_talib_style(close: np.ndarray, period: int) -> np.ndarray:
    """EMA seeded like TA-Lib: SMA of the first `period` closes, then pandas ewm(adjust=False)."""
    out = np.full(close.size, np.nan)
    s = pd.Series(close[period - 1:].copy())
    s.iloc[0] = close[:period].mean()
    out[period - 1:] = s.ewm(span=period, adjust=False).mean().to_numpy()
    return out


def _cross_bars(close: np.ndarray, fast: int, slow: int) -> tuple[set[int], set[int]]:
    d = _ema_talib_style(close, fast) - _ema_talib_style(close, slow)
    up = {t for t in range(1, close.size) if d[t] > 0 and d[t - 1] <= 0}
    down = {t for t in range(1, close.size) if d[t] < 0 and d[t - 1] >= 0}
    return up, down


# ---------------------------------------------------------------- EMA cross


@pytest.mark.parametrize(("fast", "slow"), [(20, 50), (9, 21)])
def test_ema_cross_matches_independent_pandas_on_real_data(ohlc, fast, slow):
    close = ohlc["close"]
    sig = ema_cross_signals(close, fast, slow)
    assert sig.dtype == np.int8 and sig.shape == close.shape
    up, down = _cross_bars(close, fast, slow)
    assert len(up) > 500 and len(down) > 500  # real data crosses often: the comparison is not vacuous
    assert set(np.flatnonzero(sig == 1)) == up
    assert set(np.flatnonzero(sig == -1)) == down
    # crosses alternate: never two ups without a down between them
    nz = sig[sig != 0]
    assert np.all(nz[1:] != nz[:-1])


def test_ema_cross_hand_example_and_warmup():
    # fast=2, slow=3: both EMAs are exactly 1.0 up to bar 3 (tie, d=0); bar 4: EMA2 = 1+2/3*4 = 3.667 >
    # EMA3 = 1+1/2*4 = 3 -> +1; bar 5: EMA2 = 3.667-2/3*3.667 = 1.222 < EMA3 = 3-1/2*3 = 1.5 -> -1.
    close = np.array([1.0, 1.0, 1.0, 1.0, 5.0, 0.0])
    assert ema_cross_signals(close, 2, 3).tolist() == [0, 0, 0, 0, 1, -1]
    # during warm-up (slow EMA NaN at t < slow - 1, no previous value at t = slow - 1) nothing fires
    rng = np.random.default_rng(0)
    noisy = 100 + np.cumsum(rng.normal(size=400))
    assert not ema_cross_signals(noisy, 5, 30)[:30].any()
    assert ema_cross_signals(np.array([1.0]), 2, 3).tolist() == [0]


def test_ema_cross_is_causal(ohlc):
    close = ohlc["close"][:20_000]
    full = ema_cross_signals(close)
    for t in (60, 5_000, 12_345):
        changed = close.copy()
        changed[t + 1:] *= np.linspace(0.7, 1.3, close.size - t - 1)
        other = ema_cross_signals(changed)
        assert np.array_equal(other[: t + 1], full[: t + 1])
        assert not np.array_equal(other, full)  # the change did reach later signals
        assert np.array_equal(ema_cross_signals(close[: t + 1]), full[: t + 1])  # trailing window == batch


def test_ema_cross_rejects_bad_input():
    close = np.linspace(100, 110, 100)
    with pytest.raises(ValueError, match="fast period"):
        ema_cross_signals(close, 50, 50)
    with pytest.raises(ValueError, match="fast period"):
        ema_cross_signals(close, 60, 50)
    with pytest.raises(ValueError, match=">= 2"):
        ema_cross_signals(close, 1, 5)
    with pytest.raises(ValueError, match="non-finite value at index 3"):
        ema_cross_signals(np.array([1.0, 2, 3, np.nan, 5]), 2, 3)
    with pytest.raises(ValueError, match="1-D"):
        ema_cross_signals(np.ones((5, 2)), 2, 3)


# ---------------------------------------------------------------- rule scoring


def _independent_scores(close: np.ndarray) -> np.ndarray:
    """Rule scores from pandas (Wilder RSI via ewm, MACD via ewm) and exact integer-cent arithmetic
    for the SMA and Bollinger rules (SOL closes have 2 decimals, so their ties are exact and occur)."""
    c = pd.Series(close)
    delta = c.diff()
    gain = delta.clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
    loss = (-delta.clip(upper=0)).ewm(alpha=1 / 14, adjust=False).mean()
    rsi = 100 * gain / (gain + loss)
    macd = c.ewm(span=12, adjust=False).mean() - c.ewm(span=26, adjust=False).mean()
    signal = macd.ewm(span=9, adjust=False).mean()
    cents = pd.Series(np.round(close * 100).astype(np.int64))
    # Bollinger(20, 2, population sd) in cents: with S = sum, Q = sum of squares of the window,
    # close > upper  <=>  20x - S > 0 and (20x - S)^2 > 4 (20 Q - S^2); close < lower mirrors it.
    s20 = cents.rolling(20).sum()
    q20 = (cents * cents).rolling(20).sum()
    dev = 20 * cents - s20
    outside = dev * dev > 4 * (20 * q20 - s20 * s20)
    ma_diff = 4 * cents.rolling(5).sum() - cents.rolling(20).sum()  # sign of SMA5 - SMA20, exact
    score = (
        np.where(rsi < 30, 1, 0) - np.where(rsi > 70, 1, 0)
        + np.sign(macd - signal).to_numpy()
        + np.where(outside & (dev < 0), 1, 0) - np.where(outside & (dev > 0), 1, 0)
        + np.sign(ma_diff).to_numpy()
    )
    return score


def test_rule_scores_match_independent_computation_on_real_data(ohlc):
    close = ohlc["close"]
    assert np.array_equal(np.round(close, 2), close)  # the exact-cent SMA check relies on it
    score, signal = rule_scores(ohlc["open"], ohlc["high"], ohlc["low"], close)
    assert score.dtype == np.int8 and signal.dtype == np.int8 and score.shape == close.shape
    expected = _independent_scores(close)
    assert np.array_equal(score[WARM:], expected[WARM:].astype(np.int8))
    # the comparison covers every score level and exact SMA5 == SMA20 ties (float noise must not vote)
    assert set(np.unique(score[WARM:])) >= {-3, -2, -1, 0, 1, 2, 3}
    cents = pd.Series(np.round(close * 100).astype(np.int64))
    ties = 4 * cents.rolling(5).sum() == cents.rolling(20).sum()
    assert ties[WARM:].sum() > 10
    # bar 52157 closes exactly ON the upper Bollinger band (228.01): no vote, although TA-Lib's float
    # band is 1.3e-12 below the close
    assert score[52157] == 2 and expected[52157] == 2
    # thresholds: default +-2
    assert np.array_equal(signal, np.where(score >= 2, 1, np.where(score <= -2, -1, 0)))


def test_rule_scores_spot_bars_and_warmup(ohlc):
    close = ohlc["close"]
    score, _ = rule_scores(ohlc["open"], ohlc["high"], ohlc["low"], close)
    expected = _independent_scores(close)
    for t in (1_000, 30_000, 86_399):
        assert score[t] == expected[t]
    # bars 0..3: every indicator is NaN -> score 0; bars 19..32: only Bollinger, SMAs and RSI exist
    assert not score[:4].any()
    assert np.abs(score[19:33]).max() <= 3


def test_rule_scores_thresholds_and_errors(ohlc):
    o, h, lo, c = (ohlc[k] for k in ("open", "high", "low", "close"))
    score, signal = rule_scores(o, h, lo, c, buy_threshold=3, sell_threshold=-1)
    assert np.array_equal(signal, np.where(score >= 3, 1, np.where(score <= -1, -1, 0)))
    assert (signal == 1).sum() > 0 and (signal == -1).sum() > 0
    with pytest.raises(ValueError, match="sell_threshold"):
        rule_scores(o, h, lo, c, buy_threshold=1, sell_threshold=1)
    with pytest.raises(ValueError, match="lengths differ"):
        rule_scores(o[:-1], h, lo, c)
    with pytest.raises(ValueError, match="close: non-finite"):
        rule_scores(o, h, lo, np.where(np.arange(c.size) == 7, np.nan, c))


def test_rule_scores_are_causal(ohlc):
    o, h, lo, c = (ohlc[k][:20_000].copy() for k in ("open", "high", "low", "close"))
    score, signal = rule_scores(o, h, lo, c)
    rng = np.random.default_rng(1)
    for t in (40, 4_000, 15_000):
        factor = np.ones(c.size)
        factor[t + 1:] = rng.uniform(0.9, 1.1, c.size - t - 1)
        s2, g2 = rule_scores(o * factor, h * factor, lo * factor, c * factor)
        assert np.array_equal(s2[: t + 1], score[: t + 1])
        assert np.array_equal(g2[: t + 1], signal[: t + 1])
        assert not np.array_equal(s2, score)
