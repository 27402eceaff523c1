"""Sentiment from local fake RSS / Atom feeds and Reddit listings: parsing, de-duplication,
keyword matching, hourly scores worked by hand, the look-ahead rule (a post counts only from
its publish time) and scorers plugged in through the registry and an entry point."""

from __future__ import annotations

import asyncio
import importlib
import math
from datetime import UTC, datetime, timedelta

import pytest

from fake_intel import FakeFeeds, Item
from perpbot.intel import MarketContext
from perpbot.intel.sentiment import (
    SentimentService, VaderScorer, available_scorers, build_sources, get_scorer, register_scorer, unregister_scorer,
)
from perpbot.intel.sentiment.posts import Post, PostStore, keyword_pattern, normalise_link, normalise_title

T0 = datetime(2025, 5, 1, tzinfo=UTC)
KEYWORDS = {"SOL": ["solana", "$sol"], "BTC": ["bitcoin"]}


def at(hour: int, minute: int = 0) -> datetime:
    return T0 + timedelta(hours=hour, minutes=minute)


class KeywordScorer:
    """+1 for good words, -1 for bad words, 0 otherwise: scores a test can work out by hand."""

    name = "test-keywords"
    GOOD = ("surge", "strong")
    BAD = ("outage", "dump", "fear")

    def score(self, texts):
        out = []
        for t in texts:
            low = t.lower()
            out.append(1.0 if any(w in low for w in self.GOOD) else -1.0 if any(w in low for w in self.BAD) else 0.0)
        return out


@pytest.fixture
def keyword_scorer():
    register_scorer("test-keywords", KeywordScorer, replace=True)
    yield
    unregister_scorer("test-keywords")


EARLY = {  # published up to 11:00
    "rss": [Item("Solana surges to record high as ETF approval nears", "http://news.test/a?utm_source=feed",
                 at(10, 15), "<p>Big <b>news</b> for SOL holders</p>"),
            Item("Bitcoin slides as traders fear regulation", "http://news.test/b", at(10, 40))],
    "atom": [Item("Solana network outage halts block production", "http://blog.test/outage", at(10, 50))],
    "reddit": [Item("$SOL looks strong today", "/r/solana/comments/p1/sol_strong/", at(10, 20))],
}
LATE = {  # published after 11:00, incl. later copies of earlier stories
    "rss": [Item("Terrible day, $SOL dumped hard", "http://news.test/c", at(11, 30))],
    "atom": [Item("SOLANA surges to record high, as ETF approval nears!", "https://www.news.test/a/#top",
                  at(11, 5))],
    "reddit": [Item("Solana network outage halts block production", "/r/solana/comments/p9/outage/", at(12, 0))],
}


def serve(fake: FakeFeeds, *batches: dict) -> None:
    fake.rss["coindesk"] = [i for b in batches for i in b["rss"]]
    fake.atom["blog"] = [i for b in batches for i in b["atom"]]
    fake.reddit["solana"] = [i for b in batches for i in b["reddit"]]


def service(fake: FakeFeeds, scorer, now, **kw) -> tuple[SentimentService, list]:
    sources, https = build_sources([f"{fake.base_url}/rss/coindesk", f"{fake.base_url}/atom/blog"], ["solana"],
                                   reddit_base_url=fake.base_url, ttl=0.0, timeout=2.0, retries=0,
                                   user_agent="perpbot-test/1.0", now=now)
    return SentimentService(sources, scorer, KEYWORDS, now=now, **kw), https


def test_normalisation_dedup_and_keywords():
    assert normalise_title("  SOLANA surges, to record-high!! ") == "solana surges to record high"
    assert normalise_link("https://www.News.test/a/?utm_source=x&id=3#frag") == "https://news.test/a?id=3"
    store = PostStore()
    late = Post("x", "Solana surges", "", "http://n.test/a", at(11))
    early = Post("y", "solana SURGES!", "", "http://other.test/z", at(10))
    assert store.add(late) and store.add(early)      # same title: the earlier copy replaces the later one
    assert [p.published for p in store.posts()] == [at(10)]
    assert not store.add(Post("z", "Different title", "", "http://other.test/z/", at(12)))   # same link, later
    pat = keyword_pattern(["solana", "$sol"])
    assert pat.search("Why $SOL rallied") and pat.search("SOLANA news") and not pat.search("solid solutions")


