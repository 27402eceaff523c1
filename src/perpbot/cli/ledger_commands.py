"""``perpbot ledger ...``: maintenance of the run ledger (``prune``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from perpbot.cli.common import ConfigOpt, UsageError, console, handled, open_ledger, settings_for

ledger_app = typer.Typer(no_args_is_help=True, help="Maintain the run ledger (retention).")


@ledger_app.command("prune")
def prune(config: Optional[Path] = ConfigOpt,
          keep_days: int = typer.Option(..., "--keep-days", help="keep the last N days of per-cycle rows"),
          dry_run: bool = typer.Option(False, "--dry-run", help="count what would be deleted, delete nothing")) -> None:
    """Delete predictions and position snapshots older than N days; runs, orders, fills,
    trades, equity, funding payments and risk events are kept."""
    from perpbot.storage.retention import prune_cutoff, prune_ledger

    with handled():
        try:
            cutoff = prune_cutoff(keep_days)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        s = settings_for(config)
        led = open_ledger(s)
        try:
            counts = prune_ledger(led, keep_days, dry_run=dry_run)
        finally:
            led.close()
        verb = "would delete" if dry_run else "deleted"
        rows = ", ".join(f"{n} {table}" for table, n in counts.items())
        console.print(f"{verb} {rows} older than {cutoff:%Y-%m-%d %H:%M} UTC ({s.ledger_display})")
