"""The paper node on live prices (issue 10, item 1; :mod:`perpbot.app.dry_run`): ``perpbot run
--mode paper`` without ``--replay`` trades the venue's live candles against the simulated account.

The venue is the local Bitget simulator serving real SOLUSDT 5m candles and real funding rates,
read through the real ccxt client (REST polling, as a venue without a websocket would be). The
node warms up on the last ``warmup_bars - 1`` closed candles, then trades the 250 candles the
simulator closes one by one. A backtest of exactly the candles it saw, with the funding events it
knew, must make the same trades: every column, including a liquidation, take-profits and a
funding payment, the same funding rows and the same equity curve.
"""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from perpbot.app.jobs import backtest_job
from perpbot.config import load_settings
from perpbot.data import load_funding
from perpbot.data.market import MarketData
from perpbot.exchange.clients import make_async_exchange
from perpbot.storage.ledger import Ledger
from _sim_fixtures import dry_node, next_candle, quiet_loggers, running_sim, sim_data

START, LIVE, WARMUP = 1900, 250, 100  # a stretch where ema-cross at 50x hits a liquidation and take-profits


@pytest.fixture(scope="module")
def dry(tmp_path_factory, sol5m_path, sol_funding_path, sol_mark8h_path):
    tmp = tmp_path_factory.mktemp("dry")
    data = sim_data(sol5m_path, sol_funding_path, sol_mark8h_path, START + LIVE + 5)
    s = load_settings(None, leverage=50, stop_loss=5.0, take_profit=1.5, warmup_bars=WARMUP, live_window=1000,
                      max_drawdown=95, slippage=0.0, output_dir=tmp, ledger_url=f"sqlite:///{tmp / 'ledger.db'}")
    out = Console(record=True, width=200)
    with quiet_loggers("ccxt", "aiohttp", "asyncio", "perpbot.bot", "perpbot.dry_run", "perpbot.feed"), \
            running_sim(data, START) as sim, dry_node(sim, s, "ema-cross", out) as handles:
        bot = handles["bot"]
        assert bot.exchange.n == WARMUP - 1  # the warm-up history, before any live candle
        for _ in range(LIVE):
            next_candle(sim, bot)  # its cycle is over
    assert "error" not in handles, (handles.get("error"), out.export_text())
    return s, handles["result"], data, out.export_text()


def test_dry_run_sees_the_venues_candles_and_funding(dry):
    s, res, data, text = dry
    candles, funding = data[0], data[1]
    want = candles.iloc[START - (WARMUP - 1): START + LIVE].reset_index(drop=True)
    pd.testing.assert_frame_equal(res.candles, want[["timestamp", "open", "high", "low", "close", "volume"]],
                                  check_dtype=False)
    # the settled funding rates it knew: the 100 latest at the start (the close of the candle before START),
    # then every event settled until its last candle's close
    start, end = (want.timestamp.iloc[i] + pd.Timedelta(minutes=5) for i in (WARMUP - 2, -1))
    first = funding[funding.timestamp <= start].tail(100).timestamp.iloc[0]
    known = funding[(funding.timestamp >= first) & (funding.timestamp <= end)].reset_index(drop=True)
    assert len(known) == 103  # 100 at the start + 3 settled during the 250 live candles (8 h apart)
    np.testing.assert_array_equal(res.funding.timestamp.astype("int64").to_numpy(),
                                  known.timestamp.astype("datetime64[ms, UTC]").astype("int64").to_numpy())
    np.testing.assert_array_equal(res.funding.funding_rate.to_numpy(), known.funding_rate.to_numpy())
    assert "DRY-RUN on bitget's live prices" in text and f"{WARMUP - 1} closed candles" in text


def test_dry_run_trades_equal_a_backtest_of_the_candles_it_saw(dry):
    s, res, _, _ = dry
    paper = res.bot.exchange.result()
    bt = backtest_job(s, ["ema-cross"], market=MarketData(res.candles, "5m", funding=res.funding, mark=None)
                      ).runs["ema-cross"].result
    reasons = set(bt.trades.exit_reason)
    assert {"liquidation", "take_profit"} <= reasons and len(bt.funding) >= 1, (reasons, len(bt.funding))
    assert bt.trades.entry_bar.min() >= WARMUP  # nothing opened on the warm-up history
    pd.testing.assert_frame_equal(paper.trades, bt.trades)
    pd.testing.assert_frame_equal(paper.funding, bt.funding)
    pd.testing.assert_frame_equal(paper.risk_events, bt.risk_events)
    np.testing.assert_array_equal(paper.equity.to_numpy(), bt.equity.to_numpy())
    # each funding payment by hand: the venue's rate for that time x qty x the candle's open (no mark
    # candles on a live feed), paid by a long when the rate is positive
    rates = res.funding.set_index("timestamp").funding_rate
    for f in bt.funding.itertuples():
        bar = int(f.bar)
        assert res.candles.timestamp[bar] in rates.index  # charged at the candle opening at the event
        assert f.rate == rates[res.candles.timestamp[bar]] and f.mark_price == res.candles.open[bar]
        side = np.sign(paper.position[bar - 1]) if bar else 0
        assert f.amount == pytest.approx(-side * f.qty * f.mark_price * f.rate, rel=1e-12)

def test_dry_run_is_recorded_and_reproducible_from_its_files(dry):
    s, res, _, text = dry
    led = Ledger(s.ledger)
    run = led.get_run(res.run_id)
    assert run["kind"] == "paper" and run["status"] == "finished" and run["config"]["dry_run"] is True
    assert run["note"] == "dry-run on bitget live prices" and run["exchange"] == "bitget"
    assert len(led.trades(res.run_id)) == len(res.bot.exchange.result().trades)
    assert led.equity(res.run_id).iloc[-1] == pytest.approx(res.bot.exchange.equity, abs=1e-9)
    # the candles seen and the funding known were written; a backtest of those files gives the same trades
    candles = pd.read_parquet(res.files["candles"])
    funding = load_funding(res.files["funding"])
    bt = backtest_job(s, ["ema-cross"], market=MarketData(candles, "5m", funding=funding, mark=None)
                      ).runs["ema-cross"].result
    pd.testing.assert_frame_equal(bt.trades, res.bot.exchange.result().trades)
    assert f"{len(res.candles)} candles seen" in text
