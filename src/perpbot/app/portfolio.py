"""Portfolio jobs: one strategy over several symbols on one account (``--symbols``).

``portfolio_backtest_job`` simulates the whole portfolio in one call
(:func:`perpbot.sim.portfolio.run_portfolio_backtest`); ``portfolio_paper_job`` replays the same
candles through the portfolio paper bot (:mod:`perpbot.bot.paper_portfolio`), which gives the same
trades. Both take the symbols' market data already on one timeline
(:func:`perpbot.data.market.align_markets`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from perpbot.app.jobs import Progress, check_strategies
from perpbot.data.market import MarketData, check_enough_candles
from perpbot.sim.portfolio import PortfolioResult


@dataclass
class PortfolioRun:
    """A portfolio simulation with its trading metrics (on the account's equity and every trade)."""

    result: PortfolioResult
    metrics: dict
    run_ids: dict = field(default_factory=dict)  # paper replay with a ledger: symbol -> run id
    signals: dict = field(default_factory=dict)  # backtest: symbol -> int8 (n,) signals simulated


def model_paths(settings: dict, strategy: str, model_path: Path | None = None) -> dict[str, Path]:
    """Each symbol's model file for a model strategy: ``model_path`` (default: the settings' model file) for
    the first symbol, its coin's entry of ``signal_models`` for the others (e.g. ``{BTC = "btc.joblib"}``).

    Raises:
        ValueError: a symbol without a model, naming the setting to add.
    """
    from perpbot.app.jobs import model_file_for

    out = {}
    for k, (sym, s) in enumerate(settings.items()):
        coin = sym.split("/")[0]
        path = model_file_for(s, strategy, model_path) if k == 0 else s.signal_models.get(coin)
        if path is None:
            raise ValueError(f"strategy {strategy!r} on {sym} needs its own model: set signal_models = "
                             f"{{{coin} = \"FILE\"}} (a model trained on {sym} {s.timeframe}, perpbot train --symbol {sym})")
        out[sym] = Path(path)
    return out


def _check(settings: dict, markets: dict[str, MarketData], strategy: str) -> None:
    check_strategies([strategy])
    if list(settings) != list(markets):
        raise ValueError("settings and market data name different symbols")
    for m in markets.values():
        check_enough_candles(m, settings[next(iter(settings))].warmup_bars)


def portfolio_metrics(result: PortfolioResult, position=None) -> dict:
    """Trading metrics of the account: its equity and every symbol's trades."""
    from perpbot.ml.trading_metrics import trading_metrics

    return trading_metrics(result.equity, result.trades, result.capital, position=position)


def portfolio_backtest_job(settings: dict, markets: dict[str, MarketData], strategy: str, *,
                           model_path: Path | None = None) -> PortfolioRun:
    """Backtest ``strategy`` on every symbol of ``markets`` with one account.

    ``settings``: per symbol (loop order) its Settings (files, market rules); the first one's
    capital, limits and ``portfolio_*`` budget are the account's. A model strategy runs each symbol's
    own model (:func:`model_paths`), its out-of-sample probabilities through the probability cache and
    its decision rule (sizes included), as the single-symbol backtest does. Raises ValueError for an
    unknown strategy or a symbol without a model, ModelError for a model that does not fit, DataError
    for too few candles."""
    from perpbot.app.jobs import model_probabilities
    from perpbot.backtest.runner import market_arrays
    from perpbot.sim.config import AccountConfig
    from perpbot.sim.portfolio import PortfolioBudget, run_portfolio_backtest
    from perpbot.strategy.signals import is_model_strategy, model_signals, rule_signals

    _check(settings, markets, strategy)
    first = settings[next(iter(settings))]
    arrays = {s: market_arrays(settings[s], m) for s, m in markets.items()}
    signals: dict = {}
    sizes: dict = {}
    paths = model_paths(settings, strategy, model_path) if is_model_strategy(strategy) else {}
    for s, m in markets.items():
        if s in paths:
            model, proba = model_probabilities(settings[s], m, None, paths[s], strategy)
            signals[s], sizes[s], _ = model_signals(settings[s], strategy, m.candles, proba, model,
                                                    m.funding if settings[s].funding else None)
        else:
            signals[s] = rule_signals(strategy, m.candles)
    configs = {s: AccountConfig.for_strategy(settings[s], strategy) for s in markets}
    result = run_portfolio_backtest(arrays, signals, configs, PortfolioBudget.from_settings(first), sizes=sizes)
    return PortfolioRun(result, portfolio_metrics(result), signals=signals)


def portfolio_paper_job(settings: dict, markets: dict[str, MarketData], strategy: str, *,
                        progress: Progress = None, control=None, ledger=None,
                        model_path: Path | None = None) -> PortfolioRun:
    """Replay the symbols' candles through the portfolio paper bot (one candle of every symbol per
    cycle); same arguments and errors as :func:`portfolio_backtest_job`. With ``ledger``, one paper
    run per symbol (``run_ids`` of the result), finished with the account's metrics, or ``failed``
    when the replay stops early."""
    from perpbot.app.jobs import load_model_for
    from perpbot.bot.paper_portfolio import PortfolioPaperBot, replay_portfolio
    from perpbot.strategy.signals import is_model_strategy

    _check(settings, markets, strategy)
    symbols = list(settings)
    paths = model_paths(settings, strategy, model_path) if is_model_strategy(strategy) else {}
    bundles = {s: load_model_for(settings[s], p, strategy) for s, p in paths.items()}
    run_ids = {}
    if ledger is not None:
        note = f"portfolio of {', '.join(symbols)} on one account"
        for s in symbols:
            ts = markets[s].candles["timestamp"]
            run_ids[s] = ledger.start_run("paper", strategy, s, settings[s].timeframe, exchange=settings[s].exchange,
                                          config=settings[s].public_dict(), data_range=(ts.iloc[0], ts.iloc[-1]),
                                          note=note)
    bot = PortfolioPaperBot(settings, strategy, bundles=bundles, funding={s: m.funding for s, m in markets.items()},
                            mark={s: m.mark for s, m in markets.items()}, control=control, ledger=ledger,
                            run_ids=run_ids)
    try:
        result = replay_portfolio(bot, {s: m.candles for s, m in markets.items()}, progress)
    except BaseException:
        for rid in run_ids.values():
            ledger.finish_run(rid, status="failed")
        raise
    run = PortfolioRun(result, portfolio_metrics(result), run_ids)
    for rid in run_ids.values():
        ledger.finish_run(rid, status="finished", metrics=run.metrics)
    return run
