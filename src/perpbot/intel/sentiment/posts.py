"""Headlines and posts: the :class:`Post` record, de-duplication and symbol matching.

De-duplication (:class:`PostStore`): two posts are the same story when their normalised
links match or their normalised titles match. A link is normalised by lower-casing scheme
and host, dropping ``www.``, the fragment, tracking parameters (``utm_*``, ``ref``, ``fbclid``,
``gclid``) and a trailing slash; a title by case-folding, turning every run of characters
other than letters and digits into one space, and trimming. Each is hashed (SHA-1) and a
story is kept once, with its **earliest** publish time — so which copy arrives first does not
matter, and adding a later copy never changes what was known earlier.

Symbol matching (:func:`keyword_pattern`): a post is about a symbol when its title or text
contains one of the symbol's keywords as a whole word, case-insensitive (``"solana"``,
``"$sol"``; ``"sol"`` does not match ``"solid"``).
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["Post", "PostStore", "keyword_pattern", "link_key", "normalise_link", "normalise_title", "title_key"]

_TRACKING = ("utm_", "ref", "fbclid", "gclid", "mc_cid", "mc_eid")
_TAG = re.compile(r"<[^>]+>")
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise_title(title: str) -> str:
    return _NON_WORD.sub(" ", html.unescape(title or "").casefold()).strip()


def normalise_link(link: str) -> str:
    if not link or not link.strip():
        return ""
    parts = urlsplit(link.strip())
    host = parts.netloc.lower().removeprefix("www.")
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not any(k.lower() == t or (t.endswith("_") and k.lower().startswith(t)) for t in _TRACKING)]
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), host, path, urlencode(sorted(query)), ""))


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def link_key(link: str) -> str | None:
    norm = normalise_link(link)
    return _sha1("link:" + norm) if norm else None


def title_key(title: str) -> str | None:
    norm = normalise_title(title)
    return _sha1("title:" + norm) if norm else None


def plain_text(text: str, limit: int = 2000) -> str:
    """HTML tags removed, entities decoded, whitespace collapsed, cut at ``limit`` characters."""
    return " ".join(html.unescape(_TAG.sub(" ", text or "")).split())[:limit]


@dataclass(frozen=True)
class Post:
    """One headline or post. ``published`` is tz-aware UTC: the publish time the source gives,
    else the time perpbot first saw it. ``score`` in [-1, 1] once scored."""

    source: str          # "feed:<host>" or "reddit:r/<sub>"
    title: str
    text: str
    link: str
    published: datetime
    score: float | None = None

    @property
    def body(self) -> str:
        """What a scorer reads: the title, then the text."""
        return f"{self.title}. {self.text}".strip(" .") if self.text else self.title

    def keys(self) -> tuple[str, ...]:
        return tuple(k for k in (link_key(self.link), title_key(self.title)) if k)


def keyword_pattern(keywords: Sequence[str]) -> re.Pattern[str]:
    """Case-insensitive whole-word pattern matching any of ``keywords``.

    Raises:
        ValueError: no non-empty keyword.
    """
    words = sorted({k.strip().casefold() for k in keywords if k and k.strip()}, key=len, reverse=True)
    if not words:
        raise ValueError("a symbol needs at least one keyword")
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + r")(?!\w)", re.IGNORECASE)


class PostStore:
    """De-duplicated posts (module docstring), oldest publish time kept per story."""

    def __init__(self) -> None:
        self._posts: dict[int, Post] = {}
        self._index: dict[str, int] = {}
        self._next = 0

    def __len__(self) -> int:
        return len(self._posts)

    def posts(self) -> list[Post]:
        """Every kept post, by publish time."""
        return sorted(self._posts.values(), key=lambda p: p.published)

    def add(self, post: Post) -> bool:
        """Keep ``post`` unless it is a copy of a kept story published no later; returns True
        when it was kept (new, or replacing a later-published copy)."""
        keys = post.keys()
        if not keys:
            return False
        found = {self._index[k] for k in keys if k in self._index}
        if found and all(self._posts[i].published <= post.published for i in found):
            return False
        for i in found:
            old = self._posts.pop(i)
            for k in old.keys():
                if self._index.get(k) == i:
                    del self._index[k]
        pid = self._next
        self._next += 1
        self._posts[pid] = post
        for k in keys:
            self._index[k] = pid
        return True

    def add_all(self, posts: Iterable[Post]) -> int:
        return sum(self.add(p) for p in posts)

    def unscored(self) -> list[tuple[int, Post]]:
        return [(i, p) for i, p in self._posts.items() if p.score is None]

    def set_scores(self, items: Sequence[tuple[int, Post]], scores: Sequence[float]) -> None:
        for (i, p), s in zip(items, scores):
            if i in self._posts:
                self._posts[i] = replace(p, score=float(s))

    def prune(self, before: datetime) -> int:
        """Drop posts published before ``before``; returns how many."""
        old = [i for i, p in self._posts.items() if p.published < before]
        for i in old:
            p = self._posts.pop(i)
            for k in p.keys():
                if self._index.get(k) == i:
                    del self._index[k]
        return len(old)
