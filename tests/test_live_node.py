"""The live node with its operator interfaces (issue 10, item 1): ``perpbot run --mode live --api``
against the local Bitget simulator, with the REST/WebSocket API, the dashboard's routes and the
Telegram command bot (a local Bot API server) attached to the node's own control: an entry is
notified on Telegram, ``/pause`` from Telegram pauses the node, the dashboard's force-exit closes
the live position on the simulator, the WebSocket streams the node's events."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time

import httpx
import pandas as pd
import pytest

from perpbot.config import load_settings
from perpbot.exchange.ccxt_adapter import make_exchange
from fake_telegram import FakeTelegram
from _api_helpers import next_event, recv_json, ws
from _sim_fixtures import free_port, quiet_loggers, running_sim, sim_data, wait_until

CHAT = 777
TOKEN = "node-" + secrets.token_hex(16)
START = 1100


def _until(cond, what: str, timeout: float = 30.0):
    return wait_until(cond, what, timeout, poll=0.05)


def test_live_node_with_api_and_telegram_attached(tmp_path, sol5m_path, sol_funding_path, sol_mark8h_path):
    from rich.console import Console

    from perpbot.cli.live import run_live

    data = sim_data(sol5m_path, sol_funding_path, sol_mark8h_path, 1300)
    port = free_port()
    with quiet_loggers("ccxt", "aiohttp", "asyncio", "perpbot.live", "perpbot.bot", "httpx", "telegram"), \
            running_sim(data, START) as sim, FakeTelegram() as fake:
        s = load_settings(None, api_key=sim.api_key, api_secret=sim.api_secret, api_passphrase=sim.passphrase,
                          leverage=5, output_dir=tmp_path, warmup_bars=0, live_window=1000, stop_loss=1.0,
                          take_profit=2.0, api_token=TOKEN, api_port=port, telegram_token="123:" + "x" * 30,
                          telegram_chat_ids=[CHAT], telegram_base_url=fake.base_url)
        ex = make_exchange(s, config={"enableRateLimit": False})
        sim.point(ex)
        handles: dict = {}
        out = Console(record=True, width=200)

        def on_start(bot, feed):
            handles.update(bot=bot, feed=feed, loop=asyncio.get_running_loop())
            calls = {}

            def decide(frame):  # go long on the first candle the node sees, then hold
                ts = int(frame["timestamp"].iloc[-1].value // 1_000_000)
                calls.setdefault("first", ts)
                return (1 if ts == calls["first"] else 0), None

            bot.signals.decide = decide

        th = threading.Thread(target=lambda: handles.update(run_id=run_live(
            s, real_money=False, strategy="ema-cross", out=out, exchange=ex, on_start=on_start, api=True,
            feed_options=dict(clock=lambda: sim.market.now_ms, reconnect_base=0.05, poll_interval=0.05,
                              use_websocket=False))), daemon=True)
        th.start()
        _until(lambda: "bot" in handles or not th.is_alive(), "the node to start", 60)
        assert th.is_alive(), out.export_text()
        base = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        try:
            with httpx.Client(base_url=base, headers=auth, trust_env=False, timeout=10) as c, ws(base, f"?token={TOKEN}") as stream:
                assert recv_json(stream)["type"] == "hello"
                st = c.get("/api/v1/status").json()
                assert st["mode"] == "live" and st["running"] is True and st["symbol"] == "SOL/USDT:USDT"
                sim.advance()  # the node's first candle: a long market order (filled at the next open)
                _until(lambda: sim.state["orders"] or sim.state["position"], "the entry order")
                sim.advance()
                entry = next_event(stream, "entry", timeout=30)
                assert entry["data"]["side"] in ("long", 1)
                _until(lambda: sim.state["position"] is not None and sim.state["position"].get("qty", 0) > 0,
                       "the position on the simulator")
                # the entry is notified on Telegram
                _until(lambda: any("LONG" in m.get("text", "").upper() for m in fake.sent_to(CHAT)),
                       "the entry notification")
                # /pause from Telegram pauses this node
                fake.send_text(CHAT, "/pause")
                _until(lambda: c.get("/api/v1/status").json()["paused"], "the pause")
                assert handles["bot"].control.paused
                # the dashboard's force-exit closes the live position at the next candle
                assert c.post("/api/v1/force-exit").status_code == 200
                sim.advance()  # the next cycle sends the closing order; it fills at the next open
                _until(lambda: any(o.get("reduceOnly") in ("YES", True) or o.get("tradeSide") == "close"
                                   for o in sim.state["orders"]) or not sim.state["position"], "the exit order")
                sim.advance()
                next_event(stream, "exit", timeout=30)
                _until(lambda: not sim.state["position"] or not sim.state["position"].get("qty"), "a flat account")
                risk = c.get("/api/v1/risk").json()
                assert risk["running"] is True and risk["equity"] is not None
                # /health (no token): the node's uptime, last candle, its lag behind the wall clock, errors
                health = httpx.get(f"{base}/health", trust_env=False).json()
                last = handles["bot"].control.status()["last_candle_time"]
                closed = pd.Timestamp(last).timestamp() + 300
                assert health["running"] is True and health["last_candle_time"] == last and health["errors"] == 0
                assert health["uptime_s"] > 0 and abs(health["lag_s"] - (time.time() - closed)) < 30
        finally:
            handles["loop"].call_soon_threadsafe(handles["feed"].stop)
            th.join(60)
        assert not th.is_alive() and handles.get("run_id")
    # the API stopped with the node
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/health", trust_env=False, timeout=2)
