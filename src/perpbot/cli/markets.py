"""``perpbot markets refresh`` / ``perpbot markets show``: the venue's market rules (lot, tick,
minimums, margin tiers) cached on disk for the backtest and paper accounts.

``refresh`` asks the venue for the entries older than ``markets_max_age`` (all of them with
``--force``) through ccxt (:func:`perpbot.exchange.market_cache.refresh_markets`) and prints one
line per symbol; a symbol whose rules could not be fetched prints a ``warning:`` line (the stale
entry or the shipped rules stand) and the exit code is 1. ``show`` prints the cache file's
entries and the rules the account of the settings will use, with their source.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich import box
from rich.table import Table

from perpbot.cli.common import ConfigOpt, UserError, console, err_console, handled, settings_for

markets_app = typer.Typer(no_args_is_help=True, help="The venue's market rules, cached for backtests (lot, tick, "
                                                     "minimums, margin tiers).")


def _rules_text(entry: dict) -> str:
    tiers = entry.get("tiers")
    parts = [f"lot {entry.get('lot')}", f"tick {entry.get('tick')}", f"min qty {entry.get('min_qty')}",
             f"min notional {entry.get('min_notional')} USDT",
             f"{len(tiers)} margin tiers" if tiers else "no margin tiers (" + str(entry.get("tiers_note")) + ")"]
    return ", ".join(parts)


@markets_app.command("refresh")
def refresh(config: Optional[Path] = ConfigOpt,
            symbol: Optional[List[str]] = typer.Option(None, "--symbol", help="ccxt unified symbol; repeat for "
                                                                              "several (default: settings)"),
            exchange: Optional[str] = typer.Option(None, help="ccxt exchange id (default: settings, bitget)"),
            force: bool = typer.Option(False, "--force", help="ask the venue even for entries younger than "
                                                              "markets_max_age"),
            api_url: Optional[str] = typer.Option(None, "--api-url", help="replace the venue's REST base url "
                                                                          "(local simulator/proxy)")) -> None:
    """Fetch the venue's market rules and margin tiers into the market cache (entries older than
    markets_max_age, or all with --force)."""
    from perpbot.exchange.market_cache import MarketCacheError, refresh_markets

    with handled():
        s = settings_for(config)
        venue = exchange or s.exchange
        try:
            done = refresh_markets(s, symbol or None, exchange_id=venue, api_url=api_url, force=force)
        except MarketCacheError as exc:
            raise UserError(str(exc)) from None
        path = s.markets_file(venue)
        failed = 0
        for r in done:
            if r.status == "fetched":
                console.print(f"{r.symbol}: fetched from {venue}: {_rules_text(r.entry or {})} -> {path}",
                              highlight=False, soft_wrap=True)
            elif r.status == "fresh":
                console.print(f"{r.symbol}: cached {r.age_hours:.1f} h ago (younger than markets_max_age "
                              f"{s.markets_max_age:g} h; --force to ask again): {_rules_text(r.entry or {})}",
                              highlight=False, soft_wrap=True)
            else:
                failed += 1
                err_console.print(f"[bold yellow]warning:[/] {r.warning}", highlight=False, soft_wrap=True)
        if failed:
            raise typer.Exit(1)


@markets_app.command("show")
def show(config: Optional[Path] = ConfigOpt,
         exchange: Optional[str] = typer.Option(None, help="ccxt exchange id (default: settings, bitget)")) -> None:
    """The cached market rules of the venue, and the rules (with their source) the account of the
    settings uses."""
    import time

    from perpbot.sim.market_rules import cached_entry, read_cache, rules_note

    with handled():
        s = settings_for(config)
        venue = exchange or s.exchange
        path = s.markets_file(venue)
        markets = read_cache(path).get("markets") or {}
        if not markets:
            console.print(f"no market cache at {path}: perpbot markets refresh", highlight=False, soft_wrap=True)
        else:
            now = int(time.time() * 1000)
            t = Table(title=f"{venue} market rules ({path})", box=box.SIMPLE_HEAD)
            for col in ("symbol", "lot", "tick", "min qty", "min USDT", "tiers", "fetched UTC", "age h"):
                t.add_column(col, no_wrap=col in ("symbol", "fetched UTC"))
            for sym in sorted(markets):
                e, raw = cached_entry(path, venue, sym), markets[sym]
                if e is None:
                    continue
                age = e.age_hours(now)
                t.add_row(sym, *(f"{raw.get(k)}" for k in ("lot", "tick", "min_qty", "min_notional")),
                          str(len(e.tiers)) if e.tiers else "-", e.fetched_text[5:16],
                          f"{age:.1f}" + (" stale" if age > s.markets_max_age else ""))
            console.print(t)
        console.print(rules_note(s), highlight=False, soft_wrap=True)
