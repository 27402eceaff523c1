"""OKX USDT perpetual swaps (ccxt id ``okx``, instType ``SWAP``): capabilities and how perpbot's
orders are expressed as ccxt calls (OKX API v5; ccxt 4.5 ``okx.py``).

* isolated margin and leverage are ONE call on OKX: ``set_leverage(n, symbol, {"marginMode":
  "isolated"})`` -> ``POST /api/v5/account/set-leverage`` (``mgnMode=isolated``, ``posSide=net``);
  orders carry ``tdMode=isolated``;
* entry with stop-loss / take-profit: ``POST /api/v5/trade/order`` with ``attachAlgoOrds``
  (``slTriggerPx`` / ``tpTriggerPx``, market execution ``-1``, mark-price triggers);
* reduce-only exit: ``reduceOnly: true``; client id ``clOrdId`` (letters and digits only, <= 32:
  :func:`client_order_id`); look-up: ``GET /api/v5/trade/order?clOrdId=``;
* amounts are contracts (``ctVal`` base per contract: :func:`perpbot.exchange.venue_orders.contracts`);
  the live bot trades instruments of ``ctVal`` 1 only (SOL-USDT-SWAP: 1 SOL), so its base amounts are contracts;
* demo: OKX demo trading (ccxt sandbox mode: the ``x-simulated-trading: 1`` header, demo API keys);
* protection orders of the live bot (:mod:`perpbot.exchange.venue_params`): OKX algo orders. The entry's
  ``attachAlgoOrds`` become, once it fills, ONE algo order on the position (``oco`` with a stop-loss and a
  take-profit, else ``conditional``); :func:`protection_params` places a reduce-only ``conditional`` algo
  order (``POST /api/v5/trade/order-algo``, one of ``slTriggerPx`` / ``tpTriggerPx``, market execution,
  mark-price trigger, ``sz`` = the position's); both are listed by ``GET /api/v5/trade/orders-algo-pending
  ?ordType=conditional,oco`` (:data:`PROTECTION_QUERY`) and cancelled by ``POST /api/v5/trade/cancel-algos``.
  ccxt reads an order's ``clientOrderId`` from ``clOrdId`` (also for algo orders), so a protection order
  carries perpbot's id in OKX's form as ``clOrdId`` and ``algoClOrdId``. The order a triggered algo order
  places names it (``algoId``); the algo order's ``actualSide`` (``sl`` / ``tp``) is the exit reason
  (:func:`exit_order`, :func:`exit_reason`). No trailing stop: OKX's ``move_order_stop`` cannot be listed
  with the stops (``orders-algo-pending`` combines only ``conditional`` and ``oco``), so the executor skips it.
"""

from __future__ import annotations

from perpbot.exchange.bitget import VenueCapabilities
from perpbot.exchange.venue_orders import OrderCall
from perpbot.types import ExitReason

ID = "okx"
CCXT_OPTIONS: dict = {"fetchMarkets": {"types": ["swap"]}}
DEMO = "OKX demo trading (x-simulated-trading: 1): no real money is used."

CAPABILITIES = VenueCapabilities(preset_tpsl_at_entry=True, plan_orders=True, trailing_stop=True, demo=True,
                                 position_mode="one_way", funding_interval_hours=8, candle_page=300,
                                 funding_page=100, funding_page_param=None)


def enable_demo(ex) -> None:
    ex.set_sandbox_mode(True)


def real_money_warning() -> str | None:
    return None


def client_order_id(cid: str) -> str:
    """``clOrdId`` takes letters and digits only: ``pb7-2900-0`` -> ``pb7x2900x0`` (one-to-one)."""
    return cid.replace("-", "x")


def margin_mode_params(leverage: int) -> dict | None:
    return None  # set with the leverage


def leverage_params(leverage: int) -> list[dict]:
    return [{"marginMode": "isolated"}]


def entry_params(cid: str, stop_loss: float | None, take_profit: float | None, leverage: int) -> dict:
    params: dict = {"marginMode": "isolated", "clientOrderId": client_order_id(cid)}
    if stop_loss is not None:
        params["stopLoss"] = {"triggerPrice": stop_loss, "type": "market", "triggerPriceType": "mark"}
    if take_profit is not None:
        params["takeProfit"] = {"triggerPrice": take_profit, "type": "market", "triggerPriceType": "mark"}
    return params


def protection_calls(close_side: str, qty: float, cid: str, stop_loss, take_profit, leverage: int) -> list[OrderCall]:
    return []  # attached to the entry


def exit_params(cid: str, leverage: int) -> dict:
    return {"marginMode": "isolated", "reduceOnly": True, "clientOrderId": client_order_id(cid)}


