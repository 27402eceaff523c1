"""Portfolio jobs: one strategy over several symbols on one account (``--symbols``).

``portfolio_backtest_job`` simulates the whole portfolio in one call
(:func:`perpbot.sim.portfolio.run_portfolio_backtest`); ``portfolio_paper_job`` replays the same
candles through the portfolio paper bot (:mod:`perpbot.bot.paper_portfolio`), which gives the same
trades. Both take the symbols' market data already on one timeline
(:func:`perpbot.data.market.align_markets`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from perpbot.app.jobs import Progress, check_strategies
from perpbot.data.market import MarketData, check_enough_candles
from perpbot.sim.portfolio import PortfolioResult


@dataclass
class PortfolioRun:
    """A portfolio simulation with its trading metrics (on the account's equity and every trade)."""

    result: PortfolioResult
    metrics: dict
    run_ids: dict = field(default_factory=dict)  # paper replay with a ledger: symbol -> run id


def _check(settings: dict, markets: dict[str, MarketData], strategy: str) -> None:
    from perpbot.strategy.signals import is_model_strategy

    if is_model_strategy(strategy):
        raise ValueError(f"strategy {strategy!r} over several symbols is not built yet: a portfolio runs rule "
                         "strategies and plug-ins (per-symbol models are not wired in)")
    check_strategies([strategy])
    if list(settings) != list(markets):
        raise ValueError("settings and market data name different symbols")
    for m in markets.values():
        check_enough_candles(m, settings[next(iter(settings))].warmup_bars)


def _metrics(result: PortfolioResult, position=None) -> dict:
    from perpbot.ml.trading_metrics import trading_metrics

    return trading_metrics(result.equity, result.trades, result.capital, position=position)


def portfolio_backtest_job(settings: dict, markets: dict[str, MarketData], strategy: str) -> PortfolioRun:
    """Backtest ``strategy`` on every symbol of ``markets`` with one account.

    ``settings``: per symbol (loop order) its Settings (files, market rules); the first one's
    capital, limits and ``portfolio_*`` budget are the account's. Raises ValueError for an unknown
    or a model strategy, DataError for too few candles."""
    from perpbot.backtest.runner import market_arrays
    from perpbot.sim.config import AccountConfig
    from perpbot.sim.portfolio import PortfolioBudget, run_portfolio_backtest
    from perpbot.strategy.signals import rule_signals

    _check(settings, markets, strategy)
    first = settings[next(iter(settings))]
    arrays = {s: market_arrays(settings[s], m) for s, m in markets.items()}
    signals = {s: rule_signals(strategy, m.candles) for s, m in markets.items()}
    configs = {s: AccountConfig.for_strategy(settings[s], strategy) for s in markets}
    result = run_portfolio_backtest(arrays, signals, configs, PortfolioBudget.from_settings(first))
    return PortfolioRun(result, _metrics(result))


def portfolio_paper_job(settings: dict, markets: dict[str, MarketData], strategy: str, *,
                        progress: Progress = None, control=None, ledger=None) -> PortfolioRun:
    """Replay the symbols' candles through the portfolio paper bot (one candle of every symbol per
    cycle); same arguments and errors as :func:`portfolio_backtest_job`. With ``ledger``, one paper
    run per symbol (``run_ids`` of the result), finished with the account's metrics, or ``failed``
    when the replay stops early."""
    from perpbot.bot.paper_portfolio import PortfolioPaperBot, replay_portfolio

    _check(settings, markets, strategy)
    symbols = list(settings)
    run_ids = {}
    if ledger is not None:
        note = f"portfolio of {', '.join(symbols)} on one account"
        for s in symbols:
            ts = markets[s].candles["timestamp"]
            run_ids[s] = ledger.start_run("paper", strategy, s, settings[s].timeframe, exchange=settings[s].exchange,
                                          config=settings[s].public_dict(), data_range=(ts.iloc[0], ts.iloc[-1]),
                                          note=note)
    bot = PortfolioPaperBot(settings, strategy, funding={s: m.funding for s, m in markets.items()},
                            mark={s: m.mark for s, m in markets.items()}, control=control, ledger=ledger,
                            run_ids=run_ids)
    try:
        result = replay_portfolio(bot, {s: m.candles for s, m in markets.items()}, progress)
    except BaseException:
        for rid in run_ids.values():
            ledger.finish_run(rid, status="failed")
        raise
    run = PortfolioRun(result, _metrics(result), run_ids)
    for rid in run_ids.values():
        ledger.finish_run(rid, status="finished", metrics=run.metrics)
    return run
