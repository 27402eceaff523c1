"""Shared pieces of the command line: settings loading, error handling, progress bars, tables.

Every command module imports this one (never :mod:`perpbot.cli.main`, which imports them).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from perpbot.config import ConfigError, Settings, load_settings

console = Console()
err_console = Console(stderr=True)

ConfigOpt = typer.Option(None, "--config", "-c", help="TOML settings file (default: ./perpbot.toml if present)")


class UserError(Exception):
    """An error whose message is shown to the user as is."""


def _fail(message: str, code: int) -> None:
    from rich.markup import escape  # the message is text, not markup: "perpbot[deep]" must stay as is

    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def handled():
    """Map known errors to one line and an exit code; everything else is a bug (traceback)."""
    from perpbot.data import DataError

    try:
        yield
    except ConfigError as exc:
        _fail(str(exc), 2)
    except DataError as exc:
        _fail(f"data: {exc}", 1)
    except UserError as exc:
        _fail(str(exc), 1)
    except Exception as exc:  # library-specific user errors
        name = type(exc).__name__
        if name in ("ModelError", "ModelMismatchError", "LedgerError", "LedgerInputError", "UnknownRunError",
                    "LedgerConflictError"):
            _fail(f"{exc}", 1)
        if isinstance(exc, (ValueError, FileNotFoundError)):
            _fail(f"{exc}", 1)
        raise


def settings_for(config: Optional[Path], **overrides) -> Settings:
    from perpbot.logs import configure_logging, register_settings_secrets

    s = load_settings(config, **overrides)
    configure_logging(s.output_dir / "logs", s.log_level, max_bytes=s.log_max_bytes, backup_count=s.log_backup_count)
    register_settings_secrets(s)
    return s


def progress_bar(description: str):
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=err_console, transient=False)


@contextmanager
def progress_callback(description: str, total: int | None = None):
    with progress_bar(description) as bar:
        task = bar.add_task(description, total=total)

        def update(done: int, total_: int) -> None:
            bar.update(task, completed=done, total=total_)
        yield update


def open_ledger(settings: Settings):
    from perpbot.storage.ledger import Ledger

    return Ledger(settings.ledger)


# ------------------------------------------------------------------------------------ printing
def metrics_rich_table(table, title: str) -> Table:
    from perpbot.backtest.metrics import format_metrics_table

    shown = format_metrics_table(table)
    t = Table(title=title, show_lines=False)
    t.add_column("metric")
    for col in shown.columns:
        t.add_column(str(col), justify="right")
    for metric, row in shown.iterrows():
        t.add_row(str(metric), *[str(v) for v in row])
    return t


def model_metrics_table(metrics: dict) -> Table:
    t = Table(title="Model, out of sample (walk-forward)")
    t.add_column("metric")
    t.add_column("model", justify="right")
    t.add_column("base rate", justify="right")
    for key, value in metrics.items():
        if key.endswith("_base") or not isinstance(value, (int, float)):
            continue
        base = metrics.get(f"{key}_base")
        t.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value),
                  "" if base is None else f"{base:.4f}")
    return t


def model_metrics_frame(metrics: dict):
    """Model metrics beside their base rates, as display strings (counts whole, rates 4 dp)."""
    import pandas as pd

    def fmt(v):
        if v is None or (isinstance(v, float) and v != v):
            return "n/a"
        return f"{v:,}" if isinstance(v, int) else f"{v:.4f}"

    rows = {k: (fmt(v), fmt(metrics.get(f"{k}_base"))) for k, v in metrics.items()
            if not k.endswith("_base") and isinstance(v, (int, float))}
    return pd.DataFrame.from_dict(rows, orient="index", columns=["model", "base rate"])


def notes_for(s: Settings, bundle) -> list[str]:
    return [
        f"AI model {bundle.version}: probabilities are out of sample (walk-forward, purge = label horizon "
        f"{s.label_horizon} bars); bars after the training data use the final model.",
        f"Costs: taker fee {s.taker_fee}% per side, slippage {s.slippage}% per market fill, funding every 8 h "
        f"(qty x mark x rate) {'on' if s.funding else 'off'}; isolated margin {s.leverage}x with liquidation.",
        f"Risk: {s.sizing} sizing, {s.risk_per_trade}% risk per trade, SL {s.stop_loss}% / TP {s.take_profit}% "
        f"({s.stop_mode}), daily loss limit {s.max_daily_loss}%, max drawdown {s.max_drawdown}%.",
        "Buy-and-hold: 1x full equity long from the first tradable bar, no stops; ema-cross and scoring use "
        "the same risk settings as the AI.",
    ]
