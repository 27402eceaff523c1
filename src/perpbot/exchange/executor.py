"""Order execution on a ccxt venue (Bitget USDT-M first): start-up checks, orders, retries, ledger.

One :class:`Executor` per symbol, on an asyncio ccxt client (:func:`~perpbot.exchange.ccxt_adapter.make_exchange`).

* :meth:`Executor.startup`: the venue checks of :mod:`perpbot.exchange.venue` (keys, symbol,
  timeframe, keys accepted), then one-way mode, isolated margin and the leverage, so a bad
  key, symbol or timeframe raises one :class:`LiveStartupError` line before any private POST.
* Orders: quantities floored to the lot size and prices rounded to the tick; orders below the
  venue minimum (amount or 5 USDT notional) are not sent (log line + ``below_min_size`` risk
  event). Every order gets a deterministic client order id ``pb{run_id}-{bar}-{n}`` (bar =
  candle open ms // timeframe ms, n = count within the bar; <= 50 chars of ``[a-z0-9-]``, as
  Bitget's clientOid allows) that is written to the ledger (status ``new``) BEFORE the request.
* Retries (:class:`RetryPolicy`): 429 / DDoSProtection -> exponential backoff and resend (the
  venue refused it unprocessed); a timeout, 5xx or connection error may hide an accepted order,
  so the order is first looked up by client id (:func:`perpbot.exchange.venue_params.lookup`,
  or the open plan orders for TP/SL) and resent only when the venue does not have it
  (a resend carries the same client id, which the venue refuses as a duplicate: Bitget 40786, Binance -4116). After
  the last attempt nothing is forced: the order is marked ``failed`` in the ledger, an
  ``order_failed`` event is published and one clear line is logged. When even the look-up fails
  the ledger keeps ``new`` and :mod:`perpbot.exchange.reconcile` settles it in a later cycle.
* Clock: measured at start-up and whenever the venue refuses an expired timestamp
  (:mod:`perpbot.exchange.clock`); the refused request is sent once more; a second refusal
  propagates (reads) or fails the order. Leverage per entry: :mod:`perpbot.exchange.leverage`.

Ledger rows of the orders: :class:`~perpbot.exchange.order_ledger.OrderLedger`, mixed in.
Units: qty base asset, prices USDT.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import pandas as pd

from perpbot.sim.accounting import floor_to_step, round_to_step
from perpbot.exchange.ccxt_adapter import describe_error, error_code
from perpbot.exchange.clock import sync_clock
from perpbot.exchange import venue_params
from perpbot.exchange.leverage import VenueLeverage
from perpbot.exchange.order_ledger import OrderLedger, OrderRow  # noqa: F401  (OrderRow re-exported)
from perpbot.exchange.protection import VenueProtection
from perpbot.exchange.reads import VenueReads
from perpbot.exchange.venue import (  # noqa: F401  (re-exported: the executor's public types)
    AccountSnapshot, LiveStartupError, MarketRules, PositionInfo, check_venue, parse_snapshot, setup_account,
)
from perpbot.logs import get_logger

log = get_logger("perpbot.live")

_UNKNOWN = object()  # a look-up that could not reach the venue

@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff: ``attempts`` sends, waits ``base_delay * 2**k`` s (<= ``max_delay``)."""

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    lookup_attempts: int = 3

    def delay(self, k: int) -> float:
        return min(self.base_delay * (2.0 ** k), self.max_delay)


@dataclass
class OrderResult:
    """Outcome of one order: ``status`` sent (accepted) | failed | skipped (not sent) | unknown
    (the venue could not be asked whether it has it); ``order`` the ccxt order; ``sent_at``
    ``time.perf_counter()`` just before the first HTTP request left."""

    cid: str
    status: str
    order: dict | None = None
    error: str | None = None
    attempts: int = 0
    sent_at: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "sent"

    @property
    def exchange_id(self) -> str | None:
        return None if self.order is None else self.order.get("id")


