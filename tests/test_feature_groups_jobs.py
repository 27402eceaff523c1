"""Feature groups and timeframes through the jobs, the CLI and the paper loop: a model records
its groups and its permutation importance; backtest and paper rebuild the same columns; a
model the loop cannot feed is refused; 5m candles are resampled for --timeframe 15m / 1h."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _cli_helpers import error_lines, perpbot


@pytest.fixture(scope="module")
def small(tmp_path_factory, sol5m, data_dir):
    """60 days of real 5m candles and a config pointing at the shared files."""
    d = tmp_path_factory.mktemp("groups")
    sol5m.iloc[:17_280].to_parquet(d / "candles.parquet")
    (d / "perpbot.toml").write_text(
        "[perpbot]\n"
        f'candles_file = "{d / "candles.parquet"}"\n'
        f'funding_file = "{data_dir / "SOLUSDT-funding.parquet"}"\n'
        f'mark_file = "{data_dir / "SOLUSDT-8h-mark.parquet"}"\n'
        f'btc_file = "{data_dir / "BTCUSDT-1h.parquet"}"\n'
        f'eth_file = "{data_dir / "ETHUSDT-1h.parquet"}"\n'
        'model = "logreg"\ntrain_days = 20\ntest_days = 10\nlabel_horizon = 12\nwarmup_bars = 100\n'
        'importance_rows = 200\noutput_dir = "out"\nn_jobs = 1\n')
    return d


def test_load_market_resamples_5m_to_the_timeframe(small, c5):
    from perpbot.data.market import load_market
    from perpbot.data.resample import resample_candles
    from perpbot.data.validate import DataError

    m = load_market(small / "candles.parquet", "1h")
    assert m.timeframe == "1h" and len(m.candles) == 17_280 // 12
    pd.testing.assert_frame_equal(m.candles, resample_candles(c5.iloc[:17_280].reset_index(drop=True), "1h"))
    first = c5.iloc[:12]  # the first hour by hand
    assert m.candles.iloc[0][["open", "high", "low", "close"]].tolist() == [
        first["open"].iloc[0], first["high"].max(), first["low"].min(), first["close"].iloc[-1]]
    assert m.candles["volume"].iloc[0] == pytest.approx(first["volume"].sum(), rel=1e-12)
    with pytest.raises(DataError, match="timeframe"):
        load_market(small / "candles.parquet", "1m")  # finer than the file: refused


def test_train_records_groups_and_importance_backtest_rebuilds_them(small):
    proc = perpbot(["train", "--timeframe", "1h", "--features", "regime,htf,candles"], small)
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((small / "out" / "models" / "logreg.joblib.json").read_text())
    assert meta["feature_groups"] == ["candles", "htf", "regime"]
    names = meta["feature_names"]
    assert "htf4h_logret1" in names and "reg_rv_rank" in names and not any(n.startswith("htf1h") for n in names)
    imp = meta["importance"]
    assert imp["n_folds"] >= 2 and imp["rows_per_fold"] == 200 and imp["repeats"] == 1
    assert set(imp["features"]) == set(names)
    means = [v["mean"] for v in imp["features"].values()]
    assert means == sorted(means, reverse=True)
    assert meta["walk_forward"]["bar_interval"] == pd.Timedelta(hours=1).isoformat()

    # backtest without --features: the model's groups are rebuilt; the report shows the importance
    proc = perpbot(["backtest", "--timeframe", "1h", "--no-ledger", "--report", "out/r.html"], small)
    assert proc.returncode == 0, proc.stderr
    page = (small / "out" / "r.html").read_text()
    assert "Permutation importance (test folds)" in page and "[group] regime" in page
    # explicitly asking for other groups refuses the model with one line
    proc = perpbot(["backtest", "--timeframe", "1h", "--no-ledger", "--features", "candles"], small)
    assert proc.returncode == 1 and len(error_lines(proc)) == 1
    assert "trained on feature groups candles,htf,regime" in error_lines(proc)[0]
    # a bad group name is a usage error
    proc = perpbot(["train", "--features", "candles,vibes"], small)
    assert proc.returncode == 2 and "unknown feature group 'vibes'" in proc.stderr


def test_permutation_importance_of_an_unused_feature_is_zero():
    """A model that reads only column 0: shuffling column 1 changes nothing (exactly 0 nats); shuffling
    column 0 breaks perfect calls (p = 0.8 on the true class) and costs log-likelihood."""
    from types import SimpleNamespace

    from perpbot.ml.importance import fold_permutation_importance, log_likelihood_score

    class SignModel:
        def predict_proba(self, X):
            up = X[:, 0] > 0
            return np.where(up[:, None], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1])

    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame({"signal": rng.normal(size=n), "noise": rng.normal(size=n)})
    y = np.where(X["signal"] > 0, 1.0, -1.0)
    ts = pd.date_range("2025-01-01", periods=n, freq="5min", tz="UTC")
    assert log_likelihood_score(SignModel(), X.to_numpy(), y) == pytest.approx(np.log(0.8))
    folds = [SimpleNamespace(model=SignModel(), test_start_time=ts[0], test_end_time=ts[200]),
             SimpleNamespace(model=SignModel(), test_start_time=ts[200], test_end_time=ts[-1] + pd.Timedelta("5min"))]
    out = fold_permutation_importance(folds, X, y, ts, rows=150, repeats=3)
    assert out["n_folds"] == 2 and list(out["features"]) == ["signal", "noise"]
    assert out["features"]["noise"] == {"mean": 0.0, "std": 0.0}
    # about half the shuffled rows turn wrong: ln 0.8 - (ln 0.8 + ln 0.1) / 2 = ln(8) / 2 = 1.04 nats
    assert out["features"]["signal"]["mean"] == pytest.approx(np.log(8) / 2, abs=0.25)
    assert fold_permutation_importance(folds, X, y, ts, rows=0) == {}


def test_signal_engine_builds_groups_from_its_window_and_refuses_what_it_cannot_feed(small, sol5m):
    from perpbot.strategy.engine import SignalEngine
    from perpbot.app.jobs import model_features
    from perpbot.config import load_settings
    from perpbot.data.market import load_market_for
    from perpbot.ml.registry import load_bundle

    s = load_settings(small / "perpbot.toml", timeframe="1h", output_dir=small / "out")
    bundle = load_bundle(small / "out" / "models" / "logreg.joblib")  # trained by the test above
    assert bundle.feature_groups == ["candles", "htf", "regime"]
    market = load_market_for(s, small / "candles.parquet")
    eng = SignalEngine(s, "ai", bundle=bundle, funding=market.funding)
    c = market.candles
    for r in c.iloc[-s.live_window:].itertuples(index=False):
        eng.push(r.timestamp, r.open, r.high, r.low, r.close, r.volume)
    frame = pd.DataFrame(list(eng.window), columns=eng.COLUMNS)
    _, proba = eng.decide(frame)
    batch = bundle.predict_proba(model_features(s, market, bundle.feature_groups).iloc[[-1]], c["timestamp"].iloc[[-1]])
    np.testing.assert_allclose(proba, batch[0], rtol=1e-7, atol=1e-10)  # the window gives the batch value

    bundle.feature_groups = ["candles", "cross_asset"]
    with pytest.raises(ValueError, match="cross_asset, which need btc, eth"):
        SignalEngine(s, "ai", bundle=bundle, funding=market.funding)
    from perpbot.features.groups import load_inputs
    SignalEngine(s, "ai", bundle=bundle, funding=market.funding,  # paper: the replay's files feed it
                 series=load_inputs(s, market, bundle.feature_groups).series)
    bundle.feature_groups = ["candles", "funding_basis"]
    SignalEngine(s, "ai", bundle=bundle, funding=market.funding, mark=market.mark)
    with pytest.raises(ValueError, match="funding_basis, which need mark"):
        SignalEngine(s, "ai", bundle=bundle, funding=market.funding)  # live: no mark-price candles
    bundle.feature_groups = ["candles", "regime"]
    with pytest.raises(ValueError, match="need 865 trailing candles at 5m; live_window is 200"):
        SignalEngine(load_settings(small / "perpbot.toml", live_window=200), "ai", bundle=bundle,
                     funding=market.funding)
