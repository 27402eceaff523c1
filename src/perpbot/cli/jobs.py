"""The main jobs as plain functions (used by the CLI, the tests and notebooks).

``train_job``: features -> triple-barrier labels -> walk-forward training -> saved model.
``backtest_job``: the AI strategy (saved model, out-of-sample) beside the baselines ->
metrics -> ledger -> HTML report. ``paper_job``: the bot loop over replayed candles.
Each job validates its inputs before it writes anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from perpbot.backtest.runner import StrategyRun, record_runs, run_strategies, write_report
from perpbot.data.market import MarketData, check_enough_candles, load_market_for
from perpbot.logs import get_logger

log = get_logger("perpbot.jobs")
Progress = Callable[[int, int], None] | None


# ------------------------------------------------------------------------------------ training
def label_barriers(settings, candles: pd.DataFrame):
    """Take-profit / stop-loss barrier widths (fractions of the close) matching the risk settings."""
    if settings.stop_mode == "atr":
        import talib

        from perpbot.ml.labels import atr_barriers

        h, lo, c = (candles[k].to_numpy(np.float64) for k in ("high", "low", "close"))
        atr = talib.ATR(h, lo, c, timeperiod=settings.atr_period)
        return atr_barriers(atr, c, settings.take_profit_atr, settings.stop_loss_atr)
    return settings.take_profit / 100.0, settings.stop_loss / 100.0


def dataset(settings, market: MarketData):
    """Features X (n, k) float64, triple-barrier labels y (n,) and the candle open times."""
    from perpbot.features.build import compute_features
    from perpbot.ml.labels import triple_barrier_labels

    candles = market.candles
    X = compute_features(candles, market.funding if settings.funding else None)
    tp, sl = label_barriers(settings, candles)
    y = triple_barrier_labels(candles["high"].to_numpy(np.float64), candles["low"].to_numpy(np.float64),
                              candles["close"].to_numpy(np.float64), tp, sl, settings.label_horizon)
    return X, y, candles["timestamp"]


@dataclass
class TrainOutcome:
    bundle: object
    path: Path
    model_metrics: dict
    n_folds: int


def train_job(settings, progress: Progress = None, market: MarketData | None = None) -> TrainOutcome:
    """Walk-forward train ``settings.model`` on the configured candles and save it.

    Raises:
        DataError: bad or missing data files. ValueError: too little data for one fold.
    """
    from perpbot.data import timeframe_to_ms
    from perpbot.ml.metrics import model_metrics
    from perpbot.features.build import feature_names, features_hash
    from perpbot.ml.registry import make_bundle, save_bundle
    from perpbot.ml.train import walk_forward_train

    market = market or load_market_for(settings)
    X, y, ts = dataset(settings, market)
    bars_per_day = 86_400_000 // timeframe_to_ms(settings.timeframe)
    wf = walk_forward_train(X, y, ts, model_name=settings.model, train_size=int(settings.train_days * bars_per_day),
                            test_size=int(settings.test_days * bars_per_day), horizon=settings.label_horizon,
                            n_jobs=settings.n_jobs, progress=progress)
    metrics = model_metrics(y, wf.oos_proba, settings.confidence_threshold)
    labels = {"barrier_mode": settings.stop_mode, "horizon": settings.label_horizon,
              "take_profit": settings.take_profit_atr if settings.stop_mode == "atr" else settings.take_profit / 100,
              "stop_loss": settings.stop_loss_atr if settings.stop_mode == "atr" else settings.stop_loss / 100}
    names = feature_names(with_funding=settings.funding)
    if list(wf.feature_names) != names:
        raise ValueError(f"feature columns {list(wf.feature_names)[:3]}... differ from feature_names()")
    bundle = make_bundle(wf, label_settings=labels, features_hash=features_hash(names), oos_metrics=metrics)
    path = save_bundle(bundle, settings.model_file)
    # the saved model's probabilities over these candles (out of sample, as a backtest computes
    # them): cached, keyed to the bytes just written, so the next backtest of the same candles
    # does not load the model
    from perpbot.ml import proba_cache

    funding = market.funding if settings.funding else None
    proba_cache.save(path, proba_cache.data_key(proba_cache.model_digest(path), bundle.version, bundle.features_hash,
                                                market.candles, funding), bundle.predict_proba(X, ts))
    log.info("model_saved", path=str(path), version=bundle.version, folds=len(wf.folds), **{
        k: v for k, v in metrics.items() if isinstance(v, (int, float))})
    return TrainOutcome(bundle=bundle, path=Path(path), model_metrics=metrics, n_folds=len(wf.folds))


# ------------------------------------------------------------------------------------ backtest
def check_strategies(names: list[str]) -> None:
    """Raise ValueError naming the valid strategies when a name is not one of them."""
    from perpbot.strategy.signals import STRATEGIES

    bad = [n for n in names if n not in STRATEGIES]
    if bad:
        raise ValueError(f"unknown strategy {bad[0]!r}; choose one of: {', '.join(STRATEGIES)}")


def load_model_for(settings, path: Path | None = None):
    """Load the saved model and refuse it when its features differ from the running config."""
    from perpbot.features.build import feature_names, features_hash
    from perpbot.ml.registry import load_bundle

    names = feature_names(with_funding=settings.funding)
    return load_bundle(path or settings.model_file, expected_features_hash=features_hash(names),
                       expected_feature_names=names)


def ai_probabilities(settings, market: MarketData, bundle) -> np.ndarray:
    """Model probabilities (n, 3) over the candles: out of sample where the folds cover them."""
    from perpbot.features.build import compute_features

    X = compute_features(market.candles, market.funding if settings.funding else None)
    return bundle.predict_proba(X, market.candles["timestamp"])


def model_probabilities(settings, market: MarketData, bundle=None, model_path: Path | None = None):
    """(model, probabilities (n, 3)) for the AI strategy, through the probability cache.

    Without a loaded ``bundle`` the saved model's metadata is checked first (a model from
    another feature set is refused) and a cache hit for this exact model file (SHA-256 of its
    bytes) and these exact candles skips loading the model at all; the returned "model" is then
    its metadata (``version``, ``features_hash``, ``oos_metrics``). On a miss the model is
    loaded (a corrupt file raises ModelError), run, and the cache rewritten when the file did
    not change meanwhile. A given ``bundle`` is run as it is and the cache left alone (its bytes
    on disk are not known).
    """
    from types import SimpleNamespace

    from perpbot.features.build import feature_names, features_hash
    from perpbot.ml import proba_cache
    from perpbot.ml.metadata import ModelError, ModelMismatchError, load_metadata

    funding = market.funding if settings.funding else None
    path = Path(model_path or settings.model_file)
    if bundle is None:
        names = feature_names(with_funding=settings.funding)
        try:
            meta = load_metadata(path, expected_features_hash=features_hash(names), expected_feature_names=names)
        except ModelMismatchError:
            raise
        except ModelError:  # no readable metadata: loading the model itself says what is wrong
            bundle = load_model_for(settings, path)
            return bundle, ai_probabilities(settings, market, bundle)
        try:
            digest = proba_cache.model_digest(path)
        except OSError as exc:
            raise ModelError(f"model file {path} is unreadable ({type(exc).__name__})") from None
        key = proba_cache.data_key(digest, meta["version"], meta["features_hash"], market.candles, funding)
        proba = proba_cache.load(path, key, len(market.candles))
        if proba is not None:
            log.info("model_probabilities_cached", model=meta["version"], path=str(proba_cache.cache_path(path)))
            return SimpleNamespace(version=meta["version"], features_hash=meta["features_hash"],
                                   oos_metrics=meta.get("oos_metrics", {})), proba
        bundle = load_model_for(settings, path)
        proba = ai_probabilities(settings, market, bundle)
        if proba_cache.model_digest(path) == digest:  # the bytes that were loaded
            proba_cache.save(path, key, proba)
        return bundle, proba
    return bundle, ai_probabilities(settings, market, bundle)


@dataclass
class BacktestOutcome:
    runs: dict[str, StrategyRun]
    run_ids: dict[str, int] = field(default_factory=dict)
    report: Path | None = None
    bundle: object = None


def backtest_job(settings, strategies: list[str], *, market: MarketData | None = None, bundle=None,
                 model_path: Path | None = None, ledger=None, report: Path | None = None,
                 model_metrics: pd.DataFrame | None = None, notes: list[str] | None = None) -> BacktestOutcome:
    """Simulate ``strategies`` side by side; record them in ``ledger`` and write ``report`` when given.

    ``ledger`` is a :class:`perpbot.storage.ledger.Ledger` or a callable returning one (called
    only after the data and the model were loaded and simulated without error).

    Raises:
        DataError (also: fewer candles than warmup_bars + 10), ModelError / ModelMismatchError,
        ValueError (also: an unknown strategy name) — before anything is written.
    """
    check_strategies(strategies)
    market = market or load_market_for(settings)
    check_enough_candles(market, settings.warmup_bars)
    proba = None
    if "ai" in strategies:
        bundle, proba = model_probabilities(settings, market, bundle, model_path)
    runs = run_strategies(settings, market, strategies, proba=proba)
    out = BacktestOutcome(runs=runs, bundle=bundle)
    if ledger is not None:
        ledger = ledger() if callable(ledger) else ledger  # opened only once the inputs proved good
        out.run_ids = record_runs(ledger, settings, market, runs,
                                  model_version=getattr(bundle, "version", None),
                                  features_hash=getattr(bundle, "features_hash", None))
    if report is not None:
        out.report = write_report(report, settings, market, runs, model_metrics=model_metrics, notes=notes)
    return out


# ------------------------------------------------------------------------------------ paper
def paper_job(settings, market: MarketData, strategy: str, *, bundle=None, ledger=None,
              progress: Progress = None, flush_every: int = 100, control=None):
    """Replay ``market.candles`` through the paper bot; returns (bot, run_id).

    ``control``: a :class:`perpbot.bot.control.BotControl` shared with operator interfaces
    (pause / resume / force-exit, status, events); a private one when None.

    Raises ValueError for an unknown strategy and DataError for fewer candles than
    ``warmup_bars + 10``, before the run is recorded.
    """
    from perpbot.bot.paper import PaperBot

    check_strategies([strategy])
    check_enough_candles(market, settings.warmup_bars)
    run_id = None
    if ledger is not None:
        ts = market.candles["timestamp"]
        run_id = ledger.start_run("paper", strategy, settings.symbol, settings.timeframe,
                                  exchange=settings.exchange, config=settings.public_dict(),
                                  model_version=getattr(bundle, "version", None) if strategy == "ai" else None,
                                  features_hash=getattr(bundle, "features_hash", None) if strategy == "ai" else None,
                                  data_range=(ts.iloc[0], ts.iloc[-1]), note=f"replay of {market.source}")
    bot = PaperBot(settings, strategy, bundle=bundle, funding=market.funding, mark=market.mark,
                   ledger=ledger, run_id=run_id, flush_every=flush_every, control=control)
    c = market.candles
    cols = [c[k].to_numpy() for k in ("open", "high", "low", "close", "volume")]
    stamps = list(c["timestamp"])
    n = len(c)
    try:
        for i in range(n):
            bot.on_candle(stamps[i], float(cols[0][i]), float(cols[1][i]), float(cols[2][i]), float(cols[3][i]),
                          float(cols[4][i]))
            if progress is not None:
                progress(i + 1, n)
        bot.finish()
    except BaseException:
        if ledger is not None:
            bot.flush()
            ledger.finish_run(run_id, status="failed")
        raise
    if ledger is not None:
        from perpbot.backtest.metrics import trading_metrics

        res = bot.exchange.result()
        ledger.finish_run(run_id, status="finished",
                          metrics=trading_metrics(res.equity, res.trades, settings.starting_capital,
                                                  position=res.position))
    return bot, run_id
