"""Live-loop latency: candle close -> order request sent, over >= 1,000 cycles against the simulator.

The local Bitget simulator (:mod:`perpbot.devtools.bitget_sim`, in a child process so that its
server does not compete with the bot for the GIL, as a real venue would not) replays real
SOLUSDT 5m candles; the real ccxt.pro client trades it through :class:`~perpbot.bot.live.LiveBot`,
one cycle per closed candle over 127.0.0.1. The strategy's decision is computed every cycle (the ema-cross rule on the
1,000-candle window, or with ``--ai`` a logistic-regression model walk-forward trained on the
candles before the replay: features -> model -> threshold), then the signal is forced to
alternate, so that EVERY cycle sends orders (reduce-only exit + new entry with TP/SL, each
recorded in the SQLite ledger before its request).

Measured per cycle (``time.perf_counter``):

* ``latency``: from the moment the closed candle reaches the bot to just before the first
  order's HTTP request leaves (stamped in ccxt's ``fetch``, so the order's own network time is
  excluded): window update, ATR, decision, risk sizing, ledger write, ccxt request building and
  signing, plus any wait for the position/balance answer that runs concurrently with the
  decision;
* ``processing``: ``latency`` minus that wait (the bot's own work; no network at all);
* ``decision``: window + features + model alone.

    .venv/bin/python benchmarks/bench_latency.py [--cycles 1000] [--ai] [--feed]

``--feed`` drives the loop through :class:`~perpbot.exchange.feed.CandleFeed` websockets instead of
calling the bot right after each ``sim.advance()`` (same measurement; the feed's delivery delay
is not part of it). Target: p99 latency < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PERPBOT_DATA_DIR", ROOT.parent / "shared" / "data")) / "binance-usdm"
WINDOW = 1000


def _serve_sim(conn, n_rows: int, start: int, capital: float) -> None:
    """Child process: a BitgetSim on the real candles, driven by commands on ``conn``."""
    from perpbot.data import load_candles, load_funding
    from perpbot.devtools.bitget_sim import BitgetSim

    candles = load_candles(DATA / "SOLUSDT-5m.parquet").iloc[:n_rows].reset_index(drop=True)
    sim = BitgetSim(candles=candles, funding=load_funding(DATA / "SOLUSDT-funding.parquet"),
                    mark=load_candles(DATA / "SOLUSDT-8h-mark.parquet"), start_bar=start, capital=capital)
    sim.start()
    conn.send({"base_url": sim.base_url, "ws_public": sim.ws_url_public, "ws_private": sim.ws_url_private,
               "api_key": sim.api_key, "api_secret": sim.api_secret, "passphrase": sim.passphrase})
    try:
        while True:
            cmd = conn.recv()
            if cmd == "advance":
                conn.send(sim.advance()[0])
            elif cmd == "now":
                conn.send(sim.market.now_ms)
            elif cmd == "subscribed":
                conn.send(any(a.get("channel", "").startswith("candle") for c in list(sim.hub.conns)
                              for a in list(c.subs.values())))
            else:
                break
    finally:
        sim.stop()
        conn.send(None)


class RemoteSim:
    """The simulator in its own process, so that its server thread does not share the bot's GIL
    (as a real venue would not): ``point``, ``advance``, ``now_ms``, ``subscribed``, ``stop``."""

    def __init__(self, n_rows: int, start: int, capital: float) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve_sim, args=(child, n_rows, start, capital), daemon=True)
        self.proc.start()
        self.info = self.conn.recv()
        self.api_key, self.api_secret = self.info["api_key"], self.info["api_secret"]
        self.passphrase = self.info["passphrase"]
        self.now_ms = self._ask("now")  # the replay clock, kept here (the feed reads it often)

    def point(self, ex) -> None:
        from perpbot.devtools.bitget_sim.server import REST_API_KEYS

        ws = {"public": self.info["ws_public"], "private": self.info["ws_private"],
              "utaPublic": self.info["ws_public"], "utaPrivate": self.info["ws_private"]}
        api = {k: self.info["base_url"] for k in REST_API_KEYS}
        api["ws"], api["demo"] = dict(ws), dict(ws)
        ex.urls["api"] = api

    def _ask(self, cmd: str):
        self.conn.send(cmd)
        return self.conn.recv()

    def advance(self) -> dict:
        d = self._ask("advance")
        self.now_ms = d["timestamp"] + 300_000
        return d

    def subscribed(self) -> bool:
        return self._ask("subscribed")

    def stop(self) -> None:
        self._ask("stop")
        self.proc.join(15)


def percentiles(x) -> str:
    a = np.asarray(x, dtype=np.float64)
    return (f"p50 {np.percentile(a, 50):7.2f}  p90 {np.percentile(a, 90):7.2f}  p99 {np.percentile(a, 99):7.2f}  "
            f"max {a.max():7.2f} ms")


def train_model(settings, candles, funding, mark):
    from perpbot.app.jobs import train_job
    from perpbot.data.market import MarketData

    market = MarketData(candles=candles.reset_index(drop=True), funding=funding, mark=mark, intrabar=None,
                        timeframe="5m", source="bench")
    return train_job(settings, market=market).bundle


async def replay(args, sim, settings, ledger, run_id, bundle) -> tuple[list, list]:
    from perpbot.bot.live import LiveBot
    from perpbot.exchange.feed import Candle, CandleFeed
    from perpbot.exchange.ccxt_adapter import make_exchange
    from perpbot.exchange.executor import Executor

    ex = make_exchange(settings, config={"enableRateLimit": False})
    sim.point(ex)
    bot = LiveBot(settings, Executor(ex, settings, ledger=ledger, run_id=run_id), "ai" if bundle else "ema-cross",
                  bundle=bundle, ledger=ledger, run_id=run_id, clock=lambda: sim.now_ms)  # replay clock: fresh candles
    decide, decisions, cycles = bot.signals.decide, [], []

    def flip(frame):  # the real decision every cycle, then an alternating signal: orders every cycle
        t = time.perf_counter()
        _, proba = decide(frame)
        decisions.append((time.perf_counter() - t) * 1e3)
        return (1 if len(decisions) % 2 else -1), proba

    try:
        await bot.start()
        bot.signals.decide = flip
        decisions.clear()
        if args.feed:
            feed = CandleFeed(ex, settings.symbol, "5m", last_timestamp=bot.last_ts, clock=lambda: sim.now_ms,
                              reconnect_base=0.05, poll_interval=0.05)
            seen: list = []

            async def on_candle(c):
                seen.append(await bot.on_candle(c))
            task = asyncio.ensure_future(feed.run(on_candle))
            while not await asyncio.to_thread(sim.subscribed):
                await asyncio.sleep(0.01)
            for i in range(args.cycles):
                await asyncio.to_thread(sim.advance)
                while len(seen) < i + 1:
                    await asyncio.sleep(0.0005)
            feed.stop()
            await task
            cycles = seen
        else:
            for _ in range(args.cycles):
                d = sim.advance()
                cycles.append(await bot.on_candle(Candle(d["timestamp"], d["open"], d["high"], d["low"], d["close"],
                                                         d["volume"])))
        bot.flush()
    finally:
        await ex.close()
    return cycles, decisions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--ai", action="store_true", help="decide with a logistic-regression model (trained first)")
    ap.add_argument("--feed", action="store_true", help="deliver candles through the CandleFeed websocket")
    args = ap.parse_args()
    if args.cycles < 1:
        sys.exit("--cycles must be >= 1")
    from perpbot.config import load_settings
    from perpbot.data import load_candles, load_funding
    from perpbot.logs import configure_logging
    from perpbot.storage.ledger import Ledger

    configure_logging(None, "warning", "error")
    for name in ("ccxt", "aiohttp", "asyncio"):
        logging.getLogger(name).setLevel(logging.ERROR)
    all_candles = load_candles(DATA / "SOLUSDT-5m.parquet")
    funding, mark = load_funding(DATA / "SOLUSDT-funding.parquet"), load_candles(DATA / "SOLUSDT-8h-mark.parquet")
    train_n = 12_000 if args.ai else 0
    start = train_n + WINDOW
    candles = all_candles.iloc[:start + args.cycles + 5].reset_index(drop=True)
    tmp = Path(tempfile.mkdtemp(prefix="perpbot-bench-"))
    sim = RemoteSim(len(candles), start, 10_000.0)
    try:
        s = load_settings(None, api_key=sim.api_key, api_secret=sim.api_secret, api_passphrase=sim.passphrase,
                          leverage=5, slippage=0.0, risk_per_trade=0.1, cooldown_bars=0, warmup_bars=0,
                          live_window=WINDOW, max_daily_loss=100, max_drawdown=100, output_dir=tmp, model="logreg",
                          train_days=20, test_days=10, label_horizon=24, confidence_threshold=0.4,
                          ledger_url=f"sqlite:///{tmp / 'ledger.db'}")
        bundle = None
        if args.ai:
            t = time.perf_counter()
            bundle = train_model(s, candles.iloc[:train_n + WINDOW], funding, mark)
            print(f"trained {bundle.version} on {train_n + WINDOW:,} candles in {time.perf_counter() - t:.1f} s")
        ledger = Ledger(s.ledger)
        rid = ledger.start_run("live", "ai" if args.ai else "ema-cross", s.symbol, s.timeframe, note="bench")
        t0 = time.perf_counter()
        cycles, decisions = asyncio.run(replay(args, sim, s, ledger, rid, bundle))
        wall = time.perf_counter() - t0
    finally:
        sim.stop()
    done = [c for c in cycles if c is not None]
    sent = [c for c in done if c["orders"]]
    lat = [c["latency_ms"] for c in sent]
    proc = [c["latency_ms"] - c["wait_ms"] for c in sent]
    n_orders = sum(len(c["orders"]) for c in done)
    trades = ledger.trades(rid)
    print(f"live loop vs BitgetSim, SOLUSDT 5m, window {WINDOW} candles, decision: "
          f"{'logreg model (features -> model -> threshold)' if args.ai else 'ema-cross rule'}, "
          f"delivery: {'CandleFeed websocket' if args.feed else 'direct after sim.advance()'}")
    print(f"cycles {len(done)} (with orders {len(sent)}), orders sent {n_orders}, trades closed {len(trades)}, "
          f"wall {wall:.1f} s ({wall / max(len(done), 1) * 1e3:.1f} ms per cycle incl. the simulator)")
    print(f"  candle -> order request (latency)     {percentiles(lat)}")
    print(f"  ... minus wait for position/balance   {percentiles(proc)}")
    print(f"  decision alone (window+features+model) {percentiles(decisions)}")
    p99 = float(np.percentile(lat, 99))
    print(f"target p99 < 50 ms: {'met' if p99 < 50 else 'NOT met'} ({p99:.2f} ms)")


if __name__ == "__main__":
    main()
