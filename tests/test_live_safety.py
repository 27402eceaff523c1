"""Money-safety rules of the live loop, against the local Bitget simulator with the real ccxt client.

* stale candles: after an outage the feed catches up the missed candles; they update the window
  and run exits, but no entry is sent for a candle that closed more than ``max_entry_lag`` bars
  ago (a ``stale_candle`` veto with the lag in bars); entries resume on a fresh candle;
* runs are tied to their trading mode and account: a real-money start never resumes (nor looks
  up the orders of) a crashed demo run, nor a demo start a real one; the same mode resumes;
* clock skew appearing mid-run: the refused request re-syncs the clock and the cycle goes
  through; when the re-sync cannot help, N cycles in a row halt new entries with a risk event and
  an ``error`` event, and N good cycles lift the halt.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from perpbot.bot.control import BotControl
from perpbot.bot.events import EventBus
from perpbot.exchange.feed import CandleFeed
from perpbot.exchange.ccxt_adapter import make_exchange
from perpbot.exchange.reconcile import account_identity
from perpbot.storage.ledger import Ledger
from perpbot.types import RiskEvent
from _live_helpers import SYM, make_bot, ms, script, settings, step, subscribed, until
from _live_fixtures import _quiet, data, ledger, sim  # noqa: F401  (fixtures)

N_ROWS, START = 2300, 2000
BAR = 300_000
CONFIRM = {"PERPBOT_CONFIRM_REAL_MONEY": "yes"}


def run(coro):
    return asyncio.run(coro)


def events_of(ledger, rid, name):
    ev = ledger.risk_events(rid)
    return ev[ev.event == name]


# ---- stale candles after an outage ---------------------------------------------------------------
def test_no_entry_on_stale_candles_after_an_outage_then_entries_resume(sim, tmp_path, ledger, data):
    candles = data[0]
    s = settings(sim, tmp_path, cooldown_bars=0)  # max_entry_lag = 0.5 bar (default)
    rid = ledger.start_run("live", "ema-cross", SYM, "5m")
    # outage 1 (flat): +1 on the 4 missed candles, closed 3, 2, 1 and 0 bars before the bot is back
    a = [START + i for i in range(4)]
    # live again: the entry of a[3] fills at the open of b0; outage 2 (long): -1 on b1 (2 bars late)
    b = [START + 4 + i for i in range(4)]
    calls = {ms(candles, i): 1 for i in a} | {ms(candles, b[1]): -1}

    async def session(bot, live_before: int, missed: int):
        """The feed delivers ``live_before`` candles live, stops (the outage) while ``missed``
        candles close, then a new feed catches them up (the reconnect)."""
        for k in range(2):
            feed = CandleFeed(bot.ex.ex, SYM, "5m", last_timestamp=bot.last_ts, clock=lambda: sim.market.now_ms,
                              reconnect_base=0.05, poll_interval=0.05)
            task = asyncio.ensure_future(bot.run(feed))
            try:
                await until(lambda: subscribed(sim), "subscription")
                target = bot.cycles + (missed if k else 0)
                await until(lambda: bot.cycles == target, "the missed candles")
                for _ in range(live_before if k == 0 else 0):
                    n = bot.cycles
                    await asyncio.to_thread(sim.advance)
                    await until(lambda: bot.cycles == n + 1, "a live candle")
            finally:
                feed.stop()
                await asyncio.wait_for(task, 10)
            if k == 0:
                await asyncio.to_thread(sim.advance, missed)  # closed while the bot is offline

    async def go():
        bot = await make_bot(sim, s, ledger, rid, clock=None)  # the feed's exchange clock
        script(bot, calls)
        try:
            await session(bot, 0, 4)            # outage 1: a[0..3]
            first = list(bot.signals.window)[-4:]
            pending_after_a = bot.pending
            await session(bot, 1, 3)            # b0 live (the entry fills), outage 2: b1..b3
            await step(sim, bot)                # b4 live: the exit of b1 filled at its open
            return bot, first, pending_after_a
        finally:
            await bot.ex.close()

    bot, first, pending_after_a = run(go())
    # vetoes: the stale +1 calls of outage 1 and the stale reversal of outage 2, with their lag in bars
    stale = events_of(ledger, rid, "stale_candle")
    assert list(stale.bar) == [ms(candles, i) // BAR for i in (a[0], a[1], a[2], b[1])]
    assert list(stale.value) == [3.0, 2.0, 1.0, 2.0]
    assert [json.loads(d) for d in stale.detail][0] == {"close_lag_ms": 3 * BAR, "max_entry_lag": 0.5}
    # orders: one entry, for the fresh a[3] (the last missed candle closed just now), and the exit
    # of the stale -1 call; no short ever
    orders = ledger.orders(rid)
    orders = orders[orders.type == "market"]  # (the entry's venue-side stop-loss / take-profit aside)
    assert pending_after_a is not None and pending_after_a.bar == ms(candles, a[3]) // BAR
    assert list(orders.reason) == ["entry", "signal"] and list(orders.side) == ["buy", "sell"]
    assert [o.client_order_id.split("-")[1] for o in orders.itertuples()] == [
        str(ms(candles, a[3]) // BAR), str(ms(candles, b[1]) // BAR)]
    assert list(orders.reduce_only) == [False, True]
    trade = ledger.trades(rid).iloc[0]
    assert (trade.side, trade.exit_reason) == (1, "signal")
    assert trade.entry_price == float(candles.open.iloc[b[0]]) and trade.exit_price == float(candles.open.iloc[START + 8])
    assert bot.trade is None and bot.pending is None and sim.state["position"] is None
    # the missed candles joined the window, in order, and each ran a cycle (lag on the exchange clock)
    assert [r[0] for r in first] == [candles.timestamp.iloc[i] for i in a]
    cycles = events_of(ledger, rid, "cycle_latency")
    assert list(cycles.bar) == [ms(candles, i) // BAR for i in a + b + [START + 8]]
    lags = [json.loads(d)["close_lag_ms"] for d in cycles.detail]
    assert lags == [3 * BAR, 2 * BAR, BAR, 0.0, 0.0, 2 * BAR, BAR, 0.0, 0.0]


# ---- demo and real runs never mix ---------------------------------------------------------------------
def client(sim, s, real_money: bool):
    ex = make_exchange(s, real_money=real_money, environ=CONFIRM, config={"enableRateLimit": False})
    sim.point(ex)
    return ex


@pytest.mark.parametrize("crashed, restarted", [("demo", "real"), ("real", "demo"), ("demo", "demo"), ("real", "real")])
def test_a_restart_resumes_only_a_crashed_run_of_its_own_mode(sim, tmp_path, data, crashed, restarted):
    from perpbot.cli.live import run_live, status_report
    from rich.console import Console

    url = f"sqlite:///{tmp_path / 'modes.db'}"
    s = settings(sim, tmp_path, ledger_url=url)
    ledger = Ledger(url)
    # a run that died after recording an entry and before sending it (as run_live records it)
    old = ledger.start_run("live", "ema-cross", SYM, "5m", exchange="bitget",
                           config={**s.public_dict(), "live_account": account_identity(client(sim, s, crashed == "real"))},
                           note="REAL MONEY" if crashed == "real" else "DEMO")
    cid = f"pb{old}-{ms(data[0], START - 1) // BAR}-0"
    ledger.record_order(old, client_order_id=cid, time=data[0].timestamp.iloc[START - 1], side="buy",
                        type="market", qty=1.0, status="new", reason="entry", trade_no=1)
    ledger.close()
    real = restarted == "real"
    out = Console(record=True, width=200)
    rid = run_live(s, real_money=real, strategy="ema-cross", out=out, environ=CONFIRM, exchange=client(sim, s, real),
                   on_start=lambda bot, feed: feed.stop(), feed_options={"clock": lambda: sim.market.now_ms})
    ledger = Ledger(url)
    try:
        old_run, new_run, orders = ledger.get_run(old), ledger.get_run(rid), ledger.orders(old)
        shown = {m: status_report(s, ledger, mode=m)["run"]["id"] for m in {crashed, restarted}}
    finally:
        ledger.close()
    assert shown == {crashed: old, restarted: rid}  # perpbot status [--real-money]: the run of its mode
    asked = [r for r in sim.requests if cid in r["query"] + r["body"]]
    if crashed == restarted:  # the same account: resumed, its entry looked up (never sent: failed)
        assert rid == old and "resumed after an unfinished run" in out.export_text()
        assert orders.set_index("client_order_id").loc[cid, "status"] == "failed"
        assert asked and all(r["demo"] == (not real) for r in asked)
        return
    assert rid != old and "(new)" in out.export_text()
    assert new_run["note"] == ("REAL MONEY" if real else "DEMO")
    assert new_run["config"]["live_account"]["trading_mode"] == restarted
    # the crashed run is untouched: still running, its order not looked up on the other account
    assert old_run["status"] == "running" and old_run["note"] == ("REAL MONEY" if crashed == "real" else "DEMO")
    assert orders.set_index("client_order_id").loc[cid, "status"] == "new"
    assert asked == []
    # every private request of the restart went to the account of its own mode (paptrading header)
    private = [r for r in sim.requests if "/mix/" in r["path"] and "productType=S" not in r["query"]]
    assert private and all(r["demo"] == (not real) for r in private)


def test_run_identity_is_the_mode_and_a_key_fingerprint_never_the_key(sim, tmp_path):
    s = settings(sim, tmp_path)
    demo, real = account_identity(client(sim, s, False)), account_identity(client(sim, s, True))
    other = account_identity(client(sim, settings(sim, tmp_path, api_key="another-key"), False))
    assert (demo["trading_mode"], real["trading_mode"]) == ("demo", "real")
    assert demo["account"] == real["account"] != other["account"] and len(demo["account"]) == 16
    assert sim.api_key not in json.dumps([demo, real, other])


# ---- clock skew ----------------------------------------------------------------------------------
def test_mid_run_clock_skew_is_resynced_and_the_cycle_goes_through(sim, tmp_path, ledger, data):
    candles = data[0]
    s = settings(sim, tmp_path)
    rid = ledger.start_run("live", "ema-cross", SYM, "5m")
    bus = EventBus(history=1000)

    async def go():
        bot = await make_bot(sim, s, ledger, rid, control=BotControl(bus, mode="live"))
        script(bot, {ms(candles, START + 2): 1})
        try:
            before = await step(sim, bot, 2)
            n0 = len(sim.requests)
            sim.faults.clock_skew(120_000)  # the machine's clock falls 2 minutes behind the venue's
            skewed = await step(sim, bot, 2)  # the entry is sent in the first skewed cycle
            return bot, before, skewed, sim.requests[n0:]
        finally:
            await bot.ex.close()

    bot, before, skewed, requests = run(go())
    assert all(c is not None for c in before + skewed)
    assert len(skewed[0]["orders"]) == 1 and skewed[0]["bar"] == ms(candles, START + 2) // BAR
    # the first signed requests after the jump were refused (40008), then one re-sync, then all accepted
    sync = [i for i, r in enumerate(requests) if r["path"] == "/api/v2/public/time"]
    assert len(sync) == 1 and requests[0]["status"] == 400
    assert {r["status"] for r in requests[:sync[0]]} == {400} and {r["status"] for r in requests[sync[0]:]} == {200}
    assert bot.ex.clock_syncs == 1 and abs(bot.ex.ex.options["timeDifference"] + 120_000) < 2_000
    assert [e for e in bus.recent(1000) if e.kind == "error"] == [] and bot.control.status()["errors"] == 0
    entry = ledger.orders(rid).iloc[0]
    assert entry.client_order_id == skewed[0]["orders"][0] and entry.status == "filled"
    assert sim.state["position"]["qty"] == entry.qty
    assert len(events_of(ledger, rid, "clock_skew_halt")) == 0


def test_persistent_clock_skew_halts_entries_with_an_alert_then_lifts(sim, tmp_path, ledger, data):
    candles = data[0]
    s = settings(sim, tmp_path, clock_skew_halt_cycles=3)
    rid = ledger.start_run("live", "ema-cross", SYM, "5m")
    bus = EventBus(history=1000)
    calls = {ms(candles, START + i): 1 for i in range(10)}

    async def go():
        bot = await make_bot(sim, s, ledger, rid, control=BotControl(bus, mode="live"))
        script(bot, calls)
        try:
            sim.faults.clock_skew(-120_000)
            sim.faults.server_error("public/time", count=1000)  # the venue's time cannot be read: no re-sync
            failed = await step(sim, bot, 3)
            halted = len(events_of(ledger, rid, "clock_skew_halt"))
            sim.faults.clear()
            sim.faults.clock_skew(-120_000)  # still skewed, but the clock can be re-synced now
            after = await step(sim, bot, 3)
            return bot, failed, halted, after
        finally:
            await bot.ex.close()

    bot, failed, halted, after = run(go())
    assert failed == [None, None, None] and halted == 1
    halt = events_of(ledger, rid, "clock_skew_halt")
    assert list(halt.bar) == [ms(candles, START + 2) // BAR] and list(halt.value) == [3.0]
    assert json.loads(halt.detail.iloc[0])["cycles"] == 3
    errors = [e.data["message"] for e in bus.recent(1000) if e.kind == "error"]
    assert len(errors) == 4 and sum("clock skew" in m and "halted" in m for m in errors) == 1
    assert all("InvalidNonce" in m and "40008" in m for m in errors)
    # re-synced: the next cycles go through, the +1 calls vetoed as "halted" (code 8) until three
    # complete cycles in a row lift the halt; the third cycle sends the entry
    assert [c is not None for c in after] == [True, True, True]
    assert [len(c["orders"]) for c in after] == [0, 0, 1]
    vetoes = events_of(ledger, rid, "halted")
    assert list(vetoes.value) == [float(RiskEvent.CLOCK_SKEW_HALT)] * 2
    assert list(vetoes.bar) == [ms(candles, START + i) // BAR for i in (3, 4)]
    cleared = events_of(ledger, rid, "clock_skew_cleared")
    assert list(cleared.bar) == [ms(candles, START + 5) // BAR] and list(cleared.value) == [3.0]
    assert not bot.risk.halt_clock and bot.control.status()["clock_skew_halt"] is False
    assert bot.ex.clock_syncs == 1


def test_an_entry_filling_during_reconciliation_keeps_its_stops(sim, tmp_path, ledger, data):
    """The entry fills (and its preset stop-loss / take-profit become plan orders) after reconciliation read
    the account flat but before it read the plan orders: the plans are the new position's, not orphans.
    Before the fix both were cancelled and the position stood naked until the next cycle."""
    from perpbot.exchange.reconcile import reconcile

    candles = data[0]
    s = settings(sim, tmp_path)
    rid = ledger.start_run("live", "ema-cross", SYM, "5m")

    async def go():
        bot = await make_bot(sim, s, ledger, rid)
        try:
            script(bot, {ms(candles, START): 1})
            await step(sim, bot, 1)  # the market entry is sent; it fills at the next candle's open
            assert bot.pending is not None and sim.engine.position is None
            sim.faults.slow(0.6, "orders-plan-pending")
            task = asyncio.ensure_future(reconcile(bot.ex, ledger, rid, cfg=bot.cfg, scan_ledger=False))
            await until(lambda: any(f[0] == "slow" for f in sim.faults.fired), "the slow plan read")
            sim.advance()  # meanwhile: the fill, and its preset stop-loss / take-profit as plan orders
            return await task
        finally:
            await bot.ex.close()

    rep = asyncio.run(go())
    pos = sim.engine.position
    assert pos is not None and pos.side == 1
    live = sorted(p.plan_type for p in sim.engine.plans.values() if p.status == "live")
    assert live == ["pos_loss", "pos_profit"] and rep.cancelled == []
    assert "a position opened while reconciling" in " ".join(rep.warnings)
