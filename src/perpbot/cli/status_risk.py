"""The value-at-risk part of ``perpbot status``: VaR and expected shortfall at 95 % and 99 % over one
day and the worst days of the data replayed on the run's open position
(:mod:`perpbot.risk.var`: historical simulation over the UTC daily closes of the settings' candles
file), and their rows in the status table."""

from __future__ import annotations

from typing import Any

import pandas as pd
from rich.table import Table


def position_risk(settings, position: dict[str, Any] | None, symbol: str,
                  candles: pd.DataFrame | None = None) -> dict[str, Any]:
    """``{"report": perpbot.risk.var.risk_report(...) or None, "error": one line or None, "mark": USDT or None}``
    for ``position`` (a ``perpbot status`` position dict: side "long" / "short", qty,
    liquidation_price, optional mark_price) of ``symbol``. The daily returns come from ``candles``
    (default: ``settings.candles_file``, which must be ``settings.symbol``'s); the mark is the
    position's ``mark_price`` (the venue's, or the ledger's last snapshot), else the last close of
    the candles. Flat: VaR 0, no data read. Never raises on missing / short / unreadable data:
    ``error`` says why and ``report`` is None."""
    from perpbot.data.loader import load_candles
    from perpbot.risk.var import daily_returns, position_from, risk_report

    if not position or position.get("side") in (None, "flat", 0):
        return {"report": risk_report([], {}), "error": None, "mark": None}
    try:
        if candles is None:
            if symbol != settings.symbol:
                raise ValueError(f"the settings' candles are {settings.symbol}'s, the position is {symbol}'s")
            candles = load_candles(settings.candles_file, allow_gaps=True)
        mark = position.get("mark_price")
        if mark is None or pd.isna(mark):
            if not len(candles):
                raise ValueError("no candles to mark the position")
            mark = float(candles["close"].iloc[-1])
        report = risk_report(position_from(symbol, position, float(mark)), {symbol: daily_returns(candles)})
    except (ValueError, OSError) as exc:  # DataError is a ValueError
        return {"report": None, "error": str(exc), "mark": None}
    return {"report": report, "error": None, "mark": float(mark)}


def _usdt(x: float) -> str:
    return f"{x:,.2f} USDT"


def stress_table(report: dict[str, Any]) -> Table:
    """The stress days of a :func:`perpbot.risk.var.risk_report` as a Rich table (worst first)."""
    t = Table(show_edge=False, pad_edge=False, box=None)
    t.add_column("day")
    t.add_column("return", justify="right")
    t.add_column("PnL today", justify="right")
    t.add_column("liquidation")
    for row in report["stress"]:
        ret = ", ".join(f"{100 * leg['ret']:+.2f} %" for leg in row["legs"])
        liq = []
        for leg in row["legs"]:
            if leg["liquidated"] is None:
                liq.append("? (no liquidation price)")
            else:
                liq.append(f"{'REACHED' if leg['liquidated'] else 'no'} (at {100 * leg['liquidation_move']:+.2f} %)")
        t.add_row(row["day"], ret, f"{row['pnl']:+,.2f} USDT", ", ".join(liq))
    return t


def add_risk_rows(table: Table, risk: dict[str, Any]) -> None:
    """Add the value-at-risk rows of :func:`position_risk` to the status ``table``: VaR and ES per
    level (losses positive, USDT) with the days they come from, and the worst days replayed."""
    if risk.get("error"):
        table.add_row("value at risk", f"not available: {risk['error']}")
        return
    rep = risk["report"]
    if not rep["n_days"]:
        table.add_row("value at risk (1 day)", "0.00 USDT (flat)")
        return
    levels = rep["levels"]
    table.add_row("value at risk (1 day)", ", ".join(f"{100 * lv['level']:g} % {_usdt(lv['var'])}" for lv in levels)
                  + f"  (historical, {rep['n_days']} days {rep['first_day']}..{rep['last_day']}; "
                    f"exposure {_usdt(rep['exposure'])} at mark {risk['mark']:g})")
    table.add_row("expected shortfall (1 day)", ", ".join(f"{100 * lv['level']:g} % {_usdt(lv['es'])}" for lv in levels))
    table.add_row(f"worst {len(rep['stress'])} days replayed", stress_table(rep))
