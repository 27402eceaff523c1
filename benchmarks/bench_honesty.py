"""Cost of the statistics against overfitting (perpbot.ml.honesty) on SOLUSDT 5m (86,400 bars).

Prints the wall time (best of N) of:
- the honesty block of an EMA-cross backtest of the whole file (daily-return bootstrap, profit
  factor bootstrap and trade Monte Carlo at 2,000 resamples each, PSR/DSR, targets);
- the AI's model scoring over the file (triple-barrier labels + model_metrics), which the
  report adds for the AI, measured here on uniform probabilities;
- PBO by CSCV for 50 and 200 trials over 300 days with S = 16 (12,870 combinations), the
  size an optimisation of `perpbot optimize --trials 50` produces.

    .venv/bin/python benchmarks/bench_honesty.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PERPBOT_DATA_DIR", ROOT.parent / "shared" / "data")) / "binance-usdm"


def best_of(repeat: int, fn) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from perpbot.backtest.honesty import ai_model_metrics
    from perpbot.backtest.runner import run_strategies
    from perpbot.config import load_settings
    from perpbot.data.market import load_market
    from perpbot.ml.honesty.block import honesty_block
    from perpbot.ml.honesty.pbo import probability_of_backtest_overfitting

    path = DATA / "SOLUSDT-5m.parquet"
    s = load_settings(None, candles_file=path, funding_file=None, mark_file=None, output_dir=ROOT / "runs" / "bench")
    market = load_market(path, "5m")
    run = run_strategies(s, market, ["ema-cross"])["ema-cross"]
    n = len(market.candles)
    t = best_of(args.repeat, lambda: honesty_block(trades=run.result.trades, initial_capital=s.starting_capital,
                                                    equity=run.result.equity, strategy_metrics=run.metrics))
    print(f"honesty block, ema-cross over {n:,} bars ({len(run.result.trades)} trades): {t * 1e3:8.1f} ms")
    proba = np.full((n, 3), 1 / 3)
    t = best_of(args.repeat, lambda: ai_model_metrics(s, market, proba))
    print(f"model scoring (labels + model_metrics) over {n:,} bars:         {t * 1e3:8.1f} ms")
    rng = np.random.default_rng(0)
    for trials in (50, 200):
        m = rng.normal(0.0, 0.02, (300, trials))
        t = best_of(args.repeat, lambda: probability_of_backtest_overfitting(m, n_splits=16))  # noqa: B023 (called at once)
        print(f"PBO, 300 days x {trials:3d} trials, S=16 (12,870 combinations):  {t * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