def test_hourly_sentiment_from_fake_feeds_dedup_and_lookahead(keyword_scorer):
    now = [at(11, 0)]
    with FakeFeeds() as fake:
        serve(fake, EARLY)

        async def main():
            svc, https = service(fake, get_scorer("test-keywords"), lambda: now[0])
            try:
                kept_early = await svc.refresh()
                before = svc.hourly("SOL", at(9), at(11))
                serve(fake, EARLY, LATE)               # later posts appear, incl. later copies of early stories
                now[0] = at(13, 0)
                kept_late = await svc.refresh()
                after = svc.hourly("SOL/USDT:USDT", at(9), at(13))
                btc = svc.hourly("BTC", at(10), at(11))
                reading = await svc.reading("SOL", at=at(10, 30), refresh=False)
                return svc, kept_early, kept_late, before, after, btc, reading
            finally:
                for h in https:
                    await h.aclose()
        svc, kept_early, kept_late, before, after, btc, reading = asyncio.run(asyncio.wait_for(main(), 30))
        assert fake.calls("/r/solana/new.json")[0].params == {"limit": "100", "raw_json": "1"}
        assert fake.calls("/r/solana/new.json")[0].headers["user-agent"] == "perpbot-test/1.0"
    assert kept_early == 4 and kept_late == 1           # the two later copies were recognised as duplicates
    assert len(svc.store) == 5
    # SOL posts, scored +1 (surge/strong) or -1 (outage/dump): 10:15 +1, 10:20 +1, 10:50 -1, 11:30 -1.
    # Hour 11:00 covers (10:00, 11:00]: (1 + 1 - 1) / 3 = 1/3 over 3 posts; hour 12:00 covers (11:00, 12:00]: -1
    # over 1 post (the 11:05 copy of the 10:15 story and the 12:00 copy of the outage story are not counted).
    assert list(after.index) == [at(9), at(10), at(11), at(12), at(13)]
    assert list(after["n_posts"]) == [0, 0, 3, 1, 0]
    assert after.loc[at(11), "score"] == pytest.approx(1 / 3) and after.loc[at(12), "score"] == -1.0
    assert math.isnan(after.loc[at(10), "score"]) and math.isnan(after.loc[at(13), "score"])
    # look-ahead: the hours known before the later posts arrived are unchanged by them, to the bit
    assert after.loc[before.index].equals(before)
    assert list(btc["n_posts"]) == [0, 1] and btc.loc[at(11), "score"] == -1.0    # "fear" in the bitcoin headline
    # as of 10:30 only the two posts published by then count (24 h window)
    assert (reading.score, reading.n_posts, reading.scorer) == (1.0, 2, "test-keywords")
    assert reading.sources_total == 3


def test_a_post_counts_only_from_its_publish_time(keyword_scorer):
    now = [at(12)]
    with FakeFeeds() as fake:
        serve(fake, EARLY)
        fake.rss["coindesk"].append(Item("Solana strong rebound scheduled story", "http://news.test/future",
                                         at(15)))                      # published in the future of `now`
        fake.rss["coindesk"].append(Item("Solana strong headline without a date", "http://news.test/nodate", None))

        async def main():
            svc, https = service(fake, get_scorer("test-keywords"), lambda: now[0], window_hours=24)
            try:
                r_noon = await svc.reading("SOL")
                now[0] = at(16)
                r_four = await svc.reading("SOL")
                return r_noon, r_four, svc
            finally:
                for h in https:
                    await h.aclose()
        r_noon, r_four, svc = asyncio.run(asyncio.wait_for(main(), 30))
    undated = next(p for p in svc.store.posts() if p.link.endswith("/nodate"))
    assert undated.published == at(12)                  # dated when first seen
    # at 12:00: 10:15 +1, 10:20 +1, 10:50 -1 and the undated (seen 12:00) +1 -> 2/4; the 15:00 story not yet
    assert (r_noon.n_posts, r_noon.score) == (4, pytest.approx(0.5))
    assert (r_four.n_posts, r_four.score) == (5, pytest.approx(0.6))


