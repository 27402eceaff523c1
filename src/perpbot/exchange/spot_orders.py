"""Spot orders on a spot venue (Indodax, Tokocrypto: the modules of
:data:`perpbot.exchange.clients.VENUES` with ``CAPABILITIES.market_type == "spot"``), made through
its ccxt client: the account of ``Settings.market_type = "spot"``, coins bought with the quote
currency (IDR or USDT), long-only, 1x. No leverage, margin-mode, position or funding call exists
on this path; a sell sells coins held (the venue refuses more), so nothing here can open a short.

* :func:`check_spot_market`: markets loaded, ``symbol`` an active spot market of the venue quoted
  in one of its ``QUOTES``, the timeframe offered -> (ccxt market, :class:`MarketRules` with
  ``max_leverage`` 1); otherwise one :class:`LiveStartupError` line and nothing private was sent;
* :func:`order_call`: the ``create_order`` call of a market or limit buy / sell (a market order
  the venue sizes in the quote currency carries the reference price: ``venue.MARKET_NEEDS_PRICE``);
* :func:`place_order`: send it. A timeout, 5xx or dropped connection may hide an accepted order,
  so the order is looked up by its client id (the venue module's ``lookup``) before any resend,
  and a resend carries the same client id (the executor's rule, :mod:`perpbot.exchange.executor`);
  a refused timestamp re-syncs the clock once and resends at once;
* :func:`lookup_order`, :func:`fetch_order`, :func:`cancel`, :func:`balance`.

Units: qty base asset (e.g. SOL), prices and money in the quote currency (IDR or USDT).
``cid`` is perpbot's client order id (``pb{run}-{bar}-{n}``), in the venue's form via
``venue.client_order_id``.
"""

from __future__ import annotations

import asyncio
import difflib
from dataclasses import dataclass

from perpbot.exchange.ccxt_adapter import describe_error
from perpbot.exchange.clients import VENUES, is_spot_venue
from perpbot.exchange.clock import sync_clock
from perpbot.exchange.executor import OrderResult, RetryPolicy
from perpbot.exchange.market_cache import precision_step
from perpbot.exchange.venue import LiveStartupError, MarketRules
from perpbot.exchange.venue_orders import OrderCall
from perpbot.logs import get_logger

log = get_logger("perpbot.spot")

_UNKNOWN = object()  # a look-up that could not reach the venue


@dataclass(frozen=True)
class SpotBalance:
    """Free and held (in open orders) amounts of the base coin and the quote currency."""

    base: str
    quote: str
    base_free: float
    base_used: float
    quote_free: float
    quote_used: float

    def equity(self, price: float) -> float:
        """Account value in the quote currency at ``price`` (quote per base)."""
        return self.quote_free + self.quote_used + (self.base_free + self.base_used) * float(price)


def spot_venue(exchange_id: str):
    """The spot venue module of ``exchange_id``. Raises ValueError for any other venue."""
    if not is_spot_venue(exchange_id):
        spot = ", ".join(k for k in VENUES if is_spot_venue(k))
        raise ValueError(f"{exchange_id} is not a spot venue of perpbot (spot venues: {spot})")
    return VENUES[exchange_id]


async def check_spot_market(ex, symbol: str, timeframe: str) -> tuple[dict, MarketRules]:
    """(ccxt market, :class:`MarketRules`) of spot ``symbol`` on the client's venue (module docstring).

    Raises:
        LiveStartupError: one line naming the problem; nothing private was sent.
    """
    import ccxt

    try:
        venue = spot_venue(ex.id)
    except ValueError as exc:
        raise LiveStartupError(f"{exc}; nothing was sent") from None
    try:
        await ex.load_markets()
    except ccxt.BaseError as exc:
        raise LiveStartupError(describe_error(exc, f"cannot load {ex.id} markets")) from None
    if symbol not in ex.markets:
        near = difflib.get_close_matches(symbol, [s for s, m in ex.markets.items() if m.get("spot")], n=3)
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        raise LiveStartupError(f"{ex.id} does not list {symbol}{hint}; nothing was sent")
    m = ex.market(symbol)
    if not m.get("spot"):
        raise LiveStartupError(f"{symbol} on {ex.id} is not a spot market; nothing was sent")
    if m.get("quote") not in venue.QUOTES:
        raise LiveStartupError(f"{symbol} on {ex.id} is quoted in {m.get('quote')}; perpbot trades {ex.id} spot "
                               f"against {', '.join(venue.QUOTES)}; nothing was sent")
    if m.get("active") is False:
        raise LiveStartupError(f"{symbol} on {ex.id} is not trading now (maintenance); nothing was sent")
    if timeframe not in (ex.timeframes or {}):
        raise LiveStartupError(f"{ex.id} does not offer the timeframe {timeframe!r} "
                               f"(it has {', '.join(ex.timeframes or {})}); nothing was sent")
    prec, lim = m.get("precision") or {}, m.get("limits") or {}
    mode = getattr(ex, "precisionMode", None)
    rules = MarketRules(lot=precision_step(prec.get("amount"), mode) or float("nan"),
                        tick=precision_step(prec.get("price"), mode) or float("nan"),
                        min_qty=float((lim.get("amount") or {}).get("min") or 0.0),
                        min_notional=venue.min_notional(m), taker=venue.taker_fee(m), max_leverage=1.0)
    return m, rules


