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


def protection_calls(close_side: str, qty: float, cid: str, stop_loss: float | None, take_profit: float | None,
                     leverage: int) -> list[OrderCall]:
    """Reduce-only ``STOP_MARKET`` / ``TAKE_PROFIT_MARKET`` orders (mark-price trigger) closing ``qty``;
    client ids ``{cid}-sl`` / ``{cid}-tp``."""
    out = []
    for key, level, tag in (("stopLossPrice", stop_loss, "sl"), ("takeProfitPrice", take_profit, "tp")):
        if level is not None:
            out.append(OrderCall("market", close_side, qty, None, {
                key: level, "reduceOnly": True, "workingType": "MARK_PRICE",
                "clientOrderId": client_order_id(f"{cid}-{tag}")}))
    return out


def exit_params(cid: str, leverage: int) -> dict:
    return {"reduceOnly": True, "clientOrderId": client_order_id(cid)}


async def lookup(ex, symbol: str, cid: str):
    """``GET /fapi/v1/order?origClientOrderId=cid``; raises ``ccxt.OrderNotFound`` (code -2013)."""
    return await ex.fetch_order(None, symbol, {"clientOrderId": cid})


def cancel_params(trigger: bool) -> dict:
    """Trigger orders live on the algo-order endpoint (``DELETE /fapi/v1/algoOrder``)."""
    return {"trigger": True} if trigger else {}
