"""``perpbot runs`` (list, show, compare, delete) over the ledger, and the tables that fit 80 columns.

Every table here is built for the console's width (``COLUMNS``; 80 in a plain terminal): below
:data:`WIDE` columns a compact layout is chosen (fewer columns, short times ``MM-DD HH:MM``)
instead of letting Rich squeeze every cell into a wrapped sliver.

Errors: a run id that is not in the ledger is one line (exit 1):
``run 999 is not in the ledger sqlite:///runs/perpbot.db (perpbot runs lists the runs)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich import box
from rich.table import Table

from perpbot.cli.common import (
    ConfigOpt, UsageError, UserError, check_run_id, console, handled, metrics_rich_table, open_ledger, settings_for,
)

#: Console width from which the full (wide) tables are printed.
WIDE = 110

runs_app = typer.Typer(add_completion=False, no_args_is_help=False, invoke_without_command=True,
                       help="Past runs in the ledger: list (default), show ID, compare ID ID..., delete ID.")


def get_run_or_fail(led, settings, run_id: int) -> dict:
    """The run ``run_id`` of ``led``; a run that is not there raises UserError (one line, exit 1)."""
    from perpbot.storage.convert import UnknownRunError

    try:
        return led.get_run(run_id)
    except UnknownRunError:
        raise UserError(f"run {run_id} is not in the ledger {settings.ledger_display} "
                        "(perpbot runs lists the runs)") from None


def _narrow() -> bool:
    return console.width < WIDE


def _t(ts, narrow: bool) -> str:
    if ts is None or ts != ts:
        return ""
    return f"{ts:%m-%d %H:%M}" if narrow else f"{ts:%Y-%m-%d %H:%M}"


def _table(title: str, narrow: bool) -> Table:
    """Narrow: no borders or column rules (they cost 3 characters a column), underlined header."""
    if narrow:
        return Table(title=title, box=None, pad_edge=False, header_style="bold underline")
    return Table(title=title, box=box.HEAVY_HEAD)


def trades_table(df, title: str) -> Table:
    """A run's trades (``Ledger.trades`` frame): full columns on a wide console, on a narrow one
    the quantity is dropped and times are ``MM-DD HH:MM`` so the table fits 80 columns."""
    narrow = _narrow()
    t = _table(title, narrow)
    cols = (["#", "side", "entry", "price", "exit", "price", "exit_reason", "pnl"] if narrow else
            ["trade", "side", "qty", "entry_time", "entry_price", "exit_time", "exit_price", "exit_reason", "pnl"])
    for col in cols:
        t.add_column(col, justify="right", no_wrap=True)
    for r in df.itertuples():
        row = [str(r.trade_id), "long" if r.side > 0 else "short", f"{r.qty:g}", _t(r.entry_time, narrow),
               f"{r.entry_price:.3f}", _t(r.exit_time, narrow), f"{r.exit_price:.3f}", str(r.exit_reason),
               f"{r.pnl:.2f}"]
        if narrow:
            del row[2]
        t.add_row(*row)
    return t


def _metric(run: dict, key: str, fmt: str) -> str:
    value = (run.get("metrics") or {}).get(key)
    if value is None or value != value:
        return ""
    return format(value * 100 if fmt == "%" else value, ".2f" if fmt == "%" else fmt) + ("%" if fmt == "%" else "")


def runs_table(runs, limit: int) -> Table:
    """The latest ``limit`` runs (``Ledger.runs`` frame), newest last."""
    narrow = _narrow()
    t = _table(f"runs (last {min(limit, len(runs))} of {len(runs)})", narrow)
    cols = ["id", "kind", "strategy", "status", "started", "return", "trades"]
    if not narrow:
        cols[4:4] = ["symbol", "tf"]
        cols += ["sharpe", "max_dd", "model"]
    for col in cols:
        t.add_column(col, justify="left" if col in ("kind", "strategy", "status", "symbol", "model") else "right",
                     no_wrap=True, overflow="ellipsis", max_width=16 if col == "strategy" else None)
    for run in runs.tail(limit).to_dict("records"):
        trades = _metric(run, "trade_count", ".0f")
        row = [str(run["id"]), run["kind"], run["strategy"], run["status"], _t(run["started_at"], narrow),
               _metric(run, "total_return", "%"), trades]
        if not narrow:
            row[4:4] = [run["symbol"], run["timeframe"]]
            row += [_metric(run, "sharpe", ".2f"), _metric(run, "max_drawdown", "%"),
                    str(run.get("model_version") or "")[:24]]
        t.add_row(*row)
    return t


def _info_table(run: dict) -> Table:
    t = Table(title=f"run {run['id']}", show_header=False, box=box.SIMPLE)
    t.add_column("field", no_wrap=True)
    t.add_column("value", overflow="fold")
    for key in ("kind", "strategy", "exchange", "symbol", "timeframe", "status", "started_at", "finished_at",
                "data_range_start", "data_range_end", "model_version", "status_detail", "note"):
        value = run.get(key)
        if value is not None and value == value:
            t.add_row(key, f"{value:%Y-%m-%d %H:%M:%S} UTC" if hasattr(value, "strftime") else str(value))
    return t


def _metrics_of(runs: list[dict]):
    from perpbot.ml.trading_metrics import metrics_table

    return metrics_table({f"{r['id']} {r['strategy']}": dict(r.get("metrics") or {}) for r in runs})


@runs_app.callback()
def runs_list(ctx: typer.Context, config: Optional[Path] = ConfigOpt,
              limit: int = typer.Option(20, help="show the last N runs")) -> None:
    """List the ledger's runs, newest last (id, kind, strategy, status, start, return, trades)."""
    if ctx.invoked_subcommand is not None:
        return
    with handled():
        if limit < 1:
            raise UsageError(f"--limit must be >= 1, got {limit}")
        s = settings_for(config)
        runs = open_ledger(s).runs()
        if runs.empty:
            raise UserError(f"the ledger {s.ledger_display} has no runs yet (run perpbot backtest first)")
        console.print(runs_table(runs, limit))


