"""Historical market-data download through ccxt into the Parquet store (resumable, paginated).

For one venue / symbol / timeframe it fetches trade, mark and index candles, the
funding-rate history and an open-interest snapshot, and merges them into the store of
:mod:`perpbot.data.store`. A run reads the last stored timestamp of each file and asks the
exchange only for what is missing, so repeating a run appends nothing and an interrupted
run resumes where it stopped (fetched candles are flushed every few pages and when an error
stops the run). Only CLOSED candles are stored: a candle is closed when its close time
(open + timeframe) is at or before the exchange's server time.

Venue specifics, from ccxt 4.5's implementations:

* page size per call from ``exchange.features[...]["fetchOHLCV"]`` (Bitget: 200, the limit of
  its history-candles endpoints, which ccxt uses for anything older than ~30 days; asking
  more would make ccxt shift the window);
* mark / index candles via ``params={"price": "mark" | "index"}``;
* Bitget's funding history is paged newest-first with ``pageNo`` (``since`` is only a
  client-side filter), other venues page forward with ``since``;
* open interest has no history on most venues (Bitget included): each run appends the
  current value, so the file grows as a series of snapshots.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from perpbot.data.store import (
    CANDLE_KINDS,
    KINDS,
    append_rows,
    first_timestamp_ms,
    last_timestamp_ms,
    rows_to_frame,
    store_path,
)
from perpbot.data.validate import timeframe_to_ms, timestamps_to_ms
from perpbot.exchange.clients import VENUES
from perpbot.exchange.download_request import (
    DownloadError, _one_line, check_request, make_sync_exchange, parse_time, resolve_market,
)

__all__ = ["DownloadError", "DownloadResult", "KindResult", "check_request", "download", "make_sync_exchange",
           "parse_time", "resolve_market"]

#: Progress callback: (kind, done, total or None). Candles count candles, funding pages.
Progress = Callable[[str, int, "int | None"], None]

DEFAULT_DAYS = 30
_DAY_MS = 86_400_000
#: Venues whose funding history is paged newest-first by page number (param name).
_FUNDING_PAGE_PARAM = {k: v.CAPABILITIES.funding_page_param for k, v in VENUES.items()
                       if v.CAPABILITIES.funding_page_param}


@dataclass
class KindResult:
    """Outcome of one kind: file, rows added, rows and span now stored (ms UTC), notes."""

    kind: str
    path: Path | None
    added: int = 0
    rows: int = 0
    first_ms: int | None = None
    last_ms: int | None = None
    note: str = ""


@dataclass
class DownloadResult:
    """Outcome of :func:`download`: one :class:`KindResult` per requested kind."""

    exchange: str
    symbol: str
    symbol_id: str
    timeframe: str
    kinds: dict[str, KindResult] = field(default_factory=dict)


class _Downloader:
    def __init__(self, ex, market: dict, timeframe: str, data_dir: Path, progress: Progress | None,
                 retries: int, retry_delay: float, flush_pages: int) -> None:
        self.ex, self.market, self.tf = ex, market, timeframe
        self.tf_ms = timeframe_to_ms(timeframe)
        self.data_dir = Path(data_dir)
        self.progress = progress or (lambda kind, done, total: None)
        self.retries, self.retry_delay, self.flush_pages = retries, retry_delay, max(1, flush_pages)
        self.symbol = market["symbol"]

    # ---- exchange calls ---------------------------------------------------------------------
    def call(self, fn: Callable, *args, **kwargs):
        """Call ccxt, retrying network errors (timeouts, 5xx, 429) with exponential backoff."""
        import ccxt

        for attempt in range(self.retries + 1):
            try:
                return fn(*args, **kwargs)
            except ccxt.NetworkError:
                if attempt >= self.retries:
                    raise
                time.sleep(self.retry_delay * 2 ** attempt)
        raise AssertionError("unreachable")

    def server_time(self) -> int:
        if self.ex.has.get("fetchTime"):
            return int(self.call(self.ex.fetch_time))
        return int(self.ex.milliseconds())

    def page_limit(self, kind: str) -> int:
        sub = "linear" if self.market.get("linear") else "inverse"
        mtype = self.market.get("type") or "swap"
        try:  # ccxt features: spot -> fetchOHLCV; swap -> linear / inverse -> fetchOHLCV
            node = self.ex.features[mtype]
            feat = (node if mtype == "spot" else node[sub])["fetchOHLCV"]
        except (KeyError, TypeError):
            feat = {}
        return int((feat or {}).get(kind) or (feat or {}).get("limit") or 200)

    def path(self, kind: str) -> Path:
        return store_path(self.data_dir, self.ex.id, self.market["id"], self.tf, kind)

    # ---- candles ----------------------------------------------------------------------------
    def candles(self, kind: str, since: int | None, until: int | None, now: int) -> KindResult:
        path = self.path(kind)
        res = KindResult(kind, path)
        cap = ("fetchOHLCV", "fetchMarkOHLCV", "fetchIndexOHLCV")[CANDLE_KINDS.index(kind)]
        if not self.ex.has.get(cap):
            res.note = f"{self.ex.id} does not offer {kind} candles; skipped"
            return self._finish(res)
        tf = self.tf_ms
        end = (now // tf) * tf  # exclusive: candles that closed at or before the server time
        if until is not None:
            end = min(end, -(-until // tf) * tf)
        start = -(-since // tf) * tf if since is not None else None
        first, last = first_timestamp_ms(path), last_timestamp_ms(path)
        ranges: list[tuple[int, int]] = []
        if last is None:
            ranges.append((start if start is not None else end - DEFAULT_DAYS * _DAY_MS, end))
        else:
            if start is not None and start < first:
                ranges.append((start, first))
            ranges.append((last + tf, end))  # resume after the stored end (never leave a hole)
        ranges = [(a, b) for a, b in ranges if a < b]
        total = sum((b - a) // tf for a, b in ranges)
        done = 0
        self.progress(kind, 0, total)
        params = {} if kind == "candles" else {"price": kind}
        limit = self.page_limit(kind)
        for a, b in ranges:
            buffer: list[list] = []
            pages = 0
            cursor = a
            try:
                while cursor < b:
                    n = int(min(limit, (b - cursor) // tf))
                    rows = self.call(self.ex.fetch_ohlcv, self.symbol, self.tf, cursor, n, dict(params))
                    rows = sorted((r for r in rows or [] if cursor <= int(r[0]) < b and int(r[0]) % tf == 0),
                                  key=lambda r: int(r[0]))
                    if not rows:  # a hole in the venue's data (or before listing): skip this window
                        cursor += n * tf
                        done += n
                    else:
                        buffer.extend(rows)
                        new_cursor = int(rows[-1][0]) + tf
                        done += (new_cursor - cursor) // tf
                        cursor = new_cursor
                    pages += 1
                    self.progress(kind, min(done, total), total)
                    if pages % self.flush_pages == 0 and buffer:
                        res.added += append_rows(path, rows_to_frame(buffer, kind), kind, self.tf)
                        buffer = []
            finally:  # keep what was fetched, so the next run resumes after it
                if buffer:
                    res.added += append_rows(path, rows_to_frame(buffer, kind), kind, self.tf)
        return self._finish(res)

    # ---- funding ----------------------------------------------------------------------------
    def funding(self, since: int | None, until: int | None, now: int) -> KindResult:
        kind = "funding"
        path = self.path(kind)
        res = KindResult(kind, path)
        if not self.ex.has.get("fetchFundingRateHistory"):
            res.note = f"{self.ex.id} does not offer funding-rate history; skipped"
            return self._finish(res)
        first, last = first_timestamp_ms(path), last_timestamp_ms(path)
        if last is None:
            lower = since if since is not None else now - DEFAULT_DAYS * _DAY_MS
        elif since is not None and since < first:
            lower = since
        else:
            lower = last + 1
        upper = min(now + 1, until) if until is not None else now + 1
        if lower >= upper:
            return self._finish(res)
        page_param = _FUNDING_PAGE_PARAM.get(self.ex.id)
        rows = self._funding_paged(page_param, lower) if page_param else self._funding_forward(lower, upper)
        keep = {}
        for r in rows:
            ts, rate = r.get("timestamp"), r.get("fundingRate")
            if ts is not None and rate is not None and lower <= int(ts) < upper:
                keep[int(round(int(ts) / 1000.0)) * 1000] = float(rate)
        res.added = append_rows(path, rows_to_frame(sorted(keep.items()), kind), kind)
        return self._finish(res)

    def _funding_paged(self, param: str, lower: int, page_size: int = 100, max_pages: int = 10_000) -> list[dict]:
        out: list[dict] = []
        for page in range(1, max_pages + 1):
            batch = self.call(self.ex.fetch_funding_rate_history, self.symbol, None, page_size, {param: page})
            self.progress("funding", page, None)
            if not batch:
                break
            out.extend(batch)
            if min(int(r["timestamp"]) for r in batch) < lower or len(batch) < page_size:
                break
        return out

    def _funding_forward(self, lower: int, upper: int) -> list[dict]:
        out: list[dict] = []
        cursor, page = lower, 0
        while cursor < upper:
            batch = [r for r in self.call(self.ex.fetch_funding_rate_history, self.symbol, cursor, None) or []
                     if r.get("timestamp") is not None and int(r["timestamp"]) >= cursor]
            page += 1
            self.progress("funding", page, None)
            if not batch:
                break
            out.extend(batch)
            cursor = max(int(r["timestamp"]) for r in batch) + 1
        return out

    # ---- open interest ------------------------------------------------------------------------
    def open_interest(self, now: int) -> KindResult:
        kind = "open-interest"
        path = self.path(kind)
        res = KindResult(kind, path)
        if not self.ex.has.get("fetchOpenInterest"):
            res.note = f"{self.ex.id} does not offer open interest; skipped"
            return self._finish(res)
        oi = self.call(self.ex.fetch_open_interest, self.symbol)
        ts = int(oi.get("timestamp") or now)
        amount, value = oi.get("openInterestAmount"), oi.get("openInterestValue")
        if amount is None and value is None:
            res.note = "the exchange returned no open-interest value"
            return self._finish(res)
        last = last_timestamp_ms(path)
        if last is None or ts > last:
            res.added = append_rows(path, rows_to_frame([(ts, amount, value)], kind), kind)
        self.progress(kind, 1, 1)
        return self._finish(res)

    def _finish(self, res: KindResult) -> KindResult:
        if res.path is not None and res.path.exists():
            ts = pd.read_parquet(res.path, columns=["timestamp"])["timestamp"]
            res.rows = len(ts)
            if len(ts):
                ms = timestamps_to_ms(ts, str(res.path))
                res.first_ms, res.last_ms = int(ms.min()), int(ms.max())
                if res.kind in CANDLE_KINDS and len(ms) > 1:
                    gaps = int((np.diff(np.sort(ms)) != self.tf_ms).sum())
                    if gaps:
                        res.note = (res.note + "; " if res.note else "") + \
                            f"{gaps} gap(s) in the venue's data (load with allow_gaps=True)"
        return res


def download(ex, symbol: str, timeframe: str, data_dir: str | Path, kinds: Iterable[str] = KINDS,
             since: int | str | None = None, until: int | str | None = None, progress: Progress | None = None,
             retries: int = 3, retry_delay: float = 1.0, flush_pages: int = 20) -> DownloadResult:
    """Download ``kinds`` of ``symbol`` / ``timeframe`` from the ccxt client ``ex`` into the store.

    Args:
        ex: a synchronous ccxt exchange (see :func:`make_sync_exchange`), rate-limited.
        symbol: ccxt unified symbol, e.g. ``"SOL/USDT:USDT"``.
        timeframe: candle timeframe (``"5m"``), one of :data:`~perpbot.data.TIMEFRAMES`
            that the venue offers.
        data_dir: root of the store; files go to ``<data_dir>/<exchange id>/``.
        kinds: subset of :data:`~perpbot.data.store.KINDS`.
        since: first candle open / funding time wanted (ms UTC or ISO date, inclusive).
            With a stored file the download always resumes after its last row (no hole is
            left); a ``since`` before the stored start also fills the missing start. A new
            file starts at ``since``, default 30 days before the server time.
        until: upper bound, exclusive (ms UTC or ISO date); default the server time. Candles
            are stored only once closed.
        progress: ``progress(kind, done, total)``; ``total`` is None when unknown.
        retries, retry_delay: network errors (timeouts, 5xx, 429) are retried ``retries``
            times, waiting ``retry_delay * 2**attempt`` seconds.
        flush_pages: candle pages fetched between atomic writes of the store file.

    Returns a :class:`DownloadResult`. Raises DownloadError (one line) for an unknown kind, a
    symbol or timeframe the venue does not offer, ``since >= until``, and any exchange or
    network error that outlasts the retries (candles fetched before it are kept).
    """
    import ccxt

    kinds, since_ms, until_ms = check_request(kinds, since, until)
    market = resolve_market(ex, symbol, timeframe)
    d = _Downloader(ex, market, timeframe, Path(data_dir), progress, retries, retry_delay, flush_pages)
    result = DownloadResult(ex.id, market["symbol"], market["id"], timeframe)
    try:
        now = d.server_time()
        for kind in KINDS:
            if kind not in kinds:
                continue
            if kind in CANDLE_KINDS:
                result.kinds[kind] = d.candles(kind, since_ms, until_ms, now)
            elif kind == "funding":
                result.kinds[kind] = d.funding(since_ms, until_ms, now)
            else:
                result.kinds[kind] = d.open_interest(now)
    except ccxt.NetworkError as exc:
        raise DownloadError(f"{ex.id}: network error (after {retries} retries): {_one_line(exc)}; "
                            f"rerun to resume") from None
    except ccxt.BaseError as exc:
        raise DownloadError(f"{ex.id}: exchange error: {_one_line(exc)}") from None
    return result
