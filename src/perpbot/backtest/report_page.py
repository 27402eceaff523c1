"""Building blocks of the report page: assets, figure scripts, the data source line, section HTML.

The page embeds, once and inline, plotly.js's "finance" partial bundle (``report_assets/
plotly-finance.min.js``, MIT, the npm package ``plotly.js-finance-dist-min``: bar, candlestick,
scatter, histogram, pie ... trace types, 1.3 MB instead of the full bundle's 4.8 MB), then
its own CSS and JS (``report.css``, ``report.js``). The report is one file that opens offline
anywhere (a copy, an e-mail attachment, a URL of the API); it references no other file.
"""

from __future__ import annotations

import base64
import html
import json
import re
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.io.json import to_json_plotly

__all__ = ["CONFIG", "PLOTLY_BUNDLE", "asset", "data_script", "data_source", "figure_html", "na", "plotly_script",
           "read_data_script", "venue_name"]

ASSETS = Path(__file__).resolve().parent / "report_assets"
PLOTLY_BUNDLE = "plotly-finance.min.js"
CONFIG = {"displaylogo": False, "responsive": True}

#: Display names of venues, by data-folder name or ccxt exchange id.
_VENUES = {"binance-usdm": "Binance USDS-M", "binanceusdm": "Binance USDS-M", "binance-coinm": "Binance COIN-M",
           "binancecoinm": "Binance COIN-M", "binance": "Binance", "bitget": "Bitget", "bybit": "Bybit",
           "okx": "OKX", "gate": "Gate", "gateio": "Gate", "kucoinfutures": "KuCoin Futures", "mexc": "MEXC",
           "hyperliquid": "Hyperliquid", "kraken": "Kraken", "krakenfutures": "Kraken Futures"}
_STEM = re.compile(r"^(?P<symbol>[A-Za-z0-9_.]+?)-(?P<tf>\d+[smhdwM])(?:-(?P<kind>[a-z-]+))?$")


@lru_cache(maxsize=None)
def asset(name: str) -> str:
    """Text of a file in ``report_assets`` (UTF-8). Raises ``FileNotFoundError`` when the package lacks it."""
    return (ASSETS / name).read_text(encoding="utf-8")


def venue_name(key: str | None) -> str | None:
    """Display name of a venue ("binance-usdm" -> "Binance USDS-M", "bitget" -> "Bitget"); None when unknown.

    ASCII "USDS-M" rather than Binance's "USDⓈ-M": many fonts (and headless browsers) lack the circled S."""
    return _VENUES.get(str(key).lower()) if key else None


def data_source(path, timeframe: str | None = None, exchange: str | None = None) -> dict:
    """Where the candles came from, inferred from the file path of the data store layout
    ``<data dir>/<venue>/<SYMBOL>-<timeframe>[-<kind>].parquet`` (``perpbot.data.store``).

    Returns ``{"venue", "symbol", "timeframe", "path", "rules", "text"}``: ``venue`` the display
    name of the folder's venue (None when the folder is not a known venue), ``symbol`` the file's
    market id (None when the name does not follow the layout), ``rules`` the display name of the
    ``exchange`` whose market rules (fees, tiers, lot size) the simulation used, and ``text`` one
    line such as "data: Binance USDS-M SOLUSDT 5m (../shared/data/binance-usdm/SOLUSDT-5m.parquet)
    · simulated venue rules: Bitget".
    """
    p = Path(path) if path else None
    m = _STEM.match(p.stem) if p is not None else None
    venue = venue_name(p.parent.name) if p is not None else None
    symbol = m.group("symbol") if m else None
    tf = timeframe or (m.group("tf") if m else None)
    rules = venue_name(exchange) or (str(exchange) if exchange else None)
    what = " ".join(x for x in (venue or "venue not recorded", symbol or "", tf or "") if x)
    text = f"data: {what}" + (f" ({p})" if p is not None else " (in-memory candles)")
    if rules:
        text += f" · simulated venue rules: {rules}"
    return {"venue": venue, "symbol": symbol, "timeframe": tf, "path": None if p is None else str(p),
            "rules": rules, "text": text}


