"""Meta-labelling: per-side barrier outcomes and meta-labels on a hand-made price path, the
Donchian breakout rule, and the meta strategy trained and backtested on real data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from perpbot.ml.labels import side_outcomes, triple_barrier_labels
from perpbot.strategy.donchian import donchian_signals
from perpbot.strategy.meta import meta_frame, meta_labels

# t:      0      1      2      3      4      5      6      7
CLOSE = [100.0, 101.0, 99.5, 98.0, 98.4, 99.0, 100.0, 100.2]
HIGH = [100.2, 102.1, 101.2, 99.6, 98.9, 99.5, 100.3, 100.35]
LOW = [99.8, 100.5, 99.0, 97.9, 97.0, 98.1, 98.9, 99.8]
# primary rule: long at 0, short at 2, long at 3 and 4, short at 5
PRIMARY = np.array([1, 0, -1, 1, 1, -1, 0, 0])


def test_side_outcomes_and_meta_labels_by_hand():
    """TP 2 %, SL 1 %, horizon 3 bars.

    t=0 long, entry 100: TP 102, SL 99; bar 1 high 102.1 -> TP after 1 bar       -> take (+1)
    t=2 short, entry 99.5: TP 97.51, SL 100.495; bar 3 neither, bar 4 low 97.0
        -> TP after 2 bars                                                       -> take (+1)
    t=3 long, entry 98: TP 99.96, SL 97.02; bar 4 low 97.0 -> SL after 1 bar      -> skip (-1)
    t=4 long, entry 98.4: TP 100.368, SL 97.416; bars 5-7 touch neither (bar 7 high
        100.35): vertical barrier, return 100.2/98.4 - 1 = +1.83 %, still no TP   -> skip (-1)
    t=5 short: the horizon runs past the data                                    -> NaN
    """
    out = side_outcomes(HIGH, LOW, CLOSE, 0.02, 0.01, 3)
    np.testing.assert_array_equal(out.code[:5, 0], [1, -1, -1, -1, 0])   # long side
    # short side: t=0 SL 101 hit by bar 1; t=1 (entry 101) TP 98.98 reached by bar 3's low 97.9 (bar 2's
    # low 99.0 stays above); t=3 (entry 98) SL 98.98 hit by bar 5's high 99.5
    np.testing.assert_array_equal(out.code[:5, 1], [-1, 1, 1, -1, -1])
    assert out.ret[0, 0] == 0.02 and out.hold[0, 0] == 1
    assert out.ret[2, 1] == 0.02 and out.hold[2, 1] == 2
    assert out.ret[3, 0] == -0.01 and out.hold[3, 0] == 1
    assert out.ret[4, 0] == pytest.approx(100.2 / 98.4 - 1, abs=1e-15) and out.hold[4, 0] == 3
    assert out.ret[4, 1] == -0.01 and out.hold[4, 1] == 1                 # bar 5 high 99.5 >= 99.384
    assert np.isnan(out.code[5:]).all()
    np.testing.assert_array_equal(meta_labels(PRIMARY, out), [1, np.nan, 1, -1, -1, np.nan, np.nan, np.nan])
    # the 3-class label agrees: t=0 long wins (+1), t=2 short wins (-1)
    y = triple_barrier_labels(HIGH, LOW, CLOSE, 0.02, 0.01, 3)
    assert y[0] == 1 and y[2] == -1
    frame = meta_frame(pd.DataFrame({"f": np.arange(8.0)}), PRIMARY)
    np.testing.assert_array_equal(frame["primary_side"], [1, np.nan, -1, 1, 1, -1, np.nan, np.nan])
    with pytest.raises(ValueError, match="-1, 0 or \\+1"):
        meta_labels(np.array([2, 0, 0, 0, 0, 0, 0, 0]), out)


def test_side_outcomes_match_the_three_class_labels_on_real_data(c5):
    c = c5.iloc[:20_000]
    h, lo, cl = (c[k].to_numpy(np.float64) for k in ("high", "low", "close"))
    y = triple_barrier_labels(h, lo, cl, 0.02, 0.01, 48)
    out = side_outcomes(h, lo, cl, 0.02, 0.01, 48)
    ok = np.isfinite(y)
    assert ok.sum() == 20_000 - 48
    # with TP >= SL the label is +1 exactly when the long takes profit, -1 when the short does
    np.testing.assert_array_equal(out.code[ok, 0] == 1, y[ok] == 1)
    np.testing.assert_array_equal(out.code[ok, 1] == 1, y[ok] == -1)
    # and a flat label means both sides ended at their stop or the vertical barrier
    assert (out.code[ok][y[ok] == 0] <= 0).all()
    assert (out.code[ok, 0] == 0).sum() > 1000 and (out.code[ok, 0] == -1).sum() > 1000


def test_donchian_by_hand_and_on_real_data(c5):
    # period 3: t=3 upper max(100.2, 102.1, 101.2) = 102.1, lower min(99.8, 100.5, 99.0) = 99.0, close
    # 98.0 < 99.0 -> -1; t=6 upper max(99.6, 98.9, 99.5) = 99.6 < close 100.0 -> +1; others inside
    np.testing.assert_array_equal(donchian_signals(HIGH, LOW, CLOSE, 3), [0, 0, 0, -1, 0, 0, 1, 0])
    c = c5.iloc[:5000]
    sig = donchian_signals(c["high"], c["low"], c["close"], 20)
    upper = c["high"].rolling(20).max().shift(1)
    lower = c["low"].rolling(20).min().shift(1)
    expected = np.where(c["close"] > upper, 1, np.where(c["close"] < lower, -1, 0))
    np.testing.assert_array_equal(sig, expected)
    assert 100 < (sig != 0).sum() < 2500
    # causal: changing candles after t never changes the signal at t
    t = 3000
    c2 = c.copy()
    c2.loc[c2.index[t + 1:], ["high", "low", "close"]] *= 1.5
    np.testing.assert_array_equal(donchian_signals(c2["high"], c2["low"], c2["close"], 20)[: t + 1], sig[: t + 1])
    with pytest.raises(ValueError, match="period"):
        donchian_signals(HIGH, LOW, CLOSE, 1)


def test_meta_strategy_trains_saves_and_backtests(tmp_path, sol5m_path, sol_funding_path):
    from perpbot.app.jobs import backtest_job, load_model_for, model_file_for, train_job
    from perpbot.config import load_settings
    from perpbot.data.market import load_market
    from perpbot.ml.registry import ModelMismatchError

    s = load_settings(None, model="lightgbm", train_days=15, test_days=10, label_horizon=24, stop_loss=0.5,
                      take_profit=1.0, output_dir=tmp_path, candles_file=sol5m_path, funding_file=sol_funding_path,
                      mark_file=None, n_jobs=1)
    market = load_market(sol5m_path, "5m", funding_file=sol_funding_path).slice(0, 12_000)
    trained = train_job(s, market=market, strategy="meta:donchian")
    path = model_file_for(s, "meta:donchian")
    assert trained.path == path and path.name == "meta-donchian-lightgbm.joblib" and path.exists()
    b = trained.bundle
    assert b.strategy == "meta:donchian" and b.feature_names[-1] == "primary_side"
    assert b.decision["kind"] == "meta" and b.decision["primary"] == "donchian"
    assert set(b.calibration["reliability"]) == {"up"} and b.calibration["method"] == "isotonic"
    # meta-labels: only events carry labels; the shares are those of the model's metrics
    assert trained.model_metrics["class_share_flat"] == 0.0
    loaded = load_model_for(s, None, "meta:donchian")
    assert loaded.version == b.version
    with pytest.raises(ModelMismatchError):  # a donchian meta model is not an ema-cross one
        load_model_for(s, path, "meta:ema-cross")

    runs = backtest_job(s, ["meta:donchian", "donchian"], market=market, bundle=b).runs
    meta, primary = runs["meta:donchian"], runs["donchian"]
    # the meta strategy only ever trades on a side the primary rule proposed on that bar
    taken = meta.signal != 0
    assert (meta.signal[taken] == primary.signal[taken]).all()
    assert taken.sum() < (primary.signal != 0).sum()
    assert np.isfinite(meta.proba[primary.signal != 0][200:]).any()
    assert np.isnan(meta.proba[primary.signal == 0]).all()  # no prediction off the events
