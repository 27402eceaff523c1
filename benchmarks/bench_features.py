"""Time to build each feature group over the whole SOLUSDT 5m file (86,400 bars), and the
permutation importance of a default model's test folds (``importance_rows`` per fold).

    .venv/bin/python benchmarks/bench_features.py [--importance]
"""

from __future__ import annotations

import argparse
import time

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--importance", action="store_true", help="also train the default model and time the "
                                                              "permutation importance (heavy)")
    a = ap.parse_args()
    from perpbot.config import load_settings
    from perpbot.data.market import load_market_for
    from perpbot.features.groups import GROUP_NAMES, compute_groups, load_inputs

    s = load_settings(output_dir="runs/bench")
    market = load_market_for(s)
    inputs = load_inputs(s, market, GROUP_NAMES)
    for g in GROUP_NAMES:
        t = time.perf_counter()
        X = compute_groups(market.candles, [g], inputs, with_funding=s.funding)
        print(f"{g:14s} {X.shape[1]:3d} columns  {time.perf_counter() - t:6.2f} s  ({len(market.candles):,} bars)")
    if a.importance:
        from perpbot.app.jobs import dataset
        from perpbot.ml.importance import fold_permutation_importance
        from perpbot.ml.train import walk_forward_train

        X, y, ts = dataset(s, market)
        wf = walk_forward_train(X, y, ts, horizon=s.label_horizon, n_jobs=s.n_jobs, calibration=s.calibration)
        t = time.perf_counter()
        imp = fold_permutation_importance(wf.folds, X, y, ts, rows=s.importance_rows)
        print(f"permutation importance: {imp['n_folds']} folds x {X.shape[1]} features x {imp['repeats']} shuffles "
              f"x {s.importance_rows} rows: {time.perf_counter() - t:.1f} s")
