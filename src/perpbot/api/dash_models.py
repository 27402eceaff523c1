"""Response models of the dashboard's reads (:mod:`perpbot.api.dash_routes`).

Units as in :mod:`perpbot.api.models`: USDT, base-asset quantities, fractions (not percents),
ISO-8601 UTC times, NaN/inf as ``null``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class HaltOut(BaseModel):
    time: str = Field(description="UTC time of the bar whose close breached the limit")
    event: str = Field(description="daily_loss_halt | max_drawdown_halt")
    value: float | None = Field(None, description="the equity change that breached the limit (fraction)")


class VarLevelOut(BaseModel):
    level: float = Field(description="confidence level (fraction: 0.95, 0.99)")
    var: float = Field(description="1-day value-at-risk: minus the (1 - level) quantile of the scenario PnLs "
                                   "(USDT, a loss is positive)")
    es: float = Field(description="1-day expected shortfall: minus the mean scenario PnL at or below that "
                                  "quantile (USDT, a loss is positive, >= var)")


class StressLegOut(BaseModel):
    symbol: str
    side: int = Field(description="+1 long, -1 short")
    ret: float = Field(description="the day's close-to-close return (fraction)")
    pnl: float = Field(description="side x qty x mark x ret (USDT)")
    liquidation_move: float | None = Field(None, description="(liquidation price - mark) / mark (fraction)")
    liquidated: bool | None = Field(None, description="the day's move reaches the liquidation price; "
                                                      "null without one")


class StressDayOut(BaseModel):
    day: str = Field(description="UTC day YYYY-MM-DD")
    pnl: float = Field(description="the day's moves replayed on today's positions (USDT)")
    liquidated: bool | None = Field(None, description="some position's liquidation price is reached")
    legs: list[StressLegOut]


class VarOut(BaseModel):
    """Historical-simulation VaR / ES of the open position(s) (perpbot.risk.var.risk_report)."""

    method: str
    horizon_days: int
    n_days: int = Field(description="daily scenarios used (0 when flat)")
    first_day: str | None = None
    last_day: str | None = None
    exposure: float = Field(description="gross notional of the positions at the mark (USDT)")
    levels: list[VarLevelOut] = Field(description="95 % and 99 %")
    stress: list[StressDayOut] = Field(description="the worst days of the data replayed today, worst first")


class RiskOut(BaseModel):
    """Risk figures of a run now: from its recorded equity and, for the bot's own run, the bot's status."""

    run_id: int
    running: bool = Field(description="the bot is running this run now")
    mode: str | None = None
    time: str | None = Field(None, description="time of the latest equity point (candle close, UTC)")
    equity: float | None = Field(None, description="latest equity (USDT)")
    starting_capital: float
    peak_equity: float | None = Field(None, description="running peak of equity, at least the starting capital")
    drawdown: float | None = Field(None, description="equity / peak - 1 now (<= 0)")
    max_drawdown: float | None = Field(None, description="deepest drawdown so far (<= 0)")
    total_return: float | None = Field(None, description="equity / starting capital - 1")
    day: str | None = Field(None, description="UTC day of the latest equity point (YYYY-MM-DD)")
    day_start_equity: float | None = Field(None, description="equity at 00:00 UTC of that day (USDT)")
    daily_pnl: float | None = Field(None, description="equity - day_start_equity (USDT)")
    daily_return: float | None = Field(None, description="daily_pnl / day_start_equity")
    position_side: int = Field(0, description="+1 long, -1 short, 0 flat")
    notional: float = Field(0.0, description="open position qty x mark price (last close) in USDT")
    mark_price: float | None = Field(None, description="last close used for the notional (USDT)")
    leverage: float | None = Field(None, description="effective leverage: notional / equity (x)")
    model_live: dict | None = Field(None, description="the run's recorded calls against their realised labels "
                                                      "beside the model's out-of-sample precision "
                                                      "(perpbot.ml.outcomes.scorecard); None without calls")
    value_at_risk: VarOut | None = Field(None, description="1-day VaR, ES and worst days of the open position "
                                                          "(zero when flat); null when the candles cannot give it")
    value_at_risk_error: str | None = Field(None, description="why value_at_risk is null")
    max_leverage: float = Field(description="the settings' exchange leverage (x)")
    halts: list[HaltOut] = Field(description="risk halts of the run, oldest first (at most the last 50)")
    halt_count: int
    halted: str | None = Field(None, description="the halt in force at the latest point, or null")


class DailyPoint(BaseModel):
    day: str = Field(description="UTC day YYYY-MM-DD")
    pnl: float = Field(description="equity at the day's close minus at the previous close (USDT)")
    ret: float = Field(description="pnl / equity at the previous close")
    equity: float = Field(description="equity at the day's close (USDT)")


class DailyOut(BaseModel):
    run_id: int
    days: list[DailyPoint]


class IndicatorLine(BaseModel):
    name: str = Field(description="e.g. 'EMA 20', 'Donchian upper 20'")
    time: list[str] = Field(description="candle open times (UTC), as /api/v1/candles")
    value: list[float | None] = Field(description="USDT; null before the indicator is defined")


class IndicatorsOut(BaseModel):
    run_id: int | None
    strategy: str | None
    lines: list[IndicatorLine]


class LogsOut(BaseModel):
    file: str = Field(description="the log file, relative to the output directory")
    exists: bool = Field(description="false until a perpbot command has written the log file")
    lines: list[dict[str, Any]] = Field(description="newest last; JSON log records with secrets masked "
                                                    "(a line that is not JSON: {'text': ...})")
    truncated: bool = Field(description="older lines exist beyond the requested number")
