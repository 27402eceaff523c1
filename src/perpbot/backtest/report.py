"""Self-contained offline HTML report of backtest results (Plotly figures + metric tables).

The report holds: the verdict on skill (when an honesty block is given), notes, the
strategy metrics table (``metrics_table`` layout: rows = metric, columns = strategy), an
optional model metrics table, the statistics against overfitting (seed targets pass/fail,
PSR/DSR, bootstrap intervals, trade Monte Carlo, binomial test; :mod:`perpbot.ml.honesty`),
(1) price (resampled OHLC candles) with the primary strategy's entries and exits, (2) equity curves of all
strategies, (3) drawdown curves. plotly.js is embedded once, inline, so the file opens
without internet; long series are downsampled (``plot_rule``, default 1 h) to keep the
file small. Figures are built by the public ``*_figure`` helpers so they can be tested
and reused.
"""

from __future__ import annotations

import html
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from perpbot.backtest.metrics import drawdown_series, format_metrics_table
from perpbot.types import ExitReason

__all__ = ["drawdown_figure", "equity_figure", "honesty_html", "price_figure", "verdict_html", "write_html_report"]

_EXIT_COLORS = {
    "take_profit": "#2ca02c", "stop_loss": "#d62728", "signal": "#1f77b4",
    "liquidation": "#000000", "end_of_data": "#7f7f7f", "trailing_stop": "#ff7f0e",
}
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table.tbl{border-collapse:collapse;font-size:.9em}
table.tbl th,table.tbl td{border:1px solid #ccc;padding:4px 10px;text-align:right}
table.tbl th{background:#f4f4f4}.meta{color:#666;font-size:.9em}
table.tbl td:first-child{text-align:left}td.pass{color:#1a7f37;font-weight:bold}td.fail{color:#c62828;font-weight:bold}
h3{font-size:1em;margin:1.2em 0 .4em}p.verdict{font-size:1.15em;padding:8px 12px;border-left:6px solid #999}
p.verdict.confirmed{border-color:#1a7f37}p.verdict.none{border-color:#c62828}p.verdict.few{border-color:#e0a800}
"""


def _utc_naive(values) -> pd.DatetimeIndex:
    """Timestamps as tz-naive UTC (what plotly.js draws without shifting); naive input is taken as UTC."""
    idx = pd.DatetimeIndex(values)
    return idx.tz_convert("UTC").tz_localize(None) if idx.tz is not None else idx


def _x(index: pd.DatetimeIndex) -> list[str]:
    """Compact date strings for plotly (about half the bytes of its default ISO format)."""
    return list(index.strftime("%Y-%m-%d %H:%M:%S" if (index.second != 0).any() else "%Y-%m-%d %H:%M"))


def _candles_frame(candles: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(candles, pd.DataFrame) or len(candles) == 0:
        raise ValueError("candles: expected a non-empty DataFrame")
    missing = [c for c in ("open", "high", "low", "close") if c not in candles.columns]
    if missing:
        raise ValueError(f"candles: missing columns {missing}")
    if "timestamp" in candles.columns:
        index = candles["timestamp"]
    elif isinstance(candles.index, pd.DatetimeIndex):
        index = candles.index
    else:
        raise ValueError("candles: need a 'timestamp' column or a DatetimeIndex (candle open times, UTC)")
    frame = candles[["open", "high", "low", "close"]].copy()
    frame.index = _utc_naive(index)
    return frame


def _finer_than(index: pd.DatetimeIndex, rule: str) -> bool:
    return len(index) > 1 and pd.Series(index).diff().median() < pd.Timedelta(rule)


def _side_sign(side: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(side):
        return np.sign(side.to_numpy(dtype=np.float64))
    text = side.astype(str).str.lower()
    return np.where(text.isin(["long", "buy", "1"]), 1.0, np.where(text.isin(["short", "sell", "-1"]), -1.0, 0.0))


def _reason_labels(reason: pd.Series) -> pd.Series:
    def one(r) -> str:
        if isinstance(r, (int, np.integer)) or (isinstance(r, float) and r.is_integer()):
            try:
                return ExitReason(int(r)).label
            except ValueError:
                return f"code {int(r)}"
        return str(getattr(r, "label", r))
    return reason.map(one)


def price_figure(candles: pd.DataFrame, trades: pd.DataFrame, *, strategy: str = "", rule: str = "1h") -> go.Figure:
    """Candlestick chart of ``candles`` (resampled to ``rule`` when finer) with trade markers.

    ``candles``: open/high/low/close (USDT) with a ``timestamp`` column or DatetimeIndex
    marking candle OPEN times (UTC). ``trades``: ``TRADE_COLUMNS`` rows (uses side,
    entry_time, entry_price, exit_time, exit_price, exit_reason; side numeric +1/-1 or
    "long"/"short"; exit_reason an ``ExitReason`` code or label). Trace names carry the
    marker counts, e.g. ``"long entry (12)"``, ``"exit: stop_loss (4)"``.
    Raises ``ValueError`` on missing columns.
    """
    frame = _candles_frame(candles)
    label = "price"
    if _finer_than(frame.index, rule):  # open-time marks: bin [t, t+rule) labelled t
        frame = frame.resample(rule).agg({"open": "first", "high": "max", "low": "min", "close": "last"}).dropna()
        label = f"price ({rule} candles)"
    fig = go.Figure(go.Candlestick(
        x=_x(frame.index), open=frame["open"], high=frame["high"], low=frame["low"], close=frame["close"],
        name=label,
        increasing_line_color="#26a69a", decreasing_line_color="#ef5350", showlegend=True,
    ))
    if len(trades):
        need = ["side", "entry_time", "entry_price", "exit_time", "exit_price", "exit_reason"]
        missing = [c for c in need if c not in trades.columns]
        if missing:
            raise ValueError(f"trades: missing columns {missing}")
        sign = _side_sign(trades["side"])
        for label, mask, symbol, color in (("long entry", sign > 0, "triangle-up", "#2ca02c"),
                                           ("short entry", sign < 0, "triangle-down", "#d62728")):
            t = trades[mask]
            fig.add_trace(go.Scatter(
                x=_x(_utc_naive(t["entry_time"])), y=t["entry_price"].to_numpy(dtype=np.float64), mode="markers",
                name=f"{label} ({len(t)})", marker=dict(symbol=symbol, size=9, color=color,
                                                        line=dict(width=0.5, color="#222")),
            ))
        closed = trades[trades["exit_time"].notna()]
        reasons = _reason_labels(closed["exit_reason"])
        for reason in sorted(reasons.unique()):
            t = closed[reasons == reason]
            fig.add_trace(go.Scatter(
                x=_x(_utc_naive(t["exit_time"])), y=t["exit_price"].to_numpy(dtype=np.float64), mode="markers",
                name=f"exit: {reason} ({len(t)})",
                marker=dict(symbol="x", size=8, color=_EXIT_COLORS.get(reason, "#9467bd")),
            ))
    fig.update_layout(
        title=f"Price and trades{' - ' + strategy if strategy else ''}", height=600,
        xaxis_rangeslider_visible=False, xaxis_title="time (UTC)", yaxis_title="USDT",
        template="plotly_white", legend=dict(orientation="h", y=-0.12),
    )
    return fig


def _plot_series(series: pd.Series, rule: str, how: str) -> pd.Series:
    s = pd.Series(series.to_numpy(dtype=np.float64), index=_utc_naive(series.index))
    if _finer_than(s.index, rule):  # bar-close marks: bin (t-rule, t] labelled t
        s = getattr(s.resample(rule, closed="right", label="right"), how)().dropna()
    return s


def equity_figure(results: dict[str, dict], *, rule: str = "1h") -> go.Figure:
    """Equity curves (USDT) of all strategies on one chart, downsampled to the last value per ``rule``."""
    fig = go.Figure()
    for name, res in results.items():
        s = _plot_series(res["equity"], rule, "last")
        fig.add_trace(go.Scatter(x=_x(s.index), y=s.to_numpy(), mode="lines", name=str(name)))
    fig.update_layout(title="Equity", height=450, xaxis_title="time (UTC)", yaxis_title="equity (USDT)",
                      template="plotly_white")
    return fig


def drawdown_figure(results: dict[str, dict], *, rule: str = "1h") -> go.Figure:
    """Drawdown curves (percent below the running peak), computed at full resolution, then the
    worst value per ``rule`` is plotted. Uses ``results[name]["initial_capital"]`` as the first
    peak when present."""
    fig = go.Figure()
    for name, res in results.items():
        dd = drawdown_series(res["equity"], initial_capital=res.get("initial_capital"))
        s = _plot_series(dd, rule, "min") * 100.0
        fig.add_trace(go.Scatter(x=_x(s.index), y=s.to_numpy(), mode="lines", name=str(name), fill="tozeroy"))
    fig.update_layout(title="Drawdown", height=400, xaxis_title="time (UTC)", yaxis_title="drawdown (%)",
                      template="plotly_white")
    return fig


def _table_html(table: pd.DataFrame, float_format: str = "{:.4f}") -> str:
    numeric = all(pd.api.types.is_numeric_dtype(t) for t in table.dtypes)
    return table.to_html(classes="tbl", border=0, escape=True, na_rep="n/a",
                         float_format=float_format.format if numeric else None)


def verdict_html(rep) -> str:
    """The verdict line of a :class:`perpbot.ml.honesty.block.HonestyReport` as an HTML paragraph."""
    from perpbot.ml.honesty.verdict import EDGE_CONFIRMED, NO_EDGE

    v = rep.verdict
    kind = {EDGE_CONFIRMED: "confirmed", NO_EDGE: "none"}.get(v.verdict, "few")
    reasons = f" — {html.escape('; '.join(v.reasons))}" if v.reasons else ""
    return (f'<p class="verdict {kind}">Verdict ({html.escape(rep.strategy)}): '
            f"<b>{html.escape(v.verdict)}</b>{reasons}</p>")


def honesty_html(rep) -> str:
    """HTML section "Statistics against overfitting": every table of
    :func:`perpbot.ml.honesty.render.honesty_tables` (escaped; pass/FAIL cells coloured), then the notes."""
    from perpbot.ml.honesty.render import honesty_tables

    esc = html.escape
    out = ["<h2>Statistics against overfitting</h2>"]
    for t in honesty_tables(rep):
        head = "".join(f"<th>{esc(c)}</th>" for c in t.columns)
        cls = {"pass": ' class="pass"', "FAIL": ' class="fail"'}
        body = "".join("<tr>" + "".join(f"<td{cls.get(v, '')}>{esc(v)}</td>" for v in row) + "</tr>" for row in t.rows)
        out.append(f'<h3>{esc(t.title)}</h3><table class="tbl"><thead><tr>{head}</tr></thead>'
                   f"<tbody>{body}</tbody></table>")
    if rep.notes:
        out.append('<ul class="meta">' + "".join(f"<li>{esc(n)}</li>" for n in rep.notes) + "</ul>")
    return "\n".join(out)


def _check_results(results: dict[str, dict]) -> None:
    if not isinstance(results, dict) or not results:
        raise ValueError("results: expected a non-empty dict of strategy name -> {'equity', 'trades'}")
    for name, res in results.items():
        if not isinstance(res, dict) or not isinstance(res.get("equity"), pd.Series):
            raise ValueError(f"results[{name!r}]: needs an 'equity' pandas Series")
        if not isinstance(res.get("trades"), pd.DataFrame):
            raise ValueError(f"results[{name!r}]: needs a 'trades' DataFrame")


def write_html_report(
    path: str | os.PathLike,
    *,
    candles: pd.DataFrame,
    results: dict[str, dict],
    metrics: pd.DataFrame,
    model_metrics: pd.DataFrame | None = None,
    title: str,
    notes: list[str] | None = None,
    plot_rule: str = "1h",
    honesty=None,
    calibration: dict | None = None,
) -> Path:
    """Write the HTML report to ``path`` (parent dirs created, atomic temp file + os.replace).

    Parameters
    ----------
    candles : OHLC candles (see ``price_figure``), plotted as ``plot_rule`` candles.
    results : strategy name -> ``{"equity": Series (USDT, UTC bar-close index),
        "trades": DataFrame (TRADE_COLUMNS), optional "initial_capital": float}``.
        The FIRST key is the primary strategy whose trades are drawn on the price chart.
    metrics : ``metrics_table`` output (numeric -> formatted with ``format_metrics_table``;
        an already formatted string table is shown as is).
    model_metrics : optional table of model scores (floats shown with 4 dp).
    title : report title; ``notes`` : lines shown under it (HTML-escaped).
    plot_rule : pandas offset alias for downsampling price/equity/drawdown plots.
    honesty : optional :class:`perpbot.ml.honesty.block.HonestyReport`: its verdict line is
        shown under the title and its tables after the metrics.
    calibration : optional model calibration metadata: reliability curves and ECE
        (:mod:`perpbot.backtest.report_calibration`).

    Returns the resolved ``Path``. Raises ``ValueError`` on bad inputs (nothing is written).
    The file embeds plotly.js once (~4.7 MB) and references no CDN.
    """
    _check_results(results)
    if not isinstance(metrics, pd.DataFrame):
        raise ValueError("metrics: expected a DataFrame (rows = metric, columns = strategy)")
    if not title:
        raise ValueError("title: must be a non-empty string")
    primary = next(iter(results))
    frame = _candles_frame(candles)
    numeric = all(pd.api.types.is_numeric_dtype(t) for t in metrics.dtypes)
    shown = format_metrics_table(metrics) if numeric else metrics

    figs = [
        ("price", price_figure(candles, results[primary]["trades"], strategy=str(primary), rule=plot_rule)),
        ("equity", equity_figure(results, rule=plot_rule)),
        ("drawdown", drawdown_figure(results, rule=plot_rule)),
    ]
    config = {"displaylogo": False, "responsive": True}
    divs = [pio.to_html(fig, full_html=False, include_plotlyjs=(i == 0), config=config, div_id=div_id,
                        default_height=f"{fig.layout.height}px")
            for i, (div_id, fig) in enumerate(figs)]

    esc = html.escape
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="meta">Candles opening {frame.index[0]:%Y-%m-%d %H:%M} to {frame.index[-1]:%Y-%m-%d %H:%M} UTC '
        f"({len(frame):,} candles). Primary strategy (trades on the price chart): {esc(str(primary))}.</p>",
    ]
    if honesty is not None:
        parts.append(verdict_html(honesty))
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{esc(str(n))}</li>" for n in notes) + "</ul>")
    parts += ["<h2>Strategy metrics</h2>", _table_html(shown)]
    if model_metrics is not None:
        parts += ["<h2>Model metrics</h2>", _table_html(model_metrics)]
    if honesty is not None:
        parts.append(honesty_html(honesty))
    from perpbot.backtest.report_calibration import calibration_section

    parts += ["<h2>Charts</h2>", *divs, calibration_section(calibration), "</body></html>"]
    text = "\n".join(parts)

    target = Path(path).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
