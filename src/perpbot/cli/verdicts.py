"""The verdict and the seed-target table of a backtest in the terminal, and saved beside the model.

:func:`show_verdict` computes the honesty block of the first (judged) strategy of a backtest
(:func:`perpbot.backtest.honesty.honesty_for_runs`), prints it (verdict line, seed targets
beside the baselines, PSR/DSR, bootstrap intervals, Monte Carlo, binomial test), and for a
model strategy saves the verdict beside the model (``<model>.verdict.json``, source
"backtest"; :mod:`perpbot.ml.honesty.saved`). A plain backtest is one trial with no PBO and no
inner hold-out, so that verdict is never "edge confirmed"; it does not replace an
optimisation's verdict of the same model (which is the one the real-money gate reads first).
A model chosen by ``perpbot optimize`` is deflated by that optimisation's trials (their number and
the variance of their Sharpe ratios, read from its saved verdict), not judged as one trial.
"""

from __future__ import annotations

from pathlib import Path

from perpbot.cli import common as cli

__all__ = ["show_verdict"]


def _optimisation_trials(path, version) -> tuple[int, float] | None:
    """(trials, variance of their annualised Sharpe ratios) of the optimisation that chose this model
    version (from its saved verdict), or None: a backtest of an optimised model is deflated by them."""
    from perpbot.ml.honesty.saved import load_verdict

    try:
        entry = load_verdict(path).get("optimize") or {}
    except ValueError:
        return None
    s = entry.get("summary") or {}
    if entry.get("model_version") != version or not s.get("n_trials") or s.get("trials_sharpe_variance") is None:
        return None
    return int(s["n_trials"]), float(s["trials_sharpe_variance"])


def show_verdict(settings, market, runs: dict, *, strategy: str, model=None, model_path: Path | None = None):
    """Print the honesty block of ``runs``' first strategy; save its verdict beside the model of a
    model strategy (``model``: the bundle or its metadata, for the version). Returns the report."""
    from perpbot.backtest.honesty import honesty_for_runs
    from perpbot.ml.honesty.render import honesty_rich
    from perpbot.strategy.signals import is_model_strategy

    version = getattr(model, "version", None) if not isinstance(model, dict) else model.get("version")
    path = trials = None
    if is_model_strategy(strategy) and version is not None:
        from perpbot.app.jobs import model_file_for

        path = model_file_for(settings, strategy, model_path)
        trials = _optimisation_trials(path, version)
    rep = honesty_for_runs(settings, market, runs, trials=trials)
    cli.console.print(honesty_rich(rep))
    if path is not None:
        from perpbot.ml.honesty.saved import save_verdict

        path = save_verdict(path, rep.verdict, source="backtest",
                            model_version=version, summary={"strategy": strategy, "trades": len(
                                next(iter(runs.values())).result.trades), "sharpe": rep.sharpe.get("sharpe")})
        cli.console.print(f"verdict saved: {path}")
    return rep
