"""``perpbot collect`` and ``perpbot pairs`` (registered by :func:`perpbot.cli.intel_commands.register`)."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from perpbot.cli import common as cli
from perpbot.cli.common import ConfigOpt
from perpbot.cli.intel_commands import ApiUrlOpt, ExchangeOpt, _settings, public_exchange

__all__ = ["collect", "pairs", "pairs_table", "history_table"]


# --------------------------------------------------------------------------------- collect --
def collect(config: Optional[Path] = ConfigOpt, exchange: Optional[str] = ExchangeOpt, api_url: Optional[str] = ApiUrlOpt,
            symbols: Optional[str] = typer.Option(None, help="comma-separated, e.g. BTC,ETH,SOL (default: "
                                                              "collect_symbols)"),
            interval: Optional[float] = typer.Option(None, help="seconds between snapshots (default: collect_interval)"),
            once: bool = typer.Option(False, "--once", help="take one snapshot of every symbol and stop"),
            collect_dir: Optional[Path] = typer.Option(None, "--collect-dir", help="store root (default: collect_dir)")
            ) -> None:
    """Record funding, open interest, long/short, liquidations, Fear & Greed, sentiment and the order
    book of some symbols into the Parquet store on a schedule (resumable, one row per symbol and slot)."""
    with cli.handled():  # the intel extra: one line naming it when missing
        from perpbot.intel.collect import Collector, context_file
        from perpbot.intel.context import MarketContext

        over: dict[str, Any] = {}
        if symbols is not None:
            over["collect_symbols"] = [s.strip() for s in symbols.split(",") if s.strip()]
        if interval is not None:
            over["collect_interval"] = interval
        if collect_dir is not None:
            over["collect_dir"] = collect_dir
        s = _settings(config, exchange, "collect", **over)
        ex = public_exchange(s.signal_exchange, api_url)

        async def main() -> int:
            ctx = MarketContext.from_settings(s.model_copy(update={"micro_metrics": False}), exchange=ex)
            try:
                col = Collector(ctx, s.collect_symbols, s.collect_dir, s.signal_exchange, s.collect_interval)
                return await col.run(1 if once else None)
            finally:
                await ctx.aclose()
                await ex.close()

        try:
            added = asyncio.run(main())
        except KeyboardInterrupt:
            added = 0
        except ValueError as exc:
            raise cli.UsageError(str(exc)) from None
        files = ", ".join(str(context_file(s.collect_dir, s.signal_exchange, x)) for x in s.collect_symbols)
        cli.console.print(f"{added} row(s) added: {files}")


# ----------------------------------------------------------------------------------- pairs --
def _n(x: Any, fmt: str) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "-"
    return "-" if not math.isfinite(v) else format(v, fmt)


def pairs_table(ranking: Any, top: int) -> Table:
    """Rich table of the ranking's ``top`` rows, 80 columns wide at most."""
    t = Table(title=f"{ranking.venue} USDT-M perpetuals", title_justify="left", pad_edge=False, padding=(0, 1))
    for name in ("#", "symbol", "score", "ATR%", "vol M", "mom%", "ADX", "fund%", "OI%", "bps"):
        t.add_column(name, justify="left" if name == "symbol" else "right", no_wrap=True)
    for sym, r in ranking.table.head(top).iterrows():
        t.add_row(str(int(r["rank"])), str(sym).split(":")[0][:14], _n(r["score"], ".3f"), _n(r["volatility"], ".2f"),
                  _n(r["volume"] / 1e6, ",.0f"), _n(r["momentum"], ".1f"), _n(r["trend"], ".0f"),
                  _n(r["funding"], ".4f"), _n(r["oi_change"], "+.1f"), _n(r["spread"], ".2f"))
    return t


