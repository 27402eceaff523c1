"""The signal desk: fresh analysis of any USDT-M perpetual of the signal venue, for the signal bot.

:class:`SignalDesk` answers three questions about a symbol, each as a :class:`SignalReport`:

- ``"signal"``: closed candles of 5m / 15m / 1h / 4h (:mod:`perpbot.intel.analysis`: rows,
  bias, short signal), the whole market snapshot (:class:`~perpbot.intel.context.MarketContext`),
  the sentiment score and the market explanation (:mod:`perpbot.intel.explain`), and the
  model's call when an injected ``model_call`` has a model for the symbol;
- ``"timeframes"``: the four timeframe rows only;
- ``"scalp"``: 5m and 15m rows, funding, open interest, long/short, ticker and the 1m
  micro-metrics (ATR(1m), volume profile) → :func:`~perpbot.intel.analysis.scalp_view`.

Candles come from the venue through :meth:`perpbot.intel.venue.VenueClient.ohlcv`; the candle
still forming (open + timeframe > now) is dropped, and an answer is cached until the next
candle closes. A symbol is accepted when the venue lists its USDT-margined linear perpetual
(``"SOL"`` -> ``"SOL/USDT:USDT"``); the market list is read once and again after
``markets_ttl`` seconds. Nothing raises for a failing source: every missing piece is a
:class:`~perpbot.intel.snapshot.SourceStatus` in the report (:meth:`SignalReport.missing`).

Per-symbol cooldown: a report of the same kind and symbol younger than ``cooldown`` seconds
is reused (:meth:`SignalDesk.report` says how old it is) — upstream sources are not asked again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from perpbot.intel.analysis import (
    TIMEFRAMES, Bias, ScalpView, TradeSignal, bias_of, indicator_row, scalp_view, short_signal,
)
from perpbot.intel.context import MarketContext
from perpbot.intel.explain import Reason, Sentiment, explain, sentiment_score
from perpbot.intel.snapshot import MarketSnapshot, SourceStatus
from perpbot.intel.source import SourceError
from perpbot.intel.symbols import coin_of, perp_symbol
from perpbot.logs import get_logger

__all__ = ["KINDS", "SignalDesk", "SignalReport", "UnknownSymbol"]

log = get_logger("perpbot.intel")
KINDS = ("signal", "timeframes", "scalp")
_TF_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000, "4h": 14_400_000}
_SIGNAL_PARTS = ("funding", "open_interest", "long_short", "liquidations", "fear_greed", "ticker", "venue_funding",
                 "venue_open_interest", "micro", "sentiment")
_SCALP_PARTS = ("funding", "open_interest", "long_short", "ticker", "venue_funding", "venue_open_interest", "micro")
ModelCall = Callable[[str], Awaitable["dict | None"]]


class UnknownSymbol(ValueError):
    """The venue does not list a USDT-margined linear perpetual of the symbol's coin."""

    def __init__(self, symbol: str, venue: str) -> None:
        super().__init__(f"{symbol} is not a USDT-M perpetual on {venue}")
        self.symbol, self.venue = symbol, venue


@dataclass
class SignalReport:
    """One analysis of ``symbol`` (ccxt unified) on ``venue`` at ``taken_at`` (UTC).

    ``rows``: :func:`~perpbot.intel.analysis.indicator_row` per timeframe asked (None: missing);
    ``statuses``: why each missing piece is missing (timeframes as ``"5m"``..., snapshot parts,
    ``"model"``); the rest are the analysis results (None when their inputs are missing).
    """

    kind: str
    symbol: str
    coin: str
    venue: str
    taken_at: datetime
    rows: dict[str, dict | None] = field(default_factory=dict)
    snapshot: MarketSnapshot | None = None
    bias: Bias | None = None
    signal: TradeSignal | None = None
    sentiment: Sentiment | None = None
    reasons: list[Reason] = field(default_factory=list)
    scalp: ScalpView | None = None
    model: dict | None = None
    statuses: dict[str, SourceStatus] = field(default_factory=dict)

    @property
    def missing(self) -> dict[str, SourceStatus]:
        """Every piece asked for and not answered (disabled sources excluded), with why."""
        out = {k: s for k, s in self.statuses.items() if not s.ok and s.state != "disabled"}
        if self.snapshot is not None:
            out.update(self.snapshot.missing)
        return out

    def missing_line(self) -> str:
        """One line naming what is missing and why, e.g. ``"4h (down), funding (keyless)"``."""
        return ", ".join(f"{p} ({s.state})" for p, s in self.missing.items())


def _now_ms() -> int:
    return int(time.time() * 1000)


