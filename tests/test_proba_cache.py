"""The model-probability cache: keyed to the exact model file bytes and data, atomic, never stale.

A replaced or corrupted model file behind an existing cache must not be served from it: the
replaced model's own probabilities come back, a corrupt file gives the one-line corrupt-model
error (exit 1) of ``perpbot backtest``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from perpbot.ml import proba_cache


def test_key_changes_with_any_input(c5, funding):
    candles = c5.iloc[:5000].reset_index(drop=True)
    base = proba_cache.data_key("d-1", "m-1", "abc", candles, funding)
    assert base == proba_cache.data_key("d-1", "m-1", "abc", candles.copy(), funding.copy())
    nudged = candles.copy()
    nudged.loc[4321, "close"] += 0.01
    f2 = funding.copy()
    f2.loc[10, "funding_rate"] += 1e-6
    others = {proba_cache.data_key("d-2", "m-1", "abc", candles, funding),
              proba_cache.data_key("d-1", "m-2", "abc", candles, funding),
              proba_cache.data_key("d-1", "m-1", "abd", candles, funding),
              proba_cache.data_key("d-1", "m-1", "abc", nudged, funding),
              proba_cache.data_key("d-1", "m-1", "abc", candles, f2),
              proba_cache.data_key("d-1", "m-1", "abc", candles, None),
              proba_cache.data_key("d-1", "m-1", "abc", candles.iloc[1:], funding)}
    assert base not in others and len(others) == 7


def test_model_digest_is_the_sha256_of_the_file_bytes(tmp_path):
    path = tmp_path / "m.joblib"
    blob = np.random.default_rng(7).bytes(3 * 1024 * 1024 + 17)  # several read chunks
    path.write_bytes(blob)
    assert proba_cache.model_digest(path) == hashlib.sha256(blob).hexdigest()
    path.write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))  # one bit of the last byte
    assert proba_cache.model_digest(path) != hashlib.sha256(blob).hexdigest()
    with pytest.raises(FileNotFoundError):
        proba_cache.model_digest(tmp_path / "absent.joblib")


def test_round_trip_and_misses(tmp_path):
    model = tmp_path / "m.joblib"
    proba = np.random.default_rng(1).dirichlet([1, 1, 1], size=100)
    proba[:7] = np.nan
    assert proba_cache.load(model, "k", 100) is None  # no file
    proba_cache.save(model, "k", proba)
    got = proba_cache.load(model, "k", 100)
    np.testing.assert_array_equal(got, proba)
    assert proba_cache.load(model, "other", 100) is None and proba_cache.load(model, "k", 99) is None
    proba_cache.cache_path(model).write_bytes(b"garbage")
    assert proba_cache.load(model, "k", 100) is None
    assert [p.name for p in tmp_path.iterdir()] == ["m.joblib.proba.npz"]  # no temp files left


# ---- a replaced / corrupted model file behind its cache ------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory, sol5m, sol_funding_path, sol_mark8h_path):
    """A folder with 6,000 real 5m candles, a config, and two logreg models trained on them with
    different walk-forward windows: ``model`` (saved where the config points, with its cache)
    and ``other`` (another file)."""
    from perpbot.app.jobs import train_job
    from perpbot.config import load_settings

    d = tmp_path_factory.mktemp("proba")
    sol5m.iloc[:6_000].to_parquet(d / "candles.parquet")
    (d / "perpbot.toml").write_text(
        "[perpbot]\n"
        f'candles_file = "{d / "candles.parquet"}"\nfunding_file = "{sol_funding_path}"\n'
        f'mark_file = "{sol_mark8h_path}"\nmodel = "logreg"\ntrain_days = 5\ntest_days = 5\n'
        f'output_dir = "{d / "out"}"\n')
    s = load_settings(d / "perpbot.toml")
    first = train_job(s)
    other = train_job(load_settings(d / "perpbot.toml", train_days=6, model_path=d / "other.joblib"))
    assert proba_cache.cache_path(first.path).exists()
    return d, s, first.path, other.path


def test_replaced_model_file_is_not_served_from_the_cache(trained):
    from perpbot.app.jobs import model_probabilities
    from perpbot.data.market import load_market_for
    from perpbot.ml.registry import load_bundle

    d, s, model, other = trained
    market = load_market_for(s)
    saved = (model.read_bytes(), Path(str(model) + ".json").read_bytes(), proba_cache.cache_path(model).read_bytes())
    try:
        meta_only, cached = model_probabilities(s, market)
        assert not hasattr(meta_only, "predict_proba")  # served from the cache: the model was not loaded
        expected_other = model_probabilities(s, market, load_bundle(other))[1]
        assert np.isfinite(expected_other).sum() > 3000 and not np.allclose(expected_other, cached, equal_nan=True)
        shutil.copyfile(other, model)  # another model's bytes; the metadata sidecar and the cache stay
        loaded, proba = model_probabilities(s, market)
        assert hasattr(loaded, "predict_proba")  # the cache missed: the new file was loaded and run
        np.testing.assert_array_equal(proba, expected_other)
        # the cache now holds the new bytes' probabilities, and serves them
        again = model_probabilities(s, market)
        assert not hasattr(again[0], "predict_proba")
        np.testing.assert_array_equal(again[1], expected_other)
    finally:
        model.write_bytes(saved[0])
        Path(str(model) + ".json").write_bytes(saved[1])
        proba_cache.cache_path(model).write_bytes(saved[2])


def test_corrupt_model_file_behind_its_cache_exits_1_with_one_line(trained):
    d, s, model, _ = trained
    saved = model.read_bytes()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERPBOT_")}
    env["COLUMNS"] = "200"

    def backtest():
        return subprocess.run([sys.executable, "-m", "perpbot", "backtest", "--no-baselines", "--no-ledger"], cwd=d,
                              env=env, capture_output=True, text=True, timeout=300)
    try:
        ok = backtest()
        assert ok.returncode == 0, ok.stderr
        model.write_bytes(saved[: len(saved) // 2])  # truncated: the sidecar and the cache are intact
        proc = backtest()
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 1 and len(lines) == 1, proc.stderr
        assert lines[0].startswith("error:") and "corrupt" in lines[0] and str(model) in lines[0]
        assert "Traceback" not in proc.stderr + proc.stdout
    finally:
        model.write_bytes(saved)
