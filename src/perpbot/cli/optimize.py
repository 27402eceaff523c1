"""``perpbot optimize``: Optuna search over the AI's configuration, judged honestly.

Runs ``--trials`` trials of study ``--study`` (TPE sampler, median pruner; every trial
recorded in the ledger database, see :mod:`perpbot.optimize.study`), then — unless
``--no-final`` — picks the best trial, trains it on all the data, scores the inner hold-out
once and prints the report with the deflated Sharpe ratio, the PBO and the verdict, which is
saved beside the model. Several workers share one study: start ``perpbot optimize --study NAME
--trials N --no-final --seed K`` on each (PostgreSQL ledger; one seed per worker), then
``perpbot optimize --study NAME --trials 0`` once to finish.

Register with ``app.command()(optimize)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from perpbot.cli import common as cli


def _spawn(study: str, n: int, seed: int, holdout: float, timeframes: str, storage: str, config, candles,
           feature_sets: str = "candles"):
    """Start one extra ``perpbot optimize --no-final`` worker process on the same study."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "perpbot", "optimize", "--study", study, "--trials", str(n), "--seed", str(seed),
           "--holdout", str(holdout), "--timeframes", timeframes, "--storage", storage, "--no-final",
           "--feature-sets", feature_sets]
    cmd += ["--config", str(config)] if config else []
    cmd += ["--candles", str(candles)] if candles else []
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL)


def optimize(config: Optional[Path] = cli.ConfigOpt,
             study: str = typer.Option("perpbot", "--study", help="study name (shared by workers)"),
             trials: int = typer.Option(50, "--trials", help="trials to run in this process (0: only finish)"),
             holdout: float = typer.Option(0.2, "--holdout", help="latest share of the candles kept as the inner "
                                                                  "hold-out no trial sees"),
             seed: int = typer.Option(0, "--seed", help="TPE sampler seed (give each worker its own)"),
             timeframes: str = typer.Option("5m,15m,1h", "--timeframes", help="timeframes to search (comma list)"),
             feature_sets: str = typer.Option("candles", "--feature-sets",
                                              help="feature-group sets to search, ';' between sets, ',' between "
                                                   "groups, e.g. \"candles;candles,htf,regime\" (one set: not "
                                                   "searched)"),
             storage: Optional[str] = typer.Option(None, "--storage", help="Optuna storage URL (default: the "
                                                                           "ledger database)"),
             final: bool = typer.Option(True, "--final/--no-final", help="after the trials: choose, score the "
                                                                          "hold-out, save the model and report"),
             workers: int = typer.Option(1, "--workers", help="processes running trials at once on this machine "
                                                                "(extra ones are started as --no-final workers with "
                                                                "seeds --seed+1, ...)"),
             candles: Optional[Path] = typer.Option(None, help="5m candles Parquet (default from settings)"),
             model_path: Optional[Path] = typer.Option(None, "--model-path", help="where to save the chosen model "
                                                       "(default <output_dir>/models/optimized-<study>.joblib)")) -> None:
    """Search the AI's hyperparameters, barriers, horizon, margin and timeframe (walk-forward, out of sample)."""
    with cli.handled():
        if trials < 0:
            raise cli.UsageError(f"--trials must be >= 0, got {trials}")
        if workers < 1:
            raise cli.UsageError(f"--workers must be >= 1, got {workers}")
        if not 0.0 < holdout <= 0.9:
            raise cli.UsageError(f"--holdout must be in (0, 0.9], got {holdout}")
        from perpbot.optimize.space import TIMEFRAMES

        tfs = tuple(t.strip() for t in timeframes.split(",") if t.strip())
        if not tfs or any(t not in TIMEFRAMES for t in tfs):
            raise cli.UsageError(f"--timeframes {timeframes!r}: choose among {', '.join(TIMEFRAMES)}")
        from perpbot.config import FEATURE_GROUPS

        asked = [{g.strip() for g in part.split(",") if g.strip()} for part in feature_sets.split(";") if part.strip()]
        bad = sorted({g for part in asked for g in part if g not in FEATURE_GROUPS})
        fsets = tuple(dict.fromkeys(",".join(g for g in FEATURE_GROUPS if g in part) for part in asked if part))
        if not fsets or bad:
            raise cli.UsageError(f"--feature-sets {feature_sets!r}: groups are {', '.join(FEATURE_GROUPS)}")
        s = cli.settings_for(config, candles_file=candles, timeframe="5m")
        path = Path(model_path) if model_path else s.output_dir / "models" / f"optimized-{study}.joblib"
        if final:
            cli.check_output_file(path, "--model-path")
        import optuna

        from perpbot.data.market import load_market_for
        from perpbot.optimize.study import open_storage, run_worker, storage_url

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        market = load_market_for(s)
        url = storage or storage_url(s.ledger)
        try:
            store = open_storage(url)
        except Exception as exc:  # noqa: BLE001 - one line, password masked
            from perpbot.masking import mask_url

            raise cli.UserError(f"cannot open the study storage {mask_url(url)}: {type(exc).__name__}") from None
        shares = [trials // workers + (1 if i < trials % workers else 0) for i in range(workers)]
        procs = []
        if workers > 1 and trials > 0:
            from perpbot.optimize.objective import split_holdout
            from perpbot.optimize.study import open_study

            open_study(study, store, seed=seed, holdout_start=split_holdout(market, holdout)[1])  # create it once
            for i, n in enumerate(shares[1:], start=1):
                if n:
                    procs.append(_spawn(study, n, seed + i, holdout, timeframes, url, config, candles, feature_sets))
        with cli.progress_bar(f"optimize {study}") as bar:
            task = bar.add_task(f"trials ({study}, this process)", total=shares[0])

            def on_trial(st, ft) -> None:
                best = f"best {st.best_value:.2f}" if any(t.value is not None for t in st.get_trials(deepcopy=False)
                                                          if t.state.name == "COMPLETE") else "no complete trial"
                bar.update(task, advance=1, description=f"trial {ft.number} {ft.state.name.lower()}, {best}")

            try:
                st = run_worker(s, market, study, store, shares[0], holdout_fraction=holdout, seed=seed, timeframes=tfs,
                                feature_sets=fsets,
                                on_trial=on_trial)
            finally:
                codes = [p.wait() for p in procs]
        if any(codes):
            raise cli.UserError(f"{sum(c != 0 for c in codes)} of the {len(procs)} extra worker(s) failed (exit codes "
                                f"{codes}); the trials they finished stay in the study")
        from perpbot.optimize.study import study_stats

        stats = study_stats(st)
        cli.console.print(f"study {study}: {stats.n_trials} trials finished ({stats.n_complete} complete, "
                          f"{stats.n_pruned} pruned, {stats.n_failed} failed)")
        if not final:
            return
        from perpbot.optimize.report import finalize, report_rich, write_report

        with cli.progress_callback("chosen trial: walk-forward on all data + hold-out") as cb:
            res = finalize(s, market, st, path, progress=cb)
        cli.console.print(report_rich(res))
        out = write_report(res, s.output_dir / "optimize" / study, market)
        cli.console.print(f"report: [bold]{out / 'report.txt'}[/] and result.json; model {res.model_path}; backtest "
                          f"it with: perpbot backtest --config {out / 'settings.toml'}")
