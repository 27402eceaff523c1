"""The live node over two symbols on one account (issue 10, Done-when 1): ``perpbot run --mode live
--symbols SOL/USDT:USDT,BTC/USDT:USDT --api`` against the local Bitget simulator trading both symbols on
one wallet (real SOLUSDT 5m candles, real BTCUSDT 1m candles made 5m), with a local Telegram Bot API
server: entries and exits on both symbols, each notified on Telegram with its symbol and its own lot;
``/pause`` from Telegram stops new entries on both; the dashboard's force-exit closes both live positions
on the simulator; the WebSocket streams the node's events; ``/positions`` and the risk card are live; after an
outage no symbol enters on a stale candle."""

from __future__ import annotations

import asyncio
from contextlib import contextmanager
import secrets
import threading
import time

import httpx
import pytest

from perpbot.config import load_settings
from perpbot.devtools.bitget_sim import BitgetSim
from perpbot.exchange.ccxt_adapter import make_exchange
from fake_telegram import FakeTelegram
from _api_helpers import next_event, recv_json, ws
from _sim_fixtures import free_port, quiet_loggers, two_symbol_data, wait_until

CHAT = 778
TOKEN = "node-" + secrets.token_hex(16)
START = 1100
SOL, BTC = "SOL/USDT:USDT", "BTC/USDT:USDT"


def _until(cond, what: str, timeout: float = 30.0):
    return wait_until(cond, what, timeout, poll=0.05)


@pytest.fixture(scope="module")
def two_markets(sol5m_path, sol_funding_path, sol_mark8h_path, data_dir):
    """1300 SOLUSDT 5m candles and the BTCUSDT 5m candles of the same times (from its 1m file), with funding."""
    return two_symbol_data(sol5m_path, sol_funding_path, sol_mark8h_path, data_dir)