def _ms_dates(values) -> dict | None:
    """A long list of date strings (tz-naive UTC) as epoch-ms float64 typed array (a third of the bytes;
    plotly.js reads numbers on a date axis as UTC ms); None when they are not all dates."""
    if not isinstance(values, (list, tuple)) or len(values) <= 64 or not all(isinstance(v, str) for v in values):
        return None
    try:
        idx = pd.DatetimeIndex(values)
    except (ValueError, TypeError):
        return None
    ms = idx.as_unit("ms").asi8.astype("<f8")
    return {"dtype": "f8", "bdata": base64.b64encode(ms.tobytes()).decode("ascii")}


def _compact(trace: dict) -> dict:
    """Long price/equity arrays of line and candlestick traces as float32 (half the bytes in the page;
    7 significant digits is more than a chart can show); marker traces keep float64 values. Long
    date lists (candles, trade markers) become epoch-ms typed arrays."""
    ms = _ms_dates(trace.get("x")) if trace.get("type", "scatter") in ("scatter", "candlestick") else None
    if ms is not None:
        trace["x"] = ms
    keys = ("open", "high", "low", "close") if trace.get("type") == "candlestick" else \
        ("y",) if trace.get("type", "scatter") == "scatter" and trace.get("mode") == "lines" else ()
    for k in keys:
        v = trace.get(k)
        if isinstance(v, dict) and v.get("dtype") == "f8" and "shape" not in v:  # plotly >= 6 typed array
            v = np.frombuffer(base64.b64decode(v["bdata"]), dtype="<f8")
        if v is not None and not isinstance(v, (str, dict)):
            a = np.asarray(v)
            if a.dtype.kind == "f" and a.ndim == 1 and a.size > 64:
                trace[k] = {"dtype": "f4", "bdata": base64.b64encode(a.astype("<f4").tobytes()).decode("ascii")}
    return trace


def _js(value) -> str:
    """JSON for an inline <script>: numpy arrays as plotly typed arrays (base64), "</" escaped."""
    return to_json_plotly(value).replace("</", "<\\/")


def figure_html(div_id: str, fig: go.Figure) -> str:
    """A div and the script that draws ``fig`` in it with ``Plotly.newPlot`` (plotly.js loaded before)."""
    d = fig.to_plotly_json()
    data = [_compact(dict(t)) for t in d["data"]]
    height = d["layout"].get("height") or 450
    return (f'<div id="{html.escape(div_id)}" class="fig" style="height:{int(height)}px"></div>\n'
            f"<script>Plotly.newPlot({json.dumps(div_id)}, {_js(data)}, {_js(d['layout'])}, "
            f"{json.dumps(CONFIG)});</script>")


def data_script(element_id: str, payload) -> str:
    """``payload`` as JSON, deflate-compressed (zlib format, RFC 1950) and base64-encoded in a
    ``<script type="application/octet-stream">`` block; report.js inflates it with the browser's
    ``DecompressionStream("deflate")``. Trade lists and candle deltas shrink about 3-4x."""
    raw = to_json_plotly(payload).encode("utf-8")
    b64 = base64.b64encode(zlib.compress(raw, 9)).decode("ascii")
    return (f'<script type="application/octet-stream" id="{html.escape(element_id)}" '
            f'data-encoding="deflate+base64">{b64}</script>')


def read_data_script(text: str, element_id: str):
    """The payload of :func:`data_script` back from a page's HTML (for tests and tools)."""
    m = re.search(rf'<script type="application/octet-stream" id="{re.escape(element_id)}"[^>]*>([^<]*)</script>',
                  text)
    if m is None:
        raise ValueError(f"no data block {element_id!r} in the page")
    return json.loads(zlib.decompress(base64.b64decode(m.group(1))))


def plotly_script() -> str:
    """The inline plotly.js bundle (once per page)."""
    return f"<script>{asset(PLOTLY_BUNDLE)}</script>"


def na(what: str, why: str) -> str:
    """A visible "not available" note."""
    return f'<p class="na">{html.escape(what)}: not available — {html.escape(why)}</p>'
