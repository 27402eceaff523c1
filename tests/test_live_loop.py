"""The live loop (LiveBot) against the local Bitget simulator, with the real ccxt.pro client.

* parity: the live bot trading the ema-cross baseline through the simulator makes exactly the
  trades the paper bot (SimulatedExchange, the backtester's loop) makes on the same real candles
  with the same window, settings and rules: entry/exit bars and prices, qty, TP/SL levels, exit
  reasons, fees, funding, PnL and cooldown vetoes;
* a partial fill: the rest is cancelled, the trade and the ledger take the filled size and the
  venue-side stop is re-placed for it;
* a process killed after sending an entry and before recording the answer: a new bot resumes
  the run, settles the order, adopts the position with its stop, sends nothing twice;
* a dropped websocket: the feed reconnects, the gap is back-filled and every candle is
  processed exactly once, in order;
* pause / resume / force-exit; daily-loss and drawdown halts; ``perpbot status``.
"""

from __future__ import annotations

import asyncio
import math
import time

import pandas as pd
import pytest

from perpbot.bot.control import BotControl
from perpbot.bot.events import EventBus
from perpbot.bot.live_risk import LiveRisk, levels, live_config
from perpbot.bot.paper import PaperBot
from perpbot.cli.live import render_status, status_report
from perpbot.config import load_settings
from perpbot.exchange.feed import CandleFeed
from perpbot.sim import kernel as K
from perpbot.exchange.ccxt_adapter import make_exchange
from perpbot.storage.ledger import Ledger
from perpbot.types import TRADE_COLUMNS
from _live_helpers import SYM, candle, make_bot, ms, script, settings, step, subscribed, until
from _live_fixtures import _quiet, data, ledger, sim  # noqa: F401  (fixtures)

N_ROWS, START = 2400, 2000


def trades_of(ledger, rid: int) -> pd.DataFrame:
    return ledger.trades(rid)


# ---- parity with the paper exchange ---------------------------------------------------------------
def test_live_bot_trades_exactly_like_the_paper_bot(sim, tmp_path, ledger, data):
    candles, funding, mark = data
    n = 300
    s = settings(sim, tmp_path)
    rid = ledger.start_run("live", "ema-cross", SYM, "5m")
    paper = PaperBot(s, "ema-cross", funding=funding, mark=mark)
    for row in candles.iloc[START - 1000:START].itertuples(index=False):  # the same window as the live bot
        paper.signals.window.append(tuple(row))
    for row in candles.iloc[START:START + n].itertuples(index=False):
        paper.on_candle(row.timestamp, row.open, row.high, row.low, row.close, row.volume)
    expect = paper.exchange.result()

    async def go():
        bot = await make_bot(sim, s, ledger, rid, flush_every=50)
        try:
            await step(sim, bot, n)
            bot.flush()
            return bot
        finally:
            await bot.ex.close()

    bot = run(go())
    offset = ms(candles, START) // 300_000  # paper bars count from START; live bars are open ms // 5 min
    got = trades_of(ledger, rid)
    want = expect.trades.copy()
    want["entry_bar"] += offset
    want["exit_bar"] += offset
    assert len(want) >= 5 and {"take_profit", "stop_loss"} <= set(want.exit_reason)
    assert (want.funding != 0).any()  # one trade held through a funding time
    cols = [c for c in TRADE_COLUMNS if c not in ("trade_id", "liquidation_price", "exit_time")]
    pd.testing.assert_frame_equal(got[cols].reset_index(drop=True), want[cols].reset_index(drop=True),
                                  check_dtype=False, rtol=1e-9, atol=1e-9)
    # the paper trade's exit time is its exit candle's open; live records the fill time inside that candle
    assert list(got.exit_time.dt.floor("5min")) == list(want.exit_time)
    # the same cooldown vetoes, at the same bars
    ev = ledger.risk_events(rid)
    cool = ev[ev.event == "cooldown"]
    p_cool = expect.risk_events[expect.risk_events.event == "cooldown"]
    assert len(cool) >= 3 and list(cool.bar + 1) == list(p_cool.bar + offset)
    assert list(cool.value) == list(p_cool.value + offset)
    # ledger: each trade's entry order filled at the entry price; its TP or SL "triggered"
    orders = ledger.orders(rid)
    mine = orders[orders.exchange_order_id.notna()]
    entries = mine[mine.reason == "entry"]
    assert list(entries.status) == ["filled"] * len(want) and list(entries.qty) == list(want.qty)
    fills = ledger.fills(rid).set_index("order_id")
    assert list(fills.loc[entries.id, "price"]) == list(want.entry_price)
    trig = mine[mine.status == "triggered"]
    assert list(trig.reason) == list(want.exit_reason) and list(trig.trade_no) == list(got.trade_id)
    assert mine.status.isin(["open", "new"]).sum() == 2 * (bot.trade is not None) + (bot.pending is not None)
    # equity and health
    eq = ledger.equity(rid)
    assert len(eq) == n and eq.iloc[-1] == pytest.approx(expect.equity.iloc[-1], abs=1e-6)
    rep = status_report(s, ledger, rid, now=pd.Timestamp(ms(candles, START + n), unit="ms", tz="UTC"))
    assert rep["last_cycle"]["bar"] == offset + n - 1 and rep["last_cycle"]["age_s"] == 0
    assert rep["latency"]["n"] == len(entries) and rep["reconcile"] == "clean" and rep["errors"] == 0
    assert rep["equity"] == pytest.approx(expect.equity.iloc[-1], abs=1e-6)
    assert "live run" in render_status(rep).title


