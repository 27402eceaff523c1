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
