"""Helpers shared by the live-loop tests: settings, a started LiveBot on the simulator, stepping."""

from __future__ import annotations

import asyncio
import time

from perpbot.bot.live import LiveBot
from perpbot.config import load_settings
from perpbot.exchange.feed import Candle
from perpbot.exchange.ccxt_adapter import make_exchange
from perpbot.exchange.executor import Executor, RetryPolicy
from perpbot.sim.accounting import round_to_step

SYM = "SOL/USDT:USDT"
FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.04, lookup_attempts=2)


def settings(sim, tmp_path, **kw):
    base = dict(api_key=sim.api_key, api_secret=sim.api_secret, api_passphrase=sim.passphrase, leverage=5,
                slippage=0.0, output_dir=tmp_path, warmup_bars=0, live_window=1000, stop_loss=1.0, take_profit=2.0)
    return load_settings(None, **{**base, **kw})


async def make_bot(sim, s, ledger, run_id, strategy="ema-cross", resume=False, control=None, **kw) -> LiveBot:
    """A started bot on the simulator; its exchange clock is the replay clock (a candle stepped in
    arrives at its close, as the feed delivers it live)."""
    ex = make_exchange(s, config={"enableRateLimit": False})
    sim.point(ex)
    kw.setdefault("clock", lambda: sim.market.now_ms)
    bot = LiveBot(s, Executor(ex, s, ledger=ledger, run_id=run_id, retry=FAST), strategy, ledger=ledger,
                  run_id=run_id, control=control, **kw)
    await bot.start(resume=resume)
    return bot


def candle(d: dict) -> Candle:
    return Candle(d["timestamp"], d["open"], d["high"], d["low"], d["close"], d["volume"])


async def step(sim, bot, n: int = 1) -> list:
    out = []
    for _ in range(n):
        out.append(await bot.on_candle(candle(sim.advance()[0])))
    return out


def script(bot, signals: dict[int, int]) -> None:
    """Replace the strategy by fixed calls: {candle open ms: signal} (0 elsewhere)."""
    def decide(frame):
        ts = frame["timestamp"].iloc[-1]
        return signals.get(int(ts.value // 1_000_000), 0), None
    bot.signals.decide = decide


def ms(candles, i: int) -> int:
    return int(candles.timestamp.iloc[i].value // 1_000_000)


def subscribed(sim) -> bool:
    """A websocket candle subscription is open on the simulator."""
    return any(a.get("channel", "").startswith("candle") for c in list(sim.hub.conns) for a in list(c.subs.values()))


async def until(cond, what: str, timeout: float = 10.0) -> None:
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def paper_then_live(sim, s, ledger, data, start: int, n: int, strategy: str = "ema-cross"):
    """The paper bot over candles ``start .. start + n`` (with the live bot's 1,000-candle window before
    them), then a started live bot stepped through the same ``n`` candles on the simulator into a new
    live run of ``ledger``. Returns (the paper exchange's result, the live run id, the live bar number of
    paper bar 0)."""
    from perpbot.bot.paper import PaperBot

    candles, funding, mark = data
    rid = ledger.start_run("live", strategy, SYM, "5m")
    paper = PaperBot(s, strategy, funding=funding, mark=mark)
    for row in candles.iloc[start - 1000:start].itertuples(index=False):  # the live bot's window
        paper.signals.window.append(tuple(row))
    for row in candles.iloc[start:start + n].itertuples(index=False):
        paper.on_candle(row.timestamp, row.open, row.high, row.low, row.close, row.volume)

    async def go():
        bot = await make_bot(sim, s, ledger, rid, strategy, flush_every=50)
        try:
            await step(sim, bot, n)
            bot.flush()
        finally:
            await bot.ex.close()

    asyncio.run(go())
    return paper.exchange.result(), rid, ms(candles, start) // 300_000


def first_hit(candles, i: int, side: int, stop_pct: float = 1.0, tp_pct: float = 2.0):
    """(level kind, candle index, stop, take-profit) of a ``side`` position entered at candle ``i``'s close:
    the first later candle whose range reaches the stop (checked first, as the venue does) or the
    take-profit, on the 0.01 tick."""
    entry = float(candles.close.iloc[i])
    sl = float(round_to_step(entry * (1 - side * stop_pct / 100), 0.01))
    tp = float(round_to_step(entry * (1 + side * tp_pct / 100), 0.01))
    for k in range(i + 1, len(candles)):
        lo, hi = float(candles.low.iloc[k]), float(candles.high.iloc[k])
        if (side > 0 and lo <= sl) or (side < 0 and hi >= sl):
            return "stop_loss", k, sl, tp
        if (side > 0 and hi >= tp) or (side < 0 and lo <= tp):
            return "take_profit", k, sl, tp
    raise AssertionError("no level reached in the data")
