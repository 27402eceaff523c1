"""``perpbot models promote FILE`` / ``perpbot models retrain``: roll a retrained model into a running node
(:mod:`perpbot.bot.promotion`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from perpbot.cli.common import ConfigOpt, UserError, console, handled, open_ledger, settings_for

models_app = typer.Typer(no_args_is_help=True, help="Roll a retrained model into a running node.")


def running_node(led, run_id: int | None) -> dict:
    """The run to promote into: ``run_id``, or the latest running live run or paper run on live
    prices. Raises UserError when there is none, or when that run is not a running node."""
    if run_id is None:
        runs = led.runs()
        nodes = runs[(runs["status"] == "running") & runs["kind"].isin(["live", "paper"])] if len(runs) else runs
        for rid in reversed(list(nodes["id"]) if len(nodes) else []):
            run = led.get_run(int(rid))
            if run["kind"] == "live" or (run.get("config") or {}).get("dry_run"):
                return run
        raise UserError(f"no running node (live, or paper on live prices) in the ledger {led!r}")
    run = led.get_run(run_id)
    if run["status"] != "running":
        raise UserError(f"run {run_id} is {run['status']}: a model is promoted into a running node")
    if run["kind"] != "live" and not (run.get("config") or {}).get("dry_run"):
        raise UserError(f"run {run_id} is a {run['kind']} run over recorded candles: only a live node or a paper "
                        f"node on live prices takes a promoted model")
    return run


def queue_for_node(s, led, run_id: int | None, file: Path) -> None:
    """Check ``file`` against the running node's model and queue it (what ``models promote`` does); prints the
    outcome. Raises UserError for no running node or a rule strategy, ValueError / ModelError for a model
    that does not fit the node."""
    from perpbot.bot.promotion import check_compatible, queue_promotion
    from perpbot.ml.registry import load_bundle
    from perpbot.strategy.signals import is_model_strategy

    run = running_node(led, run_id)
    rid = int(run["id"])
    if not is_model_strategy(run["strategy"]):
        raise UserError(f"run {rid} trades {run['strategy']}, a rule without a model")
    bundle = load_bundle(file)
    check_compatible(bundle, symbol=run["symbol"], timeframe=run["timeframe"], strategy=run["strategy"],
                     features_hash=run.get("features_hash"))
    out_dir = (run.get("config") or {}).get("output_dir") or s.output_dir
    req = queue_promotion(out_dir, rid, file, bundle)
    console.print(f"model {bundle.version} queued for run {rid} ({run['kind']}, {run['symbol']} {run['timeframe']}, "
                  f"now {run.get('model_version')}): the node swaps it in at its next candle; the outcome is "
                  f"written to {req.with_name(req.stem + '.applied.json').name} or "
                  f"{req.with_name(req.stem + '.refused.json').name} in {req.parent}", highlight=False,
                  soft_wrap=True)


@models_app.command("promote")
def promote(file: Path = typer.Argument(..., help="a model saved by perpbot train (its .json beside it)"),
            config: Optional[Path] = ConfigOpt,
            run_id: Optional[int] = typer.Option(None, "--run-id", help="default: the latest running node")) -> None:
    """Queue FILE for a running node: checked now (same symbol, timeframe, strategy and features as the
    model it runs), swapped in by the node at its next candle; open positions stay as they are."""
    with handled():
        s = settings_for(config)
        queue_for_node(s, open_ledger(s), run_id, file)


@models_app.command("retrain")
def retrain(config: Optional[Path] = ConfigOpt,
            run_id: Optional[int] = typer.Option(None, "--run-id", help="default: the latest running node")) -> None:
    """Train the running node's model again on the settings' candles (walk-forward, as perpbot train, saved under
    runs/models/retrained-<UTC time>.joblib) and queue it for the node (as models promote). Run it on a schedule
    after perpbot download (deploy/perpbot-retrain.timer)."""
    import pandas as pd

    from perpbot.app.jobs import train_job
    from perpbot.cli.common import progress_callback

    with handled():
        s = settings_for(config)
        led = open_ledger(s)
        run = running_node(led, run_id)  # before the training: no node, no work
        stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S")
        path = s.output_dir / "models" / f"retrained-{stamp}.joblib"
        with progress_callback(f"walk-forward {s.model} ({run['strategy']})") as cb:
            out = train_job(s.model_copy(update={"model_path": path}), progress=cb, strategy=run["strategy"])
        console.print(f"trained {getattr(out.bundle, 'version', '?')} on {s.candles_file}: {out.path}", highlight=False)
        queue_for_node(s, led, int(run["id"]), Path(out.path))
