"""The objective of one optimisation trial: walk-forward out-of-sample backtest of one configuration.

:func:`split_holdout` cuts the inner hold-out (the latest ``fraction`` of the candles, from a
UTC midnight on) off the market data; trials only ever get the part before it.
:func:`evaluate` trains one LightGBM per walk-forward fold of the search period (expanding
window, purged by the label horizon, calibrated on the last slice of each training window as
``perpbot train`` does), applies the EV rule with the trial's margin, backtests the
out-of-sample bars after fees, slippage and funding, and reports the Sharpe ratio of the
out-of-sample period so far to the pruner after every fold. The value is the annualised
Sharpe ratio of the daily returns from the first test bar on (``daily_returns`` of
:mod:`perpbot.ml.trading_metrics`); a configuration that never trades scores 0.
:func:`fit_final` trains the chosen configuration walk-forward on ALL the data (search +
hold-out), saves it like ``perpbot train`` and scores the hold-out bars once: each of them
is predicted by a fold model fitted on earlier bars only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import numpy as np
import pandas as pd

from perpbot.data.market import MarketData
from perpbot.optimize.space import TrialConfig

__all__ = ["FinalFit", "TrialOutcome", "split_holdout", "at_timeframe", "evaluate", "fit_final", "oos_metrics"]

PPY = 365.0


@dataclass
class TrialOutcome:
    """What one trial produced. ``sharpe``: annualised Sharpe ratio of the out-of-sample daily
    returns (0 when undefined); ``daily``: those returns (fractions) indexed by UTC date;
    ``fold_sharpes``: the value reported after each fold; ``max_timestamp``: the open time of the
    latest candle the trial read (features, labels, backtest); ``metrics``: trading metrics of the
    out-of-sample period."""

    sharpe: float
    daily: pd.Series
    n_trades: int
    metrics: dict
    fold_sharpes: list[float] = field(default_factory=list)
    max_timestamp: pd.Timestamp | None = None
    oos_start: pd.Timestamp | None = None


def split_holdout(market: MarketData, fraction: float) -> tuple[MarketData, pd.Timestamp]:
    """(search part, hold-out start): the hold-out is every candle from the UTC midnight at or
    after the candle at ``round(n * (1 - fraction))`` on; the search part holds only candles (and
    funding / mark rows) that open before it. Raises ``ValueError`` for a fraction outside (0, 0.9]
    or a split that leaves no candle on either side."""
    if not 0.0 < fraction <= 0.9:
        raise ValueError(f"holdout fraction must be in (0, 0.9], got {fraction}")
    c = market.candles
    i = int(round(len(c) * (1.0 - fraction)))
    if not 0 < i < len(c):
        raise ValueError(f"{len(c)} candles cannot be split at {fraction:.0%}")
    start = c["timestamp"].iloc[i].ceil("1D")
    keep = c["timestamp"] < start
    if keep.all() or not keep.any():
        raise ValueError("the hold-out split leaves no candle on one side")

    def before(df):
        return None if df is None else df[df["timestamp"] < start].reset_index(drop=True)

    cand = c[keep].reset_index(drop=True)
    cand.attrs = dict(c.attrs)
    return MarketData(cand, market.timeframe, before(market.funding), before(market.mark), before(market.intrabar),
                      market.source), start


def at_timeframe(market: MarketData, timeframe: str) -> MarketData:
    """``market`` with its candles resampled to ``timeframe`` (complete bars only); funding and mark
    candles are shared, intrabar candles kept only at the source timeframe."""
    from perpbot.data.resample import resample_candles

    if timeframe == market.timeframe:
        return market
    return MarketData(resample_candles(market.candles, timeframe), timeframe, market.funding, market.mark, None,
                      market.source)


def _inputs(settings, market: MarketData):
    from perpbot.features.build import compute_features
    from perpbot.ml.labels import side_outcomes, triple_barrier_labels

    c = market.candles
    groups = tuple(getattr(settings, "features", None) or ("candles",))
    if groups == ("candles",):
        X = compute_features(c, market.funding if settings.funding else None)
    else:
        from perpbot.features.groups import compute_groups, load_inputs

        X = compute_groups(c, groups, load_inputs(settings, market, groups), with_funding=settings.funding)
    h, lo, cl = (c[k].to_numpy(np.float64) for k in ("high", "low", "close"))
    tp, sl = settings.take_profit / 100.0, settings.stop_loss / 100.0
    y = triple_barrier_labels(h, lo, cl, tp, sl, settings.label_horizon)
    return X, y, side_outcomes(h, lo, cl, tp, sl, settings.label_horizon), tp, sl


def _decision(settings, market: MarketData, y, outcomes, proba, folds, tp, sl) -> dict:
    from perpbot.data import timeframe_to_ms
    from perpbot.ml import decision as D
    from perpbot.ml.decision_fit import fit_decision

    ts = market.candles["timestamp"]
    bar = pd.Timedelta(milliseconds=timeframe_to_ms(settings.timeframe))
    return fit_decision(
        kind="triple", y=y, outcomes=outcomes, oos_proba=proba, timestamps=ts, folds=folds,
        horizon=settings.label_horizon, tp=tp, sl=sl,
        funding_rate=D.known_funding_rate(ts, bar, market.funding) if settings.funding else 0.0,
        cost=D.round_trip_cost(settings.taker_fee_frac, settings.slippage_frac),
        bars_per_funding=pd.Timedelta(hours=D.FUNDING_INTERVAL_HOURS) / bar, kelly=settings.kelly_fraction,
        risk=settings.risk_frac, grid=settings.ev_margin_grid_frac, min_signals=settings.ev_min_signals,
        default_margin=settings.ev_margin_frac)


def _labels(settings) -> dict:
    return {"barrier_mode": "percent", "horizon": settings.label_horizon, "take_profit": settings.take_profit / 100,
            "stop_loss": settings.stop_loss / 100}


def _simulate(settings, market: MarketData, arrays, proba, decision):
    from perpbot.sim.config import AccountConfig
    from perpbot.backtest.runner import simulate
    from perpbot.strategy.signals import model_signals

    model = SimpleNamespace(decision=decision, label_settings=_labels(settings))
    sig, size, _ = model_signals(settings, "ai", market.candles, proba, model,
                                 market.funding if settings.funding else None)
    return simulate("ai", sig, arrays, AccountConfig.from_settings(settings), proba=proba, size=size)


def oos_metrics(settings, run, start: pd.Timestamp, end: pd.Timestamp | None = None) -> tuple[float, pd.Series, dict]:
    """(annualised Sharpe, daily returns by UTC date, trading metrics) of ``run`` (a
    :class:`perpbot.backtest.runner.StrategyRun`) restricted to bars opening in ``[start, end)``,
    the account starting at the equity it had just before ``start``. Sharpe 0 when undefined."""
    eq = run.result.equity
    before = eq[eq.index <= start]
    base = float(before.iloc[-1]) if len(before) else float(settings.starting_capital)
    mask = eq.index > start if end is None else (eq.index > start) & (eq.index <= end)
    part = eq[mask]
    tr = run.result.trades
    if len(tr):
        t_in = (tr["entry_time"] >= start) & ((tr["entry_time"] < end) if end is not None else True)
        tr = tr[t_in]
    if len(part) < 2:
        return 0.0, pd.Series(dtype=np.float64), {"trades": int(len(tr)), "total_return": 0.0}
    m = _metrics(part, tr, base)
    daily = part.resample("1D", closed="right", label="right").last()
    daily = daily.loc[daily.first_valid_index():daily.last_valid_index()].ffill()  # pandas may add empty end bins
    rets = daily.pct_change()
    rets.iloc[0] = daily.iloc[0] / base - 1.0
    std = float(rets.std(ddof=1)) if len(rets) > 1 else 0.0
    sharpe = float(rets.mean()) / std * math.sqrt(PPY) if std > 0 and math.isfinite(std) else 0.0
    rets.index = rets.index.normalize() - pd.Timedelta(days=1)  # the UTC day the return was earned on
    return sharpe, rets, m


def _metrics(equity: pd.Series, trades: pd.DataFrame, base: float) -> dict:
    """total_return, max_drawdown (fractions <= 0), trades, win_rate, profit_factor of an equity
    slice that started at ``base`` USDT and the trades entered in it (net ``pnl``)."""
    eq = np.concatenate([[base], equity.to_numpy(np.float64)])
    pnl = trades["pnl"].to_numpy(np.float64) if len(trades) else np.empty(0)
    gains, losses = pnl[pnl > 0].sum(), -pnl[pnl < 0].sum()
    return {"total_return": float(eq[-1] / base - 1.0), "max_drawdown": float(np.min(eq / np.maximum.accumulate(eq) - 1)),
            "trades": int(pnl.size), "win_rate": float((pnl > 0).mean()) if pnl.size else None,
            "profit_factor": float(gains / losses) if losses > 0 else None}


def evaluate(settings, market: MarketData, cfg: TrialConfig, *,
             report: Callable[[float, int], bool] | None = None) -> TrialOutcome:
    """Score ``cfg`` on ``market`` (the search part at the source timeframe; see the module docstring).

    ``report(value, step)`` is called after each fold with the Sharpe ratio of the out-of-sample
    bars so far; when it returns True the trial stops (the caller raises ``optuna.TrialPruned``).
    Raises ``ValueError`` when the data hold no complete walk-forward fold.
    """
    from perpbot.backtest.runner import market_arrays
    from perpbot.data import timeframe_to_ms
    from perpbot.ml.calibration import calibration_split
    from perpbot.ml.train import FoldModel, _fit_task, feature_matrix
    from perpbot.ml.validation import walk_forward_splits

    s = settings.model_copy(update=cfg.settings_update())
    m = at_timeframe(market, cfg.timeframe)
    ts = m.candles["timestamp"]
    X, y, outcomes, tp, sl = _inputs(s, m)
    feats, usable = feature_matrix(X)
    fit_ok = usable & np.isfinite(y)
    bpd = 86_400_000 // timeframe_to_ms(cfg.timeframe)
    folds = walk_forward_splits(len(ts), train_size=int(s.train_days * bpd), test_size=int(s.test_days * bpd),
                                purge=s.label_horizon, expanding=True, start=int(np.argmax(usable)))
    arrays = market_arrays(s, m)
    proba = np.full((len(ts), 3), np.nan)
    done: list[FoldModel] = []
    oos_start = ts.iloc[folds[0].test_start]
    frac = s.calibration_fraction if s.calibration != "none" else 0.0
    values: list[float] = []
    run = None
    for k, f in enumerate(folds):
        rows = f.train_idx[fit_ok[f.train_idx]]
        fit, cal = calibration_split(rows, frac, s.label_horizon)
        test = f.test_idx[usable[f.test_idx]]
        _, _, p, _ = _fit_task(k, "lightgbm", cfg.model_params, 42, feats[fit], y[fit], feats[test], s.calibration,
                               feats[cal], y[cal])
        proba[test] = p
        end = ts.iloc[f.test_end] if f.test_end < len(ts) else ts.iloc[-1] + (ts.iloc[-1] - ts.iloc[-2])
        done.append(FoldModel(model=None, test_start_time=ts.iloc[f.test_start], test_end_time=end,
                              train_start_time=ts.iloc[rows[0]], train_end_time=ts.iloc[rows[-1]]))
        run = _simulate(s, m, arrays, proba, _decision(s, m, y, outcomes, proba, done, tp, sl))
        value, _, _ = oos_metrics(s, run, oos_start, end)
        values.append(value)
        if report is not None and report(value, k):
            break
    sharpe, daily, metrics = oos_metrics(s, run, oos_start)
    return TrialOutcome(sharpe=sharpe, daily=daily, n_trades=int(metrics.get("trades", 0)), metrics=metrics,
                        fold_sharpes=values, max_timestamp=ts.iloc[-1], oos_start=oos_start)


def fit_final(settings, market: MarketData, cfg: TrialConfig, holdout_start: pd.Timestamp, path: Path,
              progress: Callable[[int, int], None] | None = None):
    """Train ``cfg`` walk-forward on all of ``market`` (search + hold-out), save the model at
    ``path`` (``save_bundle``: joblib + ``.json`` metadata) and score the hold-out once.

    Returns a :class:`FinalFit`.
    """
    from perpbot.backtest.runner import market_arrays
    from perpbot.data import timeframe_to_ms
    from perpbot.features.build import feature_names, features_hash
    from perpbot.ml.metrics import model_metrics
    from perpbot.ml.registry import make_bundle, save_bundle
    from perpbot.ml.train import walk_forward_train

    s = settings.model_copy(update=cfg.settings_update())
    m = at_timeframe(market, cfg.timeframe)
    ts = m.candles["timestamp"]
    X, y, outcomes, tp, sl = _inputs(s, m)
    bpd = 86_400_000 // timeframe_to_ms(cfg.timeframe)
    wf = walk_forward_train(X, y, ts, model_name="lightgbm", params=cfg.model_params,
                            train_size=int(s.train_days * bpd), test_size=int(s.test_days * bpd),
                            horizon=s.label_horizon, n_jobs=s.n_jobs, calibration=s.calibration,
                            calibration_fraction=s.calibration_fraction, progress=progress)
    decision = _decision(s, m, y, outcomes, wf.oos_proba, wf.folds, tp, sl)
    groups = tuple(s.features)
    if groups == ("candles",):
        names = feature_names(with_funding=s.funding)
        fhash = features_hash(names)
    else:
        from perpbot.features.groups import group_feature_names, groups_hash

        names = group_feature_names(groups, cfg.timeframe, with_funding=s.funding)
        fhash = groups_hash(groups, names)
    bundle = make_bundle(wf, label_settings=_labels(s), features_hash=fhash, feature_groups=groups,
                         oos_metrics=model_metrics(y, wf.oos_proba, s.confidence_threshold), strategy="ai",
                         decision=decision, calibration={"method": s.calibration, "fraction": s.calibration_fraction})
    save_bundle(bundle, path)
    # the hold-out on a fresh account (a drawdown halt of the search period does not carry over);
    # no warm-up skip: the features and probabilities were computed on the whole history
    i0 = int(ts.searchsorted(holdout_start))
    hm = m.slice(i0)
    hs = s.model_copy(update={"warmup_bars": 0})
    run = _simulate(hs, hm, market_arrays(hs, hm), wf.oos_proba[i0:], decision)
    sharpe, daily, metrics = oos_metrics(hs, run, hm.candles["timestamp"].iloc[0] - pd.Timedelta(microseconds=1))
    return FinalFit(bundle=bundle, settings=hs, sharpe=sharpe, daily=daily, metrics=metrics, run=run, market=hm)


@dataclass
class FinalFit:
    """:func:`fit_final`'s output: the saved ``bundle``; ``settings`` of the configuration (warm-up
    0); the hold-out's annualised ``sharpe``, ``daily`` returns, ``metrics`` and ``run`` (a
    :class:`~perpbot.backtest.runner.StrategyRun` on a fresh account of ``starting_capital`` from
    the first hold-out candle, its ``proba`` the fold models' out-of-sample probabilities);
    ``market``: the hold-out candles at the configuration's timeframe."""

    bundle: object
    settings: object
    sharpe: float
    daily: pd.Series
    metrics: dict
    run: object
    market: MarketData
