"""The Optuna study of ``perpbot optimize``: storage in the ledger database, workers, every trial counted.

Storage (:func:`storage_url`, :func:`open_storage`): Optuna's RDB storage in the ledger
database. On PostgreSQL the study tables live in the schema ``optuna`` of the ledger database
(Optuna keeps its own Alembic version table, which would clash with the ledger's in the same
schema); several ``perpbot optimize --study NAME`` processes on one or several machines then
share one study (Optuna's distributed mode: each worker asks the storage for its next trial,
so no trial is lost or run twice). SQLite has no schemas: the study goes to a sibling file of
the ledger, ``<ledger name>-optuna.db``. ``--storage URL`` overrides both.

:func:`run_worker` runs ``n_trials`` trials in this process: TPE sampler (seeded), median
pruner fed after every walk-forward fold. Every trial is recorded (complete, pruned and failed)
with its configuration, the latest candle it read, its out-of-sample daily returns and trade
PnLs as user attributes. :func:`study_stats` turns the study into what the statistics need:
the number of trials and the variance of their Sharpe ratios (deflated Sharpe ratio), and the
(days x trials) matrix of complete trials' daily returns (PBO by CSCV).
"""

from __future__ import annotations

from typing import Any

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from perpbot.optimize.objective import evaluate, split_holdout
from perpbot.optimize.space import TIMEFRAMES, suggest

__all__ = ["StudyStats", "open_storage", "open_study", "run_worker", "storage_url", "study_stats"]

OPTUNA_SCHEMA = "optuna"


def storage_url(ledger_url: str) -> str:
    """Optuna storage URL for a ledger URL (see the module docstring)."""
    from sqlalchemy.engine import make_url

    url = make_url(ledger_url)
    if url.get_backend_name() == "sqlite":
        db = url.database
        if not db or db == ":memory:":
            raise ValueError("an in-memory SQLite ledger cannot hold an Optuna study; give --storage")
        p = Path(db)
        return str(url.set(database=str(p.with_name(f"{p.stem}-optuna{p.suffix or '.db'}"))))
    return url.render_as_string(hide_password=False)


def open_storage(url: str):
    """``optuna.storages.RDBStorage`` on ``url``; PostgreSQL: in schema ``optuna`` (created if missing)."""
    import optuna
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    import warnings

    def make(kwargs):
        with warnings.catch_warnings():  # heartbeats: a killed worker's trial is marked failed, not left running
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=60, grace_period=180)

    backend = make_url(url).get_backend_name()
    if backend == "postgresql":
        # workers starting together would race to create Optuna's tables: serialise that step
        # with a session advisory lock (released when the connection closes)
        eng = create_engine(url)
        try:
            with eng.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(hashtext('perpbot-optuna-schema'))"))
                conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {OPTUNA_SCHEMA}"))
                conn.commit()
                storage = make({"connect_args": {"options": f"-csearch_path={OPTUNA_SCHEMA}"}, "pool_pre_ping": True})
                conn.execute(text("SELECT pg_advisory_unlock(hashtext('perpbot-optuna-schema'))"))
                conn.commit()
        finally:
            eng.dispose()
        return storage
    if backend == "sqlite":
        db = make_url(url).database
        if db:
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        return make({"connect_args": {"timeout": 60}})
    return make({})


def open_study(name: str, storage, *, seed: int = 0, holdout_start: pd.Timestamp | None = None):
    """Create or load study ``name`` (maximise). ``holdout_start`` is stored on creation and must
    match on load (ValueError otherwise: the workers would search different periods)."""
    import optuna

    study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True,
                                sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2))
    if holdout_start is not None:
        have = study.user_attrs.get("holdout_start")
        if have is None:
            study.set_user_attr("holdout_start", holdout_start.isoformat())
        elif pd.Timestamp(have) != holdout_start:
            raise ValueError(f"study {name!r} keeps its hold-out from {have}; this data/fraction gives "
                             f"{holdout_start.isoformat()} (use the same candles and --holdout)")
    return study


