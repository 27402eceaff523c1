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
    # a position snapshot whenever the position at a candle's close differs from the previous one:
    # every position still open at some close appears once, with its entry price
    pos = ledger.positions(run_id)
    opened = pos[pos["side"] != "flat"]
    held = bt.trades[bt.trades.exit_bar > bt.trades.entry_bar]
    np.testing.assert_allclose(opened.entry_price.to_numpy(), held.entry_price.to_numpy(), rtol=1e-12)
    assert len(pos[pos["side"] == "flat"]) >= 1
    eq = ledger.equity(run_id)
    assert len(eq) == len(replay.candles)
    assert eq.iloc[-1] == pytest.approx(bt.equity.iloc[-1], abs=1e-9)


def test_ai_signals_have_no_lookahead(setup):
    """Perturbing candles after t never changes the model's probabilities or signals at <= t."""
    from perpbot.features.build import compute_features
    from perpbot.features.causality import lookahead_violations
    from perpbot.ml.signals import proba_to_signal

    s, bundle, replay, _ = setup
    funding = replay.funding

    def ai(c):
        proba = bundle.predict_proba(compute_features(c, funding), c["timestamp"])
        sig = proba_to_signal(proba, s.confidence_threshold)
        return pd.DataFrame({"p_down": proba[:, 0], "p_up": proba[:, 2], "signal": sig})

    candles = replay.candles
    t_idx = [400, 700, 1100, 1400]
    assert lookahead_violations(ai, candles, t_idx) == []

    # the checker does catch a model fed tomorrow's close
    def leaky(c):
        c2 = c.copy()
        c2["close"] = c2["close"].shift(-1).fillna(c2["close"])
        c2["high"] = np.maximum(c2["high"], c2["close"])
        c2["low"] = np.minimum(c2["low"], c2["close"])
        return ai(c2)

    assert lookahead_violations(leaky, candles, t_idx)