def run(coro):
    return asyncio.run(coro)


# ---- partial fill ------------------------------------------------------------------------------------
def test_partial_fill_adjusts_the_trade_and_its_stop(sim, tmp_path, ledger, data):
    candles = data[0]
    s = settings(sim, tmp_path)
    rid = ledger.start_run("live", "ema-cross", SYM, "5m")

    async def go():
        bot = await make_bot(sim, s, ledger, rid)
        script(bot, {ms(candles, START): 1})
        try:
            sim.faults.partial_fill(0.4)
            (first,) = await step(sim, bot)           # entry sent at the close of START
            await step(sim, bot)                      # 40 % filled at the open of START + 1
            state = sim.state
            await step(sim, bot)                      # the rest would have filled here
            closed = 0
            while bot.trade is not None and closed < 150:
                await step(sim, bot)
                closed += 1
            return bot, first, state
        finally:
            await bot.ex.close()

    bot, first, state = run(go())
    entry = ledger.orders(rid).set_index("client_order_id").loc[first["orders"][0]]
    ordered = entry.qty
    filled = math.floor(ordered * 0.4 / 0.1 + 1e-9) * 0.1
    price = float(candles.open.iloc[START + 1])
    assert entry.status == "partially_filled" and 0 < filled < ordered
    cfg = live_config(s, "ema-cross")
    sl, tp, _ = levels(cfg, 1, price, math.nan)
    assert state["position"]["qty"] == pytest.approx(filled) and state["position"]["entry_price"] == price
    plans = {p["planType"]: float(p["triggerPrice"]) for p in state["plans"] if p["planStatus"] == "live"}
    assert plans == {"pos_loss": sl, "pos_profit": tp}  # re-placed from the fill (the presets were from the close)
    order = next(o for o in state["orders"] if o["clientOid"] == first["orders"][0])
    assert order["state"] == "canceled" and float(order["baseVolume"]) == pytest.approx(filled)
    fill = ledger.fills(rid).iloc[0]
    assert fill.qty == pytest.approx(filled) and fill.price == price
    snap = ledger.positions(rid).iloc[0]
    assert (snap.side, snap.qty, snap.stop_loss, snap.take_profit) == ("long", pytest.approx(filled), sl, tp)
    trade = trades_of(ledger, rid).iloc[0]  # the trade that followed has the filled size
    assert trade.qty == pytest.approx(filled) and trade.exit_reason in ("stop_loss", "take_profit")
    assert trade.exit_price == (sl if trade.exit_reason == "stop_loss" else tp)


