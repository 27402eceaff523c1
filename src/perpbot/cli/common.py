"""Shared pieces of the command line: settings loading, error handling, progress bars, tables.

Every command module imports this one (never :mod:`perpbot.cli.main`, which imports them).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from perpbot.config import ConfigError, Settings, load_settings

try:  # typer >= 0.22 carries its own click; the click package may not be installed at all
    from typer._click.exceptions import ClickException as _ClickException
except ImportError:  # pragma: no cover - older typer, on the click package
    from click import ClickException as _ClickException  # type: ignore[assignment]

console = Console()
err_console = Console(stderr=True)

ConfigOpt = typer.Option(None, "--config", "-c", help="TOML settings file (default: ./perpbot.toml if present)")

#: Exit codes: 2 = usage or configuration (bad option, setting, config file), 1 = data or runtime.
EXIT_USAGE, EXIT_RUNTIME = 2, 1
#: Largest run id a ledger stores (a signed 64-bit integer column).
MAX_RUN_ID = 2**63 - 1

_log_file: Path | None = None


class UserError(Exception):
    """An error whose message is shown to the user as is (exit code 1: data or runtime)."""


class UsageError(UserError):
    """A bad command-line argument (exit code 2, like a configuration error)."""


def _fail(message: str, code: int) -> None:
    """Print ``error: <message>`` as one line on stderr (Rich markup escaped, secrets redacted)
    and exit with ``code``."""
    from rich.markup import escape

    from perpbot.masking import redact_text

    line = " ".join(redact_text(str(message)).split())
    err_console.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _reason(exc: BaseException) -> str:
    """The first line of a library error, without SQLAlchemy's SQL echo and background link."""
    orig = getattr(exc, "orig", None)  # sqlalchemy DBAPIError: the driver's own message
    text = str(orig if orig is not None else exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@contextmanager
def handled():
    """Map every error to one ``error:`` line on stderr and an exit code, never a traceback.

    ConfigError / UsageError: 2. DataError, UserError, model and ledger errors, ValueError,
    OSError (a file that cannot be read or written) and database errors: 1. Anything else is
    a bug: one ``internal error`` line (exit 1) and the traceback in the JSON log file.
    """
    from perpbot.data import DataError

    try:
        yield
    except (typer.Exit, typer.Abort, _ClickException):
        raise
    except ConfigError as exc:
        _fail(str(exc), EXIT_USAGE)
    except UsageError as exc:
        _fail(str(exc), EXIT_USAGE)
    except DataError as exc:
        _fail(f"data: {exc}", EXIT_RUNTIME)
    except UserError as exc:
        _fail(str(exc), EXIT_RUNTIME)
    except ModuleNotFoundError as exc:  # an optional package: name the extra (perpbot.extras)
        from perpbot.extras import extra_for, missing_extra_message

        extra = extra_for(exc.name)
        if extra is None:
            _internal_error(exc)
        _fail(missing_extra_message(exc.name, extra), EXIT_RUNTIME)
    except Exception as exc:
        name = type(exc).__name__
        if name in ("ModelError", "ModelMismatchError", "LedgerError", "LedgerInputError", "UnknownRunError",
                    "LedgerConflictError") or isinstance(exc, (ValueError, FileNotFoundError)):
            _fail(f"{exc}", EXIT_RUNTIME)
        if type(exc).__module__.split(".")[0] in ("sqlalchemy", "psycopg", "sqlite3"):
            _fail(f"ledger database error: {_reason(exc)}", EXIT_RUNTIME)
        if isinstance(exc, OSError):
            where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
            _fail(f"{exc.strerror or name}{where}", EXIT_RUNTIME)
        _internal_error(exc)


def _internal_error(exc: BaseException) -> None:
    """A bug: one line for the user, the traceback (no local variables) in the log file."""
    where = ""
    if _log_file is not None:
        from perpbot.logs import get_logger

        get_logger("perpbot.cli").error("internal_error", error=f"{type(exc).__name__}: {exc}", exc_info=exc,
                                        file_only=True)  # the traceback in the file; stderr gets the one line
        where = f"; the traceback is in {_log_file}"
    _fail(f"internal error ({type(exc).__name__}: {_reason(exc)}): this is a bug, please report it{where}",
          EXIT_RUNTIME)


def settings_for(config: Optional[Path], **overrides) -> Settings:
    """Load the settings (:func:`perpbot.config.load_settings`) and start logging to
    ``<output_dir>/logs``. Raises ConfigError (exit 2), also when ``output_dir`` is a file."""
    global _log_file
    from perpbot.logs import configure_logging, register_settings_secrets

    s = load_settings(config, **overrides)
    if s.output_dir.exists() and not s.output_dir.is_dir():
        raise ConfigError(f"config error: output_dir = '{s.output_dir}' is a file, not a folder")
    _log_file = configure_logging(s.output_dir / "logs", s.log_level, max_bytes=s.log_max_bytes,
                                  backup_count=s.log_backup_count)
    register_settings_secrets(s)
    return s


# ------------------------------------------------------------------------------------ arguments
def check_strategy(value: str) -> str:
    """Typer callback of every ``--strategy`` option: an unknown name stops the command before
    anything is read, sent or written (exit 2, one line listing the valid names)."""
    from perpbot.strategy.signals import STRATEGIES, is_strategy

    if not is_strategy(value):
        _fail(f"--strategy {value!r} is not a strategy; choose one of: {', '.join(STRATEGIES)}", EXIT_USAGE)
    return value


def strategy_option(help: str = "the strategy", default: str = "ai"):
    """A ``--strategy`` option with the fixed choices of :func:`perpbot.cli.options.strategy_choice`
    (listed in ``--help``; an unknown name is one ``error:`` line with a suggestion, exit 2)."""
    from perpbot.cli.options import choice_option, strategy_choice

    return choice_option(default, strategy_choice(), "--strategy", help=help)


def check_run_id(value: Optional[int]) -> Optional[int]:
    """Typer callback of ``--run-id``: 1 .. 2**63-1 (exit 2 otherwise)."""
    if value is not None and not 1 <= value <= MAX_RUN_ID:
        _fail(f"--run-id must be a run number between 1 and {MAX_RUN_ID}, got {value}", EXIT_USAGE)
    return value


def check_output_file(path: Optional[Path], option: str) -> Optional[Path]:
    """Refuse an output file that cannot be written, before any work is done (UsageError):
    an existing folder, a parent that is a file, or a parent folder without write permission."""
    if path is None:
        return None
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{option} {p} is a folder; give a file name such as {p / 'report.html'}")
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{option} {p}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise UsageError(f"{option} {p}: no permission to write there")
    return p


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
    """The ledger of ``settings``; a database that cannot be opened raises UserError naming
    the URL with its password masked (:attr:`Settings.ledger_display`)."""
    from perpbot.storage.ledger import Ledger

    try:
        return Ledger(settings.ledger)
    except Exception as exc:
        if type(exc).__module__.split(".")[0] in ("sqlalchemy", "psycopg", "sqlite3") or isinstance(exc, OSError):
            raise UserError(f"cannot open the ledger {settings.ledger_display}: {_reason(exc)}") from None
        raise


# ------------------------------------------------------------------------------------ printing
def metrics_rich_table(table, title: str) -> Table:
    from perpbot.ml.trading_metrics import format_metrics_table

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
        decision_note(s, bundle),
    ]


def decision_note(s: Settings, bundle) -> str:
    """One line on how the model's probabilities become trades (EV rule or threshold)."""
    if s.decision == "threshold":
        return (f"Decision: a call when p_up or p_down >= {s.confidence_threshold} (fixed threshold), "
                "configured size.")
    cal = (getattr(bundle, "calibration", None) or {}).get("method", "none")
    return (f"Decision: expected return after costs (round trip 2 x (fee + slippage) = "
            f"{2 * (s.taker_fee + s.slippage):.2f}% and expected funding) must clear a margin chosen inside each "
            f"training window (nested); size {s.kelly_fraction:g} x Kelly capped at {s.risk_per_trade}% risk; "
            f"probabilities calibrated ({cal}) on the last slice of each training window.")
