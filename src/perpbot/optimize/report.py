"""The end of an optimisation: the chosen trial, its inner hold-out (scored once), the statistics, the report.

:func:`finalize` takes the study, picks the trial with the highest out-of-sample Sharpe ratio
of the search period, trains it walk-forward on all the data and saves it like ``perpbot
train`` (:func:`perpbot.optimize.objective.fit_final`), scores the hold-out once, and judges it:
the deflated Sharpe ratio of the chosen trial's search-period daily returns with N = every
finished trial and the variance of the trials' Sharpe ratios, the PBO by CSCV over the complete
trials' daily returns, the hold-out's return after costs, and its trade count. The verdict is
saved beside the model (:mod:`perpbot.ml.honesty.saved`). :func:`report_rich` /
:func:`write_report` show it (terminal tables; ``report.txt`` + ``result.json`` in the
study's run directory, with ``settings.toml`` to backtest or run the chosen model).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from perpbot.optimize.study import StudyStats, pbo_of, study_stats, trial_rows

__all__ = ["OptimizeResult", "finalize", "report_rich", "write_report"]


@dataclass
class OptimizeResult:
    """Everything the optimisation report shows. ``holdout``: trading metrics of the chosen
    configuration on the hold-out (fresh account); ``honesty``: the
    :class:`~perpbot.ml.honesty.block.HonestyReport` of the chosen trial."""

    study_name: str
    stats: StudyStats
    holdout_start: pd.Timestamp
    chosen: dict
    holdout: dict
    holdout_sharpe: float
    honesty: Any  # perpbot.ml.honesty.block.HonestyReport
    model_path: Path
    model_version: str
    trials: list[dict] = field(default_factory=list)
    settings_update: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        from perpbot.ml.honesty.verdict import json_safe

        return {"study": self.study_name, "holdout_start": self.holdout_start.isoformat(),
                "n_trials": self.stats.n_trials, "n_complete": self.stats.n_complete,
                "n_pruned": self.stats.n_pruned, "n_failed": self.stats.n_failed,
                "trials_sharpe_variance": json_safe(self.stats.sharpe_variance), "chosen": self.chosen,
                "holdout": {k: json_safe(v) for k, v in self.holdout.items() if not isinstance(v, (dict, list))},
                "holdout_sharpe": json_safe(self.holdout_sharpe), "model_path": str(self.model_path),
                "model_version": self.model_version, "settings": self.settings_update,
                "honesty": self.honesty.to_dict(), "trials": self.trials}


def finalize(settings, market, study, model_path: Path, *, progress=None) -> OptimizeResult:
    """Choose, fit on all data, score the hold-out once, judge and save (module docstring).

    Raises ``ValueError`` when the study has no complete trial.
    """
    from perpbot.ml.honesty.block import honesty_block
    from perpbot.ml.honesty.saved import save_verdict
    from perpbot.optimize.objective import fit_final
    from perpbot.optimize.space import trial_config

    stats = study_stats(study)
    if stats.best is None:
        raise ValueError(f"study {study.study_name!r} has no complete trial to choose from "
                         f"({stats.n_trials} finished: {stats.n_pruned} pruned, {stats.n_failed} failed)")
    best = stats.best
    hstart = pd.Timestamp(study.user_attrs["holdout_start"])
    cfg = trial_config(best.params)
    fit = fit_final(settings, market, cfg, hstart, Path(model_path), progress=progress)
    bundle, h_sharpe, h_metrics, h_run = fit.bundle, fit.sharpe, fit.metrics, fit.run
    daily = pd.Series(best.user_attrs.get("daily", {}), dtype=float).sort_index()
    pbo = pbo_of(stats.returns)
    h_ret = float(h_metrics.get("total_return", 0.0))
    trades = h_run.result.trades
    h_trading, baselines, model_scores = _holdout_references(fit)
    rep = honesty_block(trades=trades, initial_capital=float(settings.starting_capital),
                        daily_returns=daily.to_numpy(), strategy=f"optimised ai (trial {best.number})",
                        strategy_metrics=h_trading, model_metrics=model_scores, baseline_metrics=baselines,
                        n_trials=max(1, stats.n_trials), trials_sharpe_variance=stats.sharpe_variance,
                        pbo=pbo, holdout_return=h_ret)
    rep.notes.append(f"PSR/DSR, skew and kurtosis: the chosen trial's out-of-sample days of the search period "
                     f"({daily.size} days); seed targets, trades, bootstrap and Monte Carlo: the inner hold-out "
                     f"from {hstart:%Y-%m-%d} (fresh account), beside the rules on the same candles")
    # the verdict counts the hold-out's trades: a search-period edge must trade where no trial looked
    summary = {"study": study.study_name, "trial": best.number, "search_sharpe": best.value,
               "holdout_return": h_ret, "holdout_trades": int(len(trades)), "n_trials": stats.n_trials,
               "trials_sharpe_variance": stats.sharpe_variance,
               "timeframe": cfg.timeframe, "settings": cfg.settings_update()}
    save_verdict(model_path, rep.verdict, source="optimize", model_version=bundle.version, summary=summary)
    chosen = {"number": best.number, "value": best.value, "config": cfg.to_dict(),
              "trades": best.user_attrs.get("trades"), "total_return": best.user_attrs.get("total_return")}
    return OptimizeResult(study_name=study.study_name, stats=stats, holdout_start=hstart, chosen=chosen,
                          holdout=h_metrics, holdout_sharpe=h_sharpe, honesty=rep, model_path=Path(model_path),
                          model_version=bundle.version, trials=trial_rows(study),
                          settings_update=cfg.settings_update())


def _holdout_references(fit):
    """(trading metrics of the chosen model on the hold-out, the rule baselines' metrics on the same
    candles, the model's accuracy metrics there) for the seed-target table."""
    from perpbot.sim.config import AccountConfig
    from perpbot.backtest.honesty import ai_model_metrics
    from perpbot.ml.trading_metrics import trading_metrics
    from perpbot.backtest.runner import market_arrays, simulate
    from perpbot.strategy.signals import BASELINES, rule_signals

    s, m, run = fit.settings, fit.market, fit.run
    cap = float(s.starting_capital)
    ai = trading_metrics(run.result.equity, run.result.trades, cap, position=run.result.position)
    arrays, config = market_arrays(s, m), AccountConfig.from_settings(s)
    base = {b: simulate(b, rule_signals(b, m.candles), arrays, config).metrics for b in BASELINES}
    return ai, base, ai_model_metrics(s, m, run.proba)


def _f(v, fmt="{:.2f}") -> str:
    return "n/a" if v is None or (isinstance(v, float) and v != v) else fmt.format(v)


def trials_table(rows: list[dict], limit: int = 60) -> Table:
    """Rich table of the trials (best first, at most ``limit``)."""
    t = Table(title=f"Trials ({len(rows)})", title_justify="left")
    for col in ("#", "state", "Sharpe (OOS)", "trades", "tf", "TP %", "SL %", "horizon", "margin %", "leaves", "lr",
              "trees"):
        t.add_column(col, justify="right")
    order = sorted(rows, key=lambda r: (r["value"] is None, -(r["value"] or 0.0)))
    for r in order[:limit]:
        c = r.get("config") or {}
        mp = c.get("model_params") or {}
        sharpe = r["value"] if r["value"] is not None else r.get("sharpe")
        t.add_row(str(r["number"]), r["state"].lower(), _f(sharpe), str(r.get("trades") or 0), str(c.get("timeframe", "")),
                  _f(c.get("take_profit")), _f(c.get("stop_loss")), str(c.get("horizon", "")), _f(c.get("ev_margin"), "{:.3f}"),
                  str(mp.get("num_leaves", "")), _f(mp.get("learning_rate"), "{:.3f}"), str(mp.get("n_estimators", "")))
    return t


def report_rich(res: OptimizeResult) -> Group:
    """Terminal report: trials, chosen trial, hold-out, then the honesty block (verdict, DSR, PBO, ...)."""
    from perpbot.ml.honesty.render import honesty_rich

    st = res.stats
    c = res.chosen
    h = res.holdout
    summary = Table(title="Chosen trial and inner hold-out", title_justify="left", show_header=False)
    summary.add_column("what")
    summary.add_column("value", justify="right")
    summary.add_row("trials finished (complete / pruned / failed)",
                    f"{st.n_trials} ({st.n_complete} / {st.n_pruned} / {st.n_failed})")
    summary.add_row("variance of the trials' Sharpe ratios (annualised)", _f(st.sharpe_variance, "{:.4f}"))
    summary.add_row("chosen trial", f"#{c['number']}: {json.dumps(c['config'], sort_keys=True)}")
    summary.add_row("chosen: OOS Sharpe of the search period", _f(c["value"]))
    summary.add_row("chosen: search-period trades / return", f"{c.get('trades')} / {_f((c.get('total_return') or 0) * 100)} %")
    summary.add_row("inner hold-out from (scored once)", f"{res.holdout_start:%Y-%m-%d %H:%M} UTC")
    summary.add_row("hold-out: return after costs", f"{_f(h.get('total_return', 0.0) * 100)} %")
    summary.add_row("hold-out: Sharpe / max drawdown",
                    f"{_f(res.holdout_sharpe)} / {_f((h.get('max_drawdown') or 0.0) * 100)} %")
    summary.add_row("hold-out: trades", str(h.get("trades", 0)))
    summary.add_row("model saved", f"{res.model_path} ({res.model_version}) + .verdict.json")
    settings = ", ".join(f"{k} = {json.dumps(v)}" for k, v in res.settings_update.items())
    return Group(trials_table(res.trials), summary, Text(f"settings of the chosen model: {settings}", style="dim"),
                 honesty_rich(res.honesty))


def write_report(res: OptimizeResult, directory: Path, market=None) -> Path:
    """Write ``report.txt`` (the terminal report, plain), ``result.json`` and ``settings.toml`` into
    ``directory``; with ``market`` (the 5m data) at another timeframe than the chosen one, also the
    candles resampled to it (``candles-<tf>.parquet``, named by ``settings.toml``). Returns ``directory``."""
    import io

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tf = res.settings_update.get("timeframe")
    if market is not None and tf and tf != market.timeframe:
        from perpbot.optimize.objective import at_timeframe

        at_timeframe(market, tf).candles.to_parquet(directory / f"candles-{tf}.parquet")
        res.settings_update = {**res.settings_update,
                               "candles_file": str((directory / f"candles-{tf}.parquet").resolve())}
    buf = io.StringIO()
    Console(file=buf, width=160, no_color=True, color_system=None, highlight=False).print(report_rich(res))
    (directory / "report.txt").write_text(buf.getvalue())
    (directory / "result.json").write_text(json.dumps(res.to_dict(), indent=2, default=str, allow_nan=False))
    (directory / "settings.toml").write_text(settings_toml(res))
    return directory


def settings_toml(res: OptimizeResult) -> str:
    """Settings file of the chosen model (``perpbot backtest --config <dir>/settings.toml``): its
    timeframe, barriers, horizon, decision margin and model path (JSON scalars and lists are TOML)."""
    lines = [f"# chosen trial {res.chosen['number']} of study {res.study_name}; verdict: {res.honesty.verdict.verdict}",
             f"model_path = {json.dumps(str(Path(res.model_path).resolve()))}"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in res.settings_update.items()]
    return "\n".join(lines) + "\n"
