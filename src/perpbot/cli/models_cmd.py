"""``perpbot models promote FILE``: roll a retrained model into a running node
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


@models_app.command("promote")
def promote(file: Path = typer.Argument(..., help="a model saved by perpbot train (its .json beside it)"),
            config: Optional[Path] = ConfigOpt,
            run_id: Optional[int] = typer.Option(None, "--run-id", help="default: the latest running node")) -> None:
    """Queue FILE for a running node: checked now (same symbol, timeframe, strategy and features as the
    model it runs), swapped in by the node at its next candle; open positions stay as they are."""
    from perpbot.bot.promotion import check_compatible, queue_promotion
    from perpbot.ml.registry import load_bundle
    from perpbot.strategy.signals import is_model_strategy

    with handled():
        s = settings_for(config)
        led = open_ledger(s)
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
