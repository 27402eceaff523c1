"""Spot markets (issue 12): an Indodax-style SOL/IDR backtest on IDR candles made from the real SOL
prices in ../shared/data times a fixed rate has no funding, no short and no liquidation, and its three
trades match a hand-worked example (fees 0.3 % per side, half of the cash per buy, no leverage)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from perpbot.backtest.runner import market_arrays, simulate
from perpbot.config import load_settings
from perpbot.data.market import load_market
from perpbot.sim.config import AccountConfig

IDR_PER_USDT = 16_000.0
FEE = 0.003          # 0.3 % taker fee per side
LOT = 0.0001         # SOL


@pytest.fixture(scope="module")
def idr(data_dir):
    m = load_market(data_dir / "SOLUSDT-1h.parquet", "1h").slice(4000, 4061)  # 61 real hourly candles
    for k in ("open", "high", "low", "close"):
        m.candles[k] = m.candles[k] * IDR_PER_USDT
    return m


def _settings(tmp_path, **kw):
    return load_settings(None, exchange="indodax", market_type="spot", symbol="SOL/IDR", timeframe="1h",
                         starting_capital=10_000_000, taker_fee=FEE * 100, slippage=0.0, sizing="equity",
                         equity_fraction=0.5, lot_size=LOT, tick_size=1.0, min_qty=LOT, min_notional=10_000,
                         stop_loss=50, take_profit=200, warmup_bars=0, output_dir=tmp_path, **kw)


def test_spot_account_is_1x_without_funding_shorts_or_maintenance_margin(tmp_path):
    cfg = AccountConfig.from_settings(_settings(tmp_path, leverage=10, funding=True))
    assert (cfg.leverage, cfg.funding, cfg.long_only, cfg.tiers) == (1.0, False, True, ((math.inf, 0.0),))
    with pytest.raises(ValueError, match="not a ccxt spot symbol like 'SOL/IDR'"):
        load_settings(None, market_type="spot", symbol="SOL/IDR:IDR")
    with pytest.raises(ValueError, match="linear perpetual"):
        load_settings(None, symbol="SOL/IDR")


def test_three_spot_trades_match_the_hand_worked_example(tmp_path, idr):
    s = _settings(tmp_path)
    n = len(idr.candles)
    signal = np.zeros(n, dtype=np.int8)
    # buy after bar 10, sell after 20, a lone sell after 25 (no position: no short), buy after 30,
    # sell after 40, buy after 50 and hold to the end of the data
    for bar, sig in ((10, 1), (20, -1), (25, -1), (30, 1), (40, -1), (50, 1)):
        signal[bar] = sig
    run = simulate("scripted", signal, market_arrays(s, idr), AccountConfig.from_settings(s))
    t = run.result.trades
    o, c = idr.candles["open"].to_numpy(), idr.candles["close"].to_numpy()

    # by hand: a signal at bar i fills at the open of bar i+1; qty = floor(0.5 * cash / (price * (1 + fee)), lot)
    cash, want = 10_000_000.0, []
    for entry, exit_price in ((o[11], o[21]), (o[31], o[41]), (o[51], c[n - 1])):
        qty = math.floor(0.5 * cash / (entry * (1 + FEE)) / LOT + 1e-9) * LOT
        fees = qty * entry * FEE + qty * exit_price * FEE
        pnl = qty * (exit_price - entry) - fees
        want.append((qty, entry, exit_price, fees, pnl))
        cash += pnl
    assert len(t) == 3 and (t.side == 1).all()  # three longs, never a short
    for (qty, entry, exit_price, fees, pnl), row in zip(want, t.itertuples()):
        assert row.qty == pytest.approx(qty, abs=1e-12)
        assert (row.entry_price, row.exit_price) == (pytest.approx(entry), pytest.approx(exit_price))
        assert row.fees == pytest.approx(fees, rel=1e-12) and row.pnl == pytest.approx(pnl, rel=1e-9, abs=1e-6)
        assert row.funding == 0.0 and row.leverage == 1.0
    assert list(t.exit_reason) == ["signal", "signal", "end_of_data"]
    assert run.result.equity.iloc[-1] == pytest.approx(cash, rel=1e-12)
    assert len(run.result.funding) == 0
    assert not np.isfinite(t.liquidation_price).any() or (t.liquidation_price <= 0).all()  # never reachable