class Executor(OrderLedger, VenueReads, VenueLeverage, VenueProtection):
    """Sends and tracks the orders of one symbol (see the module docstring).

    Args:
        exchange: asyncio ccxt client (:func:`~perpbot.exchange.ccxt_adapter.make_exchange`).
        settings: :class:`perpbot.config.Settings` (symbol, timeframe, leverage).
        ledger / run_id: where orders, fills and risk events are recorded (None: nothing).
        events: :class:`perpbot.bot.events.EventBus` for ``order_failed`` events (or None); retry: :class:`RetryPolicy`.
    """

    def __init__(self, exchange, settings, *, ledger=None, run_id: int | None = None, events=None,
                 retry: RetryPolicy = RetryPolicy(), symbol: str | None = None, timeframe: str | None = None) -> None:
        self.ex = exchange
        self.settings = settings
        self.symbol = symbol or settings.symbol
        self.timeframe = timeframe or settings.timeframe
        self.ledger, self.run_id, self.events, self.retry = ledger, run_id, events, retry
        self.market: dict | None = None
        self.rules: MarketRules | None = None
        self._seq: dict[int, int] = {}
        self.clock: Callable[[], pd.Timestamp] | None = None
        self.unsettled: dict[str, OrderRow] = {}   # client id -> ledger order still new / open
        self.ledger_position: tuple[int, float] | None = None  # (side, qty) of the last snapshot written
        self.clock_syncs = 0  # successful re-syncs of the venue clock after a refused timestamp

    def now(self) -> pd.Timestamp:
        """Time of ledger rows (UTC): ``clock()`` when set (the live loop's exchange time), else now."""
        return self.clock() if self.clock is not None else pd.Timestamp.now(tz="UTC")

    # ------------------------------------------------------------------ start-up
    async def startup(self) -> MarketRules:
        """Check keys, symbol, timeframe and account (:func:`~perpbot.exchange.venue.check_venue`),
        then one-way mode, isolated margin and the leverage (:func:`~perpbot.exchange.venue.setup_account`).

        Raises:
            LiveStartupError: one line naming the problem; no order or setting was sent.
        """
        await sync_clock(self.ex, "startup")
        self.market, self.rules, balance = await check_venue(self.ex, self.settings, self.symbol, self.timeframe)
        self.leverage = await setup_account(self.ex, self.symbol, balance, int(self.settings.leverage),
                                            (await self.snapshot()).position)
        log.info("executor_ready", exchange=self.ex.id, symbol=self.symbol, timeframe=self.timeframe,
                 leverage=self.leverage, lot=self.rules.lot, tick=self.rules.tick,
                 min_notional=self.rules.min_notional)
        return self.rules

    # ------------------------------------------------------------------ rounding and ids
    def round_qty(self, qty: float) -> float:
        """Quantity floored to the lot size (base asset)."""
        return float(floor_to_step(float(qty), self.rules.lot))

    def round_price(self, price: float) -> float:
        """Price rounded to the tick size (USDT)."""
        return float(round_to_step(float(price), self.rules.tick))

    def below_minimum(self, qty: float, price: float) -> str | None:
        """Why an order of ``qty`` at ``price`` may not be sent (None when it may)."""
        r = self.rules
        if qty <= 0 or qty < r.min_qty - 1e-12:
            return f"qty {qty:g} is below the minimum {r.min_qty:g}"
        if qty * price < r.min_notional - 1e-9:
            return f"notional {qty * price:.4f} USDT is below the minimum {r.min_notional:g} USDT"
        return None

    def bar_of(self, timestamp_ms: int) -> int:
        """Bar number of a candle (open time ms UTC // timeframe ms), the ``bar`` of client ids."""
        from perpbot.data import timeframe_to_ms

        return int(timestamp_ms) // timeframe_to_ms(self.timeframe)

    def new_cid(self, bar: int) -> str:
        """Next client order id of ``bar``: ``pb{run_id}-{bar}-{n}``."""
        n = self._seq.get(bar, 0)
        if len(self._seq) > 256:  # only recent bars matter
            self._seq = {b: k for b, k in self._seq.items() if b >= bar - 16}
        self._seq[bar] = n + 1
        return f"pb{self.run_id or 0}-{bar}-{n}"

    # ------------------------------------------------------------------ clock
    async def resync_clock(self, exc: BaseException) -> bool:
        """Re-sync the venue clock after ``exc`` (a refused timestamp); True when it was measured."""
        log.warning("timestamp_refused", error=describe_error(exc))
        ok = await sync_clock(self.ex, f"refused: {describe_error(exc)}") is not None
        self.clock_syncs += ok
        return ok

    async def _synced(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """``await call()``; when the venue refuses its timestamp, re-sync the clock and call once
        more (a refused request was not processed). Other errors, and a second refusal, propagate."""
        import ccxt

        try:
            return await call()
        except ccxt.InvalidNonce as exc:
            if not await self.resync_clock(exc):
                raise
        return await call()

    # ------------------------------------------------------------------ sending
    async def lookup(self, cid: str, plan: bool = False, fee: bool = True):
        """The venue's order with client id ``cid`` (ccxt dict), None when it has none, or the
        sentinel ``_UNKNOWN`` when the venue could not be asked (bounded retries; a refused
        timestamp re-syncs the clock once). ``fee``: a filled order whose answer carries no fee
        gets it from its fills (:meth:`with_fee`; the retry path only asks whether it exists)."""
        import ccxt

        resynced = False
        for k in range(self.retry.lookup_attempts):
            try:
                if plan:
                    plans = await self.protection_orders()
                    want = venue_params.client_id(self.ex.id, cid)
                    return next((p for p in plans if venue_params.listed_client_id(self.ex.id, p) == want), None)
                order = await venue_params.lookup(self.ex, self.symbol, cid)
                return await self.with_fee(order) if fee else order
            except ccxt.OrderNotFound:
                return None
            except ccxt.InvalidNonce as exc:
                if resynced or not await self.resync_clock(exc):
                    log.warning("order_lookup_failed", cid=cid, error=describe_error(exc))
                    return _UNKNOWN
                resynced = True
            except ccxt.NetworkError as exc:
                log.warning("order_lookup_retry", cid=cid, error=describe_error(exc), retry_in=self.retry.delay(k))
                await asyncio.sleep(self.retry.delay(k))
            except ccxt.ExchangeError as exc:
                log.warning("order_lookup_failed", cid=cid, error=describe_error(exc))
                return _UNKNOWN
        return _UNKNOWN

    async def _submit(self, cid: str, call: Callable[[], Awaitable[dict]], path: str, what: str,
                      plan: bool = False) -> OrderResult:
        import ccxt

        sent_at, last, attempts, resynced = None, None, 0, False
        for k in range(self.retry.attempts):
            attempts += 1
            t_call = time.perf_counter()
            try:
                order = await call()
                sent_at = sent_at or self._stamp(path, t_call)
                return OrderResult(cid, "sent", order, attempts=attempts, sent_at=sent_at)
            except ccxt.InvalidNonce as exc:  # refused at authentication: never processed
                sent_at = sent_at or self._stamp(path, t_call)
                last = exc
                if resynced or not await self.resync_clock(exc):
                    break
                resynced = True  # the same client id again, at once
            except ccxt.NetworkError as exc:
                sent_at = sent_at or self._stamp(path, t_call)
                last = exc
                log.warning("order_retry", cid=cid, what=what, attempt=attempts, error=describe_error(exc))
                if not isinstance(exc, (ccxt.DDoSProtection, ccxt.RateLimitExceeded)):
                    found = await self.lookup(cid, plan, fee=False)  # may have been accepted before the error
                    if found is not None and found is not _UNKNOWN:
                        return OrderResult(cid, "sent", found, attempts=attempts, sent_at=sent_at)
                if k + 1 < self.retry.attempts:
                    await asyncio.sleep(self.retry.delay(k))
            except ccxt.ExchangeError as exc:
                sent_at = sent_at or self._stamp(path, t_call)
                last = exc
                if error_code(exc) in venue_params.duplicate_codes(self.ex.id):  # an earlier attempt got through
                    found = await self.lookup(cid, plan, fee=False)
                    if found is not None and found is not _UNKNOWN:
                        return OrderResult(cid, "sent", found, attempts=attempts, sent_at=sent_at)
                break
        unsure = isinstance(last, ccxt.NetworkError) and not isinstance(last, ccxt.InvalidNonce)
        found = await self.lookup(cid, plan, fee=False) if unsure else None
        if found is not None and found is not _UNKNOWN:
            return OrderResult(cid, "sent", found, attempts=attempts, sent_at=sent_at)
        status = "unknown" if found is _UNKNOWN else "failed"
        return OrderResult(cid, status, None, error=describe_error(last, what), attempts=attempts, sent_at=sent_at)

    def _stamp(self, path: str, t_call: float) -> float:
        t = getattr(self.ex, "request_sent_at", {}).get(path)
        return t if t is not None and t >= t_call else t_call

    def _settle(self, res: OrderResult, bar: int | None) -> OrderResult:
        """Ledger status, log line and events of a submitted order."""
        if res.ok:
            self.set_status(res.cid, "open", res.exchange_id)
            return res
        if res.status == "failed":
            self.set_status(res.cid, "failed")
        log.error("order_failed", cid=res.cid, status=res.status, attempts=res.attempts, error=res.error)
        self.risk_event("order_failed", float(res.attempts), f"{res.cid}: {res.error}", bar)
        if self.events is not None:
            self.events.publish("order_failed", message=f"{res.cid}: {res.error}", cid=res.cid, status=res.status)
        return res

    # ------------------------------------------------------------------ orders
    async def open_position(self, side: int, qty: float, stop_loss: float | None, take_profit: float | None,
                            tag: str = "entry", *, bar: int, ref_price: float, trade_no: int | None = None,
                            leverage: float | None = None, price: float | None = None) -> OrderResult:
        """Market entry (``side`` +1 long / -1 short, ``qty`` base) with the venue-side stop-loss and
        take-profit attached (Bitget preset TP/SL; on a venue without, e.g. Binance, placed by :meth:`protect`
        as soon as the entry is accepted: its market orders fill on arrival), isolated margin at ``leverage`` (default: the setting;
        :meth:`ensure_leverage`). ``price``: a post-only limit entry there. Below the minimum or the leverage
        refused: not sent ("skipped"). ``ref_price`` (USDT, e.g. the last close) checks the minimum notional."""
        qty = self.round_qty(qty)
        why = self.below_minimum(qty, ref_price)
        if why:
            log.warning("order_below_minimum", side=side, qty=qty, reason=why)
            self.risk_event("below_min_size", qty, why, bar)
            return OrderResult("", "skipped", error=why)
        sl, tp = (None if v is None or not math.isfinite(v) else self.round_price(v) for v in (stop_loss, take_profit))
        preset = venue_params.preset_protection(self.ex.id)
        limit = price is not None and math.isfinite(price)
        if why := (("a limit entry cannot carry its stop-loss here" if limit and not preset else None)
                   or await self.ensure_leverage(self.settings.leverage if leverage is None else leverage, bar)):
            log.error("entry_not_placed", reason=why)
            return OrderResult("", "skipped", error=why)
        order_side = "buy" if side > 0 else "sell"
        otype, px = ("limit", self.round_price(price)) if limit else ("market", None)
        cid = self._record(bar, order_side, otype, qty, px, False, tag, trade_no)
        params = venue_params.entry_params(self.ex.id, cid, sl, tp, int(self.leverage or self.settings.leverage))
        params = {**params, "postOnly": True} if px is not None else params  # ccxt: Bitget force=post_only
        res = await self._submit(cid, lambda: self.ex.create_order(self.symbol, otype, order_side, qty, px,
                                                                    dict(params)), "place-order", "entry")
        log.info("entry_sent" if res.ok else "entry_not_placed", cid=cid, side=order_side, qty=qty, price=px,
                 stop_loss=sl, take_profit=tp)
        res = self._settle(res, bar)
        if res.ok and not preset:  # Binance: the stops as reduce-only trigger orders, right after the entry
            await self.protect(side, qty, stop_loss=sl, take_profit=tp, bar=bar, trade_no=trade_no)
        return res

    async def close_position(self, reason: str, *, side: int, qty: float, bar: int,
                             trade_no: int | None = None) -> OrderResult:
        """Reduce-only market order closing ``qty`` of the ``side`` position (reason: signal, manual ...)."""
        qty = self.round_qty(qty)
        order_side = "sell" if side > 0 else "buy"
        cid = self._record(bar, order_side, "market", qty, None, True, reason, trade_no)
        params = venue_params.exit_params(self.ex.id, cid, int(self.leverage or self.settings.leverage))
        res = await self._submit(cid, lambda: self.ex.create_order(self.symbol, "market", order_side, qty, None,
                                                                    dict(params)), "place-order", f"exit ({reason})")
        log.info("exit_sent" if res.ok else "exit_not_placed", cid=cid, reason=reason, qty=qty)
        return self._settle(res, bar)

    # ------------------------------------------------------------------ reading
    async def snapshot(self) -> AccountSnapshot:
        """Position and balance, fetched concurrently (clock re-synced once on a refused timestamp)."""
        positions, balance = await self._synced(
            lambda: asyncio.gather(self.ex.fetch_positions([self.symbol]), self.ex.fetch_balance()))
        return parse_snapshot(positions, balance, self.symbol, (self.market or {}).get("settle", "USDT"), self.ex.id)

    async def close(self) -> None:
        await self.ex.close()
