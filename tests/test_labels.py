"""Tests of perpbot.ml.labels: triple-barrier labels on hand-built bars and on real SOLUSDT 5m data."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from perpbot.ml.labels import atr_barriers, label_horizon_end, triple_barrier_labels


def _bars(entry: float, bars: list[tuple[float, float]]):
    """Row 0 is the entry bar (close = entry); the following rows are (high, low) bars."""
    high = np.array([entry] + [h for h, _ in bars], dtype=np.float64)
    low = np.array([entry] + [lo for _, lo in bars], dtype=np.float64)
    close = np.array([entry] + [(h + lo) / 2 for h, lo in bars], dtype=np.float64)
    return high, low, close


def _label0(bars, tp, sl, horizon=3, entry=100.0) -> float:
    h, lo, c = _bars(entry, bars)
    out = triple_barrier_labels(h, lo, c, tp, sl, horizon)
    assert np.isnan(out[1:]).all()  # n = horizon + 1: only row 0 has a full window
    return out[0]


# entry 100, tp = sl = 2 %: long TP 102 / SL 98, short TP 98 / SL 102
def test_long_wins():
    assert _label0([(101.0, 99.5), (102.5, 100.0), (101.0, 100.0)], 0.02, 0.02) == 1.0


def test_short_wins():
    assert _label0([(100.5, 99.0), (100.0, 97.9), (99.0, 98.5)], 0.02, 0.02) == -1.0


def test_vertical_barrier_gives_flat():
    assert _label0([(101.0, 99.0), (101.9, 98.1), (100.5, 99.5)], 0.02, 0.02) == 0.0


def test_barrier_touched_exactly_counts():
    # tp = sl = 0.25 of 100 -> 125 / 75 exactly representable
    assert _label0([(110.0, 90.0), (125.0, 100.0), (100.0, 100.0)], 0.25, 0.25) == 1.0
    assert _label0([(110.0, 90.0), (100.0, 75.0), (100.0, 100.0)], 0.25, 0.25) == -1.0


def test_stop_first_when_one_bar_touches_both_barriers():
    # tp 1 %, sl 3 %: long TP 101 / SL 97, short TP 99 / SL 103.
    # bar 1 touches long TP and long SL -> long stopped; the short reaches its TP -> -1.
    assert _label0([(101.5, 96.5), (100.0, 100.0), (100.0, 100.0)], 0.01, 0.03) == -1.0
    # mirror: short touches both (high 103.5, low 98.5) -> stopped; long reaches 101 -> +1
    assert _label0([(103.5, 98.5), (100.0, 100.0), (100.0, 100.0)], 0.01, 0.03) == 1.0
    # symmetric barriers: a bar through both sides stops both -> 0
    assert _label0([(102.5, 97.5), (100.0, 100.0), (100.0, 100.0)], 0.02, 0.02) == 0.0


def test_both_sides_win_when_tp_below_sl():
    # tp 1 %, sl 3 %: long TP 101, short TP 99, stops at 97 / 103
    assert _label0([(101.2, 99.5), (100.0, 98.8), (100.0, 100.0)], 0.01, 0.03) == 1.0   # long TP first
    assert _label0([(100.5, 98.8), (101.2, 100.0), (100.0, 100.0)], 0.01, 0.03) == -1.0  # short TP first
    assert _label0([(101.2, 98.8), (100.0, 100.0), (100.0, 100.0)], 0.01, 0.03) == 0.0   # same bar -> 0


def test_stop_then_win_of_the_same_side_is_a_loss():
    # long stopped at bar 1 (low 97.9 <= 98), later high 103 must not revive it; short wins at bar 1.
    assert _label0([(100.0, 97.9), (103.0, 100.0), (100.0, 100.0)], 0.02, 0.02) == -1.0


def test_nan_tail_and_full_array_by_hand():
    close = np.array([100.0, 100.0, 101.0, 103.0, 102.0, 99.0, 98.0, 100.0])
    high = close + 0.5
    low = close - 0.5
    out = triple_barrier_labels(high, low, close, 0.02, 0.02, 2)
    # row 0: bars 1,2 highs 100.5, 101.5 < 102 ; lows 99.5, 100.5 > 98 -> 0
    # row 1: bars 2,3: high 103.5 >= 102 at bar 3 (short SL 102 hit too) -> +1
    # row 2 (101): long TP 103.02 / SL 98.98; bars 3,4 highs 103.5 -> +1
    # row 3 (103): long SL 100.94, short TP 100.94; bar 4 low 101.5, bar 5 low 98.5 -> -1
    # row 4 (102): short TP 99.96; bar 5 low 98.5 -> -1 (long SL 99.96 hit too)
    # row 5 (99): long TP 100.98, SL 97.02; bar 6 low 97.5, bar 7 high 100.5 -> 0
    np.testing.assert_array_equal(out[:6], [0.0, 1.0, 1.0, -1.0, -1.0, 0.0])
    assert np.isnan(out[6:]).all()


def test_per_bar_barriers_and_nan_barriers():
    close = np.full(6, 100.0)
    high = np.array([100, 101.5, 100, 100, 100, 100.0])
    low = np.full(6, 99.8)
    tp = np.array([0.01, 0.02, np.nan, 0.01, 0.01, 0.01])
    out = triple_barrier_labels(high, low, close, tp, 0.05, 1)
    # row 0: tp 1 % -> 101 <= 101.5 -> +1; row 1: 2 % never; row 2: NaN barrier -> NaN
    np.testing.assert_array_equal(out[:2], [1.0, 0.0])
    assert np.isnan(out[2]) and np.isnan(out[5])
    np.testing.assert_array_equal(out[3:5], [0.0, 0.0])


@pytest.mark.parametrize("kwargs, match", [
    (dict(horizon=0), "horizon"),
    (dict(take_profit=0.0), "take_profit"),
    (dict(stop_loss=1.5), "stop_loss"),
    (dict(take_profit=np.array([0.01, np.inf, 0.01, 0.01])), "infinite"),
    (dict(take_profit=np.array([0.01, 0.01])), "length 4"),
    (dict(high=np.ones(3)), "same length"),
    (dict(close=np.ones((2, 2))), "1-D"),
])
def test_bad_input_raises(kwargs, match):
    args = dict(high=np.ones(4) * 1.1, low=np.ones(4) * 0.9, close=np.ones(4), take_profit=0.01, stop_loss=0.01,
                horizon=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        triple_barrier_labels(**args)


def test_label_horizon_end_and_atr_barriers():
    np.testing.assert_array_equal(label_horizon_end(5, 2), [2, 3, 4, 4, 4])
    tp, sl = atr_barriers(np.array([1.0, np.nan]), np.array([100.0, 50.0]), 2.0, 1.0)
    np.testing.assert_allclose(tp, [0.02, np.nan])
    np.testing.assert_allclose(sl, [0.01, np.nan])
    with pytest.raises(ValueError, match="tp_mult"):
        atr_barriers(np.ones(2), np.ones(2), 0.0, 1.0)


def _slow_labels(high, low, close, tp, sl, horizon):
    """Independent re-implementation: first-touch bar index of each barrier, then compare."""
    n = len(close)
    tp = np.broadcast_to(tp, (n,))
    sl = np.broadcast_to(sl, (n,))
    out = np.full(n, np.nan)
    never = 10**9

    def first(cond):
        idx = np.flatnonzero(cond)
        return int(idx[0]) if idx.size else never

    for t in range(n - horizon):
        if not (np.isfinite(tp[t]) and np.isfinite(sl[t])):
            continue
        h = high[t + 1:t + horizon + 1]
        lo = low[t + 1:t + horizon + 1]
        c = close[t]
        long_tp, long_sl = first(h >= c * (1 + tp[t])), first(lo <= c * (1 - sl[t]))
        short_tp, short_sl = first(lo <= c * (1 - tp[t])), first(h >= c * (1 + sl[t]))
        long_win = long_tp < long_sl   # equal and finite = same bar = stop first
        short_win = short_tp < short_sl
        if long_win and short_win:
            out[t] = 1.0 if long_tp < short_tp else (-1.0 if short_tp < long_tp else 0.0)
        else:
            out[t] = 1.0 if long_win else (-1.0 if short_win else 0.0)
    return out


@pytest.fixture(scope="module")
def sol(sol5m):
    return (sol5m["high"].to_numpy(np.float64), sol5m["low"].to_numpy(np.float64),
            sol5m["close"].to_numpy(np.float64))


@pytest.mark.parametrize("tp, sl, horizon", [(0.01, 0.01, 48), (0.004, 0.012, 24), (0.015, 0.005, 12)])
def test_real_data_matches_slow_reference(sol, tp, sl, horizon):
    h, lo, c = (a[20_000:23_000] for a in sol)
    fast = triple_barrier_labels(h, lo, c, tp, sl, horizon)
    slow = _slow_labels(h, lo, c, tp, sl, horizon)
    np.testing.assert_array_equal(fast, slow)
    assert np.isnan(fast[-horizon:]).all() and np.isfinite(fast[:-horizon]).all()
    assert set(np.unique(fast[:-horizon])) == {-1.0, 0.0, 1.0}


def test_real_data_atr_barriers_match_slow_reference(sol):
    h, lo, c = (a[40_000:43_000] for a in sol)
    prev = np.r_[np.nan, c[:-1]]
    true_range = np.nanmax(np.vstack([h - lo, np.abs(h - prev), np.abs(lo - prev)]), axis=0)
    atr = pd.Series(true_range).rolling(14).mean().to_numpy()
    tp, sl = atr_barriers(atr, c, 1.0, 2.0)  # tp < sl: the both-win branch happens
    fast = triple_barrier_labels(h, lo, c, tp, sl, 36)
    slow = _slow_labels(h, lo, c, tp, sl, 36)
    np.testing.assert_array_equal(fast, slow)
    assert np.isnan(fast[:13]).all() and np.isfinite(fast[13:-36]).all()


def test_full_year_shape_and_tail(sol):
    h, lo, c = sol
    out = triple_barrier_labels(h, lo, c, 0.01, 0.01, 48)
    assert out.shape == (86_400,) and np.isnan(out[-48:]).all() and np.isfinite(out[49:-48]).all()