# ---- killed between sending and recording --------------------------------------------------------------
def test_restart_after_a_kill_between_send_and_record(sim, tmp_path, ledger, data):
    candles = data[0]
    s = settings(sim, tmp_path)
    rid = ledger.start_run("live", "ema-cross", SYM, "5m")

    async def killed():
        bot = await make_bot(sim, s, ledger, rid)
        script(bot, {ms(candles, START): -1})
        bot.ex.ex.timeout = 60_000
        sim.faults.timeout_after_accept(delay=3.0)  # the venue takes the order, then the answer is slow
        task = asyncio.ensure_future(bot.on_candle(candle(sim.advance()[0])))
        t0 = time.monotonic()
        while not any(r["path"].endswith("place-order") for r in sim.requests):
            assert time.monotonic() - t0 < 10
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        task.cancel()  # the process dies: the ledger never hears back
        with pytest.raises(asyncio.CancelledError):
            await task
        await bot.ex.close()

    run(killed())
    (row,) = ledger.orders(rid).itertuples()
    assert row.status == "new" and pd.isna(row.exchange_order_id)
    sim.advance()  # the entry fills at the next open, its preset stop and take-profit become live

    async def restart():
        bot = await make_bot(sim, s, ledger, rid, resume=True)
        try:
            report = bot.report
            for _ in range(200):
                if bot.trade is None:
                    break
                await step(sim, bot)
            return bot, report
        finally:
            await bot.ex.close()

    bot, report = run(restart())
    assert report.resolved == [{"cid": row.client_order_id, "was": "new", "now": "filled"}]
    assert report.adopted["side"] == -1 and report.has_stop and report.stop_placed is None and not report.cancelled
    entries = [o for o in sim.state["orders"] if o["reduceOnly"] == "NO"]
    assert [o["clientOid"] for o in entries] == [row.client_order_id]  # sent once, never again
    entry = float(candles.open.iloc[START + 1])
    trade = trades_of(ledger, rid).iloc[0]
    assert (trade.side, trade.entry_price, trade.qty) == (-1, entry, float(entries[0]["size"]))
    assert trade.exit_reason in ("stop_loss", "take_profit")
    assert trade.exit_price == pytest.approx(float(entries[0]["presetStopLossPrice" if trade.exit_reason == "stop_loss"
                                                               else "presetStopSurplusPrice"]))
    assert ledger.orders(rid).set_index("client_order_id").loc[row.client_order_id, "status"] == "filled"
    assert sim.state["position"] is None and [p for p in sim.state["plans"] if p["planStatus"] == "live"] == []


