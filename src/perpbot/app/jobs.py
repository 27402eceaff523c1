"""The main jobs as plain functions (used by the CLI, the API, the tests and notebooks).

``train_job``: features -> triple-barrier labels -> walk-forward training -> saved model.
``backtest_job``: the AI strategy (saved model, out-of-sample) beside the baselines ->
metrics -> ledger -> HTML report. ``paper_job`` (:mod:`perpbot.app.paper`): the bot loop
over replayed candles.
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
from perpbot.ml.labels import label_barriers

log = get_logger("perpbot.jobs")
Progress = Callable[[int, int], None] | None


# ------------------------------------------------------------------------------------ training
def model_features(settings, market: MarketData, groups=None) -> pd.DataFrame:
    """The columns of the feature ``groups`` (default ``settings.features``) over ``market.candles``."""
    from perpbot.features.groups import compute_groups, load_inputs

    groups = settings.features if groups is None else groups
    return compute_groups(market.candles, groups, load_inputs(settings, market, groups), with_funding=settings.funding)


def dataset(settings, market: MarketData, groups=None):
    """Features X (n, k) float64 of the feature ``groups`` (default ``settings.features``),
    triple-barrier labels y (n,) and the candle open times."""
    from perpbot.ml.labels import triple_barrier_labels

    candles = market.candles
    X = model_features(settings, market, groups)
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


def model_file_for(settings, strategy: str = "ai", path: Path | None = None) -> Path:
    """Where a model strategy's model lives: ``path`` when given; else ``settings.model_file`` for
    "ai" and ``meta-<rule>-<that file name>`` beside it for "meta:<rule>"."""
    from perpbot.strategy.signals import meta_primary

    if path is not None:
        return Path(path)
    base = Path(settings.model_file)
    rule = meta_primary(strategy)
    return base if rule is None else base.with_name(f"meta-{rule}-{base.name}")


def expected_features(settings, strategy: str = "ai", groups=None) -> tuple[list[str], str]:
    """(feature names, features hash) a model of ``strategy`` on feature ``groups`` (default
    ``settings.features``) must have been trained on."""
    from perpbot.features.groups import group_feature_names, groups_hash
    from perpbot.strategy.meta import meta_feature_names, meta_features_hash
    from perpbot.strategy.signals import meta_primary

    groups = settings.features if groups is None else groups
    names = group_feature_names(groups, settings.timeframe, with_funding=settings.funding)
    rule = meta_primary(strategy)
    if rule is None:
        return names, groups_hash(groups, names)
    return meta_feature_names(names), meta_features_hash(names, rule)


def train_job(settings, progress: Progress = None, market: MarketData | None = None,
              strategy: str = "ai") -> TrainOutcome:
    """Walk-forward train the model of ``strategy`` ("ai" or "meta:<rule>") on the configured
    candles, calibrate it, fit its expected-value decision tables and save it.

    Raises:
        DataError: bad or missing data files. ValueError: too little data for one fold, or an
        unknown strategy.
    """
    from perpbot.data import timeframe_to_ms
    from perpbot.ml import decision as D
    from perpbot.ml.calibration import reliability
    from perpbot.ml.decision_fit import fit_decision
    from perpbot.ml.labels import side_outcomes
    from perpbot.ml.metrics import model_metrics
    from perpbot.ml.registry import make_bundle, save_bundle
    from perpbot.ml.train import walk_forward_train
    from perpbot.strategy.meta import meta_frame, meta_labels
    from perpbot.strategy.signals import is_model_strategy, meta_primary, rule_signals

    if not is_model_strategy(strategy):
        raise ValueError(f"strategy {strategy!r} has no model to train; train 'ai' or one of meta:ema-cross, "
                         "meta:donchian, meta:scoring")
    market = market or load_market_for(settings)
    X, y, ts = dataset(settings, market)
    candles = market.candles
    tp, sl = label_barriers(settings, candles)
    high, low, close = (candles[k].to_numpy(np.float64) for k in ("high", "low", "close"))
    outcomes = side_outcomes(high, low, close, tp, sl, settings.label_horizon)
    rule = meta_primary(strategy)
    primary = None
    if rule is not None:
        primary = rule_signals(rule, candles)
        X, y = meta_frame(X, primary), meta_labels(primary, outcomes)
    bars_per_day = 86_400_000 // timeframe_to_ms(settings.timeframe)
    wf = walk_forward_train(X, y, ts, model_name=settings.model, params=settings.model_params or None,
                            train_size=int(settings.train_days * bars_per_day),
                            test_size=int(settings.test_days * bars_per_day), horizon=settings.label_horizon,
                            n_jobs=settings.n_jobs, calibration=settings.calibration,
                            calibration_fraction=settings.calibration_fraction, progress=progress)
    metrics = model_metrics(y, wf.oos_proba, settings.confidence_threshold)
    classes = ("up",) if rule else ("down", "flat", "up")
    calibration = {"method": settings.calibration, "fraction": settings.calibration_fraction,
                   "reliability": reliability(y, wf.oos_proba, classes=classes)}
    if "oos_proba_raw" in wf.extra:
        calibration["reliability_uncalibrated"] = reliability(y, wf.extra["oos_proba_raw"], classes=classes)
    metrics.update({f"ece_{c}": v["ece"] for c, v in calibration["reliability"].items()})
    bar = pd.Timedelta(milliseconds=timeframe_to_ms(settings.timeframe))
    decision = fit_decision(
        kind="meta" if rule else "triple", y=y, outcomes=outcomes, oos_proba=wf.oos_proba, timestamps=ts,
        folds=wf.folds, horizon=settings.label_horizon, tp=tp, sl=sl,
        funding_rate=D.known_funding_rate(ts, bar, market.funding) if settings.funding else 0.0,
        cost=D.round_trip_cost(settings.taker_fee_frac, settings.slippage_frac),
        bars_per_funding=pd.Timedelta(hours=D.FUNDING_INTERVAL_HOURS) / bar, kelly=settings.kelly_fraction,
        risk=settings.risk_frac, grid=settings.ev_margin_grid_frac, min_signals=settings.ev_min_signals,
        default_margin=settings.ev_margin_frac, primary=primary, primary_rule=rule)
    labels = {"barrier_mode": settings.stop_mode, "horizon": settings.label_horizon,
              "take_profit": settings.take_profit_frac, "stop_loss": settings.stop_loss_frac}
    names, fhash = expected_features(settings, strategy)
    if list(wf.feature_names) != names:
        raise ValueError(f"feature columns {list(wf.feature_names)[:3]}... differ from feature_names()")
    from perpbot.ml.importance import fold_permutation_importance

    importance = fold_permutation_importance(wf.folds, X, y, ts, rows=settings.importance_rows)
    bundle = make_bundle(wf, label_settings=labels, features_hash=fhash, oos_metrics=metrics, strategy=strategy,
                         decision=decision, calibration=calibration, feature_groups=settings.features,
                         importance=importance)
    bundle.market = {"symbol": settings.symbol, "timeframe": settings.timeframe}  # checked by `models promote`
    path = save_bundle(bundle, model_file_for(settings, strategy))
    # the saved model's probabilities over these candles (out of sample, as a backtest computes
    # them): cached, keyed to the bytes just written, so the next backtest of the same candles
    # does not load the model
    from perpbot.ml import proba_cache

    funding = market.funding if settings.funding else None
    from perpbot.features.groups import inputs_digest, load_inputs

    extra = inputs_digest(settings.features, load_inputs(settings, market, settings.features))
    proba_cache.save(path, proba_cache.data_key(proba_cache.model_digest(path), bundle.version,
                                                bundle.features_hash + extra, market.candles, funding),
                     bundle.predict_proba(X, ts))
    log.info("model_saved", path=str(path), version=bundle.version, strategy=strategy, folds=len(wf.folds), **{
        k: v for k, v in metrics.items() if isinstance(v, (int, float))})
    return TrainOutcome(bundle=bundle, path=Path(path), model_metrics=metrics, n_folds=len(wf.folds))


# ------------------------------------------------------------------------------------ backtest
def check_strategies(names: list[str]) -> None:
    """Raise ValueError naming the valid strategies when a name is not one of them."""
    from perpbot.strategy.plugin import is_plugin_ref, strategy_class
    from perpbot.strategy.signals import STRATEGIES, is_strategy

    bad = [n for n in names if not is_strategy(n)]
    if bad:
        raise ValueError(f"unknown strategy {bad[0]!r}; choose one of: {', '.join(STRATEGIES)} or a strategy file "
                         "(FILE.py[:ClassName])")
    for n in names:
        if is_plugin_ref(n):
            strategy_class(n)  # a missing or broken file: one line now, before any work


def load_model_for(settings, path: Path | None = None, strategy: str = "ai"):
    """Load the saved model of ``strategy``; refuse it (ModelError) when its features differ from the
    running config, or when ``decision = "ev"`` and it has no expected-value tables."""
    from perpbot.ml.registry import load_bundle

    from perpbot.ml.metadata import ModelError
    from perpbot.strategy.signals import check_model_decision

    from perpbot.ml.metadata import model_groups

    path = model_file_for(settings, strategy, path)
    names, fhash = expected_features(settings, strategy, model_groups(settings, path))
    bundle = load_bundle(path, expected_features_hash=fhash, expected_feature_names=names)
    try:
        check_model_decision(settings, bundle)
    except ValueError as exc:
        raise ModelError(str(exc)) from None
    return bundle


def model_inputs(settings, market: MarketData, strategy: str = "ai", groups=None) -> pd.DataFrame:
    """The feature frame a model of ``strategy`` on ``groups`` predicts from (meta: with ``primary_side``)."""
    from perpbot.strategy.meta import meta_frame
    from perpbot.strategy.signals import meta_primary, rule_signals

    X = model_features(settings, market, groups)
    rule = meta_primary(strategy)
    return X if rule is None else meta_frame(X, rule_signals(rule, market.candles))


def ai_probabilities(settings, market: MarketData, bundle, strategy: str = "ai") -> np.ndarray:
    """Model probabilities (n, 3) over the candles: out of sample where the folds cover them."""
    groups = getattr(bundle, "feature_groups", None) or ["candles"]
    return bundle.predict_proba(model_inputs(settings, market, strategy, groups), market.candles["timestamp"])


def model_probabilities(settings, market: MarketData, bundle=None, model_path: Path | None = None,
                        strategy: str = "ai"):
    """(model, probabilities (n, 3)) for a model strategy, through the probability cache.

    Without a loaded ``bundle`` the saved model's metadata is checked first (a model from
    another feature set is refused) and a cache hit for this exact model file (SHA-256 of its
    bytes) and these exact candles skips loading the model at all; the returned "model" is then
    its metadata (``version``, ``features_hash``, ``oos_metrics``,
    ``decision``, ``label_settings``, ``calibration``). On a miss the model is
    loaded (a corrupt file raises ModelError), run, and the cache rewritten when the file did
    not change meanwhile. A given ``bundle`` is run as it is and the cache left alone (its bytes
    on disk are not known).
    """
    from types import SimpleNamespace

    from perpbot.ml import proba_cache
    from perpbot.ml.metadata import ModelError, ModelMismatchError, load_metadata

    funding = market.funding if settings.funding else None
    path = model_file_for(settings, strategy, model_path)
    if bundle is None:
        from perpbot.ml.metadata import model_groups

        names, fhash = expected_features(settings, strategy, model_groups(settings, path))
        try:
            meta = load_metadata(path, expected_features_hash=fhash, expected_feature_names=names)
        except ModelMismatchError:
            raise
        except ModelError:  # no readable metadata: loading the model itself says what is wrong
            bundle = load_model_for(settings, path, strategy)
            return bundle, ai_probabilities(settings, market, bundle, strategy)
        try:
            digest = proba_cache.model_digest(path)
        except OSError as exc:
            raise ModelError(f"model file {path} is unreadable ({type(exc).__name__})") from None
        from perpbot.features.groups import inputs_digest, load_inputs

        groups = meta.get("feature_groups") or ["candles"]
        extra = inputs_digest(groups, load_inputs(settings, market, groups))  # BTC/ETH/mark bytes, when used
        key = proba_cache.data_key(digest, meta["version"], meta["features_hash"] + extra, market.candles, funding)
        proba = proba_cache.load(path, key, len(market.candles))
        if proba is not None:
            log.info("model_probabilities_cached", model=meta["version"], path=str(proba_cache.cache_path(path)))
            return SimpleNamespace(version=meta["version"], features_hash=meta["features_hash"],
                                   oos_metrics=meta.get("oos_metrics", {}), decision=meta.get("decision", {}),
                                   label_settings=meta.get("label_settings", {}),
                                   calibration=meta.get("calibration", {}),
                                   feature_groups=meta.get("feature_groups", ["candles"]),
                                   importance=meta.get("importance", {})), proba
        bundle = load_model_for(settings, path, strategy)
        proba = ai_probabilities(settings, market, bundle, strategy)
        if proba_cache.model_digest(path) == digest:  # the bytes that were loaded
            proba_cache.save(path, key, proba)
        return bundle, proba
    return bundle, ai_probabilities(settings, market, bundle, strategy)


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
    from perpbot.strategy.signals import is_model_strategy

    check_strategies(strategies)
    market = market or load_market_for(settings)
    check_enough_candles(market, settings.warmup_bars)
    models: dict = {}
    for name in strategies:  # ``bundle`` / ``model_path``: the model of the first model strategy
        if is_model_strategy(name):
            given = bundle if not models else None
            if given is not None and getattr(given, "strategy", "ai") != name:
                raise ValueError(f"the given model was trained for strategy {getattr(given, 'strategy', 'ai')!r}, "
                                 f"not {name!r}")
            models[name] = model_probabilities(settings, market, given, model_path if not models else None, name)
    runs = run_strategies(settings, market, strategies, models=models)
    first = next(iter(models.values()), (bundle, None))[0]  # the first model strategy's model
    out = BacktestOutcome(runs=runs, bundle=first)
    if ledger is not None:
        ledger = ledger() if callable(ledger) else ledger  # opened only once the inputs proved good
        out.run_ids = record_runs(ledger, settings, market, runs,
                                  model_version=getattr(first, "version", None),
                                  features_hash=getattr(first, "features_hash", None))
    if report is not None:
        out.report = write_report(report, settings, market, runs, model_metrics=model_metrics, notes=notes,
                                  calibration=getattr(first, "calibration", None))
    return out
