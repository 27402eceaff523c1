"""The paper node on live prices over several symbols on one account: ``perpbot run --mode paper --symbols A,B``.

The dry-run of one symbol (:mod:`perpbot.app.dry_run`) for a portfolio: each symbol's closed candles come from
its own :class:`~perpbot.exchange.feed.CandleFeed` on the venue's public endpoints, and the portfolio paper bot
(:class:`~perpbot.bot.paper_portfolio.PortfolioPaperBot`, one simulated account with the ``portfolio_*`` risk
budget) runs a cycle for a candle time once every symbol's candle of that time has arrived, in time order. A
candle time that one symbol never delivers (a gap on the venue) is skipped, with a warning, once a later time is
complete on every symbol. Warm-up, funding (each symbol's settled rates, fetched again at every hour) and
stopping are the single dry-run's; the ledger gets one paper run per symbol. A portfolio backtest of the candles
it saw (:attr:`PortfolioDryRun.candles`) with the funding it knew gives the same trades (tests/test_dry_run_symbols.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Callable

import pandas as pd

from perpbot.app.dry_run import HOUR_MS, KEEP_LAST, candles_frame, funding_frame
from perpbot.logs import get_logger

log = get_logger("perpbot.dry_run")


@dataclass
class PortfolioDryRun:
    """A portfolio dry run's outcome: the bot, its run ids, and per symbol the candles it traded (the common
    times, history included) and the funding events it knew."""

    bot: Any
    run_ids: dict
    candles: dict
    funding: dict


async def run_dry_portfolio(settings: dict, strategy: str, exchange, *, bundles: dict | None = None, ledger=None,
                            control=None, feed_options: dict | None = None, on_start: Callable | None = None,
                            flush_every: int = 100) -> PortfolioDryRun:
    """Run the portfolio paper node on the live candles of ``exchange`` (an asyncio ccxt client, public endpoints)
    until its feeds stop (module docstring). ``settings``: per symbol, in the loop's order (the first one's
    account, limits and budget are the account's); ``on_start(bot, feeds)`` once the history is in.

    Raises whatever the venue raises while the history is fetched (nothing recorded then)."""
    from perpbot.bot.paper_portfolio import PortfolioPaperBot
    from perpbot.data import timeframe_to_ms
    from perpbot.exchange.feed import CandleFeed
    from perpbot.exchange.feed_group import Feeds
    from perpbot.exchange.reads import PublicReads

    symbols = list(settings)
    first = settings[symbols[0]]
    tf_ms = timeframe_to_ms(first.timeframe)
    reads = {s: PublicReads(exchange, s) for s in symbols}
    use_funding = bool(first.funding)
    funding = {s: funding_frame(await reads[s].funding_rates(100)) if use_funding else None for s in symbols}
    now = await reads[symbols[0]].server_time()
    n_hist = max(first.warmup_bars - 1, 0)
    history = {s: (await reads[s].closed_candles(first.timeframe, tf_ms, now, n_hist) if n_hist else [])
               for s in symbols}
    run_ids: dict = {}
    if ledger is not None:
        for s in symbols:
            run_ids[s] = ledger.start_run("paper", strategy, s, first.timeframe, exchange=exchange.id,
                                          config={**settings[s].public_dict(), "dry_run": True, "node_symbols": symbols},
                                          note=f"dry-run on {exchange.id} live prices, portfolio of {', '.join(symbols)}")
    bot = PortfolioPaperBot(settings, strategy, bundles=bundles, funding=funding, control=control,
                            keep_last=KEEP_LAST, ledger=ledger, run_ids=run_ids, flush_every=flush_every)
    seen: dict[str, list] = {s: [] for s in symbols}
    pending: dict[int, dict] = {}

    def complete(ts_ms: int) -> None:
        """Every symbol has its candle of ``ts_ms``: drop older incomplete times, run the cycle."""
        for old in sorted(t for t in pending if t < ts_ms):
            log.warning("dry_run_candle_missing", candle=old, missing=[s for s in symbols if s not in pending[old]])
            del pending[old]
        rows = pending.pop(ts_ms)
        for s in symbols:
            seen[s].append((ts_ms, *rows[s]))
        bot.on_candles(pd.Timestamp(ts_ms, unit="ms", tz="UTC").as_unit("ms"), rows)

    def arrive(symbol: str, ts_ms: int, row: tuple) -> None:
        last = bot.exchange.last_ts_ms
        if last is not None and ts_ms <= last:
            return  # a time already traded (or skipped)
        pending.setdefault(ts_ms, {})[symbol] = row
        if len(pending[ts_ms]) == len(symbols):
            complete(ts_ms)

    async def refresh_funding(ts_ms: int) -> None:
        if not use_funding or (ts_ms % HOUR_MS >= tf_ms and tf_ms < HOUR_MS):
            return
        for s in symbols:
            try:
                fresh = funding_frame(await reads[s].funding_rates(100))
            except Exception as exc:  # noqa: BLE001 - the venue's error: logged, tried again at the next hour
                log.warning("dry_run_funding_failed", symbol=s, candle=ts_ms, error=f"{type(exc).__name__}: {exc}")
                continue
            if fresh is not None and bot.exchange.add_funding(s, fresh):
                bot.engines[s].funding = bot.exchange.funding_events(s)  # the features see them too

    for s in symbols:
        for row in history[s]:
            arrive(s, int(row[0]), tuple(float(x) if x is not None else 0.0 for x in row[1:6]))
    feeds = Feeds()
    last_ts = bot.exchange.last_ts_ms
    for s in symbols:
        feeds.feeds.append(CandleFeed(exchange, s, first.timeframe, logger=log, last_timestamp=last_ts,
                                      **(feed_options or {})))

    def on_candle_of(symbol: str):
        async def on_candle(candle) -> None:
            if candle.timestamp not in pending:  # the first symbol of this time: funding before its cycle
                await refresh_funding(candle.timestamp)
            arrive(symbol, candle.timestamp, (candle.open, candle.high, candle.low, candle.close, candle.volume))
        return on_candle

    log.info("dry_run_started", run_ids=run_ids, venue=exchange.id, symbols=symbols, history=bot.exchange.n)
    if on_start is not None:
        on_start(bot, feeds)
    try:
        await asyncio.gather(*(f.run(on_candle_of(s)) for s, f in zip(symbols, feeds.feeds)))
        result = bot.finish()
    except BaseException:
        for rid in run_ids.values():
            ledger.finish_run(rid, status="failed")
        raise
    if ledger is not None:
        from perpbot.app.portfolio import portfolio_metrics

        metrics = portfolio_metrics(result)
        for rid in run_ids.values():
            ledger.finish_run(rid, status="finished", metrics=metrics)
    return PortfolioDryRun(bot, run_ids, {s: candles_frame(rows) for s, rows in seen.items()},
                           {s: bot.exchange.funding_events(s) for s in symbols})
