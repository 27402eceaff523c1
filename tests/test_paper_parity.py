"""Paper replay == backtest: the bot loop, fed the same candles one at a time with the same
saved model, makes exactly the trades the batch backtest makes.

How it is checked: a model is walk-forward trained on the first 20,000 real SOLUSDT 5m
candles (with funding). The last 1,500 of them are written to a replay file. The backtest
computes features and probabilities in batch over that file; the paper loop computes them
candle by candle on its trailing window (``live_window``) and drives the simulated exchange.
Trades (every column), funding payments, risk events and the equity curve must be equal,
and the ledger must hold the same trades for the paper run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from perpbot.cli.jobs import backtest_job, paper_job, train_job
from perpbot.config import load_settings
from perpbot.data.market import load_market
from perpbot.storage.ledger import Ledger


@pytest.fixture(scope="module")
def setup(tmp_path_factory, sol5m_path, sol_funding_path, sol_mark8h_path):
    tmp = tmp_path_factory.mktemp("parity")
    # tight stops and a low threshold so the 1,500 replayed candles hold enough trades to compare
    s = load_settings(None, model="logreg", train_days=20, test_days=20, confidence_threshold=0.4,
                      stop_loss=0.4, take_profit=0.6, label_horizon=24, cooldown_bars=2, output_dir=tmp,
                      warmup_bars=300, live_window=1000, candles_file=sol5m_path,
                      funding_file=sol_funding_path, mark_file=sol_mark8h_path)
    full = load_market(sol5m_path, "5m", funding_file=sol_funding_path, mark_file=sol_mark8h_path)
    market = full.slice(0, 20_000)
    trained = train_job(s, market=market)
    replay = market.slice(20_000 - 1_500)
    return s, trained.bundle, replay, tmp


def test_paper_replay_matches_backtest(setup):
    s, bundle, replay, tmp = setup
    ledger = Ledger(f"sqlite:///{tmp / 'ledger.db'}")
    bt = backtest_job(s, ["ai"], market=replay, bundle=bundle).runs["ai"].result
    bot, run_id = paper_job(s, replay, "ai", bundle=bundle, ledger=ledger, flush_every=250)
    paper = bot.exchange.result()

    assert len(bt.trades) >= 10, "too few trades for the comparison to mean anything"
    assert bt.trades.entry_bar.min() >= s.warmup_bars
    pd.testing.assert_frame_equal(paper.trades, bt.trades)
    pd.testing.assert_frame_equal(paper.funding, bt.funding)
    pd.testing.assert_frame_equal(paper.risk_events, bt.risk_events)
    np.testing.assert_array_equal(paper.equity.to_numpy(), bt.equity.to_numpy())
    assert (paper.equity.index == bt.equity.index).all()

    # the paper bot's signals equal the batch signals bar for bar (after the warm-up)
    batch_signal = backtest_job(s, ["ai"], market=replay, bundle=bundle).runs["ai"].signal
    paper_signal = np.array([d.signal for d in bot.decisions], dtype=np.int8)
    np.testing.assert_array_equal(paper_signal[s.warmup_bars - 1:], batch_signal[s.warmup_bars - 1:])

    # and the ledger holds the paper run's trades, orders and fills
    stored = ledger.trades(run_id)
    assert len(stored) == len(bt.trades)
    np.testing.assert_allclose(stored.pnl.to_numpy(), bt.trades.pnl.to_numpy(), rtol=0, atol=1e-9)
    assert len(ledger.orders(run_id)) == 2 * len(bt.trades)
    assert ledger.get_run(run_id)["status"] == "finished"
    eq = ledger.equity(run_id)
    assert len(eq) == len(replay.candles)
    assert eq.iloc[-1] == pytest.approx(bt.equity.iloc[-1], abs=1e-9)
