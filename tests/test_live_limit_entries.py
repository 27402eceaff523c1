"""Limit (post-only) entries, live (issue 10, item 3): ``entry_order = "limit"`` on the local Bitget simulator
with the real ccxt client, ema-cross on 300 real SOLUSDT 5m candles, limits 0.05 % from the signal close
resting one candle.

* the live bot makes exactly the paper bot's trades (the kernel's): the same entries at the same limit
  prices with the maker fee, the same exits and PnL, and the same ``limit_unfilled`` risk events (value =
  the limit price) for the limits that were not filled;
* on the venue every entry was a post-only limit order (Bitget ``force = post_only``) at
  :func:`~perpbot.sim.sizing.limit_entry_price` of its signal close, with the stop-loss / take-profit
  preset; the unfilled ones were cancelled by the bot after their candle;
* with ``limit_fallback = "market"`` an unfilled limit becomes a market entry at the next open, as in the
  backtest;
* a limit still resting when the process dies is cancelled by the next start's reconciliation (a stale entry).
"""

from __future__ import annotations

import asyncio
import json
import math

import numpy as np
import pandas as pd
import pytest

from perpbot.bot.paper import PaperBot
from perpbot.sim.sizing import limit_entry_price
from perpbot.storage.ledger import Ledger
from perpbot.types import TRADE_COLUMNS
from _live_helpers import SYM, make_bot, ms, paper_then_live, settings, step
from _live_fixtures import _quiet, data, ledger, sim  # noqa: F401  (fixtures)

N_ROWS, START, N = 2400, 2000, 300
LIMIT = dict(entry_order="limit", limit_offset=0.05, limit_timeout_bars=1)


def _limit(**kw):
    return {**LIMIT, **kw}


def _paper_and_live(sim, tmp_path, ledger, data, **kw):
    return paper_then_live(sim, settings(sim, tmp_path, **_limit(**kw)), ledger, data, START, N)


def _same_trades(got: pd.DataFrame, want: pd.DataFrame, offset: int) -> None:
    want = want.copy()
    want["entry_bar"] += offset
    want["exit_bar"] += offset
    cols = [c for c in TRADE_COLUMNS if c not in ("trade_id", "liquidation_price", "exit_time", "entry_time")]
    pd.testing.assert_frame_equal(got[cols].reset_index(drop=True), want[cols].reset_index(drop=True),
                                  check_dtype=False, rtol=1e-9, atol=1e-9)
    # a limit fills inside its candle; the paper trade's times are its candles' opens
    assert list(got.entry_time.dt.floor("5min")) == list(want.entry_time)


