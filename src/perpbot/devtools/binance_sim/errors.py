"""Binance errors of the simulator: ``{"code": -2013, "msg": "Order does not exist."}`` with HTTP 400,
and the one table translating the shared engine's Bitget :class:`SimError` codes into them.

Codes and messages are Binance USDⓈ-M's ("Error Codes" page of the futures API docs); the
classes ccxt 4.5 raises for them come from ``binance.exceptions`` (``exact`` and ``linear.exact``):
-2013 OrderNotFound, -2011 OrderNotFound (cancel of an unknown / closed order), -2019
InsufficientFunds, -2021 OrderImmediatelyFillable, -2022 InvalidOrder, -4116 InvalidOrder
(duplicate client id), -4164 InvalidOrder, -1111 / -4014 / -1102 / -1130 / -1128 / -4015 /
-4028 BadRequest, -1121 BadSymbol, -4046 MarginModeAlreadySet, -4047 / -4048 / -4059
OperationRejected, -1021 InvalidNonce, -1022 / -2014 / -2015 AuthenticationError.
"""

from __future__ import annotations

from perpbot.devtools.bitget_sim.errors import SimError
from perpbot.devtools.facade import VenueError


class BinanceError(VenueError):
    """A refused request: ``code`` (negative int), ``msg``, HTTP ``status`` (400 by default);
    ``body()`` = ``{"code": code, "msg": msg}``."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(int(code), msg, status)


#: Bitget engine code -> (Binance code, message; None keeps the engine's message)
BITGET_TO_BINANCE: dict[str, tuple[int, str | None]] = {
    "40768": (-2013, "Order does not exist."),
    "43025": (-2013, "Order does not exist."),
    "40762": (-2019, "Margin is insufficient."),
    "22002": (-2022, "ReduceOnly Order is rejected."),
    "43023": (-2022, "ReduceOnly Order is rejected."),
    "40917": (-2021, "Order would immediately trigger."),
    "45122": (-2021, "Order would immediately trigger."),
    "40915": (-2021, "Order would immediately trigger."),
    "40786": (-4116, "ClientOrderId is duplicated."),
    "40305": (-4015, "Client order id is not valid."),
    "45110": (-4164, "Order's notional must be no smaller than {} (unless you choose reduce only)."),
    "45111": (-4003, "Quantity less than or equal to zero."),
    "40808": (-1111, "Precision is over the maximum defined for this asset."),
    "41103": (-4014, "Price not increased by tick size."),
    "40034": (-1121, "Invalid symbol."),
    "40019": (-1102, None),
    "40017": (-1130, None),
    "40797": (-4028, "Leverage is not valid"),
    "45117": (-4048, "Margin type cannot be changed if there exists position."),
}


def translate(exc: SimError) -> BinanceError:
    """The Binance error for an engine :class:`SimError` (table above). A code already Binance's
    (negative, e.g. armed by ``faults.reject_orders(code="-2019")``) passes through; an unknown
    one becomes -1000 "An unknown error occured while processing the request." with its text.
    Messages are Binance's, not the engine's, except -1102 / -1130 (the engine's detail)."""
    code = str(exc.code)
    if code.lstrip("-").isdigit() and code.startswith("-"):
        return BinanceError(int(code), exc.msg)
    hit = BITGET_TO_BINANCE.get(code)
    if hit is None:
        return BinanceError(-1000, f"An unknown error occured while processing the request. ({exc.msg})")
    bcode, msg = hit
    if msg is None:
        return BinanceError(bcode, exc.msg)
    if "{}" in msg:  # the engine's "less than the minimum amount 5 USDT": its number
        msg = msg.format(exc.msg.split("amount ")[-1].split(" ")[0])
    return BinanceError(bcode, msg)


def missing(name: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def invalid(name: str, detail: str = "") -> BinanceError:
    return BinanceError(-1130, f"Data sent for parameter '{name}' is not valid.{(' ' + detail) if detail else ''}")
