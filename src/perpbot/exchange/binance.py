"""Binance USDⓈ-M futures (ccxt id ``binanceusdm``): capabilities and how perpbot's orders are
expressed as ccxt calls (Binance USDⓈ-M futures REST API, /fapi/v1; ccxt 4.5 ``binance.py``).

* isolated margin: ``set_margin_mode("isolated", symbol)`` -> ``POST /fapi/v1/marginType``
  (``marginType=ISOLATED``); leverage: ``set_leverage(n, symbol)`` -> ``POST /fapi/v1/leverage``;
* entry: a market order (``POST /fapi/v1/order``, ``newClientOrderId``). Binance has no stop-loss /
  take-profit attached to an order, so :func:`protection_calls` adds two reduce-only trigger
  orders right after it (ccxt ``stopLossPrice`` / ``takeProfitPrice`` -> ``STOP_MARKET`` /
  ``TAKE_PROFIT_MARKET`` on the algo-order endpoint ``POST /fapi/v1/algoOrder``, mark-price trigger);
* reduce-only exit: ``reduceOnly=true``; look-up: ``GET /fapi/v1/order?origClientOrderId=``;
* demo: Binance demo trading (``enable_demo_trading``: demo-fapi.binance.com, demo API keys).
  ccxt refuses the old futures testnet in sandbox mode (deprecated), so sandbox mode is not used.
"""

from __future__ import annotations

from perpbot.exchange.bitget import VenueCapabilities
from perpbot.exchange.venue_orders import OrderCall
from perpbot.types import ExitReason

ID = "binanceusdm"
CCXT_OPTIONS: dict = {"fetchMarkets": {"types": ["linear"]}}
DEMO = "Binance demo trading (demo-fapi.binance.com): no real money is used."

CAPABILITIES = VenueCapabilities(preset_tpsl_at_entry=False, plan_orders=True, trailing_stop=True, demo=True,
                                 position_mode="one_way", funding_interval_hours=8, candle_page=1500,
                                 funding_page=1000, funding_page_param=None)


def enable_demo(ex) -> None:
    """Point ``ex`` at Binance demo trading (not the deprecated futures testnet)."""
    ex.enable_demo_trading(True)


def real_money_warning() -> str | None:
    return None


def client_order_id(cid: str) -> str:
    """``newClientOrderId`` allows ``[.A-Z:/a-z0-9_-]{1,36}``: perpbot's ids as they are."""
    return cid


def margin_mode_params(leverage: int) -> dict | None:
    return {}


def leverage_params(leverage: int) -> list[dict]:
    return [{}]


def entry_params(cid: str, stop_loss: float | None, take_profit: float | None, leverage: int) -> dict:
    """Params of the market entry; stop-loss / take-profit go in :func:`protection_calls`."""
    if stop_loss is not None or take_profit is not None:
        raise ValueError("binanceusdm has no TP/SL attached to an order: use protection_calls")
    return {"clientOrderId": client_order_id(cid)}


def protection_params(kind: str, cid: str, price: float) -> dict:
    """``params`` of a reduce-only ``STOP_MARKET`` (``kind`` "stop_loss") / ``TAKE_PROFIT_MARKET``
    ("take_profit") trigger order on the mark price (ccxt -> ``POST /fapi/v1/algoOrder``, ``clientAlgoId``)."""
    key = "stopLossPrice" if kind == "stop_loss" else "takeProfitPrice"
    return {key: price, "reduceOnly": True, "workingType": "MARK_PRICE", "clientOrderId": client_order_id(cid)}


def protection_calls(close_side: str, qty: float, cid: str, stop_loss: float | None, take_profit: float | None,
                     leverage: int) -> list[OrderCall]:
    """Reduce-only ``STOP_MARKET`` / ``TAKE_PROFIT_MARKET`` orders (mark-price trigger) closing ``qty``;
    client ids ``{cid}-sl`` / ``{cid}-tp``."""
    return [OrderCall("market", close_side, qty, None, protection_params(kind, f"{cid}-{tag}", level))
            for kind, level, tag in (("stop_loss", stop_loss, "sl"), ("take_profit", take_profit, "tp"))
            if level is not None]


