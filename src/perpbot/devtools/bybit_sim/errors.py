"""Bybit errors of the simulator: ``{"retCode": 110001, "retMsg": "Order does not exist", ...}`` (HTTP 200,
as Bybit answers business errors), and the one table translating the shared engine's Bitget
:class:`SimError` codes into them.

Codes and messages are Bybit v5's ("Error Codes" page of the v5 API docs); the classes ccxt 4.5
raises for them come from ``bybit.exceptions["exact"]``: 10001 BadRequest, 10002 InvalidNonce,
10003 / 10004 AuthenticationError, 10006 RateLimitExceeded, 110001 OrderNotFound, 110007
InsufficientFunds, 110017 InvalidOrder (reduce-only rule), 110025 NoChange, 110026
MarginModeAlreadySet, 110043 BadRequest (leverage not modified), 110072 InvalidOrder (duplicate
orderLinkId), 110092 / 110093 InvalidOrder (trigger on the wrong side), 110094 InvalidOrder
(notional below the minimum), 3400045 ExchangeError (set margin mode failed).
"""

from __future__ import annotations

from perpbot.devtools.bitget_sim.errors import SimError
from perpbot.devtools.facade import VenueError


class BybitError(VenueError):
    """A refused request: ``code`` (int), ``msg``, HTTP ``status`` (200: Bybit's business errors),
    ``result`` (the envelope's ``result``, ``{}`` by default)."""

    def __init__(self, code: int, msg: str, status: int = 200, result: dict | None = None) -> None:
        super().__init__(int(code), msg, status)
        self.result = result or {}


#: Bitget engine code -> (Bybit code, message; None keeps the engine's message)
BITGET_TO_BYBIT: dict[str, tuple[int, str | None]] = {
    "40768": (110001, "Order does not exist"),
    "43025": (110001, "Order does not exist"),
    "40762": (110007, "ab not enough for new order"),
    "22002": (110017, "current position is zero, cannot fix reduce-only order qty"),
    "43023": (110017, "current position is zero, cannot fix reduce-only order qty"),
    "40917": (10001, "StopLoss set for Buy position should be lower than base_price"),
    "45122": (10001, "StopLoss set for Sell position should be higher than base_price"),
    "40915": (10001, "TakeProfit is on the wrong side of base_price"),
    "40786": (110072, "OrderLinkedID is duplicate"),
    "40305": (10001, "orderLinkId is invalid"),
    "45110": (110094, "Order notional value below the lower limit"),
    "45111": (10001, "The number of contracts exceeds minimum limit allowed"),
    "40808": (10001, "Qty invalid"),
    "41103": (10001, "price invalid"),
    "40034": (10001, "params error: symbol invalid"),
    "40019": (10001, None),
    "40017": (10001, None),
    "40797": (10001, "leverage invalid"),
}


def translate(exc: SimError) -> BybitError:
    """The Bybit error for an engine :class:`SimError` (table above). A code already Bybit's (armed by
    ``faults.reject_orders(code="110007")``, five digits or more) passes through; an unknown one
    becomes 10016 "Internal server error." with its text."""
    code = str(exc.code)
    if code.isdigit() and len(code) >= 6 or code in ("10001", "10006", "10016"):
        return BybitError(int(code), exc.msg)
    hit = BITGET_TO_BYBIT.get(code)
    if hit is None:
        return BybitError(10016, f"Internal server error. ({exc.msg})")
    bcode, msg = hit
    return BybitError(bcode, exc.msg if msg is None else msg)


def bad(msg: str) -> BybitError:
    """10001 "params error: ..." (ccxt: BadRequest)."""
    return BybitError(10001, f"params error: {msg}")
