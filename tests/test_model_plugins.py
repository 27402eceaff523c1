"""Models as plug-ins (issue 13, item 3): the cookbook's model (docs/COOKBOOK.md), saved in a file,
and a small ExtraTrees factory registered as a real entry point (a ``*.dist-info`` folder on
sys.path, found by importlib.metadata) are trained by the train job on real SOL candles; their
probabilities equal those of the same estimators fitted here by hand; the saved models load back
(also in a fresh process) with identical predictions and backtest; bad plug-ins are one line."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from joblib.externals.loky import get_reusable_executor
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.naive_bayes import GaussianNB
from sklearn.preprocessing import StandardScaler

from perpbot.app.jobs import backtest_job, dataset, train_job
from perpbot.config import BUILTIN_MODELS, ConfigError, load_settings
from perpbot.data.market import load_market
from perpbot.ml import model_plugins
from perpbot.ml.metadata import ModelError
from perpbot.ml.models import MODEL_NAMES, make_model
from perpbot.ml.registry import load_bundle
from perpbot.ml.train import feature_matrix
from _cli_helpers import error_lines, perpbot

COOKBOOK = Path(__file__).resolve().parents[1] / "docs" / "COOKBOOK.md"
BUILTINS = "logreg, random_forest, xgboost, lightgbm, ensemble, lstm"
TREES = ("from sklearn.ensemble import ExtraTreesClassifier\n\n\n"
         "class SmallTrees(ExtraTreesClassifier):\n"
         "    def __init__(self, n_estimators=25, max_depth=4, min_samples_leaf=50, random_state=0, n_jobs=1):\n"
         "        super().__init__(n_estimators=n_estimators, max_depth=max_depth, min_samples_leaf=min_samples_leaf,\n"
         "                         random_state=random_state, n_jobs=n_jobs)\n")


@pytest.fixture(scope="module")
def nb_file(tmp_path_factory) -> str:
    text = COOKBOOK.read_text().split("## Write your own model", 1)[1]
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert len(code.strip().splitlines()) <= 20  # "in 20 lines" (perpbot.ml.model_plugins)
    path = tmp_path_factory.mktemp("model_plugin") / "my_model.py"
    path.write_text(code)
    return str(path)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A folder holding an installed distribution with one ``perpbot.models`` entry point, on sys.path."""
    root = tmp_path_factory.mktemp("site")
    (root / "perpbot_test_trees.py").write_text(TREES)
    dist = root / "perpbot_test_trees-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: perpbot-test-trees\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[perpbot.models]\nsmall-trees = perpbot_test_trees:SmallTrees\n")
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    yield root
    sys.path.remove(str(root))
    sys.modules.pop("perpbot_test_trees", None)
    model_plugins._LOADED.pop("small-trees", None)


@pytest.fixture(scope="module")
def market(sol5m_path):
    return load_market(sol5m_path, "5m").slice(30_000, 36_000)


def _settings(tmp_path, model, **kw):
    return load_settings(None, model=model, funding=False, output_dir=tmp_path, warmup_bars=100, train_days=5,
                         test_days=5, calibration="none", importance_rows=0, **kw)


def _by_hand(clf, feats, fit_rows, y, probe):
    """StandardScaler + ``clf`` fitted on ``fit_rows`` (labels -1/0/+1 as codes 0/1/2), rows normalised
    to sum 1 (what perpbot.ml.models.ThreeClassClassifier does to every model's probabilities)."""
    scaler = StandardScaler().fit(feats[fit_rows])
    clf.fit(scaler.transform(feats[fit_rows]), (y[fit_rows] + 1).astype(np.int64))
    p = clf.predict_proba(scaler.transform(probe))
    return p / p.sum(axis=1, keepdims=True)


