"""The dashboard's reads under ``/api/v1``: live risk, daily profit, strategy indicator overlays, the log tail.

* ``GET /risk``: drawdown from the peak, daily PnL, effective leverage and risk halts of a run
  *now*: from its recorded equity and, while the bot runs that run, the bot's latest status
  (equity, position), so the figures move with every cycle instead of waiting for the run's
  end-of-run metrics; and the open position's 1-day value-at-risk, expected shortfall and worst
  days replayed (:mod:`perpbot.risk.var`, over the daily closes of the candles up to the bot's
  latest candle).
* ``GET /daily``: profit per UTC day from the equity curve.
* ``GET /indicators``: the lines the run's strategy trades on (EMA 20/50 for ema-cross,
  the 20-bar Donchian channel for donchian), computed with TA-Lib as the strategy does, over
  the same candles as ``GET /candles``.
* ``GET /logs``: the last lines of ``<output_dir>/logs/perpbot.jsonl`` (the JSON log, already
  redacted when written; every line is redacted again and secret-named fields masked here).

Same rules as every route: the token gate, the Origin checks and the body cap of
:func:`perpbot.api.app.create_app`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import talib
from fastapi import HTTPException, Query

from perpbot.ml.outcomes import scorecard
from perpbot.api import dash_models as dm
from perpbot.api.models import clean
from perpbot.data import timeframe_to_ms
from perpbot.logs import MASK, is_secret_name, redact, register_settings_secrets
from perpbot.risk.var import daily_returns, position_from, risk_report
from perpbot.storage.convert import UnknownRunError

#: Risk events that stop a strategy from opening positions (as the report's halt markers).
HALT_EVENTS = ("daily_loss_halt", "max_drawdown_halt")
LOG_NAME = "perpbot.jsonl"
#: Bytes read from the end of the log file at most (enough for 1,000 ordinary lines).
LOG_TAIL_BYTES = 4 * 1024 * 1024
EMA_PERIODS = (20, 50)  # perpbot.strategy.signals.rule_signals: ema_cross_signals(close, 20, 50)
DONCHIAN_PERIOD = 20  # perpbot.strategy.signals.DONCHIAN_PERIOD


def day_key(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The UTC day an equity point closes: a point stamped 00:00 (the close of the day's last
    candle) belongs to the day before."""
    return (index - pd.Timedelta(1, "ns")).floor("D")


def daily_pnl(equity: pd.Series, starting_capital: float) -> pd.DataFrame:
    """Profit per UTC day of an equity curve (USDT, indexed by candle close time).

    Returns columns day (Timestamp), equity (close of the day), pnl (close minus the previous
    day's close; the first day minus ``starting_capital``), ret (pnl / previous close)."""
    if not len(equity):
        return pd.DataFrame(columns=["day", "equity", "pnl", "ret"])
    close = equity.groupby(day_key(equity.index)).last()
    prev = close.shift(1).fillna(float(starting_capital))
    return pd.DataFrame({"day": close.index, "equity": close.to_numpy(), "pnl": (close - prev).to_numpy(),
                         "ret": (close / prev - 1.0).to_numpy()})


def risk_now(equity: pd.Series, starting_capital: float, risk_events: pd.DataFrame | None,
             position: dict | None, mark_price: float | None, max_leverage: float) -> dict[str, Any]:
    """Risk figures at the last point of ``equity`` (see :class:`perpbot.api.dash_models.RiskOut`)."""
    out: dict[str, Any] = {"starting_capital": float(starting_capital), "max_leverage": float(max_leverage),
                           "position_side": 0, "notional": 0.0, "mark_price": mark_price}
    ev = pd.DataFrame(columns=["time", "event", "value"])
    if risk_events is not None and len(risk_events):
        ev = risk_events[risk_events["event"].astype(str).isin(HALT_EVENTS)].sort_values("time", kind="stable")
    out["halts"] = [{"time": pd.Timestamp(t).isoformat(), "event": str(e), "value": v}
                    for t, e, v in zip(ev["time"].tail(50), ev["event"].tail(50), ev["value"].tail(50))]
    out["halt_count"] = int(len(ev))
    if not len(equity):
        return out
    values = equity.to_numpy(np.float64)
    peak = np.maximum(np.maximum.accumulate(values), float(starting_capital))
    dd = values / peak - 1.0
    last_t, last = equity.index[-1], float(values[-1])
    day = day_key(pd.DatetimeIndex([last_t]))[0]
    before = equity[equity.index <= day]
    start = float(before.iloc[-1]) if len(before) else float(starting_capital)
    out.update(time=last_t.isoformat(), equity=last, peak_equity=float(peak[-1]), drawdown=float(dd[-1]),
               max_drawdown=float(dd.min()), total_return=last / float(starting_capital) - 1.0,
               day=day.strftime("%Y-%m-%d"), day_start_equity=start, daily_pnl=last - start,
               daily_return=last / start - 1.0 if start else None)
    if position and position.get("side"):
        price = mark_price if mark_price is not None else position.get("entry_price")
        notional = abs(float(position.get("qty") or 0.0)) * float(price or 0.0)
        out.update(position_side=int(np.sign(position["side"])), notional=notional, mark_price=price)
    out["leverage"] = out["notional"] / last if last > 0 else None
    halted = None
    for t, e in zip(ev["time"], ev["event"]):
        if e == "max_drawdown_halt" or (e == "daily_loss_halt" and pd.Timestamp(t).floor("D") >= day):
            halted = str(e)
    out["halted"] = halted
    return out


