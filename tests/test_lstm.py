"""Tests of the LSTM sequence model (perpbot.ml.lstm): causality, reproducibility, persistence,
early stopping on the inner validation slice, walk-forward, and the missing-torch message.

Real data: the first 6,000 SOLUSDT 5m candles, the project's feature set
(perpbot.features.build.compute_features, without funding) and triple-barrier labels
(+-0.6 %, 24 bars). Trainings are short (tiny network, few samples per epoch).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pytest

from perpbot.features.build import compute_features
from perpbot.features.causality import lookahead_violations
from perpbot.ml.labels import triple_barrier_labels
from perpbot.ml.lstm import DEEP_EXTRA_MESSAGE, LSTMClassifier, sequence_ends
from perpbot.ml.models import make_model
from perpbot.ml.registry import load_bundle, make_bundle, save_bundle
from perpbot.ml.train import walk_forward_train

N_ROWS, HORIZON, BARRIER = 6_000, 24, 0.006
#: small and fast: ~0.5 s per fit on one thread
FAST = dict(seq_len=8, hidden_size=8, batch_size=128, samples_per_epoch=1024, max_epochs=6, patience=2,
            purge=HORIZON)


@pytest.fixture(scope="module")
def frame(c5):
    df = c5.iloc[:N_ROWS].reset_index(drop=True)
    X = compute_features(df)
    y = triple_barrier_labels(df["high"].to_numpy(np.float64), df["low"].to_numpy(np.float64),
                              df["close"].to_numpy(np.float64), BARRIER, BARRIER, HORIZON)
    return df, X, y


@pytest.fixture(scope="module")
def train_rows(frame):
    """The usable (finite features and label) rows of the first 3,000 candles: one block of consecutive bars."""
    _, X, y = frame
    ok = np.isfinite(X.to_numpy()).all(axis=1) & np.isfinite(y)
    rows = np.flatnonzero(ok[:3000])
    assert (np.diff(rows) == 1).all() and rows[0] < 300  # consecutive bars after the warm-up
    return rows


@pytest.fixture(scope="module")
def fitted(frame, train_rows):
    _, X, y = frame
    return make_model("lstm", FAST, n_jobs=1).fit(X.to_numpy()[train_rows], y[train_rows])


# ----------------------------------------------------------------------------- sequences


def test_sequence_ends_by_hand():
    finite = np.array([True, True, False, True, True, True, True])
    # L = 3: t needs rows t-2..t inside the array and finite; row 2 spoils t = 2, 3, 4
    assert sequence_ends(finite, 3).tolist() == [5, 6]
    assert sequence_ends(finite, 1).tolist() == [0, 1, 3, 4, 5, 6]
    assert sequence_ends(finite, 2, lo=0, hi=5).tolist() == [1, 4]
    assert sequence_ends(finite, 8).tolist() == []


def test_predictions_are_causal_on_real_candles(frame, fitted):
    """Changing the candles after t never changes the probabilities at rows <= t."""
    df, _, _ = frame
    sub = df.iloc[3000:4500].reset_index(drop=True)

    def fn(d):
        return fitted.predict_proba(compute_features(d).to_numpy())

    base = fn(sub)
    assert np.isfinite(base[200:]).all()  # predictions exist, so the comparison is not NaN == NaN
    assert lookahead_violations(fn, sub, [100, 500, 1000, 1498]) == []

    def leaky(d):  # control: the sequence ending at t+1 predicts row t -> the checker must see it
        p = fn(d)
        return np.vstack([p[1:], p[-1:]])

    assert lookahead_violations(leaky, sub, [500]) == ["0", "1", "2"]


def test_probability_at_t_depends_on_its_sequence_only(frame, fitted):
    _, X, _ = frame
    F = X.to_numpy()[3000:4500]
    L = FAST["seq_len"]
    full = fitted.predict_proba(F)
    assert np.isnan(full[:L - 1]).all() and np.isfinite(full[L - 1:]).all()
    np.testing.assert_allclose(full[L - 1:].sum(axis=1), 1.0, atol=1e-12)
    # exactly the same from the L rows alone, whatever else is in X (live passes a short window)
    for t in (L - 1, 100, 777, 1499):
        np.testing.assert_array_equal(fitted.predict_proba(F[t - L + 1:t + 1])[-1], full[t])
        np.testing.assert_array_equal(fitted.predict_proba(F[:t + 1])[t], full[t])
    assert np.isnan(fitted.predict_proba(F[:L - 1])).all()  # one row short of a sequence
    # a non-finite row spoils exactly the L sequences that contain it
    G = F.copy()
    G[600, 3] = np.nan
    p = fitted.predict_proba(G)
    assert np.isnan(p[600:600 + L]).all()
    np.testing.assert_array_equal(p[:600], full[:600])
    np.testing.assert_array_equal(p[600 + L:], full[600 + L:])


def test_column_order_and_missing_classes():
    """Like the row-wise models (test_ml.py): columns (p_down, p_flat, p_up), a class absent from
    training gets probability 0, a single-class window predicts that class."""
    rng = np.random.default_rng(1)
    n = 3000
    y = rng.choice([-1.0, 0.0, 1.0], n)
    X = np.c_[y * 3 + rng.normal(0, 0.3, n), rng.normal(size=n)]
    L = FAST["seq_len"]
    # one clear last row per class, each after L - 1 neutral rows
    probe = np.vstack([np.vstack([np.zeros((L - 1, 2)), [[v, 0.0]]]) for v in (-3.0, 0.0, 3.0)])
    last = [L - 1, 2 * L - 1, 3 * L - 1]
    params = {**FAST, "samples_per_epoch": None, "learning_rate": 0.01}
    p = make_model("lstm", params, n_jobs=1).fit(X, y).predict_proba(probe)[last]
    assert p.shape == (3, 3) and p.dtype == np.float64
    np.testing.assert_array_equal(np.argmax(p, axis=1), [0, 1, 2])
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    y2 = np.where(y == 0, 1.0, y)  # no flat label
    p2 = make_model("lstm", params, n_jobs=1).fit(X, y2).predict_proba(probe)[last]
    assert (p2[:, 1] == 0).all() and p2[0, 0] > p2[0, 2] and p2[2, 2] > p2[2, 0]
    p3 = make_model("lstm", params, n_jobs=1).fit(X, np.full(n, -1.0)).predict_proba(probe)
    np.testing.assert_array_equal(p3, np.tile([1.0, 0.0, 0.0], (len(probe), 1)))


# ----------------------------------------------------------------------------- reproducibility, persistence


def test_two_fits_with_the_same_seed_give_identical_probabilities(frame, train_rows, fitted):
    _, X, y = frame
    F = X.to_numpy()
    again = make_model("lstm", FAST, n_jobs=1).fit(F[train_rows], y[train_rows])
    p, q = fitted.predict_proba(F[3000:4500]), again.predict_proba(F[3000:4500])
    np.testing.assert_array_equal(p, q)
    a, b = fitted.named_steps["clf"].estimator_, again.named_steps["clf"].estimator_
    assert a.history_ == b.history_
    other = make_model("lstm", FAST, n_jobs=1, random_state=7).fit(F[train_rows], y[train_rows])
    assert not np.array_equal(other.predict_proba(F[3000:4500]), p, equal_nan=True)  # the seed matters


def test_save_load_gives_identical_probabilities(frame, fitted, tmp_path):
    _, X, _ = frame
    F = X.to_numpy()[3000:4500]
    p = fitted.predict_proba(F)
    joblib.dump(fitted, tmp_path / "m.joblib", compress=3)
    loaded = joblib.load(tmp_path / "m.joblib")
    clf = loaded.named_steps["clf"].estimator_
    assert "_net" not in vars(clf)  # rebuilt from the stored weights, not unpickled
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in clf.state_.values())
    np.testing.assert_array_equal(loaded.predict_proba(F), p)


# ----------------------------------------------------------------------------- early stopping


def test_inner_validation_slice_bounds_by_hand(frame, train_rows, fitted):
    clf = fitted.named_steps["clf"].estimator_
    n = train_rows.size
    n_val = round(0.15 * n)
    assert clf.val_start_ == n - n_val                 # the last 15 % of the training rows
    assert clf.train_end_ == clf.val_start_ - HORIZON  # purge gap of one label horizon
    L = FAST["seq_len"]
    assert clf.n_train_sequences_ == clf.train_end_ - (L - 1)  # every row with L - 1 predecessors
    assert clf.n_val_sequences_ == n_val


def test_early_stopping_keeps_the_best_epoch(frame, train_rows):
    _, X, y = frame
    F, Y = X.to_numpy()[train_rows], y[train_rows]
    params = {**FAST, "learning_rate": 0.01, "max_epochs": 20, "patience": 3}
    model = make_model("lstm", params, n_jobs=1).fit(F, Y)
    clf = model.named_steps["clf"].estimator_
    val = [h["val_loss"] for h in clf.history_]
    assert [h["epoch"] for h in clf.history_] == list(range(1, clf.n_epochs_ + 1))
    assert clf.best_epoch_ == 1 + int(np.argmin(val))
    assert clf.n_epochs_ == clf.best_epoch_ + 3 < 20  # stopped 3 epochs after the best, before the cap
    assert all(v > val[clf.best_epoch_ - 1] for v in val[clf.best_epoch_:])
    # the kept weights are the best epoch's: the validation log loss recomputed from the fitted
    # model's probabilities equals the recorded best value
    rows = np.arange(clf.val_start_, F.shape[0])
    p = model.predict_proba(F)[rows]  # columns (p_down, p_flat, p_up)
    ll = -np.mean(np.log(p[np.arange(rows.size), Y[rows].astype(int) + 1]))
    assert ll == pytest.approx(val[clf.best_epoch_ - 1], rel=1e-6)
    assert not math.isclose(ll, val[-1], rel_tol=1e-6)  # ... not the last epoch's


def test_early_stopping_sees_only_the_inner_validation_slice(frame, train_rows, fitted):
    _, X, y = frame
    F, Y = X.to_numpy()[train_rows], y[train_rows].copy()
    ref = fitted.named_steps["clf"].estimator_
    p_ref = fitted.predict_proba(F)

    def refit(labels):
        m = make_model("lstm", FAST, n_jobs=1).fit(F, labels)
        return m, m.named_steps["clf"].estimator_

    def flipped(lo, hi):
        z = Y.copy()
        z[lo:hi] = np.where(z[lo:hi] == 1.0, -1.0, 1.0)
        return z

    # labels in the purge gap are used by nothing
    m, c = refit(flipped(ref.train_end_, ref.val_start_))
    assert c.history_ == ref.history_
    np.testing.assert_array_equal(m.predict_proba(F), p_ref)
    # labels in the validation slice change the validation losses, never the training steps
    m, c = refit(flipped(ref.val_start_, len(Y)))
    assert c.history_[0]["train_loss"] == ref.history_[0]["train_loss"]
    assert c.history_[0]["val_loss"] != ref.history_[0]["val_loss"]
    # control: labels of the training sequences do change the training
    m, c = refit(flipped(ref.train_end_ - 200, ref.train_end_))
    assert c.history_[0]["train_loss"] != ref.history_[0]["train_loss"]


# ----------------------------------------------------------------------------- walk-forward


WF = dict(model_name="lstm", params=FAST, train_size=2500, test_size=1500, horizon=HORIZON)


@pytest.fixture(scope="module")
def walk_forward(frame):
    df, X, y = frame
    return walk_forward_train(X, y, df["timestamp"], n_jobs=1, **WF)


def test_walk_forward_purged_folds_and_bundle_roundtrip(frame, walk_forward, tmp_path):
    df, X, y = frame
    ts = df["timestamp"]
    train, test, res = WF["train_size"], WF["test_size"], walk_forward
    start = int(np.argmax(np.isfinite(X.to_numpy()).all(axis=1)))
    L = FAST["seq_len"]
    assert len(res.folds) == math.ceil((N_ROWS - start - train) / test)
    for k, fold in enumerate(res.folds):
        t0 = start + train + k * test
        assert fold.test_start_time == ts.iloc[t0]
        assert fold.train_end_time == ts.iloc[t0 - HORIZON - 1]  # purged: no training label saw the test window
        clf = fold.model.named_steps["clf"].estimator_
        assert clf.val_start_ + round(0.15 * fold.n_train) == fold.n_train  # the slice is inside the training rows
        p = res.oos_proba[t0:t0 + test]
        assert np.isnan(p[:L - 1]).all()  # no history inside the test window yet
        assert np.isfinite(p[L - 1:]).all()
    assert np.isnan(res.oos_proba[:start + train]).all()
    labels = {"take_profit": BARRIER, "stop_loss": BARRIER, "horizon": HORIZON, "barrier_mode": "fixed"}
    bundle = make_bundle(res, label_settings=labels)
    np.testing.assert_array_equal(bundle.predict_proba(X, ts), res.oos_proba)
    loaded = load_bundle(save_bundle(bundle, tmp_path / "lstm.joblib"))
    np.testing.assert_array_equal(loaded.predict_proba(X, ts), res.oos_proba)
    assert loaded.model_name == "lstm" and loaded.params["seq_len"] == L


@pytest.mark.slow  # starting two worker processes that import torch: ~10 s on an idle machine
def test_parallel_walk_forward_matches_sequential(frame, walk_forward):
    """Fold fits in two worker processes give the same bits as in this process."""
    df, X, y = frame
    par = walk_forward_train(X, y, df["timestamp"], n_jobs=2, **WF)
    np.testing.assert_array_equal(par.oos_proba, walk_forward.oos_proba)
    assert np.isfinite(walk_forward.oos_proba).any()


def test_bad_parameters_and_too_few_rows():
    with pytest.raises(ValueError, match="bad parameters for model 'lstm'"):
        make_model("lstm", {"no_such_param": 1})
    X, y = np.zeros((100, 2)), np.r_[np.zeros(50), np.ones(50)]
    with pytest.raises(ValueError, match="seq_len must be an integer >= 1"):
        LSTMClassifier(seq_len=0).fit(X, y)
    with pytest.raises(ValueError, match="too few rows for the LSTM: 100 rows give 0 training"):
        LSTMClassifier(seq_len=8, purge=90).fit(X, y)
    with pytest.raises(ValueError, match="not fitted"):
        LSTMClassifier().predict_proba(X)


# ----------------------------------------------------------------------------- without torch

# As if torch were not installed: every ``import torch`` raises ModuleNotFoundError. (Putting
# None in sys.modules["torch"] is not that: scikit-learn's array-API helpers then find a
# "torch" entry and fail on it, before perpbot is reached.)
BLOCK_TORCH = """\
import importlib.abc, sys
class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, _NoTorch())
"""


def _run(code: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter where ``import torch`` fails (as without the extra)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERPBOT_") or k == "PERPBOT_DATA_DIR"}
    env.update(COLUMNS="200", PERPBOT_FUNDING="false")
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + textwrap.dedent(code), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_missing_torch_gives_one_clear_line(frame, fitted, tmp_path):
    joblib.dump(fitted, tmp_path / "m.joblib")
    n_features = frame[1].shape[1]
    out = _run("""
        import joblib, numpy as np
        import perpbot.ml.lstm  # imports without torch
        from perpbot.ml.models import make_model
        for call in (lambda: make_model("lstm"), lambda: perpbot.ml.lstm.LSTMClassifier().fit(np.ones((9, 1)), np.ones(9)),
                     lambda: joblib.load(sys.argv[1]).predict_proba(np.ones((9, int(sys.argv[2]))))):
            try:
                call()
            except ValueError as exc:  # also an ImportError
                print(type(exc).__name__, isinstance(exc, ImportError), exc)
        """, str(tmp_path / "m.joblib"), str(n_features))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"MissingExtraError True {DEEP_EXTRA_MESSAGE}"] * 3
    # the one wording of a missing extra (perpbot.extras.missing_extra_message)
    assert DEEP_EXTRA_MESSAGE == 'torch is not installed (needed for the lstm model): pip install "perpbot[deep]"'


def test_cli_train_without_torch_exits_1_with_the_message(c5, tmp_path):
    candles = tmp_path / "c.parquet"
    c5.iloc[:2000].to_parquet(candles)
    out = _run("""
        from perpbot.cli.main import app
        app(sys.argv[1:], prog_name="perpbot")
        """, "train", "--model", "lstm", "--candles", str(candles), cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    lines = [line.strip() for line in out.stderr.splitlines() if line.strip()]
    assert lines[-1] == f"error: {DEEP_EXTRA_MESSAGE}"  # after the progress bar, the one error line
    assert [line for line in lines if "error" in line] == lines[-1:]
    assert "Traceback" not in out.stderr + out.stdout
    assert not list(tmp_path.glob("**/*.joblib"))


def test_signal_engine_feeds_the_lstm_its_sequence(frame, walk_forward):
    """Paper and live decide from a trailing window: the LSTM gets its last seq_len rows there, so
    its probability at the window's last bar is the batch one (one row alone would be NaN: no trade)."""
    from perpbot.config import load_settings
    from perpbot.strategy.engine import SignalEngine, context_rows

    df, X, y = frame
    labels = {"take_profit": BARRIER, "stop_loss": BARRIER, "horizon": HORIZON, "barrier_mode": "fixed"}
    bundle = make_bundle(walk_forward, label_settings=labels)
    assert context_rows(bundle) == FAST["seq_len"]
    s = load_settings(None, decision="threshold", confidence_threshold=0.34, live_window=1000, funding=False)
    engine = SignalEngine(s, "ai", bundle=bundle)
    window = df.iloc[N_ROWS - 1000:N_ROWS]
    for row in window.itertuples(index=False):
        frame_ = engine.push(row.timestamp, row.open, row.high, row.low, row.close, row.volume)
    signal, proba = engine.decide(frame_)
    feats = compute_features(frame_)
    want = bundle.predict_proba(feats, frame_["timestamp"])[-1]
    assert np.isfinite(want).all()
    np.testing.assert_array_equal(proba, want)
    assert np.isnan(bundle.predict_proba(feats.iloc[[-1]], frame_["timestamp"].iloc[[-1]])).all()  # the old way
