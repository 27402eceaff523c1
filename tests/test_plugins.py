"""Strategies as plug-ins (issue 13, item 3): the cookbook's example (docs/COOKBOOK.md), saved in a
separate file, is loaded by path, backtested, optimised over its parameters (the hold-out unseen)
and run in paper replay with the backtest's trades, on real SOL candles."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib

from perpbot.app.jobs import backtest_job
from perpbot.app.paper import paper_job
from perpbot.config import load_settings
from perpbot.data.market import load_market
from perpbot.strategy.plugin import load_strategy, strategy_class
from _cli_helpers import perpbot

COOKBOOK = Path(__file__).resolve().parents[1] / "docs" / "COOKBOOK.md"


@pytest.fixture(scope="module")
def ref(tmp_path_factory) -> str:
    code = re.search(r"```python\n(.*?)```", COOKBOOK.read_text(), re.S).group(1)
    assert len(code.strip().splitlines()) <= 30  # "in 30 lines"
    path = tmp_path_factory.mktemp("plugin") / "my_rsi.py"
    path.write_text(code)
    return str(path)


@pytest.fixture(scope="module")
def market(sol5m_path):
    return load_market(sol5m_path, "5m").slice(30_000, 36_000)


def _settings(tmp_path):
    return load_settings(None, funding=False, output_dir=tmp_path, warmup_bars=100)


def test_the_cookbook_strategy_loads_by_path_with_its_parameters(ref, market):
    rule = load_strategy(ref)
    assert (rule.name, rule.values) == ("rsi-reversion", {"period": 14, "low": 30.0, "high": 70.0})
    rsi = talib.RSI(market.candles["close"].to_numpy(np.float64), timeperiod=14)
    sig = rule(market.candles)
    np.testing.assert_array_equal(sig, np.where(rsi < 30, 1, np.where(rsi > 70, -1, 0)).astype(np.int8))
    assert (sig == 1).sum() > 50 and (sig == -1).sum() > 50
    k = 4_321  # causal: the signals of a prefix are the prefix of the signals
    np.testing.assert_array_equal(rule(market.candles.iloc[:k]), sig[:k])
    with pytest.raises(ValueError, match="period = 2 is outside 5 .. 40"):
        load_strategy(ref, period=2)
    with pytest.raises(ValueError, match="strategy file not found"):
        strategy_class("no/such/file.py")


def test_backtest_and_paper_replay_of_the_plugin_agree(ref, market, tmp_path):
    s = _settings(tmp_path)
    bt = backtest_job(s, [ref], market=market).runs[ref]
    assert len(bt.result.trades) >= 20
    bot, _ = paper_job(s, market, ref)
    pd.testing.assert_frame_equal(bot.exchange.result().trades, bt.result.trades)


def test_optimise_the_plugin_without_seeing_the_holdout(ref, market, tmp_path):
    from perpbot.optimize.rules import optimize_rule

    s = _settings(tmp_path)
    res = optimize_rule(s, market, ref, trials=8)
    cls = strategy_class(ref)
    assert res.n_trials == 8 and set(res.best_params) == set(cls.parameters)
    assert all(cls.parameters[k].low <= v <= cls.parameters[k].high for k, v in res.best_params.items())
    assert res.holdout_start == market.candles["timestamp"].iloc[4_800]
    assert np.isfinite(res.search_metrics["sharpe"]) and "sharpe" in res.holdout_metrics
    # the hold-out's prices do not change what the search chose
    scrambled = market.slice(0)
    scrambled.candles.loc[4_800:, ["open", "high", "low", "close"]] *= 1.37
    assert optimize_rule(s, scrambled, ref, trials=8).best_params == res.best_params


def test_cli_backtests_a_strategy_file(ref, market, tmp_path):
    market.candles.to_parquet(tmp_path / "c.parquet")
    r = perpbot(["backtest", "--strategy", ref, "--no-baselines", "--no-ledger", "--candles", tmp_path / "c.parquet"],
                cwd=tmp_path, env={"PERPBOT_FUNDING": "false"})
    assert r.returncode == 0, r.stderr
    assert "Backtest SOL/USDT:USDT 5m" in r.stdout and Path(ref).name in r.stdout
    r = perpbot(["backtest", "--strategy", "missing.py", "--no-ledger"], cwd=tmp_path, env={"PERPBOT_FUNDING": "false"})
    assert r.returncode == 2 and [ln for ln in r.stderr.splitlines() if ln.strip()] == [
        "error: strategy file not found: missing.py"]
