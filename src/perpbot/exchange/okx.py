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
* demo: OKX demo trading (ccxt sandbox mode: the ``x-simulated-trading: 1`` header, demo API keys).
"""

from __future__ import annotations

from perpbot.exchange.bitget import VenueCapabilities
from perpbot.exchange.venue_orders import OrderCall

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
