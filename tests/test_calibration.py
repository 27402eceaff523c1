"""Calibration: the slice split, isotonic / sigmoid outputs worked by hand or independently,
the expected calibration error, and that the calibration slice never touches the test fold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.isotonic import IsotonicRegression

from perpbot.ml.calibration import (
    calibration_split, expected_calibration_error, fit_calibrated, reliability,
)


class Fixed(ClassifierMixin, BaseEstimator):
    """A 'fitted model' whose (p_down, p_flat, p_up) are column 0..2 of X (so outputs are chosen by hand)."""

    def __init__(self):
        self.classes_ = np.array([-1, 0, 1])

    def fit(self, X, y):  # pragma: no cover - frozen
        return self

    def predict_proba(self, X):
        return np.asarray(X, dtype=np.float64)[:, :3]

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def test_calibration_split_exact_rows():
    rows = np.r_[np.arange(0, 60), np.arange(70, 110)]       # 100 usable rows, a purged gap at 60..69
    fit, cal = calibration_split(rows, 0.2, purge=5)
    np.testing.assert_array_equal(cal, np.arange(90, 110))    # the last 20 rows
    np.testing.assert_array_equal(fit, np.r_[np.arange(0, 60), np.arange(70, 85)])  # i + 5 < 90
    fit0, cal0 = calibration_split(rows, 0.0, purge=5)
    np.testing.assert_array_equal(fit0, rows)
    assert cal0.size == 0
    with pytest.raises(ValueError, match="in \\[0, 1\\)"):
        calibration_split(rows, 1.0, 5)
    with pytest.raises(ValueError, match="no model-fit rows"):
        calibration_split(np.arange(10), 0.5, purge=10)


def test_isotonic_binary_is_pool_adjacent_violators_by_hand():
    # meta model: p_take q in {0.2, 0.4, 0.6, 0.8}, 25 rows each; observed take rates
    # 3/25, 13/25, 8/25, 23/25 = 0.12, 0.52, 0.32, 0.92 -> isotonic regression (pool adjacent
    # violators) pools the decreasing pair into (13 + 8) / 50 = 0.42:
    # calibrated p_take = 0.12, 0.42, 0.42, 0.92
    q = np.repeat([0.2, 0.4, 0.6, 0.8], 25)
    X = np.column_stack([1 - q, np.zeros_like(q), q])
    takes = [3, 13, 8, 23]
    y = np.concatenate([np.where(np.arange(25) < k, 1.0, -1.0) for k in takes])
    model = fit_calibrated(Fixed(), X, y, "isotonic", binary=True)
    out = model.predict_proba(X[[0, 25, 50, 75]])
    expected_take = np.array([3 / 25, (13 + 8) / 50, (13 + 8) / 50, 23 / 25])
    np.testing.assert_allclose(out[:, 2], expected_take, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out[:, 0], 1 - expected_take, rtol=0, atol=1e-12)
    assert (out[:, 1] == 0).all()


def test_sigmoid_binary_matches_platt_by_direct_minimisation():
    rng = np.random.default_rng(3)
    q = rng.uniform(0.05, 0.95, 400)
    y = np.where(rng.uniform(size=400) < 0.2 + 0.5 * q, 1.0, -1.0)
    X = np.column_stack([1 - q, np.zeros_like(q), q])
    model = fit_calibrated(Fixed(), X, y, "sigmoid", binary=True)
    # Platt (1999): P = 1 / (1 + exp(a f + b)), targets (N+ + 1)/(N+ + 2) and 1/(N- + 2)
    pos = y > 0
    t = np.where(pos, (pos.sum() + 1) / (pos.sum() + 2), 1 / ((~pos).sum() + 2))

    def loss(ab):
        z = ab[0] * q + ab[1]
        return np.sum(t * np.logaddexp(0, z) + (1 - t) * np.logaddexp(0, -z))

    a, b = minimize(loss, [0.0, 0.0], method="BFGS", options={"gtol": 1e-10}).x
    np.testing.assert_allclose(model.predict_proba(X)[:, 2], 1 / (1 + np.exp(a * q + b)), atol=1e-5)


def test_isotonic_three_classes_is_one_vs_rest_then_normalised():
    rng = np.random.default_rng(5)
    p = rng.dirichlet([2, 5, 2], 300)
    y = rng.choice([-1.0, 0.0, 1.0], 300, p=[0.2, 0.6, 0.2])
    model = fit_calibrated(Fixed(), p, y, "isotonic")
    manual = np.column_stack([IsotonicRegression(out_of_bounds="clip").fit(p[:, k], y == c).predict(p[:, k])
                              for k, c in enumerate((-1, 0, 1))])
    manual /= manual.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict_proba(p), manual, atol=1e-12)
    np.testing.assert_allclose(model.predict_proba(p).sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.predict_raw(p), p)


def test_too_small_or_single_class_slice_is_not_calibrated():
    p = np.tile([[0.2, 0.5, 0.3]], (40, 1))
    skipped = fit_calibrated(Fixed(), p, np.zeros(40), "isotonic")
    assert skipped.calibrator is None and "40 rows" in skipped.info["skipped"]
    rng = np.random.default_rng(0)
    two = fit_calibrated(Fixed(), np.tile([[0.2, 0.5, 0.3]], (100, 1)), rng.choice([-1.0, 1.0], 100), "isotonic")
    assert two.calibrator is None and "classes [-1, 1]" in two.info["skipped"]
    np.testing.assert_array_equal(skipped.predict_proba(p), p)
    with pytest.raises(ValueError, match="unknown calibration"):
        fit_calibrated(Fixed(), p, np.zeros(40), "platt")


def test_expected_calibration_error_by_hand():
    # 2 bins: [0, 0.5): p 0.1, 0.3 (mean 0.2), y 1, 0 (0.5); [0.5, 1]: p 0.75, 0.8 (0.775), y 1, 1
    # ECE = 2/4 * |0.5 - 0.2| + 2/4 * |1 - 0.775| = 0.15 + 0.1125 = 0.2625
    assert expected_calibration_error([1, 0, 1, 1], [0.1, 0.3, 0.75, 0.8], n_bins=2) == pytest.approx(0.2625, abs=1e-15)
    curve = reliability(np.array([1.0, -1.0, 1.0, 1.0, np.nan]),
                        np.array([[0.9, 0, 0.1], [0.7, 0, 0.3], [0.25, 0, 0.75], [0.2, 0, 0.8], [0.5, 0, 0.5]]),
                        n_bins=2, classes=("up",))["up"]
    assert curve["count"] == [2, 2] and curve["n"] == 4
    np.testing.assert_allclose(curve["prob_pred"], [0.2, 0.775])
    np.testing.assert_allclose(curve["prob_true"], [0.5, 1.0])
    assert curve["ece"] == pytest.approx(0.2625)
    assert expected_calibration_error([1, 1], [1.0, 1.0]) == 0.0  # perfect (single label)


@pytest.fixture(scope="module")
def real(c5):
    from perpbot.features.build import compute_features
    from perpbot.ml.labels import triple_barrier_labels

    c = c5.iloc[:9000].reset_index(drop=True)
    X = compute_features(c)
    y = triple_barrier_labels(c["high"], c["low"], c["close"], 0.006, 0.004, 24)
    return c, X, y


def _train(c, X, y):
    from perpbot.ml.train import walk_forward_train

    return walk_forward_train(X, y, c["timestamp"], model_name="lightgbm", train_size=3000, test_size=2000,
                              params={"n_estimators": 20, "min_child_samples": 100},
                              horizon=24, n_jobs=1, calibration="isotonic", calibration_fraction=0.25)


def test_calibration_slice_never_overlaps_the_test_fold(real):
    c, X, y = real
    wf = _train(c, X, y)
    bar = pd.Timedelta(minutes=5)
    assert len(wf.folds) == 3
    for f in wf.folds:
        assert f.n_calibration > 0
        assert f.fit_end_time + 24 * bar < f.calibration_start_time  # model fit purged from the slice
        assert f.train_end_time + 24 * bar < f.test_start_time       # slice (end of the window) purged from the test
        assert f.model.calibrator is not None
    assert np.isfinite(wf.extra["oos_proba_raw"][wf.oos_mask]).all()
    assert not np.allclose(wf.extra["oos_proba_raw"][wf.oos_mask], wf.oos_proba[wf.oos_mask])

    # relabel the second fold's test window: its (calibrated) probabilities do not move; a change
    # inside its calibration slice does move them (so the check can fail)
    f1 = wf.folds[1]
    ts = c["timestamp"]
    test = ((ts >= f1.test_start_time) & (ts < f1.test_end_time)).to_numpy()
    y2 = y.copy()
    y2[test & np.isfinite(y)] = -y2[test & np.isfinite(y)] + (y2[test & np.isfinite(y)] == 0)
    wf2 = _train(c, X, y2)
    np.testing.assert_array_equal(wf2.oos_proba[test], wf.oos_proba[test])
    cal = ((ts >= f1.calibration_start_time) & (ts <= f1.train_end_time)).to_numpy()
    y3 = y.copy()
    y3[cal] = 1.0
    wf3 = _train(c, X, y3)
    assert not np.allclose(wf3.oos_proba[test], wf.oos_proba[test])


def test_report_calibration_section_shows_the_out_of_sample_numbers():
    from perpbot.backtest.report_calibration import calibration_section, reliability_figure

    cal = {"method": "isotonic", "fraction": 0.2,
           "reliability": {"up": {"prob_pred": [0.2, 0.775], "prob_true": [0.5, 1.0], "count": [2, 2], "ece": 0.2625,
                                  "n": 4}},
           "reliability_uncalibrated": {"up": {"prob_pred": [0.3], "prob_true": [0.75], "count": [4], "ece": 0.45,
                                               "n": 4}}}
    html = calibration_section(cal)
    assert "<td>up</td><td>4</td><td>0.2625</td><td>0.4500</td>" in html and "last 20 %" in html
    fig = reliability_figure(cal)
    assert [t.name for t in fig.data] == ["perfect", "up (calibrated, ECE 0.2625)", "up (raw, ECE 0.4500)"]
    assert list(fig.data[1].y) == [0.5, 1.0]
    assert calibration_section(None) == "" and calibration_section({"method": "none"}) == ""
