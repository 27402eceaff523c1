"""Tests of perpbot.ml: walk-forward splits, models, training, registry, metrics and signals.

End-to-end tests use the first 20,000 real SOLUSDT 5m candles with a small stand-in
feature frame (returns, rolling std, range, volume z-score) built here with pandas.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from perpbot.ml import registry
from perpbot.ml.labels import triple_barrier_labels
from perpbot.ml.metrics import model_metrics
from perpbot.ml.models import MODEL_NAMES, make_model
from perpbot.ml.registry import (
    ModelError,
    ModelMismatchError,
    features_hash,
    load_bundle,
    make_bundle,
    save_bundle,
)
from perpbot.ml.signals import confidence, proba_to_signal
from perpbot.ml.train import default_fold_sizes, walk_forward_train
from perpbot.ml.validation import purged_train_indices, walk_forward_splits

# Row-wise models: each row's probabilities come from that row alone. The sequence model
# ("lstm") predicts no row without seq_len - 1 predecessors; tests/test_lstm.py checks it.
ROW_MODELS = tuple(m for m in MODEL_NAMES if m != "lstm")

# ----------------------------------------------------------------------------- validation


def _r(a, b):
    return list(range(a, b))


def test_walk_forward_expanding_exact_indices():
    folds = walk_forward_splits(20, train_size=8, test_size=5, purge=2)
    assert [(f.test_start, f.test_end) for f in folds] == [(8, 13), (13, 18), (18, 20)]
    assert [f.test_idx.tolist() for f in folds] == [_r(8, 13), _r(13, 18), _r(18, 20)]
    # purge 2: the label of row i looks at bars i+1..i+2, so rows >= test_start - 2 are dropped
    assert [f.train_idx.tolist() for f in folds] == [_r(0, 6), _r(0, 11), _r(0, 16)]
    assert all(f.train_idx.dtype == np.int64 and f.test_idx.dtype == np.int64 for f in folds)


def test_walk_forward_rolling_start_and_embargo():
    folds = walk_forward_splits(20, train_size=8, test_size=5, purge=2, expanding=False)
    assert [f.train_idx.tolist() for f in folds] == [_r(0, 6), _r(5, 11), _r(10, 16)]
    folds = walk_forward_splits(20, train_size=8, test_size=4, purge=0, start=3, embargo=3)
    assert [(f.test_start, f.test_end) for f in folds] == [(11, 15), (15, 19), (19, 20)]
    # embargo never removes rows of a forward fold: training is strictly before the test window
    assert [f.train_idx.tolist() for f in folds] == [_r(3, 11), _r(3, 15), _r(3, 19)]
    # ... it does when training rows lie after the test window (purged k-fold style)
    kept = purged_train_indices(np.arange(20), 8, 13, purge=2, embargo=3)
    assert kept.tolist() == _r(0, 6) + _r(16, 20)


@pytest.mark.parametrize("kwargs, match", [
    (dict(train_size=2, purge=2), "must exceed purge"),
    (dict(n=10), "not enough rows"),
    (dict(test_size=0), "test_size"),
    (dict(purge=-1), "purge"),
])
def test_walk_forward_bad_input(kwargs, match):
    args = dict(n=20, train_size=10, test_size=5, purge=2)
    args.update(kwargs)
    n = args.pop("n")
    with pytest.raises(ValueError, match=match):
        walk_forward_splits(n, **args)


# ----------------------------------------------------------------------------- models

FAST = {
    "logreg": None,
    "random_forest": {"n_estimators": 20, "max_depth": 5},
    "xgboost": {"n_estimators": 20},
    "lightgbm": {"n_estimators": 20},
    "ensemble": {"random_forest": {"n_estimators": 10, "max_depth": 4}, "xgboost": {"n_estimators": 10},
                 "lightgbm": {"n_estimators": 10}},
}


def test_unknown_model_name_lists_valid_names():
    with pytest.raises(ValueError, match="valid names: logreg, random_forest, xgboost, lightgbm, ensemble"):
        make_model("svm")
    with pytest.raises(ValueError, match="bad parameters for model 'random_forest'"):
        make_model("random_forest", {"no_such_param": 1})
    with pytest.raises(ValueError, match="keyed by member name"):
        make_model("ensemble", {"svm": {}})


@pytest.mark.parametrize("name", ROW_MODELS)
def test_model_column_order_and_missing_classes(name):
    rng = np.random.default_rng(1)
    y = rng.choice([-1.0, 0.0, 1.0], 3000)
    X = np.c_[y * 3 + rng.normal(0, 0.3, 3000), rng.normal(size=3000)]
    probe = np.array([[-3.0, 0.0], [0.0, 0.0], [3.0, 0.0]])  # one clear row per class
    p = make_model(name, n_jobs=1).fit(X, y).predict_proba(probe)
    assert p.shape == (3, 3) and p.dtype == np.float64
    np.testing.assert_array_equal(np.argmax(p, axis=1), [0, 1, 2])  # columns (p_down, p_flat, p_up)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    y2 = np.where(y == 0, 1.0, y)  # no flat label in the window
    p2 = make_model(name, n_jobs=1).fit(X, y2).predict_proba(probe)
    assert (p2[:, 1] == 0).all() and p2[0, 0] > p2[0, 2] and p2[2, 2] > p2[2, 0]
    p3 = make_model(name, n_jobs=1).fit(X, np.full(3000, -1.0)).predict_proba(probe)
    np.testing.assert_array_equal(p3, np.tile([1.0, 0.0, 0.0], (3, 1)))


def test_model_rejects_bad_labels():
    with pytest.raises(ValueError, match="labels must be -1, 0 or \\+1"):
        make_model("logreg").fit(np.ones((3, 1)), np.array([1.0, 2.0, np.nan]))


# ----------------------------------------------------------------------------- signals and metrics


def test_proba_to_signal_and_confidence():
    p = np.array([[0.1, 0.2, 0.7], [0.65, 0.05, 0.3], [0.3, 0.4, 0.3], [0.45, 0.1, 0.45],
                  [0.6, 0.0, 0.4], [np.nan] * 3, [0.0, 0.4, 0.6]])
    np.testing.assert_array_equal(proba_to_signal(p, 0.6), [1, -1, 0, 0, -1, 0, 1])
    np.testing.assert_array_equal(proba_to_signal(p, 0.45), [1, -1, 0, 0, -1, 0, 1])
    np.testing.assert_array_equal(proba_to_signal(p, 0.65), [1, -1, 0, 0, 0, 0, 0])
    assert proba_to_signal(p).dtype == np.int8
    np.testing.assert_array_equal(confidence(p), [0.7, 0.65, 0.3, 0.45, 0.6, np.nan, 0.6])
    with pytest.raises(ValueError, match="shape"):
        proba_to_signal(np.ones((2, 2)))
    with pytest.raises(ValueError, match="threshold"):
        proba_to_signal(p, 1.5)


def test_model_metrics_by_hand():
    y = np.array([1, -1, 0, 1, np.nan, 1])
    p = np.array([[0.1, 0.2, 0.7], [0.5, 0.1, 0.4], [0.3, 0.4, 0.3], [0.6, 0.1, 0.3],
                  [0.2, 0.3, 0.5], [np.nan] * 3])
    m = model_metrics(y, p, threshold=0.6)
    assert m["n"] == 4 and (m["class_share_down"], m["class_share_flat"], m["class_share_up"]) == (.25, .25, .5)
    assert m["accuracy"] == 0.75 and m["accuracy_base"] == 0.5          # rows 0,1,2 right, 3 wrong
    assert m["n_directional"] == 3
    assert m["directional_accuracy"] == pytest.approx(2 / 3) and m["directional_accuracy_base"] == pytest.approx(2 / 3)
    assert m["n_calls"] == 2 and m["call_rate"] == 0.5                  # row 0 long (right), row 3 short (wrong)
    assert m["precision"] == 0.5 and m["precision_base"] == 0.5
    # Brier: row sums 0.14, 0.42, 0.54, 0.86 -> mean 0.49; base 1 - (0.25^2 + 0.25^2 + 0.5^2) = 0.625
    assert m["brier"] == pytest.approx(0.49, abs=1e-12) and m["brier_base"] == pytest.approx(0.625, abs=1e-12)
    ll = -(math.log(0.7) + math.log(0.5) + math.log(0.4) + math.log(0.3)) / 4
    ll_base = -(2 * math.log(0.5) + 2 * math.log(0.25)) / 4
    assert m["log_loss"] == pytest.approx(ll, abs=1e-12) and m["log_loss_base"] == pytest.approx(ll_base, abs=1e-12)


def test_model_metrics_edge_cases():
    # row 0: p_up == p_down -> no direction (wrong); row 1: p_down > p_up -> -1 (right)
    m = model_metrics(np.array([1.0, -1.0]), np.array([[0.3, 0.4, 0.3], [0.4, 0.5, 0.1]]), threshold=0.6)
    assert m["n_calls"] == 0 and math.isnan(m["precision"]) and m["directional_accuracy"] == 0.5
    empty = model_metrics(np.array([np.nan]), np.array([[0.2, 0.3, 0.5]]))
    assert empty["n"] == 0 and math.isnan(empty["accuracy"]) and math.isnan(empty["log_loss"])
    with pytest.raises(ValueError, match="shape"):
        model_metrics(np.ones(3), np.ones((2, 3)) / 3)


# ----------------------------------------------------------------------------- end to end on real data

N_ROWS, TRAIN, TEST, HORIZON, BARRIER = 20_000, 8_000, 4_000, 24, 0.006


def _stand_in(df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    c = df["close"]
    lr = np.log(c).diff()
    X = pd.DataFrame({
        "ret_1": lr, "ret_3": np.log(c).diff(3), "ret_12": np.log(c).diff(12), "ret_48": np.log(c).diff(48),
        "std_12": lr.rolling(12).std(), "std_48": lr.rolling(48).std(), "range": (df["high"] - df["low"]) / c,
        "vz": (df["volume"] - df["volume"].rolling(48).mean()) / df["volume"].rolling(48).std(),
        "dev_48": c / c.rolling(48).mean() - 1,
    }).astype(np.float64)
    y = triple_barrier_labels(df["high"], df["low"], c, BARRIER, BARRIER, HORIZON)
    return X, y


@pytest.fixture(scope="module")
def frame(sol5m):
    df = sol5m.iloc[:N_ROWS].reset_index(drop=True)
    X, y = _stand_in(df)
    return df, X, y


def _train(df, X, y, name, n_jobs=1, **kw):
    return walk_forward_train(X, y, df["timestamp"], model_name=name, params=FAST[name], train_size=TRAIN,
                              test_size=TEST, horizon=HORIZON, n_jobs=n_jobs, **kw)


@pytest.fixture(scope="module")
def results(frame):
    """Walk-forward results per model name, computed once per module on first use."""
    df, X, y = frame
    cache: dict = {}

    def get(name):
        if name not in cache:
            cache[name] = _train(df, X, y, name)
        return cache[name]

    return get


@pytest.fixture(scope="module", params=ROW_MODELS)
def trained(request, results):
    return request.param, results(request.param)


def test_oos_probabilities_cover_the_test_windows_and_sum_to_one(frame, trained):
    df, X, y = frame
    _, res = trained
    first = 48 + TRAIN  # features are NaN for the first 48 rows (warm-up); the first fold starts after
    assert np.isnan(X.iloc[47]).any() and np.isfinite(X.iloc[48]).all()
    assert [f.test_start_time for f in res.folds] == list(df["timestamp"].iloc[[first, first + TEST, first + 2 * TEST]])
    assert np.isnan(res.oos_proba[:first]).all()
    p = res.oos_proba[first:]
    assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    for a, b in zip(res.folds, res.folds[1:]):
        assert a.test_end_time == b.test_start_time
    assert res.folds[-1].test_end_time == res.data_end_time == df["timestamp"].iloc[-1] + pd.Timedelta("5min")
    # purge: fold 0 trains up to test_start - horizon - 1, so no training label saw a test-window price
    assert res.folds[0].train_end_time == df["timestamp"].iloc[first - HORIZON - 1]
    assert res.n_train_final == int((np.isfinite(X).all(axis=1) & np.isfinite(y)).sum())


def test_predictions_do_not_depend_on_later_rows(frame, trained):
    df, X, y = frame
    name, res = trained
    m = 48 + TRAIN + TEST  # end of the first test window: drop every row after it
    df_cut = df.iloc[:m]
    X_cut, y_cut = _stand_in(df_cut)  # labels recomputed without the later candles
    cut = _train(df_cut, X_cut, y_cut, name)
    assert len(cut.folds) == 1
    np.testing.assert_array_equal(cut.oos_proba, res.oos_proba[:m])


def test_bundle_roundtrip_and_feature_mismatch(frame, trained, tmp_path):
    df, X, y = frame
    name, res = trained
    ts = df["timestamp"]
    labels = {"take_profit": BARRIER, "stop_loss": BARRIER, "horizon": HORIZON, "barrier_mode": "fixed"}
    bundle = make_bundle(res, label_settings=labels, oos_metrics=model_metrics(y, res.oos_proba, 0.5))
    assert bundle.version.startswith(f"{name}-{features_hash(list(X.columns))[:8]}-")
    p = bundle.predict_proba(X, ts)
    np.testing.assert_array_equal(p, res.oos_proba)  # the registry rule reproduces the walk-forward OOS
    path = save_bundle(bundle, tmp_path / "models" / "m.joblib")
    loaded = load_bundle(path, expected_features_hash=bundle.features_hash)
    np.testing.assert_array_equal(loaded.predict_proba(X, ts), p)
    meta = json.loads((tmp_path / "models" / "m.joblib.json").read_text())
    assert meta["version"] == bundle.version and meta["label_settings"] == labels
    assert len(meta["folds"]) == len(res.folds) and meta["oos_metrics"]["n"] == int(np.isfinite(p).all(1).sum() - 24)
    # rows after the data end use the final model
    later = ts + (ts.iloc[-1] - ts.iloc[0] + pd.Timedelta("5min"))
    ok = np.isfinite(X).all(axis=1).to_numpy()
    expected = np.full((len(X), 3), np.nan)
    expected[ok] = res.final_model.predict_proba(X.to_numpy()[ok])
    np.testing.assert_array_equal(loaded.predict_proba(X, later), expected)
    # a different feature config is refused with both hashes and the differing names
    running = [c for c in X.columns if c != "vz"] + ["obv"]
    other = features_hash(running)
    with pytest.raises(ModelMismatchError) as err:
        load_bundle(path, expected_features_hash=other, expected_feature_names=running)
    msg = str(err.value)
    assert bundle.features_hash[:12] in msg and other[:12] in msg and "\n" not in msg
    assert "missing ['vz'], extra ['obv']" in msg and isinstance(err.value, ValueError)


def test_parallel_folds_match_sequential_and_report_progress(frame, results):
    df, X, y = frame
    name, res = "lightgbm", results("lightgbm")
    calls = []
    par = _train(df, X, y, name, n_jobs=2, progress=lambda done, total: calls.append((done, total)))
    np.testing.assert_array_equal(par.oos_proba, res.oos_proba)
    assert calls[0] == (0, 4) and calls[-1] == (4, 4) and len(calls) == 5


def test_nan_feature_rows_are_not_predicted_nor_trained(frame):
    df, X, y = frame
    X = X.copy()
    X.iloc[12_000:12_010, 2] = np.nan
    res = _train(df, X, y, "lightgbm")
    assert np.isnan(res.oos_proba[12_000:12_010]).all() and np.isfinite(res.oos_proba[12_010:]).all()
    assert res.n_train_final == int((np.isfinite(X).all(axis=1) & np.isfinite(y)).sum())


def test_walk_forward_train_bad_input(frame):
    df, X, y = frame
    ts = df["timestamp"]
    with pytest.raises(ValueError, match="tz-aware"):
        walk_forward_train(X, y, ts.dt.tz_localize(None), horizon=HORIZON)
    with pytest.raises(ValueError, match="y must have shape"):
        walk_forward_train(X, y[:-1], ts, horizon=HORIZON)
    with pytest.raises(ValueError, match="non-numeric"):
        walk_forward_train(X.assign(s="a"), y, ts, horizon=HORIZON)
    with pytest.raises(ValueError, match="not enough rows"):
        walk_forward_train(X.iloc[:500], y[:500], ts.iloc[:500], horizon=HORIZON)
    with pytest.raises(ValueError, match="strictly increasing"):
        walk_forward_train(X.iloc[::-1], y, ts.iloc[::-1], horizon=HORIZON)
    assert default_fold_sizes(pd.Timedelta("5min")) == (8640, 4032)


def test_load_errors_are_model_errors(tmp_path, results):
    res = results("logreg")
    with pytest.raises(ModelError, match="model file not found"):
        load_bundle(tmp_path / "nope.joblib")
    bad = tmp_path / "bad.joblib"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="corrupt or unreadable"):
        load_bundle(bad)
    bundle = make_bundle(res, label_settings={"take_profit": 1, "stop_loss": 1, "horizon": HORIZON,
                                              "barrier_mode": "atr"})
    good = save_bundle(bundle, tmp_path / "good.joblib")
    half = tmp_path / "half.joblib"
    half.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ModelError, match="corrupt or unreadable"):
        load_bundle(half)
    import joblib
    joblib.dump({"not": "a bundle"}, tmp_path / "dict.joblib")
    with pytest.raises(ModelError, match="does not hold a perpbot ModelBundle"):
        load_bundle(tmp_path / "dict.joblib")
    with pytest.raises(ValueError, match="horizon"):
        make_bundle(res, label_settings={"take_profit": 1, "stop_loss": 1, "horizon": 5, "barrier_mode": "x"})


def test_save_is_atomic(tmp_path, results, monkeypatch):
    res = results("logreg")
    bundle = make_bundle(res, label_settings={"take_profit": 0.01, "stop_loss": 0.01, "horizon": HORIZON,
                                              "barrier_mode": "fixed"})
    path = save_bundle(bundle, tmp_path / "m.joblib")
    before = path.read_bytes()

    def crash(obj, fh, **kw):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(registry.joblib, "dump", crash)
    with pytest.raises(OSError, match="disk full"):
        save_bundle(bundle, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.joblib", "m.joblib.json"]


def test_model_hyperparameters_come_from_the_settings(tmp_path, sol5m, sol_funding_path, sol_mark8h_path):
    """``model_params`` (TOML table / PERPBOT_MODEL_PARAMS JSON) reach the model and its saved metadata;
    a parameter the model does not take is one error line (exit 2), before any work."""
    import json

    from _cli_helpers import error_lines, perpbot

    sol5m.iloc[:6_000].to_parquet(tmp_path / "candles.parquet")
    (tmp_path / "perpbot.toml").write_text(
        f'candles_file = "{tmp_path / "candles.parquet"}"\nfunding_file = "{sol_funding_path}"\n'
        f'mark_file = "{sol_mark8h_path}"\nmodel = "logreg"\ntrain_days = 5\ntest_days = 5\noutput_dir = "out"\n'
        'model_params = {C = 0.25}\n')
    r = perpbot(["train"], tmp_path)
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "out" / "models" / "logreg.joblib.json").read_text())
    assert meta["params"]["C"] == 0.25
    r = perpbot(["train"], tmp_path, env={"PERPBOT_MODEL_PARAMS": '{"num_leaves": 31}'})
    assert r.returncode == 2 and len(error_lines(r)) == 1 and "num_leaves" in error_lines(r)[0], r.stderr
    assert error_lines(r)[0].startswith("error: model_params: ")
