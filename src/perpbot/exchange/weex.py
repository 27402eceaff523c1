"""WEEX USDT-M perpetual futures (ccxt id ``weex``, contract API v3 on api-contract.weex.com):
capabilities and how perpbot's orders are expressed as ccxt calls (WEEX API docs, contract v3;
ccxt 4.5 ``weex.py``).

* isolated margin and one-way mode: ``set_margin_mode("isolated", symbol, {"separatedType":
  "COMBINED"})`` -> ``POST /capi/v3/account/marginType`` (``marginType=ISOLATED``,
  ``separatedType=COMBINED``: the request ccxt's ``set_position_mode(False)`` sends); leverage:
  ``set_leverage(n, symbol, {"marginMode": "isolated"})`` -> ``POST /capi/v3/account/leverage``
  (``isolatedLongLeverage`` = ``isolatedShortLeverage`` = n);
* entry with stop-loss / take-profit: ``POST /capi/v3/order`` (``positionSide`` LONG / SHORT,
  ``newClientOrderId``) with ``slTriggerPrice`` / ``tpTriggerPrice`` and mark-price triggers
  (``SlWorkingType`` / ``TpWorkingType`` = ``MARK_PRICE``; ccxt ``stopLoss`` / ``takeProfit`` dicts);
  they always execute at market;
* reduce-only exit: ``reduceOnly: true`` (ccxt then sends ``positionSide`` of the position closed);
* look-up by client id: the contract API reads one order by ``orderId`` only
  (``GET /capi/v3/order``), so :func:`lookup` searches the open orders (``GET /capi/v3/openOrders``)
  and then the order history (``GET /capi/v3/order/history``) of the symbol for ``clientOrderId``;
* amounts are base asset: WEEX's ``quantity`` / ``size`` are base-asset amounts (its docs: order
  quantity 0.01 BTC, "executedQty: filled base asset quantity"), while ccxt reports the contract's
  ``contractVal`` as ``contractSize``; :data:`BASE_AMOUNTS` tells perpbot not to scale by it
  (:func:`perpbot.exchange.clients.base_per_amount`);
* **no usable demo**: ccxt's WEEX sandbox mode reaches the demo-trading endpoints
  (``capi/v3/sim/``: balance, create order, positions, order history) and refuses every other
  private call, so leverage, margin mode, cancel and the order look-up before a resend are
  impossible there. perpbot treats WEEX as real-money-only (:func:`real_money_warning`).
* candles: ccxt's default kline endpoint (``GET /capi/v3/market/klines``) serves the latest 1000
  bars and takes no start time, so a download from WEEX holds at most the last 1000 candles.
"""

from __future__ import annotations

from perpbot.exchange.bitget import VenueCapabilities
from perpbot.exchange.venue_orders import OrderCall

ID = "weex"
CCXT_OPTIONS: dict = {}
DEMO = None
#: Order and position amounts are base asset, whatever ccxt's ``contractSize`` says (module docstring).
BASE_AMOUNTS = True

CAPABILITIES = VenueCapabilities(preset_tpsl_at_entry=True, plan_orders=True, trailing_stop=False, demo=False,
                                 position_mode="one_way", funding_interval_hours=8, candle_page=1000,
                                 funding_page=1000, funding_page_param=None)

WARNING = ("WEEX demo trading in ccxt (capi/v3/sim) cannot set leverage or margin mode, cancel or look an order up, "
           "so perpbot uses none: every order perpbot sends to WEEX trades REAL MONEY. "
           "Rehearse with --mode paper (or on Bitget, Binance, Bybit or OKX demo trading) first.")


def enable_demo(ex) -> None:
    """WEEX's demo in ccxt lacks the calls perpbot needs (module docstring): always raises
    ``ccxt.NotSupported`` with :data:`WARNING`."""
    import ccxt

    raise ccxt.NotSupported(WARNING)


def real_money_warning() -> str | None:
    """The loud line a startup banner shows for WEEX (no usable demo account)."""
    return WARNING


def client_order_id(cid: str) -> str:
    """``newClientOrderId`` allows ``[.A-Z:/a-z0-9_-]{1,36}``: perpbot's ids as they are."""
    return cid


def margin_mode_params(leverage: int) -> dict | None:
    return {"separatedType": "COMBINED"}  # one-way mode, with isolated margin, in one request


def leverage_params(leverage: int) -> list[dict]:
    return [{"marginMode": "isolated"}]


def entry_params(cid: str, stop_loss: float | None, take_profit: float | None, leverage: int) -> dict:
    params: dict = {"clientOrderId": client_order_id(cid)}
    if stop_loss is not None:
        params["stopLoss"] = {"triggerPrice": stop_loss, "triggerPriceType": "mark"}
    if take_profit is not None:
        params["takeProfit"] = {"triggerPrice": take_profit, "triggerPriceType": "mark"}
    return params


def protection_calls(close_side: str, qty: float, cid: str, stop_loss, take_profit, leverage: int) -> list[OrderCall]:
    return []  # attached to the entry


def exit_params(cid: str, leverage: int) -> dict:
    return {"reduceOnly": True, "clientOrderId": client_order_id(cid)}


async def lookup(ex, symbol: str, cid: str):
    """The order with ``clientOrderId`` ``cid``: ``GET /capi/v3/openOrders?symbol=..``, then
    ``GET /capi/v3/order/history?symbol=..``; raises ``ccxt.OrderNotFound`` when neither holds it."""
    import ccxt

    for fetch in (ex.fetch_open_orders, ex.fetch_canceled_and_closed_orders):
        found = next((o for o in await fetch(symbol) if o.get("clientOrderId") == cid), None)
        if found is not None:
            return found
    raise ccxt.OrderNotFound(f"weex has no order {cid}")


def cancel_params(trigger: bool) -> dict:
    """Trigger orders live on the algo-order endpoint (``DELETE /capi/v3/algoOrder``)."""
    return {"trigger": True} if trigger else {}
