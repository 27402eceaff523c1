"""``perpbot list-strategies``, ``list-models``, ``list-data``: what the bot can run and on what.

``list-data`` reads only each Parquet file's footer (row count) and its ``timestamp`` column
(first / last candle open, UTC); a file named ``<SYMBOL>-<timeframe>[-<kind>].parquet`` or
``<SYMBOL>-<kind>.parquet`` (the layout of ``../shared/data`` and of ``perpbot download``'s store)
gives the symbol, timeframe and kind.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from perpbot.cli.common import ConfigOpt, UserError, console, handled, settings_for

#: One line per built-in strategy (``perpbot.strategy.signals.STRATEGIES``).
STRATEGY_NOTES = {
    "ai": "three-class model (long / short / flat) with the EV or threshold decision",
    "ema-cross": "EMA(20) above / below EMA(50)",
    "scoring": "rule score of RSI, MACD, Bollinger bands, MA5/MA20",
    "buy-and-hold": "1x full equity long from the first tradable bar, no stops",
    "donchian": "Donchian channel breakout (20 bars)",
}
_NAME = re.compile(r"^(?P<symbol>[A-Za-z0-9_.]+?)-(?:(?P<tf>\d+[smhdwM])(?:-(?P<kind1>[a-z_]+))?|(?P<kind2>[a-z_]+))$")


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _strategy_note(name: str) -> str:
    if name.startswith("meta:"):
        return f"model (meta-label) filtering the {name[5:]} rule's calls"
    return STRATEGY_NOTES.get(name, "")


def list_strategies() -> None:
    """The strategies --strategy accepts, and whether each needs a trained model."""
    from perpbot.strategy.signals import BASELINES, STRATEGIES, is_model_strategy

    t = Table(title="strategies", box=box.SIMPLE_HEAD)
    t.add_column("name", no_wrap=True)
    t.add_column("model", no_wrap=True)
    t.add_column("what it does", overflow="fold")
    for name in STRATEGIES:
        note = _strategy_note(name) + (" (baseline)" if name in BASELINES else "")
        t.add_row(name, "yes" if is_model_strategy(name) else "no", note)
    console.print(t)


def list_models() -> None:
    """The models --model accepts: the built-in ones (the extra each needs and whether it is
    installed here), then the installed model plug-ins (entry points of ``perpbot.models``)."""
    from perpbot.extras import MODEL_EXTRA, extra_for
    from perpbot.ml.model_plugins import model_entry_points
    from perpbot.ml.models import DEFAULT_MODEL, MODEL_NAMES

    t = Table(title="models", box=box.SIMPLE_HEAD, caption="or a model file: --model FILE.py[:Factory] "
                                                           "(docs/COOKBOOK.md)")
    t.add_column("name", no_wrap=True)
    t.add_column("needs", overflow="fold")
    t.add_column("installed", no_wrap=True)
    for name in MODEL_NAMES:
        module = MODEL_EXTRA.get(name)
        extra = extra_for(module) if module else ""
        ok = not module or _installed(module)
        needs = f'pip install "perpbot[{extra}]"' if extra else "core"
        t.add_row(name + (" (default)" if name == DEFAULT_MODEL else ""), escape(needs), "yes" if ok else "no")
    for name, ep in sorted(model_entry_points().items()):
        dist = getattr(ep, "dist", None)
        source = f"{dist.name} {dist.version}" if dist is not None else ep.value
        shadowed = " (hidden by the built-in)" if name in MODEL_NAMES else ""
        t.add_row(escape(name), escape(f"plug-in {ep.value} ({source}){shadowed}"), "yes")
    console.print(t)


def describe_file(path: Path) -> dict:
    """symbol, timeframe, kind, rows, first and last timestamp (UTC) of one Parquet data file."""
    import pandas as pd
    import pyarrow.parquet as pq

    m = _NAME.match(path.stem)
    symbol = m.group("symbol") if m else path.stem
    tf = (m.group("tf") or "") if m else ""
    kind = ((m.group("kind1") or m.group("kind2") or "candles") if m else "?")
    rows = pq.ParquetFile(path).metadata.num_rows
    first = last = None
    if rows:
        ts = pd.read_parquet(path, columns=["timestamp"])["timestamp"]
        ts = pd.to_datetime(ts, utc=True) if not isinstance(ts.dtype, pd.DatetimeTZDtype) else ts.dt.tz_convert("UTC")
        first, last = ts.min(), ts.max()
    return {"file": path.name, "symbol": symbol, "timeframe": tf, "kind": kind, "rows": rows, "first": first,
            "last": last}


def list_data(config: Optional[Path] = ConfigOpt,
              data_dir: Optional[Path] = typer.Option(None, "--data-dir",
                                                      help="folder to list (default: the folder of candles_file)")
              ) -> None:
    """The Parquet data files: symbol, timeframe, kind, rows, first / last UTC."""
    with handled():
        folder = data_dir or settings_for(config).candles_file.parent
        if not folder.is_dir():
            raise UserError(f"data folder {folder} does not exist (set candles_file or --data-dir)")
        files = sorted(folder.rglob("*.parquet"))
        if not files:
            raise UserError(f"no Parquet files under {folder}")
        t = Table(title=f"data in {folder}", box=box.SIMPLE_HEAD, pad_edge=False)
        for col in ("symbol", "tf", "kind", "rows", "first (UTC)", "last (UTC)"):
            t.add_column(col, no_wrap=True, justify="right" if col == "rows" else "left")
        for path in files:
            try:
                d = describe_file(path)
            except Exception as exc:  # one unreadable file does not hide the others
                t.add_row(path.stem, "", "unreadable", "", type(exc).__name__, "")
                continue
            fmt = "%Y-%m-%d %H:%M"
            t.add_row(d["symbol"], d["timeframe"], d["kind"], f"{d['rows']:,}",
                      d["first"].strftime(fmt) if d["first"] is not None else "",
                      d["last"].strftime(fmt) if d["last"] is not None else "")
        console.print(t)
