"""Each symbol trades with its own contract rules (issue 10, item 4): a BTC backtest with default
settings uses BTC's 0.0001 lot instead of SOL's 0.1, and a backtest whose every entry is vetoed
says so, with the reason and the count."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from perpbot.app.jobs import backtest_job
from perpbot.backtest.runner import veto_notes
from perpbot.config import load_settings
from perpbot.data.market import load_market
from perpbot.sim.config import AccountConfig
from perpbot.sim.market_rules import base_asset, rules_for, shipped_rules
from _cli_helpers import perpbot

BTC = "BTC/USDT:USDT"


def test_shipped_rules_by_base_asset():
    assert base_asset("BTC/USDT:USDT") == "BTC" and base_asset("ETHUSDT") == "ETH" and base_asset("sol/usdt:usdt") == "SOL"
    assert shipped_rules("DOGE/USDT:USDT") is None
    s = load_settings(None, symbol=BTC)
    assert rules_for(s) == {"lot_size": 0.0001, "tick_size": 0.1, "min_qty": 0.0001}
    cfg = AccountConfig.from_settings(s)
    assert (cfg.lot_size, cfg.tick_size, cfg.min_qty) == (0.0001, 0.1, 0.0001)
    # a rule the settings give explicitly wins; SOL's shipped rules are the settings' defaults
    assert rules_for(load_settings(None, symbol=BTC, min_qty=0.001))["min_qty"] == 0.001
    assert rules_for(load_settings(None)) == {"lot_size": 0.1, "tick_size": 0.001, "min_qty": 0.1}


@pytest.fixture(scope="module")
def btc_market(data_dir):
    return load_market(data_dir / "BTCUSDT-1h.parquet", "1h").slice(50_000, 53_000)


def test_btc_backtest_with_default_settings_trades_with_btc_rules(tmp_path, btc_market):
    s = load_settings(None, symbol=BTC, timeframe="1h", funding=False, output_dir=tmp_path)
    run = backtest_job(s, ["ema-cross"], market=btc_market).runs["ema-cross"]
    t = run.result.trades
    assert len(t) >= 20
    assert np.allclose(np.round(t.qty / 0.0001), t.qty / 0.0001)  # whole BTC lots of 0.0001
    assert (t.qty < 0.1).all()  # SOL's minimum of 0.1 coin would have refused every one of them
    assert veto_notes({"ema-cross": run}) == []
    # SOL's rules on BTC: every entry below the minimum size, and the backtest says so
    sol = load_settings(None, symbol=BTC, timeframe="1h", funding=False, output_dir=tmp_path, lot_size=0.1,
                        min_qty=0.1)
    none = backtest_job(sol, ["ema-cross"], market=btc_market).runs["ema-cross"]
    ev = none.result.risk_events
    n = int((ev["event"] == "below_min_size").sum())
    assert len(none.result.trades) == 0 and n >= 20
    assert veto_notes({"ema-cross": none}) == [
        f"ema-cross: no trade — all {n} entry attempts were vetoed ({n} below_min_size)"]


def test_cli_backtest_warns_when_every_entry_is_vetoed(tmp_path, btc_market, data_dir):
    btc_market.candles.to_parquet(tmp_path / "BTCUSDT-1h.parquet")
    r = perpbot(["backtest", "--strategy", "ema-cross", "--no-baselines", "--no-ledger", "--candles",
                 tmp_path / "BTCUSDT-1h.parquet"], cwd=tmp_path,
                env={"PERPBOT_SYMBOL": BTC, "PERPBOT_TIMEFRAME": "1h", "PERPBOT_FUNDING": "false",
                     "PERPBOT_LOT_SIZE": "0.1", "PERPBOT_MIN_QTY": "0.1"})
    assert r.returncode == 0, r.stderr
    warn = [ln for ln in r.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warn) == 1 and warn[0].startswith("warning: ema-cross: no trade — all ") and \
        warn[0].endswith("below_min_size)"), r.stderr