def test_live_limit_entries_trade_like_the_backtest(sim, tmp_path, ledger, data):
    candles = data[0]
    expect, rid, offset = _paper_and_live(sim, tmp_path, ledger, data)
    want = expect.trades
    unfilled = expect.risk_events[expect.risk_events.event == "limit_unfilled"]
    assert len(want) >= 3 and len(unfilled) >= 3
    _same_trades(ledger.trades(rid), want, offset)
    # every entry filled at its limit price with the maker fee: fee = qty x price x 0.02 %
    fills = ledger.fills(rid).set_index("order_id")
    orders = ledger.orders(rid)
    entries = orders[orders.reason == "entry"]
    filled = entries[entries.status == "filled"]
    assert list(fills.loc[filled.id, "price"]) == list(want.entry_price)
    assert list(fills.loc[filled.id, "fee"]) == pytest.approx(list(want.qty * want.entry_price * 0.0002), rel=1e-9)
    # the same unfilled limits, at the same prices (live records them at the close before the kernel's bar)
    ev = ledger.risk_events(rid)
    mine = ev[ev.event == "limit_unfilled"]
    assert list(mine.value) == pytest.approx(list(unfilled.value), rel=1e-12)
    assert list(mine.bar + 1) == list(unfilled.bar + offset)
    assert (entries.status == "canceled").sum() == len(unfilled)
    # on the venue: post-only limits at limit_entry_price(side, signal close), TP/SL preset
    sent = [json.loads(r["body"]) for r in sim.requests
            if r["method"] == "POST" and r["path"].endswith("order/place-order") and "reduceOnly" not in r["body"]]
    sent = [b for b in sent if b.get("tradeSide", "open") == "open" and b.get("orderType") == "limit"]
    assert len(sent) == len(entries) and all(b["force"] == "post_only" for b in sent)
    assert all(b.get("presetStopLossPrice") and b.get("presetStopSurplusPrice") for b in sent)
    close_at = {t.value // 1_000_000 // 300_000: c for t, c in zip(candles.timestamp, candles.close)}
    for row, b in zip(entries.itertuples(), sent):
        side = 1 if row.side == "buy" else -1
        signal_close = close_at[int(row.client_order_id.split("-")[1])]  # pb{run}-{signal bar}-{n}
        assert float(b["price"]) == pytest.approx(limit_entry_price(side, signal_close, 0.0005, 0.001), abs=1e-9)


def test_live_limit_fallback_to_market(sim, tmp_path, ledger, data):
    expect, rid, offset = _paper_and_live(sim, tmp_path, ledger, data, limit_fallback="market")
    unfilled = expect.risk_events[expect.risk_events.event == "limit_unfilled"]
    assert len(unfilled) >= 3
    _same_trades(ledger.trades(rid), expect.trades, offset)
    ev = ledger.risk_events(rid)
    assert list(ev[ev.event == "limit_unfilled"].value) == pytest.approx(list(unfilled.value), rel=1e-12)
    orders = ledger.orders(rid)
    entries = orders[orders.reason == "entry"]
    market = entries[entries.type == "market"]
    # each expired limit was replaced by a market entry (one per expiry, filled), the rest were limits
    assert len(market) == len(unfilled) and set(market.status) == {"filled"}
    assert (entries.type == "limit").sum() == len(entries) - len(market)
    fills = ledger.fills(rid).set_index("order_id")
    trades = expect.trades.set_index("entry_price")
    for oid in market.id:  # the taker fee on the open after the expiry (0.06 % of qty x fill)
        f = fills.loc[oid]
        assert f["fee"] == pytest.approx(f["qty"] * f["price"] * 0.0006, rel=1e-9)
        assert f["price"] in trades.index


def test_a_restart_cancels_a_resting_limit_entry(sim, tmp_path, ledger, data):
    from _live_helpers import script

    candles = data[0]
    s = settings(sim, tmp_path, **LIMIT)
    rid = ledger.start_run("live", "ema-cross", SYM, "5m")

    async def first():
        bot = await make_bot(sim, s, ledger, rid)
        try:
            script(bot, {ms(candles, START): 1})
            await step(sim, bot, 1)  # the buy limit now rests on the venue
            bot.flush()
            return bot.pending
        finally:
            await bot.ex.close()  # the process dies with its limit resting

    pending = asyncio.run(first())
    assert pending is not None and pending.until_bar is not None
    resting = [o for o in sim.engine.orders.values() if o.open]
    assert len(resting) == 1 and resting[0].force == "post_only"
    assert resting[0].price == pytest.approx(limit_entry_price(1, float(candles.close.iloc[START]), 0.0005, 0.001))

    async def second():
        bot = await make_bot(sim, s, ledger, rid, resume=True)
        try:
            script(bot, {})
            await step(sim, bot, 3)
            bot.flush()
            return bot
        finally:
            await bot.ex.close()

    bot = asyncio.run(second())
    assert resting[0].status == "canceled" and resting[0].filled == 0
    assert bot.trade is None and sim.engine.position is None
    orders = ledger.orders(rid)
    assert list(orders[orders.reason == "entry"].status) == ["canceled"]


def test_live_limits_resting_several_candles(sim, tmp_path, ledger, data):
    """Limits 0.1 % away resting up to 10 candles, market fallback: fills in a later candle, expiries
    after the third, and new signals replacing a resting limit all match the backtest."""
    expect, rid, offset = _paper_and_live(sim, tmp_path, ledger, data, limit_timeout_bars=10, limit_offset=0.1,
                                          limit_fallback="market")
    unfilled = expect.risk_events[expect.risk_events.event == "limit_unfilled"]
    want = expect.trades
    assert len(want) >= 3 and len(unfilled) >= 1
    _same_trades(ledger.trades(rid), want, offset)
    ev = ledger.risk_events(rid)
    assert list(ev[ev.event == "limit_unfilled"].value) == pytest.approx(list(unfilled.value), rel=1e-12)
    orders = ledger.orders(rid)
    entries = orders[orders.reason == "entry"]
    filled = entries[(entries.type == "limit") & (entries.status == "filled")]
    fills = ledger.fills(rid).set_index("order_id")
    signal_bar = filled.client_order_id.str.split("-").str[1].astype(int).to_numpy()
    fill_bar = np.array([t.value // 300_000_000_000 for t in fills.loc[filled.id, "time"]])  # ns -> 5 min bars
    waited = fill_bar - signal_bar  # 1: filled in the candle after its signal
    assert len(filled) >= 3 and waited.min() >= 1 and waited.max() <= 10 and (waited > 1).any()


def test_a_pause_cancels_a_resting_limit_entry(sim, tmp_path, ledger, data):
    from perpbot.bot.control import BotControl
    from _live_helpers import script

    candles = data[0]
    s = settings(sim, tmp_path, **_limit(limit_timeout_bars=50, limit_offset=1.0, limit_fallback="market"))
    rid = ledger.start_run("live", "ema-cross", SYM, "5m")
    control = BotControl(mode="live", strategy="ema-cross", symbol=SYM)

    async def go():
        bot = await make_bot(sim, s, ledger, rid, control=control)
        try:
            script(bot, {ms(candles, START): 1})
            await step(sim, bot, 1)  # a buy limit 1 % below the close, resting up to 50 candles
            resting = [o for o in sim.engine.orders.values() if o.open]
            control.pause()
            await step(sim, bot, 2)
            bot.flush()
            return bot, resting
        finally:
            await bot.ex.close()

    bot, resting = asyncio.run(go())
    assert len(resting) == 1 and resting[0].status == "canceled" and resting[0].filled == 0
    assert bot.pending is None and bot.trade is None and sim.engine.position is None
    orders = ledger.orders(rid)
    assert list(orders.type) == ["limit"] and list(orders.status) == ["canceled"]  # no market fallback while paused
    assert "limit_unfilled" not in set(ledger.risk_events(rid).event)
