"""The candle feeds of a node over several symbols, stopped together."""

from __future__ import annotations

import asyncio


class Feeds:
    """The node's candle feeds (:class:`~perpbot.exchange.feed.CandleFeed`, one per symbol): :meth:`stop` ends
    every one (SIGINT / SIGTERM, an embedding's ``on_start``), also those added later; ``stopped`` is set then."""

    def __init__(self) -> None:
        self.feeds: list = []
        self.stopped = asyncio.Event()

    def stop(self) -> None:
        self.stopped.set()
        for f in self.feeds:
            f.stop()
