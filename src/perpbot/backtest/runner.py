"""Backtest orchestration: strategies side by side on the same data, metrics, ledger, report.

``run_strategies`` computes each strategy's signals (the model strategies — ``ai`` and
``meta:<rule>`` — from a saved model's out-of-sample probabilities through
:func:`perpbot.strategy.signals.model_signals`, with a per-bar size scale under the EV rule; the
rules from their definitions), simulates each with the same account/risk settings
(buy-and-hold: 1x full equity, no stops) and computes the metrics.
``record_runs`` writes each simulation to the ledger in one transaction per run;
``write_report`` renders the HTML report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from perpbot.sim.config import AccountConfig
from perpbot.sim.engine import BacktestResult, MarketArrays, run_backtest
from perpbot.ml.trading_metrics import metrics_table, trading_metrics
from perpbot.data.market import MarketData
from perpbot.strategy.signals import BASELINES, is_model_strategy, model_signals, rule_signals


@dataclass
class StrategyRun:
    """One simulated strategy: its signals, the simulation result and the trading metrics."""

    name: str
    signal: np.ndarray
    result: BacktestResult
    metrics: dict
    proba: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


def market_arrays(settings, market: MarketData) -> MarketArrays:
    """Arrays for the compiled loop from validated market data and the settings' ATR period."""
    return MarketArrays.build(market.candles, market.timeframe, funding=market.funding, mark=market.mark,
                              intrabar=market.intrabar, atr_period=settings.atr_period)


def simulate(name: str, signal: np.ndarray, arrays: MarketArrays, config: AccountConfig,
             proba: np.ndarray | None = None, size: np.ndarray | None = None) -> StrategyRun:
    """Run one strategy's signals (and optional per-bar size scales) through the engine and compute its metrics."""
    if name in BASELINES:
        config = config.with_baseline(name)
    result = run_backtest(arrays, signal, config, size=size)
    metrics = trading_metrics(result.equity, result.trades, config.capital, position=result.position)
    return StrategyRun(name=name, signal=signal, result=result, metrics=metrics, proba=proba)


def run_strategies(settings, market: MarketData, strategies: list[str], *, proba: np.ndarray | None = None,
                   model=None, models: dict | None = None, arrays: MarketArrays | None = None) -> dict[str, StrategyRun]:
    """Simulate ``strategies`` on ``market``.

    Model strategies need their model's output: ``models[name] = (model, proba)`` with ``proba``
    float64 (n, 3) and ``model`` the bundle or its metadata (EV tables, label settings); for
    "ai" also ``proba=`` / ``model=``.

    Raises:
        ValueError: a model strategy without probabilities, a model without EV tables under
            ``decision = "ev"``, or an unknown strategy.
    """
    arrays = arrays or market_arrays(settings, market)
    config = AccountConfig.from_settings(settings)
    models = dict(models or {})
    if proba is not None:
        models.setdefault("ai", (model, proba))
    runs: dict[str, StrategyRun] = {}
    for name in strategies:
        if is_model_strategy(name):
            if name not in models or models[name][1] is None:
                raise ValueError(f"strategy {name!r} needs model probabilities (train a model first: "
                                 f"perpbot train --strategy {name})")
            mdl, p = models[name]
            sig, size, extra = model_signals(settings, name, market.candles, p, mdl,
                                             market.funding if settings.funding else None)
            runs[name] = simulate(name, sig, arrays, config, proba=p, size=size)
            runs[name].extra.update(extra, size=size, model_version=getattr(mdl, "version", None),
                                    features_hash=getattr(mdl, "features_hash", None))
        else:
            runs[name] = simulate(name, rule_signals(name, market.candles), arrays, config)
    return runs


def comparison_table(runs: dict[str, StrategyRun]) -> pd.DataFrame:
    """Metrics table: rows = metric, columns = strategy."""
    return metrics_table({name: r.metrics for name, r in runs.items()})


#: risk events that refuse one entry (halts are reported by the halt events themselves)
ENTRY_VETOES = ("below_min_size", "no_equity", "cooldown", "halted", "stale_candle")


def veto_notes(runs: dict[str, StrategyRun]) -> list[str]:
    """One line per strategy that made no trade although its entries were refused: the vetoes by
    reason and count (e.g. a minimum order size the account can never reach), so an empty result
    is never silent."""
    out = []
    for name, run in runs.items():
        ev = run.result.risk_events
        if len(run.result.trades) or not len(ev):
            continue
        counts = ev["event"].astype(str).value_counts()
        vetoes = {k: int(counts[k]) for k in ENTRY_VETOES if k in counts}
        if vetoes:
            why = ", ".join(f"{n} {k}" for k, n in sorted(vetoes.items(), key=lambda kv: -kv[1]))
            out.append(f"{name}: no trade — all {sum(vetoes.values())} entry attempts were vetoed ({why})")
    return out


def predictions_frame(run: StrategyRun, market: MarketData, model_version: str | None,
                      features_hash: str | None, only_calls: bool = True) -> pd.DataFrame:
    """Prediction rows for the ledger (only the bars with a buy/sell call when ``only_calls``)."""
    if run.proba is None:
        return pd.DataFrame()
    proba = run.proba
    keep = run.signal != 0 if only_calls else np.isfinite(proba).all(axis=1)
    idx = np.flatnonzero(keep)
    sig = run.signal[idx]
    return pd.DataFrame({
        "time": market.candles["timestamp"].to_numpy()[idx], "bar": idx,
        "p_down": proba[idx, 0], "p_flat": proba[idx, 1], "p_up": proba[idx, 2],
        "confidence": np.maximum(proba[idx, 0], proba[idx, 2]), "signal": sig.astype(int),
        "decision": np.where(sig > 0, "buy", np.where(sig < 0, "sell", "hold")),
        "model_version": model_version, "features_hash": features_hash,
    })


