"""What the executor asks of a venue, by ccxt id: the venue module's answer when perpbot has
one (:data:`perpbot.exchange.clients.VENUES`), else Bitget's (the executor's original calls).

* :func:`entry_params` / :func:`exit_params`: ``params`` of the market entry (with stop-loss /
  take-profit attached) and of the reduce-only exit;
* :func:`lookup`: the order with perpbot's client order id (the look-up before any resend);
* :func:`setup_isolated`: isolated margin and leverage (:func:`perpbot.exchange.venue_orders.setup_isolated`);
* :func:`enable_demo`, :func:`demo_line`, :func:`real_money_warning`: demo mode and the banner's words;
* the protection orders the live bot manages (stop-loss, take-profit, trailing stop):
  :func:`protection_query` lists them, :func:`protection_kind` tells them apart, :func:`protection_params`
  places one, :func:`cancel_protection_params` cancels one, :func:`protection_levels` reads their levels,
  :func:`exit_order` / :func:`exit_reason` read why a position closed, :func:`place_trailing` places a
  trailing stop, :func:`client_id` is perpbot's client id as the venue shows it;
  :func:`duplicate_codes` / :func:`margin_locked_codes` are the venue's error codes the executor acts on;
* :func:`check_live`: the live bot trades only on :data:`LIVE_VENUES`, the venues whose module has these
  calls (the refusal names the venue; spot venues trade through :mod:`perpbot.exchange.spot_orders`).
"""

from __future__ import annotations

from perpbot.exchange import bitget, venue_orders
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
        if not preset_protection(exchange_id):
            stop_loss = take_profit = None  # placed by the executor after the entry (protection_params)
        return mod.entry_params(cid, stop_loss, take_profit, leverage)
    params: dict = {"marginMode": "isolated", "clientOrderId": cid}
    if stop_loss is not None:
        params["stopLoss"] = {"triggerPrice": stop_loss}
    if take_profit is not None:
        params["takeProfit"] = {"triggerPrice": take_profit}
    return params


def preset_protection(exchange_id: str) -> bool:
    """True when the entry order carries its stop-loss / take-profit (Bitget); else (Binance) the executor
    places them as separate reduce-only trigger orders right after the entry is accepted."""
    caps = capabilities(exchange_id)
    return caps is None or caps.preset_tpsl_at_entry


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


async def ensure_one_way(ex, symbol: str, balance: dict) -> None:
    """One-way position mode: Bitget says its mode in the balance (``posMode``); Binance is asked
    (``GET /fapi/v1/positionSide/dual``); a module with ``position_hedged`` reads it its way (Bybit: the
    position rows). Set only when the account is in hedge mode."""
    if ex.id == bitget.ID:
        info = balance.get("info")
        row = info[0] if isinstance(info, list) and info and isinstance(info[0], dict) else {}
        hedged = row.get("posMode") == "hedge_mode"
    elif hasattr(_live(ex.id), "position_hedged"):
        hedged = await _live(ex.id).position_hedged(ex, symbol)
    else:
        hedged = _live(ex.id) is not None and bool((await ex.fetch_position_mode(symbol)).get("hedged"))
    if hedged:
        await ex.set_position_mode(False, symbol)


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


def _live(exchange_id: str):
    """The module of the protection-order calls: Bitget's, or a venue module that has them (None: no live)."""
    mod = bitget if exchange_id == bitget.ID else VENUES.get(exchange_id)
    return mod if mod is not None and hasattr(mod, "protection_kind") else None


def protection_query(exchange_id: str) -> dict:
    """``params`` of ``fetch_open_orders`` listing the protection orders (Bitget plan / Binance algo orders)."""
    return dict(_live(exchange_id).PROTECTION_QUERY)


def protection_kind(exchange_id: str, order: dict) -> str | None:
    """"stop_loss" | "take_profit" | "trailing_stop" of one protection order (ccxt order), else None."""
    return _live(exchange_id).protection_kind(order)


def protection_levels(exchange_id: str, order: dict) -> dict[str, float]:
    """{kind: trigger level USDT} of one protection order: the module's ``protection_levels`` (OKX: an OCO
    holds both levels), else {:func:`protection_kind`: ccxt ``triggerPrice``}."""
    mod = _live(exchange_id)
    fn = getattr(mod, "protection_levels", None)
    if fn is not None:
        return fn(order)
    kind, price = mod.protection_kind(order), order.get("triggerPrice")
    return {kind: float(price)} if kind is not None and price is not None else {}


