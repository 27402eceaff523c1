"""The honesty block of a backtest's primary strategy, from what the backtest runner holds.

:func:`honesty_for_runs` picks the primary strategy (the first run, as the report does),
uses the other runs that are baselines as references, and — for the AI — scores its
out-of-sample probabilities against the triple-barrier labels of the backtested candles
(:func:`perpbot.ml.metrics.model_metrics`), so the accuracy targets and the binomial test
describe the period that was traded. A plain backtest is one trial with no PBO and no
inner hold-out: its verdict can be "no edge shown" or "too few trades to judge", never
"edge confirmed" (see :mod:`perpbot.ml.honesty.verdict`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perpbot.data.market import MarketData
from perpbot.ml.honesty.block import HonestyReport, honesty_block
from perpbot.ml.labels import label_barriers
from perpbot.strategy.signals import BASELINES

__all__ = ["ai_model_metrics", "honesty_for_runs", "label_barriers_for"]


def label_barriers_for(settings, candles: pd.DataFrame):
    """Take-profit / stop-loss widths (fractions of the close) of the labels, as training uses them
    (:func:`perpbot.ml.labels.label_barriers`)."""
    return label_barriers(settings, candles)


def ai_model_metrics(settings, market: MarketData, proba: np.ndarray) -> dict:
    """:func:`perpbot.ml.metrics.model_metrics` of ``proba`` ((n, 3) float64, NaN rows = no
    prediction) against the triple-barrier labels of ``market.candles`` (``label_horizon``,
    barriers from the settings) at ``confidence_threshold``."""
    from perpbot.ml.labels import triple_barrier_labels
    from perpbot.ml.metrics import model_metrics

    c = market.candles
    tp, sl = label_barriers_for(settings, c)
    y = triple_barrier_labels(c["high"].to_numpy(np.float64), c["low"].to_numpy(np.float64),
                              c["close"].to_numpy(np.float64), tp, sl, settings.label_horizon)
    return model_metrics(y, proba, settings.confidence_threshold)


def honesty_for_runs(settings, market: MarketData, runs: dict, *, model_scores: dict | None = None,
                     seed: int = 0, reps: int = 2000, trials: tuple[int, float] | None = None) -> HonestyReport:
    """Honesty block of the first run in ``runs`` (``{name: StrategyRun}``) beside the baselines among the rest.

    Args:
        settings: :class:`perpbot.config.Settings` (capital, label and threshold settings).
        market: the backtested market data.
        runs: strategy name -> :class:`perpbot.backtest.runner.StrategyRun`; the first is judged.
        model_scores: the model's ``model_metrics`` dict; when None and the judged run has
            probabilities (the AI), they are computed by :func:`ai_model_metrics`.
        seed, reps: bootstrap / Monte Carlo seed and resamples.
        trials: (number of trials, variance of their annualised Sharpe ratios) of the search that
            chose the judged model (``perpbot optimize``); None = one trial.

    Raises:
        ValueError: ``runs`` is empty.
    """
    if not runs:
        raise ValueError("runs: empty")
    name, run = next(iter(runs.items()))
    if model_scores is None and run.proba is not None:
        model_scores = ai_model_metrics(settings, market, run.proba)
    baselines = {k: r.metrics for k, r in runs.items() if k != name and k in BASELINES}
    return honesty_block(trades=run.result.trades, initial_capital=float(settings.starting_capital),
                         equity=run.result.equity, strategy=name, strategy_metrics=run.metrics,
                         model_metrics=model_scores, baseline_metrics=baselines, seed=seed, reps=reps,
                         n_trials=trials[0] if trials else 1, trials_sharpe_variance=trials[1] if trials else None)