def run_worker(settings, market, study_name: str, storage, n_trials: int, *, holdout_fraction: float = 0.2,
               seed: int = 0, timeframes=TIMEFRAMES, on_trial: Callable | None = None, feature_sets=("candles",)):
    """Run ``n_trials`` trials of study ``study_name`` in this process on the search part of
    ``market`` (5m candles; the hold-out is cut off first). Returns the study.

    ``on_trial(study, frozen_trial)`` is called after each trial (progress bars).
    """
    import optuna

    search, hstart = split_holdout(market, holdout_fraction)
    study = open_study(study_name, storage, seed=seed, holdout_start=hstart)

    def objective(trial):
        cfg = suggest(trial, timeframes, feature_sets)
        trial.set_user_attr("config", cfg.to_dict())
        pruned = {}

        def report(value: float, step: int) -> bool:
            trial.report(value, step)
            pruned["yes"] = trial.should_prune()
            return pruned["yes"]

        try:
            out = evaluate(settings, search, cfg, report=report)
        except Exception as exc:  # recorded, then counted as a failed trial (still a trial of the DSR's N)
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:500])
            raise
        trial.set_user_attr("max_timestamp", out.max_timestamp.isoformat())
        trial.set_user_attr("oos_start", out.oos_start.isoformat())
        trial.set_user_attr("fold_sharpes", [float(v) for v in out.fold_sharpes])
        trial.set_user_attr("sharpe", float(out.sharpe))
        trial.set_user_attr("trades", int(out.n_trades))
        if pruned.get("yes"):
            raise optuna.TrialPruned()
        trial.set_user_attr("daily", {d.strftime("%Y-%m-%d"): float(v) for d, v in out.daily.items()})
        trial.set_user_attr("total_return", float(out.metrics.get("total_return", 0.0)))
        return float(out.sharpe)

    callbacks = [(lambda st, ft: on_trial(st, ft))] if on_trial else []
    if n_trials > 0:
        study.optimize(objective, n_trials=n_trials, catch=(Exception,), callbacks=callbacks, gc_after_trial=True)
    return study


@dataclass
class StudyStats:
    """``n_trials``: finished trials (complete + pruned + failed) — the N of the deflated Sharpe
    ratio; ``n_complete`` / ``n_pruned`` / ``n_failed``; ``sharpes``: the annualised Sharpe ratio
    of every trial that produced one (complete: its value; pruned: the last value reported);
    ``sharpe_variance``: their variance (ddof=1; None below 2); ``returns``: (days x complete
    trials) daily returns on the days every complete trial covers, columns = trial numbers;
    ``best``: the chosen trial (highest value) or None."""

    n_trials: int
    n_complete: int
    n_pruned: int
    n_failed: int
    sharpes: dict
    sharpe_variance: float | None
    returns: pd.DataFrame
    best: Any | None  # an optuna FrozenTrial


def study_stats(study) -> StudyStats:
    """:class:`StudyStats` of ``study`` (running trials are not counted)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)]
    complete = [t for t in done if t.state == TrialState.COMPLETE]
    sharpes: dict[int, float] = {}
    for t in done:
        if t.state == TrialState.COMPLETE and t.value is not None:
            sharpes[t.number] = float(t.value)
        elif t.state == TrialState.PRUNED and t.intermediate_values:
            sharpes[t.number] = float(t.intermediate_values[max(t.intermediate_values)])
    vals = [v for v in sharpes.values() if math.isfinite(v)]
    var = float(np.var(vals, ddof=1)) if len(vals) >= 2 else None
    cols = {t.number: pd.Series(t.user_attrs.get("daily", {}), dtype=np.float64) for t in complete}
    returns = pd.DataFrame(cols).dropna(how="any").sort_index() if cols else pd.DataFrame()
    best = max(complete, key=lambda t: (t.value, -t.number)) if complete else None
    return StudyStats(n_trials=len(done), n_complete=len(complete),
                      n_pruned=sum(t.state == TrialState.PRUNED for t in done),
                      n_failed=sum(t.state == TrialState.FAIL for t in done), sharpes=sharpes,
                      sharpe_variance=var, returns=returns, best=best)


def pbo_of(returns: pd.DataFrame, max_splits: int = 16):
    """PBO by CSCV over the complete trials' daily returns (None with < 2 trials or < 4 days).
    S = the largest even number <= ``max_splits`` leaving >= 2 days per block."""
    from perpbot.ml.honesty.pbo import probability_of_backtest_overfitting

    if returns.shape[1] < 2 or returns.shape[0] < 4:
        return None
    s = min(max_splits, returns.shape[0] // 2)
    s -= s % 2
    return probability_of_backtest_overfitting(returns.to_numpy(), n_splits=s) if s >= 2 else None


def trial_rows(study) -> list[dict]:
    """One JSON-able dict per trial: number, state, value, configuration, trades, max_timestamp, error."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append({"number": t.number, "state": t.state.name, "value": t.value,
                     "sharpe": t.user_attrs.get("sharpe"), "trades": t.user_attrs.get("trades"),
                     "config": t.user_attrs.get("config"), "max_timestamp": t.user_attrs.get("max_timestamp"),
                     "error": t.user_attrs.get("error"),
                     "worker_params": json.loads(json.dumps(t.params))})
    return rows
