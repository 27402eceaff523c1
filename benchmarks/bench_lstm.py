"""LSTM walk-forward over the whole SOLUSDT 5m file (86,400 bars), beside LightGBM.

Default settings (30-day first training window, 14-day test windows, expanding, purge = label
horizon, n_jobs = 2 worker processes, one torch thread each): features -> labels -> every
fold -> final model, for ``lstm`` (default LSTM parameters, ``purge`` = label horizon) and
``lightgbm``. Prints the wall time of each walk-forward, the machine's load average, and the
out-of-sample log loss, Brier score and directional accuracy of both models beside their base
rates (the class frequencies of the scored rows), on each model's own out-of-sample rows and on
the rows both predict (the LSTM gives no prediction on the first seq_len - 1 bars of each test
window). Target: LSTM walk-forward < 15 min on 2 cores.

    .venv/bin/python benchmarks/bench_lstm.py [--skip-lightgbm]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def _row(name: str, m: dict) -> str:
    return (f"{name:<9} n={m['n']:>6}  log_loss {m['log_loss']:.4f} (base {m['log_loss_base']:.4f})  "
            f"brier {m['brier']:.4f} (base {m['brier_base']:.4f})  "
            f"directional {m['directional_accuracy']:.4f} (base {m['directional_accuracy_base']:.4f})  "
            f"accuracy {m['accuracy']:.4f} (base {m['accuracy_base']:.4f})  calls {m['n_calls']}")


def _load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores"


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-lightgbm", action="store_true")
    a = ap.parse_args()
    from perpbot.app.jobs import dataset
    from perpbot.config import load_settings
    from perpbot.data import timeframe_to_ms
    from perpbot.data.market import load_market_for
    from perpbot.ml.metrics import model_metrics
    from perpbot.ml.train import walk_forward_train

    s = load_settings(model="lstm", output_dir="runs/bench")
    market = load_market_for(s)
    X, y, ts = dataset(s, market)
    bars_per_day = 86_400_000 // timeframe_to_ms(s.timeframe)
    common = dict(train_size=int(s.train_days * bars_per_day), test_size=int(s.test_days * bars_per_day),
                  horizon=s.label_horizon, n_jobs=s.n_jobs)
    print(f"{len(X):,} bars, {X.shape[1]} features, horizon {s.label_horizon}, n_jobs {s.n_jobs}; {_load()}")
    runs = {}
    for name, params in (("lstm", {"purge": s.label_horizon}), ("lightgbm", None)):
        if name == "lightgbm" and a.skip_lightgbm:
            continue
        t = time.perf_counter()
        wf = walk_forward_train(X, y, ts, model_name=name, params=params, **common)
        wall = time.perf_counter() - t
        runs[name] = wf
        print(f"walk-forward {name}: {len(wf.folds)} folds + final model, {wall:.1f} s wall; {_load()}")
        if name == "lstm":
            clfs = [f.model.named_steps["clf"].estimator_ for f in wf.folds]
            clfs.append(wf.final_model.named_steps["clf"].estimator_)
            epochs = [c.n_epochs_ for c in clfs if c is not None]
            best = [c.best_epoch_ for c in clfs if c is not None]
            print(f"  epochs run per fit {epochs}; best epoch {best}")
    print("out of sample, each model's own rows:")
    for name, wf in runs.items():
        print("  " + _row(name, model_metrics(y, wf.oos_proba, s.confidence_threshold)))
    if len(runs) == 2:
        both = runs["lstm"].oos_mask & runs["lightgbm"].oos_mask
        print(f"out of sample, the {int((both & np.isfinite(y)).sum()):,} labelled rows both models predict:")
        for name, wf in runs.items():
            p = np.where(both[:, None], wf.oos_proba, np.nan)
            print("  " + _row(name, model_metrics(y, p, s.confidence_threshold)))
