"""Tokocrypto spot (ccxt id ``tokocrypto``; IDR and USDT quotes): capabilities and how perpbot's
spot orders are expressed as ccxt calls (Tokocrypto open API v1, tokocrypto.com/apidocs; ccxt 4.5
``tokocrypto.py``). Spot: coins bought with the quote currency, long-only, 1x; no leverage,
margin-mode, position or funding calls exist.

* private calls carry ``timestamp``, ``recvWindow`` and ``signature`` (HMAC-SHA256 hex of the
  query string, Binance style) and the ``X-MBX-APIKEY`` header; GET in the query, POST as a form body;
* orders: ``POST /open/v1/orders`` with ``symbol`` (``SOL_USDT``), ``side`` 0 buy / 1 sell,
  ``type`` 1 limit / 2 market, ``quantity``, ``price`` and ``timeInForce`` 1 (GTC) for a limit
  order, ``clientId``; a market buy is sized in the quote currency (``quoteOrderQty`` = amount x
  price), so it needs a price (the reference price): :data:`MARKET_NEEDS_PRICE`;
* cancel: ``POST /open/v1/orders/cancel`` (``orderId``); one order: ``GET /open/v1/orders?orderId=``;
  by client id: :func:`lookup` lists the symbol's orders (``GET /open/v1/orders``, all statuses,
  newest 500) and matches ``clientId``;
* balance: ``GET /open/v1/account/spot`` (``accountAssets``: free, locked);
* markets: ``GET /open/v1/common/symbols``; candles of the symbols matched on Binance (symbol
  type 1) come from Binance's ``/api/v3/klines``, of Tokocrypto's own from ``/open/v1/market/klines``;
* **no demo or testnet in ccxt**: every Tokocrypto order is real money (:func:`real_money_warning`).
"""

from __future__ import annotations

from perpbot.exchange.bitget import VenueCapabilities

ID = "tokocrypto"
CCXT_OPTIONS: dict = {"defaultType": "spot"}
DEMO = None
QUOTES = ("IDR", "USDT")
#: A market buy is sized in the quote currency (``quoteOrderQty`` = amount x price).
MARKET_NEEDS_PRICE = ("buy",)

CAPABILITIES = VenueCapabilities(preset_tpsl_at_entry=False, plan_orders=False, trailing_stop=False, demo=False,
                                 position_mode="none", funding_interval_hours=0, candle_page=1000,
                                 funding_page=0, funding_page_param=None, market_type="spot")

WARNING = ("Tokocrypto has NO demo or testnet account in ccxt: every order perpbot sends to Tokocrypto trades "
           "REAL MONEY. Rehearse with a backtest or on the Indodax demo exchange first.")


def enable_demo(ex) -> None:
    """Tokocrypto has no sandbox: always raises ``ccxt.NotSupported``."""
    import ccxt

    raise ccxt.NotSupported(WARNING)


def real_money_warning() -> str | None:
    return WARNING


def client_order_id(cid: str) -> str:
    return cid


def order_params(cid: str, order_type: str) -> dict:
    """``params`` of a ``"market"`` or ``"limit"`` order with client id ``cid``."""
    return {"clientOrderId": client_order_id(cid)}


async def cancel(ex, symbol: str, order_id: str, side: str) -> dict:
    """``POST /open/v1/orders/cancel`` (``orderId``); ccxt's order."""
    return await ex.cancel_order(order_id, symbol)


def taker_fee(market: dict) -> float:
    """ccxt's taker fee of the market (a fraction)."""
    return float(market.get("taker") or 0.0)


def min_notional(market: dict) -> float:
    """Minimum order value in the quote currency (the ``MIN_NOTIONAL`` filter)."""
    return float(((market.get("limits") or {}).get("cost") or {}).get("min") or 0.0)


async def lookup(ex, symbol: str, cid: str):
    """``GET /open/v1/orders?symbol=..&type=-1`` (all orders) matched on ``clientId``; raises
    ``ccxt.OrderNotFound`` when none matches."""
    import ccxt

    found = next((o for o in await ex.fetch_orders(symbol, None, None, {"type": -1})
                  if o.get("clientOrderId") == cid), None)
    if found is None:
        raise ccxt.OrderNotFound(f"tokocrypto has no order {cid}")
    return found