def order_call(venue, side: str, qty: float, cid: str, *, price: float | None = None,
               ref_price: float | None = None) -> OrderCall:
    """The ``create_order`` call of a spot order: limit at ``price`` when given, else market. A
    market order of a side in ``venue.MARKET_NEEDS_PRICE`` carries ``ref_price`` as its price.

    Raises ValueError for a side other than buy / sell, ``qty <= 0``, or a missing ``ref_price``."""
    if side not in ("buy", "sell"):
        raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
    if not qty > 0:
        raise ValueError(f"qty must be > 0, got {qty}")
    otype = "limit" if price is not None else "market"
    px = price
    if otype == "market" and side in venue.MARKET_NEEDS_PRICE:
        if ref_price is None:
            raise ValueError(f"{venue.ID}: a market {side} needs ref_price (the venue sizes it in the quote currency)")
        px = ref_price
    return OrderCall(otype, side, qty, px, venue.order_params(cid, otype))


async def lookup_order(ex, venue, symbol: str, cid: str) -> dict:
    """The venue's order with client id ``cid`` (ccxt order). Raises ``ccxt.OrderNotFound``."""
    return await venue.lookup(ex, symbol, venue.client_order_id(cid))


async def _find(ex, venue, symbol: str, cid: str, retry: RetryPolicy):
    """The order, None when the venue has none, or ``_UNKNOWN`` when it could not be asked."""
    import ccxt

    for k in range(retry.lookup_attempts):
        try:
            return await lookup_order(ex, venue, symbol, cid)
        except ccxt.OrderNotFound:
            return None
        except ccxt.NetworkError as exc:
            log.warning("order_lookup_retry", cid=cid, error=describe_error(exc), retry_in=retry.delay(k))
            await asyncio.sleep(retry.delay(k))
        except ccxt.ExchangeError as exc:
            log.warning("order_lookup_failed", cid=cid, error=describe_error(exc))
            return _UNKNOWN
    return _UNKNOWN


async def place_order(ex, venue, symbol: str, side: str, qty: float, *, cid: str, price: float | None = None,
                      ref_price: float | None = None, retry: RetryPolicy = RetryPolicy()) -> OrderResult:
    """Send :func:`order_call` with look-up before any resend (module docstring). ``qty`` and
    ``price`` go out as given: floor / round them to the lot and tick of :func:`check_spot_market`.

    Returns an :class:`~perpbot.exchange.executor.OrderResult`: ``sent`` (the ccxt order, or the
    one found by the look-up), ``failed`` (refused, or never accepted after ``retry.attempts``
    sends), ``unknown`` (the last look-up could not reach the venue). Raises ValueError as
    :func:`order_call` does (nothing sent)."""
    import ccxt

    call = order_call(venue, side, qty, cid, price=price, ref_price=ref_price)
    last: BaseException | None = None
    found = None
    resynced, attempts = False, 0
    for k in range(retry.attempts):
        attempts = k + 1
        try:
            order = await ex.create_order(symbol, call.type, call.side, call.amount, call.price, dict(call.params))
            return OrderResult(cid, "sent", order, attempts=k + 1)
        except ccxt.InvalidNonce as exc:  # refused at authentication: never processed
            last = exc
            if resynced or await sync_clock(ex, f"refused: {describe_error(exc)}") is None:
                break
            resynced = True
        except ccxt.NetworkError as exc:
            last = exc
            log.warning("order_retry", cid=cid, side=side, attempt=k + 1, error=describe_error(exc))
            if not isinstance(exc, (ccxt.DDoSProtection, ccxt.RateLimitExceeded)):
                found = await _find(ex, venue, symbol, cid, retry)  # may have been accepted before the error
                if found is not None and found is not _UNKNOWN:
                    return OrderResult(cid, "sent", found, attempts=k + 1)
            if k + 1 < retry.attempts:
                await asyncio.sleep(retry.delay(k))
        except ccxt.ExchangeError as exc:
            return OrderResult(cid, "failed", None, error=describe_error(exc, f"{side} order"), attempts=k + 1)
    status = "unknown" if found is _UNKNOWN else "failed"
    error = describe_error(last, f"{side} order") if last is not None else None
    log.error("order_failed", cid=cid, status=status, error=error)
    return OrderResult(cid, status, None, error=error, attempts=attempts)


async def fetch_order(ex, symbol: str, order_id: str) -> dict:
    """One order by the venue's id (ccxt order)."""
    return await ex.fetch_order(order_id, symbol)


async def cancel(ex, venue, symbol: str, order_id: str, side: str) -> dict:
    """Cancel one open order (``side`` of the order: Indodax needs it); the venue module's ``cancel``."""
    return await venue.cancel(ex, symbol, order_id, side)


async def balance(ex, market: dict) -> SpotBalance:
    """Free and held amounts of the market's base coin and quote currency (ccxt ``fetch_balance``)."""
    raw = await ex.fetch_balance()
    b, q = raw.get(market["base"]) or {}, raw.get(market["quote"]) or {}
    return SpotBalance(market["base"], market["quote"], float(b.get("free") or 0.0), float(b.get("used") or 0.0),
                       float(q.get("free") or 0.0), float(q.get("used") or 0.0))