def indicator_lines(strategy: str | None, candles: pd.DataFrame) -> list[dict[str, Any]]:
    """Overlay lines of ``strategy`` over ``candles`` (full frame; the caller trims the warm-up).

    ema-cross / meta:ema-cross / ai / scoring: TA-Lib EMA 20 and EMA 50 of the close (the
    ema-cross rule, and the ``ema20_ema50`` feature of the model); donchian / meta:donchian:
    the channel the breakout is measured against, upper = max(high of the previous 20 bars),
    lower = min(low of the previous 20 bars); buy-and-hold: none."""
    name = (strategy or "").removeprefix("meta:")
    if name == "buy-and-hold" or not len(candles):
        return []
    close = candles["close"].to_numpy(np.float64)
    if name == "donchian":
        upper = np.concatenate([[np.nan], talib.MAX(candles["high"].to_numpy(np.float64), DONCHIAN_PERIOD)[:-1]])
        lower = np.concatenate([[np.nan], talib.MIN(candles["low"].to_numpy(np.float64), DONCHIAN_PERIOD)[:-1]])
        return [{"name": f"Donchian upper {DONCHIAN_PERIOD}", "value": upper},
                {"name": f"Donchian lower {DONCHIAN_PERIOD}", "value": lower}]
    return [{"name": f"EMA {p}", "value": talib.EMA(close, timeperiod=p)} for p in EMA_PERIODS]


def tail_lines(path: Path, n: int, max_bytes: int = LOG_TAIL_BYTES) -> tuple[list[str], bool]:
    """The last ``n`` lines of ``path`` (read from the end, at most ``max_bytes``) and whether
    older lines exist."""
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - max_bytes))
        data = fh.read()
    lines = data.decode("utf-8", errors="replace").splitlines()
    if size > max_bytes and lines:
        lines = lines[1:]  # the first line read is probably cut
    lines = [ln for ln in lines if ln.strip()]
    return lines[-n:], len(lines) > n or size > max_bytes


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: MASK if is_secret_name(str(k)) and v not in (None, "") else _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def log_record(line: str) -> dict[str, Any]:
    """One log line as a dict, redacted (:func:`perpbot.logs.redact`) and with secret-named fields masked."""
    text = redact(line)
    try:
        rec = json.loads(text)
    except ValueError:
        return {"text": text}
    return _masked(rec) if isinstance(rec, dict) else {"text": text}


