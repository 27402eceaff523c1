"""Bybit USDT perpetuals (ccxt id ``bybit``, category ``linear``, unified trading account):
capabilities and how perpbot's orders are expressed as ccxt calls (Bybit API v5; ccxt 4.5 ``bybit.py``).

* isolated margin: ``set_margin_mode("isolated")`` on a unified account ->
  ``POST /v5/account/set-margin-mode`` (``setMarginMode=ISOLATED_MARGIN``; account-wide);
  leverage: ``POST /v5/position/set-leverage`` (``buyLeverage`` = ``sellLeverage``);
* entry with stop-loss / take-profit: ``POST /v5/order/create`` with ``stopLoss`` / ``takeProfit``
  (ccxt ``stopLoss`` / ``takeProfit`` dicts; no ``tpslMode``: Bybit's default Full, position-wide);
* reduce-only exit: ``reduceOnly: true``; client id: ``orderLinkId`` (<= 36 chars);
  look-up: ``GET /v5/order/realtime?orderLinkId=`` (the last 500 orders of any status);
* protection orders of the live bot (:mod:`perpbot.exchange.venue_params`): the entry's TP/SL become
  ``TakeProfit`` / ``StopLoss`` orders of the position (system orders: no ``orderLinkId``); perpbot's
  own stops are reduce-only conditional market orders (ccxt ``stopLossPrice`` / ``takeProfitPrice`` ->
  ``triggerPrice`` + ``triggerDirection``, ``stopOrderType`` Stop) carrying its client id. Both kinds
  are listed by ``GET /v5/order/realtime?orderFilter=StopOrder`` and cancelled by ``orderId``
  (``POST /v5/order/cancel``); a triggered one keeps its ``orderId``, so the exit fill's order says
  what closed the position (``stopOrderType`` / ``createType``);
* no trailing stop through the live bot: Bybit's trailing stop is a position setting
  (``POST /v5/position/trading-stop`` ``trailingStop``, a price distance) that takes no ``orderLinkId``
  and answers no order id, so perpbot could neither find it by client id nor settle its ledger row
  (no ``place_trailing``: the executor skips trailing stops here with one log line);
* position mode: ccxt has no read of it for Bybit; the position rows say it (``positionIdx`` 1 / 2:
  hedge mode), :func:`position_hedged`;
* demo: Bybit demo trading (``enable_demo_trading``: api-demo.bybit.com, demo API keys).

``CCXT_OPTIONS`` state the unified account (UTA, Bybit's default since 2024) so ccxt does not
ask ``/v5/user/query-api`` before each order (a classic account is not supported), and acknowledge
ccxt's ``fetchOrder`` warning on a unified account (it reads the last 500 orders of any status: the
exit order of a trade just closed is among them).
"""

from __future__ import annotations

from perpbot.exchange.bitget import VenueCapabilities
from perpbot.exchange.venue_orders import OrderCall
from perpbot.types import ExitReason

ID = "bybit"
CCXT_OPTIONS: dict = {"enableUnifiedAccount": True, "enableUnifiedMargin": False, "defaultSubType": "linear",
                      "fetchMarkets": {"types": ["linear"]}, "fetchOrder": {"acknowledged": True}}
#: ccxt's funding history on Bybit is ``execFee`` of ``GET /v5/execution/list?execType=Funding``, which is > 0
#: when the account PAID funding (Bybit v5 "Get Trade History": the fee charged; its transaction log's funding
#: field is the opposite): the live bot turns it to its own sign (< 0 paid; exchange/reads.py).
FUNDING_PAID_POSITIVE = True
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
    """The entry's stop-loss / take-profit (``tpslMode`` Full, position-wide) trigger on the mark price, as
    perpbot's own stops do (:func:`protection_params`); ccxt's default would be the last price."""
    params: dict = {"clientOrderId": client_order_id(cid)}
    if stop_loss is not None:
        params.update(stopLoss={"triggerPrice": stop_loss}, slTriggerBy="MarkPrice")
    if take_profit is not None:
        params.update(takeProfit={"triggerPrice": take_profit}, tpTriggerBy="MarkPrice")
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


