"""The ``perpbot`` command line (Typer + Rich): train, backtest, run, report, trades, demo.

Every command reads the settings (``--config FILE`` / ``perpbot.toml`` / ``PERPBOT_*``),
prints results as Rich tables, shows a progress bar on long work, and turns a bad input
into one ``error: ...`` line on stderr with a non-zero exit: 2 for usage and configuration
errors (a bad option, setting or config file, checked before anything is read or written),
1 for data and runtime errors (see :func:`perpbot.cli.common.handled`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from perpbot.cli.common import (  # noqa: F401  (re-exported for scripts and tests)
    ConfigOpt, UsageError, UserError, check_output_file, check_run_id, console, err_console, handled,
    metrics_rich_table, model_metrics_frame, model_metrics_table, notes_for, open_ledger, progress_callback,
    settings_for, strategy_option,
)
from perpbot.cli.catalogue import register as register_catalogue
from perpbot.cli.demo import demo
from perpbot.cli.download import download
from perpbot.cli.intel_commands import register as register_intel_commands
from perpbot.cli.ledger_commands import ledger_app
from perpbot.cli.models_cmd import models_app
from perpbot.cli.markets import markets_app
from perpbot.cli.platform_commands import journal_app, platform_app
from perpbot.cli.live import status
from perpbot.cli.optimize import optimize
from perpbot.cli.options import (
    OneLineErrorsGroup, choice_option, model_choice, symbol_option, timerange_option, train_strategy_choice,
    version_callback,
)
from perpbot.cli.portfolio import (
    node_settings, node_symbols, portfolio_backtest_cli, portfolio_replay_cli, symbols_option_help,
)
from perpbot.cli.serve import serve
from perpbot.cli.timerange import data_settings, market_for, parse_timerange

app = typer.Typer(cls=OneLineErrorsGroup, add_completion=False, no_args_is_help=True,
                  pretty_exceptions_show_locals=False,
                  help="perpbot: AI-driven trading bot for crypto perpetual futures (Bitget SOL/USDT first).")

# ------------------------------------------------------------------------------------ commands
FeaturesOpt = typer.Option(None, help="feature groups, comma-separated: candles, htf, cross_asset, funding_basis, "
                                      "regime (default from settings: candles)")
TimeframeOpt = typer.Option(None, help="5m | 15m | 1h: candle timeframe (a finer candles file is resampled)")
_STRATEGY_HELP = "the strategy (meta:<rule> = a model filtering the rule's calls)"


@app.callback()
def _root(version: bool = typer.Option(False, "--version", is_eager=True, callback=version_callback,
                                       help="print perpbot's version and exit")) -> None:
    """perpbot: AI-driven trading bot for crypto perpetual futures (Bitget SOL/USDT first)."""


def _check_strategy(strategy: str, model_only: bool = False) -> None:
    from perpbot.strategy.signals import STRATEGIES, is_model_strategy, is_strategy

    if not is_strategy(strategy) or (model_only and not is_model_strategy(strategy)):
        valid = [x for x in STRATEGIES if is_model_strategy(x)] if model_only else STRATEGIES
        what = "a model strategy" if model_only and strategy in STRATEGIES else "a strategy"
        raise UsageError(f"--strategy {strategy!r} is not {what}; choose one of: {', '.join(valid)}")


@app.command()
def train(config: Optional[Path] = ConfigOpt,
          model: Optional[str] = choice_option(None, model_choice(), "--model",
                                               help="the model (default: settings): built in, an installed "
                                                    "plug-in (perpbot list-models) or FILE.py[:Factory]"),
          strategy: str = choice_option("ai", train_strategy_choice(), "--strategy",
                                        help="ai (three-class model) or meta:<rule> (meta-labelling of a rule)"),
          candles: Optional[Path] = typer.Option(None, help="candles Parquet (default from settings)"),
          features: Optional[str] = FeaturesOpt, timeframe: Optional[str] = TimeframeOpt,
          timerange: Optional[str] = timerange_option(), symbol: Optional[str] = symbol_option()) -> None:
    """Walk-forward train the model on the candles and save it with its metadata."""
    from perpbot.app.jobs import model_file_for, train_job
    from perpbot.extras import require_model

    with handled():
        _check_strategy(strategy, model_only=True)
        tr = parse_timerange(timerange)
        s = data_settings(config, symbol, model=model, candles_file=candles, features=features, timeframe=timeframe)
        require_model(s.model)  # an extra's model (xgboost, lstm) that is not installed: one line, before any work
        from perpbot.ml.models import MODEL_NAMES, make_model

        if s.model_params or s.model not in MODEL_NAMES:
            try:  # a hyperparameter the model does not take, a plug-in that does not load: before any work
                make_model(s.model, s.model_params)
            except (ValueError, TypeError) as exc:
                raise UsageError(f"model_params: {exc}" if s.model in MODEL_NAMES else str(exc)) from None
        check_output_file(model_file_for(s, strategy), "model file (model_path)")
        market = market_for(s, tr, warmup=False) if tr else None
        with progress_callback(f"walk-forward {s.model} ({strategy})") as cb:
            out = train_job(s, progress=cb, strategy=strategy, market=market)
        console.print(model_metrics_table(out.model_metrics))
        console.print(f"model saved: [bold]{out.path}[/] (version {out.bundle.version}, {out.n_folds} folds)")


@app.command()
def backtest(config: Optional[Path] = ConfigOpt,
             strategy: str = strategy_option(_STRATEGY_HELP),
             baselines: bool = typer.Option(True, help="also run buy-and-hold, ema-cross and scoring (and a "
                                                       "meta strategy's primary rule alone)"),
             candles: Optional[Path] = typer.Option(None, help="candles Parquet (default from settings)"),
             model_path: Optional[Path] = typer.Option(None, "--model-path", help="saved model (default from settings)"),
             report: Optional[Path] = typer.Option(None, help="write the HTML report here"),
             ledger: bool = typer.Option(True, help="record the runs in the ledger"),
             features: Optional[str] = typer.Option(None, help="feature groups the model must have been trained "
                                                               "on (default: the model's own, from its metadata)"),
             timeframe: Optional[str] = TimeframeOpt,
             timerange: Optional[str] = timerange_option(), symbol: Optional[str] = symbol_option(),
             symbols: Optional[str] = typer.Option(None, "--symbols", help=symbols_option_help())) -> None:
    """Backtest a strategy beside the baselines, after fees, slippage and funding (--symbols: one account
    over several symbols, with the portfolio's risk budget)."""
    from perpbot.app.jobs import backtest_job, check_strategies
    from perpbot.backtest.runner import comparison_table, veto_notes
    from perpbot.sim.market_rules import rules_note
    from perpbot.strategy.signals import BASELINES, meta_primary

    with handled():
        tr = parse_timerange(timerange)
        if symbols is not None:
            if symbol or candles or model_path:
                raise UsageError("--symbols picks each symbol's files; --symbol, --candles and --model-path are for "
                                 "one symbol")
            check_output_file(report, "--report")
            portfolio_backtest_cli(config, symbols, strategy, tr, report=report,
                                   **({"timeframe": timeframe} if timeframe else {}))
            return
        s = data_settings(config, symbol, candles_file=candles, features=features, timeframe=timeframe)
        check_output_file(report, "--report")
        try:
            check_strategies([strategy])  # a missing or broken strategy file: one line, before the data
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        primary = meta_primary(strategy)
        names = [strategy] + ([primary] if primary and baselines else [])
        names += [b for b in BASELINES if b not in names] if baselines else []
        led = (lambda: open_ledger(s)) if ledger else None
        from perpbot.cli.verdicts import show_verdict

        market = market_for(s, tr)
        out = backtest_job(s, names, market=market, model_path=model_path, ledger=led, report=report)
        console.print(metrics_rich_table(comparison_table(out.runs), f"Backtest {s.symbol} {s.timeframe}"))
        console.print(rules_note(s), highlight=False, soft_wrap=True)
        for note in veto_notes(out.runs):
            err_console.print(f"[bold yellow]warning:[/] {note}", highlight=False, soft_wrap=True)
        show_verdict(s, market, out.runs, strategy=strategy, model=out.bundle, model_path=model_path)
        if out.run_ids:
            console.print("ledger runs: " + ", ".join(f"{k}={v}" for k, v in out.run_ids.items()) + f" ({s.ledger_display})")
        if out.report:
            console.print(f"report: [bold]{out.report}[/]")


@app.command()
def run(config: Optional[Path] = ConfigOpt,
        mode: str = typer.Option("paper", help="paper | live"),
        replay: Optional[Path] = typer.Option(None, help="candles Parquet to replay candle by candle"),
        last: Optional[int] = typer.Option(None, help="replay only the last N candles of the file"),
        strategy: str = strategy_option(_STRATEGY_HELP),
        model_path: Optional[Path] = typer.Option(None, "--model-path", help="saved model (default from settings)"),
        real_money: bool = typer.Option(False, "--real-money",
                                        help="live: trade the REAL account (also needs PERPBOT_CONFIRM_REAL_MONEY=yes)"),
        new_run: bool = typer.Option(False, "--new-run", help="live: do not resume an unfinished live run"),
        accept_unproven_model: bool = typer.Option(False, "--accept-unproven-model",
                                                   help="live --real-money: trade a model whose saved verdict is not "
                                                        "'edge confirmed' (logged, shown in banner/status/summary)"),
        resume: bool = typer.Option(False, "--resume",
                                    help="paper: continue the latest abandoned replay of this strategy from its "
                                         "last recorded candle (same file, --last, settings and model)"),
        api: bool = typer.Option(False, "--api", help="live / paper on live prices: also serve the REST/WebSocket "
                                                       "API and the dashboard "
                                                       "(needs PERPBOT_API_TOKEN); Telegram and e-mail start when "
                                                       "configured"),
        timerange: Optional[str] = timerange_option(), symbol: Optional[str] = symbol_option(),
        symbols: Optional[str] = typer.Option(None, "--symbols", help="live, or a paper replay: "
                                              + symbols_option_help())
        ) -> None:
    """Run the bot loop: paper mode on the venue's live prices (a dry-run: simulated account, nothing
    sent) or over recorded candles (--replay FILE, or --timerange / --last over the symbol's file), or
    live on the exchange (Bitget demo trading unless --real-money); Telegram, e-mail and (--api) the
    dashboard attach to the node."""
    from perpbot.app.jobs import load_model_for
    from perpbot.app.paper import check_resumable, paper_job, resumable_paper_run
    from perpbot.cli.timerange import unified
    from perpbot.data.market import check_enough_candles
    from perpbot.strategy.signals import is_model_strategy

    with handled():
        if mode not in ("paper", "live"):
            raise UsageError(f"--mode {mode!r}: choose paper or live")
        if last is not None and last < 1:
            raise UsageError(f"--last must be >= 1, got {last}")
        tr = parse_timerange(timerange)
        if symbols is not None and mode == "paper":
            if replay is not None or symbol or resume:
                raise UsageError("--symbols picks each symbol's candles: no --replay, --symbol or --resume")
            if tr is None and last is None:  # no recorded candles asked for: the dry-run on live prices
                from perpbot.cli.dry_run import run_dry_portfolio_cli

                run_dry_portfolio_cli(node_settings(config, symbols, mode=mode), strategy=strategy,
                                      model_path=model_path, api=api)
                return
            if api:
                raise UsageError("--api is for live prices (no --timerange / --last)")
            portfolio_replay_cli(config, symbols, strategy, tr, last, mode=mode)
            return
        if mode == "live":
            s = settings_for(config, mode=mode, symbol=unified(symbol) if symbol else None)
            if tr is not None:
                raise UsageError("--timerange is for recorded candles (paper replay, backtest, train, report)")
            if replay is not None:
                raise UsageError("--replay is for paper mode; live mode trades on the exchange's candles")
            if resume:
                raise UsageError("--resume is for paper mode; live mode resumes an unfinished run unless --new-run")
            from perpbot.cli.live import run_live

            if symbols is not None and symbol:
                raise UsageError("give --symbol or --symbols, not both")
            run_live(s, real_money=real_money, strategy=strategy, model_path=model_path, resume=not new_run,
                     accept_unproven_model=accept_unproven_model, api=api,
                     **({} if symbols is None else node_symbols(symbols)))
            return
        if replay is None and tr is None and last is None:  # no recorded candles asked for: live prices
            if resume:
                raise UsageError("--resume continues a paper replay: give its --replay FILE")
            from perpbot.cli.dry_run import run_dry_cli

            run_dry_cli(settings_for(config, mode=mode, symbol=unified(symbol) if symbol else None),
                        strategy=strategy, model_path=model_path, api=api)
            return
        if api:
            raise UsageError("--api is for live prices (no --replay); a replay with the API: perpbot serve --replay "
                             "FILE")
        s = data_settings(config, symbol, mode=mode)
        replay = replay if replay is not None else s.candles_file  # --timerange / --last: the symbol's file
        market = market_for(s, tr, candles_file=replay)
        if last is not None:
            market = market.slice(max(0, len(market.candles) - last))
        check_enough_candles(market, s.warmup_bars)
        bundle = load_model_for(s, model_path, strategy) if is_model_strategy(strategy) else None
        led = open_ledger(s)
        resume_id = None
        if resume:
            resume_id = resumable_paper_run(led, s, strategy)
            if resume_id is None:
                raise UserError(f"no abandoned paper run of {strategy} on {s.symbol} {s.timeframe} to resume in "
                                f"{led!r}")
            check_resumable(led.get_run(resume_id), s, market, strategy, bundle)  # one error line, before the bar
        with progress_callback(f"paper replay ({strategy})") as cb:
            bot, run_id = paper_job(s, market, strategy, bundle=bundle, ledger=led, progress=cb, resume_run=resume_id)
        how = f"resumed at candle {bot.resumed_at + 1}, " if bot.resumed_at is not None else ""
        console.print(f"paper run {run_id}: {how}{len(led.trades(run_id))} trades, final equity "
                      f"{bot.exchange.equity:.2f} USDT ({s.ledger_display})")


@app.command()
def trades(config: Optional[Path] = ConfigOpt,
           run_id: Optional[int] = typer.Option(None, "--run-id", help="default: the latest run",
                                                callback=check_run_id),
           limit: int = typer.Option(20, help="show the last N trades")) -> None:
    """List a run's trades from the ledger."""
    with handled():
        if limit < 1:
            raise UsageError(f"--limit must be >= 1, got {limit}")
        s = settings_for(config)
        led = open_ledger(s)
        from perpbot.cli.runs import get_run_or_fail, trades_table

        run_info = get_run_or_fail(led, s, run_id) if run_id is not None else led.last_run()
        if run_info is None:
            raise UserError(f"the ledger {s.ledger_display} has no runs yet (run perpbot backtest first)")
        df = led.trades(run_info["id"]).tail(limit)
        console.print(trades_table(df, f"run {run_info['id']} ({run_info['kind']}, {run_info['strategy']}): "
                                       f"last {len(df)} trades"))


@app.command()
def report(config: Optional[Path] = ConfigOpt,
           output: Path = typer.Option(Path("runs/report.html"), help="HTML file to write"),
           model_path: Optional[Path] = typer.Option(None, "--model-path"),
           tearsheet: Optional[Path] = typer.Option(None, "--tearsheet",
                                                    help="also write the AI's QuantStats tearsheet (HTML) here, "
                                                         "against buy-and-hold (extra: tearsheet)"),
           timerange: Optional[str] = timerange_option(), symbol: Optional[str] = symbol_option()) -> None:
    """Backtest the AI model and the baselines and write the HTML report (no ledger writes)."""
    from perpbot.app.jobs import backtest_job, load_model_for
    from perpbot.strategy.signals import BASELINES

    with handled():
        tr = parse_timerange(timerange)
        s = data_settings(config, symbol)
        check_output_file(output, "--output")
        check_output_file(tearsheet, "--tearsheet")
        if tearsheet is not None:
            from perpbot.extras import require

            require("quantstats", "perpbot report --tearsheet")  # before any work
        bundle = load_model_for(s, model_path)
        mm = model_metrics_frame(bundle.oos_metrics) if getattr(bundle, "oos_metrics", None) else None
        out = backtest_job(s, ["ai", *BASELINES], bundle=bundle, report=output, model_metrics=mm,
                           notes=notes_for(s, bundle), market=market_for(s, tr) if tr else None)
        console.print(f"report: [bold]{out.report}[/]")
        if tearsheet is not None:
            from perpbot.backtest.tearsheet import tearsheet_for_runs

            path = tearsheet_for_runs(tearsheet, out.runs, s.starting_capital, strategy="ai")
            console.print(f"tearsheet: [bold]{path}[/]")


app.command()(demo)
register_catalogue(app)
app.command()(download)
app.command()(optimize)
app.command()(serve)
app.command("status")(status)
app.add_typer(ledger_app, name="ledger")
app.add_typer(models_app, name="models")
app.add_typer(markets_app, name="markets")
app.add_typer(journal_app, name="journal")
app.add_typer(platform_app, name="platform")
register_intel_commands(app)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
