"""``perpbot run --mode paper`` without ``--replay``: the paper node on the venue's live prices
(:mod:`perpbot.app.dry_run`), with the operator interfaces of the live node attached
(:mod:`perpbot.cli.node`: notifications and the Telegram command bot when configured; with
``--api`` the REST/WebSocket API and the dashboard). No API key is needed and nothing is sent to
the venue; Ctrl-C or SIGTERM stops it after the current candle."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from rich.console import Console

from perpbot.cli.common import UserError, console


@contextmanager
def venue_errors(venue: str):
    """A ccxt error reading the venue's live market becomes one UserError line (exit 1)."""
    try:
        yield
    except Exception as exc:
        if type(exc).__module__.split(".")[0] == "ccxt":
            from perpbot.exchange.ccxt_adapter import describe_error

            raise UserError(f"{venue}: cannot read the live market: {describe_error(exc)}") from None
        raise


def run_dry_cli(settings, *, strategy: str, model_path: Path | None = None, api: bool = False,
                out: Console | None = None, exchange=None, feed_options: dict | None = None,
                on_start: Callable | None = None):
    """Run the dry-run node until stopped; returns the :class:`perpbot.app.dry_run.DryRun`.

    ``exchange`` / ``feed_options`` / ``on_start``: a prepared ccxt client, CandleFeed options and
    a start hook (tests and the simulator; see :func:`perpbot.app.dry_run.run_dry`).
    Raises UsageError / ConfigError (exit 2) for a bad strategy or a missing API token, UserError
    (exit 1) when the venue cannot be read, before anything is recorded.
    """
    from perpbot.app.dry_run import dry_run_job
    from perpbot.app.jobs import check_strategies, load_model_for
    from perpbot.bot.control import BotControl
    from perpbot.cli.node import attach, check_api, stop_on_signals
    from perpbot.storage.ledger import Ledger
    from perpbot.strategy.signals import is_model_strategy

    out = out or console
    check_strategies([strategy])
    token = check_api(settings) if api else None
    bundle = load_model_for(settings, model_path, strategy) if is_model_strategy(strategy) else None
    ledger = Ledger(settings.ledger)
    control = BotControl(mode="paper", strategy=strategy, symbol=settings.symbol, timeframe=settings.timeframe)
    interfaces = attach(settings, control, bundle=bundle, api=api, token=token, out=out)
    out.print(f"[bold]DRY-RUN[/] on {settings.exchange}'s live prices: {settings.symbol} {settings.timeframe}, "
              f"strategy {strategy}; a simulated account of {settings.starting_capital:,.2f} USDT (nothing is "
              f"sent to the venue). Ctrl-C stops it.", highlight=False)

    def started(bot, feed) -> None:
        stop_on_signals(feed)
        out.print(f"paper run {bot.run_id}: warmed up on {bot.exchange.n} closed candles; trading from the next "
                  f"close ({settings.ledger_display})", highlight=False)
        if on_start is not None:
            on_start(bot, feed)

    try:
        with venue_errors(settings.exchange):
            result = dry_run_job(settings, strategy, exchange=exchange, bundle=bundle, ledger=ledger, control=control,
                                 feed_options=feed_options, on_start=started)
    finally:
        interfaces.stop()
    trades = result.bot.exchange.result().trades
    out.print(f"paper run {result.run_id} (dry-run) stopped: {len(result.candles)} candles seen, {len(trades)} trades, "
              f"final equity {result.bot.exchange.equity:,.2f} USDT", highlight=False)
    for name, path in result.files.items():
        out.print(f"  {'candles seen' if name == 'candles' else 'funding rates known'}: {path}", highlight=False)
    return result


def run_dry_portfolio_cli(settings: dict, *, strategy: str, model_path: Path | None = None, api: bool = False,
                          out: Console | None = None, exchange=None, feed_options: dict | None = None,
                          on_start: Callable | None = None):
    """The dry-run over several symbols on one account (:mod:`perpbot.app.dry_run_portfolio`; ``settings`` per
    symbol, the first one's interfaces and account), with the interfaces attached; returns its
    :class:`~perpbot.app.dry_run_portfolio.PortfolioDryRun`. Errors as :func:`run_dry_cli`."""
    from perpbot.app.dry_run_portfolio import run_dry_portfolio
    from perpbot.app.jobs import check_strategies, load_model_for
    from perpbot.app.portfolio import model_paths
    from perpbot.bot.control import BotControl
    from perpbot.cli.node import attach, check_api, stop_on_signals
    from perpbot.exchange.clients import make_async_exchange
    from perpbot.storage.ledger import Ledger
    from perpbot.strategy.signals import is_model_strategy

    out = out or console
    check_strategies([strategy])
    symbols = list(settings)
    first = settings[symbols[0]]
    token = check_api(first) if api else None
    paths = model_paths(settings, strategy, model_path) if is_model_strategy(strategy) else {}
    bundles = {s: load_model_for(settings[s], p, strategy) for s, p in paths.items()}
    ledger = Ledger(first.ledger)
    control = BotControl(mode="paper", strategy=strategy, symbol=", ".join(symbols), timeframe=first.timeframe)
    interfaces = attach(first, control, api=api, token=token, out=out)
    out.print(f"[bold]DRY-RUN[/] on {first.exchange}'s live prices: {', '.join(symbols)} {first.timeframe} on one "
              f"simulated account of {first.starting_capital:,.2f} USDT, strategy {strategy} (nothing is sent to the "
              "venue). Ctrl-C stops it.", highlight=False)

    def started(bot, feeds) -> None:
        stop_on_signals(feeds)
        if on_start is not None:
            on_start(bot, feeds)

    async def main():
        ex = exchange or make_async_exchange(first.exchange)
        try:
            return await run_dry_portfolio(settings, strategy, ex, bundles=bundles, ledger=ledger, control=control,
                                           feed_options=feed_options, on_start=started)
        finally:
            await ex.close()

    import asyncio

    try:
        with venue_errors(first.exchange):
            result = asyncio.run(main())
    finally:
        interfaces.stop()
    trades = result.bot.exchange.result().trades
    out.print(f"paper runs {', '.join(map(str, result.run_ids.values()))} (dry-run) stopped: {len(trades)} trades, "
              f"final equity {result.bot.exchange.equity:,.2f} USDT", highlight=False)
    return result
