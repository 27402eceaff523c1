"""Tables of the HTML report: monthly returns, long/short and exit-reason breakdowns, risk halts,
the compact trade-list payload, and their HTML.

Every function takes the backtester's frames (:data:`perpbot.types.TRADE_COLUMNS` trades, an
equity Series in USDT indexed by tz-aware UTC bar CLOSE times, the risk-events frame
``time, bar, event, value``) and returns plain pandas objects, so the report and the tests
compute the same numbers. Fractions, not percent (``0.05`` = +5 %); amounts in USDT.
"""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

from perpbot.types import ExitReason, RiskEvent

__all__ = ["HALT_EVENTS", "exit_reason_breakdown", "halt_events", "html_table", "monthly_returns",
           "monthly_returns_html", "side_breakdown", "side_sign", "reason_labels", "trade_list_payload"]

#: Risk events that stop a strategy from opening positions (the halt markers of the report).
HALT_EVENTS = (RiskEvent.MAX_DRAWDOWN_HALT.label, RiskEvent.DAILY_LOSS_HALT.label)

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def side_sign(side: pd.Series) -> np.ndarray:
    """+1 long / -1 short / 0 unknown per trade; ``side`` numeric (+1/-1) or "long"/"short"/"buy"/"sell"."""
    if pd.api.types.is_numeric_dtype(side):
        return np.sign(side.to_numpy(dtype=np.float64))
    text = side.astype(str).str.lower()
    return np.where(text.isin(["long", "buy", "1"]), 1.0, np.where(text.isin(["short", "sell", "-1"]), -1.0, 0.0))


def reason_labels(reason: pd.Series) -> pd.Series:
    """Exit reasons as labels ("stop_loss" ...) from :class:`ExitReason` codes, enums or labels."""
    def one(r) -> str:
        if isinstance(r, (int, np.integer)) or (isinstance(r, float) and r.is_integer()):
            try:
                return ExitReason(int(r)).label
            except ValueError:
                return f"code {int(r)}"
        return str(getattr(r, "label", r))
    return reason.map(one)


def monthly_returns(equity: pd.Series, initial_capital: float | None = None) -> pd.DataFrame:
    """Calendar-month returns (UTC) of ``equity``: rows = year, columns Jan..Dec and "year".

    A month's value is its last equity mark; marks are bar CLOSES, so a mark at exactly 00:00 on
    the 1st closes the previous month. Month return = value / previous month's value - 1; the
    first month starts from ``initial_capital`` (default: the first mark). "year" compounds the
    months shown in that row. Months without data are NaN; the first and last months may be
    partial. Raises ``ValueError`` on an empty series or a naive index.
    """
    if not isinstance(equity, pd.Series) or equity.empty:
        raise ValueError("equity: expected a non-empty Series")
    idx = pd.DatetimeIndex(equity.index)
    if idx.tz is None:
        raise ValueError("equity: index must be tz-aware (UTC)")
    utc = idx.tz_convert("UTC")
    months = (utc - pd.Timedelta(1, "ns")).tz_localize(None).to_period("M")
    last = pd.Series(equity.to_numpy(dtype=np.float64), index=months).groupby(level=0).last()
    start = float(initial_capital) if initial_capital is not None else float(equity.iloc[0])
    values = np.concatenate(([start], last.to_numpy()))
    rets = pd.Series(values[1:] / values[:-1] - 1.0, index=last.index)
    table = pd.DataFrame(np.nan, index=sorted({p.year for p in rets.index}), columns=[*_MONTHS, "year"])
    for period, r in rets.items():
        table.loc[period.year, _MONTHS[period.month - 1]] = r
    for year in table.index:
        row = table.loc[year, list(_MONTHS)].dropna()
        table.loc[year, "year"] = float(np.prod(1.0 + row.to_numpy()) - 1.0) if len(row) else np.nan
    table.index.name = "year"
    return table


