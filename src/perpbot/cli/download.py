"""``perpbot download``: fetch history from a ccxt venue into the Parquet store, with a progress bar.

Registered by :mod:`perpbot.cli.main` with ``app.command()(download)``. Afterwards the symbol's
entry of the market-rules cache is refreshed when due (``--no-markets``: not). Errors (unknown
exchange, symbol not listed, unsupported timeframe, network down) print one ``error:`` line
on stderr and exit 1 (2 for configuration errors).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from perpbot.cli import common as cli
from perpbot.cli.common import ConfigOpt


def download(config: Optional[Path] = ConfigOpt,
             exchange: Optional[str] = typer.Option(None, help="ccxt exchange id (default: settings, bitget)"),
             symbol: Optional[str] = typer.Option(None, help="ccxt unified symbol (default: settings, SOL/USDT:USDT)"),
             timeframe: Optional[str] = typer.Option(None, help="candle timeframe (default: settings, 5m)"),
             since: Optional[str] = typer.Option(None, help="first candle, ISO date UTC (default: resume, or 30 days "
                                                          "back for a new file)"),
             until: Optional[str] = typer.Option(None, help="stop before this ISO date UTC (default: now)"),
             kinds: str = typer.Option("candles,mark,index,funding,open-interest",
                                       help="comma-separated: candles, mark, index, funding, open-interest"),
             data_dir: Path = typer.Option(Path("data"), "--data-dir", help="store root; files go to DATA_DIR/<exchange>/"),
             api_url: Optional[str] = typer.Option(None, "--api-url",
                                                   help="replace the venue's REST base url (local simulator/proxy)"),
             retries: int = typer.Option(3, min=0, max=20, help="retries of a failed request (timeouts, 5xx, 429)"),
             markets: bool = typer.Option(True, "--markets/--no-markets",
                                          help="also refresh the symbol's entry of the market-rules cache when it "
                                               "is older than markets_max_age (perpbot markets refresh)")
             ) -> None:
    """Download candles, mark/index candles, funding and open interest into the Parquet store (resumable)."""
    from perpbot.exchange.download import DownloadError, check_request, make_sync_exchange, resolve_market
    from perpbot.exchange.download import download as run_download

    with cli.handled():
        s = cli.settings_for(config)
        ex_id = exchange or s.exchange
        sym = symbol or s.symbol
        tf = timeframe or s.timeframe
        wanted = [k.strip() for k in kinds.split(",") if k.strip()]
        try:
            check_request(wanted, since, until)
            ex = make_sync_exchange(ex_id, api_url=api_url)
            resolve_market(ex, sym, tf)  # fail with one line before the progress bar starts
            with cli.progress_bar("download") as bar:
                tasks: dict[str, int] = {}

                def progress(kind: str, done: int, total: int | None) -> None:
                    if kind not in tasks:
                        tasks[kind] = bar.add_task(f"{ex_id} {sym} {kind}", total=total)
                    bar.update(tasks[kind], completed=done, total=total)

                result = run_download(ex, sym, tf, data_dir, kinds=wanted, since=since, until=until,
                                      progress=progress, retries=retries)
        except DownloadError as exc:
            raise cli.UserError(str(exc)) from None
        cli.console.print(_summary(result))
        if markets:
            _refresh_rules(s, ex_id, sym, ex)


def _refresh_rules(s, ex_id: str, sym: str, ex) -> None:
    """The symbol's market-rules cache entry, refreshed with the download's client when due."""
    from perpbot.exchange.market_cache import refresh_markets

    r = refresh_markets(s, [sym], exchange_id=ex_id, ex=ex)[0]
    if r.warning:
        cli.err_console.print(f"[bold yellow]warning:[/] {r.warning}", highlight=False, soft_wrap=True)
    elif r.status == "fetched":
        cli.console.print(f"market rules of {sym} cached in {s.markets_file(ex_id)}", highlight=False, soft_wrap=True)


def _summary(result) -> Table:
    """Rich table: one row per kind (rows added, rows stored, span, file, note)."""
    import pandas as pd

    def fmt(ms):
        return "" if ms is None else pd.Timestamp(ms, unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M")

    t = Table(title=f"{result.exchange} {result.symbol} ({result.symbol_id}) {result.timeframe}")
    for col in ("kind", "added", "stored", "from", "to", "file", "note"):
        t.add_column(col, justify="right" if col in ("added", "stored") else "left")
    for k in result.kinds.values():
        t.add_row(k.kind, f"{k.added:,}", f"{k.rows:,}", fmt(k.first_ms), fmt(k.last_ms),
                  str(k.path) if k.path and k.path.exists() else "", k.note)
    return t
