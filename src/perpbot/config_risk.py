"""How each trade is levered and protected: fields of :class:`perpbot.config.Settings` (kept here to keep
that file small).

**Leverage per trade.**
``leverage_mode = "adaptive"``: each entry's leverage is ``leverage`` scaled down by the volatility at the
signal (ATR as a percent of the price above ``leverage_target_atr``) and by the decision's size scale, a whole
number kept within [``leverage_min``, ``leverage``] (:func:`perpbot.sim.sizing.trade_leverage`). It changes the
position's initial margin and liquidation price, not its size (the sizing mode decides the quantity; the leverage
cap still applies). Backtest, paper and live (the live node sets it on the venue before each entry that needs
another one, :mod:`perpbot.exchange.leverage`).

**Stops at support / resistance** (``stop_mode = "levels"``): a long's stop-loss is the lowest low of the
``levels_lookback`` candles before the entry minus ``levels_buffer_atr`` x ATR, its take-profit their highest
high (a short: the mirror); the entry is refused (``risk_reward`` risk event, value = the ratio) unless the
take-profit is at least ``min_risk_reward`` times as far from the fill as the stop-loss, or when the price is
already beyond a level (:func:`perpbot.sim.sizing.protective_levels`). Backtest, paper and live alike.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class TradeRiskSettings(BaseModel):
    """Per-trade leverage and stops at support / resistance (module docstring)."""

    # --- leverage per trade (simulated) -------------------------------------------------------
    leverage_mode: Literal["fixed", "adaptive"] = Field("fixed", description="fixed: every entry at `leverage`; "
                                                        "adaptive: from volatility and the size scale")
    leverage_min: float = Field(1.0, ge=1, le=125, description="adaptive: the lowest leverage of an entry")
    leverage_target_atr: float = Field(1.0, gt=0, le=100, description="adaptive: ATR, percent of the price, up to "
                                                                      "which an entry gets the full `leverage`")

    # --- stops at support / resistance (stop_mode = "levels") --------------------------------
    levels_lookback: int = Field(48, ge=2, le=10_000, description="candles before the entry whose lowest low / "
                                                                  "highest high are the support / resistance")
    levels_buffer_atr: float = Field(0.25, ge=0, le=20, description="ATR multiples the stop-loss sits beyond its "
                                                                    "level")
    min_risk_reward: float = Field(1.5, gt=0, le=100, description="refuse an entry whose take-profit is less than "
                                                                  "this many times as far as its stop-loss")