@runs_app.command("show")
def runs_show(run_id: int = typer.Argument(..., callback=check_run_id, help="run id (perpbot runs lists them)"),
              config: Optional[Path] = ConfigOpt) -> None:
    """One run: what ran on what data, its metrics and its last trades."""
    with handled():
        s = settings_for(config)
        led = open_ledger(s)
        run = get_run_or_fail(led, s, run_id)
        console.print(_info_table(run))
        if run.get("metrics"):
            console.print(metrics_rich_table(_metrics_of([run]), "metrics"))
        trades = led.trades(run_id)
        if len(trades):
            console.print(trades_table(trades.tail(10), f"last {min(10, len(trades))} of {len(trades)} trades"))


@runs_app.command("compare")
def runs_compare(run_ids: List[int] = typer.Argument(..., help="two or more run ids"),
                 config: Optional[Path] = ConfigOpt) -> None:
    """Metrics of two or more runs side by side."""
    with handled():
        if len(run_ids) < 2:
            raise UsageError("compare needs at least two run ids, e.g. perpbot runs compare 3 4")
        for rid in run_ids:
            check_run_id(rid)
        s = settings_for(config)
        led = open_ledger(s)
        runs = [get_run_or_fail(led, s, rid) for rid in run_ids]
        console.print(metrics_rich_table(_metrics_of(runs), "runs compared"))


@runs_app.command("delete")
def runs_delete(run_ids: List[int] = typer.Argument(..., help="run ids to delete"),
                yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
                config: Optional[Path] = ConfigOpt) -> None:
    """Delete runs and every row they own (trades, equity, orders ...). A running run is refused."""
    with handled():
        for rid in run_ids:
            check_run_id(rid)
        s = settings_for(config)
        led = open_ledger(s)
        runs = [get_run_or_fail(led, s, rid) for rid in run_ids]
        busy = [r["id"] for r in runs if r["status"] == "running"]
        if busy:
            raise UserError(f"run {busy[0]} is still running; stop it first (runs that are running are never deleted)")
        if not yes and not typer.confirm(f"delete run(s) {', '.join(map(str, run_ids))} from {s.ledger_display}?"):
            raise typer.Exit(1)
        led.delete_runs(run_ids)
        console.print(f"deleted run(s) {', '.join(map(str, run_ids))}")
