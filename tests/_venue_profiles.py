"""Per-venue profiles of the live-loop tests on the Binance USDⓈ-M, Bybit and OKX simulators
(``tests/test_live_venues.py``, ``tests/test_live_venue_funding.py``): what differs between the venues, so
one test body checks all three.

How a venue's protection orders look is read from ccxt orders: their order type (``info[type_field]``), kind
and levels (:func:`perpbot.exchange.venue_params.protection_kind` / ``protection_levels``). Right after the
entry, Binance lists its own two algo orders (``STOP_MARKET`` / ``TAKE_PROFIT_MARKET``), which stay; Bybit
(``StopLoss`` / ``TakeProfit``, no client ids) and OKX (one ``oco`` holding both levels) list the entry's
attached ones, which perpbot replaces once by its own (Bybit ``Stop``, OKX ``conditional``) after the fill.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from perpbot.devtools.binance_sim import BinanceSim
from perpbot.devtools.bybit_sim import BybitSim
from perpbot.devtools.okx_sim import OkxSim
from perpbot.exchange import venue_params
from _live_helpers import settings


def _binance_exit(closer: dict, why: dict, stop: dict) -> None:
    """The filled exit order is the triggered algo order's: ``origType`` STOP_MARKET."""
    assert closer["info"]["origType"] == "STOP_MARKET"


def _bybit_exit(closer: dict, why: dict, stop: dict) -> None:
    """The triggered conditional order keeps its id and perpbot's client id: ``stopOrderType`` Stop."""
    assert (closer["info"]["stopOrderType"], closer["clientOrderId"]) == ("Stop", stop["clientOrderId"])


def _okx_exit(closer: dict, why: dict, stop: dict) -> None:
    """The exit fill's order was placed by an algo order (``source`` 7, its ``algoId``), whose
    ``actualSide`` says it was the stop-loss."""
    assert closer["info"]["source"] == "7" and closer["info"]["algoId"] == why["id"]
    assert why["info"]["actualSide"] == "sl"


@dataclass(frozen=True)
class VenueProfile:
    ccxt_id: str
    sim: type
    taker: float  # the simulator's taker fee (fraction of the notional)
    type_field: str  # the ccxt order's ``info`` field naming a protection order's type
    entry_stops: tuple[str, ...]  # the types listed right after the entry (sorted; one name: an OCO of both)
    own_stops: tuple[str, ...]  # the types once the fill is taken over (perpbot's stop-loss, take-profit)
    order_endpoint: str  # the entry order's "METHOD /path" (the timeout-after-accept fault's)
    check_exit: Callable[[dict, dict, dict], None]  # (exit fill's order, the order giving the reason, own stop)
    trailing_request: Callable[[dict], bool] | None = None  # a request placing a trailing stop (None: trailing)
    cancel_params: dict = field(default_factory=dict)  # ``params`` of cancel_order removing a stop
    keys: dict = field(default_factory=lambda: {"api_passphrase": None})  # settings extras (OKX: passphrase)
    restart_steps: int = 1  # candles before the restart (2: once perpbot's own stops are placed)
    attached_ids: bool = True  # the entry's stops carry client ids (Bybit's position TP/SL: none)
    demo_path: str | None = None  # requests on paths with this must carry the demo-trading header

    @property
    def replaces(self) -> bool:
        """The entry's stops are replaced once by perpbot's own after the fill."""
        return self.entry_stops != self.own_stops

    def settings(self, sim, tmp_path, **kw):
        return settings(sim, tmp_path, exchange=self.ccxt_id, **{**self.keys, **kw})

    def cid(self, cid: str) -> str:
        """perpbot's client id as the venue lists it."""
        return venue_params.client_id(self.ccxt_id, cid)

    def kind(self, order: dict) -> str | None:
        return venue_params.protection_kind(self.ccxt_id, order)

    def shape(self, orders: list[dict]) -> list[tuple]:
        """(type, kind, levels) of each protection order, sorted."""
        return sorted((o["info"][self.type_field], self.kind(o),
                       tuple(sorted(venue_params.protection_levels(self.ccxt_id, o).items()))) for o in orders)

    @staticmethod
    def expected(types: tuple[str, ...], sl: float, tp: float) -> list[tuple]:
        """:meth:`shape` of a stop-loss at ``sl`` and a take-profit at ``tp`` of the given types."""
        if len(types) == 1:
            return [(types[0], "stop_loss", (("stop_loss", sl), ("take_profit", tp)))]
        return sorted([(types[0], "stop_loss", (("stop_loss", sl),)), (types[1], "take_profit", (("take_profit", tp),))])


BINANCE = VenueProfile(
    "binanceusdm", BinanceSim, 0.0005,  # USDⓈ-M VIP 0 taker fee
    "orderType", ("STOP_MARKET", "TAKE_PROFIT_MARKET"), ("STOP_MARKET", "TAKE_PROFIT_MARKET"),
    "POST /fapi/v1/order", _binance_exit, cancel_params={"trigger": True})
BYBIT = VenueProfile(
    "bybit", BybitSim, 0.00055,  # VIP 0 taker fee of perpetuals
    "stopOrderType", ("StopLoss", "TakeProfit"), ("Stop", "Stop"), "POST /v5/order/create", _bybit_exit,
    trailing_request=lambda r: r["path"] == "/v5/position/trading-stop", restart_steps=2, attached_ids=False)
OKX = VenueProfile(
    "okx", OkxSim, 0.0005,  # Lv1 (VIP 0) taker fee of USDT perpetual swaps
    "ordType", ("oco",), ("conditional", "conditional"), "POST /api/v5/trade/batch-orders", _okx_exit,
    trailing_request=lambda r: "move_order_stop" in r["body"], cancel_params={"trigger": True}, keys={},
    demo_path="/trade/")
PROFILES = (BINANCE, BYBIT, OKX)
