"""Leverage set per trade: fields of :class:`perpbot.config.Settings` (kept here to keep that file small).

``leverage_mode = "adaptive"``: each entry's leverage is ``leverage`` scaled down by the volatility at the
signal (ATR as a percent of the price above ``leverage_target_atr``) and by the decision's size scale, a whole
number kept within [``leverage_min``, ``leverage``] (:func:`perpbot.sim.sizing.trade_leverage`). It changes the
position's initial margin and liquidation price, not its size (the sizing mode decides the quantity; the leverage
cap still applies). Simulated (backtest, paper replay, paper on live prices); a live node refuses it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class LeverageSettings(BaseModel):
    """Per-trade leverage (module docstring)."""

    # --- leverage per trade (simulated) -------------------------------------------------------
    leverage_mode: Literal["fixed", "adaptive"] = Field("fixed", description="fixed: every entry at `leverage`; "
                                                        "adaptive: from volatility and the size scale (simulated)")
    leverage_min: float = Field(1.0, ge=1, le=125, description="adaptive: the lowest leverage of an entry")
    leverage_target_atr: float = Field(1.0, gt=0, le=100, description="adaptive: ATR, percent of the price, up to "
                                                                      "which an entry gets the full `leverage`")