def _check_training(s, market, trained, make_clf):
    """The final model and the first fold's model equal ``make_clf()`` fitted by hand on their rows."""
    X, y, ts = dataset(s, market)
    feats, ok = feature_matrix(X)
    usable = ok & np.isfinite(y)
    assert set(np.unique(y[usable])) == {-1.0, 0.0, 1.0}
    b = trained.bundle
    final = b.final_model.predict_proba(feats[ok])
    assert b.walk_forward["n_train_final"] == usable.sum()
    np.testing.assert_array_equal(final, _by_hand(make_clf(), feats, usable, y, feats[ok]))
    fold = b.folds[0]
    fit = usable & (ts >= fold.train_start_time).to_numpy() & (ts <= fold.train_end_time).to_numpy()
    test = ok & (ts >= fold.test_start_time).to_numpy() & (ts < fold.test_end_time).to_numpy()
    assert fit.sum() == fold.n_train and test.sum() == fold.n_test > 1000
    oos = b.predict_proba(X, ts)
    np.testing.assert_array_equal(oos[test], _by_hand(make_clf(), feats, fit, y, feats[test]))
    first = int(np.argmax(ok))  # 5-day windows (1,440 bars) after the first row with features: 4 test windows
    assert len(b.folds) == int(np.ceil((len(X) - first - 1440) / 1440)) == 4
    assert np.isnan(oos[: int(np.argmax(test))]).all()  # before the first test window
    return X, ts, oos


