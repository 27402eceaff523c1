"""The model-probability cache: keyed to the exact model and data, atomic, never stale."""

from __future__ import annotations

import numpy as np

from perpbot.ml import proba_cache


def test_key_changes_with_any_input(c5, funding):
    candles = c5.iloc[:5000].reset_index(drop=True)
    base = proba_cache.data_key("m-1", "abc", candles, funding)
    assert base == proba_cache.data_key("m-1", "abc", candles.copy(), funding.copy())
    nudged = candles.copy()
    nudged.loc[4321, "close"] += 0.01
    f2 = funding.copy()
    f2.loc[10, "funding_rate"] += 1e-6
    others = {proba_cache.data_key("m-2", "abc", candles, funding), proba_cache.data_key("m-1", "abd", candles, funding),
              proba_cache.data_key("m-1", "abc", nudged, funding), proba_cache.data_key("m-1", "abc", candles, f2),
              proba_cache.data_key("m-1", "abc", candles, None), proba_cache.data_key("m-1", "abc", candles.iloc[1:], funding)}
    assert base not in others and len(others) == 6


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