async def lookup(ex, symbol: str, cid: str):
    """``GET /api/v5/trade/order?instId=..&clOrdId=cid``; raises ``ccxt.OrderNotFound`` (51603)."""
    return await ex.fetch_order(None, symbol, {"clientOrderId": cid})


def cancel_params(trigger: bool) -> dict:
    return {"trigger": True} if trigger else {}


# ---- protection orders of the live bot (perpbot.exchange.venue_params) -----------------------------------------
#: Error codes: a duplicate client order id (51016 "Duplicated clOrdId": an earlier attempt got through). OKX has
#: no margin mode to lock: it is each order's ``tdMode``, and set-leverage carries ``mgnMode`` (OKX API v5).
DUPLICATE_CODES = ("51016",)
MARGIN_LOCKED_CODES: tuple[str, ...] = ()
#: ``params`` of ``fetch_open_orders`` listing the TP/SL algo orders: ``GET /api/v5/trade/orders-algo-pending``
#: with ``ordType=conditional,oco`` (the one pair of types that endpoint takes together).
PROTECTION_QUERY = {"trigger": True, "ordType": "conditional,oco"}
_REASONS = {"sl": ExitReason.STOP_LOSS.label, "tp": ExitReason.TAKE_PROFIT.label}


def protection_kind(order: dict) -> str | None:
    """"stop_loss" | "take_profit" | "trailing_stop" of an algo order (``info.ordType``; a ``conditional``
    or ``oco`` order with a ``slTriggerPx`` is a stop-loss, the entry's OCO included), else None."""
    info = order.get("info") or {}
    typ = info.get("ordType")
    if typ == "move_order_stop":
        return "trailing_stop"
    if typ not in ("conditional", "oco"):
        return None
    return "stop_loss" if info.get("slTriggerPx") else "take_profit" if info.get("tpTriggerPx") else None


def protection_levels(order: dict) -> dict[str, float]:
    """{"stop_loss": USDT, "take_profit": USDT} of an algo order (``slTriggerPx`` / ``tpTriggerPx``: both for
    an OCO); ccxt's ``triggerPrice`` is ``triggerPx``, which TP/SL algo orders leave empty."""
    info = order.get("info") or {}
    return {kind: float(info[key]) for kind, key in (("stop_loss", "slTriggerPx"), ("take_profit", "tpTriggerPx"))
            if info.get(key)}


def protection_params(kind: str, cid: str, price: float) -> dict:
    """``params`` of a reduce-only ``conditional`` algo order (``kind`` "stop_loss": ``slTriggerPx``, else
    ``tpTriggerPx``; market execution ``-1``, mark-price trigger) with perpbot's id as ``clOrdId`` and
    ``algoClOrdId`` (ccxt -> ``POST /api/v5/trade/order-algo``)."""
    key, px = ("stopLossPrice", "slTriggerPxType") if kind == "stop_loss" else ("takeProfitPrice", "tpTriggerPxType")
    vcid = client_order_id(cid)
    return {key: price, px: "mark", "reduceOnly": True, "marginMode": "isolated", "clientOrderId": vcid,
            "algoClOrdId": vcid}


def listed_client_id(order: dict) -> str | None:
    """perpbot's id of a listed algo order: ``algoClOrdId`` (the algo order's own client id; ccxt's
    ``clientOrderId`` reads ``clOrdId``, which OKX documents for the order an algo order places once
    triggered), else ``clOrdId``; None when both are empty (the entry's attached OCO)."""
    info = order.get("info") or {}
    return info.get("algoClOrdId") or info.get("clOrdId") or order.get("clientOrderId") or None


def cancel_protection_params(order: dict) -> dict:
    """``params`` of ``cancel_order`` for an algo order: ``POST /api/v5/trade/cancel-algos`` (algoId)."""
    return {"trigger": True}


async def exit_order(ex, symbol: str, order: dict) -> dict:
    """The order that says why a position closed: the algo order (``GET /api/v5/trade/order-algo?algoId=``)
    whose trigger placed ``order`` (its ``algoId``), else ``order`` itself."""
    algo = (order.get("info") or {}).get("algoId")
    return await ex.fetch_order(algo, symbol, {"trigger": True}) if algo else order


def exit_reason(order: dict) -> str | None:
    """Exit reason label: a triggered algo order's ``actualSide`` (sl / tp), a liquidation order's
    ``category`` (full_liquidation / partial_liquidation); None when the order says neither."""
    info = order.get("info") or {}
    if str(info.get("category") or "").endswith("liquidation"):
        return ExitReason.LIQUIDATION.label
    return _REASONS.get(str(info.get("actualSide") or ""))
