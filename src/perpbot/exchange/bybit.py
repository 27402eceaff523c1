"""Bybit USDT perpetuals (ccxt id ``bybit``, category ``linear``, unified trading account):
capabilities and how perpbot's orders are expressed as ccxt calls (Bybit API v5; ccxt 4.5 ``bybit.py``).

* isolated margin: ``set_margin_mode("isolated")`` on a unified account ->
  ``POST /v5/account/set-margin-mode`` (``setMarginMode=ISOLATED_MARGIN``; account-wide);
  leverage: ``POST /v5/position/set-leverage`` (``buyLeverage`` = ``sellLeverage``);
* entry with stop-loss / take-profit: ``POST /v5/order/create`` with ``stopLoss`` / ``takeProfit``
  and ``tpslMode=Full`` (position-wide; ccxt ``stopLoss`` / ``takeProfit`` dicts);
* reduce-only exit: ``reduceOnly: true``; client id: ``orderLinkId`` (<= 36 chars);
  look-up: ``GET /v5/order/realtime?orderLinkId=`` (the last 500 orders of any status);
* demo: Bybit demo trading (``enable_demo_trading``: api-demo.bybit.com, demo API keys).

``CCXT_OPTIONS`` state the unified account (UTA, Bybit's default since 2024) so ccxt does not
ask ``/v5/user/query-api`` before each order; a classic account is not supported.
"""

from __future__ import annotations

from perpbot.exchange.bitget import VenueCapabilities
from perpbot.exchange.venue_orders import OrderCall

ID = "bybit"
CCXT_OPTIONS: dict = {"enableUnifiedAccount": True, "enableUnifiedMargin": False, "defaultSubType": "linear",
                      "fetchMarkets": {"types": ["linear"]}}
#: Answers meaning "already so" (110043 leverage not modified, 110026 margin mode not modified).
NO_CHANGE_CODES = ("110043", "110026")
DEMO = "Bybit demo trading (api-demo.bybit.com): no real money is used."

CAPABILITIES = VenueCapabilities(preset_tpsl_at_entry=True, plan_orders=True, trailing_stop=True, demo=True,
                                 position_mode="one_way", funding_interval_hours=8, candle_page=1000,
                                 funding_page=200, funding_page_param=None)


def enable_demo(ex) -> None:
    ex.enable_demo_trading(True)


def real_money_warning() -> str | None:
    return None


def client_order_id(cid: str) -> str:
    """``orderLinkId`` allows letters, digits, ``-`` and ``_`` (<= 36): perpbot's ids as they are."""
    return cid


def margin_mode_params(leverage: int) -> dict | None:
    return {}


def leverage_params(leverage: int) -> list[dict]:
    return [{}]


def entry_params(cid: str, stop_loss: float | None, take_profit: float | None, leverage: int) -> dict:
    params: dict = {"clientOrderId": client_order_id(cid)}
    if stop_loss is not None:
        params["stopLoss"] = {"triggerPrice": stop_loss}
    if take_profit is not None:
        params["takeProfit"] = {"triggerPrice": take_profit}
    return params


def protection_calls(close_side: str, qty: float, cid: str, stop_loss, take_profit, leverage: int) -> list[OrderCall]:
    return []  # attached to the entry


def exit_params(cid: str, leverage: int) -> dict:
    return {"reduceOnly": True, "clientOrderId": client_order_id(cid)}


async def lookup(ex, symbol: str, cid: str):
    """``GET /v5/order/realtime?category=linear&symbol=..&orderLinkId=cid``; raises ``ccxt.OrderNotFound``."""
    import ccxt

    resp = await ex.privateGetV5OrderRealtime({"category": "linear", "symbol": ex.market(symbol)["id"],
                                               "orderLinkId": cid})
    rows = ((resp or {}).get("result") or {}).get("list") or []
    if not rows:
        raise ccxt.OrderNotFound(f"bybit has no order {cid}")
    return ex.parse_order(rows[0], ex.market(symbol))


def cancel_params(trigger: bool) -> dict:
    """Conditional linear orders are cancelled by ``orderId`` like any other (``POST /v5/order/cancel``)."""
    return {}
