"""Pydantic request/response models of the REST API (they make the OpenAPI schema meaningful).

Units everywhere: money in USDT, quantities in the base asset (SOL), rates and drawdowns as
fractions (``-0.2`` = 20 % below the peak, never percents), times ISO-8601 UTC. Non-finite
numbers (NaN, inf) are sent as ``null``: :func:`clean` converts every payload before it
reaches a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from perpbot.storage.convert import LedgerInputError, to_jsonable

#: The strategies a backtest job runs: perpbot.strategy.signals.STRATEGIES (a test keeps them equal).
StrategyName = Literal["ai", "ema-cross", "scoring", "buy-and-hold", "donchian", "meta:ema-cross", "meta:donchian",
                       "meta:scoring"]

JobStatus = Literal["queued", "running", "finished", "failed"]


def clean(obj: Any) -> Any:
    """``obj`` as plain JSON values: NaN/inf -> None, numpy/pandas scalars -> Python,
    timestamps -> ISO-8601 strings; anything unknown -> ``str(obj)`` (never raises)."""
    if isinstance(obj, Mapping):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [clean(v) for v in obj]
    try:
        return to_jsonable(obj)
    except LedgerInputError:
        return str(obj)


class ErrorOut(BaseModel):
    detail: str | list[Any] = Field(description="what went wrong (422: a list of validation errors)")


class HealthOut(BaseModel):
    """Liveness of the process and of the bot behind it (no secrets, no positions)."""

    status: Literal["ok"] = "ok"
    version: str
    uptime_s: float = Field(description="seconds since this process started")
    running: bool = Field(False, description="the bot loop is running")
    last_candle_time: str | None = Field(None, description="open time (UTC) of the last candle the bot processed")
    lag_s: float | None = Field(None, description="seconds since that candle closed (None before the first)")
    errors: int = Field(0, description="errors the bot counted (failed cycles, ledger writes)")


class StatusOut(BaseModel):
    """The bot's status (``BotControl.status()``) plus the run the API shows."""

    model_config = ConfigDict(extra="allow")
    mode: str | None = None
    strategy: str | None = None
    symbol: str | None = None
    timeframe: str | None = None
    paused: bool = False
    running: bool = False
    position: dict[str, Any] | None = Field(None, description="open position of the bot (side +1/-1, qty, prices)")
    equity: float | None = Field(None, description="USDT")
    last_signal: dict[str, Any] | None = Field(None, description="{signal, p_down, p_flat, p_up, time}")
    last_cycle_time: str | None = None
    last_candle_time: str | None = None
    cycles: int = 0
    errors: int = 0
    run_id: int | None = Field(None, description="the bot's own run, else the latest run in the ledger")


class BalanceOut(BaseModel):
    equity: float | None = Field(None, description="USDT")
    starting_capital: float = Field(description="USDT")
    pnl: float | None = Field(None, description="equity - starting capital, USDT")
    currency: str = "USDT"
    run_id: int | None = None


class PositionOut(BaseModel):
    symbol: str
    side: Literal["long", "short"]
    qty: float | None = Field(None, description="base asset")
    entry_price: float | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    liquidation_price: float | None = None
    margin: float | None = Field(None, description="isolated margin, USDT")


class PositionsOut(BaseModel):
    positions: list[PositionOut]


class OrderOut(BaseModel):
    client_order_id: str
    time: datetime
    side: Literal["buy", "sell"]
    type: str = Field(description="market | limit | stop | take_profit")
    qty: float = Field(description="base asset")
    price: float | None = Field(None, description="limit or trigger price, USDT (null for market orders)")
    status: str | None = None
    reason: str | None = None
    trade_no: int | None = None


class OrdersOut(BaseModel):
    run_id: int
    orders: list[OrderOut]


class TradeOut(BaseModel):
    trade_id: int
    side: Literal["long", "short"]
    qty: float = Field(description="base asset")
    entry_time: datetime
    entry_price: float
    exit_time: datetime | None = None
    exit_price: float | None = None
    exit_reason: str | None = None
    pnl: float | None = Field(None, description="net of fees and funding, USDT")
    fees: float | None = Field(None, description="USDT paid")
    funding: float | None = Field(None, description="USDT paid (> 0) or received (< 0)")


class TradesOut(BaseModel):
    run_id: int
    trades: list[TradeOut] = Field(description="most recent last")


class SignalOut(BaseModel):
    time: datetime
    p_down: float | None = None
    p_flat: float | None = None
    p_up: float | None = None
    confidence: float | None = None
    signal: int | None = Field(None, description="-1 sell, 0 hold, 1 buy")
    decision: str | None = None
    model_version: str | None = None


class SignalsOut(BaseModel):
    run_id: int
    signals: list[SignalOut]


class EquityPoint(BaseModel):
    time: datetime
    equity: float = Field(description="USDT")
    drawdown: float = Field(description="equity / running peak - 1 (fraction <= 0)")


class EquityOut(BaseModel):
    run_id: int
    points: list[EquityPoint]


class RunInfo(BaseModel):
    id: int
    kind: str
    strategy: str
    status: str
    symbol: str
    timeframe: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    data_range_start: datetime | None = None
    data_range_end: datetime | None = None


class MetricsOut(BaseModel):
    run_id: int
    metrics: dict[str, Any] = Field(description="the run's metrics (perpbot.ml.trading_metrics.trading_metrics)")
    run: RunInfo


class CandleOut(BaseModel):
    time: datetime = Field(description="candle open, UTC")
    open: float
    high: float
    low: float
    close: float
    volume: float = Field(description="base asset")


class CandlesOut(BaseModel):
    symbol: str
    timeframe: str
    run_id: int | None = None
    candles: list[CandleOut]


class ControlOut(BaseModel):
    ok: bool = True
    status: StatusOut


class RequestModel(BaseModel):
    """Base of every request body: unknown fields are refused, and so are NaN and infinite numbers
    (JSON ``NaN`` / ``Infinity`` / ``1e400``) in any numeric field (422)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class BacktestIn(RequestModel):
    strategy: StrategyName = Field(description="ai needs the saved model (perpbot train)")
    last_bars: int | None = Field(None, ge=500, le=10_000_000,
                                  description="backtest only the last N candles of the configured file")


class JobCreatedOut(BaseModel):
    job_id: str
    status: JobStatus


class JobOut(BaseModel):
    job_id: str
    status: JobStatus
    strategy: StrategyName
    last_bars: int | None = None
    run_ids: dict[str, int] = Field(default_factory=dict, description="strategy -> ledger run id")
    metrics: dict[str, dict[str, Any]] = Field(default_factory=dict, description="strategy -> metrics")
    error: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    report_url: str | None = Field(None, description="the HTML report, once finished")