def exit_params(cid: str, leverage: int) -> dict:
    return {"reduceOnly": True, "clientOrderId": client_order_id(cid)}


async def lookup(ex, symbol: str, cid: str):
    """``GET /fapi/v1/order?origClientOrderId=cid``; raises ``ccxt.OrderNotFound`` (code -2013)."""
    return await ex.fetch_order(None, symbol, {"clientOrderId": cid})


def cancel_params(trigger: bool) -> dict:
    """Trigger orders live on the algo-order endpoint (``DELETE /fapi/v1/algoOrder``)."""
    return {"trigger": True} if trigger else {}


# ---- protection orders of the live bot (perpbot.exchange.venue_params) -----------------------------------------
#: Error codes: duplicate client order id (-4116) / client algo id (-20132): an earlier attempt got through;
#: margin type locked by open orders (-4047) or by a position (-4048) (Binance USDⓈ-M error codes; ccxt 4.5).
DUPLICATE_CODES = ("-4116", "-20132")
MARGIN_LOCKED_CODES = ("-4047", "-4048")
#: ``params`` of ``fetch_open_orders`` listing the conditional (algo) orders: ``GET /fapi/v1/openAlgoOrders``.
PROTECTION_QUERY = {"trigger": True}
_KINDS = {"STOP_MARKET": "stop_loss", "STOP": "stop_loss", "TAKE_PROFIT_MARKET": "take_profit",
          "TAKE_PROFIT": "take_profit", "TRAILING_STOP_MARKET": "trailing_stop"}
_REASONS = {"STOP_MARKET": ExitReason.STOP_LOSS.label, "STOP": ExitReason.STOP_LOSS.label,
            "TAKE_PROFIT_MARKET": ExitReason.TAKE_PROFIT.label, "TAKE_PROFIT": ExitReason.TAKE_PROFIT.label,
            "TRAILING_STOP_MARKET": ExitReason.TRAILING_STOP.label}


def protection_kind(order: dict) -> str | None:
    """"stop_loss" | "take_profit" | "trailing_stop" of a conditional order (``info.orderType`` of an algo
    order, ``info.type`` of a classic one), else None."""
    info = order.get("info") or {}
    return _KINDS.get(str(info.get("orderType") or info.get("type") or ""))


def cancel_protection_params(order: dict) -> dict:
    """``params`` of ``cancel_order`` for a conditional order: ``DELETE /fapi/v1/algoOrder`` (algoId)."""
    return cancel_params(True)


def exit_reason(order: dict) -> str | None:
    """Exit reason label of the order that closed a position: a triggered conditional order's market order
    keeps its ``origType`` (STOP_MARKET ...); Binance's liquidation orders have client ids ``autoclose-...``."""
    info = order.get("info") or {}
    if str(info.get("clientOrderId") or "").startswith("autoclose-"):
        return ExitReason.LIQUIDATION.label
    return _REASONS.get(str(info.get("origType") or ""))


async def place_trailing(ex, symbol: str, market: dict, side: int, qty: float, activation: float, rate: float,
                         cid: str) -> dict:
    """Reduce-only ``TRAILING_STOP_MARKET`` (algo order) of the ``side`` position: ``activatePrice`` =
    ``activation`` (USDT), ``callbackRate`` = ``rate`` in percent (Binance: 0.1 to 10, one decimal)."""
    params = {"trailingPercent": f"{rate * 100:.1f}", "trailingTriggerPrice": activation, "reduceOnly": True,
              "workingType": "MARK_PRICE", "clientOrderId": client_order_id(cid)}
    return await ex.create_order(symbol, "market", "sell" if side > 0 else "buy", qty, None, params)
