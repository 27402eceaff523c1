"""Sentiment scorers: the plug-in interface, its registry, and the built-in lexicon scorer.

A scorer is any object with a ``name`` and ``score(texts) -> list[float]`` returning one
score per text in [-1, 1] (−1 most negative, +1 most positive) — the
:class:`SentimentScorer` protocol. :func:`get_scorer` finds one by name:

1. in the in-process registry (:func:`register_scorer`; ``"vader"`` is built in), else
2. among the installed entry points of the group ``perpbot.sentiment_scorers`` — a package
   declares ``[project.entry-points."perpbot.sentiment_scorers"] finbert =
   "mypkg.scorers:FinBertScorer"`` and ``sentiment_scorer = "finbert"`` selects it. The entry
   point names a class or factory called without arguments.

:class:`VaderScorer` uses VADER (Hutto & Gilbert, ICWSM 2014, package ``vaderSentiment``),
whose lexicon ships inside the package (nothing is downloaded): the score is VADER's
normalised ``compound`` value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable

__all__ = [
    "ENTRY_POINT_GROUP", "SentimentScorer", "VaderScorer", "available_scorers", "check_scores", "get_scorer",
    "register_scorer", "unregister_scorer",
]

ENTRY_POINT_GROUP = "perpbot.sentiment_scorers"


@runtime_checkable
class SentimentScorer(Protocol):
    """What a sentiment scorer offers (module docstring)."""

    name: str

    def score(self, texts: Sequence[str]) -> list[float]:
        """One score in [-1, 1] per text, in order."""
        ...


class VaderScorer:
    """VADER lexicon scorer: ``compound`` score per text, in [-1, 1]."""

    name = "vader"

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._analyzer = SentimentIntensityAnalyzer()

    def score(self, texts: Sequence[str]) -> list[float]:
        return [float(self._analyzer.polarity_scores(t or "")["compound"]) for t in texts]


_REGISTRY: dict[str, Callable[[], SentimentScorer]] = {"vader": VaderScorer}


def register_scorer(name: str, factory: Callable[[], SentimentScorer], *, replace: bool = False) -> None:
    """Make ``factory`` (class or zero-argument callable) available as ``name``.

    Raises:
        ValueError: ``name`` is taken and ``replace`` is False, or empty.
    """
    if not name or not name.strip():
        raise ValueError("a scorer needs a name")
    if name in _REGISTRY and not replace:
        raise ValueError(f"a sentiment scorer named {name!r} is already registered")
    _REGISTRY[name] = factory


def unregister_scorer(name: str) -> None:
    """Remove ``name`` from the registry (no error when absent)."""
    _REGISTRY.pop(name, None)


def _entry_points() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_scorers() -> list[str]:
    """Names :func:`get_scorer` accepts: registered ones, then installed entry points."""
    names = list(_REGISTRY)
    return names + sorted(n for n in _entry_points() if n not in _REGISTRY)


def get_scorer(name: str) -> SentimentScorer:
    """A new scorer instance by name (module docstring for the lookup order).

    Raises:
        ValueError: no scorer of that name, or the object found is not a :class:`SentimentScorer`.
    """
    factory = _REGISTRY.get(name)
    if factory is None:
        ep = _entry_points().get(name)
        if ep is None:
            raise ValueError(f"unknown sentiment scorer {name!r}; available: {', '.join(available_scorers())}")
        factory = ep.load()  # type: ignore[attr-defined]
    scorer = factory()
    if not isinstance(scorer, SentimentScorer):
        raise ValueError(f"sentiment scorer {name!r} has no name attribute or score(texts) method")
    return scorer


def check_scores(scorer: SentimentScorer, texts: Sequence[str], scores: Sequence[float]) -> list[float]:
    """Validate a scorer's output: one finite score in [-1, 1] per text.

    Raises:
        ValueError: wrong count, a non-finite score or one outside [-1, 1].
    """
    out = [float(s) for s in scores]
    if len(out) != len(texts):
        raise ValueError(f"scorer {scorer.name!r} returned {len(out)} scores for {len(texts)} texts")
    bad = [s for s in out if not math.isfinite(s) or not -1.0 <= s <= 1.0]
    if bad:
        raise ValueError(f"scorer {scorer.name!r} returned scores outside [-1, 1]: {bad[:3]}")
    return out
