"""SQLite ledger write latency by journal mode, and concurrent writers.

Per write (``time.perf_counter`` around the ledger call, SQLite file on the project's disk):

* ``order``: one ``record_order`` (the live loop writes each order before sending it);
* ``paper cycle``: the transaction of a paper cycle that closed a trade — the trade with its
  orders and fills, a position snapshot, a risk event, the 10 equity rows buffered since the
  last write and the account checkpoint (``Ledger.record_run_bulk``);
* ``replay``: a whole paper replay of real SOLUSDT 5m candles (ema-cross), wall time per
  candle, ledger writes included.

for three settings of the same file: SQLite's defaults (rollback journal, synchronous=FULL),
WAL + synchronous=FULL, and what the ledger uses, WAL + synchronous=NORMAL (commits are not
fsynced; WAL keeps them atomic; a power loss may lose the last commits, never corrupt).
Then ``--writers`` threads write paper-cycle transactions into one file at once: every
write must succeed; the wait for the lock shows in the latency.

    .venv/bin/python benchmarks/bench_ledger.py [--writes 300] [--candles 2000] [--writers 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PERPBOT_DATA_DIR", ROOT.parent / "shared" / "data")) / "binance-usdm"
MODES = {"rollback journal + synchronous=FULL (SQLite default)": ("DELETE", "FULL"),
         "WAL + synchronous=FULL": ("WAL", "FULL"),
         "WAL + synchronous=NORMAL (the ledger)": ("WAL", "NORMAL")}


def open_ledger(path: Path, journal: str, sync: str):
    """A Ledger on ``path`` whose connections use this journal mode and synchronous level."""
    from perpbot.storage import Ledger

    led = Ledger(f"sqlite:///{path}")
    led.close()

    @sa.event.listens_for(led.engine, "connect")
    def _mode(dbapi_conn, _record):  # runs after the ledger's own connect settings
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA journal_mode={journal}")
        cur.execute(f"PRAGMA synchronous={sync}")
        cur.close()

    return led


def cycle_rows(candles: pd.DataFrame, i: int, k: int = 0) -> dict:
    bar = pd.Timedelta(minutes=5)
    t, o = candles["timestamp"].iloc[i], float(candles["open"].iloc[i])
    trade = pd.DataFrame([dict(trade_id=i + 1, side=1, qty=2.5, entry_time=candles["timestamp"].iloc[i - 10],
                               entry_price=float(candles["open"].iloc[i - 10]), exit_time=t, exit_price=o,
                               exit_reason="take_profit", gross_pnl=1.0, fees=0.2, funding=0.0, pnl=0.8,
                               entry_bar=i - 10, exit_bar=i, leverage=3.0, margin=50.0, stop_loss=o * 0.98,
                               take_profit=o, liquidation_price=o * 0.7)])
    eq = pd.DataFrame({"time": candles["timestamp"].iloc[i - 9:i + 1] + bar,
                       "equity": 1000 + candles["close"].iloc[i - 9:i + 1], "position_qty": 0.0})
    return dict(trades=trade, equity=eq,
                positions=pd.DataFrame([dict(time=t + bar, side=0, qty=0.0, mark_price=o)]),
                risk_events=pd.DataFrame([dict(time=t, bar=i, event="cooldown", value=float(k))]),
                checkpoint={"bars": i + 1, "state": [1000.0] * 25, "writer": k})


def pct(xs: list[float]) -> str:
    a = np.asarray(xs) * 1e3
    return f"p50 {np.percentile(a, 50):6.2f} ms   p99 {np.percentile(a, 99):6.2f} ms"


def bench_writes(tmp: Path, candles: pd.DataFrame, n: int, rounds: int = 3) -> None:
    """Modes interleaved in ``rounds`` (a busy machine slows all of them alike)."""
    import sqlite3

    print(f"per write, {n} writes per mode ({rounds} interleaved rounds)")
    per_round = max(1, n // rounds)
    led = {name: open_ledger(tmp / f"w-{j}.db", *mode) for j, (name, mode) in enumerate(MODES.items())}
    rid = {name: led[name].start_run("paper", "ema-cross", "SOL/USDT:USDT", "5m") for name in MODES}
    raw = {}
    for j, (name, (journal, sync)) in enumerate(MODES.items()):
        raw[name] = sqlite3.connect(tmp / f"raw-{j}.db", isolation_level=None)
        raw[name].execute(f"PRAGMA journal_mode={journal}")
        raw[name].execute(f"PRAGMA synchronous={sync}")
        raw[name].execute("CREATE TABLE t (id INTEGER PRIMARY KEY, time TEXT, equity REAL)")
    lat = {name: {"commit": [], "order": [], "cycle": []} for name in MODES}
    k = 0
    for _ in range(rounds):
        for name in MODES:
            for j in range(per_round):
                k += 1
                t0 = time.perf_counter()
                raw[name].execute("BEGIN IMMEDIATE")
                raw[name].execute("INSERT INTO t (time, equity) VALUES (?, ?)", ("2025-01-01 00:00:00", 1000.0 + j))
                raw[name].execute("COMMIT")
                lat[name]["commit"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                led[name].record_order(rid[name], client_order_id=f"b-{k}", time=candles["timestamp"].iloc[j],
                                       side="buy", type="market", qty=1.0)
                lat[name]["order"].append(time.perf_counter() - t0)
                rows = cycle_rows(candles, 20 + (k % (len(candles) - 20)))
                rows["trades"]["trade_id"] = k
                t0 = time.perf_counter()
                led[name].record_run_bulk(rid[name], **rows)
                lat[name]["cycle"].append(time.perf_counter() - t0)
    for name in MODES:
        led[name].close()
        raw[name].close()
        x = lat[name]
        print(f"  {name:<52} one-row commit {pct(x['commit'])} | order {pct(x['order'])} | "
              f"paper cycle {pct(x['cycle'])}")


def bench_replay(tmp: Path, n: int) -> None:
    """Four paper bots in lockstep over the same candles (no ledger, then one per mode), so a
    busy machine slows them alike; each cycle (``PaperBot.on_candle``, ledger write included)
    timed."""
    from perpbot.bot.paper import PaperBot
    from perpbot.config import load_settings
    from perpbot.data.market import load_market_for

    s = load_settings(None, output_dir=tmp, funding=False, warmup_bars=60)
    market = load_market_for(s, DATA / "SOLUSDT-5m.parquet")
    c = market.candles.iloc[len(market.candles) - n:].reset_index(drop=True)
    bots = {"no ledger": PaperBot(s, "ema-cross")}
    for j, (name, mode) in enumerate(MODES.items()):
        led = open_ledger(tmp / f"r-{j}.db", *mode)
        bots[name] = PaperBot(s, "ema-cross", ledger=led, run_id=led.start_run("paper", "ema-cross", s.symbol, "5m"))
    quiet: dict[str, list[float]] = {k: [] for k in bots}
    writing: dict[str, list[float]] = {k: [] for k in bots}
    for row in c.itertuples(index=False):
        for name, bot in bots.items():
            before = bot.recorder.pending() if bot.recorder else 0
            t0 = time.perf_counter()
            bot.on_candle(row.timestamp, row.open, row.high, row.low, row.close, row.volume)
            dt = time.perf_counter() - t0
            wrote = bot.recorder is not None and bot.recorder.pending() <= before
            (writing if wrote else quiet)[name].append(dt)
    print(f"paper cycle of {n} candles (ema-cross), four bots in lockstep, ledger write inside the cycle")
    base = float(np.median(quiet["no ledger"]))
    for name in bots:
        w = writing[name]
        wtxt = (f"cycles that write ({len(w)}): {pct(w)}, +{(np.median(w) - base) * 1e3:.2f} ms over no ledger"
                if w else "")
        print(f"  {name:<52} other cycles {pct(quiet[name])}   {wtxt}")
    for bot in bots.values():
        if bot.ledger is not None:
            bot.ledger.close()


def bench_writers(tmp: Path, candles: pd.DataFrame, writers: int, n: int) -> None:
    from perpbot.storage import Ledger

    url = f"sqlite:///{tmp / 'concurrent.db'}"
    Ledger(url).close()
    lat: list[list[float]] = [[] for _ in range(writers)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(writers)

    def work(k: int) -> None:
        try:
            led = Ledger(url)
            rid = led.start_run("paper", f"writer-{k}", "SOL/USDT:USDT", "5m")
            barrier.wait()
            for j in range(n):
                rows = cycle_rows(candles, 20 + j, k)
                t0 = time.perf_counter()
                led.record_run_bulk(rid, **rows)
                lat[k].append(time.perf_counter() - t0)
            led.finish_run(rid)
            led.close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=work, args=(k,)) for k in range(writers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    print(f"{writers} writers at once, {n} paper-cycle writes each (WAL + NORMAL, BEGIN IMMEDIATE, retries)")
    print(f"  {pct([x for xs in lat for x in xs])}   {wall:.2f} s wall   failed writers: {len(errors)}"
          + (f" ({errors[0]!r})" if errors else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--writes", type=int, default=300)
    ap.add_argument("--candles", type=int, default=1000)
    ap.add_argument("--writers", type=int, default=3)
    args = ap.parse_args()
    from perpbot.data import load_candles
    from perpbot.logs import configure_logging

    configure_logging(None)
    candles = load_candles(DATA / "SOLUSDT-5m.parquet").iloc[: args.writes + 40].reset_index(drop=True)
    with tempfile.TemporaryDirectory(dir=ROOT) as d:
        tmp = Path(d)
        bench_writes(tmp, candles, args.writes)
        bench_replay(tmp, args.candles)
        bench_writers(tmp, candles, args.writers, args.writes)


if __name__ == "__main__":
    sys.exit(main())
