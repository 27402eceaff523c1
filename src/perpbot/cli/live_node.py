"""``perpbot run --mode live [--symbols A,B,...]``: the live node, one symbol or several on one account.

:func:`run_live`: demo trading by default. REAL MONEY needs ``--real-money`` AND the environment
variable ``PERPBOT_CONFIRM_REAL_MONEY=yes`` (checked before anything is built). It prints the DEMO /
REAL MONEY banner, checks the venue (keys, symbol, timeframe, margin mode, leverage), and for each
symbol takes the single-instance lock of the account and symbol, resumes the last live run of the
strategy on the same exchange, symbol and account - the same trading mode (demo / real) and API key -
that did not finish (a crash; :func:`~perpbot.exchange.reconcile.resumable_run`) or starts a new one
recording that account, reconciles, and trades on every candle close until Ctrl-C / SIGTERM (open
positions keep their venue-side stop-loss and take-profit).

Several symbols (``symbols``): one loop per symbol (:class:`~perpbot.bot.live.LiveBot`, its own
executor, candle feed and ledger run) in one event loop, on one account, sharing the operator's
control (pause, resume and force-exit act on every symbol; each loop gets a
:class:`~perpbot.bot.control.SymbolControl`), the notifier, the Telegram command bot, the API, and
the portfolio's risk budget (:class:`~perpbot.bot.live_budget.LiveBudget`, the ``portfolio_*``
settings). A model strategy needs a model per symbol: the settings' model for ``symbol``, and for
the others their coin's file in ``signal_models`` (e.g. ``signal_models = {BTC = "runs/models/btc.joblib"}``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Callable

import typer
from rich.console import Console

from perpbot.exchange.feed_group import Feeds
from perpbot.logs import get_logger

log = get_logger("perpbot.live")
console = Console()
err_console = Console(stderr=True)


def _fail(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _api_token(settings) -> str:
    """``check_api`` of :mod:`perpbot.cli.node`; a missing or weak token exits 2 with one line."""
    from perpbot.cli.node import check_api
    from perpbot.config import ConfigError

    try:
        return check_api(settings)
    except ConfigError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _legs(settings, symbols: list[str] | None) -> list:
    """The settings of each traded symbol (the first: ``settings.symbol`` when one symbol)."""
    if not symbols:
        return [settings]
    if len(set(symbols)) != len(symbols):
        raise ValueError(f"--symbols names a symbol twice: {', '.join(symbols)}")
    return [settings.model_copy(update={"symbol": s}) for s in symbols]


def _check_legs(legs: list, strategy: str) -> None:
    from perpbot.bot.live_risk import live_config

    for s in legs:
        live_config(s, strategy)


def _models(legs: list, strategy: str, model_path: Path | None) -> dict:
    """Each symbol's (model file, loaded model) for a model strategy (:func:`perpbot.app.portfolio.model_paths`);
    ValueError naming a symbol without one."""
    from perpbot.strategy.signals import is_model_strategy

    if not is_model_strategy(strategy):
        return {}
    from perpbot.app.jobs import load_model_for
    from perpbot.app.portfolio import model_paths

    paths = model_paths({s.symbol: s for s in legs}, strategy, model_path)
    return {s.symbol: (paths[s.symbol], load_model_for(s, paths[s.symbol], strategy)) for s in legs}


def run_live(settings, *, real_money: bool, strategy: str = "ai", model_path: Path | None = None,
             resume: bool = True, out: Console | None = None, environ: dict | None = None, exchange=None,
             feed_options: dict | None = None, on_start: Callable | None = None,
             accept_unproven_model: bool = False, api: bool = False, symbols: list[str] | None = None,
             auto_pairs: int | None = None):
    """Trade ``settings.symbol`` (or every one of ``symbols``) live until stopped; returns the ledger
    run id (several symbols: {symbol: run id}).

    Args:
        real_money: the ``--real-money`` flag (also needs ``PERPBOT_CONFIRM_REAL_MONEY=yes``).
        strategy: "ai" / "meta:<rule>" (saved model) or a rule with a stop-loss (ema-cross, donchian, scoring).
        resume: continue the last unfinished live run of this strategy, exchange, symbol and
            account (demo / real and API key; after a crash).
        exchange / feed_options / environ: a prepared ccxt client, CandleFeed options and the
            environment (tests and the simulator).
        api: also serve the REST/WebSocket API and the dashboard (:mod:`perpbot.cli.node`; needs
            ``PERPBOT_API_TOKEN``). Notifications and the Telegram command bot start whenever they
            are configured. All of them act on this node's control: pause, resume, force-exit.
        on_start: called as ``on_start(bot, feed)`` inside the event loop once trading starts (several
            symbols: ``on_start(bots, feeds)``, a list and a :class:`Feeds`); ``feed.stop()`` ends the run.
        accept_unproven_model: with ``real_money``, trade a model whose saved verdict is not
            "edge confirmed" (:func:`perpbot.cli.live_gate.check_model_verdict`); logged, and shown in
            the banner, ``perpbot status`` and the daily summary.
        symbols: several symbols on the account (module docstring); None = ``settings.symbol``.
        auto_pairs: ``--symbols auto:N``: the N best of the venue's ranking (:func:`perpbot.intel.pairs.select_pairs`,
            the ``pairs_*`` settings) at the start, ranked again every ``portfolio_rerank_hours``: a symbol that
            enters the top N gets a loop; one that leaves it opens nothing more and its loop ends once it is flat.
    Exits (typer.Exit 1) with one line on a start-up error, (typer.Exit 2) when the real-money
    gate refuses the model; nothing is sent then.
    """
    from perpbot.bot.control import BotControl, SymbolControl
    from perpbot.bot.live import LiveBot
    from perpbot.bot.live_budget import LiveBudget
    from perpbot.exchange.feed import CandleFeed
    from perpbot.exchange.ccxt_adapter import ExchangeSetupError, banner, check_real_money, make_exchange
    from perpbot.exchange import venue_params
    from perpbot.exchange.executor import Executor
    from perpbot.exchange.reconcile import account_identity, resumable_run
    from perpbot.sim.portfolio import PortfolioBudget
    from perpbot.storage.instance_lock import InstanceLock, InstanceLockedError, lock_key
    from perpbot.storage.ledger import Ledger

    out = out or console
    multi = bool(symbols) or auto_pairs is not None
    try:
        from perpbot.app.jobs import check_strategies

        check_strategies([strategy])  # before anything is built, sent or written
        check_real_money(real_money, environ)
        venue_params.check_live(settings.exchange, settings.entry_order)  # before any client exists
        token = _api_token(settings) if api else None
        if auto_pairs is not None and auto_pairs < 1:
            raise ValueError(f"--symbols auto:N needs N >= 1, got {auto_pairs}")
        legs = [] if auto_pairs is not None else _legs(settings, symbols)
        _check_legs(legs or [settings], strategy)
        ex = exchange or make_exchange(settings, real_money=real_money, environ=environ)
    except (ExchangeSetupError, ValueError) as exc:
        _fail(str(exc))
    models = _models(legs, strategy, model_path) if legs else {}
    bundles = {sym: m[1] for sym, m in models.items()}
    bundle = bundles.get(settings.symbol) if not multi else None
    unproven = None
    if real_money and models:
        from perpbot.cli.live_gate import check_model_verdict

        for s in legs:
            path, b = models[s.symbol]
            unproven = check_model_verdict(s, strategy, path, b, accept_unproven_model) or unproven
    ledger = Ledger(settings.ledger)
    state: dict = {"run_ids": {}}
    from perpbot.cli.node import attach, stop_on_signals

    control = BotControl(mode="live", strategy=strategy, symbol=", ".join(s.symbol for s in legs),
                         timeframe=settings.timeframe)
    interfaces = attach(settings, control, bundle=bundle, api=api, token=token, out=out)
    budget = LiveBudget(PortfolioBudget.from_settings(settings)) if multi else None

    async def start_leg(s, identity, locks: list):
        # one node per account and symbol, before any setting is sent, run resumed or order placed
        locks.append(InstanceLock(s.ledger, lock_key(ex.id, identity, s.symbol)).acquire())
        executor = Executor(ex, s, ledger=ledger)
        await executor.startup()
        last = resumable_run(ledger, strategy, ex.id, s.symbol, identity) if resume else None
        resumed = last is not None
        if last is not None:  # this process now owns the run (refused while the process that ran it is alive)
            ledger.resume_run(int(last["id"]))
        b = bundles.get(s.symbol)
        run_id = int(last["id"]) if last is not None else ledger.start_run(
            "live", strategy, s.symbol, s.timeframe, exchange=ex.id,
            config={**s.public_dict(), "live_account": identity,
                    **({"unproven_model_accepted": unproven} if unproven is not None else {}),
                    **({"node_symbols": [x.symbol for x in legs]} if multi else {})},
            model_version=getattr(b, "version", None), features_hash=getattr(b, "features_hash", None),
            note=("REAL MONEY" + (" (unproven model)" if unproven is not None else "")) if real_money else "DEMO")
        state["run_ids"][s.symbol] = executor.run_id = run_id
        out.print(f"ledger run {run_id}{f' ({s.symbol})' if multi else ''} "
                  f"({'resumed after an unfinished run' if resumed else 'new'}): {s.ledger_display}")
        bot = LiveBot(s, executor, strategy, bundle=b, ledger=ledger, run_id=run_id,
                      control=SymbolControl(control, s.symbol) if multi else control)
        if budget is not None:
            bot.budget = budget
            budget.bots.append(bot)
        if b is not None:  # `perpbot models promote FILE` swaps the model at a candle
            from perpbot.bot.promotion import ModelInbox

            bot.inbox = ModelInbox(s.output_dir, run_id, symbol=s.symbol, timeframe=s.timeframe, strategy=strategy)
        report = await bot.start(resume=resumed)
        out.print(f"reconciled{f' {s.symbol}' if multi else ''}: {report.summary()}  equity {report.equity:.2f} USDT")
        feed = CandleFeed(ex, s.symbol, s.timeframe, last_timestamp=bot.last_ts, logger=log, **(feed_options or {}))
        return bot, feed

    async def choose(into: list) -> None:
        """The top ``auto_pairs`` of the venue's ranking as the node's legs (models and checks included)."""
        from perpbot.intel.pairs import select_pairs

        chosen = await select_pairs(ex, int(auto_pairs or 0), settings, now_ms=await ex.fetch_time())
        if not chosen:
            raise ExchangeSetupError(f"--symbols auto:{auto_pairs}: no {ex.id} perpetual passes the pair filters "
                                     "(pairs_min_quote_volume, pairs_max_spread_bps, pairs_min_listing_days)")
        out.print(f"--symbols auto:{auto_pairs}: {', '.join(chosen)} (the venue's ranking, perpbot pairs)",
                  highlight=False)
        try:
            new = _legs(settings, chosen)
            _check_legs(new, strategy)
            chosen_models = _models(new, strategy, model_path)
        except ValueError as exc:  # e.g. a model strategy without a model for a chosen symbol
            raise ExchangeSetupError(str(exc)) from None
        if real_money and chosen_models:  # the real-money gate, for every chosen symbol's model
            from perpbot.cli.live_gate import check_model_verdict

            for leg in new:
                path, b = chosen_models[leg.symbol]
                check_model_verdict(leg, strategy, path, b, accept_unproven_model)
        bundles.update({sym: m[1] for sym, m in chosen_models.items()})
        into.extend(new)

    async def rerank(bots: list, feeds: Feeds, runs: list, identity, locks: list) -> None:
        """Every ``portfolio_rerank_hours``: new top-N symbols get a loop, dropped ones are retired."""
        from perpbot.intel.pairs import select_pairs

        while not feeds.stopped.is_set():
            try:
                await asyncio.wait_for(feeds.stopped.wait(), settings.portfolio_rerank_hours * 3600.0)
                return
            except asyncio.TimeoutError:
                pass
            try:
                chosen = await select_pairs(ex, int(auto_pairs or 0), settings, now_ms=await ex.fetch_time())
                active = {b.settings.symbol: b for b in bots if not b.retired}
                for sym, b in active.items():
                    if sym not in chosen:
                        b.retired = True
                        control.events.publish("symbols", dropped=sym, symbols=chosen)
                for sym in chosen:
                    if sym in active or any(b.settings.symbol == sym for b in bots):
                        continue  # running (or a retired loop still closing: it stays retired)
                    if real_money and bundles:  # the real-money gate judged the models at the start only
                        log.warning("symbol_not_added", symbol=sym, reason="real money with a model strategy: "
                                    "a symbol is added only at the start, where the model gate runs")
                        continue
                    leg = _legs(settings, [sym])[0]
                    _check_legs([leg], strategy)
                    bundles.update({sym: m[1] for sym, m in _models([leg], strategy, model_path).items()})
                    bot, feed = await start_leg(leg, identity, locks)
                    bots.append(bot)
                    feeds.feeds.append(feed)
                    runs.append(asyncio.ensure_future(bot.run(feed)))
                    control.events.publish("symbols", added=sym, symbols=chosen)
                log.info("symbols_reranked", symbols=chosen)
            except Exception as exc:  # noqa: BLE001 - the running loops go on with the old set
                log.error("rerank_failed", error=repr(exc))
                control.events.publish("error", message=f"--symbols auto:{auto_pairs}: ranking again failed: {exc}")

    async def main() -> None:
        locks: list = []
        try:
            out.print(banner(legs[0] if legs else settings, real_money, strategy=strategy))
            identity = account_identity(ex)
            if auto_pairs is not None:
                await choose(legs)
            if multi:
                out.print(f"symbols: {', '.join(s.symbol for s in legs)} on one account (risk budget: "
                          f"portfolio_* settings)", highlight=False)
            if unproven is not None:
                out.print(f"[bold red]UNPROVEN MODEL ACCEPTED[/] (--accept-unproven-model): {unproven}",
                          highlight=False)
            bots, feeds = [], Feeds()
            for s in legs:
                bot, feed = await start_leg(s, identity, locks)
                bots.append(bot)
                feeds.feeds.append(feed)
            stop_on_signals(feeds)
            if on_start is not None:
                on_start(*((bots, feeds) if multi else (bots[0], feeds.feeds[0])))
            runs = [asyncio.ensure_future(bot.run(feed)) for bot, feed in zip(bots, feeds.feeds)]
            if auto_pairs is not None and settings.portfolio_rerank_hours > 0:
                runs.append(asyncio.ensure_future(rerank(bots, feeds, runs, identity, locks)))
            while True:  # a re-ranking adds loops while the node runs
                pending = [t for t in runs if not t.done()]
                if not pending:
                    break
                await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
                for t in runs:
                    if t.done() and not t.cancelled() and t.exception() is not None:
                        feeds.stop()
                        raise t.exception()
        finally:
            for lock in locks:
                lock.release()
            await ex.close()

    def finish(status: str) -> None:
        for rid in state["run_ids"].values():
            ledger.finish_run(rid, status=status)

    try:
        asyncio.run(main())
    except (ExchangeSetupError, InstanceLockedError) as exc:
        interfaces.stop()
        finish("failed")
        _fail(str(exc))
    except BaseException:
        interfaces.stop()
        finish("failed")
        raise
    interfaces.stop()
    finish("finished")
    ids = state["run_ids"]
    out.print(f"live run{'s' if multi else ''} {', '.join(map(str, ids.values()))} stopped; open positions keep their "
              "exchange-side stops")
    return dict(ids) if multi else ids[settings.symbol]
