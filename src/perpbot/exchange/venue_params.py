"""What the executor asks of a venue, by ccxt id: the venue module's answer when perpbot has
one (:data:`perpbot.exchange.clients.VENUES`), else Bitget's (the executor's original calls).

* :func:`entry_params` / :func:`exit_params`: ``params`` of the market entry (with stop-loss /
  take-profit attached) and of the reduce-only exit;
* :func:`lookup`: the order with perpbot's client order id (the look-up before any resend);
* :func:`setup_isolated`: isolated margin and leverage (:func:`perpbot.exchange.venue_orders.setup_isolated`);
* :func:`enable_demo`, :func:`demo_line`, :func:`real_money_warning`: demo mode and the banner's words;
* :func:`check_live`: the live bot trades only on :data:`LIVE_VENUES` (the refusal names the venue;
  spot venues trade through :mod:`perpbot.exchange.spot_orders`).
"""

from __future__ import annotations

from perpbot.exchange import venue_orders
from perpbot.exchange.clients import VENUES, capabilities, is_spot_venue


def _module(exchange_id: str):
    """The venue module with order calls (None: Bitget, or a venue without a module)."""
    mod = VENUES.get(exchange_id)
    return mod if mod is not None and hasattr(mod, "entry_params") else None


def entry_params(exchange_id: str, cid: str, stop_loss: float | None, take_profit: float | None,
                 leverage: int) -> dict:
    """``params`` of the market entry. Raises ValueError where the venue cannot attach TP/SL."""
    mod = _module(exchange_id)
    if mod is not None:
        return mod.entry_params(cid, stop_loss, take_profit, leverage)
    params: dict = {"marginMode": "isolated", "clientOrderId": cid}
    if stop_loss is not None:
        params["stopLoss"] = {"triggerPrice": stop_loss}
    if take_profit is not None:
        params["takeProfit"] = {"triggerPrice": take_profit}
    return params


def entry_refusal(exchange_id: str, stop_loss: float | None, take_profit: float | None) -> str | None:
    """Why the executor may not send this entry (None: it may): a venue whose stop-loss /
    take-profit cannot ride on the entry (Binance) needs separate trigger orders after the fill,
    which only :func:`perpbot.exchange.venue_orders.place_entry` sends, not the executor."""
    caps = capabilities(exchange_id)
    if caps is None or caps.preset_tpsl_at_entry or (stop_loss is None and take_profit is None):
        return None
    return f"{exchange_id}: an entry with its stop-loss/take-profit is not wired into the executor; not sent"


def exit_params(exchange_id: str, cid: str, leverage: int) -> dict:
    mod = _module(exchange_id)
    if mod is not None:
        return mod.exit_params(cid, leverage)
    return {"marginMode": "isolated", "reduceOnly": True, "clientOrderId": cid}


async def lookup(ex, symbol: str, cid: str):
    """The venue's order with client id ``cid``; raises ``ccxt.OrderNotFound`` when it has none."""
    mod = VENUES.get(ex.id)
    if mod is not None and hasattr(mod, "lookup"):  # every module but Bitget's (spot venues too)
        return await venue_orders.lookup_order(ex, mod, symbol, cid)
    return await ex.fetch_order(None, symbol, {"clientOrderId": cid})


async def setup_isolated(ex, symbol: str, leverage: int, margin: bool) -> None:
    """Isolated margin (when ``margin``) and ``leverage``; Bitget: ``set_margin_mode`` + ``set_leverage``."""
    mod = _module(ex.id)
    if mod is not None:
        await venue_orders.setup_isolated(ex, mod, symbol, leverage, margin)
        return
    if margin:
        await ex.set_margin_mode("isolated", symbol)
    await ex.set_leverage(leverage, symbol)


def enable_demo(ex) -> None:
    """Demo mode of the venue (its module's ``enable_demo``, else ccxt sandbox mode). Raises
    ``ccxt.NotSupported`` (or another error) when the venue has none."""
    mod = VENUES.get(ex.id)
    if mod is not None and hasattr(mod, "enable_demo"):
        mod.enable_demo(ex)
    else:
        ex.set_sandbox_mode(True)


def demo_line(exchange_id: str) -> str:
    """The banner's DEMO line for the venue."""
    if exchange_id == "bitget":
        return "Bitget demo trading (paptrading: 1): no real money is used."
    return getattr(VENUES.get(exchange_id), "DEMO", None) or f"{exchange_id} sandbox mode (ccxt): no real money is used."


def real_money_warning(exchange_id: str) -> str | None:
    """The loud real-money-only line of a venue without a (usable) demo/testnet (MEXC, WEEX,
    Tokocrypto), else None."""
    mod = VENUES.get(exchange_id)
    fn = getattr(mod, "real_money_warning", None)
    return fn() if fn is not None else None


#: Venues the live bot trades on. Reconciliation (every cycle), stop replacement (``protect``), the
#: trailing stop and the exit reasons read and write Bitget's plan orders (``planType``); on another
#: venue they would not see the stops attached at entry and would place new ones every cycle.
LIVE_VENUES = ("bitget",)


def check_live(exchange_id: str) -> None:
    """Refuse live trading on a venue outside :data:`LIVE_VENUES`, before anything is built or sent.

    Raises:
        perpbot.exchange.venue.LiveStartupError: one line naming the venue and why.
    """
    if exchange_id in LIVE_VENUES:
        return
    from perpbot.exchange.venue import LiveStartupError

    if is_spot_venue(exchange_id):
        raise LiveStartupError(f"live trading runs on {', '.join(LIVE_VENUES)} only for now: {exchange_id} is a spot "
                               "venue, whose orders perpbot sends through perpbot.exchange.spot_orders, not through "
                               "the live bot; nothing was sent")
    wired = " (its order calls are wired in the executor; see README, 'Other venues')" if exchange_id in VENUES else ""
    raise LiveStartupError(f"live trading runs on {', '.join(LIVE_VENUES)} only for now: reconciliation and stop "
                           f"management read Bitget's plan orders, not {exchange_id}'s{wired}; nothing was sent")
