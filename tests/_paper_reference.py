"""Helpers for the paper-run ledger tests: subprocess environment, the batch-backtest
reference of a replayed slice, and the check that a recorded run equals it."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from perpbot.types import TRADE_COLUMNS

#: Settings of every subprocess and reference below (environment / overrides).
WARMUP = 60


def env_for(tmp_path, **extra) -> dict:
    """A subprocess environment without the caller's PERPBOT_* variables: output (and ledger)
    in ``tmp_path``, funding off, a 60-candle warm-up."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERPBOT_")}
    env.update(PERPBOT_OUTPUT_DIR=str(tmp_path), PERPBOT_FUNDING="false", PERPBOT_WARMUP_BARS=str(WARMUP), **extra)
    return env


def reference(tmp_path, candles_path, last: int, strategy: str = "ema-cross", funding_files=None):
    """(settings, market, StrategyRun): the batch backtest of the last ``last`` candles of
    ``candles_path`` with the settings of :func:`env_for`, or with funding on when
    ``funding_files`` = (funding-rate file, mark candles file)."""
    from perpbot.app.jobs import backtest_job
    from perpbot.config import load_settings
    from perpbot.data.market import load_market_for

    funding = dict(funding=True, funding_file=funding_files[0], mark_file=funding_files[1]) if funding_files \
        else dict(funding=False)
    s = load_settings(None, output_dir=tmp_path / "ref", warmup_bars=WARMUP, **funding)
    market = load_market_for(s, candles_path)
    market = market.slice(len(market.candles) - last)
    return s, market, backtest_job(s, [strategy], market=market).runs[strategy]


def assert_run_equals_backtest(led, run_id: int, bt) -> None:
    """The run's recorded trades (every column), funding payments and equity curve equal the
    backtest's exactly."""
    stored = led.trades(run_id)
    ref = bt.result.trades[list(TRADE_COLUMNS)]
    assert len(stored) == len(ref) > 0
    pd.testing.assert_frame_equal(stored.reset_index(drop=True), ref.reset_index(drop=True), check_dtype=False)
    pd.testing.assert_frame_equal(led.funding(run_id).reset_index(drop=True),
                                  bt.result.funding[["time", "rate", "mark_price", "qty", "amount"]]
                                  .reset_index(drop=True),
                                  check_dtype=False)
    eq = led.equity(run_id)
    np.testing.assert_array_equal(eq.to_numpy(), bt.result.equity.to_numpy())
    assert (eq.index == bt.result.equity.index).all()
