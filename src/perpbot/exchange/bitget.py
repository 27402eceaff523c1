"""Bitget, the default venue: what it can do and its quirks, in one place (Bitget v2 USDT-M
futures API through ccxt; shared/reference/bitget.md).

* ccxt options: swap markets, the classic (non-UTA) account, swap-only market loading;
* capabilities (:data:`CAPABILITIES`): stop-loss / take-profit preset on the entry order,
  position-wide plan orders (``pos_loss`` / ``pos_profit``), a trailing stop (``moving_plan``),
  demo trading (ccxt sandbox mode: the ``paptrading: 1`` header with the normal symbols), one-way
  position mode, funding every 8 h, page sizes of the candle and funding-history endpoints;
* plan types: which plan orders protect a position, and the exit reason each one means.
"""

from __future__ import annotations

from dataclasses import dataclass

from perpbot.types import ExitReason

ID = "bitget"

#: ccxt ``options`` of a Bitget USDT-M client (``defaultType`` swap is added by every factory).
CCXT_OPTIONS = {"uta": False, "fetchMarkets": {"types": ["swap"]}}

#: Plan types of position protection: stop side (incl. trailing stops) and take-profit side.
LOSS_PLANS = ("pos_loss", "loss_plan", "moving_plan", "track_plan")
PROFIT_PLANS = ("pos_profit", "profit_plan")
TRAILING_PLAN = "moving_plan"

#: ``info.orderSource`` of a triggered plan's market order -> exit reason (:class:`perpbot.types.ExitReason` label).
EXIT_REASONS = {"pos_loss_market": ExitReason.STOP_LOSS.label, "loss_plan_market": ExitReason.STOP_LOSS.label,
                "moving_plan_market": ExitReason.TRAILING_STOP.label, "track_plan_market": ExitReason.TRAILING_STOP.label,
                "pos_profit_market": ExitReason.TAKE_PROFIT.label, "profit_plan_market": ExitReason.TAKE_PROFIT.label}


@dataclass(frozen=True)
class VenueCapabilities:
    """What a venue offers the bot (one instance per venue module)."""

    preset_tpsl_at_entry: bool   # stop-loss / take-profit attached to the entry order
    plan_orders: bool            # position-wide trigger (plan) orders for stop-loss / take-profit
    trailing_stop: bool          # a venue-side trailing stop order
    demo: bool                   # a demo / sandbox account reachable with ccxt's sandbox mode
    position_mode: str           # the mode the bot sets: "one_way"
    funding_interval_hours: int  # hours between funding payments
    candle_page: int             # candles per OHLCV request
    funding_page: int            # funding-rate events per history request
    funding_page_param: str | None  # the request parameter that pages funding history (None: ``since``)
    market_type: str = "swap"    # the markets perpbot trades there: "swap" (USDT-M perpetuals) or "spot"


CAPABILITIES = VenueCapabilities(preset_tpsl_at_entry=True, plan_orders=True, trailing_stop=True, demo=True,
                                 position_mode="one_way", funding_interval_hours=8, candle_page=200,
                                 funding_page=100, funding_page_param="pageNo")

# ---- protection orders (the live bot's seam: perpbot.exchange.venue_params) -------------------------------------
#: Error codes: a duplicate client order id (an earlier attempt got through); margin mode locked by open orders.
DUPLICATE_CODES = ("40786",)
MARGIN_LOCKED_CODES = ("45117", "40920")
#: ``params`` of ``fetch_open_orders`` listing the protection (plan) orders.
PROTECTION_QUERY = {"planType": "profit_loss"}  # the stop-loss / take-profit plan orders (incl. trailing)


def protection_kind(order: dict) -> str | None:
    """"stop_loss" | "take_profit" | "trailing_stop" of a plan order (ccxt order; ``info.planType``), else None."""
    plan = (order.get("info") or {}).get("planType")
    if plan in (TRAILING_PLAN, "track_plan"):
        return "trailing_stop"
    return "stop_loss" if plan in LOSS_PLANS else "take_profit" if plan in PROFIT_PLANS else None


def protection_params(kind: str, cid: str, price: float) -> dict:
    """``params`` of ``create_order`` for a position-wide stop-loss / take-profit (ccxt -> place-tpsl-order
    ``pos_loss`` / ``pos_profit``, closing the whole position; a new one replaces the old on the venue)."""
    return {"stopLossPrice" if kind == "stop_loss" else "takeProfitPrice": price, "clientOrderId": cid}


def cancel_protection_params(order: dict) -> dict:
    """``params`` of ``cancel_order`` for a plan order (cancel-plan-order needs its planType)."""
    return {"trigger": True, "planType": (order.get("info") or {}).get("planType")}


def exit_reason(order: dict) -> str | None:
    """Exit reason label of the order that closed a position (``info.orderSource`` of a triggered plan's
    market order, or a liquidation), None when the venue does not say."""
    src = str((order.get("info") or {}).get("orderSource") or "")
    return ExitReason.LIQUIDATION.label if src == "liquidation" else EXIT_REASONS.get(src)


async def place_trailing(ex, symbol: str, market: dict, side: int, qty: float, activation: float, rate: float,
                         cid: str) -> dict:
    """Trailing stop of the ``side`` position: place-tpsl-order ``moving_plan`` (ccxt has no unified call),
    active at ``activation`` (USDT, mark price), trailing ``rate`` (fraction) behind the best price."""
    request = {"symbol": market["id"], "productType": f"{market['settleId']}-FUTURES", "marginCoin": market["settleId"],
               "planType": TRAILING_PLAN, "triggerPrice": ex.price_to_precision(symbol, activation),
               "rangeRate": f"{rate * 100:.2f}", "holdSide": "buy" if side > 0 else "sell",
               "size": ex.amount_to_precision(symbol, qty), "triggerType": "mark_price", "clientOid": cid}
    raw = await ex.privateMixPostV2MixOrderPlaceTpslOrder(request)
    return {"id": (raw.get("data") or {}).get("orderId"), "clientOrderId": cid, "info": raw}
