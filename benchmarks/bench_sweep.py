"""1,000 parameter sets of the EMA-cross rule (fast x slow periods x stop-loss x take-profit) on the
86,400-bar SOLUSDT 5m file, full accounting (fees, slippage, funding, isolated margin, liquidation,
intrabar stops, sizing, risk limits), metrics only (:func:`perpbot.backtest.sweep.sweep`).
Target: < 10 s on 2 cores. Prints the wall time, the per-set cost and the five best sets by Sharpe.

    .venv/bin/python benchmarks/bench_sweep.py
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from functools import lru_cache
from itertools import product
from pathlib import Path

import numpy as np

from perpbot.backtest.runner import market_arrays
from perpbot.backtest.sweep import sweep
from perpbot.config import load_settings
from perpbot.data.market import load_market
from perpbot.sim.config import AccountConfig
from perpbot.strategy.ema_cross import ema_cross_signals

DATA = Path(os.environ.get("PERPBOT_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")) / "binance-usdm"


def main() -> None:
    s = load_settings(None)
    market = load_market(DATA / "SOLUSDT-5m.parquet", "5m", funding_file=DATA / "SOLUSDT-funding.parquet",
                         mark_file=DATA / "SOLUSDT-8h-mark.parquet")
    arrays = market_arrays(s, market)
    close = market.candles["close"].to_numpy(np.float64)
    base = AccountConfig.from_settings(s)
    sets = [{"fast": f, "slow": sl, "stop_loss": x, "take_profit": x * r}
            for f, sl, x, r in product(range(5, 55, 5), range(60, 260, 20), (0.005, 0.01, 0.015, 0.02, 0.03), (1.5, 3))]

    @lru_cache(maxsize=None)
    def crosses(fast: int, slow: int) -> np.ndarray:
        return ema_cross_signals(close, fast, slow)

    sweep(arrays, sets[:2], lambda p: crosses(p["fast"], p["slow"]),
          lambda p: replace(base, stop_loss=p["stop_loss"], take_profit=p["take_profit"]))  # compile / warm
    t0 = time.perf_counter()
    rows = sweep(arrays, sets, lambda p: crosses(p["fast"], p["slow"]),
                 lambda p: replace(base, stop_loss=p["stop_loss"], take_profit=p["take_profit"]))
    wall = time.perf_counter() - t0
    print(f"{len(sets)} parameter sets x {len(arrays):,} bars: {wall:.2f} s wall "
          f"({1000 * wall / len(sets):.2f} ms per set), load average {os.getloadavg()[0]:.1f}")
    print(rows.sort_values("sharpe", ascending=False).head(5).to_string(index=False))


if __name__ == "__main__":
    main()
