"""Where posts come from: RSS/Atom feeds (``feedparser``) and Reddit's public JSON listings.

- :class:`FeedSource` — ``GET <feed url>`` over httpx, parsed by ``feedparser`` (RSS 0.9x/1.0/2.0
  and Atom): per entry ``title``, ``link``, ``summary`` and ``published_parsed`` (else
  ``updated_parsed``; feedparser gives UTC).
- :class:`RedditSource` — ``GET https://www.reddit.com/r/<sub>/new.json?limit=100&raw_json=1``,
  a Listing ``{"kind": "Listing", "data": {"children": [{"kind": "t3", "data": {"title",
  "selftext", "permalink", "url", "created_utc", ...}}], "after": ...}}`` (Reddit API docs,
  "listings"; unauthenticated reads need a descriptive User-Agent and are rate-limited).

Both go through a :class:`~perpbot.intel.source.CachedSource` (answers cached ``ttl``
seconds, retries, per-request timeout) and return :class:`~perpbot.intel.sentiment.posts.Post`
objects; an entry without a publish time is dated when first seen.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import feedparser

from perpbot.intel.http import JsonHttp
from perpbot.intel.sentiment.posts import Post, plain_text
from perpbot.intel.source import CachedSource, SourceRejected

__all__ = ["REDDIT_BASE_URL", "FeedSource", "PostSource", "RedditSource", "build_sources"]

REDDIT_BASE_URL = "https://www.reddit.com"
_SUB = re.compile(r"^[A-Za-z0-9_]{2,21}$")


def _now() -> datetime:
    return datetime.now(UTC)


class PostSource(Protocol):
    name: str

    async def fetch(self) -> list[Post]:
        """The source's current posts (raises a SourceError when it cannot answer)."""
        ...


class FeedSource:
    """One RSS or Atom feed (module docstring)."""

    def __init__(self, url: str, *, http: JsonHttp, cache: CachedSource,
                 now: Callable[[], datetime] = _now) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"feed {url!r} is not an http(s) URL")
        self.url = url
        self.name = f"feed:{parts.netloc}{parts.path}".rstrip("/")
        self.http = http
        self.cache = cache
        self.now = now

    async def fetch(self) -> list[Post]:
        async def get() -> list[Post]:
            resp = await self.http.get(self.url)
            parsed = feedparser.parse(resp.content)
            if not parsed.entries and (parsed.bozo or not parsed.get("version")):
                raise SourceRejected(self.name, "the answer is not an RSS or Atom feed")
            seen = self.now()
            return [p for e in parsed.entries if (p := self._post(e, seen)) is not None]

        return await self.cache.get(("feed", self.url), get)

    def _post(self, entry: Any, seen: datetime) -> Post | None:
        title = plain_text(entry.get("title", ""), 500)
        if not title:
            return None
        stamp = entry.get("published_parsed") or entry.get("updated_parsed")
        published = datetime(*stamp[:6], tzinfo=UTC) if stamp else seen
        return Post(source=self.name, title=title, text=plain_text(entry.get("summary", "")),
                    link=str(entry.get("link", "") or ""), published=published)


class RedditSource:
    """The newest posts of one subreddit (module docstring)."""

    def __init__(self, subreddit: str, *, http: JsonHttp, cache: CachedSource, limit: int = 100) -> None:
        sub = subreddit.strip().removeprefix("r/").removeprefix("/r/")
        if not _SUB.match(sub):
            raise ValueError(f"{subreddit!r} is not a subreddit name")
        if not 1 <= limit <= 100:
            raise ValueError(f"limit must be 1..100, got {limit}")
        self.subreddit = sub
        self.name = f"reddit:r/{sub}"
        self.http = http
        self.cache = cache
        self.limit = int(limit)

    async def fetch(self) -> list[Post]:
        async def get() -> list[Post]:
            body = await self.http.get_json(f"/r/{self.subreddit}/new.json", {"limit": self.limit, "raw_json": 1})
            data = body.get("data") if isinstance(body, dict) else None
            children = data.get("children") if isinstance(data, dict) else None
            if not isinstance(children, list):
                raise SourceRejected(self.name, "the answer is not a Reddit listing")
            return [p for c in children if (p := self._post(c.get("data") if isinstance(c, dict) else None))]

        return await self.cache.get(("reddit", self.subreddit, self.limit), get)

    def _post(self, d: Any) -> Post | None:
        if not isinstance(d, dict) or not d.get("title"):
            return None
        try:
            published = datetime.fromtimestamp(float(d.get("created_utc")), UTC)
        except (TypeError, ValueError, OverflowError, OSError):
            return None
        permalink = str(d.get("permalink") or "")
        link = REDDIT_BASE_URL + permalink if permalink.startswith("/") else str(d.get("url") or "")
        return Post(source=self.name, title=plain_text(d["title"], 500), text=plain_text(d.get("selftext", "")),
                    link=link, published=published)


def build_sources(feeds: Sequence[str], subreddits: Sequence[str], *, reddit_base_url: str = REDDIT_BASE_URL,
                  ttl: float = 300.0, timeout: float = 5.0, retries: int = 1, backoff: float = 0.25,
                  user_agent: str | None = None, clock: Callable[[], float] = time.monotonic,
                  now: Callable[[], datetime] = _now) -> tuple[list[PostSource], list[JsonHttp]]:
    """Feed and Reddit sources sharing one HTTP client and cache per kind.

    Returns (sources, http clients to close with ``aclose``). Raises ValueError for a bad URL
    or subreddit name.
    """
    headers = {"User-Agent": user_agent} if user_agent else {}
    feed_http = JsonHttp("feeds", "", headers={"Accept": "application/rss+xml, application/atom+xml, */*", **headers},
                         timeout=timeout)
    reddit_http = JsonHttp("reddit", reddit_base_url, headers=headers, timeout=timeout)
    feed_cache = CachedSource("feeds", ttl=ttl, retries=retries, timeout=timeout, backoff=backoff, clock=clock)
    reddit_cache = CachedSource("reddit", ttl=ttl, retries=retries, timeout=timeout, backoff=backoff, clock=clock)
    sources: list[PostSource] = [FeedSource(u, http=feed_http, cache=feed_cache, now=now) for u in feeds]
    sources += [RedditSource(s, http=reddit_http, cache=reddit_cache) for s in subreddits]
    return sources, [feed_http, reddit_http]
