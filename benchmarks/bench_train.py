"""Walk-forward training time over the whole SOLUSDT 5m file (86,400 bars).

Default settings (LightGBM, 30-day first training window, 14-day test windows, expanding,
purge = label horizon, n_jobs = 2): features -> labels -> every fold -> final model.

    .venv/bin/python benchmarks/bench_train.py [--model lightgbm]
"""

from __future__ import annotations

import argparse
import time

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="lightgbm")
    a = ap.parse_args()
    from perpbot.app.jobs import dataset, train_job
    from perpbot.config import load_settings
    from perpbot.data.market import load_market_for

    s = load_settings(model=a.model, output_dir="runs/bench")
    market = load_market_for(s)
    t = time.perf_counter()
    X, y, _ = dataset(s, market)
    t_feat = time.perf_counter() - t
    t = time.perf_counter()
    out = train_job(s, market=market)
    total = time.perf_counter() - t
    print(f"{len(market.candles):,} bars, {X.shape[1]} features; features+labels {t_feat:.2f} s")
    print(f"walk-forward {a.model}: {out.n_folds} folds + final model, {total:.1f} s wall (n_jobs={s.n_jobs})")
    m = out.model_metrics
    print("oos: " + ", ".join(f"{k}={v:.4f}" for k, v in m.items() if isinstance(v, float)))
