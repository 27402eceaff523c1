"""The answer of :meth:`perpbot.intel.context.MarketContext.snapshot`: every part of the market
context of one symbol, each with its own status, so a missing source is named and the rest shown.

Parts and their sources: ``funding``, ``open_interest``, ``long_short``, ``liquidations``
(CoinGlass); ``fear_greed`` (alternative.me); ``ticker``, ``venue_funding``,
``venue_open_interest``, ``order_book`` (the venue through ccxt); ``micro`` (1m micro-metrics);
``sentiment`` (news and posts).

States: ``ok``; ``disabled`` (turned off by a setting or not configured); ``keyless`` (needs
an API key); ``timeout`` (no answer within the part's timeout); ``down`` (unreachable or
failing after retries); ``unauthorized``; ``rejected``; ``no_data``; ``cooldown``; ``error``
(anything unexpected; the snapshot never raises).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from perpbot.intel.models import jsonable

__all__ = ["PARTS", "MarketSnapshot", "SourceStatus"]

PARTS = ("funding", "open_interest", "long_short", "liquidations", "fear_greed", "ticker", "venue_funding",
         "venue_open_interest", "order_book", "micro", "sentiment")


@dataclass(frozen=True)
class SourceStatus:
    """How one part of a snapshot went: ``state`` (module docstring), ``detail`` one line for
    people (never a secret), ``source`` the source asked, ``elapsed_ms`` time spent."""

    part: str
    source: str
    state: str
    detail: str = ""
    elapsed_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.state == "ok"


@dataclass
class MarketSnapshot:
    """Market context of one symbol at ``taken_at`` (UTC). ``values`` maps a part name to its
    typed answer (:mod:`perpbot.intel.models`, :class:`~perpbot.intel.micro.MicroSnapshot`,
    :class:`~perpbot.intel.sentiment.service.SentimentReading`); a part that failed is absent
    from ``values`` and its reason is in ``statuses``."""

    symbol: str
    coin: str
    taken_at: datetime
    values: dict[str, Any] = field(default_factory=dict)
    statuses: dict[str, SourceStatus] = field(default_factory=dict)

    def get(self, part: str) -> Any | None:
        """The answer of ``part`` or None when it is missing."""
        return self.values.get(part)

    def __getattr__(self, name: str) -> Any:
        if name in PARTS:
            return self.values.get(name)
        raise AttributeError(name)

    @property
    def missing(self) -> dict[str, SourceStatus]:
        """Parts asked for but not answered (disabled ones excluded), with why."""
        return {p: s for p, s in self.statuses.items() if not s.ok and s.state != "disabled"}

    @property
    def complete(self) -> bool:
        return not self.missing

    def missing_line(self) -> str:
        """One line naming what is missing and why, e.g. ``"funding (keyless), fear_greed
        (timeout)"``; empty when nothing is."""
        return ", ".join(f"{p} ({s.state})" for p, s in self.missing.items())

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form: symbol, coin, taken_at, each answered part's ``to_dict()``, statuses."""
        parts = {p: (v.to_dict() if hasattr(v, "to_dict") else v) for p, v in self.values.items()}
        return jsonable({"symbol": self.symbol, "coin": self.coin, "taken_at": self.taken_at, "parts": parts,
                         "statuses": {p: {"source": s.source, "state": s.state, "detail": s.detail,
                                          "elapsed_ms": round(s.elapsed_ms, 1)} for p, s in self.statuses.items()}})
