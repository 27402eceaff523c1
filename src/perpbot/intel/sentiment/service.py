"""Sentiment of a symbol from news and social posts: sources → de-duplicated store → scorer →
per-symbol score (as of now, or per hour).

:meth:`SentimentService.refresh` asks every source at once (each bounded by ``timeout``;
a failing source is reported in :attr:`SentimentService.statuses` and the others still count),
keeps new stories once (:class:`~perpbot.intel.sentiment.posts.PostStore`), scores the unscored
ones in one batch with the plugged-in scorer, and forgets posts older than
``retention_hours``. :meth:`reading` gives the score as of a time over ``window_hours``;
:meth:`hourly` the hourly series for the collector (rules in
:mod:`perpbot.intel.sentiment.aggregate`: a post counts only from its publish time).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd

from perpbot.intel.models import jsonable
from perpbot.intel.sentiment.aggregate import hourly_sentiment, sentiment_as_of
from perpbot.intel.sentiment.posts import PostStore, keyword_pattern
from perpbot.intel.sentiment.scorer import SentimentScorer, check_scores
from perpbot.intel.sentiment.sources import PostSource
from perpbot.intel.source import SourceError
from perpbot.intel.symbols import coin_of
from perpbot.logs import get_logger

__all__ = ["SentimentReading", "SentimentService"]

log = get_logger("perpbot.intel")


@dataclass(frozen=True)
class SentimentReading:
    """Sentiment of one coin: ``score`` mean in [-1, 1] (NaN without posts) over the
    ``window_hours`` ending at ``as_of`` (UTC)."""

    coin: str
    score: float
    n_posts: int
    window_hours: float
    as_of: datetime
    scorer: str
    sources_ok: int
    sources_total: int

    @property
    def label(self) -> str:
        """"bullish" (>= 0.05), "bearish" (<= −0.05), "neutral", or "unknown" without posts
        (VADER's customary ±0.05 thresholds)."""
        if math.isnan(self.score):
            return "unknown"
        return "bullish" if self.score >= 0.05 else "bearish" if self.score <= -0.05 else "neutral"

    def to_dict(self) -> dict:
        return jsonable({"coin": self.coin, "score": self.score, "n_posts": self.n_posts,
                         "window_hours": self.window_hours, "as_of": self.as_of, "scorer": self.scorer,
                         "label": self.label, "sources_ok": self.sources_ok, "sources_total": self.sources_total})


class SentimentService:
    """Posts from ``sources`` scored by ``scorer``, matched to coins by ``keywords`` (module docstring).

    Args:
        sources: post sources (:func:`~perpbot.intel.sentiment.sources.build_sources`).
        scorer: a :class:`~perpbot.intel.sentiment.scorer.SentimentScorer`.
        keywords: coin -> keywords, e.g. ``{"SOL": ["solana", "$sol"]}``; a coin without
            keywords matches its own name (``"SOL"`` -> ``["sol", "$sol"]``).
        window_hours: window of :meth:`reading`.
        retention_hours: posts older than this are forgotten.
        timeout: seconds one source may take in :meth:`refresh`.
        now: wall clock (UTC).
    """

    def __init__(self, sources: Sequence[PostSource], scorer: SentimentScorer,
                 keywords: Mapping[str, Sequence[str]], *, window_hours: float = 24.0, retention_hours: float = 72.0,
                 timeout: float = 10.0, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        if window_hours <= 0 or retention_hours < window_hours or timeout <= 0:
            raise ValueError("window_hours > 0, retention_hours >= window_hours and timeout > 0 are required")
        self.sources = list(sources)
        self.scorer = scorer
        self.keywords = {coin_of(k): list(v) for k, v in keywords.items()}
        self.window_hours = float(window_hours)
        self.retention_hours = float(retention_hours)
        self.timeout = float(timeout)
        self.now = now
        self.store = PostStore()
        self.statuses: dict[str, tuple[str, str]] = {}   # source name -> (state, detail)
        self._lock = asyncio.Lock()

    def pattern(self, symbol: str):
        coin = coin_of(symbol)
        return keyword_pattern(self.keywords.get(coin) or [coin.lower(), "$" + coin.lower()])

    async def _one(self, source: PostSource) -> list:
        try:
            posts = await asyncio.wait_for(source.fetch(), self.timeout)
        except asyncio.TimeoutError:
            self.statuses[source.name] = ("timeout", f"no answer within {self.timeout:g} s")
            return []
        except SourceError as exc:
            self.statuses[source.name] = (exc.state, exc.detail)
            return []
        except Exception as exc:  # a broken source must not stop the others
            self.statuses[source.name] = ("error", f"{type(exc).__name__}: {exc}"[:200])
            log.warning("sentiment_source_failed", source=source.name, error=self.statuses[source.name][1])
            return []
        self.statuses[source.name] = ("ok", f"{len(posts)} posts")
        return posts

    async def refresh(self) -> int:
        """Fetch every source, keep and score new stories; returns how many were kept.

        Raises:
            ValueError: the scorer returned a wrong number of scores or one outside [-1, 1].
        """
        async with self._lock:
            batches = await asyncio.gather(*(self._one(s) for s in self.sources))
            cutoff = self.now() - timedelta(hours=self.retention_hours)
            kept = self.store.add_all(p for batch in batches for p in batch if p.published >= cutoff)
            self.store.prune(cutoff)
            todo = self.store.unscored()
            if todo:
                texts = [p.body for _, p in todo]
                scores = check_scores(self.scorer, texts, self.scorer.score(texts))
                self.store.set_scores(todo, scores)
            return kept

    async def reading(self, symbol: str, at: datetime | None = None, *, refresh: bool = True) -> SentimentReading:
        """Sentiment of ``symbol``'s coin as of ``at`` (default now) over ``window_hours``;
        refreshes the sources first (their answers are cached) unless ``refresh`` is False."""
        if refresh:
            await self.refresh()
        when = at or self.now()
        score, n = sentiment_as_of(self.store.posts(), self.pattern(symbol), when, self.window_hours)
        ok = sum(1 for s in self.sources if self.statuses.get(s.name, ("",))[0] == "ok")
        return SentimentReading(coin=coin_of(symbol), score=score, n_posts=n, window_hours=self.window_hours,
                                as_of=when, scorer=self.scorer.name, sources_ok=ok, sources_total=len(self.sources))

    def hourly(self, symbol: str, start: datetime, end: datetime, window_hours: float = 1.0) -> pd.DataFrame:
        """Hourly sentiment of ``symbol``'s coin from the posts held (no fetch); see
        :func:`~perpbot.intel.sentiment.aggregate.hourly_sentiment`."""
        return hourly_sentiment(self.store.posts(), self.pattern(symbol), start, end, window_hours)
