"""Leverage per trade, live (issue 10, item 3): ``leverage_mode = "adaptive"`` on the local Bitget simulator
with the real ccxt client, ema-cross on 300 real SOLUSDT 5m candles, ``leverage`` 10, floor 2, ATR target
0.3 % of the price.

* the live bot makes exactly the paper bot's trades (the kernel's), leverage and margin included, with
  at least two different leverages;
* on the venue: before each entry order, a ``set-leverage`` request set that trade's leverage (none when it
  was already set), and the venue's position held that leverage: its initial margin is qty x fill / leverage;
* a venue that refuses the leverage refuses the entry with it: no order is sent and a ``leverage_refused``
  risk event records the leverage;
* a restart with an open position keeps the position's leverage (no ``set-leverage`` at start-up).
"""

from __future__ import annotations

import asyncio
import json

import pandas as pd
import pytest

from perpbot.bot.paper import PaperBot
from perpbot.storage.ledger import Ledger
from perpbot.types import TRADE_COLUMNS
from _live_helpers import SYM, make_bot, ms, paper_then_live, script, settings, step
from _live_fixtures import _quiet, data, ledger, sim  # noqa: F401  (fixtures)

N_ROWS, START = 2400, 2000
ADAPTIVE = dict(leverage=10, leverage_mode="adaptive", leverage_min=2, leverage_target_atr=0.3)


def _private_posts(sim, tail: str) -> list[dict]:
    return [r for r in sim.requests if r["method"] == "POST" and r["path"].endswith(tail)]


def test_each_live_entry_sets_its_leverage_on_the_venue(sim, tmp_path, ledger, data):
    n = 300
    s = settings(sim, tmp_path, **ADAPTIVE)
    expect, rid, offset = paper_then_live(sim, s, ledger, data, START, n)
    want = expect.trades.copy()
    want["entry_bar"] += offset
    want["exit_bar"] += offset
    got = ledger.trades(rid)
    assert len(want) >= 5 and want.leverage.nunique() >= 2 and want.leverage.min() >= 2
    cols = [c for c in TRADE_COLUMNS if c not in ("trade_id", "liquidation_price", "exit_time")]
    pd.testing.assert_frame_equal(got[cols].reset_index(drop=True), want[cols].reset_index(drop=True),
                                  check_dtype=False, rtol=1e-9, atol=1e-9)
    # the venue: the leverage in force when each entry order arrived is that trade's
    orders = ledger.orders(rid)
    entry_cids = list(orders[(orders.reason == "entry") & orders.exchange_order_id.notna()].client_order_id)
    in_force, seen, set_calls = 10, [], 0
    for r in sim.requests:
        if r["method"] != "POST":
            continue
        body = json.loads(r["body"] or "{}")
        if r["path"].endswith("account/set-leverage"):
            in_force, set_calls = int(body["leverage"]), set_calls + 1
        elif r["path"].endswith("order/place-order") and body.get("clientOid") in entry_cids:
            seen.append(in_force)
    assert seen == [int(x) for x in want.leverage]
    changes = sum(a != b for a, b in zip([10] + seen[:-1], seen))
    assert set_calls == 1 + changes  # start-up (10x) + one call per change, none when already set
    # the venue's position held it: its initial margin (snapshots written after each fill) = qty x fill / leverage
    pos = ledger.positions(rid)
    opened = pos[pos.qty.abs() > 0].drop_duplicates("entry_price")
    for t in want.itertuples():
        row = opened[opened.entry_price == t.entry_price]
        assert len(row) == 1, t.trade_id
        assert float(row.margin.iloc[0]) == pytest.approx(t.qty * t.entry_price / t.leverage, rel=1e-9)


def test_a_refused_leverage_refuses_the_entry(sim, tmp_path, ledger, data):
    candles, _, _ = data
    # ATR target so small that every entry asks for the floor: 2x, which the venue refuses (max 1x here)
    s = settings(sim, tmp_path, leverage=10, leverage_mode="adaptive", leverage_min=2, leverage_target_atr=0.0001)
    rid = ledger.start_run("live", "ema-cross", SYM, "5m")

    async def go():
        bot = await make_bot(sim, s, ledger, rid)
        try:
            script(bot, {ms(candles, START): 1})  # start-up has set 10x; now the venue allows 1x only
            sim.engine.max_lever = 1
            await step(sim, bot, 3)
            bot.flush()
            return bot
        finally:
            await bot.ex.close()

    bot = asyncio.run(go())
    assert bot.trade is None and bot.pending is None
    assert not _private_posts(sim, "order/place-order")
    ev = ledger.risk_events(rid)
    refused = ev[ev.event == "leverage_refused"]
    assert list(refused.value) == [2.0]
    assert ledger.orders(rid).empty


def test_a_restart_keeps_the_open_positions_leverage(sim, tmp_path, ledger, data):
    candles, _, _ = data
    s = settings(sim, tmp_path, leverage=10, leverage_mode="adaptive", leverage_min=2, leverage_target_atr=0.0001)
    rid = ledger.start_run("live", "ema-cross", SYM, "5m")

    async def first():
        bot = await make_bot(sim, s, ledger, rid)
        try:
            script(bot, {ms(candles, START): 1})
            await step(sim, bot, 2)  # the signal, then the fill at the next open: a 2x long
            bot.flush()
            return bot.trade
        finally:
            await bot.ex.close()

    trade = asyncio.run(first())
    assert trade is not None and trade.leverage == 2 and sim.engine.position.leverage == 2
    before = len(_private_posts(sim, "account/set-leverage"))

    async def second():
        bot = await make_bot(sim, s, ledger, rid, resume=True)
        try:
            return bot.ex.leverage, bot.trade
        finally:
            await bot.ex.close()

    lev, adopted = asyncio.run(second())
    assert lev == 2 and adopted is not None and adopted.leverage == 2
    assert len(_private_posts(sim, "account/set-leverage")) == before  # nothing changed at start-up
    assert sim.engine.position.leverage == 2 and sim.engine.leverage == 2