@contextmanager
def two_symbol_node(tmp_path, two_markets, **overrides):
    """The live node (``run_live(symbols=[SOL, BTC], api=True)``) on a simulator trading both on one wallet, a
    Telegram server attached; yields (sim, handles: bots, feeds, loop; run_ids once stopped, port, fake).
    Each symbol's loop decides SOL long / BTC short on the first candle it sees (and on every candle while
    ``handles["go"]``), else holds."""
    from rich.console import Console

    from perpbot.cli.live import run_live

    (sol, sol_funding, sol_mark), (btc, btc_funding) = two_markets
    port = free_port()
    sim = BitgetSim(candles=sol, funding=sol_funding, mark=sol_mark, start_bar=START, capital=1000.0,
                    tradable={"BTCUSDT": (btc, btc_funding)})
    sim.start()
    with quiet_loggers("ccxt", "aiohttp", "asyncio", "perpbot.live", "perpbot.bot", "httpx", "telegram"), \
            FakeTelegram() as fake:
        s = load_settings(None, **{**dict(
            api_key=sim.api_key, api_secret=sim.api_secret, api_passphrase=sim.passphrase, leverage=5,
            output_dir=tmp_path, warmup_bars=0, live_window=1000, stop_loss=1.0, take_profit=2.0, api_token=TOKEN,
            api_port=port, telegram_token="123:" + "x" * 30, telegram_chat_ids=[CHAT],
            telegram_base_url=fake.base_url, portfolio_corr_threshold=0.0, portfolio_max_total_margin=80.0,
            cooldown_bars=0), **overrides})
        ex = make_exchange(s, config={"enableRateLimit": False})
        sim.point(ex)
        handles: dict = {"port": port, "fake": fake}
        out = Console(record=True, width=200)

        def on_start(bots, feeds):
            handles.update(bots=bots, feeds=feeds, loop=asyncio.get_running_loop())
            for bot in bots:
                calls: dict = {}

                def decide(frame, calls=calls, side=1 if bot.settings.symbol == SOL else -1):
                    ts = int(frame["timestamp"].iloc[-1].value // 1_000_000)
                    calls.setdefault("first", ts)
                    return (side if ts == calls["first"] or handles.get("go") else 0), None

                bot.signals.decide = decide

        th = threading.Thread(target=lambda: handles.update(run_ids=run_live(
            s, real_money=False, strategy="ema-cross", out=out, exchange=ex, on_start=on_start, api=True,
            symbols=[SOL, BTC], feed_options=dict(clock=lambda: sim.market.now_ms, reconnect_base=0.05,
                                                  poll_interval=0.05, use_websocket=False))), daemon=True)
        th.start()
        _until(lambda: "bots" in handles or not th.is_alive(), "the node to start", 60)
        assert th.is_alive(), out.export_text()
        try:
            yield sim, handles
        finally:
            handles["loop"].call_soon_threadsafe(handles["feeds"].stop)
            th.join(60)
            sim.stop()
        assert not th.is_alive() and set(handles.get("run_ids", {})) == {SOL, BTC}


def advance(sim, handles) -> None:
    """Close the simulator's next candle and wait until both loops have finished their cycle of it."""
    before = [b.cycles for b in handles["bots"]]
    sim.advance()
    _until(lambda: all(b.cycles > n for b, n in zip(handles["bots"], before)), "both loops' cycles")


def entry_orders(engine) -> int:
    return sum(1 for o in engine.orders.values() if not o.reduce_only)


def test_live_node_over_two_symbols(tmp_path, two_markets):
    with two_symbol_node(tmp_path, two_markets) as (sim, handles):
        port, fake = handles["port"], handles["fake"]
        base = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        sol_e, btc_e = sim.engines["SOLUSDT"], sim.engines["BTCUSDT"]
        with httpx.Client(base_url=base, headers=auth, trust_env=False, timeout=10) as c, \
                ws(base, f"?token={TOKEN}") as stream:
            assert recv_json(stream)["type"] == "hello"
            st = c.get("/api/v1/status").json()
            assert st["mode"] == "live" and st["running"] is True and set(st["symbols"]) == {SOL, BTC}
            advance(sim, handles)  # the first candle: a long on SOL, a short on BTC (filled at the next open)
            assert entry_orders(sol_e) == entry_orders(btc_e) == 1
            sim.advance()
            _until(lambda: sol_e.position is not None and btc_e.position is not None, "both positions")
            assert (sol_e.position.side, btc_e.position.side) == (1, -1)
            entries = [next_event(stream, "entry", timeout=30)["data"] for _ in range(2)]
            assert {e["symbol"] for e in entries} == {SOL, BTC}
            # one wallet: its balance paid both entry fees (qty x fill x taker fee, by hand), and both margins
            # are held in it (the account's available balance is what is left)
            fees = sum(e.position.qty * e.position.entry * e.taker for e in (sol_e, btc_e))
            assert sim.wallet.balance == pytest.approx(1000.0 - fees, abs=1e-9)
            # both entries notified on Telegram, each with its symbol and its own lot (BTC: 0.0001)
            _until(lambda: sum("opened" in m.get("text", "") for m in fake.sent_to(CHAT)) >= 2,
                   "both entry notifications")
            texts = [m["text"] for m in fake.sent_to(CHAT) if "opened" in m.get("text", "")]
            btc_qty = btc_e.position.qty
            assert any("BTC/USDT:USDT" in t and f"{btc_qty:.4f} BTC" in t for t in texts), texts
            assert any("SOL/USDT:USDT" in t and "SOL" in t for t in texts), texts
            _until(lambda: {(p["symbol"], p["side"]) for p in c.get("/api/v1/positions").json()["positions"]}
                   == {(SOL, "long"), (BTC, "short")}, "both positions on /positions")
            # /pause from Telegram pauses both symbols
            fake.send_text(CHAT, "/pause")
            _until(lambda: c.get("/api/v1/status").json()["paused"], "the pause")
            assert all(b.control.paused for b in handles["bots"])
            # the dashboard's force-exit closes both live positions at the next candle
            assert c.post("/api/v1/force-exit").status_code == 200
            sim.advance()  # the next cycle of each symbol sends its closing order; they fill at the next open

            def closing(e):
                return any(o.reduce_only for o in e.orders.values() if o.open) or e.position is None
            _until(lambda: closing(sol_e) and closing(btc_e), "both exit orders")
            sim.advance()
            exits = [next_event(stream, "exit", timeout=30)["data"] for _ in range(2)]
            assert {(e["symbol"], e["reason"]) for e in exits} == {(SOL, "manual"), (BTC, "manual")}
            _until(lambda: sol_e.position is None and btc_e.position is None, "a flat account")
            _until(lambda: c.get("/api/v1/positions").json()["positions"] == [], "no position on /positions")
            # still paused: both symbols now signal entries on every candle, and nothing is sent
            handles["go"] = True
            n_orders = len(sol_e.orders) + len(btc_e.orders)
            for _ in range(2):
                advance(sim, handles)
            assert len(sol_e.orders) + len(btc_e.orders) == n_orders
            assert sol_e.position is None and btc_e.position is None
            # /resume from Telegram: both symbols enter again
            time.sleep(1.1)  # the command bot answers one command per telegram_cooldown (1 s) and chat
            fake.send_text(CHAT, "/resume")
            _until(lambda: not c.get("/api/v1/status").json()["paused"], "the resume")
            advance(sim, handles)
            assert entry_orders(sol_e) == entry_orders(btc_e) == 2  # a new entry on each symbol
            sim.advance()
            _until(lambda: sol_e.position is not None and btc_e.position is not None, "both positions again")
            risk = c.get("/api/v1/risk").json()
            assert risk["running"] is True and risk["equity"] is not None
            _until(lambda: sum("closed" in m.get("text", "") for m in fake.sent_to(CHAT)) >= 2,
                   "both exit notifications")


def test_live_node_keeps_the_portfolio_budget(tmp_path, two_markets):
    """``portfolio_max_positions = 1``: both symbols call an entry on the same candle; one position opens, the
    other symbol's entry is refused with a ``max_positions`` risk event (value 1) in its own ledger run."""
    from perpbot.storage.ledger import Ledger

    with two_symbol_node(tmp_path, two_markets, portfolio_max_positions=1) as (sim, handles):
        engines = sim.engines["SOLUSDT"], sim.engines["BTCUSDT"]
        advance(sim, handles)
        assert sum(entry_orders(e) for e in engines) == 1  # one entry sent, the other refused
        advance(sim, handles)
        assert sum(e.position is not None for e in engines) == 1
    ledger = Ledger(f"sqlite:///{tmp_path / 'perpbot.db'}")
    refused = {sym: ledger.risk_events(rid) for sym, rid in handles["run_ids"].items()}
    vetoes = {sym: ev[ev["event"] == "max_positions"] for sym, ev in refused.items()}
    holder = SOL if engines[0].position is not None else BTC
    other = BTC if holder == SOL else SOL
    assert len(vetoes[holder]) == 0 and len(vetoes[other]) == 1
    assert float(vetoes[other]["value"].iloc[0]) == 1.0
    ledger.close()


def test_live_node_vetoes_stale_candles_on_every_symbol(tmp_path, two_markets):
    """Issue 7, finding 6 on the node over two symbols: after an outage (four candles close at once on the
    venue's clock), each symbol's loop works through the missed candles with an entry signal on every one,
    sends no entry for the three that closed 3, 2 and 1 bars ago (``stale_candle`` risk events in its own
    ledger run, value = the lag in bars) and enters on the fresh one."""
    from perpbot.storage.ledger import Ledger

    with two_symbol_node(tmp_path, two_markets) as (sim, handles):
        handles["go"] = True
        engines = sim.engines["SOLUSDT"], sim.engines["BTCUSDT"]
        before = [b.cycles for b in handles["bots"]]
        sim.advance(4)
        _until(lambda: all(b.cycles >= n + 4 for b, n in zip(handles["bots"], before)), "both loops' four cycles")
        assert [entry_orders(e) for e in engines] == [1, 1]
    ledger = Ledger(f"sqlite:///{tmp_path / 'perpbot.db'}")
    for rid in handles["run_ids"].values():
        stale = ledger.risk_events(rid)
        stale = stale[stale["event"] == "stale_candle"]
        assert list(stale["value"]) == [3.0, 2.0, 1.0]
        (entry,) = ledger.orders(rid).query("reason == 'entry'").itertuples()
        assert int(entry.client_order_id.split("-")[1]) == int(stale["bar"].iloc[-1]) + 1  # the fresh candle's
    ledger.close()


def test_live_node_auto_symbols_ranked_again(tmp_path):
    """``--symbols auto:2``: the node trades the venue's two best-ranked perpetuals (perpbot pairs, on the
    simulator's real 1m SOL / BTC / ETH candles); ranked again with other weights, the symbol that left the
    top 2 is retired (its loop ends, flat) and the one that entered gets its own loop and ledger run."""
    from rich.console import Console

    from perpbot.cli.live import run_live
    from perpbot.intel.pairs import select_pairs
    from _intel_world import sim_exchange, world_data

    data = world_data(rows=17_300)
    assert all(data[k][0]["timestamp"].equals(data["SOLUSDT"][0]["timestamp"]) for k in data)
    sim = BitgetSim(candles=data["SOLUSDT"][0], funding=data["SOLUSDT"][1], start_bar=17_000,
                    tradable={k: v for k, v in data.items() if k != "SOLUSDT"})
    sim.start()
    s = load_settings(None, api_key=sim.api_key, api_secret=sim.api_secret, api_passphrase=sim.passphrase,
                      timeframe="1m", leverage=5, output_dir=tmp_path, warmup_bars=0, live_window=300,
                      pairs_min_quote_volume=0, pairs_min_listing_days=5, portfolio_rerank_hours=0.0005,
                      portfolio_corr_threshold=0.0)

    def top2(weights) -> list[str]:
        async def rank():
            ex = sim_exchange(sim)
            try:
                return await select_pairs(ex, 2, s.model_copy(update={"pairs_weights": weights}),
                                          now_ms=sim.market.now_ms)
            finally:
                await ex.close()
        return asyncio.run(rank())

    first = top2(dict(s.pairs_weights))
    flipped = {"volatility": 1.0}  # the most volatile two instead
    second = top2(flipped)
    assert len(first) == len(second) == 2 and set(first) != set(second)  # the new weights change the top 2
    handles: dict = {}
    ex = make_exchange(s, config={"enableRateLimit": False})
    sim.point(ex)

    def on_start(bots, feeds):
        handles.update(bots=bots, feeds=feeds, loop=asyncio.get_running_loop())
        s.pairs_weights.clear()
        s.pairs_weights.update(flipped)  # what the next ranking (1.8 s later) reads

    th = threading.Thread(target=lambda: handles.update(run_ids=run_live(
        s, real_money=False, strategy="ema-cross", out=Console(record=True, width=200), exchange=ex,
        on_start=on_start, auto_pairs=2, feed_options=dict(clock=lambda: sim.market.now_ms, reconnect_base=0.05,
                                                           poll_interval=0.05, use_websocket=False))), daemon=True)
    with quiet_loggers("ccxt", "aiohttp", "asyncio", "perpbot.live", "perpbot.bot"):
        th.start()
        try:
            _until(lambda: "bots" in handles or not th.is_alive(), "the node to start", 60)
            assert [b.settings.symbol for b in handles["bots"]] == first
            added = next(sym for sym in second if sym not in first)
            dropped = next(sym for sym in first if sym not in second)
            _until(lambda: any(b.settings.symbol == added for b in handles["bots"]), "the new symbol's loop", 60)
            old = next(b for b in handles["bots"] if b.settings.symbol == dropped)
            assert old.retired and not any(b.retired for b in handles["bots"] if b.settings.symbol != dropped)
            sim.advance()  # the retired symbol's next cycle: flat, so its loop ends; the others go on
            _until(lambda: old.control.status().get("running") is False, "the retired loop to end")
            assert handles["bots"][0].control.node.status()["running"] is True
        finally:
            handles["loop"].call_soon_threadsafe(handles["feeds"].stop)
            th.join(60)
            sim.stop()
    assert not th.is_alive() and set(handles["run_ids"]) == set(first) | set(second)
