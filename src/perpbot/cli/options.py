"""Shared pieces of the command line's grammar: fixed choices, ``--version``, one-line usage errors.

* :class:`NamedChoice` — the parser of ``--strategy`` / ``--model``: the valid names show in
  ``--help`` (``[ai|ema-cross|...]``) and complete in the shell; an unknown name is one line with
  a "did you mean" (difflib) and the list, exit 2, before anything is read or written; plug-in
  files (``FILE.py[:Name]``) and, for ``--model``, installed plug-ins' entry points pass too. (Typer
  0.29 vendors its own click, so a ``click.Choice`` subclass cannot be passed; a parser can.)
* :class:`OneLineErrorsGroup` — the Typer group of ``perpbot``: every usage error of the parser
  (unknown option or command, missing value, bad choice, a value of the wrong type) becomes one
  ``error: ...`` line on stderr with exit code 2, the same shape as perpbot's own errors
  (:func:`perpbot.cli.common.handled`), instead of a usage block.
* :func:`version_callback` — ``perpbot --version`` prints ``perpbot <version>`` and exits 0.

Exit codes (README "Bad input"): 2 usage / configuration, 1 data / runtime, 0 success.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperGroup

try:  # typer >= 0.22 carries its own click
    from typer._click import exceptions as _cx
except ImportError:  # pragma: no cover - older typer on the click package
    from click import exceptions as _cx  # type: ignore[no-redef]

__all__ = ["NamedChoice", "OneLineErrorsGroup", "choice_option", "model_choice", "strategy_choice",
           "train_strategy_choice", "version_callback"]

#: usage / configuration errors (the same value as perpbot.cli.common.EXIT_USAGE)
EXIT_USAGE = 2


def did_you_mean(value: str, known: list[str] | tuple[str, ...]) -> str:
    """`` (did you mean 'x'?)`` for the closest name (difflib, cutoff 0.6), or ""."""
    close = difflib.get_close_matches(str(value), list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class NamedChoice:
    """A fixed set of names as a Typer ``parser``; ``what`` names the kind in the error
    ("a strategy", "a model")."""

    def __init__(self, choices, what: str, files: bool = False,
                 more: Callable[[], list[str]] | None = None) -> None:
        self.choices = tuple(choices)
        self.what = what
        self.files = files  # also a plug-in file (FILE.py[:Name])
        self.more = more  # further names, looked up only when asked (installed plug-ins' entry points)
        self.__name__ = what  # shown by typer as the parameter type's name

    def _more(self) -> tuple[str, ...]:
        return tuple(n for n in self.more() if n not in self.choices) if self.more else ()

    def __call__(self, value: Any) -> str:
        if value in self.choices or (self.files and isinstance(value, str) and value.endswith(".py")
                                     or self.files and isinstance(value, str) and ".py:" in value):
            return str(value)
        known = self.choices + self._more()
        if value in known:
            return str(value)
        raise typer.BadParameter(f"{value!r} is not {self.what}{did_you_mean(value, known)}; choose one of: "
                                 f"{', '.join(known)}")

    @property
    def metavar(self) -> str:
        return "[" + "|".join(self.choices) + "]"

    def complete(self, incomplete: str) -> list[str]:
        return [c for c in self.choices + self._more() if c.startswith(incomplete)]


def choice_option(default: Any, choice: NamedChoice, *decls: str, help: str = "") -> Any:
    """A ``typer.Option`` restricted to ``choice`` (listed in --help, completed in the shell)."""
    return typer.Option(default, *decls, parser=choice, metavar=choice.metavar, autocompletion=choice.complete,
                        help=help)


def strategy_choice() -> NamedChoice:
    """Every strategy name of :data:`perpbot.strategy.signals.STRATEGIES`."""
    from perpbot.strategy.signals import STRATEGIES

    return NamedChoice(STRATEGIES, "a strategy (or a strategy file FILE.py[:ClassName])", files=True)


def train_strategy_choice() -> NamedChoice:
    """The strategies that train a model: ``ai`` and ``meta:<rule>``."""
    from perpbot.strategy.signals import STRATEGIES, is_model_strategy

    return NamedChoice([s for s in STRATEGIES if is_model_strategy(s)], "a model strategy")


def model_choice() -> NamedChoice:
    """Every model name of :data:`perpbot.ml.models.MODEL_NAMES`, the installed model plug-ins
    (entry points of ``perpbot.models``, read when a name is not built in) and model files
    ``FILE.py[:Factory]``."""
    from perpbot.config_values import BUILTIN_MODELS, model_entry_point_names  # (== MODEL_NAMES, without sklearn)

    return NamedChoice(BUILTIN_MODELS, "a model (or a model file FILE.py[:Factory])", files=True,
                       more=model_entry_point_names)


def version_callback(value: bool) -> None:
    """Eager ``--version``: print ``perpbot <version>`` and exit 0."""
    if value:
        from perpbot import __version__

        typer.echo(f"perpbot {__version__}")
        raise typer.Exit(0)


def _one_line(exc: Any) -> str:
    text = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, _cx.UsageError) and ctx is not None:
        text += f" (see '{ctx.command_path} --help')"
    return text


class OneLineErrorsGroup(TyperGroup):
    """The ``perpbot`` group: click's usage errors as one ``error:`` line, exit code 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode: bool = True,  # type: ignore[override]
             **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _cx.NoArgsIsHelpError as exc:  # bare ``perpbot``: the help, as click prints it
            exc.show()
            sys.exit(exc.exit_code)
        except _cx.ClickException as exc:
            from rich.markup import escape

            from perpbot.masking import redact_text

            from rich.console import Console

            Console(stderr=True).print(f"[bold red]error:[/] {escape(redact_text(_one_line(exc)))}", highlight=False,
                              soft_wrap=True)
            sys.exit(exc.exit_code if exc.exit_code else EXIT_USAGE)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


def timerange_option():
    """``--timerange START-END`` (freqtrade syntax; see :mod:`perpbot.cli.timerange`)."""
    return typer.Option(None, "--timerange", metavar="YYYYMMDD-YYYYMMDD",
                        help="UTC date range of the candles used: 20250601-20251201, 20250601- or -20251201 "
                             "(start inclusive, end exclusive)")


def symbol_option():
    """``--symbol`` (ccxt unified, e.g. SOL/USDT:USDT; picks that symbol's files in the data folder)."""
    return typer.Option(None, "--symbol", help="symbol whose files in the data folder are used, e.g. "
                                               "BTC/USDT:USDT (default: settings)")