def history_table(result: dict) -> Table:
    """Rich table of :func:`perpbot.backtest.pairs_history.evaluate_selector`'s result (percent)."""
    t = Table(title=f"selector on history, {result['weeks']} weeks from {result['period'][0][:10]}",
              title_justify="left", pad_edge=False, padding=(0, 1))
    t.add_column("selection", no_wrap=True)
    strategies = list(result["results"])
    for k in strategies:
        t.add_column(f"{k} %", justify="right", no_wrap=True)
    keys = list(result["results"][strategies[0]])
    for key in keys:
        cells = []
        for k in strategies:
            v = result["results"][k][key]
            cells.append(f"{v['mean'] * 100:+.1f} [{v['p05'] * 100:+.0f}, {v['p95'] * 100:+.0f}] "
                         f"beat {v['share_beaten'] * 100:.0f}%" if isinstance(v, dict) else f"{v * 100:+.1f}")
        t.add_row(key if not key.startswith("random") else f"{key} [5%, 95%]", *cells)
    return t


def pairs(config: Optional[Path] = ConfigOpt, exchange: Optional[str] = ExchangeOpt, api_url: Optional[str] = ApiUrlOpt,
          top: int = typer.Option(20, min=1, help="rows to print"),
          json_out: Optional[Path] = typer.Option(None, "--json", help="write the ranking here (default: "
                                                                         "<output_dir>/pairs.json)"),
          history: bool = typer.Option(False, "--history", help="rank on history only and evaluate the selector"),
          data_dir: Path = typer.Option(Path("../shared/data/binance-usdm"), "--data-dir",
                                        help="history mode: folder of <COIN>USDT-1h.parquet and -funding.parquet"),
          coins: str = typer.Option("SOL,BTC,ETH", "--coins", help="history mode: coins to rank"),
          seeds: int = typer.Option(1000, min=1, max=100_000, help="history mode: random draws"),
          collect_dir: Optional[Path] = typer.Option(None, "--collect-dir",
                                                     help="store of perpbot collect, for the OI change factor")) -> None:
    """Rank every USDT-M perpetual of the venue on weighted factors (volatility, volume, momentum,
    trend, funding, OI change, spread); with --history, evaluate the ranking as a weekly selector."""
    with cli.handled():
        s = _settings(config, exchange, "pairs", **({"collect_dir": collect_dir} if collect_dir else {}))
        out = json_out or s.output_dir / ("pairs-history.json" if history else "pairs.json")
        cli.check_output_file(out, "--json")
        if history:
            result = _history(s, data_dir, [c.strip().upper() for c in coins.split(",") if c.strip()], seeds)
            _write_json(out, result)
            Console(width=80).print(history_table(result))
        else:
            ranking = asyncio.run(_rank(s, api_url))
            _write_json(out, ranking.to_dict())
            Console(width=80).print(pairs_table(ranking, top))
            if ranking.errors:
                cli.console.print(f"not ranked (errors): {', '.join(sorted(ranking.errors))}")
            cli.console.print(f"{len(ranking.table)} ranked, {len(ranking.dropped)} filtered out")
        cli.console.print(f"json: {out}")


async def _rank(s: Any, api_url: str | None):
    from perpbot.intel.collect import collected_oi_change
    from perpbot.intel.pairs import rank_venue

    ex = public_exchange(s.signal_exchange, api_url)
    try:
        return await rank_venue(ex, s, oi_change=collected_oi_change(s.collect_dir, s.signal_exchange))
    except Exception as exc:
        if type(exc).__module__.startswith("ccxt"):
            raise cli.UserError(f"{s.signal_exchange}: {type(exc).__name__}: {' '.join(str(exc).split())[:160]}") \
                from None
        raise
    finally:
        await ex.close()


def _history(s: Any, data_dir: Path, coins: list[str], seeds: int) -> dict:
    from perpbot.data import load_candles, load_funding
    from perpbot.backtest.pairs_history import evaluate_selector

    if len(coins) < 2:
        raise cli.UsageError("--coins needs at least two coins")
    candles, funding = {}, {}
    for c in coins:
        candles[c] = load_candles(data_dir / f"{c}USDT-1h.parquet")
        f = data_dir / f"{c}USDT-funding.parquet"
        funding[c] = load_funding(f) if f.exists() else None
    return evaluate_selector(s, candles, funding, top_ns=tuple(range(1, min(3, len(coins)))), seeds=seeds)


def _write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=1, allow_nan=False) + "\n")
    tmp.replace(path)
