"""Sentiment per symbol and hour from scored posts — pure functions, causal by construction.

A post counts only from its publish time: the sentiment **as of** time ``t`` over a window of
``w`` hours is the mean score of the symbol's scored posts published in ``(t − w, t]``, and
its post count; NaN and 0 when there are none. The hourly series labels each row with the
hour mark ``h`` at which it becomes known (the end of the hour it covers), so row ``h`` uses
only posts published at or before ``h`` and never changes when later posts arrive. (Candles
are labelled by their open time; join this series to the candle that opens at ``h`` or later.)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import datetime

import numpy as np
import pandas as pd

from perpbot.intel.sentiment.posts import Post

__all__ = ["hourly_sentiment", "matching", "sentiment_as_of"]


def matching(posts: Iterable[Post], pattern: re.Pattern[str]) -> list[Post]:
    """Scored posts whose title or text matches ``pattern`` (see ``posts.keyword_pattern``)."""
    return [p for p in posts if p.score is not None and (pattern.search(p.title) or pattern.search(p.text))]


def _utc(t: datetime) -> pd.Timestamp:
    ts = pd.Timestamp(t)
    if ts.tzinfo is None:
        raise ValueError(f"time {t!r} has no timezone; pass UTC datetimes")
    return ts.tz_convert("UTC")


def sentiment_as_of(posts: Iterable[Post], pattern: re.Pattern[str], at: datetime,
                    window_hours: float = 24.0) -> tuple[float, int]:
    """(mean score in [-1, 1] or NaN, number of posts) of the matching posts published in
    ``(at − window_hours, at]``.

    Raises:
        ValueError: ``window_hours <= 0`` or a naive ``at``.
    """
    if window_hours <= 0:
        raise ValueError(f"window_hours must be > 0, got {window_hours}")
    end = _utc(at)
    start = end - pd.Timedelta(hours=window_hours)
    scores = [p.score for p in matching(posts, pattern) if start < _utc(p.published) <= end]
    return (float(np.mean(scores)) if scores else math.nan), len(scores)


def hourly_sentiment(posts: Iterable[Post], pattern: re.Pattern[str], start: datetime, end: datetime,
                     window_hours: float = 1.0) -> pd.DataFrame:
    """Hourly sentiment of the matching posts between ``start`` and ``end`` (UTC).

    Returns a frame indexed by the hour marks ``h`` from ``start`` rounded up to ``end``
    rounded down (tz-aware UTC, name ``timestamp``) with columns ``score`` (float64, mean in
    [-1, 1], NaN without posts) and ``n_posts`` (int64) over ``(h − window_hours, h]``.

    Raises:
        ValueError: naive times, ``end < start`` or ``window_hours <= 0``.
    """
    if window_hours <= 0:
        raise ValueError(f"window_hours must be > 0, got {window_hours}")
    lo, hi = _utc(start).ceil("h"), _utc(end).floor("h")
    if _utc(end) < _utc(start):
        raise ValueError("end is before start")
    hours = (pd.date_range(lo, hi, freq="h", name="timestamp") if hi >= lo else
             pd.DatetimeIndex([], tz="UTC", name="timestamp")).as_unit("ns")
    chosen = matching(posts, pattern)
    t = np.array([_utc(p.published).value for p in chosen], dtype=np.int64)
    s = np.array([p.score for p in chosen], dtype=np.float64)
    order = np.argsort(t, kind="stable")
    t, s = t[order], s[order]
    csum = np.concatenate(([0.0], np.cumsum(s)))
    ends = hours.asi8
    starts = ends - int(pd.Timedelta(hours=window_hours).value)
    i_end = np.searchsorted(t, ends, side="right")       # published <= h
    i_start = np.searchsorted(t, starts, side="right")   # published <= h - w are out
    n = (i_end - i_start).astype(np.int64)
    total = csum[i_end] - csum[i_start]
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(n > 0, total / np.maximum(n, 1), np.nan)
    return pd.DataFrame({"score": score.astype(np.float64), "n_posts": n}, index=hours)

