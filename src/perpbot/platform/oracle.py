"""Oracle guard: before an entry, the venue's price is compared with independent sources.

Sources (each through a ccxt client, injected so tests use local servers): the venue's own
ticker gives the price to trade at (``last``) and two independent references, its ``indexPrice``
(an average of spot venues) and ``markPrice``; every other configured venue's ticker gives its
``last``. The guard takes the **median** of the fresh independent sources and computes each
price's deviation from it in basis points, ``|p / median - 1| x 10,000``.

Verdict ``veto`` (with one reason per finding) when:

* ``stale``: a source answered with a price older than ``max_age_s`` seconds (its ticker's
  ``timestamp`` against ``clock()``; a ticker without a timestamp counts as stale);
* ``deviation``: the venue's price, or any fresh independent source, lies more than
  ``max_deviation_bps`` from the median — the guard trades only while the sources agree;
* ``quorum``: fewer than ``min_sources`` fresh independent sources answered (errors and
  timeouts do not count).

Otherwise ``pass``. Every verdict of :meth:`OracleGuard.check` with ``record=True`` is written
to ``platform_oracle_checks`` (sources, deviations, reasons). Prices are floats here: they are
measurements compared in basis points, never money moved.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from perpbot.platform.models import OracleCheck
from perpbot.platform.wallet import write_session


@dataclass
class SourceQuote:
    """One source's answer: price (USDT), its age (s), deviation from the median (bps), whether it
    counted (fresh), and the error (one line) when it did not answer."""

    name: str
    price: float | None = None
    timestamp_ms: int | None = None
    age_s: float | None = None
    deviation_bps: float | None = None
    fresh: bool = False
    error: str | None = None


@dataclass
class OracleVerdict:
    """A guard decision: ``verdict`` pass | veto, with ``reasons`` (empty on pass)."""

    symbol: str
    venue: str
    venue_price: float | None
    median: float | None
    max_deviation_bps: float | None
    verdict: str
    reasons: list[str]
    sources: list[SourceQuote]
    time: datetime
    check_id: int | None = None
    limits: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["time"] = self.time.isoformat()
        return d


def _finite(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if v > 0 and v == v and v != float("inf") else None


class OracleGuard:
    """Cross-check of a venue's price (see the module doc).

    Args:
        venue: (name, ccxt client) of the venue orders go to.
        others: {name: ccxt client} of the other venues (at least two recommended).
        max_deviation_bps: N, largest deviation from the median allowed (basis points).
        max_age_s: M, oldest price allowed (seconds).
        min_sources: K, fresh independent sources needed (venue index + mark + other venues).
        clock: ``() -> now`` in UTC milliseconds (default: the wall clock; a replaying
            simulator passes its own clock).
        engine: platform database to record verdicts in (None: not recorded).
        symbols: {venue name: symbol} where a venue names the market differently (default: the
            checked ccxt unified symbol everywhere).
        timeout_s: seconds to wait for all sources.

    Raises:
        ValueError: non-positive limits.
    """

    def __init__(self, venue: tuple[str, Any], others: Mapping[str, Any], *, max_deviation_bps: float = 50.0,
                 max_age_s: float = 30.0, min_sources: int = 3, clock: Callable[[], float] | None = None,
                 engine: sa.Engine | None = None, symbols: Mapping[str, Mapping[str, str]] | None = None,
                 timeout_s: float = 10.0) -> None:
        if max_deviation_bps <= 0 or max_age_s <= 0 or min_sources < 1:
            raise ValueError("oracle limits must be positive (deviation bps, max age s, min sources >= 1)")
        self.venue_name, self.venue = venue
        self.others = dict(others)
        self.max_deviation_bps, self.max_age_s, self.min_sources = float(max_deviation_bps), float(max_age_s), int(min_sources)
        self.clock = clock or (lambda: time.time() * 1000.0)
        self.engine = engine
        self.symbols = {k: dict(v) for k, v in (symbols or {}).items()}
        self.timeout_s = timeout_s
        self._locks = {name: threading.Lock() for name in (self.venue_name, *self.others)}
        self._pool = ThreadPoolExecutor(max_workers=max(2, len(self.others) + 1), thread_name_prefix="oracle")

    def _symbol(self, name: str, symbol: str) -> str:
        return self.symbols.get(symbol, {}).get(name, symbol)

    def _ticker(self, name: str, client: Any, symbol: str) -> dict:
        with self._locks[name]:
            return client.fetch_ticker(self._symbol(name, symbol))

    def _quote(self, name: str, price: Any, ts: Any, now_ms: float) -> SourceQuote:
        p = _finite(price)
        if p is None:
            return SourceQuote(name, error="no price in the answer")
        t = int(ts) if isinstance(ts, (int, float)) and ts == ts else None
        age = None if t is None else max(0.0, (now_ms - t) / 1000.0)
        return SourceQuote(name, price=p, timestamp_ms=t, age_s=age, fresh=age is not None and age <= self.max_age_s)

    def _fetch_all(self, symbol: str) -> tuple[SourceQuote, list[SourceQuote]]:
        jobs = {name: self._pool.submit(self._ticker, name, client, symbol)
                for name, client in ((self.venue_name, self.venue), *self.others.items())}
        now = self.clock()
        answers: dict[str, Any] = {}
        for name, fut in jobs.items():
            try:
                answers[name] = fut.result(timeout=self.timeout_s)
            except Exception as exc:  # one failing source is a finding, not a crash
                answers[name] = exc
        vt = answers[self.venue_name]
        if isinstance(vt, Exception):
            err = f"{type(vt).__name__}: {str(vt)[:160]}"
            venue_q = SourceQuote(self.venue_name, error=err)
            refs = [SourceQuote(f"{self.venue_name}:index", error=err), SourceQuote(f"{self.venue_name}:mark", error=err)]
        else:
            venue_q = self._quote(self.venue_name, vt.get("last"), vt.get("timestamp"), now)
            refs = [self._quote(f"{self.venue_name}:{k}", vt.get(f"{k}Price"), vt.get("timestamp"), now)
                    for k in ("index", "mark")]
        for name in self.others:
            t = answers[name]
            refs.append(SourceQuote(name, error=f"{type(t).__name__}: {str(t)[:160]}") if isinstance(t, Exception)
                        else self._quote(name, t.get("last"), t.get("timestamp"), now))
        return venue_q, refs

    def check(self, symbol: str, *, user_id: int | None = None, record: bool = True) -> OracleVerdict:
        """Fetch every source, decide, and (``record``) write the verdict. Never raises for a failing source."""
        venue_q, refs = self._fetch_all(symbol)
        reasons: list[str] = []
        for q in (venue_q, *refs):
            if q.price is not None and not q.fresh:
                age = "no timestamp" if q.age_s is None else f"{q.age_s:.0f} s old"
                reasons.append(f"stale: {q.name} price is {age} (max {self.max_age_s:g} s)")
        fresh = [q for q in refs if q.fresh]
        median = statistics.median(q.price for q in fresh) if fresh else None
        worst = None
        if median is not None:
            for q in (venue_q, *refs):
                if q.price is not None:
                    q.deviation_bps = round(abs(q.price / median - 1.0) * 10_000, 4)
            for q in (venue_q, *fresh):
                if q.deviation_bps is not None and (q is venue_q or q.fresh):
                    worst = q.deviation_bps if worst is None else max(worst, q.deviation_bps)
                    if q.deviation_bps > self.max_deviation_bps:
                        reasons.append(f"deviation: {q.name} {q.price:g} is {q.deviation_bps:.1f} bps from the "
                                       f"median {median:g} (max {self.max_deviation_bps:g} bps)")
        if venue_q.price is None:
            reasons.append(f"venue: {self.venue_name} gave no price ({venue_q.error})")
        if len(fresh) < self.min_sources:
            reasons.append(f"quorum: {len(fresh)} fresh independent sources answered, {self.min_sources} needed")
        verdict = OracleVerdict(symbol=symbol, venue=self.venue_name, venue_price=venue_q.price, median=median,
                                max_deviation_bps=worst, verdict="veto" if reasons else "pass", reasons=reasons,
                                sources=[venue_q, *refs], time=datetime.now(timezone.utc),
                                limits={"max_deviation_bps": self.max_deviation_bps, "max_age_s": self.max_age_s,
                                        "min_sources": self.min_sources})
        if record and self.engine is not None:
            verdict.check_id = self.record(verdict, user_id)
        return verdict

    def record(self, v: OracleVerdict, user_id: int | None = None) -> int:
        """Write ``v`` to ``platform_oracle_checks``; return the row id."""
        with write_session(self.engine) as s:
            row = OracleCheck(time=v.time, user_id=user_id, symbol=v.symbol, venue=v.venue, venue_price=v.venue_price,
                              median=v.median, max_deviation_bps=v.max_deviation_bps, verdict=v.verdict,
                              reasons=list(v.reasons), sources=[asdict(q) for q in v.sources])
            s.add(row)
            s.flush()
            return row.id

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
