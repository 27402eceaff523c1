"""Sentiment from news and social posts (feeds, Reddit), scored by a pluggable scorer.

Modules: :mod:`.posts` (Post, de-duplication, keyword matching), :mod:`.sources` (RSS/Atom and
Reddit readers), :mod:`.scorer` (the scorer protocol, registry / entry points, VADER),
:mod:`.aggregate` (causal per-hour and as-of scores), :mod:`.service` (all of it together).
"""

from __future__ import annotations

from perpbot.intel.sentiment.aggregate import hourly_sentiment, sentiment_as_of
from perpbot.intel.sentiment.posts import Post, PostStore, keyword_pattern
from perpbot.intel.sentiment.scorer import (
    ENTRY_POINT_GROUP, SentimentScorer, VaderScorer, available_scorers, get_scorer, register_scorer,
    unregister_scorer,
)
from perpbot.intel.sentiment.service import SentimentReading, SentimentService
from perpbot.intel.sentiment.sources import FeedSource, RedditSource, build_sources

__all__ = [
    "ENTRY_POINT_GROUP", "FeedSource", "Post", "PostStore", "RedditSource", "SentimentReading", "SentimentScorer",
    "SentimentService", "VaderScorer", "available_scorers", "build_sources", "get_scorer", "hourly_sentiment",
    "keyword_pattern", "register_scorer", "sentiment_as_of", "unregister_scorer",
]