def register_dash_routes(route, ctx, resolve, candles) -> None:
    """Add the dashboard reads with ``route(method, path, **kw)`` (the token-guarded decorator of
    :func:`perpbot.api.routes.register_routes`); ``resolve(run_id) -> int`` (404s), ``candles()``
    the settings' candles (cached)."""
    settings = ctx.settings
    register_settings_secrets(settings)  # the log view redacts this bot's secrets too
    bar = pd.Timedelta(milliseconds=timeframe_to_ms(settings.timeframe))

    def capital(rid: int) -> float:
        return float((ctx.ledger.get_run(rid).get("config") or {}).get("starting_capital",
                                                                        settings.starting_capital))

    def equity_now(rid: int) -> tuple[pd.Series, dict, bool]:
        """The run's recorded equity, plus the bot's status equity while it runs this run."""
        eq = ctx.ledger.equity(rid)
        eq = eq[np.isfinite(eq.to_numpy(np.float64))].astype(np.float64)
        st = ctx.control.status()
        own = st.get("run_id") is not None and int(st["run_id"]) == rid
        if own and st.get("equity") is not None and st.get("last_candle_time"):
            t = pd.Timestamp(st["last_candle_time"]) + bar  # equity is marked at the candle's close
            eq = pd.concat([eq[eq.index < t], pd.Series([float(st["equity"])], index=pd.DatetimeIndex([t]))])
        return eq, st, own

    def seen(st: dict) -> pd.DataFrame:
        """The candles up to the bot's latest one; raises what the candle source raises."""
        c = candles()
        if st.get("last_candle_time") and len(c):
            c = c.iloc[: int(c["timestamp"].searchsorted(pd.Timestamp(st["last_candle_time"]), side="right"))]
        return c

    def mark(st: dict) -> float | None:
        try:
            c = seen(st)
        except Exception:  # a failing candle source: the notional falls back to the entry price
            return None
        return float(c["close"].iloc[-1]) if len(c) else None

    def value_at_risk(pos: dict | None, st: dict, price: float | None) -> tuple[dict | None, str | None]:
        """(risk report, None) of the bot's position, or (None, why) when the candles cannot give it."""
        try:
            if not pos or not pos.get("side"):
                return risk_report([], {}), None
            if price is None:
                raise ValueError("no candles to mark the position")
            return risk_report(position_from(settings.symbol, pos, price),
                               {settings.symbol: daily_returns(seen(st))}), None
        except Exception as exc:  # a short or failing candle source: the rest of the card still shows
            return None, str(exc)

    @route("get", "/risk", response_model=dm.RiskOut, summary="A run's risk now (live while the bot runs it)")
    def get_risk(run_id: int | None = Query(None, ge=1, le=2_147_483_647)):
        rid = resolve(run_id)
        eq, st, own = equity_now(rid)
        pos = st.get("position") if own else None
        price = mark(st) if pos else None
        out = risk_now(eq, capital(rid), ctx.ledger.risk_events(rid), pos, price, settings.leverage)
        card = scorecard(ctx.ledger.predictions(rid), getattr(ctx.bundle, "oos_metrics", None))
        var, why = value_at_risk(pos, st, price)
        return clean({**out, "run_id": rid, "running": bool(own and st.get("running")), "mode": st.get("mode"),
                      "model_live": card if card["n_calls"] else None, "value_at_risk": var,
                      "value_at_risk_error": why})

    @route("get", "/daily", response_model=dm.DailyOut, summary="A run's profit per UTC day")
    def get_daily(run_id: int | None = Query(None, ge=1, le=2_147_483_647)):
        rid = resolve(run_id)
        df = daily_pnl(equity_now(rid)[0], capital(rid))
        days = [{"day": d.strftime("%Y-%m-%d"), "pnl": p, "ret": r, "equity": e}
                for d, p, r, e in zip(df["day"], df["pnl"], df["ret"], df["equity"])]
        return {"run_id": rid, "days": clean(days)}

    @route("get", "/indicators", response_model=dm.IndicatorsOut, summary="The strategy's indicator lines")
    def get_indicators(run_id: int | None = Query(None, ge=1, le=2_147_483_647),
                       limit: int = Query(500, ge=10, le=5000)):
        """Over the candles of ``GET /candles`` with the same ``run_id`` and ``limit``; computed on
        500 more candles before them so the EMAs have settled (TA-Lib seeds them with an SMA)."""
        try:
            rid = ctx.run_id(run_id)
        except UnknownRunError:
            raise HTTPException(404, f"run {run_id} not found") from None
        strategy = ctx.ledger.get_run(rid).get("strategy") if rid is not None else None
        strategy = strategy or ctx.control.status().get("strategy")
        try:
            c = candles()
        except Exception as exc:
            raise HTTPException(503, f"candles unavailable: {exc}") from None
        if rid is not None:
            end = ctx.ledger.get_run(rid).get("data_range_end")
            if end is not None and len(c):
                c = c.iloc[: int(c["timestamp"].searchsorted(pd.Timestamp(end), side="right"))]
        c = c.iloc[-(limit + 500):].reset_index(drop=True)
        shown = c.iloc[-limit:]
        times = [t.isoformat() for t in shown["timestamp"]]
        lines = [{"name": ln["name"], "time": times, "value": clean(list(ln["value"][-len(shown):]))}
                 for ln in indicator_lines(strategy, c)]
        return {"run_id": rid, "strategy": strategy, "lines": lines}

    @route("get", "/logs", response_model=dm.LogsOut, summary="The last lines of the JSON log (secrets masked)")
    def get_logs(lines: int = Query(200, ge=1, le=1000, description="newest lines to return")):
        path = Path(settings.output_dir) / "logs" / LOG_NAME
        shown = f"logs/{LOG_NAME}"
        if not path.is_file():  # not an error: nothing has logged to a file yet
            return {"file": shown, "exists": False, "lines": [], "truncated": False}
        rows, truncated = tail_lines(path, lines)
        return {"file": shown, "exists": True, "lines": [log_record(r) for r in rows], "truncated": truncated}
