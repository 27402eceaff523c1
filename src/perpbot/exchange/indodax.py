"""Indodax spot (ccxt id ``indodax``; IDR and USDT quotes): capabilities and how perpbot's spot
orders are expressed as ccxt calls (Indodax private REST API ``/tapi``, btcid/indodax-official-api-docs;
ccxt 4.5 ``indodax.py``). Spot: coins bought with the quote currency, long-only, 1x; no
leverage, margin-mode, position or funding calls exist.

* every private call is ``POST /tapi`` with a form body (``method``, ``timestamp``, ``recvWindow``)
  signed by the ``Key`` and ``Sign`` headers (HMAC-SHA512 hex of the body);
* orders: ``method=trade`` with ``pair`` (``sol_idr``), ``type`` buy / sell, ``price`` and
  ``client_order_id``; ccxt puts a buy's amount in the quote currency (``idr`` = amount x price;
  a limit buy also in coins, ``sol``) and a sell's in coins. A market order adds
  ``order_type=market`` (without it Indodax takes a limit order at ``price``); a market buy is
  sized in IDR and ccxt writes ``price`` into every order (``price=None`` when there is none), so
  market orders carry the reference price: :data:`MARKET_NEEDS_PRICE`;
* cancel: ``method=cancelOrder`` (``pair``, ``order_id`` and ``type`` = the order's side), sent by
  :func:`cancel` through ccxt's implicit call: ccxt's ``cancel_order`` cannot parse the documented
  answer (its ``pair`` ``sol_idr`` is no market id; ccxt 4.5.90 raises TypeError after the
  venue cancelled); one order: ``method=getOrder`` (``pair``, ``order_id``); by client id:
  ``method=getOrderByClientOrderId`` (:func:`lookup`);
* balance: ``method=getInfo`` (``balance`` free, ``balance_hold`` held by open orders);
* market rules: ccxt files the venue's ``trade_fee_percent`` (0.3 = 0.3 %) as ``taker`` and its
  minimum order value ``trade_min_base_currency`` (IDR) as ``limits.price.min``:
  :func:`taker_fee` and :func:`min_notional` read them as what they are;
* demo: Indodax's demo exchange, demo-indodax.com (demo account keys, test coins that cannot be
  deposited or withdrawn; same API paths, ``https://demo-indodax.com/tapi``); ccxt has no
  sandbox urls for Indodax, so :func:`enable_demo` points the client there;
* candles: ``GET /tradingview/history_v2`` (1m, 15m, 30m, 1h, 4h, 1d ...; no 5m).
"""

from __future__ import annotations

from perpbot.exchange.bitget import VenueCapabilities

ID = "indodax"
CCXT_OPTIONS: dict = {"defaultType": "spot"}
DEMO = "Indodax demo exchange (demo-indodax.com, demo account keys): no real money is used."
DEMO_URLS = {"public": "https://demo-indodax.com", "private": "https://demo-indodax.com/tapi"}
#: Quote currencies perpbot trades against here.
QUOTES = ("IDR", "USDT")
#: Market orders of these sides carry the reference price (a buy is sized in the quote currency).
MARKET_NEEDS_PRICE = ("buy", "sell")

CAPABILITIES = VenueCapabilities(preset_tpsl_at_entry=False, plan_orders=False, trailing_stop=False, demo=True,
                                 position_mode="none", funding_interval_hours=0, candle_page=2000,
                                 funding_page=0, funding_page_param=None, market_type="spot")


def enable_demo(ex) -> None:
    """Point ``ex`` at the demo exchange (:data:`DEMO_URLS`)."""
    ex.urls["api"] = dict(DEMO_URLS)


def real_money_warning() -> str | None:
    return None


def client_order_id(cid: str) -> str:
    """``client_order_id`` allows letters, digits, ``_`` and ``-`` (<= 36): perpbot's ids as they are."""
    return cid


def order_params(cid: str, order_type: str) -> dict:
    """``params`` of a ``"market"`` or ``"limit"`` order with client id ``cid``."""
    params: dict = {"client_order_id": client_order_id(cid)}
    if order_type == "market":
        params["order_type"] = "market"
    return params


async def cancel(ex, symbol: str, order_id: str, side: str) -> dict:
    """``method=cancelOrder&order_id=..&pair=..&type=side``; a ccxt-shaped order (status canceled)."""
    resp = await ex.privatePostCancelOrder({"order_id": order_id, "pair": ex.market(symbol)["id"], "type": side})
    data = (resp or {}).get("return") or {}
    return {"id": str(data.get("order_id", order_id)), "clientOrderId": data.get("client_order_id"),
            "symbol": symbol, "side": data.get("type", side), "status": "canceled", "info": resp}


def taker_fee(market: dict) -> float:
    """Taker fee as a fraction: ``trade_fee_percent`` / 100 (0.3 -> 0.003)."""
    return float((market.get("info") or {}).get("trade_fee_percent") or 0.0) / 100


def min_notional(market: dict) -> float:
    """Minimum order value in the quote currency (``trade_min_base_currency``)."""
    return float((market.get("info") or {}).get("trade_min_base_currency") or 0.0)


async def lookup(ex, symbol: str, cid: str):
    """``method=getOrderByClientOrderId&client_order_id=cid``; raises ``ccxt.OrderNotFound`` when
    the venue has no such order (ccxt's ``invalid order.`` answer, or one saying "not found")."""
    import ccxt

    try:
        resp = await ex.privatePostGetOrderByClientOrderId({"client_order_id": cid})
    except ccxt.OrderNotFound:
        raise
    except ccxt.ExchangeError as exc:
        if "not found" in str(exc).lower():
            raise ccxt.OrderNotFound(f"indodax has no order {cid}") from None
        raise
    order = ((resp or {}).get("return") or {}).get("order")
    if not order:
        raise ccxt.OrderNotFound(f"indodax has no order {cid}")
    return ex.parse_order(order, ex.market(symbol))
