"""``--symbols A,B,...``: one strategy over several symbols on one account (backtest and paper replay).

Each symbol's files come from the data folder of the settings' candles file, as ``--symbol`` picks
them; the symbols' candles are cut to the times they all have. The account's budget across the
symbols comes from the ``portfolio_*`` settings (:mod:`perpbot.sim.portfolio_kernel`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from rich.table import Table

from perpbot.cli.common import (
    UsageError, console, err_console, metrics_rich_table, open_ledger, progress_callback, settings_for,
)


def symbols_option_help() -> str:
    return ("several symbols on one account, comma-separated, e.g. SOL/USDT:USDT,BTC/USDT:USDT (their files in "
            "the data folder; budget: portfolio_* settings)")


def parse_symbols(text: str) -> list[str]:
    """``"SOL/USDT:USDT, BTC/USDT:USDT"`` -> unified symbols; UsageError for fewer than two or a repeat."""
    from perpbot.cli.timerange import unified

    symbols = [unified(s.strip()) for s in text.split(",") if s.strip()]
    if len(symbols) < 2:
        raise UsageError(f"--symbols needs at least two symbols, got {text!r} (one symbol: --symbol)")
    if len(set(symbols)) != len(symbols):
        raise UsageError(f"--symbols names a symbol twice: {text!r}")
    return symbols


def node_symbols(text: str) -> dict:
    """The live node's ``--symbols``: ``A,B,...`` -> {"symbols": [...]} (:func:`parse_symbols`), or
    ``auto:N`` -> {"auto_pairs": N} (the venue's N best-ranked pairs, ``perpbot pairs``)."""
    if text.strip().lower().startswith("auto:"):
        n = text.strip()[5:]
        if not n.isdigit() or int(n) < 1:
            raise UsageError(f"--symbols auto:N needs a whole number N >= 1, got {text!r}")
        return {"auto_pairs": int(n)}
    return {"symbols": parse_symbols(text)}


def node_settings(config: Optional[Path], text: str, **overrides) -> dict:
    """Settings per symbol of ``--symbols A,B,...`` for a node on live prices (each the settings with its
    ``symbol``; no data files needed)."""
    base = settings_for(config, **overrides)
    return {s: base.model_copy(update={"symbol": s}) for s in parse_symbols(text)}


def portfolio_inputs(config: Optional[Path], symbols: list[str], timerange, **overrides):
    """(settings per symbol, market data per symbol on one timeline, cut to ``timerange``)."""
    from perpbot.cli.timerange import market_for, symbol_overrides
    from perpbot.data.market import align_markets

    base = settings_for(config, **overrides)
    settings = {s: settings_for(config, **{**overrides, **symbol_overrides(base, s)}) for s in symbols}
    markets = align_markets({s: market_for(settings[s], timerange) for s in symbols})
    return settings, markets


def show_portfolio(run, title: str) -> None:
    """Print the account's metrics, the per-symbol breakdown and the vetoes by reason."""
    from perpbot.ml.trading_metrics import metrics_table

    console.print(metrics_rich_table(metrics_table({"portfolio": run.metrics}), title))
    t = Table(title="Per symbol (USDT)")
    for col in ("symbol", "trades", "wins", "win rate", "net pnl", "fees", "funding"):
        t.add_column(col, justify="left" if col == "symbol" else "right")
    for sym, r in run.result.breakdown.iterrows():
        t.add_row(str(sym), str(int(r.trades)), str(int(r.wins)), f"{r.win_rate:.1%}", f"{r.pnl:,.2f}",
                  f"{r.fees:,.2f}", f"{r.funding:,.2f}")
    console.print(t)
    ev = run.result.risk_events
    counts = ev["event"].astype(str).value_counts()
    if len(counts):
        console.print("risk events: " + ", ".join(f"{k} {int(v)}" for k, v in counts.items()), highlight=False)
    if not len(run.result.trades) and len(counts):
        err_console.print("[bold yellow]warning:[/] no trade — every entry was refused (see the risk events above)",
                          highlight=False)


def portfolio_backtest_cli(config: Optional[Path], symbols_text: str, strategy: str, timerange,
                           report: Optional[Path] = None, **overrides) -> None:
    """The portfolio backtest's tables in the terminal, and its HTML report at ``report`` (when given)."""
    from perpbot.app.portfolio import portfolio_backtest_job

    symbols = parse_symbols(symbols_text)
    settings, markets = portfolio_inputs(config, symbols, timerange, **overrides)
    run = portfolio_backtest_job(settings, markets, strategy)
    first = settings[symbols[0]]
    n = len(markets[symbols[0]].candles)
    show_portfolio(run, f"Portfolio backtest {', '.join(symbols)} {first.timeframe} ({n} candles each)")
    if report is not None:
        from perpbot.backtest.portfolio_report import write_portfolio_report

        out = write_portfolio_report(report, settings, markets, run, strategy)
        console.print(f"report: [bold]{out}[/]")


def portfolio_replay_cli(config: Optional[Path], symbols_text: str, strategy: str, timerange, last: int | None,
                         **overrides) -> None:
    from perpbot.app.portfolio import portfolio_paper_job

    symbols = parse_symbols(symbols_text)
    settings, markets = portfolio_inputs(config, symbols, timerange, **overrides)
    if last is not None:
        markets = {s: m.slice(max(0, len(m.candles) - last)) for s, m in markets.items()}
    n = len(markets[symbols[0]].candles)
    first = settings[symbols[0]]
    ledger = open_ledger(first)
    with progress_callback("paper replay (portfolio)", n) as advance:
        run = portfolio_paper_job(settings, markets, strategy, progress=advance, ledger=ledger)
    show_portfolio(run, f"Portfolio paper replay {', '.join(symbols)} {first.timeframe} ({n} candles)")
    console.print("ledger runs: " + ", ".join(f"{s}={r}" for s, r in run.run_ids.items()) + f" ({first.ledger_display})",
                  highlight=False)
