"""Size and build time of the HTML report for a full year of SOLUSDT 5m (86,400 bars), four strategies.

The AI's probabilities come from a saved model when ``--model`` names one (e.g. the model
``perpbot demo`` trained: runs/models/lightgbm.joblib), else from a look-ahead cheat that trades
far more often than a real model (a size stress test). Prints the trade counts, the time to build
the report (the honesty block is computed beforehand and timed apart), the file size and the bytes
of each part of the page (plotly.js, each figure, the compressed data block, CSS/JS/tables).

    .venv/bin/python benchmarks/bench_report.py [--model runs/models/lightgbm.joblib] [--out /tmp/report.html]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PERPBOT_DATA_DIR", ROOT.parent / "shared" / "data")) / "binance-usdm"


def lookahead_proba(close: np.ndarray, horizon: int = 12, move: float = 0.008) -> np.ndarray:
    fut = np.full(close.size, np.nan)
    fut[:-horizon] = close[horizon:] / close[:-horizon] - 1.0
    up = np.where(fut > move, 0.7, np.where(fut < -move, 0.1, 0.2))
    down = np.where(fut < -move, 0.7, np.where(fut > move, 0.1, 0.2))
    proba = np.column_stack([down, 1.0 - up - down, up])
    proba[~np.isfinite(fut)] = np.nan
    proba[:8640] = np.nan
    return proba


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="saved model bundle for the AI (default: look-ahead cheat)")
    ap.add_argument("--out", type=Path, default=None, help="report path (default: a temporary file)")
    args = ap.parse_args()

    from perpbot.backtest.honesty import honesty_for_runs
    from perpbot.backtest.runner import run_strategies, write_report
    from perpbot.config import load_settings
    from perpbot.data.market import load_market
    from perpbot.strategy.signals import BASELINES

    tmp = Path(tempfile.mkdtemp(prefix="bench-report-"))
    s = load_settings(None, output_dir=tmp, candles_file=DATA / "SOLUSDT-5m.parquet",
                      funding_file=DATA / "SOLUSDT-funding.parquet", mark_file=DATA / "SOLUSDT-8h-mark.parquet")
    market = load_market(s.candles_file, "5m", funding_file=s.funding_file, mark_file=s.mark_file)
    bundle = None
    if args.model:
        from perpbot.app.jobs import ai_probabilities, load_model_for

        bundle = load_model_for(s, args.model)
        proba = ai_probabilities(s, market, bundle)
    else:
        proba = lookahead_proba(market.candles["close"].to_numpy(np.float64))
    runs = run_strategies(s, market, ["ai", *BASELINES], proba=proba)
    print(f"{len(market.candles):,} candles; trades: " + ", ".join(f"{k} {len(r.result.trades):,}" for k, r in runs.items()))
    t = time.perf_counter()
    honesty = honesty_for_runs(s, market, runs)
    print(f"honesty block (2,000 resamples): {time.perf_counter() - t:.2f} s")
    out = args.out or tmp / "report.html"
    t = time.perf_counter()
    write_report(out, s, market, runs, honesty=honesty, model=bundle)
    print(f"report built and written: {time.perf_counter() - t:.2f} s -> {out}")
    text = out.read_text(encoding="utf-8")
    size = len(text.encode())
    print(f"size: {size:,} bytes ({size / 1e6:.2f} MB)")
    parts = {}
    for m in re.finditer(r"<script([^>]*)>(.*?)</script>", text, re.S):
        body = m.group(2)
        name = re.match(r'Plotly\.newPlot\("([^"]+)"', body)
        key = f"figure {name.group(1)}" if name else ("plotly.js" if "plotly.js" in body[:200] else
                                                      "data block" if "octet-stream" in m.group(1) else "report.js")
        parts[key] = parts.get(key, 0) + len(body.encode())
    parts["HTML, CSS, tables"] = size - sum(parts.values())
    for k, v in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"  {k:<24} {v:>10,} bytes")


if __name__ == "__main__":
    sys.exit(main())
