"""The portfolio's risk budget: fields of :class:`perpbot.config.Settings` for runs over several symbols
(``--symbols``), kept here to keep that file small. Percent fields, as the other risk settings;
:class:`perpbot.sim.portfolio.PortfolioBudget` turns them into fractions."""

from __future__ import annotations

from pydantic import BaseModel, Field


class PortfolioSettings(BaseModel):
    """One account trading several symbols (:mod:`perpbot.sim.portfolio_kernel` applies these).

    Each symbol keeps the per-trade settings (sizing, stops, cooldown); the drawdown and daily-loss
    limits apply to the account's equity; these add the budget across the symbols."""

    # --- portfolio: several symbols on one account (--symbols) ----------------------------------
    portfolio_max_positions: int = Field(3, ge=0, le=100, description="open positions at once across the symbols "
                                                                      "(0 = no limit)")
    portfolio_max_total_margin: float = Field(50.0, ge=0, le=100, description="initial margin of all positions, "
                                                                              "percent of the balance (0 = no cap)")
    portfolio_max_symbol_margin: float = Field(0.0, ge=0, le=100, description="initial margin of one position, "
                                                                              "percent of the balance (0 = no cap)")
    portfolio_corr_threshold: float = Field(0.85, ge=0, le=1, description="refuse an entry when an open position in "
                                            "the same direction correlates at r >= this (0 = no guard)")
    portfolio_corr_window: int = Field(288, ge=2, le=100_000, description="closed candles of returns the "
                                                                          "correlation guard reads")
    portfolio_rerank_hours: float = Field(24.0, ge=0, le=8760, description="live --symbols auto:N: hours between "
                                          "two rankings of the venue's pairs (0 = rank once, at the start)")
