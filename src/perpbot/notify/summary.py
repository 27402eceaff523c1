"""Daily summary of a trading day (UTC): trades closed that day, PnL, win rate, intraday drawdown.

:class:`DayBook` follows the event stream (``exit`` and ``cycle`` events) so a running bot's
summary needs no database; :func:`daily_summary` combines it with the ledger (trades with their
fees from the bot's run, or a given run) so it also works after the fact over a backtest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


def parse_day(day: Any) -> str:
    """A UTC calendar day as ``YYYY-MM-DD`` (from text, date, datetime or Timestamp).

    Raises:
        ValueError: ``day`` is not a date.
    """
    try:
        ts = pd.Timestamp(day)
    except (TypeError, ValueError):
        raise ValueError(f"day {day!r} is not a date (expected YYYY-MM-DD)") from None
    if ts is pd.NaT:
        raise ValueError(f"day {day!r} is not a date (expected YYYY-MM-DD)")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC")
    return f"{ts:%Y-%m-%d}"


def _utc_day(iso: Any) -> str:
    s = str(iso)
    if len(s) >= 10 and (s.endswith("+00:00") or s.endswith("Z")):
        return s[:10]
    return parse_day(s)


def max_drawdown(equity: np.ndarray, start: float | None = None) -> float:
    """Largest fall below the running peak, as a fraction <= 0 (``equity / peak - 1``).

    ``start`` (the previous day's closing equity) seeds the running peak; 0.0 for no data.
    """
    eq = np.asarray(equity, dtype=np.float64)
    if start is not None and np.isfinite(start):
        eq = np.concatenate([[start], eq])
    if eq.size == 0:
        return 0.0
    peak = np.maximum.accumulate(eq)
    return float(min(0.0, np.min(eq / peak - 1.0)))


@dataclass
class _Day:
    start_equity: float | None = None
    equity: list[float] = field(default_factory=list)
    exits: list[dict] = field(default_factory=list)


class DayBook:
    """Per-UTC-day exits and equity tracked from the event stream (candle time decides the day).

    An ``exit`` event is published just before the ``cycle`` event of the candle it happened
    in, so exits are held until that cycle names their day.
    """

    def __init__(self, keep_days: int = 8) -> None:
        self.days: dict[str, _Day] = {}
        self.current: str | None = None
        self._pending: list[dict] = []
        self._keep = keep_days

    def on_exit(self, data: dict) -> None:
        self._pending.append(dict(data))

    def on_cycle(self, data: dict) -> str | None:
        """Record one cycle; returns the day that just finished when this cycle starts a new day."""
        day = _utc_day(data.get("candle_time"))
        finished = None
        if day != self.current:
            prev = self.days.get(self.current) if self.current else None
            finished = self.current
            self.days.setdefault(day, _Day(start_equity=prev.equity[-1] if prev and prev.equity else None))
            self.current = day
            for old in sorted(self.days)[:-self._keep]:
                del self.days[old]
        d = self.days[day]
        d.exits.extend(self._pending)
        self._pending.clear()
        eq = data.get("equity")
        if eq is not None and np.isfinite(eq):
            d.equity.append(float(eq))
        return finished


def daily_summary(ctx: Any, day: Any, book: DayBook | None = None, run_id: int | None = None) -> dict[str, Any]:
    """Summary of one UTC day: {day, trades, wins, win_rate (fraction or None), pnl, fees (USDT,
    None when unknown), max_drawdown (fraction <= 0, below the running peak seeded with the
    previous day's close), equity (USDT at the day's last candle close), trade_list, model_live
    (the run's :func:`perpbot.ml.outcomes.scorecard` when it recorded calls, else None)}.

    Trades are those whose exit time falls in the day: from the ledger run (the bot's own run,
    else ``run_id`` / the latest run), or from the tracked exit events when the bot records no
    run. Equity comes from the tracked ``cycle`` events when the day was seen, else from the
    run's equity curve (indexed by candle close time).

    Raises:
        ValueError: ``day`` is not a date. UnknownRunError: unknown ``run_id``.
    """
    day = parse_day(day)
    tracked = book.days.get(day) if book is not None else None
    own_run = ctx.control.status().get("run_id")
    rid = None
    if tracked is None or own_run is not None or run_id is not None:
        rid = ctx.run_id(run_id)
    start, end = pd.Timestamp(day, tz="UTC"), pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)
    if rid is not None:
        t = ctx.ledger.trades(rid)
        t = t[(t["exit_time"] >= start) & (t["exit_time"] < end)]
        items = [{"trade_id": int(r.trade_id), "side": "long" if r.side > 0 else "short",
                  "pnl": float(r.pnl), "fees": float(r.fees), "reason": str(r.exit_reason)}
                 for r in t.itertuples()]
    else:
        items = [{"trade_id": int(x.get("trade_id", 0)), "side": x.get("side"), "pnl": float(x["pnl"]),
                  "fees": None, "reason": str(x.get("reason"))} for x in (tracked.exits if tracked else [])]
    if tracked is not None and tracked.equity:
        eq_start, eq = tracked.start_equity, np.asarray(tracked.equity)
    elif rid is not None:
        curve = ctx.ledger.equity(rid)
        eq = curve[(curve.index > start) & (curve.index <= end)].to_numpy(np.float64)
        before = curve[curve.index <= start]
        eq_start = float(before.iloc[-1]) if len(before) else None
    else:
        eq, eq_start = np.array([]), None
    n = len(items)
    wins = sum(1 for x in items if x["pnl"] > 0)
    fees = None if rid is None else float(sum(x["fees"] for x in items))  # events carry no fees
    model_live = None
    if rid is not None:  # the run's recorded calls so far against what the market did (issue 9, item 7)
        from perpbot.ml.outcomes import scorecard

        card = scorecard(ctx.ledger.predictions(rid), getattr(getattr(ctx, "bundle", None), "oos_metrics", None))
        model_live = card if card["n_calls"] else None
    unproven = None
    if rid is not None:  # a live run started with --accept-unproven-model says so every day
        cfg = (ctx.ledger.get_run(rid) or {}).get("config")
        unproven = cfg.get("unproven_model_accepted") if isinstance(cfg, dict) else None
    return {"day": day, "trades": n, "wins": wins, "win_rate": wins / n if n else None, "unproven_model": unproven,
            "pnl": float(sum(x["pnl"] for x in items)), "fees": fees,
            "max_drawdown": max_drawdown(eq, eq_start), "equity": float(eq[-1]) if len(eq) else None,
            "run_id": rid, "trade_list": items[-20:], "model_live": model_live}