# ---- websocket drop: every candle once ----------------------------------------------------------------
def test_websocket_drop_every_candle_processed_once(sim, tmp_path, ledger, data):
    candles = data[0]
    s = settings(sim, tmp_path)
    rid = ledger.start_run("live", "ema-cross", SYM, "5m")

    async def go():
        bot = await make_bot(sim, s, ledger, rid)
        feed = CandleFeed(bot.ex.ex, SYM, "5m", last_timestamp=bot.last_ts, clock=lambda: sim.market.now_ms,
                          reconnect_base=0.05, poll_interval=0.05)
        task = asyncio.ensure_future(bot.run(feed))
        try:
            await until(lambda: subscribed(sim), "subscription")
            for i in range(3):
                await asyncio.to_thread(sim.advance)
                await until(lambda: bot.cycles == i + 1, f"cycle {i + 1}")
            old = set(sim.hub.conns)
            sim.faults.drop_websocket("public")
            await asyncio.to_thread(sim.advance, 3)  # closed while disconnected
            await until(lambda: bot.cycles == 6, "the outage's candles")
            await until(lambda: any(c not in old for c in sim.hub.conns) and subscribed(sim), "resubscription")
            await asyncio.to_thread(sim.advance)
            await until(lambda: bot.cycles == 7, "cycle 7")
        finally:
            feed.stop()
            await asyncio.wait_for(task, 10)
            await bot.ex.close()
        return feed

    feed = run(go())
    ev = ledger.risk_events(rid)
    bars = list(ev[ev.event == "cycle_latency"].bar)
    assert bars == [ms(candles, i) // 300_000 for i in range(START, START + 7)]  # in order, none missing, none twice
    # The reconnect itself is proven above (a new connection resubscribed). Whether the dropped socket
    # surfaces as one failed watch (reconnects == 1) or ccxt reopens it inside the next watch call
    # (reconnects == 0) depends on where the feed was when the socket closed, so both are accepted.
    assert feed.reconnects <= 1 and feed.delivered_by["backfill"] >= 1 and sum(feed.delivered_by.values()) == 7


# ---- operator control ----------------------------------------------------------------------------------
def test_pause_resume_and_force_exit(sim, tmp_path, ledger, data):
    candles = data[0]
    s = settings(sim, tmp_path)
    rid = ledger.start_run("live", "ema-cross", SYM, "5m")
    bus = EventBus(history=1000)
    ctl = BotControl(bus, mode="live")

    async def go():
        bot = await make_bot(sim, s, ledger, rid, control=ctl)
        script(bot, {ms(candles, START): 1, ms(candles, START + 1): 1})
        try:
            ctl.pause(by="test")
            paused = await step(sim, bot)       # +1 while paused: nothing sent
            ctl.resume(by="test")
            sent = await step(sim, bot)         # +1: entry
            await step(sim, bot)                # filled
            ctl.request_force_exit(by="test")
            forced = await step(sim, bot)       # reduce-only exit at market
            await step(sim, bot)
            return paused, sent, forced
        finally:
            await bot.ex.close()

    paused, sent, forced = run(go())
    assert paused[0]["orders"] == [] and len(sent[0]["orders"]) == 1 and len(forced[0]["orders"]) == 1
    trade = trades_of(ledger, rid).iloc[0]
    assert trade.exit_reason == "manual" and trade.entry_price == float(candles.open.iloc[START + 2])
    assert trade.exit_price == float(candles.open.iloc[START + 4])  # filled at the next open
    exit_order = ledger.orders(rid).set_index("client_order_id").loc[forced[0]["orders"][0]]
    assert exit_order.reduce_only and exit_order.status == "filled" and exit_order.reason == "manual"
    kinds = [e.kind for e in bus.recent(1000)]
    assert {"paused", "resumed", "force_exit", "entry", "exit"} <= set(kinds) and kinds.count("cycle") == 5
    assert [e.data["reason"] for e in bus.recent(1000, kind="exit")] == ["manual"]
    assert ctl.status()["cycles"] == 5 and ctl.status()["position"] is None


# ---- risk halts (the kernel's rules) --------------------------------------------------------------------
def test_live_risk_halts_and_cooldown_follow_the_kernel(tmp_path):
    s = load_settings(None, output_dir=tmp_path, max_daily_loss=5.0, max_drawdown=20.0, cooldown_bars=6, slippage=0.0)
    risk = LiveRisk(live_config(s, "ema-cross"), 300_000)
    day = 1_744_588_800_000  # 2025-04-14 00:00 UTC
    assert risk.on_close(day, 1000.0) == []                            # the day starts at 1000
    assert risk.on_close(day + 300_000, 1100.0) == []                  # new peak
    assert risk.on_close(day + 600_000, 951.0) == []                   # -4.9 % of the day: no halt
    assert risk.on_close(day + 900_000, 949.0) == [("daily_loss_halt", pytest.approx(949 / 1000 - 1))]
    assert risk.plan_entry(0, 1, 127.0, 1.0, 949.0) == ("halted", float(K.EV_DAILY_LOSS_HALT))
    # the candle closing at midnight: the next one opens on a new UTC day, which starts at 950
    assert risk.on_close(day + 86_400_000 - 300_000, 950.0) == []
    assert not risk.halt_day and risk.day_start == 950.0 and risk.plan_entry(0, 1, 127.0, 1.0, 950.0).qty > 0
    # 870 is -20.9 % from the 1100 peak (halted for the run) and -8.4 % of the day
    assert risk.on_close(day + 86_400_000, 870.0) == [("max_drawdown_halt", pytest.approx(870 / 1100 - 1)),
                                                      ("daily_loss_halt", pytest.approx(870 / 950 - 1))]
    assert risk.plan_entry(0, 1, 127.0, 1.0, 870.0) == ("halted", float(K.EV_MAX_DD_HALT))
    assert risk.on_close(2 * 86_400_000 + day, 1200.0) == [] and risk.halt_dd and not risk.halt_day
    fresh = LiveRisk(live_config(s, "ema-cross"), 300_000)
    fresh.on_trade_closed(100, -1.0)
    assert fresh.plan_entry(106, 1, 127.0, 1.0, 1000.0) == ("cooldown", 106.0)
    plan = fresh.plan_entry(107, 1, 127.0, 1.0, 1000.0)
    # fixed fraction: 1000 x 1 % / (1.27 + 2 x 127 x 0.0006) floored to 0.1, levels at 1 % / 2 %
    assert plan.qty == math.floor(10 / (1.27 + 2 * 127 * 0.0006) / 0.1) * 0.1
    assert (plan.stop_loss, plan.take_profit) == (125.73, 129.54)
    assert fresh.plan_entry(107, 1, 127.0, 1.0, 0.0) == ("no_equity", 0.0)
    assert fresh.plan_entry(107, 1, 127.0, 1.0, 5.0) == ("below_min_size", 0.0)
    with pytest.raises(ValueError, match="needs a stop-loss"):
        live_config(s, "buy-and-hold")


# ---- the command line ---------------------------------------------------------------------------------
def test_run_live_demo_end_to_end_and_the_cli(sim, tmp_path, data):
    import threading

    import typer
    from rich.console import Console
    from typer.testing import CliRunner

    from perpbot.cli.live import live_run, run_live, status

    candles = data[0]
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    s = settings(sim, tmp_path, ledger_url=url)
    ex = make_exchange(s, config={"enableRateLimit": False})
    sim.point(ex)
    handles: dict = {}
    out = Console(record=True, width=200)

    def on_start(bot, feed):
        handles.update(bot=bot, feed=feed, loop=asyncio.get_running_loop())

    def target():
        handles["run_id"] = run_live(s, real_money=False, strategy="ema-cross", out=out, exchange=ex, on_start=on_start,
                                     feed_options=dict(clock=lambda: sim.market.now_ms, reconnect_base=0.05,
                                                       poll_interval=0.05))

    th = threading.Thread(target=target)
    th.start()
    try:
        t0 = time.monotonic()
        while "feed" not in handles or not any(a.get("channel", "").startswith("candle") for c in list(sim.hub.conns)
                                               for a in list(c.subs.values())):
            assert time.monotonic() - t0 < 20 and th.is_alive()
            time.sleep(0.01)
        for i in range(3):
            sim.advance()
            while handles["bot"].cycles < i + 1:
                assert time.monotonic() - t0 < 20
                time.sleep(0.01)
    finally:
        if "loop" in handles:
            handles["loop"].call_soon_threadsafe(handles["feed"].stop)
        th.join(20)
    assert not th.is_alive()
    text = out.export_text()
    assert "DEMO" in text and "no real money is used" in text and "reconciled: clean" in text
    ledger = Ledger(url)
    run_ = ledger.get_run(handles["run_id"])
    assert (run_["kind"], run_["status"], run_["note"]) == ("live", "finished", "DEMO")
    ev = ledger.risk_events(handles["run_id"])
    assert list(ev[ev.event == "cycle_latency"].bar) == [ms(candles, i) // 300_000 for i in range(START, START + 3)]
    # every futures request carried Bitget's demo header (ccxt leaves it off the S*-FUTURES market
    # listings and the public server time)
    mix = [r for r in sim.requests if "/mix/" in r["path"] and "productType=S" not in r["query"]]
    assert len(mix) > 20 and all(r["demo"] for r in mix)
    ledger.close()

    app = typer.Typer()
    app.command("status")(status)
    app.command("live")(live_run)
    env = {"PERPBOT_LEDGER_URL": url, "PERPBOT_OUTPUT_DIR": str(tmp_path), "PERPBOT_CONFIRM_REAL_MONEY": ""}
    res = CliRunner().invoke(app, ["status", "--no-exchange"], env=env)
    assert res.exit_code == 0, res.output
    assert f"live run {handles['run_id']}" in res.output and "position" in res.output and "last cycle" in res.output
    res = CliRunner().invoke(app, ["live", "--real-money", "--strategy", "ema-cross"], env=env)
    assert res.exit_code == 1 and "PERPBOT_CONFIRM_REAL_MONEY=yes" in res.output
