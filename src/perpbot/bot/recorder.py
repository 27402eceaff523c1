"""What a trading cycle tells the world, written once for paper and live: the typed payloads of
the bot's events (:mod:`perpbot.bot.events` documents their keys) and their publication, and the
operator status of a cycle. The API, its WebSocket, Telegram and e-mail read these payloads.

Units: qty base asset, prices / money USDT, probabilities in [0, 1], times ISO 8601 UTC.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import pandas as pd

from perpbot.types import RiskEvent

#: Risk events that halt entries (published as ``risk_halt``).
HALT_EVENTS = (RiskEvent.DAILY_LOSS_HALT.label, RiskEvent.MAX_DRAWDOWN_HALT.label)


def side_label(side: int) -> str:
    """"long" for side +1, "short" for -1."""
    return "long" if side > 0 else "short"


@dataclass(frozen=True)
class EntryEvent:
    KIND: ClassVar[str] = "entry"
    side: str
    qty: float
    price: float
    stop_loss: float
    take_profit: float
    liquidation_price: float | None
    symbol: str | None = None      # a node over several symbols names it (with its tick and lot, USDT / base)
    tick_size: float | None = None
    lot_size: float | None = None


@dataclass(frozen=True)
class ExitEvent:
    KIND: ClassVar[str] = "exit"
    trade_id: int
    side: str
    qty: float
    entry_price: float
    exit_price: float
    reason: str
    pnl: float      # net: gross - fees - funding
    fees: float     # entry + exit fee
    funding: float  # > 0 paid
    symbol: str | None = None
    tick_size: float | None = None
    lot_size: float | None = None


@dataclass(frozen=True)
class RiskHaltEvent:
    KIND: ClassVar[str] = "risk_halt"
    event: str
    value: float


@dataclass(frozen=True)
class CycleEvent:
    KIND: ClassVar[str] = "cycle"
    bar: int
    candle_time: str
    equity: float
    position: float  # signed qty
    signal: int
    p_down: float | None
    p_flat: float | None
    p_up: float | None


Payload = EntryEvent | ExitEvent | RiskHaltEvent | CycleEvent


def publish(bus, payload: Payload):
    """Publish ``payload`` on the event bus as its kind with its fields as data."""
    return bus.publish(payload.KIND, **asdict(payload))


def publish_fills(bus, trades: pd.DataFrame, position: dict, risk_events: pd.DataFrame, bar: int,
                  market: dict | None = None) -> None:
    """The entry, exit and halt events of one candle of a simulated account: ``trades`` it closed (an
    entry first when the trade also opened in it), the ``position`` it opened (kernel position dict),
    its halting ``risk_events``; ``market`` = {symbol, tick_size, lot_size} for a node over several symbols."""
    m = market or {}
    for t in (trades.itertuples() if len(trades) else ()):
        if t.entry_bar == bar:  # opened (and closed) within this candle: its entry comes first
            publish(bus, EntryEvent(side_label(t.side), float(t.qty), float(t.entry_price), float(t.stop_loss),
                                    float(t.take_profit), float(t.liquidation_price), **m))
        publish(bus, ExitEvent(int(t.trade_id), side_label(t.side), float(t.qty), float(t.entry_price),
                               float(t.exit_price), t.exit_reason, float(t.pnl), float(t.fees), float(t.funding), **m))
    if position["side"] != 0 and position["entry_bar"] == bar:
        publish(bus, EntryEvent(side_label(position["side"]), position["qty"], position["entry_price"],
                                position["stop_loss"], position["take_profit"], position["liquidation_price"], **m))
    for e in (risk_events.itertuples() if len(risk_events) else ()):
        if e.event in HALT_EVENTS:
            publish(bus, RiskHaltEvent(e.event, float(e.value)))


def last_signal(signal: int, candle_time: pd.Timestamp, proba) -> dict[str, Any]:
    """The operator status' last signal: signal, candle time, probabilities (None without a model)."""
    return {"signal": int(signal), "time": candle_time.isoformat(),
            "p_down": None if proba is None else float(proba[0]), "p_flat": None if proba is None else float(proba[1]),
            "p_up": None if proba is None else float(proba[2])}


def publish_cycle(bus, bar: int, candle_time: pd.Timestamp, equity: float, position: float, last: dict) -> None:
    """The ``cycle`` event of a candle (``last``: :func:`last_signal`)."""
    publish(bus, CycleEvent(bar=bar, candle_time=candle_time.isoformat(), equity=equity, position=position,
                            signal=last["signal"], p_down=last["p_down"], p_flat=last["p_flat"], p_up=last["p_up"]))


def cycle_status(control, *, position, equity: float, last: dict, candle_time: pd.Timestamp, cycles: int,
                 **extra: Any) -> None:
    """The operator status after a cycle (position dict or None, equity, last signal, times, counters)."""
    control.update_status(position=position, equity=equity, last_signal=last, last_candle_time=candle_time.isoformat(),
                          last_cycle_time=pd.Timestamp.now(tz="UTC").isoformat(), cycles=cycles, **extra)
