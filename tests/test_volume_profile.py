"""Volume profile and ATR(1m): hand-worked numbers, and real 1m candles against independent
computations (numpy.histogram for the profile, TA-Lib for the ATR)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from perpbot.features.true_range import atr_wilder, true_range, true_range_one
from perpbot.features.volume_profile import volume_profile

# Ten candles, 5 buckets over [10, 20] -> width 2, edges 10, 12, 14, 16, 18, 20.
CLOSE = [10.0, 11.0, 12.5, 13.9, 14.0, 15.5, 16.2, 17.0, 18.0, 20.0]
VOLUME = [5.0, 10.0, 2.0, 3.0, 20.0, 15.0, 4.0, 1.0, 8.0, 12.0]


def test_volume_profile_hand_worked():
    vp = volume_profile(CLOSE, VOLUME, n_buckets=5, value_area=0.70)
    # buckets: [10,12): 5+10=15; [12,14): 2+3=5; [14,16): 20+15=35; [16,18): 4+1=5; [18,20]: 8+12=20 (20.0 is the
    # maximum close, so it falls in the last bucket). Total 80, mean per bucket 16.
    assert list(vp.edges) == [10.0, 12.0, 14.0, 16.0, 18.0, 20.0]
    assert list(vp.volume) == [15.0, 5.0, 35.0, 5.0, 20.0]
    # POC: bucket [14,16) with 35 -> midpoint 15.0
    assert vp.poc_index == 2 and vp.poc == 15.0
    # value area 70 % of 80 = 56: start 35; pair above 5+20=25 >= pair below 5+15=20 -> add above: 60 >= 56, stop.
    assert (vp.va_low_index, vp.va_high_index) == (2, 4)
    assert vp.value_area_low == 14.0 and vp.value_area_high == 20.0
    assert vp.value_area_volume_share == pytest.approx(60 / 80)
    # range % = (20 - 14) / 15 * 100 = 40
    assert vp.value_area_range_pct == pytest.approx(40.0)
    # HVN >= 1.5 x 16 = 24 and a peak: only 35 (the 20 at the top is a peak but below 24)
    assert vp.hvn == (15.0,)
    # LVN <= 0.5 x 16 = 8, interior trough: [12,14) (5 < 15, 5 <= 35) and [16,18) (5 < 35, 5 <= 20); tie -> by price
    assert vp.lvn == (13.0, 17.0)
    # with hvn_mult 1.0 (>= 16) the top peak of 20 counts too; listed by volume, largest first
    assert volume_profile(CLOSE, VOLUME, 5, 0.70, hvn_mult=1.0).hvn == (15.0, 19.0)


def test_value_area_grows_to_the_edge_then_the_other_side():
    # 90 % of 80 = 72: 35 -> +25 above (60, top edge reached) -> +20 below (80): whole range
    vp = volume_profile(CLOSE, VOLUME, n_buckets=5, value_area=0.90)
    assert (vp.va_low_index, vp.va_high_index) == (0, 4)
    assert vp.value_area_range_pct == pytest.approx((20 - 10) / 15 * 100)


def test_value_area_takes_the_larger_pair_below():
    # closes 1..5 over 5 buckets of width 0.8 (edges 1, 1.8, 2.6, 3.4, 4.2, 5): one close per bucket.
    # volumes 30, 25, 40, 3, 2 (total 100, 70 % = 70): POC 40 at 3.0; above 3+2=5 < below 25+30=55 -> add below: 95.
    vp = volume_profile([1, 2, 3, 4, 5], [30, 25, 40, 3, 2], n_buckets=5)
    assert vp.poc == pytest.approx(3.0)
    assert (vp.va_low_index, vp.va_high_index) == (0, 2)
    assert vp.value_area_low == pytest.approx(1.0) and vp.value_area_high == pytest.approx(3.4)
    assert vp.value_area_range_pct == pytest.approx((3.4 - 1.0) / 3.0 * 100)


def test_volume_profile_degenerate_and_bad_inputs():
    flat = volume_profile([100.0, 100.0], [1.0, 2.0], n_buckets=10)
    assert flat.n_buckets == 1 and flat.poc == 100.0 and flat.value_area_range_pct == 0.0
    for close, vol, msg in [([], [], "no candles"), ([1.0, np.nan], [1, 1], "NaN"), ([1.0, 0.0], [1, 1], "> 0"),
                            ([1.0, 2.0], [1, -1], ">= 0"), ([1.0, 2.0], [0, 0], "positive total"),
                            ([1.0], [1, 2], "equal length")]:
        with pytest.raises(ValueError, match=msg):
            volume_profile(close, vol)
    with pytest.raises(ValueError, match="value_area"):
        volume_profile([1, 2], [1, 1], value_area=0)


# Six candles (high, low, close); true ranges from the 2nd candle:
#   2: max(11.0-10.2=0.8, |11.0-10.0|=1.0, |10.2-10.0|=0.2) = 1.0
#   3: max(10.9-10.1=0.8, |10.9-10.8|=0.1, |10.1-10.8|=0.7) = 0.8
#   4: max(10.6-9.4=1.2,  |10.6-10.3|=0.3, |9.4-10.3|=0.9)  = 1.2
#   5: max(11.2-10.0=1.2, |11.2-9.8|=1.4,  |10.0-9.8|=0.2)  = 1.4
#   6: max(11.1-10.9=0.2, |11.1-11.0|=0.1, |10.9-11.0|=0.1) = 0.2
# ATR(3): seed (1.0+0.8+1.2)/3 = 1.0; then (1.0*2+1.4)/3 = 17/15; then (34/15+0.2)/3 = 37/45.
HIGH = [10.5, 11.0, 10.9, 10.6, 11.2, 11.1]
LOW = [9.5, 10.2, 10.1, 9.4, 10.0, 10.9]
CLOSE6 = [10.0, 10.8, 10.3, 9.8, 11.0, 11.0]


def test_true_range_and_wilder_atr_hand_worked():
    tr = true_range(HIGH, LOW, CLOSE6)
    assert tr == pytest.approx([1.0, 1.0, 0.8, 1.2, 1.4, 0.2])   # element 0: high - low
    assert true_range_one(11.2, 10.0, 9.8) == pytest.approx(1.4)
    assert true_range_one(10.5, 9.5, None) == pytest.approx(1.0)
    assert atr_wilder(tr[1:4], 3) == pytest.approx(1.0)
    assert atr_wilder(tr[1:5], 3) == pytest.approx(17 / 15)
    assert atr_wilder(tr[1:], 3) == pytest.approx(37 / 45)
    # the same number from TA-Lib, an independent implementation
    h, lo, c = (np.array(x) for x in (HIGH, LOW, CLOSE6))
    assert talib.ATR(h, lo, c, timeperiod=3)[-1] == pytest.approx(37 / 45)
    with pytest.raises(ValueError, match="at least 3"):
        atr_wilder([1.0, 2.0], 3)
    with pytest.raises(ValueError, match="high below low"):
        true_range([1.0], [2.0], [1.5])


# ------------------------------------------------------------------------------ real data --
def _independent_profile(close: np.ndarray, volume: np.ndarray, n: int, share: float):
    """POC / value area / HVN / LVN written from scratch on numpy.histogram."""
    hist, edges = np.histogram(close, bins=n, range=(close.min(), close.max()), weights=volume)
    poc = int(np.argmax(hist))
    lo = hi = poc
    inside = hist[poc]
    while inside < share * hist.sum() and (lo, hi) != (0, n - 1):
        above = hist[hi + 1] + (hist[hi + 2] if hi + 2 < n else 0) if hi + 1 < n else -1.0
        below = hist[lo - 1] + (hist[lo - 2] if lo - 2 >= 0 else 0) if lo - 1 >= 0 else -1.0
        if above >= below:
            inside += above
            hi = min(hi + 2, n - 1)
        else:
            inside += below
            lo = max(lo - 2, 0)
    mean = hist.sum() / n
    padded = np.concatenate(([0.0], hist, [0.0]))
    hvn = [i for i in range(n) if padded[i + 1] > padded[i] and padded[i + 1] >= padded[i + 2]
           and hist[i] >= 1.5 * mean]
    lvn = [i for i in range(1, n - 1) if hist[i] < hist[i - 1] and hist[i] <= hist[i + 1] and hist[i] <= 0.5 * mean]
    mids = (edges[:-1] + edges[1:]) / 2
    return hist, mids[poc], (edges[lo], edges[hi + 1]), sorted(mids[hvn]), sorted(mids[lvn])


@pytest.mark.parametrize("start", [0, 20_000, 42_480])
def test_volume_profile_on_real_1m_candles_matches_numpy(sol1m_path, start):
    df = pd.read_parquet(sol1m_path).iloc[start:start + 720]
    close, volume = df["close"].to_numpy(), df["volume"].to_numpy()
    vp = volume_profile(close, volume, n_buckets=24, value_area=0.70)
    hist, poc, (val, vah), hvn, lvn = _independent_profile(close, volume, 24, 0.70)
    assert np.allclose(vp.volume, hist, rtol=0, atol=1e-6 * volume.sum())
    assert vp.poc == pytest.approx(poc)
    assert (vp.value_area_low, vp.value_area_high) == pytest.approx((val, vah))
    assert sorted(vp.hvn) == pytest.approx(hvn) and len(vp.hvn) >= 1
    assert sorted(vp.lvn) == pytest.approx(lvn)
    assert vp.value_area_volume_share >= 0.70


def test_atr_on_real_1m_candles_matches_talib(sol1m_path):
    df = pd.read_parquet(sol1m_path).iloc[5_000:5_720]
    h, lo, c = (df[k].to_numpy() for k in ("high", "low", "close"))
    assert atr_wilder(true_range(h, lo, c)[1:], 14) == pytest.approx(talib.ATR(h, lo, c, 14)[-1], rel=1e-12)
