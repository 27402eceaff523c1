"""The portfolio's risk budget across the live loops of one node (one account, several symbols).

The rules of the portfolio backtest (:mod:`perpbot.sim.portfolio_kernel`), checked by each symbol's
:class:`~perpbot.bot.live.LiveBot` before it sends an entry, against the other symbols' loops of the
node (a position counts from the moment its entry is decided: while its order is in flight, then pending):

* ``max_positions``: that many other positions open -> veto ``max_positions`` (value = the count);
* the correlation guard: another position in the same direction whose close-to-close returns over
  the last ``corr_window`` candles both loops hold correlate at r >= ``corr_threshold`` -> veto
  ``correlated`` (value = r, :func:`~perpbot.sim.portfolio_kernel.returns_correlation`);
* the margin cap: initial margin + entry fee of the entry at most the least of (equity - others'
  margin), ``max_total_margin`` x equity - others' margin and ``max_symbol_margin`` x equity (USDT; live
  sizes from the venue's equity) -> ``margin_budget`` when nothing is left, else the entry shrinks.
"""

from __future__ import annotations

import math

import numpy as np

from perpbot.risk.rules import margin_budget
from perpbot.sim.portfolio import PortfolioBudget
from perpbot.sim.portfolio_kernel import returns_correlation
from perpbot.types import RiskEvent


class LiveBudget:
    """Shared by the node's loops (one asyncio event loop: no lock needed); ``bots`` registers them."""

    def __init__(self, budget: PortfolioBudget) -> None:
        self.budget = budget
        self.bots: list = []

    def _others(self, me) -> list[tuple[object, int, float]]:
        """(bot, side, initial margin USDT) of the other loops' positions and accepted entries."""
        out = []
        for b in self.bots:
            if b is me:
                continue
            if b.trade is not None:
                margin = b.trade.margin if b.trade.margin and math.isfinite(b.trade.margin) else (
                    b.trade.qty * b.trade.entry_price / (b.trade.leverage or b.cfg.leverage))
                out.append((b, b.trade.side, float(margin)))
            elif b.pending is not None or b.entering is not None:
                plan = b.pending.plan if b.pending is not None else b.entering
                out.append((b, plan.side, float(plan.qty * plan.price / plan.leverage)))
        return out

    def veto(self, me, side: int) -> tuple[str, float] | None:
        """(risk event, value) refusing ``me``'s entry in direction ``side``, or None."""
        others = self._others(me)
        if self.budget.max_positions > 0 and len(others) >= self.budget.max_positions:
            return RiskEvent.MAX_POSITIONS.label, float(len(others))
        if self.budget.corr_threshold > 0:
            for b, s, _ in others:
                if s == side:
                    r = self.correlation(me, b)
                    if r >= self.budget.corr_threshold:  # NaN (too few common candles) compares False
                        return RiskEvent.CORRELATED.label, r
        return None

    def correlation(self, a, b) -> float:
        """Pearson r of the two loops' close-to-close returns over the last ``corr_window`` candles
        they both hold (by candle time); NaN when fewer."""
        w = int(self.budget.corr_window)
        ca = {row[0]: row[4] for row in list(a.signals.window)[-(w + 1):]}
        cb = {row[0]: row[4] for row in list(b.signals.window)[-(w + 1):]}
        common = sorted(set(ca) & set(cb))
        if len(common) < w + 1:
            return math.nan
        xa = np.array([ca[t] for t in common], dtype=np.float64)
        xb = np.array([cb[t] for t in common], dtype=np.float64)
        return float(returns_correlation(xa, xb, len(common) - 1, w))

    def margin_cap(self, me, equity: float) -> float:
        """Initial margin + entry fee (USDT) the budget leaves ``me``'s entry."""
        used = sum(m for _, _, m in self._others(me))
        return float(margin_budget(float(equity), float(used), self.budget.max_total_margin,
                                   self.budget.max_symbol_margin))
