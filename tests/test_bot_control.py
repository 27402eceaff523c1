"""Operator control of the paper bot (pause, resume, force-exit) and its event stream, on real candles."""

from __future__ import annotations

import pytest

from perpbot.bot.control import BotControl
from perpbot.bot.events import EventBus
from perpbot.bot.paper import PaperBot
from perpbot.config import load_settings
from perpbot.data.market import load_market


@pytest.fixture(scope="module")
def market(sol5m_path):
    return load_market(sol5m_path, "5m").slice(0, 3000)


def _bot(control=None):
    s = load_settings(None, funding=False, warmup_bars=60, cooldown_bars=0)
    return PaperBot(s, "ema-cross", control=control)


def _feed(bot, candles, start, stop):
    for r in candles.iloc[start:stop].itertuples(index=False):
        bot.on_candle(r.timestamp, r.open, r.high, r.low, r.close, r.volume)


def test_events_mirror_trades(market):
    bus = EventBus(history=10_000)
    sub = bus.subscribe(maxsize=100_000)
    bot = _bot(BotControl(bus))
    _feed(bot, market.candles, 0, 3000)
    trades = bot.exchange.result().trades
    assert len(trades) >= 10
    events = []
    while (e := sub.get(timeout=0)) is not None:
        events.append(e)
    kinds = [e.kind for e in events]
    assert kinds.count("cycle") == 3000
    assert kinds.count("exit") == len(trades)
    assert kinds.count("entry") == len(trades) + (1 if bot.exchange.position["side"] else 0)
    exits = [e.data for e in events if e.kind == "exit"]
    assert [x["pnl"] for x in exits] == pytest.approx(list(trades.pnl))
    assert [x["reason"] for x in exits] == list(trades.exit_reason)
    assert bot.control.status()["cycles"] == 3000


def test_pause_blocks_entries_and_force_exit_closes(market):
    ctl = BotControl(EventBus(history=100_000))
    bot = _bot(ctl)
    c = market.candles
    # run until a position is open
    i = 0
    while bot.exchange.position["side"] == 0:
        _feed(bot, c, i, i + 1)
        i += 1
    n_before = len(bot.exchange.result().trades)
    ctl.request_force_exit(by="test")
    _feed(bot, c, i, i + 1)
    trades = bot.exchange.result().trades
    assert len(trades) == n_before + 1
    last = trades.iloc[-1]
    assert last.exit_reason == "manual" and last.exit_bar == i
    assert last.exit_price == pytest.approx(c.close.iloc[i] * (1 - last.side * 0.0002))  # close, with slippage
    assert bot.exchange.position["side"] == 0

    ctl.pause(by="test")
    _feed(bot, c, i + 1, 2500)
    assert len(bot.exchange.result().trades) == n_before + 1 and bot.exchange.position["side"] == 0
    assert ctl.status()["paused"] is True
    ctl.resume(by="test")
    _feed(bot, c, 2500, 3000)
    assert bot.exchange.position["side"] != 0 or len(bot.exchange.result().trades) > n_before + 1
    kinds = [e.kind for e in ctl.events.recent(10_000)]
    assert {"force_exit", "paused", "resumed"} <= set(kinds)


def test_slow_subscriber_never_blocks_publish():
    bus = EventBus()
    sub = bus.subscribe(maxsize=10)
    for k in range(1000):
        bus.publish("cycle", bar=k)
    assert sub.dropped == 990
    assert sub.get(timeout=0).data["bar"] == 990
