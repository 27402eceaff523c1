"""Cost of the 1m micro-metrics on real candles: what a /scalp answer pays before any network.

Feeds ``--symbols`` copies of the real SOLUSDT 1m candles (720 each, the default retention)
into :class:`perpbot.intel.micro.MicroMetrics` and measures (``time.perf_counter``, median and
p99 over ``--repeat`` runs):

* ``snapshot``: ATR(1m) + volume profile (POC, value area, HVN, LVN) of one symbol;
* ``update``: appending one new closed candle to one symbol;
* ``save`` / ``load``: the atomic Parquet state of every symbol.

    .venv/bin/python benchmarks/bench_intel.py [--symbols 20] [--repeat 200]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from perpbot.intel.micro import MicroMetrics

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance-usdm" / "SOLUSDT-1m.parquet"


def _ms(samples: list[float]) -> str:
    s = sorted(samples)
    return f"median {statistics.median(s) * 1e3:.3f} ms, p99 {s[int(0.99 * (len(s) - 1))] * 1e3:.3f} ms"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    df = pd.read_parquet(DATA)
    ts = (df["timestamp"].astype("int64") // 1_000_000).tolist()
    rows = [list(r) for r in zip(ts, df["open"], df["high"], df["low"], df["close"], df["volume"], strict=True)]
    with tempfile.TemporaryDirectory() as tmp:
        m = MicroMetrics(state_file=Path(tmp) / "micro.parquet")
        syms = [f"S{i}/USDT:USDT" for i in range(args.symbols)]
        for i, s in enumerate(syms):
            m.update(s, rows[i * 100:i * 100 + 720])
        snap, upd, save, load = [], [], [], []
        for k in range(args.repeat):
            s = syms[k % len(syms)]
            t0 = time.perf_counter()
            m.snapshot(s)
            snap.append(time.perf_counter() - t0)
            nxt = rows[(k % len(syms)) * 100 + 720 + k // len(syms)]
            t0 = time.perf_counter()
            m.update(s, [nxt])
            upd.append(time.perf_counter() - t0)
        for _ in range(max(5, args.repeat // 20)):
            t0 = time.perf_counter()
            m.save()
            save.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            MicroMetrics(state_file=m.state_file).load()
            load.append(time.perf_counter() - t0)
        size = m.state_file.stat().st_size
    print(f"{args.symbols} symbols x 720 real SOLUSDT 1m candles")
    print(f"snapshot (ATR(1m) + volume profile, one symbol): {_ms(snap)}")
    print(f"update (one closed candle):                      {_ms(upd)}")
    print(f"save (atomic Parquet, every symbol, {size / 1024:.0f} KiB):     {_ms(save)}")
    print(f"load (every symbol):                             {_ms(load)}")


if __name__ == "__main__":
    main()