def record_runs(ledger, settings, market: MarketData, runs: dict[str, StrategyRun], *, kind: str = "backtest",
                model_version: str | None = None, features_hash: str | None = None) -> dict[str, int]:
    """Write every strategy run (trades, orders/fills, equity, risk events, funding, predictions) to the ledger."""
    ids = {}
    ts = market.candles["timestamp"]
    for name, run in runs.items():
        ai = is_model_strategy(name)
        version = run.extra.get("model_version") or (model_version if name == "ai" else None)
        fhash = run.extra.get("features_hash") or (features_hash if name == "ai" else None)
        run_id = ledger.start_run(kind, name, settings.symbol, settings.timeframe, exchange=settings.exchange,
                                  config=settings.public_dict(), model_version=version if ai else None,
                                  features_hash=fhash if ai else None,
                                  data_range=(ts.iloc[0], ts.iloc[-1]))
        try:
            ledger.record_run_bulk(
                run_id, trades=run.result.trades, equity=run.result.equity, risk_events=run.result.risk_events,
                funding=run.result.funding,
                predictions=predictions_frame(run, market, version, fhash) if ai else None)
        except Exception:
            ledger.finish_run(run_id, status="failed")
            raise
        ledger.finish_run(run_id, status="finished", metrics=run.metrics)
        ids[name] = run_id
    return ids


def _model_for_report(settings, model):
    """The model object the report describes: ``model`` when it carries folds (a ModelBundle or its
    metadata dict), else the metadata JSON saved beside ``settings.model_file`` (None when unreadable)."""
    if isinstance(model, dict) or getattr(model, "folds", None):
        return model
    from perpbot.ml.metadata import ModelError, load_metadata

    try:
        meta = load_metadata(settings.model_file)
    except ModelError:
        return None
    version = getattr(model, "version", None)
    return meta if version is None or meta.get("version") == version else None


def report_model_panel(settings, market: MarketData, runs: dict[str, StrategyRun], model=None):
    """:class:`perpbot.backtest.report_model.ModelPanel` of the first run driven by model probabilities
    (None when no run is): calibration and per-fold metrics against the triple-barrier labels of
    ``market.candles`` (barriers and horizon from the settings, as training labels them), calls
    per month, and feature importance when ``model`` is a fitted ModelBundle."""
    from perpbot.backtest.honesty import label_barriers_for
    from perpbot.backtest.report_model import model_panel
    from perpbot.ml.labels import triple_barrier_labels

    name = next((n for n, r in runs.items() if r.proba is not None), None)
    if name is None:
        return None
    run, c = runs[name], market.candles
    tp, sl = label_barriers_for(settings, c)
    y = triple_barrier_labels(c["high"].to_numpy(np.float64), c["low"].to_numpy(np.float64),
                              c["close"].to_numpy(np.float64), tp, sl, settings.label_horizon)
    return model_panel(name, proba=run.proba, y=y, timestamps=c["timestamp"], signal=run.signal,
                       threshold=settings.confidence_threshold, trades=run.result.trades,
                       model=_model_for_report(settings, model))


def write_report(path: Path, settings, market: MarketData, runs: dict[str, StrategyRun], *,
                 model_metrics: pd.DataFrame | None = None, notes: list[str] | None = None,
                 title: str | None = None, honesty=None, model=None,
                 calibration: dict | None = None) -> Path:
    """Render the HTML report (:func:`perpbot.backtest.report.write_html_report`) of ``runs``.

    ``honesty``: the first strategy's :class:`perpbot.ml.honesty.block.HonestyReport`; computed
    here by :func:`perpbot.backtest.honesty.honesty_for_runs` when None.
    ``model``: the AI's :class:`perpbot.ml.registry.ModelBundle` (per-fold metrics and feature
    importance) or its metadata dict (per-fold metrics only); when None or without folds, the
    metadata saved beside ``settings.model_file`` is used for the fold windows if its version
    matches.
    """
    from perpbot.backtest.honesty import honesty_for_runs
    from perpbot.backtest.report import write_html_report
    from perpbot.backtest.report_page import data_source

    results = {name: {"equity": r.result.equity, "trades": r.result.trades, "risk_events": r.result.risk_events,
                      "initial_capital": float(settings.starting_capital)} for name, r in runs.items()}
    source = data_source(market.source, market.timeframe, settings.exchange)
    if title is None:
        origin = f"{source['venue']} data, " if source["venue"] else ""
        title = (f"perpbot backtest — {source['symbol'] or settings.symbol} {market.timeframe} "
                 f"({origin}{source['rules']} rules)")
    if honesty is None:
        honesty = honesty_for_runs(settings, market, runs)
    return write_html_report(path, candles=market.candles, results=results, metrics=comparison_table(runs),
                             model_metrics=model_metrics, title=title, notes=notes, honesty=honesty, source=source,
                             model_panel=report_model_panel(settings, market, runs, model), calibration=calibration)
