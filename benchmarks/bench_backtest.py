"""Backtest throughput on SOLUSDT 5m (86,400 bars), full accounting on.

Prints, for the compiled account loop alone (one core, already compiled, best of N runs):
bars per second with fees, slippage, funding every 8 h, isolated margin with liquidation,
intrabar SL/TP, sizing and risk limits all active; then the wall time of the whole
`perpbot backtest` command on the same file with a saved model (needs `perpbot train` first,
or pass --no-cli).

    .venv/bin/python benchmarks/bench_backtest.py [--repeat 30] [--no-cli]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PERPBOT_DATA_DIR", ROOT.parent / "shared" / "data")) / "binance-usdm"


def kernel_throughput(repeat: int) -> None:
    from perpbot.sim.config import AccountConfig
    from perpbot.sim.engine import MarketArrays, allocate_outputs, run_kernel
    from perpbot.data import load_candles, load_funding
    from perpbot.sim import kernel as K
    from perpbot.strategy.ema_cross import ema_cross_signals

    candles = load_candles(DATA / "SOLUSDT-5m.parquet")
    m = MarketArrays.build(candles, "5m", funding=load_funding(DATA / "SOLUSDT-funding.parquet"),
                           mark=load_candles(DATA / "SOLUSDT-8h-mark.parquet"))
    n = len(m)
    rng = np.random.default_rng(7)
    cases = {
        "ema-cross signals (always in the market)": ema_cross_signals(m.close),
        "random signals (10% of bars)": rng.choice([-1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], size=n).astype(np.int8),
    }
    # limits are checked every bar but set wide so the account keeps trading all year
    cfg = AccountConfig(capital=1000.0, leverage=5.0, slippage=0.0002, cooldown_bars=6, max_drawdown=1.0,
                    max_daily_loss=1.0)
    params, tiers = cfg.params(), cfg.tier_arrays()
    print(f"compiled account loop, {n:,} bars, funding events in span: {(m.funding_rate != 0).sum()}")
    for name, sig in cases.items():
        best = float("inf")
        for _ in range(repeat):
            state, outs = K.new_state(cfg.capital), allocate_outputs(n)
            t = time.perf_counter()
            run_kernel(m, sig, params, tiers, state, outs, 0, n)
            best = min(best, time.perf_counter() - t)
        print(f"  {name:42s} {best * 1e3:7.2f} ms  {n / best / 1e6:6.1f} M bars/s  "
              f"trades {int(state[K.S_NTRADES]):5d} funding payments {int(state[K.S_NFUNDING])}")


def cli_wall(repeat: int) -> None:
    exe = shutil.which("perpbot", path=str(ROOT / ".venv" / "bin")) or shutil.which("perpbot")
    for args in (["backtest", "--no-baselines", "--no-ledger"], ["backtest"]):
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            proc = subprocess.run([exe, *args], cwd=ROOT, capture_output=True, text=True)
            times.append(time.perf_counter() - t)
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                raise SystemExit(f"perpbot {' '.join(args)} failed (train a model first: perpbot train)")
        print(f"perpbot {' '.join(args):36s} wall: best {min(times):.2f} s, median {sorted(times)[len(times) // 2]:.2f} s")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--no-cli", action="store_true")
    a = ap.parse_args()
    kernel_throughput(a.repeat)
    if not a.no_cli:
        cli_wall(5)