def test_the_cookbook_model_trains_saves_reloads_and_backtests(nb_file, market, tmp_path):
    s = _settings(tmp_path, nb_file, model_params={"shrink": 0.3})
    assert s.model_file == tmp_path / "models" / "my_model.joblib"
    trained = train_job(s, market=market)
    assert trained.path == s.model_file

    def shrunk_nb():  # the cookbook's ShrunkNB(shrink=0.3), written out
        class Shrunk(GaussianNB):
            def predict_proba(self, X):
                return 0.7 * super().predict_proba(X) + 0.3 * self.class_prior_
        return Shrunk(var_smoothing=1e-9)

    X, ts, oos = _check_training(s, market, trained, shrunk_nb)
    meta = json.loads(Path(str(trained.path) + ".json").read_text())
    path = Path(nb_file).resolve()
    module = meta["model_plugin"]["module"]
    assert meta["model_name"] == nb_file and meta["params"] == {"shrink": 0.3, "var_smoothing": 1e-9}
    assert meta["model_plugin"] == {"ref": nb_file, "kind": "file", "path": str(path), "factory": "ShrunkNB",
                                    "module": module, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert meta["version"].startswith("my_model-")

    # loaded back in this process after forgetting the plug-in: its file is imported again
    del sys.modules[module]
    loaded = load_bundle(trained.path)
    assert module in sys.modules and type(loaded.final_model[-1].estimator_).__module__ == module
    np.testing.assert_array_equal(loaded.predict_proba(X, ts), oos)
    # ... and in a fresh process
    out = tmp_path / "fresh.npy"
    code = ("import sys, numpy as np, pandas as pd; from perpbot.ml.registry import load_bundle; "
            "b = load_bundle(sys.argv[1]); X = pd.read_parquet(sys.argv[2]); "
            "np.save(sys.argv[3], b.predict_proba(X, X.pop('ts')))")
    X.assign(ts=ts).to_parquet(tmp_path / "X.parquet")
    proc = subprocess.run([sys.executable, "-c", code, str(trained.path), str(tmp_path / "X.parquet"), str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(out), oos)

    # backtested: from the loaded model, and from the saved file (through the probability cache)
    for kw in ({"bundle": loaded}, {}):
        run = backtest_job(s, ["ai"], market=market, **kw).runs["ai"]
        np.testing.assert_array_equal(run.proba, oos)
        assert (run.signal != 0).sum() > 0 and len(run.result.trades) > 0

    # the file changed, or gone: refused in one line
    original = path.read_text()
    path.write_text(original + "\n# edited\n")
    new = hashlib.sha256(path.read_bytes()).hexdigest()
    assert model_plugins.plugin_record(nb_file)["sha256"] == new  # a new training uses the edited file ...
    assert model_plugins.plugin_record(nb_file)["module"] != module  # ... imported as a new module
    with pytest.raises(ModelError) as err:
        load_bundle(trained.path)
    assert str(err.value) == (f"model {trained.path}: its plug-in file {path} changed since the model was trained "
                              f"(SHA-256 {meta['model_plugin']['sha256'][:12]} -> {new[:12]}); retrain, or "
                              "restore the file")
    path.rename(path.with_suffix(".bak"))
    with pytest.raises(ModelError) as err:
        load_bundle(trained.path)
    assert str(err.value) == (f"model {trained.path} needs its plug-in file {path} (model {nb_file!r}), which is "
                              "missing; restore it or retrain")
    path.with_suffix(".bak").write_text(original)
    path.with_suffix(".bak").rename(path)
    assert load_bundle(trained.path).version == trained.bundle.version  # the file restored: loads again


def test_an_entry_point_plugin_trains_in_worker_processes_and_reloads(site, market, tmp_path):
    assert model_plugins.model_entry_points()["small-trees"].value == "perpbot_test_trees:SmallTrees"
    s = _settings(tmp_path, "small-trees", model_params={"n_estimators": 15}, n_jobs=2)
    get_reusable_executor().shutdown(wait=True)  # new workers start with this sys.path, as after an install
    trained = train_job(s, market=market)  # the folds fitted in two worker processes
    # random_state 42 (the training seed) reaches the factory, which names it; its own default is 0
    X, ts, oos = _check_training(s, market, trained, lambda: ExtraTreesClassifier(
        n_estimators=15, max_depth=4, min_samples_leaf=50, random_state=42, n_jobs=1))
    meta = json.loads(Path(str(trained.path) + ".json").read_text())
    assert trained.path == tmp_path / "models" / "small-trees.joblib"
    assert meta["model_plugin"] == {"ref": "small-trees", "kind": "entry_point",
                                    "value": "perpbot_test_trees:SmallTrees", "module": "perpbot_test_trees",
                                    "distribution": "perpbot-test-trees 0.1"}
    assert (meta["params"]["n_estimators"], meta["params"]["max_depth"]) == (15, 4)
    assert "random_state" not in meta["params"]
    sys.modules.pop("perpbot_test_trees")
    loaded = load_bundle(trained.path)
    assert type(loaded.final_model[-1].estimator_).__module__ == "perpbot_test_trees"
    np.testing.assert_array_equal(loaded.predict_proba(X, ts), oos)
    run = backtest_job(s, ["ai"], market=market, bundle=loaded).runs["ai"]
    np.testing.assert_array_equal(run.proba, oos)

    # the package uninstalled: the model says which plug-in it needs
    sys.path.remove(str(site))
    sys.modules.pop("perpbot_test_trees")
    importlib.invalidate_caches()
    try:
        with pytest.raises(ModelError) as err:
            load_bundle(trained.path)
    finally:
        sys.path.insert(0, str(site))
        importlib.invalidate_caches()
    assert str(err.value) == (f"model {trained.path} needs the model plug-in 'small-trees' "
                              "(perpbot_test_trees:SmallTrees, from perpbot-test-trees 0.1): module "
                              "perpbot_test_trees is not installed")


def test_unknown_models_and_broken_plugins_are_one_line(site, tmp_path):
    assert BUILTIN_MODELS == MODEL_NAMES and ", ".join(MODEL_NAMES) == BUILTINS
    listed = (f"valid names: {BUILTINS}; plug-ins (perpbot.models entry points): small-trees; "
              "or a model file FILE.py[:Factory]")
    with pytest.raises(ConfigError) as err:
        load_settings(None, model="small-treez")
    assert str(err.value) == (f"config error: model = 'small-treez' is invalid: unknown model 'small-treez' "
                              f"(did you mean 'small-trees'?); {listed} (PERPBOT_MODEL or 'model' in the config file)")
    with pytest.raises(ValueError) as err:
        make_model("svm")
    assert str(err.value) == f"unknown model 'svm'; {listed}"

    (tmp_path / "bad.py").write_text(
        "from sklearn.base import BaseEstimator\n\n\n"
        "class NoProba(BaseEstimator):\n"
        "    def fit(self, X, y):\n"
        "        return self\n\n\n"
        "class NoClasses(BaseEstimator):\n"
        "    def fit(self, X, y):\n"
        "        return self\n\n"
        "    def predict_proba(self, X):\n"
        "        return X[:, :3]\n")
    bad = str(tmp_path / "bad.py")
    with pytest.raises(ValueError) as err:
        make_model(f"{bad}:NoProba")
    assert str(err.value) == (f"model plug-in '{bad}:NoProba' built a NoProba without predict_proba: a model must "
                              "follow the scikit-learn classifier protocol (fit, predict_proba, get_params, "
                              "set_params)")
    X, y = np.arange(30.0).reshape(10, 3), np.array([-1.0, 0.0, 1.0, 1.0, 0.0, -1.0, 1.0, 1.0, 0.0, -1.0])
    with pytest.raises(ValueError) as err:
        make_model(f"{bad}:NoClasses").fit(X, y)
    assert str(err.value) == ("NoClasses.fit must set classes_ to the class codes it was given, sorted ([0, 1, 2]), "
                              "got None")
    assert type(make_model(bad)[-1].estimator).__name__ == "NoClasses"  # the file's one class with predict_proba
    (tmp_path / "fn.py").write_text("from sklearn.naive_bayes import GaussianNB\n\n\ndef make(var_smoothing=1e-9):\n"
                                    "    return GaussianNB(var_smoothing=var_smoothing)\n")
    model = make_model(f"{tmp_path / 'fn.py'}:make", {"var_smoothing": 0.5}).fit(X, y)  # a function as the factory
    assert model[-1].estimator_.get_params()["var_smoothing"] == 0.5
    np.testing.assert_array_equal(model.predict_proba(X), _by_hand(GaussianNB(var_smoothing=0.5), X,
                                                                   np.ones(10, bool), y, X))
    (tmp_path / "two.py").write_text(Path(bad).read_text().replace("def fit(self, X, y):\n        return self\n\n\n",
                                                                    "def fit(self, X, y):\n        return self\n\n"
                                                                    "    predict_proba = fit\n\n\n", 1))
    with pytest.raises(ValueError) as err:
        make_model(str(tmp_path / "two.py"))
    assert str(err.value) == (f"{tmp_path / 'two.py'} defines 2 estimator classes with fit and predict_proba "
                              "(NoClasses, NoProba): name the factory as FILE.py:Factory")
    with pytest.raises(ValueError, match=r"^bad parameters for model 'small-trees': SmallTrees.__init__\(\) got an "
                                         r"unexpected keyword argument 'depth'$"):
        make_model("small-trees", {"depth": 3})
    with pytest.raises(ValueError, match=r"^model file not found: no/such\.py$"):
        make_model("no/such.py")


def test_the_command_line_lists_trains_and_refuses_plugins(site, nb_file, sol5m, tmp_path):
    env = {"PYTHONPATH": os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])}
    out = perpbot(["list-models"], tmp_path, env)
    assert out.returncode == 0, out.stderr
    row = next(ln.split() for ln in out.stdout.splitlines() if ln.split()[:1] == ["small-trees"])
    assert row == ["small-trees", "plug-in", "perpbot_test_trees:SmallTrees", "(perpbot-test-trees", "0.1)", "yes"]
    assert "or a model file: --model FILE.py[:Factory]" in out.stdout

    r = perpbot(["train", "--model", "small-treez"], tmp_path, env)
    assert r.returncode == 2 and error_lines(r) == [
        "error: Invalid value for '--model': 'small-treez' is not a model (or a model file FILE.py[:Factory]) (did "
        f"you mean 'small-trees'?); choose one of: {BUILTINS}, small-trees (see 'perpbot train --help')"]
    r = perpbot(["train", "--model", f"{nb_file}:Nope"], tmp_path, env)
    assert r.returncode == 2 and error_lines(r) == [f"error: {Path(nb_file).resolve()} has no model factory 'Nope' "
                                                    "(a class or function)"], r.stderr

    sol5m.iloc[32_000:36_000].to_parquet(tmp_path / "candles.parquet")
    (tmp_path / "perpbot.toml").write_text(
        'candles_file = "candles.parquet"\nfunding = false\nfunding_file = "none"\ntrain_days = 5\ntest_days = 5\n'
        'calibration = "none"\nimportance_rows = 0\nwarmup_bars = 100\noutput_dir = "out"\n')
    r = perpbot(["train", "--model", "small-trees"], tmp_path, env)
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "out" / "models" / "small-trees.joblib.json").read_text())
    assert meta["model_name"] == "small-trees" and meta["model_plugin"]["kind"] == "entry_point"
    assert len(meta["folds"]) == 2 and np.isfinite(meta["oos_metrics"]["log_loss"])
