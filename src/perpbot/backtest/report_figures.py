"""Plotly figures of the HTML report, decimated for display.

Long series are cut to one point per ``rule`` (pandas offset alias; :func:`auto_rule` picks one
that keeps a series under ~2,000 points): equity = last mark per bin, drawdown = worst mark per
bin (computed at full resolution first, so the troughs survive), candles = OHLC of the bin.
Trade markers and risk-halt markers are never decimated: one marker per trade / halt at its exact
time and price. Times are drawn as tz-naive UTC. Every figure uses the small :data:`TEMPLATE`
(not plotly's default template, which adds ~6 kB of JSON to each figure).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from perpbot.ml.trading_metrics import daily_returns, drawdown_series
from perpbot.backtest.report_tables import halt_events, reason_labels, side_sign

__all__ = ["TEMPLATE", "auto_rule", "calibration_figure", "calls_figure", "drawdown_figure", "equity_figure",
           "importance_figure", "price_figure", "rolling_sharpe_figure"]

TEMPLATE = go.layout.Template(layout=dict(
    font=dict(family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size=12, color="#222"),
    paper_bgcolor="white", plot_bgcolor="white", hovermode="x unified",
    colorway=["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"],
    xaxis=dict(gridcolor="#eee", linecolor="#bbb", zerolinecolor="#ddd"),
    yaxis=dict(gridcolor="#eee", linecolor="#bbb", zerolinecolor="#ccc"),
    margin=dict(l=60, r=20, t=50, b=40), legend=dict(orientation="h", y=-0.15),
))
_EXIT_COLORS = {
    "take_profit": "#2ca02c", "stop_loss": "#d62728", "signal": "#1f77b4",
    "liquidation": "#000000", "end_of_data": "#7f7f7f", "trailing_stop": "#ff7f0e",
}
_HALT_SYMBOL = {"max_drawdown_halt": "octagon", "daily_loss_halt": "diamond"}
_RULES = ("5min", "15min", "30min", "1h", "2h", "4h", "8h", "12h", "1D", "2D", "7D")


def auto_rule(index: pd.DatetimeIndex, max_points: int = 2000) -> str:
    """The finest rule of 5min, 15min, ... 1h, 2h, 4h ... 7D giving at most ``max_points`` bins over ``index``."""
    if len(index) < 2:
        return _RULES[0]
    span = pd.Timestamp(index[-1]) - pd.Timestamp(index[0])
    for rule in _RULES:
        if span / pd.Timedelta(rule) <= max_points:
            return rule
    return _RULES[-1]


def utc_naive(values) -> pd.DatetimeIndex:
    """Timestamps as tz-naive UTC (what plotly.js draws without shifting); naive input is taken as UTC."""
    idx = pd.DatetimeIndex(values)
    return idx.tz_convert("UTC").tz_localize(None) if idx.tz is not None else idx


def xstr(index: pd.DatetimeIndex) -> list[str]:
    """Compact date strings for plotly (about half the bytes of its default ISO format)."""
    return list(index.strftime("%Y-%m-%d %H:%M:%S" if (index.second != 0).any() else "%Y-%m-%d %H:%M"))


def candles_frame(candles: pd.DataFrame) -> pd.DataFrame:
    """open/high/low/close of ``candles`` indexed by tz-naive UTC open times; ``ValueError`` when unusable."""
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
    frame.index = utc_naive(index)
    return frame


def _finer_than(index: pd.DatetimeIndex, rule: str) -> bool:
    return len(index) > 1 and pd.Series(index).diff().median() < pd.Timedelta(rule)


def price_figure(candles: pd.DataFrame, trades: pd.DataFrame, *, strategy: str = "", rule: str = "1h",
                 title: str | None = None) -> go.Figure:
    """Candlestick chart of ``candles`` (resampled to ``rule`` when finer) with every trade's markers.

    ``candles``: open/high/low/close (USDT) with a ``timestamp`` column or DatetimeIndex
    marking candle OPEN times (UTC). ``trades``: ``TRADE_COLUMNS`` rows (uses side,
    entry_time, entry_price, exit_time, exit_price, exit_reason; side numeric +1/-1 or
    "long"/"short"; exit_reason an ``ExitReason`` code or label). Trace names carry the
    marker counts, e.g. ``"long entry (12)"``, ``"exit: stop_loss (4)"``.
    Raises ``ValueError`` on missing columns.
    """
    frame = candles_frame(candles)
    label = "price"
    if _finer_than(frame.index, rule):  # open-time marks: bin [t, t+rule) labelled t
        frame = frame.resample(rule).agg({"open": "first", "high": "max", "low": "min", "close": "last"}).dropna()
        label = f"price ({rule} candles)"
    fig = go.Figure(go.Candlestick(
        x=xstr(frame.index), open=frame["open"], high=frame["high"], low=frame["low"], close=frame["close"],
        name=label, increasing_line_color="#26a69a", decreasing_line_color="#ef5350", showlegend=True,
    ))
    if len(trades):
        need = ["side", "entry_time", "entry_price", "exit_time", "exit_price", "exit_reason"]
        missing = [c for c in need if c not in trades.columns]
        if missing:
            raise ValueError(f"trades: missing columns {missing}")
        sign = side_sign(trades["side"])
        for name, mask, symbol, color in (("long entry", sign > 0, "triangle-up", "#2ca02c"),
                                          ("short entry", sign < 0, "triangle-down", "#d62728")):
            t = trades[mask]
            fig.add_trace(go.Scatter(
                x=xstr(utc_naive(t["entry_time"])), y=t["entry_price"].to_numpy(dtype=np.float64), mode="markers",
                name=f"{name} ({len(t)})", marker=dict(symbol=symbol, size=9, color=color,
                                                       line=dict(width=0.5, color="#222")),
            ))
        closed = trades[trades["exit_time"].notna()]
        reasons = reason_labels(closed["exit_reason"])
        for reason in sorted(reasons.unique()):
            t = closed[reasons == reason]
            fig.add_trace(go.Scatter(
                x=xstr(utc_naive(t["exit_time"])), y=t["exit_price"].to_numpy(dtype=np.float64), mode="markers",
                name=f"exit: {reason} ({len(t)})",
                marker=dict(symbol="x", size=8, color=_EXIT_COLORS.get(reason, "#9467bd")),
            ))
    fig.update_layout(
        title=title or f"Price and trades{' - ' + strategy if strategy else ''}", height=600, template=TEMPLATE,
        xaxis_rangeslider_visible=False, xaxis_title="time (UTC)", xaxis_type="date", yaxis_title="USDT",
        hovermode="closest",
        yaxis_hoverformat=".7~g", legend=dict(orientation="h", y=-0.12),
    )
    return fig


def plot_series(series: pd.Series, rule: str, how: str) -> pd.Series:
    """``series`` (tz-aware bar-close marks) as one value per ``rule`` bin ("last"/"min"/"max"), on a
    regular grid (empty bins carry the previous value); unchanged when already as coarse."""
    s = pd.Series(series.to_numpy(dtype=np.float64), index=utc_naive(series.index))
    if _finer_than(s.index, rule):  # bar-close marks: bin (t-rule, t] labelled t
        s = getattr(s.resample(rule, closed="right", label="right"), how)().ffill()
    return s


def _line(s: pd.Series, name: str, **kw) -> go.Scatter:
    """A line on a regular grid is sent as x0 + dx (ms) instead of one date per point."""
    idx = s.index
    step = idx[1] - idx[0] if len(idx) > 1 else pd.Timedelta(0)
    regular = len(idx) > 2 and bool((idx[1:] - idx[:-1] == step).all())
    xs = dict(x0=xstr(idx[:1])[0], dx=step.total_seconds() * 1000.0) if regular else dict(x=xstr(idx))
    return go.Scatter(**xs, y=s.to_numpy(), mode="lines", name=name, **kw)


def _halt_trace(name: str, halts: pd.DataFrame, y: np.ndarray, color: str | None, **kw) -> go.Scatter:
    labels = halts["event"].astype(str).tolist()
    text = [f"{name}: {e} ({v * 100:.2f}%)" for e, v in zip(labels, halts["value"].to_numpy(np.float64))]
    return go.Scatter(x=xstr(utc_naive(halts["time"])), y=y, mode="markers", name=f"halt: {name} ({len(halts)})",
                      text=text, hoverinfo="text+x",
                      marker=dict(symbol=[_HALT_SYMBOL.get(e, "x") for e in labels], size=13, color=color,
                                  line=dict(width=2, color="#000")), **kw)


def _value_at(series: pd.Series, times) -> np.ndarray:
    """Value of ``series`` (tz-aware marks) at or just after each time in ``times`` (the halt bar's close)."""
    idx = pd.DatetimeIndex(series.index)
    pos = np.clip(idx.searchsorted(pd.DatetimeIndex(pd.to_datetime(times, utc=True)), side="right"), 0, len(idx) - 1)
    return series.to_numpy(np.float64)[pos]


def equity_figure(results: dict[str, dict], *, rule: str = "1h") -> go.Figure:
    """Equity curves (USDT) of all strategies on one chart, the last value per ``rule``; then one
    marker trace per strategy with risk halts (``results[name]["risk_events"]``, see
    :func:`~perpbot.backtest.report_tables.halt_events`) at the halt times."""
    fig = go.Figure()
    colors = TEMPLATE.layout.colorway
    for i, (name, res) in enumerate(results.items()):
        fig.add_trace(_line(plot_series(res["equity"], rule, "last"), str(name), line=dict(color=colors[i % 8])))
    for i, (name, res) in enumerate(results.items()):
        halts = halt_events(res.get("risk_events"))
        if len(halts):
            fig.add_trace(_halt_trace(str(name), halts, _value_at(res["equity"], halts["time"]), colors[i % 8]))
    fig.update_layout(title=f"Equity (last value per {rule}; octagon = max-drawdown halt, diamond = daily-loss halt)",
                      height=450, xaxis_title="time (UTC)", yaxis_title="equity (USDT)", template=TEMPLATE)
    return fig


def drawdown_figure(results: dict[str, dict], *, rule: str = "1h") -> go.Figure:
    """One panel per strategy (own y scale, so a -5 % drawdown is as readable as a -60 % one):
    percent below the running peak, computed at full resolution, the worst value per ``rule``
    drawn. ``results[name]["initial_capital"]`` is the first peak when present. The line traces
    come first (in ``results`` order), then the halt markers."""
    names = list(results)
    dds = {}
    for name in names:
        dd = drawdown_series(results[name]["equity"], initial_capital=results[name].get("initial_capital"))
        dds[name] = dd
    titles = [f"{n}: max drawdown {dds[n].min() * 100:.2f}%" for n in names]
    fig = make_subplots(rows=len(names), cols=1, shared_xaxes=True, vertical_spacing=0.35 / max(len(names), 1),
                        subplot_titles=titles)
    colors = TEMPLATE.layout.colorway
    for i, name in enumerate(names):
        s = plot_series(dds[name], rule, "min") * 100.0
        fig.add_trace(_line(s, str(name), line=dict(color=colors[i % 8], width=1.5), fill="tozeroy",
                            fillcolor="rgba(120,120,120,0.12)"), row=i + 1, col=1)
        fig.update_yaxes(title_text="%", ticksuffix="%", row=i + 1, col=1, rangemode="tozero")
    for i, name in enumerate(names):
        halts = halt_events(results[name].get("risk_events"))
        if len(halts):
            fig.add_trace(_halt_trace(str(name), halts, _value_at(dds[name], halts["time"]) * 100.0, colors[i % 8],
                                      showlegend=False), row=i + 1, col=1)
    fig.update_layout(title=f"Drawdown per strategy (worst value per {rule})", template=TEMPLATE,
                      height=120 + 170 * len(names), showlegend=False, hovermode="x")
    fig.update_xaxes(title_text="time (UTC)", row=len(names), col=1)
    return fig


def rolling_sharpe_figure(results: dict[str, dict], *, window_days: int = 30) -> go.Figure:
    """Rolling Sharpe ratio of each strategy: mean / std (ddof 1) of the last ``window_days`` daily
    returns (:func:`perpbot.ml.trading_metrics.daily_returns`) times sqrt(365), plotted at each UTC
    day end; NaN (a gap) while the window is incomplete or the returns do not vary."""
    fig = go.Figure()
    for name, res in results.items():
        eq = res["equity"]
        cap = res.get("initial_capital") or float(eq.iloc[0])
        r = pd.Series(daily_returns(eq, cap))
        roll = r.rolling(window_days, min_periods=window_days)
        std = roll.std(ddof=1)
        sharpe = (roll.mean() / std.where(std > 0)) * np.sqrt(365.0)
        start = utc_naive(eq.index[:1])[0].floor("D") + pd.Timedelta(days=1)
        s = pd.Series(sharpe.to_numpy(), index=pd.date_range(start, periods=len(sharpe), freq="D"))
        fig.add_trace(_line(s, str(name)))
    fig.add_hline(y=0, line=dict(color="#999", width=1))
    fig.update_layout(title=f"Rolling Sharpe ratio ({window_days}-day window of daily returns, annualised ×√365)",
                      height=380, xaxis_title="day end (UTC)", yaxis_title="Sharpe ratio", template=TEMPLATE)
    return fig


def calibration_figure(table: pd.DataFrame) -> go.Figure:
    """Reliability curve (:func:`perpbot.backtest.report_model.calibration_table`): observed share of
    the label against the mean predicted probability per bin, one line per class, with the diagonal."""
    fig = go.Figure()
    hi = float(max(table["predicted"].max(), table["observed"].max(), 0.01)) * 1.05 if len(table) else 1.0
    fig.add_trace(go.Scatter(x=[0, hi], y=[0, hi], mode="lines", name="perfectly calibrated",
                             line=dict(color="#999", dash="dash")))
    for cls, color in (("up", "#2ca02c"), ("down", "#d62728")):
        t = table[table["class"] == cls]
        fig.add_trace(go.Scatter(x=t["predicted"].to_numpy(), y=t["observed"].to_numpy(), mode="lines+markers",
                                 name=f"p_{cls} vs label {cls}", line=dict(color=color),
                                 text=[f"{c:,} bars" for c in t["count"]], hoverinfo="x+y+text+name"))
    fig.update_layout(title="Calibration (reliability curve, equal-count bins)", height=420, template=TEMPLATE,
                      xaxis_title="mean predicted probability", yaxis_title="observed frequency",
                      hovermode="closest", xaxis_range=[0, hi], yaxis_range=[0, hi])
    return fig


def importance_figure(table: pd.DataFrame, method: str = "") -> go.Figure:
    """Horizontal bars of :func:`perpbot.backtest.report_model.feature_importance` (share, with the
    standard deviation over the fold models as error bars), largest on top."""
    t = table.iloc[::-1]
    fig = go.Figure(go.Bar(x=t["importance"].to_numpy() * 100.0, y=[str(i) for i in t.index], orientation="h",
                           error_x=dict(type="data", array=t["std"].to_numpy() * 100.0, visible=True),
                           marker_color="#1f77b4", name="importance"))
    fig.update_layout(title=f"Feature importance (top {len(t)})", height=140 + 22 * len(t), template=TEMPLATE,
                      xaxis_title=f"% of total ({method})" if method else "% of total", hovermode="closest",
                      margin=dict(l=200))
    return fig


def calls_figure(table: pd.DataFrame) -> go.Figure:
    """Grouped bars per month of :func:`perpbot.backtest.report_model.calls_per_month`."""
    fig = go.Figure()
    for col, name, color in (("long_calls", "long calls (bars)", "#2ca02c"),
                             ("short_calls", "short calls (bars)", "#d62728"),
                             ("trades", "positions opened", "#1f77b4")):
        fig.add_trace(go.Bar(x=list(table.index), y=table[col].to_numpy(), name=name, marker_color=color))
    fig.update_layout(title="Model calls per month", height=380, barmode="group", template=TEMPLATE,
                      xaxis_title="month (UTC)", yaxis_title="count", xaxis_type="category")
    return fig
