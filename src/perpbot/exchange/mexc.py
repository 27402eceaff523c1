"""MEXC USDT perpetual futures (ccxt id ``mexc``, contract API): capabilities and how perpbot's
orders are expressed as ccxt calls (MEXC futures API v1; ccxt 4.5 ``mexc.py``).

* isolated margin and leverage: MEXC sets both per position side with
  ``POST /api/v1/private/position/change_leverage`` (``openType=1`` isolated, ``positionType``
  1 long / 2 short): two ``set_leverage`` calls;
* entry with stop-loss / take-profit: ``POST /api/v1/private/order/create`` (ccxt 4.5; MEXC's older
  docs name it ``order/submit``; ``type=6`` market, ``openType=1``, ``leverage``) with MEXC's own
  ``stopLossPrice`` / ``takeProfitPrice`` fields (ccxt passes them through; ccxt's unified ``stopLoss``
  dicts are not implemented for MEXC);
* reduce-only exit: ``side`` 4 (close long) / 2 (close short); client id ``externalOid``;
  look-up: ``GET /api/v1/private/order/external/{symbol}/{externalOid}``;
* amounts are contracts (``contractSize`` base per contract);
* **no demo or testnet in ccxt**: every MEXC order is real money (:func:`real_money_warning`).

Not a live venue (no ``protection_kind`` etc., so not in ``venue_params.LIVE_VENUES``): the entry's
TP/SL become ONE MEXC TP/SL order of the position (``/api/v1/private/stoporder/...``: both prices in one
row, no client id, ``triggerSide`` / ``placeOrderId`` once fired), which ccxt 4.5 cannot reach through
``fetch_open_orders`` / ``cancel_order`` (``trigger=True`` means the plan-order service) nor parse
(``parse_order`` gives it the entry's id and no trigger price). Pinned by ``tests/test_mexc_protection_limits.py``.
"""

from __future__ import annotations

from perpbot.exchange.bitget import VenueCapabilities
from perpbot.exchange.venue_orders import OrderCall

ID = "mexc"
CCXT_OPTIONS: dict = {}
DEMO = None

CAPABILITIES = VenueCapabilities(preset_tpsl_at_entry=True, plan_orders=True, trailing_stop=False, demo=False,
                                 position_mode="one_way", funding_interval_hours=8, candle_page=2000,
                                 funding_page=100, funding_page_param="page_num")

WARNING = ("MEXC has NO demo or testnet account in ccxt: every order perpbot sends to MEXC trades REAL MONEY. "
           "Rehearse with --mode paper (or on Bitget, Binance, Bybit or OKX demo trading) first.")


def enable_demo(ex) -> None:
    """MEXC has no sandbox (ccxt has no test urls for it): always raises ``ccxt.NotSupported``."""
    import ccxt

    raise ccxt.NotSupported(WARNING)


def real_money_warning() -> str | None:
    """The loud line a startup banner shows for MEXC (no demo account exists)."""
    return WARNING


def client_order_id(cid: str) -> str:
    return cid


def margin_mode_params(leverage: int) -> dict | None:
    return None  # set with the leverage, per side


def leverage_params(leverage: int) -> list[dict]:
    return [{"openType": 1, "positionType": 1}, {"openType": 1, "positionType": 2}]


def entry_params(cid: str, stop_loss: float | None, take_profit: float | None, leverage: int) -> dict:
    params: dict = {"marginMode": "isolated", "leverage": int(leverage), "clientOrderId": client_order_id(cid)}
    if stop_loss is not None:
        params["stopLossPrice"] = stop_loss
    if take_profit is not None:
        params["takeProfitPrice"] = take_profit
    return params


def protection_calls(close_side: str, qty: float, cid: str, stop_loss, take_profit, leverage: int) -> list[OrderCall]:
    return []  # attached to the entry


def exit_params(cid: str, leverage: int) -> dict:
    return {"marginMode": "isolated", "leverage": int(leverage), "reduceOnly": True,
            "clientOrderId": client_order_id(cid)}


async def lookup(ex, symbol: str, cid: str):
    """``GET /api/v1/private/order/external/{symbol}/{cid}``; raises ``ccxt.OrderNotFound``."""
    import ccxt

    m = ex.market(symbol)
    resp = await ex.contractPrivateGetOrderExternalSymbolExternalOid({"symbol": m["id"], "external_oid": cid})
    data = (resp or {}).get("data")
    if not data:
        raise ccxt.OrderNotFound(f"mexc has no order {cid}")
    return ex.parse_order(data, m)


def cancel_params(trigger: bool) -> dict:
    return {"trigger": True} if trigger else {}