def _group_stats(pnl: np.ndarray, notional: np.ndarray, fees: np.ndarray, funding: np.ndarray) -> dict:
    n = pnl.size
    if n == 0:
        return {"trades": 0, "win_rate": np.nan, "net_pnl": 0.0, "avg_pnl": np.nan, "avg_return": np.nan,
                "profit_factor": np.nan, "fees": 0.0, "funding": 0.0}
    wins, losses = pnl[pnl > 0].sum(), -pnl[pnl < 0].sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = np.where(notional > 0, pnl / notional, np.nan)
    return {"trades": n, "win_rate": float(np.mean(pnl > 0)), "net_pnl": float(pnl.sum()),
            "avg_pnl": float(pnl.mean()), "avg_return": float(np.nanmean(ret)) if np.isfinite(ret).any() else np.nan,
            "profit_factor": float(wins / losses) if losses > 0 else (math.inf if wins > 0 else np.nan),
            "fees": float(fees.sum()), "funding": float(funding.sum())}


def _arrays(trades: pd.DataFrame):
    def f(c):
        return trades[c].to_numpy(dtype=np.float64) if c in trades else np.zeros(len(trades))

    notional = np.abs(f("qty") * f("entry_price"))
    return f("pnl"), notional, f("fees"), f("funding")


def side_breakdown(trades: pd.DataFrame) -> pd.DataFrame:
    """Long vs short: rows "long", "short", "all"; columns trades, win_rate (share of pnl > 0),
    net_pnl / avg_pnl (USDT, net of fees and funding), avg_return (pnl / entry notional),
    profit_factor (gross wins / gross losses; inf without a loss), fees, funding (USDT, > 0 paid)."""
    pnl, notional, fees, funding = _arrays(trades)
    sign = side_sign(trades["side"]) if len(trades) else np.zeros(0)
    rows = {}
    for label, mask in (("long", sign > 0), ("short", sign < 0), ("all", np.ones(len(trades), bool))):
        rows[label] = _group_stats(pnl[mask], notional[mask], fees[mask], funding[mask])
    return pd.DataFrame.from_dict(rows, orient="index")


def exit_reason_breakdown(trades: pd.DataFrame) -> pd.DataFrame:
    """Rows = exit reason (most frequent first); columns trades, share (of all trades), win_rate,
    net_pnl, avg_pnl (USDT), avg_return. Empty frame (same columns) without trades."""
    cols = ["trades", "share", "win_rate", "net_pnl", "avg_pnl", "avg_return"]
    if len(trades) == 0:
        return pd.DataFrame(columns=cols)
    pnl, notional, fees, funding = _arrays(trades)
    labels = reason_labels(trades["exit_reason"]).to_numpy()
    rows = {}
    for reason in pd.unique(labels):
        m = labels == reason
        s = _group_stats(pnl[m], notional[m], fees[m], funding[m])
        rows[reason] = {"trades": s["trades"], "share": s["trades"] / len(trades), "win_rate": s["win_rate"],
                        "net_pnl": s["net_pnl"], "avg_pnl": s["avg_pnl"], "avg_return": s["avg_return"]}
    out = pd.DataFrame.from_dict(rows, orient="index")[cols]
    return out.sort_values("trades", ascending=False, kind="stable")


def halt_events(risk_events: pd.DataFrame | None) -> pd.DataFrame:
    """The rows of ``risk_events`` that started a halt (:data:`HALT_EVENTS`), in time order:
    columns time (UTC, the bar whose close breached the limit), bar, event, value (the equity
    change that breached it, a negative fraction)."""
    cols = ["time", "bar", "event", "value"]
    if risk_events is None or len(risk_events) == 0:
        return pd.DataFrame(columns=cols)
    ev = risk_events[risk_events["event"].astype(str).isin(HALT_EVENTS)]
    return ev[cols].sort_values("time", kind="stable").reset_index(drop=True)