# ---- protection orders of the live bot (perpbot.exchange.venue_params) -----------------------------------------
#: Error codes: duplicate ``orderLinkId`` (110072): an earlier attempt got through; margin mode not switched
#: (3400045 "Set margin mode failed": positions or open orders) (Bybit v5 error codes; ccxt 4.5).
DUPLICATE_CODES = ("110072",)
MARGIN_LOCKED_CODES = ("3400045",)
#: ``params`` of ``fetch_open_orders`` listing the conditional and TP/SL orders:
#: ``GET /v5/order/realtime?orderFilter=StopOrder``.
PROTECTION_QUERY = {"trigger": True}
_KINDS = {"StopLoss": "stop_loss", "PartialStopLoss": "stop_loss", "TakeProfit": "take_profit",
          "PartialTakeProfit": "take_profit", "TrailingStop": "trailing_stop"}
_REASONS = {"stop_loss": ExitReason.STOP_LOSS.label, "take_profit": ExitReason.TAKE_PROFIT.label,
            "trailing_stop": ExitReason.TRAILING_STOP.label}
_LIQUIDATION = ("CreateByLiq", "CreateByTakeOver_PassThrough")


def protection_kind(order: dict) -> str | None:
    """"stop_loss" | "take_profit" | "trailing_stop" of a conditional / TP/SL order (ccxt order), else None:
    ``info.stopOrderType`` StopLoss / PartialStopLoss, TakeProfit / PartialTakeProfit, TrailingStop; a
    reduce-only ``Stop`` order by its trigger direction against its side (ccxt's ``stopLossPrice`` /
    ``takeProfitPrice``: a sell falling to its trigger stops a long's loss, rising to it takes its profit)."""
    info = order.get("info") or {}
    stop_type = str(info.get("stopOrderType") or "")
    if stop_type != "Stop":
        return _KINDS.get(stop_type)
    if not order.get("reduceOnly"):
        return None
    if order.get("stopLossPrice") is not None:
        return "stop_loss"
    return "take_profit" if order.get("takeProfitPrice") is not None else None


def protection_params(kind: str, cid: str, price: float) -> dict:
    """``params`` of ``create_order`` (market, the closing side, the position's qty) for a reduce-only
    conditional order triggered at ``price`` on the mark price (ccxt ``stopLossPrice`` / ``takeProfitPrice``
    -> ``POST /v5/order/create`` with ``triggerPrice``, ``triggerDirection``, ``reduceOnly``, ``orderLinkId``)."""
    key = "stopLossPrice" if kind == "stop_loss" else "takeProfitPrice"
    return {key: price, "reduceOnly": True, "triggerBy": "MarkPrice", "clientOrderId": client_order_id(cid)}


def cancel_protection_params(order: dict) -> dict:
    """``params`` of ``cancel_order`` for a conditional / TP/SL order: none (``POST /v5/order/cancel`` by
    ``orderId``; ``orderFilter`` is for spot only)."""
    return {}


def exit_reason(order: dict) -> str | None:
    """Exit reason label of the order that closed a position: a triggered conditional / TP/SL order keeps
    its ``orderId`` and ``stopOrderType`` (:func:`protection_kind`); a liquidation's order has ``createType``
    CreateByLiq / CreateByTakeOver_PassThrough; None for an ordinary order."""
    if str((order.get("info") or {}).get("createType") or "") in _LIQUIDATION:
        return ExitReason.LIQUIDATION.label
    kind = protection_kind(order)
    return None if kind is None else _REASONS[kind]


async def position_hedged(ex, symbol: str) -> bool:
    """True when the account holds ``symbol`` in hedge mode: ccxt's position rows (``GET /v5/position/list``)
    say ``hedged`` from ``positionIdx`` (0 one-way, 1 / 2 the two sides of hedge mode)."""
    return any(p.get("hedged") for p in await ex.fetch_positions([symbol]))
