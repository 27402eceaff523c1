"""``perpbot demo``: the main job end to end on the configured data.

train (walk-forward) -> backtest (AI beside buy-and-hold, EMA cross, rule scoring) ->
paper replay of the last candles through the bot loop, checked against a backtest of the
same candles -> HTML report + ledger.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from perpbot.cli import common as cli


def trades_identical(a, b) -> tuple[bool, str]:
    """Compare two trades frames column by column (times, sides, sizes and prices exactly)."""
    import numpy as np

    if len(a) != len(b):
        return False, f"{len(a)} vs {len(b)} trades"
    for col in ("side", "qty", "entry_time", "exit_time", "exit_reason"):
        if not (a[col].to_numpy() == b[col].to_numpy()).all():
            return False, f"column {col} differs"
    for col in ("entry_price", "exit_price", "pnl", "fees", "funding"):
        if not np.allclose(a[col].to_numpy(), b[col].to_numpy(), rtol=1e-9, atol=1e-9):
            return False, f"column {col} differs"
    return True, f"{len(a)} trades identical"


def replay_window(n: int, ai_trades, bars: int) -> tuple[int, int]:
    """[start, end) of the candles replayed in paper mode: ``bars`` candles ending 100 candles
    after the AI backtest's latest exit (the end of the data when it made no trade)."""
    end = n
    if len(ai_trades):
        end = min(n, int(ai_trades["exit_bar"].max()) + 100)
    start = max(0, end - bars)
    return start, max(end, min(n, start + bars))


def demo(config: Optional[Path] = cli.ConfigOpt,
         replay_bars: int = typer.Option(2000, help="candles replayed in paper mode (ending after the AI's latest trade)"),
         report: Path = typer.Option(Path("runs/report.html"), help="HTML report path")) -> None:
    """The main job: train -> backtest vs baselines -> paper replay (parity check) -> report + ledger."""
    from perpbot.backtest.runner import comparison_table, write_report
    from perpbot.app.jobs import backtest_job, train_job
    from perpbot.app.paper import paper_job
    from perpbot.data.market import load_market_for
    from perpbot.strategy.signals import BASELINES

    with cli.handled():
        s = cli.settings_for(config)
        cli.check_output_file(report, "--report")
        cli.check_output_file(s.model_file, "model file (model_path)")
        if replay_bars < s.warmup_bars + 10:
            raise cli.UsageError(f"--replay-bars must be at least warmup_bars + 10 = {s.warmup_bars + 10}")
        market = load_market_for(s)
        cli.console.rule(f"[bold]1/4 train[/] {s.model} on {market.source} ({len(market.candles):,} candles)")
        with cli.progress_callback(f"walk-forward {s.model}") as cb:
            trained = train_job(s, progress=cb, market=market)
        cli.console.print(cli.model_metrics_table(trained.model_metrics))
        cli.console.print(f"model: {trained.path} ({trained.bundle.version})")

        cli.console.rule("[bold]2/4 backtest[/] AI vs baselines (fees, slippage, funding, liquidation)")
        ledger = cli.open_ledger(s)
        bt = backtest_job(s, ["ai", *BASELINES], market=market, bundle=trained.bundle, ledger=ledger)
        cli.console.print(cli.metrics_rich_table(comparison_table(bt.runs), f"{s.symbol} {s.timeframe}"))
        from perpbot.cli.verdicts import show_verdict

        honesty = show_verdict(s, market, bt.runs, strategy="ai", model=trained.bundle)

        start, end = replay_window(len(market.candles), bt.runs["ai"].result.trades, replay_bars)
        stamps = market.candles["timestamp"]
        cli.console.rule(f"[bold]3/4 paper replay[/] {end - start} candles through the bot loop")
        cli.console.print(f"window {stamps.iloc[start]:%Y-%m-%d %H:%M} .. {stamps.iloc[end - 1]:%Y-%m-%d %H:%M} UTC "
                          "(ends after the AI's latest backtest trade, so the check compares real trades)")
        tail = market.slice(start, end)
        with cli.progress_callback("paper replay (ai)") as cb:
            bot, paper_run = paper_job(s, tail, "ai", bundle=trained.bundle, ledger=ledger, progress=cb)
        ref = backtest_job(s, ["ai"], market=tail, bundle=trained.bundle).runs["ai"].result
        same, detail = trades_identical(bot.exchange.result().trades, ref.trades)
        lat = sorted(bot.latency_ms)
        cli.console.print(f"paper run {paper_run}: {detail} vs the backtest of the same candles; "
                          f"cycle time p50 {lat[len(lat) // 2]:.1f} ms, p99 {lat[int(len(lat) * 0.99)]:.1f} ms")
        if not same:
            raise cli.UserError(f"paper replay and backtest disagree: {detail}")

        cli.console.rule("[bold]4/4 report[/]")
        out = write_report(report, s, market, bt.runs, model_metrics=cli.model_metrics_frame(trained.model_metrics),
                           notes=cli.notes_for(s, trained.bundle), honesty=honesty)
        ledger_runs = ", ".join(f"{k}={v}" for k, v in bt.run_ids.items())
        cli.console.print(f"report: [bold]{out}[/]\nledger: {s.ledger_display} (backtest runs {ledger_runs}; paper run "
                          f"{paper_run})\nlogs: {s.output_dir / 'logs' / 'perpbot.jsonl'}")