def listed_client_id(exchange_id: str, order: dict) -> str | None:
    """The client id of a listed protection order: the module's ``listed_client_id`` (OKX: the algo order's own
    ``algoClOrdId``, which ccxt does not map), else ccxt ``clientOrderId``."""
    fn = getattr(_live(exchange_id), "listed_client_id", None)
    return fn(order) if fn is not None else order.get("clientOrderId")


def client_id(exchange_id: str, cid: str) -> str:
    """perpbot's client order id ``cid`` as the venue shows it (ccxt ``clientOrderId``; OKX: letters and digits)."""
    fn = getattr(VENUES.get(exchange_id), "client_order_id", None)
    return fn(cid) if fn is not None else cid


def protection_params(exchange_id: str, kind: str, cid: str, price: float) -> dict:
    """``params`` of ``create_order`` (market, the closing side, the position's qty) placing a ``kind``
    ("stop_loss" / "take_profit") protection order triggered at ``price`` (USDT)."""
    return _live(exchange_id).protection_params(kind, cid, price)


def cancel_protection_params(exchange_id: str, order: dict) -> dict:
    return _live(exchange_id).cancel_protection_params(order)


def exit_reason(exchange_id: str, order: dict) -> str | None:
    """Exit reason label (:class:`perpbot.types.ExitReason`) the venue gives the order that closed a
    position (a triggered stop-loss / take-profit / trailing stop, a liquidation), None when it says none."""
    return _live(exchange_id).exit_reason(order)


async def exit_order(ex, symbol: str, order: dict) -> dict:
    """The ccxt order :func:`exit_reason` reads for the exit fill's ``order``: the module's ``exit_order``
    (OKX: the algo order whose trigger placed it), else ``order``."""
    fn = getattr(_live(ex.id), "exit_order", None)
    return await fn(ex, symbol, order) if fn is not None else order


async def place_trailing(ex, symbol: str, market: dict, side: int, qty: float, activation: float, rate: float,
                         cid: str) -> dict:
    """A venue-side trailing stop of the ``side`` position (ccxt order); ``rate`` fraction, ``activation`` USDT."""
    return await _live(ex.id).place_trailing(ex, symbol, market, side, qty, activation, rate, cid)


def duplicate_codes(exchange_id: str) -> tuple[str, ...]:
    """Error codes meaning "this client order id exists already" (an earlier attempt got through)."""
    return getattr(_live(exchange_id) or bitget, "DUPLICATE_CODES", ())


def margin_locked_codes(exchange_id: str) -> tuple[str, ...]:
    """Error codes meaning "the margin mode cannot change now" (open orders / a position)."""
    return getattr(_live(exchange_id) or bitget, "MARGIN_LOCKED_CODES", ())


#: Venues the live bot trades on: those whose module lists, tells apart, places and cancels the
#: protection orders (reconciliation every cycle, stop replacement, the trailing stop, exit reasons).
LIVE_VENUES = tuple(v for v in dict.fromkeys((bitget.ID, *VENUES)) if _live(v) is not None)


#: Venues where the executor places a trailing stop (the module's ``place_trailing``; the venue offers one).
TRAILING_VENUES = tuple(v for v in LIVE_VENUES if getattr(capabilities(v), "trailing_stop", True)
                        and hasattr(_live(v), "place_trailing"))


def check_live(exchange_id: str, entry_order: str = "market") -> None:
    """Refuse live trading on a venue outside :data:`LIVE_VENUES`, and post-only limit entries
    (``entry_order`` "limit") on a venue whose entry cannot carry its stop-loss (a resting limit
    would fill with no stop until the next cycle), before anything is built or sent.

    Raises:
        perpbot.exchange.venue.LiveStartupError: one line naming the venue and why.
    """
    from perpbot.exchange.venue import LiveStartupError

    if exchange_id in LIVE_VENUES:
        if entry_order == "limit" and not preset_protection(exchange_id):
            raise LiveStartupError(f"entry_order = 'limit' is not offered live on {exchange_id}: its entry orders "
                                   "cannot carry a stop-loss, so a resting limit would fill unprotected; use "
                                   "entry_order = 'market'; nothing was sent")
        return

    if is_spot_venue(exchange_id):
        raise LiveStartupError(f"live trading runs on {', '.join(LIVE_VENUES)} only for now: {exchange_id} is a spot "
                               "venue, whose orders perpbot sends through perpbot.exchange.spot_orders, not through "
                               "the live bot; nothing was sent")
    wired = " (its order calls exist for the request tests; see README, 'Other venues')" if exchange_id in VENUES else ""
    raise LiveStartupError(f"live trading runs on {', '.join(LIVE_VENUES)} only for now: reconciliation and stop "
                           f"management do not read {exchange_id}'s stop orders yet{wired}; nothing was sent")
