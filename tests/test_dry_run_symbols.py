"""The dry-run over two symbols on one account (issue 10, item 1): ``perpbot run --mode paper --symbols
SOL/USDT:USDT,BTC/USDT:USDT`` on the live feeds of the local Bitget simulator trading both (real SOLUSDT 5m
candles, real BTCUSDT 1m candles made 5m, real funding), through the real ccxt client, with the scoring rule.
It warms up on 99 closed candles of each, trades 260 live candles of each, and a portfolio backtest of the candles it saw with the funding it
knew makes the same trades, risk events, funding payments and equity. The ledger holds a finished paper run per
symbol."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from perpbot.app.portfolio import portfolio_backtest_job
from perpbot.cli.dry_run import run_dry_portfolio_cli
from perpbot.config import load_settings
from perpbot.data.market import MarketData
from perpbot.devtools.bitget_sim import BitgetSim
from perpbot.exchange.clients import make_async_exchange
from perpbot.storage.ledger import Ledger
from _sim_fixtures import quiet_loggers, two_symbol_data, wait_until

SOL, BTC = "SOL/USDT:USDT", "BTC/USDT:USDT"
START, LIVE = 1000, 260


def test_dry_run_over_two_symbols_equals_the_portfolio_backtest(tmp_path, sol5m_path, sol_funding_path,
                                                                sol_mark8h_path, data_dir):
    (sol, sol_funding, sol_mark), (btc, btc_funding) = two_symbol_data(sol5m_path, sol_funding_path,
                                                                       sol_mark8h_path, data_dir)
    sim = BitgetSim(candles=sol, funding=sol_funding, mark=sol_mark, start_bar=START,
                    tradable={"BTCUSDT": (btc, btc_funding)})
    sim.start()
    settings = {s: load_settings(None, symbol=s, output_dir=tmp_path, warmup_bars=100, leverage=20,
                                 portfolio_max_positions=2, portfolio_max_total_margin=90.0) for s in (SOL, BTC)}
    ex = make_async_exchange("bitget", config={"enableRateLimit": False})
    sim.point(ex)
    handles: dict = {}

    def main():
        try:
            handles["result"] = run_dry_portfolio_cli(
                settings, strategy="scoring", exchange=ex, out=Console(record=True, width=200),
                on_start=lambda bot, feeds: handles.update(bot=bot, feeds=feeds, loop=asyncio.get_running_loop()),
                feed_options=dict(clock=lambda: sim.market.now_ms, poll_interval=0.01, reconnect_base=0.05,
                                  use_websocket=False))
        except BaseException as exc:  # noqa: BLE001 (reported below)
            handles["error"] = exc

    th = threading.Thread(target=main, daemon=True)
    with quiet_loggers("ccxt", "aiohttp", "asyncio", "perpbot.dry_run", "perpbot.bot"):
        th.start()
        try:
            wait_until(lambda: "bot" in handles or "error" in handles, "the node to start", 60)
            assert "error" not in handles, handles.get("error")
            bot = handles["bot"]
            assert bot.exchange.n == 99  # the warm-up: 99 closed candles of each symbol
            for _ in range(LIVE):
                n = bot.exchange.n
                sim.advance()
                wait_until(lambda: bot.exchange.n == n + 1, "the next cycle")
        finally:
            if "loop" in handles:
                handles["loop"].call_soon_threadsafe(handles["feeds"].stop)
            th.join(60)
            sim.stop()
    assert "error" not in handles, handles.get("error")
    out = handles["result"]
    node = out.bot.exchange.result()
    assert set(node.trades.symbol) == {SOL, BTC} and len(node.trades) >= 4
    assert all(len(out.candles[s]) == 99 + LIVE for s in (SOL, BTC))
    # the same candles and the funding the node knew, backtested as a portfolio
    markets = {s: MarketData(out.candles[s], "5m", funding=out.funding[s]) for s in (SOL, BTC)}
    bt = portfolio_backtest_job(settings, markets, "scoring").result
    pd.testing.assert_frame_equal(node.trades, bt.trades)
    pd.testing.assert_frame_equal(node.risk_events, bt.risk_events)
    for s in (SOL, BTC):
        pd.testing.assert_frame_equal(node.per_symbol[s].funding, bt.per_symbol[s].funding)
    assert sum(len(node.per_symbol[s].funding) for s in (SOL, BTC)) >= 1
    assert np.array_equal(node.equity.to_numpy(), bt.equity.to_numpy())
    ledger = Ledger(settings[SOL].ledger)
    for s, rid in out.run_ids.items():
        run = ledger.get_run(rid)
        assert (run["kind"], run["symbol"], run["status"]) == ("paper", s, "finished")
        assert len(ledger.trades(rid)) == (node.trades.symbol == s).sum()
    ledger.close()
    with pytest.raises(KeyError):
        out.candles["ETH/USDT:USDT"]
