"""The paper node on live prices (freqtrade's "dry-run"): ``perpbot run --mode paper`` without
``--replay``.

The venue's closed candles (:class:`~perpbot.exchange.feed.CandleFeed`: websocket, REST back-fill
and fallback) and its settled funding rates (ccxt ``fetch_funding_rate_history``) drive the paper
bot (:class:`~perpbot.bot.paper.PaperBot`) and its simulated account, the backtester's own
accounting core: fees, slippage, funding, stops, liquidation. Nothing is sent to the venue and no
API key is needed; the run is recorded in the ledger as a ``paper`` run.

* **Warm-up.** At the start the last ``warmup_bars - 1`` closed candles are fetched by REST and fed
  to the bot first: they fill the strategy's trailing window and open nothing (the first decision
  is taken on the first candle that closes after the start, as at bar ``warmup_bars - 1`` of a
  backtest).
* **Funding.** The rates known at the start are fetched once; then, before each candle whose open
  time is on a whole hour (every candle for timeframes of an hour or more), the latest settled rates
  are fetched again, so an event at time T is known before the candle opening at T is processed and
  is charged there, as in the backtest. A failed fetch is logged and retried at the next hour.
  The funding mark price is the candle's open (no mark candles on a live feed).
* **Parity.** A backtest over the candles the node saw (:attr:`DryRun.candles`, history included)
  with the funding events it knew (:attr:`DryRun.funding`) and no mark candles makes the same
  trades (tests/test_dry_run.py). Both are written next to the run's outputs when it stops
  (``dry-run-<run>-candles.parquet``, ``dry-run-<run>-funding.parquet``) to reproduce it with
  ``perpbot backtest``.
* **Stopping** (Ctrl-C, SIGTERM, :meth:`CandleFeed.stop`): the simulated position is closed at the
  last close, the ledger gets every row, and the run its metrics.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from perpbot.app.paper import end_interrupted_run, record_paper_metrics
from perpbot.logs import get_logger

log = get_logger("perpbot.dry_run")

HOUR_MS = 3_600_000
KEEP_LAST = 10_000  # decisions and latencies a node on live prices keeps in memory (the ledger has them all)


@dataclass
class DryRun:
    """A dry run's outcome: the paper bot, its ledger run id (None without a ledger), the candles it
    saw (``timestamp`` UTC open time, ``open``..``close`` USDT, ``volume`` base asset) and the
    funding events it knew (``timestamp``, ``funding_rate``; None with funding off), and where those
    two were written (None without a ledger)."""

    bot: Any
    run_id: int | None
    candles: pd.DataFrame
    funding: pd.DataFrame | None
    files: dict = field(default_factory=dict)


def funding_frame(rows: list[dict] | None) -> pd.DataFrame | None:
    """:func:`perpbot.exchange.reads.funding_events` with ms timestamps, as :func:`perpbot.data.load_funding`."""
    from perpbot.exchange.reads import funding_events

    df = funding_events(rows)
    return None if df is None else df.assign(timestamp=df["timestamp"].astype("datetime64[ms, UTC]"))


async def run_dry(settings, strategy: str, exchange, *, bundle=None, ledger=None, control=None,
                  feed_options: dict | None = None, on_start: Callable | None = None,
                  flush_every: int = 100) -> DryRun:
    """Run the paper node on the live candles of ``exchange`` (an asyncio ccxt client, public
    endpoints only) until its feed stops; see the module docstring.

    Args:
        settings: :class:`perpbot.config.Settings` (symbol, timeframe, account and risk settings).
        strategy: a strategy name (``ai`` needs ``bundle``).
        ledger / control: where the run is recorded / the operator control (pause, resume,
            force-exit, status, events) shared with the interfaces.
        feed_options: extra :class:`~perpbot.exchange.feed.CandleFeed` options (tests: ``clock``).
        on_start: ``on_start(bot, feed)`` once the history is in and before the first live candle.
    Raises:
        whatever the venue raises while the history is fetched (nothing is recorded then); an
        error inside a cycle marks the run failed and propagates.
    """
    from perpbot.bot.paper import PaperBot
    from perpbot.data import timeframe_to_ms
    from perpbot.exchange.feed import CandleFeed
    from perpbot.exchange.reads import PublicReads

    tf_ms = timeframe_to_ms(settings.timeframe)
    reads = PublicReads(exchange, settings.symbol)
    use_funding = bool(settings.funding)
    funding = funding_frame(await reads.funding_rates(100)) if use_funding else None
    now = await reads.server_time()
    n_hist = max(settings.warmup_bars - 1, 0)
    history = await reads.closed_candles(settings.timeframe, tf_ms, now, n_hist) if n_hist else []
    model = bundle is not None
    run_id = None
    if ledger is not None:
        run_id = ledger.start_run("paper", strategy, settings.symbol, settings.timeframe, exchange=exchange.id,
                                  config={**settings.public_dict(), "dry_run": True},
                                  model_version=getattr(bundle, "version", None) if model else None,
                                  features_hash=getattr(bundle, "features_hash", None) if model else None,
                                  note=f"dry-run on {exchange.id} live prices")
    bot = PaperBot(settings, strategy, bundle=bundle, funding=funding, ledger=ledger, run_id=run_id,
                   flush_every=flush_every, control=control, keep_last=KEEP_LAST)
    if model and run_id is not None:  # `perpbot models promote FILE` swaps the model at a candle
        from perpbot.bot.promotion import ModelInbox

        bot.inbox = ModelInbox(settings.output_dir, run_id, symbol=settings.symbol, timeframe=settings.timeframe,
                               strategy=strategy)
    seen: list[tuple] = []

    def feed_candle(ts_ms: int, o: float, h: float, lo: float, c: float, v: float) -> None:
        seen.append((ts_ms, o, h, lo, c, v))
        bot.on_candle(pd.Timestamp(ts_ms, unit="ms", tz="UTC").as_unit("ms"), o, h, lo, c, v)  # as load_candles

    async def refresh_funding(ts_ms: int) -> None:
        if not use_funding or (ts_ms % HOUR_MS >= tf_ms and tf_ms < HOUR_MS):
            return
        try:
            fresh = funding_frame(await reads.funding_rates(100))
        except Exception as exc:  # noqa: BLE001 - the venue's error: logged, tried again at the next hour
            log.warning("dry_run_funding_failed", candle=ts_ms, error=f"{type(exc).__name__}: {exc}")
            return
        if fresh is None or not bot.exchange.add_funding(fresh):
            return
        bot.signals.funding = bot.funding = bot.exchange.funding_events  # the features see them too

    for row in history:
        feed_candle(int(row[0]), *(float(x) if x is not None else 0.0 for x in row[1:6]))
    feed = CandleFeed(exchange, settings.symbol, settings.timeframe, logger=log,
                      last_timestamp=int(history[-1][0]) if history else None, **(feed_options or {}))

    async def on_candle(candle) -> None:
        await refresh_funding(candle.timestamp)
        feed_candle(candle.timestamp, candle.open, candle.high, candle.low, candle.close, candle.volume)

    log.info("dry_run_started", run_id=run_id, venue=exchange.id, symbol=settings.symbol, history=len(history))
    if on_start is not None:
        on_start(bot, feed)
    try:
        await feed.run(on_candle)
        candles = candles_frame(seen)
        bot.finish()
    except BaseException as exc:
        if ledger is not None:
            end_interrupted_run(ledger, bot, run_id, exc, interrupted=False)
        raise
    out = DryRun(bot, run_id, candles, bot.exchange.funding_events)
    if ledger is not None and run_id is not None and len(candles):
        record_paper_metrics(settings, ledger, bot, run_id, candles, bundle if model else None)
        out.files = _write_seen(Path(settings.output_dir), run_id, candles, out.funding)
    return out


def candles_frame(rows: list[tuple]) -> pd.DataFrame:
    """Candle rows (ms UTC open, OHLC USDT, base volume) as a validated-candles-like frame."""
    df = pd.DataFrame(rows, columns=["timestamp", "open", "high", "low", "close", "volume"])
    df["timestamp"] = pd.to_datetime(df["timestamp"], unit="ms", utc=True).astype("datetime64[ms, UTC]")
    return df


def _write_seen(out_dir: Path, run_id: int, candles: pd.DataFrame, funding: pd.DataFrame | None) -> dict:
    """Write the candles seen and the funding known (atomically); their paths by name."""
    from perpbot.data.store import write_parquet_atomic

    files = {}
    for name, frame in (("candles", candles), ("funding", funding)):
        if frame is not None:
            files[name] = out_dir / f"dry-run-{run_id}-{name}.parquet"
            write_parquet_atomic(frame, files[name])
    return files


def dry_run_job(settings, strategy: str, *, exchange=None, **kw) -> DryRun:
    """:func:`run_dry` in its own event loop, with a public client of ``settings.exchange`` unless
    ``exchange`` is given (closed at the end either way)."""
    from perpbot.exchange.clients import make_async_exchange

    async def main() -> DryRun:
        ex = exchange or make_async_exchange(settings.exchange)
        try:
            return await run_dry(settings, strategy, ex, **kw)
        finally:
            await ex.close()

    return asyncio.run(main())
