"""Display of a :class:`~perpbot.ml.honesty.block.HonestyReport`: string tables, a Rich renderable, plain text.

:func:`honesty_tables` formats every figure once (fractions as percent with 2 dp, ratios
and probabilities with 2-4 dp, NaN as "n/a"); the terminal (:func:`honesty_rich`,
:func:`honesty_text`) and the HTML report (:mod:`perpbot.backtest.report`) draw the same
tables.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from perpbot.ml.honesty.verdict import EDGE_CONFIRMED, NO_EDGE

__all__ = ["HonestyTable", "honesty_rich", "honesty_tables", "honesty_text", "verdict_style"]


@dataclass(frozen=True)
class HonestyTable:
    """A titled table of display strings: ``columns`` names, ``rows`` of equal length."""

    title: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]


def _na(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def pct(v) -> str:
    """Fraction -> percent with 2 dp (``0.1234`` -> ``"12.34%"``); None/NaN -> ``"n/a"``."""
    return "n/a" if _na(v) else ("inf" if math.isinf(v) else f"{v * 100:.2f}%")


def num(v, dp: int = 2) -> str:
    """Number with ``dp`` decimals; None/NaN -> ``"n/a"``, infinity -> ``"inf"``."""
    if _na(v):
        return "n/a"
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:,}" if isinstance(v, int) else f"{v:.{dp}f}"


def pvalue(v) -> str:
    """A p-value: 4 dp, or 3 significant digits below 0.0001 (``1.23e-25``); None/NaN -> ``"n/a"``."""
    if _na(v):
        return "n/a"
    if v == 0.0:
        return "< 1e-300"  # below the smallest double the test can return
    return f"{v:.4f}" if v >= 1e-4 else f"{v:.3g}"


def verdict_style(verdict: str) -> str:
    """Rich style of a verdict: green when confirmed, red for no edge, yellow for too few trades."""
    return {EDGE_CONFIRMED: "bold green", NO_EDGE: "bold red"}.get(verdict, "bold yellow")


def _targets(rep) -> HonestyTable:
    rows = []
    for r in rep.targets:
        fmt = pct if r.unit == "fraction" else num
        result = "n/a" if r.passed is None else ("pass" if r.passed else "FAIL")
        beats = "n/a" if r.beats_reference is None else ("yes" if r.beats_reference else "no")
        rows.append((r.label, fmt(r.value), result, r.reference_label, fmt(r.reference), beats))
    return HonestyTable(f"Seed targets ({rep.strategy})",
                        ("target", "value", "result", "beside", "its value", "better than it"), rows)


def _sharpe(rep) -> HonestyTable:
    s = rep.sharpe
    var = s.get("trials_sharpe_variance")
    rows = [
        ("Sharpe ratio (annualised, daily returns)", num(s["sharpe"])),
        ("days of returns", num(s["n_days"])),
        ("skew / kurtosis (non-excess) of daily returns", f"{num(s['skew'])} / {num(s['kurtosis'])}"),
        ("PSR: P(true Sharpe > 0)", num(s["psr"], 4)),
        ("trials (configurations tried)", num(s["n_trials"])),
        ("variance of the trials' Sharpe ratios (annualised)", num(var, 4)),
        ("expected max Sharpe of the trials (annualised)", num(s["expected_max_sharpe"])),
        ("DSR: P(true Sharpe > expected max of the trials)", num(s["dsr"], 4)),
    ]
    return HonestyTable("Probabilistic and deflated Sharpe ratio (Bailey & López de Prado, 2014)",
                        ("statistic", "value"), rows)


def _bootstrap(rep) -> HonestyTable | None:
    if not rep.bootstrap:
        return None
    names = {"sharpe": ("Sharpe ratio (annualised)", num), "max_drawdown": ("max drawdown (daily equity)", pct),
             "profit_factor": ("profit factor (trades)", num)}
    rows, level = [], None
    for key, iv in rep.bootstrap.items():
        label, fmt = names.get(key, (key, num))
        level = iv.level
        rows.append((label, fmt(iv.point), fmt(iv.low), fmt(iv.high), num(iv.block_size, 1), num(iv.n_boot)))
    return HonestyTable(f"Bootstrap {level * 100:.0f}% intervals (stationary block bootstrap)",
                        ("statistic", "estimate", "low", "high", "mean block", "resamples"), rows)


def _monte_carlo(rep) -> HonestyTable | None:
    mc = rep.monte_carlo
    if mc is None:
        return None
    lv = f"{mc.level * 100:.0f}%"
    rows = [
        ("trades / paths", f"{mc.n_trades:,} / {mc.reps:,}", ""),
        ("final return (observed)", pct(mc.final_return), ""),
        ("max drawdown (observed, trade by trade)", pct(mc.max_drawdown), ""),
        ("max drawdown, trades reshuffled", pct(mc.shuffle_dd_median),
         f"{lv}: {pct(mc.shuffle_dd_low)} .. {pct(mc.shuffle_dd_high)}"),
        ("share of reshuffles with a deeper drawdown", pct(mc.prob_worse_dd), ""),
        ("final return, trades resampled", pct(mc.resample_return_median),
         f"{lv}: {pct(mc.resample_return_low)} .. {pct(mc.resample_return_high)}"),
        ("max drawdown, trades resampled", pct(mc.resample_dd_median),
         f"{lv}: {pct(mc.resample_dd_low)} .. {pct(mc.resample_dd_high)}"),
        ("P(final return < 0), resampled", pct(mc.prob_loss), ""),
    ]
    return HonestyTable("Monte Carlo of the trade sequence", ("statistic", "median / value", "range"), rows)


def _precision(rep) -> HonestyTable | None:
    t = rep.precision_test
    if t is None:
        return None
    rows = [("confident calls / right", f"{t.n:,} / {t.k:,}"), ("precision", pct(t.precision)),
            ("base rate", pct(t.base_rate)), ("p-value (precision > base rate)", pvalue(t.p_value)),
            (f"precision, {t.level * 100:.0f}% lower bound (Clopper-Pearson)", pct(t.ci_low))]
    return HonestyTable("Binomial test of the confident calls", ("statistic", "value"), rows)


def _pbo(rep) -> HonestyTable | None:
    p = rep.pbo
    if not p:
        return None
    rows = [("PBO (share of logits <= 0)", num(p["pbo"], 4)), ("trials / splits / combinations",
            f"{p['n_trials']} / {p['n_splits']} / {p['n_combinations']:,}"),
            ("median logit", num(p["logit_median"], 3)),
            ("degradation slope (OOS on IS Sharpe)", num(p["degradation_slope"], 3)),
            ("P(IS-best trial loses out of sample)", pct(p["prob_oos_loss"]))]
    return HonestyTable("Probability of backtest overfitting (CSCV; Bailey, Borwein, López de Prado & Zhu, 2017)",
                        ("statistic", "value"), rows)


def honesty_tables(rep) -> list[HonestyTable]:
    """Every table of the report, in display order (targets, Sharpe, PBO, bootstrap, Monte Carlo, binomial)."""
    tables = [_targets(rep), _sharpe(rep), _pbo(rep), _bootstrap(rep), _monte_carlo(rep), _precision(rep)]
    return [t for t in tables if t is not None]


def honesty_rich(rep) -> Group:
    """Rich renderable: the verdict line, every table, then the notes (``console.print(honesty_rich(rep))``)."""
    parts = [Text.assemble(("Verdict: ", "bold"), (rep.verdict.verdict, verdict_style(rep.verdict.verdict)),
                           (" — " + "; ".join(rep.verdict.reasons) if rep.verdict.reasons else ""))]
    for t in honesty_tables(rep):
        table = Table(title=t.title, title_justify="left")
        for i, c in enumerate(t.columns):
            table.add_column(c, justify="left" if i == 0 else "right")
        for row in t.rows:
            cells = [Text(v, style="green" if v == "pass" else "red" if v == "FAIL" else "") for v in row]
            table.add_row(*cells)
        parts.append(table)
    if rep.notes:
        parts.append(Text("\n".join(f"note: {n}" for n in rep.notes), style="dim"))
    return Group(*parts)


def honesty_text(rep, width: int = 110) -> str:
    """Plain text (no colour codes) of :func:`honesty_rich`, e.g. for logs or a file."""
    buf = io.StringIO()
    Console(file=buf, width=width, no_color=True, color_system=None, highlight=False).print(honesty_rich(rep))
    return buf.getvalue()