def test_scorer_plugged_in_through_an_entry_point_is_used(tmp_path, monkeypatch):
    (tmp_path / "perpbot_test_scorer_mod.py").write_text(
        "class LengthScorer:\n"
        "    name = 'length'\n"
        "    def score(self, texts):\n"
        "        return [min(1.0, len(t) / 100.0) for t in texts]\n")
    dist = tmp_path / "perpbot_test_scorer-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: perpbot-test-scorer\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[perpbot.sentiment_scorers]\nlength = perpbot_test_scorer_mod:LengthScorer\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    assert "length" in available_scorers() and "vader" in available_scorers()
    scorer = get_scorer("length")
    with pytest.raises(ValueError, match="unknown sentiment scorer 'nope'; available: vader"):
        get_scorer("nope")
    with FakeFeeds() as fake:
        serve(fake, EARLY)

        async def main():
            svc, https = service(fake, scorer, lambda: at(11))
            ctx = MarketContext(sentiment=svc, timeout=10.0)
            try:
                return await ctx.snapshot("SOL", parts=["sentiment"])
            finally:
                await ctx.aclose()
                for h in https:
                    await h.aclose()
        snap = asyncio.run(asyncio.wait_for(main(), 30))
    # the SOL posts' bodies (title + ". " + text) and their lengths / 100, capped at 1
    bodies = ["Solana surges to record high as ETF approval nears. Big news for SOL holders",
              "$SOL looks strong today", "Solana network outage halts block production"]
    expected = sum(min(1.0, len(b) / 100) for b in bodies) / 3
    reading = snap.sentiment
    assert reading.scorer == "length" and reading.n_posts == 3
    assert reading.score == pytest.approx(expected)
    assert snap.statuses["sentiment"].ok


def test_vader_ships_its_lexicon_and_bad_scorers_and_sources_are_reported():
    vader = VaderScorer()
    pos, neg, neutral = vader.score(["Solana surges to record high as ETF approval nears",
                                     "Terrible day, $SOL dumped hard", "SOL"])
    assert pos > 0.05 and neg < -0.05 and neutral == 0.0

    class Broken:
        name = "broken"

        def score(self, texts):
            return [0.0]

    with FakeFeeds() as fake:
        serve(fake, EARLY)

        async def main():
            sources, https = build_sources([f"{fake.base_url}/rss/coindesk", "http://127.0.0.1:9/rss"], [],
                                           ttl=0.0, timeout=1.0, retries=0, now=lambda: at(11))
            svc = SentimentService(sources, Broken(), KEYWORDS, now=lambda: at(11))
            ok = SentimentService(sources, vader, KEYWORDS, now=lambda: at(11))
            try:
                with pytest.raises(ValueError, match="returned 1 scores for 2 texts"):
                    await svc.refresh()
                reading = await ok.reading("SOL")
                return reading, ok.statuses
            finally:
                for h in https:
                    await h.aclose()
        reading, statuses = asyncio.run(asyncio.wait_for(main(), 30))
    assert statuses["feed:127.0.0.1:9/rss"][0] == "down"
    assert statuses[f"feed:{fake.base_url.split('//')[1]}/rss/coindesk"] == ("ok", "2 posts")
    assert reading.n_posts == 1 and reading.score > 0.05 and reading.label == "bullish"
    assert (reading.sources_ok, reading.sources_total) == (1, 2)
