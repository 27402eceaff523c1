"""Order-book features (spread, top-of-book imbalance, depth near the mid) and the live book/ticker watcher.

Input is a ccxt order book (``{"bids": [[price, amount], ...], "asks": [...], "timestamp":
ms}``, bids best first = highest price, asks best first = lowest). Amounts are in contracts;
``contract_size`` converts them to base-asset units (1 on Bitget USDT-M perpetuals, whose
amounts are base coin).

Formulas (standard market-microstructure definitions):

* mid = (best bid + best ask) / 2; spread = best ask - best bid (USDT);
  spread_bps = spread / mid x 10,000.
* imbalance = (bid qty - ask qty) / (bid qty + ask qty) at the top of the book, in [-1, 1];
  positive = more resting buy interest.
* depth within x bps: USDT notional sum(price x qty x contract_size) of the bid levels priced
  >= mid x (1 - x/10,000) and of the ask levels priced <= mid x (1 + x/10,000).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

__all__ = ["BookTickerWatcher", "orderbook_features"]


def _levels(book: Mapping[str, Any], side: str) -> list[tuple[float, float]]:
    raw = book.get(side)
    if raw is None:
        raise ValueError(f"order book has no {side!r} list")
    out = []
    for i, level in enumerate(raw):
        try:
            price, qty = float(level[0]), float(level[1])
        except (TypeError, ValueError, IndexError):
            raise ValueError(f"order book {side}[{i}] = {level!r} is not [price, amount]") from None
        if not (math.isfinite(price) and math.isfinite(qty)) or price <= 0 or qty < 0:
            raise ValueError(f"order book {side}[{i}] = {level!r}: price must be > 0 and amount >= 0")
        if qty > 0:
            out.append((price, qty))
    if not out:
        raise ValueError(f"order book has no {side} (empty side)")
    return out


def orderbook_features(book: Mapping[str, Any], bps: Iterable[float] = (5, 10, 25),
                       contract_size: float = 1.0) -> dict[str, float]:
    """Spread, top-of-book imbalance and depth within ``bps`` of the mid (module docstring).

    Args:
        book: ccxt order book; levels need not be sorted (they are sorted here); levels with
            amount 0 are ignored.
        bps: depth bands in basis points (each > 0).
        contract_size: base-asset units per contract (1 for Bitget USDT-M).

    Returns a flat dict: ``timestamp`` (ms, or NaN when the book has none), ``best_bid``,
    ``best_ask``, ``mid``, ``spread`` (USDT), ``spread_bps``, ``bid_qty``, ``ask_qty`` (top
    level, base asset), ``imbalance``, and for each band x ``depth_bid_{x}bps``,
    ``depth_ask_{x}bps`` (USDT notional) and ``depth_imbalance_{x}bps`` ((bid - ask) /
    (bid + ask) of those notionals). Band names use ``{x:g}`` (5 -> ``5bps``, 2.5 -> ``2.5bps``).

    Raises ValueError for a missing or empty side, a malformed level, a crossed book
    (best bid >= best ask), a non-positive band or contract size.
    """
    if not isinstance(book, Mapping):
        raise ValueError(f"order book must be a mapping with 'bids' and 'asks', got {type(book).__name__}")
    bands = [float(x) for x in bps]
    if any(not math.isfinite(x) or x <= 0 for x in bands):
        raise ValueError(f"bps bands must be > 0, got {list(bps)}")
    if not contract_size > 0:
        raise ValueError(f"contract_size must be > 0, got {contract_size}")
    bids = sorted(_levels(book, "bids"), key=lambda lv: -lv[0])
    asks = sorted(_levels(book, "asks"), key=lambda lv: lv[0])
    (bid, bid_qty), (ask, ask_qty) = bids[0], asks[0]
    if bid >= ask:
        raise ValueError(f"order book is crossed: best bid {bid} >= best ask {ask}")
    mid = (bid + ask) / 2.0
    bq, aq = bid_qty * contract_size, ask_qty * contract_size
    ts = book.get("timestamp")
    out: dict[str, float] = {
        "timestamp": float(ts) if ts is not None else math.nan,
        "best_bid": bid, "best_ask": ask, "mid": mid, "spread": ask - bid,
        "spread_bps": (ask - bid) / mid * 1e4,
        "bid_qty": bq, "ask_qty": aq, "imbalance": (bq - aq) / (bq + aq),
    }
    for x in bands:
        lo, hi = mid * (1 - x / 1e4), mid * (1 + x / 1e4)
        db = sum(p * q for p, q in bids if p >= lo) * contract_size
        da = sum(p * q for p, q in asks if p <= hi) * contract_size
        name = f"{x:g}bps"
        out[f"depth_bid_{name}"] = db
        out[f"depth_ask_{name}"] = da
        out[f"depth_imbalance_{name}"] = (db - da) / (db + da) if db + da > 0 else 0.0
    return out


class BookTickerWatcher:
    """Keeps the latest order book, its :func:`orderbook_features` and the ticker of one symbol.

    Used by :class:`perpbot.exchange.feed.CandleFeed`; runs one asyncio task per stream. Each
    stream uses ccxt.pro ``watch_order_book`` / ``watch_ticker`` and falls back to REST
    ``fetch_order_book`` / ``fetch_ticker`` every ``poll_interval`` s after
    ``ws_failures_before_polling`` consecutive websocket failures (retrying the websocket every
    ``ws_retry_interval`` s). After a websocket failure the stale book ccxt keeps for the
    symbol is discarded: ccxt merges a resubscription snapshot of Bitget's incremental
    ``books`` channel into the old levels, which leaves a crossed book.

    Attributes: ``book`` (ccxt order book), ``features`` (dict, see :func:`orderbook_features`),
    ``ticker`` (ccxt ticker), ``updates`` (count per stream).
    """

    def __init__(self, exchange, symbol: str, *, book: bool, ticker: bool, use_websocket: bool, poll_interval: float,
                 reconnect_base: float, reconnect_max: float, ws_failures_before_polling: int,
                 ws_retry_interval: float, book_limit: int | None, bps, contract_size: float, stop, sleep,
                 event) -> None:
        self.ex, self.symbol = exchange, symbol
        self.streams = [s for s, on in (("book", book), ("ticker", ticker)) if on]
        self.use_websocket, self.poll_interval = use_websocket, poll_interval
        self.reconnect_base, self.reconnect_max = reconnect_base, reconnect_max
        self.ws_failures_before_polling, self.ws_retry_interval = ws_failures_before_polling, ws_retry_interval
        self.book_limit, self.bps, self.contract_size = book_limit, bps, contract_size
        self._stop, self._sleep, self._event = stop, sleep, event
        self.book: dict | None = None
        self.features: dict[str, float] = {}
        self.ticker: dict | None = None
        self.updates = {"book": 0, "ticker": 0}

    async def run_stream(self, what: str) -> None:
        import time

        is_book = what == "book"
        watch = getattr(self.ex, "watch_order_book" if is_book else "watch_ticker", None)
        fetch = getattr(self.ex, "fetch_order_book" if is_book else "fetch_ticker")
        has_ws = self.use_websocket and watch is not None and bool(
            self.ex.has.get("watchOrderBook" if is_book else "watchTicker"))
        args = (self.symbol, self.book_limit) if is_book else (self.symbol,)
        failures, backoff, polling_since = 0, self.reconnect_base, 0.0
        while not self._stop.is_set():
            use_ws = has_ws and failures < self.ws_failures_before_polling
            try:
                value = await (watch if use_ws else fetch)(*args)
                if use_ws:
                    failures, backoff = 0, self.reconnect_base
                self._set(what, value)
                if not use_ws:
                    await self._sleep(self.poll_interval)
                    if has_ws and time.monotonic() - polling_since >= self.ws_retry_interval:
                        failures = self.ws_failures_before_polling - 1
            except Exception as exc:
                if use_ws:
                    failures += 1
                    if is_book:
                        getattr(self.ex, "orderbooks", {}).pop(self.symbol, None)
                    if failures >= self.ws_failures_before_polling:
                        polling_since = time.monotonic()
                self._event(f"{what}_failed", error=f"{type(exc).__name__}: {str(exc)[:160]}", retry_in=backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, self.reconnect_max)

    def _set(self, what: str, value) -> None:
        self.updates[what] += 1
        if what == "ticker":
            self.ticker = value
            return
        self.book = value
        try:
            self.features = orderbook_features(value, self.bps, self.contract_size)
        except ValueError as exc:
            self._event("book_unusable", error=str(exc)[:160])