def trade_list_payload(trades: pd.DataFrame) -> dict:
    """The trade list as compact columns for the page's sortable table (JSON-able).

    Keys: ``id``, ``side`` (+1/-1), ``qty`` (base asset), ``entry_ms`` / ``exit_ms`` (UTC ms; None
    for an open trade), ``entry_price`` / ``exit_price`` (USDT), ``reason`` (labels),
    ``pnl`` / ``fees`` / ``funding`` (USDT, rounded to 1e-6), ``ret`` (pnl / entry notional,
    rounded to 1e-6), ``sl`` / ``tp`` (stop-loss / take-profit price, USDT; None when not set).
    One entry per trade, in the frame's order.
    """
    if len(trades) == 0:
        return {k: [] for k in ("id", "side", "qty", "entry_ms", "exit_ms", "entry_price", "exit_price",
                                "reason", "pnl", "fees", "funding", "ret", "sl", "tp")}
    pnl, notional, fees, funding = _arrays(trades)

    def ms(col):
        t = pd.to_datetime(trades[col], utc=True)
        return [None if pd.isna(v) else int(v.value // 1_000_000) for v in t]

    def num(a, dp):
        return [None if not np.isfinite(v) else round(float(v), dp) for v in a]

    def level(col):
        if col not in trades:
            return [None] * len(trades)
        v = trades[col].to_numpy(np.float64)
        return num(np.where(v > 0, v, np.nan), 8)

    with np.errstate(divide="ignore", invalid="ignore"):
        ret = np.where(notional > 0, pnl / notional, np.nan)
    ids = trades["trade_id"] if "trade_id" in trades else pd.Series(np.arange(1, len(trades) + 1))
    return {
        "id": [int(v) for v in ids], "side": [int(v) for v in side_sign(trades["side"])],
        "qty": num(trades["qty"].to_numpy(np.float64), 8), "entry_ms": ms("entry_time"), "exit_ms": ms("exit_time"),
        "entry_price": num(trades["entry_price"].to_numpy(np.float64), 8),
        "exit_price": num(trades["exit_price"].to_numpy(np.float64), 8),
        "reason": list(reason_labels(trades["exit_reason"])), "pnl": num(pnl, 6), "fees": num(fees, 6),
        "funding": num(funding, 6), "ret": num(ret, 6), "sl": level("stop_loss"), "tp": level("take_profit"),
    }


# ------------------------------------------------------------------------------------ HTML
def _fmt(v, kind: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, (float, np.floating)) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if kind == "pct":
        return f"{float(v) * 100:.2f}%"
    if kind == "usdt":
        return f"{float(v):,.2f}"
    if kind == "int":
        return f"{int(v):,}"
    if kind == "num":
        return f"{float(v):.2f}"
    if kind.startswith("dp"):
        return f"{float(v):.{int(kind[2:])}f}"
    return html.escape(str(v))


def html_table(df: pd.DataFrame, formats: dict[str, str] | None = None, *, index_label: str = "",
               cls: str = "tbl") -> str:
    """``df`` as an escaped HTML table; ``formats`` maps column -> "pct" | "usdt" | "int" | "num" |
    "dpN" | "text" (default "text"); NaN shows as "n/a"."""
    formats = formats or {}
    esc = html.escape
    head = f"<th>{esc(index_label)}</th>" + "".join(f"<th>{esc(str(c))}</th>" for c in df.columns)
    body = []
    for idx, row in df.iterrows():
        cells = "".join(f"<td>{_fmt(row[c], formats.get(c, 'text'))}</td>" for c in df.columns)
        body.append(f"<tr><td>{esc(str(idx))}</td>{cells}</tr>")
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _heat(v: float, scale: float) -> str:
    """Background colour of a return cell: green for gains, red for losses, stronger with size."""
    if not np.isfinite(v) or scale <= 0:
        return ""
    a = min(abs(v) / scale, 1.0) * 0.75 + 0.08
    rgb = "26,127,55" if v >= 0 else "198,40,40"
    return f' style="background:rgba({rgb},{a:.2f})"'


def monthly_returns_html(table: pd.DataFrame) -> str:
    """:func:`monthly_returns` as a heat-map table (percent with 1 dp, cell colour by sign and size;
    the colour scale is the largest absolute month return)."""
    months = [c for c in table.columns if c != "year"]
    vals = table[months].to_numpy(dtype=np.float64)
    scale = float(np.nanmax(np.abs(vals))) if np.isfinite(vals).any() else 0.0
    head = "<th>year</th>" + "".join(f"<th>{c}</th>" for c in table.columns)
    rows = []
    for year, row in table.iterrows():
        cells = []
        for c in table.columns:
            v = float(row[c])
            text = "" if not np.isfinite(v) else f"{v * 100:.1f}%"
            cls = ' class="yr"' if c == "year" else ""
            cells.append(f"<td{cls}{_heat(v, scale) if c != 'year' else ''}>{text}</td>")
        rows.append(f"<tr><td>{year}</td>{''.join(cells)}</tr>")
    return f'<table class="tbl heat"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
