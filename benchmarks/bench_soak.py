"""Soak: the paper node over many real candles, fed one at a time, recording to its ledger.

The paper bot (:class:`perpbot.bot.paper.PaperBot`, the loop of ``perpbot run --mode paper``) is fed
``--candles`` real SOLUSDT 5m candles one by one with an SQLite ledger, a notifier-style event
subscriber draining the bus, and the status updates the dashboard reads. Every ``--every`` candles
it samples the process's resident memory (RSS, ``/proc/self/status`` VmRSS), its threads and open
file descriptors. It prints the RSS at each quarter, the growth over the last half (flat means
the last half grows by less than ``--flat-mb``), the thread / descriptor counts at the start and
the end, and the decision latency (the bot's own time per candle, features to ledger) p50 / p99.

    .venv/bin/python benchmarks/bench_soak.py [--candles 50000] [--strategy ema-cross|ai] [--every 1000]
    .venv/bin/python benchmarks/bench_soak.py --two-symbols [--candles 50000]

``--strategy ai`` trains a logreg model on the candles before the soak window first (a few
minutes). ``--two-symbols``: the portfolio paper node (:mod:`perpbot.bot.paper_portfolio`) trades
BTCUSDT and ETHUSDT 1h (the shared data's longest common history of two symbols: 54,000 candles) on one account with
ema-cross, the same ledger, subscriber and samples; latency is per cycle (both symbols) and per symbol
(half of it).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PERPBOT_DATA_DIR", ROOT.parent / "shared" / "data")) / "binance-usdm"


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux ``VmRSS``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def n_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candles", type=int, default=50_000)
    ap.add_argument("--strategy", default="ema-cross")
    ap.add_argument("--every", type=int, default=1_000)
    ap.add_argument("--flat-mb", type=float, default=20.0)
    ap.add_argument("--two-symbols", action="store_true")
    args = ap.parse_args()
    if args.two_symbols:
        return soak_two(args)

    from perpbot.bot.control import BotControl
    from perpbot.bot.paper import PaperBot
    from perpbot.config import load_settings
    from perpbot.data.market import load_market
    from perpbot.logs import configure_logging
    from perpbot.storage import Ledger

    tmp = Path(tempfile.mkdtemp(prefix="perpbot-soak-"))
    configure_logging(tmp / "logs")  # as the node: JSON log file (rotated), warnings on the console
    full = load_market(DATA / "SOLUSDT-5m.parquet", "5m", funding_file=DATA / "SOLUSDT-funding.parquet")
    n = min(args.candles, len(full.candles))
    start = len(full.candles) - n
    s = load_settings(None, output_dir=tmp, model="logreg", train_days=20, test_days=20,
                      candles_file=DATA / "SOLUSDT-5m.parquet", funding_file=DATA / "SOLUSDT-funding.parquet",
                      mark_file=None, model_path=tmp / "model.joblib")
    bundle = None
    if args.strategy != "ema-cross" and start > 10_000:
        from perpbot.app.jobs import train_job

        t0 = time.perf_counter()
        bundle = train_job(s, market=full.slice(0, start), strategy=args.strategy).bundle
        print(f"trained {bundle.version} on {start:,} candles in {time.perf_counter() - t0:.0f} s")
    market = full.slice(start)
    ledger = Ledger(f"sqlite:///{tmp / 'ledger.db'}")
    control = BotControl(mode="paper", strategy=args.strategy, symbol=s.symbol, timeframe=s.timeframe)
    sub = control.events.subscribe()
    drained = [0]
    stop = threading.Event()

    def drain() -> None:  # a notifier's subscription, kept empty
        while not stop.is_set():
            if sub.get(timeout=0.2) is not None:
                drained[0] += 1

    threading.Thread(target=drain, daemon=True).start()
    run_id = ledger.start_run("paper", args.strategy, s.symbol, s.timeframe, config=s.public_dict())
    bot = PaperBot(s, args.strategy, bundle=bundle, funding=market.funding, ledger=ledger, run_id=run_id,
                   control=control, keep_last=10_000)  # as the node on live prices (perpbot.app.dry_run)
    c = market.candles
    cols = [c[k].to_numpy() for k in ("open", "high", "low", "close", "volume")]
    stamps = list(c["timestamp"])
    samples = []
    threads0, fds0 = threading.active_count(), n_fds()
    t0 = time.perf_counter()
    for i in range(n):
        bot.on_candle(stamps[i], *(float(col[i]) for col in cols))
        if (i + 1) % args.every == 0 or i + 1 == n:
            samples.append((i + 1, rss_mb(), threading.active_count(), n_fds()))
    wall = time.perf_counter() - t0
    lat = np.array(list(bot.latency_ms)[-5_000:])
    bot.finish()
    stop.set()
    ledger.close()

    report(args, n, wall, len(bot.exchange.result().trades), drained[0], samples, threads0, fds0, lat)


def report(args, n, wall, trades, drained, samples, threads0, fds0, lat, per_symbol: int = 1) -> None:
    print(f"{n:,} candles, strategy {args.strategy}, {wall:.0f} s ({1e3 * wall / n:.2f} ms per candle); "
          f"{trades} trades; {drained:,} events drained")
    for q in (0.25, 0.5, 0.75, 1.0):
        k, r, th, fd = samples[max(0, int(round(q * len(samples))) - 1)]
        print(f"  after {k:>6,} candles: RSS {r:7.1f} MB, threads {th}, fds {fd}")
    half = samples[len(samples) // 2:]
    growth = half[-1][1] - half[0][1]
    print(f"RSS growth over the last half: {growth:+.1f} MB ({'flat' if growth < args.flat_mb else 'GROWING'}); "
          f"peak {max(x[1] for x in samples):.1f} MB")
    print(f"threads {threads0} -> {samples[-1][2]}, file descriptors {fds0} -> {samples[-1][3]}")
    print(f"decision latency (last {len(lat):,} cycles): p50 {np.percentile(lat, 50):.2f} ms, "
          f"p99 {np.percentile(lat, 99):.2f} ms" + (f" per cycle of {per_symbol} symbols; per symbol p50 "
                                                    f"{np.percentile(lat, 50) / per_symbol:.2f} ms, p99 "
                                                    f"{np.percentile(lat, 99) / per_symbol:.2f} ms"
                                                    if per_symbol > 1 else ""))


def soak_two(args) -> None:
    """The portfolio paper node over SOLUSDT + BTCUSDT 5m (see the module docstring)."""
    from perpbot.app.portfolio import portfolio_paper_job  # noqa: F401  (the job's own imports, warmed)
    from perpbot.bot.control import BotControl
    from perpbot.bot.paper_portfolio import PortfolioPaperBot
    from perpbot.config import load_settings
    from perpbot.data.market import align_markets, load_market
    from perpbot.logs import configure_logging
    from perpbot.storage import Ledger

    tmp = Path(tempfile.mkdtemp(prefix="perpbot-soak-"))
    configure_logging(tmp / "logs")
    files = {"BTC/USDT:USDT": ("BTCUSDT-1h.parquet", "BTCUSDT-funding.parquet"),
             "ETH/USDT:USDT": ("ETHUSDT-1h.parquet", "ETHUSDT-funding.parquet")}
    markets = align_markets({s: load_market(DATA / c, "1h", funding_file=DATA / f) for s, (c, f) in files.items()})
    n = min(args.candles, min(len(m.candles) for m in markets.values()))
    markets = {s: m.slice(len(m.candles) - n) for s, m in markets.items()}
    settings = {s: load_settings(None, output_dir=tmp, symbol=s, timeframe="1h", candles_file=DATA / c,
                                 funding_file=DATA / f, mark_file=None) for s, (c, f) in files.items()}
    ledger = Ledger(f"sqlite:///{tmp / 'ledger.db'}")
    control = BotControl(mode="paper", strategy="ema-cross", symbol=",".join(files), timeframe="1h")
    sub = control.events.subscribe()
    drained = [0]
    stop = threading.Event()

    def drain() -> None:
        while not stop.is_set():
            if sub.get(timeout=0.2) is not None:
                drained[0] += 1

    threading.Thread(target=drain, daemon=True).start()
    run_ids = {s: ledger.start_run("paper", "ema-cross", s, "1h", config=settings[s].public_dict()) for s in files}
    bot = PortfolioPaperBot(settings, "ema-cross", funding={s: m.funding for s, m in markets.items()},
                            control=control, keep_last=10_000, ledger=ledger, run_ids=run_ids)
    cols = {s: np.column_stack([m.candles[k].to_numpy(np.float64) for k in ("open", "high", "low", "close", "volume")])
            for s, m in markets.items()}
    stamps = list(markets["BTC/USDT:USDT"].candles["timestamp"])
    samples = []
    threads0, fds0 = threading.active_count(), n_fds()
    t0 = time.perf_counter()
    for i in range(n):
        bot.on_candles(stamps[i], {s: tuple(float(x) for x in cols[s][i]) for s in files})
        if (i + 1) % args.every == 0 or i + 1 == n:
            samples.append((i + 1, rss_mb(), threading.active_count(), n_fds()))
    wall = time.perf_counter() - t0
    lat = np.array(list(bot.latency_ms)[-5_000:])
    result = bot.finish()
    stop.set()
    ledger.close()
    args.strategy = "ema-cross"
    report(args, n, wall, len(result.trades), drained[0], samples, threads0, fds0, lat, per_symbol=len(files))


if __name__ == "__main__":
    main()