class SignalDesk:
    """Fresh analyses for the signal bot (module docstring).

    Args:
        context: the market-context clients; ``context.venue`` (a
            :class:`~perpbot.intel.venue.VenueClient` of the signal venue) gives candles and
            the market list (None: candles are reported ``disabled``).
        candles: closed candles asked per timeframe (>= 60).
        stop_atr, tp_atr: /signal stop-loss / take-profit in ATR(14, 1h) multiples.
        scalp_stop_atr, scalp_tp_atr: /scalp levels in ATR(1m) multiples.
        scalp_profile: use the volume profile (POC) in the intraday bias.
        explain_profile: use POC / ATR(1m) in the explanation (the micro part is asked for).
        cooldown: seconds a report of one kind and symbol is reused.
        model_call: ``async f(symbol) -> dict | None``, the model's call (None: no model).
        markets_ttl: seconds the venue's market list is kept.
        now_ms, clock: wall clock (ms UTC) for closed candles; monotonic seconds for the cooldown.
    """

    def __init__(self, context: MarketContext, *, candles: int = 200, stop_atr: float = 1.5, tp_atr: float = 3.0,
                 scalp_stop_atr: float = 1.5, scalp_tp_atr: float = 3.0, scalp_profile: bool = True,
                 explain_profile: bool = True, cooldown: float = 30.0, model_call: ModelCall | None = None,
                 markets_ttl: float = 3600.0, now_ms: Callable[[], int] = _now_ms,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.context = context
        self.n_candles = int(candles)
        self.stop_atr, self.tp_atr = float(stop_atr), float(tp_atr)
        self.scalp_stop_atr, self.scalp_tp_atr = float(scalp_stop_atr), float(scalp_tp_atr)
        self.scalp_profile, self.explain_profile = bool(scalp_profile), bool(explain_profile)
        self.cooldown = float(cooldown)
        self.model_call = model_call
        self.markets_ttl = float(markets_ttl)
        self.now_ms, self.clock = now_ms, clock
        self._markets: dict[str, Any] | None = None
        self._markets_at = -1e18
        self._reports: dict[tuple[str, str], tuple[float, SignalReport]] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    @classmethod
    def from_settings(cls, settings: Any, context: MarketContext, model_call: ModelCall | None = None,
                      **kw: Any) -> "SignalDesk":
        s = settings
        opts = dict(candles=s.signal_candles, stop_atr=s.stop_loss_atr, tp_atr=s.take_profit_atr,
                    scalp_stop_atr=s.signal_scalp_stop_atr, scalp_tp_atr=s.signal_scalp_take_profit_atr,
                    scalp_profile=s.signal_scalp_volume_profile, explain_profile=s.signal_explain_volume_profile,
                    cooldown=s.signal_cooldown, model_call=model_call) | kw
        return cls(context, **opts)

    @property
    def venue_name(self) -> str:
        v = self.context.venue
        return v.id if v is not None else "venue"

    # ------------------------------------------------------------------------ symbols --
    async def resolve(self, symbol: str) -> str:
        """The venue's unified symbol of ``symbol``'s USDT-M perpetual (``"sol"`` -> ``"SOL/USDT:USDT"``).

        Raises:
            ValueError: unreadable symbol. UnknownSymbol: the venue lists no such perpetual
            (when the market list cannot be read, the perpetual's usual name is assumed and the
            venue's own answers say what is missing).
        """
        unified = perp_symbol(symbol)
        markets = await self._market_list()
        if markets is None:
            return unified
        m = markets.get(unified)
        if m is None or not m.get("swap") or not m.get("linear") or m.get("settle") != "USDT" \
                or m.get("active") is False:
            raise UnknownSymbol(coin_of(symbol), self.venue_name)
        return unified

    async def _market_list(self) -> dict[str, Any] | None:
        venue = self.context.venue
        if venue is None:
            return None
        if self._markets is not None and self.clock() - self._markets_at < self.markets_ttl:
            return self._markets
        try:
            markets = await asyncio.wait_for(venue.exchange.load_markets(reload=self._markets is not None),
                                             self.context.timeout)
        except Exception as exc:  # a venue that is down still lets the other sources answer
            log.warning("signal_markets_unavailable", venue=self.venue_name, error=f"{type(exc).__name__}"[:80])
            return self._markets
        self._markets, self._markets_at = dict(markets), self.clock()
        return self._markets

    # ------------------------------------------------------------------------ candles --
    async def _rows(self, symbol: str, tf: str) -> tuple[dict | None, SourceStatus]:
        venue = self.context.venue
        source = venue.source.name if venue is not None else "venue"
        if venue is None:
            return None, SourceStatus(tf, source, "disabled", "no venue configured")
        step = _TF_MS[tf]
        t0 = time.perf_counter()

        def until_next_close(rows: list) -> float:
            return max(0.0, ((rows[-1][0] + step) - self.now_ms()) / 1000.0) if rows else 0.0

        def status(state: str, detail: str = "") -> SourceStatus:
            return SourceStatus(tf, source, state, detail, (time.perf_counter() - t0) * 1000)

        try:
            raw = await asyncio.wait_for(venue.ohlcv(symbol, tf, self.n_candles + 1, ttl=until_next_close),
                                         self.context.timeout)
        except asyncio.TimeoutError:
            return None, status("timeout", f"no {tf} candles within {self.context.timeout:g} s")
        except SourceError as exc:
            return None, status(exc.state, exc.detail)
        except Exception as exc:  # noqa: BLE001 - never raise out of an analysis
            return None, status("error", f"{type(exc).__name__}: {exc}"[:200])
        now = self.now_ms()
        closed = [r for r in raw if r[0] + step <= now][-self.n_candles:]
        frame = pd.DataFrame(closed, columns=["timestamp", "open", "high", "low", "close", "volume"])
        frame["timestamp"] = pd.to_datetime(frame["timestamp"].astype("int64"), unit="ms", utc=True)
        row = indicator_row(frame)
        if row is None:
            return None, status("no_data", f"{len(closed)} closed {tf} candles, 60 needed")
        return row, status("ok")

    async def _model(self, symbol: str) -> tuple[dict | None, SourceStatus | None]:
        if self.model_call is None:
            return None, None
        try:
            return await self.model_call(symbol), None
        except Exception as exc:  # noqa: BLE001 - the rest of the answer stands without the model
            log.warning("signal_model_failed", symbol=symbol, error=f"{type(exc).__name__}: {exc}"[:200])
            return None, SourceStatus("model", "model", "error", f"{exc}"[:200])

    # ----------------------------------------------------------------------- analyses --
    async def analyse(self, kind: str, symbol: str) -> SignalReport:
        """A fresh :class:`SignalReport` of ``kind`` (:data:`KINDS`) for an already resolved symbol."""
        if kind not in KINDS:
            raise ValueError(f"unknown analysis {kind!r}; one of {', '.join(KINDS)}")
        tfs = ("5m", "15m") if kind == "scalp" else TIMEFRAMES
        parts: tuple[str, ...] = ()
        if kind == "signal":
            parts = _SIGNAL_PARTS if self.explain_profile else tuple(p for p in _SIGNAL_PARTS if p != "micro")
        elif kind == "scalp":
            parts = _SCALP_PARTS
        jobs: list[Awaitable[Any]] = [self._rows(symbol, tf) for tf in tfs]
        jobs.append(self.context.snapshot(symbol, parts) if parts else _none())
        jobs.append(self._model(symbol) if kind == "signal" else _pair())
        *tf_results, snap, (model, model_status) = await asyncio.gather(*jobs)
        report = SignalReport(kind=kind, symbol=symbol, coin=coin_of(symbol), venue=self.venue_name,
                              taken_at=datetime.now(UTC), snapshot=snap, model=model)
        for tf, (row, st) in zip(tfs, tf_results):
            report.rows[tf] = row
            report.statuses[tf] = st
        if model_status is not None:
            report.statuses["model"] = model_status
        if kind in ("signal", "timeframes"):
            report.bias = bias_of(report.rows)
        if kind == "signal":
            report.signal = short_signal(report.rows, report.bias, self.stop_atr, self.tp_atr)
            report.sentiment = sentiment_score(snap)
            report.reasons = explain(snap, report.bias, report.rows, use_profile=self.explain_profile)
        if kind == "scalp":
            micro, ticker = snap.get("micro"), snap.get("ticker")
            price = ticker.last if ticker is not None and ticker.last else (micro.last_close if micro else None)
            poc = micro.profile.poc if self.scalp_profile and micro is not None and micro.profile else None
            report.scalp = scalp_view(report.rows, price, micro.atr if micro else None, poc, self.scalp_stop_atr,
                                      self.scalp_tp_atr)
        return report

    async def report(self, kind: str, symbol: str) -> tuple[SignalReport, float]:
        """(report, age in seconds): a fresh analysis, or the one made less than ``cooldown``
        seconds ago for the same kind and symbol (age > 0). ``symbol`` is resolved first
        (raises UnknownSymbol / ValueError, see :meth:`resolve`)."""
        unified = await self.resolve(symbol)
        key = (kind, unified)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:   # two chats asking at once share one analysis
            held = self._reports.get(key)
            if held is not None and self.clock() - held[0] < self.cooldown:
                return held[1], self.clock() - held[0]
            rep = await self.analyse(kind, unified)
            self._reports[key] = (self.clock(), rep)
            log.info("signal_report", kind=kind, symbol=unified, missing=rep.missing_line()[:200])
            return rep, 0.0

    def cooldown_left(self, kind: str, symbol: str) -> float:
        """Seconds until a fresh analysis of ``kind`` / ``symbol`` (unified) is made again."""
        held = self._reports.get((kind, symbol))
        return 0.0 if held is None else max(0.0, self.cooldown - (self.clock() - held[0]))


async def _none() -> None:
    return None


async def _pair() -> tuple[None, None]:
    return None, None
