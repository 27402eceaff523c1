"""The real-money gate: ``perpbot run --mode live --real-money`` trades only a model whose saved
verdict is "edge confirmed".

The verdict is read from ``<model file>.verdict.json`` (:mod:`perpbot.ml.honesty.saved`; written
by ``perpbot optimize`` and ``perpbot backtest``) for the loaded model's version. Anything else —
no verdict, a verdict of another model version, "no edge shown", "too few trades to judge" —
refuses the start with one line and exit code 2, before anything is sent, unless
``--accept-unproven-model`` is given: then the start goes on, a warning is logged
(``unproven_model_accepted``) and the caller shows it in the banner, the run's ledger record
(``perpbot status``) and the daily summary.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from perpbot.logs import get_logger

log = get_logger("perpbot.live")

__all__ = ["check_model_verdict"]


def check_model_verdict(settings, strategy: str, model_path: Path | None, bundle, accept: bool) -> str | None:
    """None when the model's saved verdict is "edge confirmed"; else, with ``accept``, the reason
    (a one-line string to show); without ``accept``: print ``error: ...`` and raise ``typer.Exit(2)``."""
    from perpbot.app.jobs import model_file_for
    from perpbot.ml.honesty.saved import model_verdict, verdict_path

    path = model_file_for(settings, strategy, model_path)
    version = getattr(bundle, "version", None)
    why: str | None
    try:
        verdict, source = model_verdict(path, version)
    except ValueError as exc:
        verdict, source, why = None, None, str(exc)
    else:
        why = None
    if verdict is not None and verdict.confirmed:
        return None
    if verdict is None:
        why = why or (f"no saved verdict for model {version} ({verdict_path(path)} missing or for another "
                      f"version; run perpbot optimize)")
    else:
        why = f"model {version} verdict ({source}): {verdict.verdict}"
    if not accept:
        Console(stderr=True).print(f"[bold red]error:[/] real money refused: {why}; only an \"edge confirmed\" "
                                   f"model trades real money (override: --accept-unproven-model)",
                                   highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    log.warning("unproven_model_accepted", model_version=version, strategy=strategy, reason=why)
    return why
