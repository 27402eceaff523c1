"""``perpbot optimize --trials 50`` on the whole SOLUSDT 5m file (86,400 bars), on 2 cores.

Target (issue 9): finishes within 30 minutes on 2 cores. Runs the real command in a subprocess
(``--workers 2``: two processes share the SQLite study), then prints the wall time, the trial
counts and the honest result from ``<output_dir>/optimize/<study>/result.json``: the chosen
trial, its out-of-sample Sharpe ratio on the search period, the inner hold-out, DSR, PBO and
the verdict.

    .venv/bin/python benchmarks/bench_optimize.py [--trials 50] [--workers 2] [--out runs/bench-optimize]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="runs/bench-optimize")
    ap.add_argument("--study", default=None)
    a = ap.parse_args()
    study = a.study or f"bench-{time.strftime('%Y%m%d-%H%M%S')}"
    env = {**os.environ, "PERPBOT_OUTPUT_DIR": a.out, "COLUMNS": "160"}
    cmd = [sys.executable, "-m", "perpbot", "optimize", "--study", study, "--trials", str(a.trials),
           "--workers", str(a.workers)]
    print("command:", " ".join(["perpbot"] + cmd[3:]), f"(PERPBOT_OUTPUT_DIR={a.out})", flush=True)
    t = time.perf_counter()
    res = subprocess.run(cmd, env=env)
    wall = time.perf_counter() - t
    if res.returncode:
        sys.exit(f"perpbot optimize failed (exit {res.returncode}) after {wall:.0f} s")
    r = json.loads((Path(a.out) / "optimize" / study / "result.json").read_text())
    h = r["honesty"]
    print(f"\nwall time {wall / 60:.1f} min for {r['n_trials']} trials ({r['n_complete']} complete, "
          f"{r['n_pruned']} pruned, {r['n_failed']} failed), {a.workers} worker processes")
    print(f"chosen trial {r['chosen']['number']}: search-period OOS Sharpe {r['chosen']['value']:.2f}, "
          f"{r['chosen']['trades']} trades, config {json.dumps(r['chosen']['config'])}")
    ho = r["holdout"]
    print(f"inner hold-out from {r['holdout_start']}: return {ho.get('total_return', 0) * 100:+.2f} %, "
          f"Sharpe {r['holdout_sharpe']:.2f}, {ho.get('trades')} trades, max DD {(ho.get('max_drawdown') or 0) * 100:.2f} %")
    print(f"DSR {h['sharpe']['dsr']}, trials' Sharpe variance {r['trials_sharpe_variance']}, "
          f"PBO {(h['pbo'] or {}).get('pbo')}")
    print(f"verdict: {h['verdict']['verdict']}: {'; '.join(h['verdict']['reasons'])}")
