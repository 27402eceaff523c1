"""``perpbot collect``: market-context snapshots of a list of symbols into the Parquet store.

Every ``interval`` seconds (a *slot*: the UTC time floored to the interval) the collector takes
one :meth:`~perpbot.intel.context.MarketContext.snapshot` per symbol and appends one row to
``<collect_dir>/<venue>/<COIN>USDT-context.parquet`` (atomic write-then-rename,
:func:`perpbot.data.store.write_parquet_atomic`). Rows are keyed by (symbol, timestamp = slot):
a slot already stored is never asked again nor written twice, so a collector killed at any
point and started again resumes where it stopped (slots while it was down stay absent: these
are real-time observations and are never invented or back-filled).

Columns (:data:`COLUMNS`; NaN when the source was missing, ``missing`` names them):

| column | source | unit |
|---|---|---|
| ``timestamp`` | the slot | UTC, ms |
| ``taken_at`` | when the snapshot was taken (the time the row is known from) | UTC, ms |
| ``funding_pct`` | CoinGlass mean funding rate, USDT-margined venues | percent per interval |
| ``venue_funding`` | the venue's current funding rate | fraction per interval |
| ``oi_usd``, ``oi_change_24h_pct`` | CoinGlass open interest, all venues, and its 24 h change | USD, percent |
| ``venue_oi``, ``venue_oi_value`` | the venue's open interest | base asset, quote currency |
| ``taker_buy_pct`` | CoinGlass taker buy share of volume | percent |
| ``liq_time``, ``liq_long_usd``, ``liq_short_usd`` | CoinGlass liquidations of the last closed bar | UTC ms (bar open), USD |
| ``fear_greed`` | alternative.me index | 0..100 |
| ``sentiment``, ``sentiment_posts`` | news / Reddit score over the window and its post count | [-1, 1], count |
| ``last``, ``bid``, ``ask``, ``spread_bps`` | the venue's order book (top level) and ticker | quote currency, bps |
| ``bid_depth``, ``ask_depth``, ``book_imbalance`` | base quantity over the top ``order_book_depth`` levels; (bid − ask) / (bid + ask) | base asset, fraction |
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from perpbot.data.store import write_parquet_atomic
from perpbot.intel.symbols import coin_of, perp_symbol
from perpbot.logs import get_logger

__all__ = ["COLLECT_PARTS", "COLUMNS", "Collector", "collected_oi_change", "context_file", "read_collected",
           "snapshot_row"]

log = get_logger("perpbot.collect")
COLLECT_PARTS = ("funding", "open_interest", "long_short", "liquidations", "fear_greed", "ticker", "venue_funding",
                 "venue_open_interest", "order_book", "sentiment")
COLUMNS = ("timestamp", "symbol", "taken_at", "funding_pct", "venue_funding", "oi_usd", "oi_change_24h_pct",
           "venue_oi", "venue_oi_value", "taker_buy_pct", "liq_time", "liq_long_usd", "liq_short_usd", "fear_greed",
           "sentiment", "sentiment_posts", "last", "bid", "ask", "spread_bps", "bid_depth", "ask_depth",
           "book_imbalance", "missing")
_INTERVAL_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def context_file(collect_dir: str | Path, venue: str, symbol: str) -> Path:
    """``<collect_dir>/<venue>/<COIN>USDT-context.parquet`` (the store's per-symbol naming)."""
    return Path(collect_dir) / str(venue) / f"{coin_of(symbol)}USDT-context.parquet"


def _num(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


def _ms(t: Any) -> float:
    return math.nan if t is None else float(pd.Timestamp(t).value // 1_000_000)


def snapshot_row(snap: Any, slot_ms: int, taken_ms: int) -> dict[str, Any]:
    """One store row (:data:`COLUMNS`) from a :class:`~perpbot.intel.snapshot.MarketSnapshot`."""
    g = snap.get
    row: dict[str, Any] = {c: math.nan for c in COLUMNS}
    row.update(timestamp=int(slot_ms), symbol=snap.symbol, taken_at=int(taken_ms), missing=snap.missing_line())
    if (fr := g("funding")) is not None:
        row["funding_pct"] = _num(fr.mean_rate_pct)
    if (vf := g("venue_funding")) is not None:
        row["venue_funding"] = _num(vf.funding_rate)
    if (oi := g("open_interest")) is not None:
        row["oi_usd"], row["oi_change_24h_pct"] = _num(oi.oi_usd), _num(oi.change_24h_pct)
    if (voi := g("venue_open_interest")) is not None:
        row["venue_oi"], row["venue_oi_value"] = _num(voi.amount), _num(voi.value)
    if (lsr := g("long_short")) is not None:
        row["taker_buy_pct"] = _num(lsr.buy_ratio_pct)
    if (liq := g("liquidations")) is not None:
        step = int(liq.interval[:-1]) * _INTERVAL_MS[liq.interval[-1]]
        closed = [b for b in liq.bars if _ms(b.time) + step <= taken_ms]
        if closed:
            b = closed[-1]
            row.update(liq_time=_ms(b.time), liq_long_usd=_num(b.long_usd), liq_short_usd=_num(b.short_usd))
    if (fg := g("fear_greed")) is not None:
        row["fear_greed"] = float(fg.value)
    if (se := g("sentiment")) is not None:
        row["sentiment"], row["sentiment_posts"] = _num(se.score), float(se.n_posts)
    if (tk := g("ticker")) is not None:
        row["last"] = _num(tk.last)
    if (ob := g("order_book")) is not None and ob.bids and ob.asks:
        bid_q, ask_q = sum(q for _, q in ob.bids), sum(q for _, q in ob.asks)
        row.update(bid=ob.bids[0][0], ask=ob.asks[0][0], spread_bps=_num(ob.spread_bps), bid_depth=bid_q,
                   ask_depth=ask_q, book_imbalance=(bid_q - ask_q) / (bid_q + ask_q) if bid_q + ask_q > 0 else math.nan)
    return row


def read_collected(path: str | Path) -> pd.DataFrame | None:
    """The rows of a context file (``timestamp`` / ``taken_at`` / ``liq_time`` as UTC datetimes,
    sorted by timestamp), or None when it does not exist."""
    p = Path(path)
    if not p.exists():
        return None
    df = pd.read_parquet(p)
    for col in ("timestamp", "taken_at", "liq_time"):
        df[col] = pd.to_datetime(df[col], unit="ms", utc=True)
    return df.sort_values("timestamp").reset_index(drop=True)


def _append(path: Path, rows: list[dict[str, Any]]) -> int:
    """Merge ``rows`` into ``path`` atomically, keeping stored (symbol, timestamp) rows; returns rows added."""
    new = pd.DataFrame(rows, columns=list(COLUMNS))
    old = pd.read_parquet(path) if path.exists() else None
    if old is not None and len(old):
        seen = set(zip(old["symbol"], old["timestamp"]))
        new = new[[(s, t) not in seen for s, t in zip(new["symbol"], new["timestamp"])]]
        if not len(new):
            return 0
        merged = pd.concat([old, new], ignore_index=True)
    else:
        merged = new
    merged = merged.drop_duplicates(["symbol", "timestamp"], keep="first").sort_values("timestamp", kind="stable")
    write_parquet_atomic(merged.reset_index(drop=True), path)
    return int(len(new))


class Collector:
    """Snapshots of ``symbols`` every ``interval`` seconds into the store (module docstring).

    Args:
        context: a :class:`~perpbot.intel.context.MarketContext` (the caller closes it).
        symbols: symbols in any spelling (``"SOL"``, ``"SOL/USDT:USDT"``).
        collect_dir, venue: the store root and the venue's folder name.
        interval: seconds between slots (>= 1).
        now: wall clock, seconds since the epoch (tests drive a simulated day);
        sleep: ``async sleep(seconds)``.
    """

    def __init__(self, context: Any, symbols: Sequence[str], collect_dir: str | Path, venue: str, interval: float,
                 *, now: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if interval < 1:
            raise ValueError(f"interval must be >= 1 s, got {interval}")
        self.context = context
        self.symbols = [perp_symbol(s) for s in symbols]
        if not self.symbols:
            raise ValueError("no symbols to collect")
        self.collect_dir, self.venue = Path(collect_dir), str(venue)
        self.interval_ms = int(round(interval * 1000))
        self.now, self.sleep = now, sleep
        self._stored: dict[str, set[int]] = {}

    def slot_ms(self) -> int:
        now = int(self.now() * 1000)
        return now - now % self.interval_ms

    def _slots(self, sym: str) -> set[int]:
        if sym not in self._stored:
            path = context_file(self.collect_dir, self.venue, sym)
            ts = pd.read_parquet(path, columns=["timestamp"])["timestamp"] if path.exists() else []
            self._stored[sym] = {int(t) for t in ts}
        return self._stored[sym]

    async def _one(self, sym: str, slot: int) -> int:
        snap = await self.context.snapshot(sym, COLLECT_PARTS)
        row = snapshot_row(snap, slot, int(self.now() * 1000))
        path = context_file(self.collect_dir, self.venue, sym)
        added = await asyncio.to_thread(_append, path, [row])
        self._slots(sym).add(slot)
        if row["missing"]:
            log.info("collect_partial", symbol=sym, missing=row["missing"][:200])
        return added

    async def round(self) -> dict[str, int]:
        """One slot: a snapshot of every symbol not yet stored for it; returns rows added per symbol."""
        slot = self.slot_ms()
        todo = [s for s in self.symbols if slot not in self._slots(s)]
        added = await asyncio.gather(*(self._one(s, slot) for s in todo))
        return {**{s: 0 for s in self.symbols}, **dict(zip(todo, added))}

    async def run(self, rounds: int | None = None) -> int:
        """Collect every slot (``rounds`` slots, or until cancelled); returns rows added."""
        total, done = 0, 0
        while rounds is None or done < rounds:
            total += sum((await self.round()).values())
            done += 1
            if rounds is not None and done >= rounds:
                break
            wait = (self.slot_ms() + self.interval_ms) / 1000.0 - self.now()
            await self.sleep(max(wait, 0.0))
        return total


def collected_oi_change(collect_dir: str | Path, venue: str,
                        hours: float = 24.0) -> Callable[[str, int], Awaitable[float | None]]:
    """``async f(symbol, now_ms)``: percent change of the venue's open interest between the last
    stored observation known at ``now_ms`` and the last one known ``hours`` earlier (None
    without both), for :func:`perpbot.intel.pairs.rank_venue`."""

    async def change(symbol: str, now_ms: int) -> float | None:
        df = read_collected(context_file(collect_dir, venue, symbol))
        if df is None:
            return None
        known = df[df["venue_oi"].notna()]
        t = known["taken_at"].astype("int64").to_numpy() // 1_000_000
        i, j = np.searchsorted(t, now_ms, "right") - 1, np.searchsorted(t, now_ms - hours * 3_600_000, "right") - 1
        if i < 0 or j < 0 or i == j:
            return None
        a, b = known["venue_oi"].iloc[j], known["venue_oi"].iloc[i]
        return float((b / a - 1.0) * 100.0) if a > 0 else None

    return change
