"""The REST endpoints under ``/api/v1``: read the bot and its ledger, control the bot, queue backtests.

Every route is a plain (sync) function, so FastAPI runs it in its thread pool and database
reads never block the event loop (the WebSocket keeps streaming). Run-scoped endpoints take
``run_id`` (default: the bot's own run, else the latest run in the ledger); an unknown run
is 404 ``{"detail": "run 99 not found"}``, an empty ledger 404 with what to do about it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fastapi import Body, Depends, FastAPI, HTTPException, Path as PathParam, Query
from fastapi.responses import FileResponse

from perpbot.api import models as m
from perpbot.api.dash_routes import register_dash_routes
from perpbot.api.jobs import BacktestJobs, QueueFull
from perpbot.api.models import clean
from perpbot.storage.convert import UnknownRunError

PREFIX = "/api/v1"
#: run ids are 32-bit on PostgreSQL; larger values cannot exist.
MAX_RUN_ID = 2_147_483_647
NO_RUNS = ("no runs in the ledger yet: run a backtest (POST /api/v1/backtests, or perpbot backtest) "
           "or the bot (perpbot run / perpbot serve --replay FILE) first")

RunIdQuery = Query(None, ge=1, le=MAX_RUN_ID, description="ledger run id (default: the bot's run, else the latest)")


def downsample_index(n: int, max_points: int, keep: tuple[int, ...] = ()) -> np.ndarray:
    """Sorted positions of at most ``max_points`` (>= 3) of ``n`` points: evenly spaced, the first
    and the last always kept, and the positions in ``keep`` (e.g. the deepest drawdown) too."""
    if n <= max_points:
        return np.arange(n)
    extra = sorted({n - 1, *(int(k) for k in keep if 0 <= k < n)})
    base = np.linspace(0, n - 1, max_points - len(extra)).round().astype(np.int64)
    return np.unique(np.concatenate([base, np.asarray(extra, dtype=np.int64)]))


def drawdown(equity: np.ndarray, starting_capital: float | None) -> np.ndarray:
    """``equity / running peak - 1`` (fraction <= 0); the starting capital is the first peak, as in
    :func:`perpbot.ml.trading_metrics.drawdown_series` (so its minimum is the metrics' max_drawdown)."""
    peak = np.maximum.accumulate(equity)
    if starting_capital is not None:
        peak = np.maximum(peak, float(starting_capital))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(peak > 0, equity / peak - 1.0, np.nan)


def status_payload(ctx) -> dict[str, Any]:
    """``ctx.status()`` with ``run_id`` = the bot's run, else the latest run in the ledger (JSON-safe)."""
    st = ctx.status()
    if st.get("run_id") is None:
        st["run_id"] = ctx.run_id()
    return clean(st)


class CandleCache:
    """``ctx.candles()``, re-read only when the candles file changes (a live source: every call)."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._frame: pd.DataFrame | None = None

    def get(self) -> pd.DataFrame:
        if self.ctx.candles_source is not None:
            return self.ctx.candles()
        path = Path(self.ctx.settings.candles_file)
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size)
        with self._lock:
            if key == self._key and self._frame is not None:
                return self._frame
        frame = self.ctx.candles()
        with self._lock:
            self._key, self._frame = key, frame
        return frame


def register_routes(app: FastAPI, ctx, jobs: BacktestJobs, auth) -> None:
    """Add the ``/api/v1`` HTTP routes over ``ctx`` (a :class:`perpbot.bot.context.BotContext`) to
    ``app`` (directly, so ``app.routes`` lists every route), each guarded by the ``auth`` dependency."""
    unauthorized = {401: {"model": m.ErrorOut, "description": "missing or invalid API token"}}

    def route(method: str, path: str, *, responses: dict | None = None, **kwargs):
        return getattr(app, method)(PREFIX + path, dependencies=[Depends(auth)],
                                    responses={**unauthorized, **(responses or {})}, **kwargs)

    candles_cache = CandleCache(ctx)
    not_found = {404: {"model": m.ErrorOut, "description": "unknown run, or no run in the ledger"}}

    def resolve(run_id: int | None) -> int:
        try:
            rid = ctx.run_id(run_id)
        except UnknownRunError:
            raise HTTPException(404, f"run {run_id} not found") from None
        if rid is None:
            raise HTTPException(404, NO_RUNS)
        return int(rid)

    def status() -> dict[str, Any]:
        return status_payload(ctx)

    # ------------------------------------------------------------------ bot state
    @route("get", "/status", response_model=m.StatusOut, summary="Bot status")
    def get_status():
        return status()

    @route("get", "/balance", response_model=m.BalanceOut, summary="Equity and PnL (USDT)")
    def get_balance():
        return clean(ctx.balance())

    @route("get", "/positions", response_model=m.PositionsOut, summary="Open positions")
    def get_positions():
        return {"positions": clean(ctx.positions())}

    @route("get", "/config", response_model=dict[str, Any], summary="Settings (secrets never included)")
    def get_config():
        """The settings, with ``mode`` = the mode the bot runs in (its control's: ``paper`` during
        ``perpbot serve --replay``) rather than the settings' default."""
        cfg = ctx.settings.public_dict()
        mode = ctx.control.status().get("mode")
        if mode:
            cfg["mode"] = mode
        return clean(cfg)

    # ------------------------------------------------------------------ ledger
    @route("get", "/orders", response_model=m.OrdersOut, responses=not_found, summary="A run's orders")
    def get_orders(run_id: int | None = RunIdQuery, limit: int = Query(100, ge=1, le=1000)):
        rid = resolve(run_id)
        df = ctx.ledger.orders(rid).tail(limit)
        cols = ["client_order_id", "time", "side", "type", "qty", "price", "status", "reason", "trade_no"]
        return {"run_id": rid, "orders": clean(df[cols].to_dict("records"))}

    @route("get", "/trades", response_model=m.TradesOut, responses=not_found, summary="A run's closed trades")
    def get_trades(run_id: int | None = RunIdQuery, limit: int = Query(100, ge=1, le=1000)):
        rid = resolve(run_id)
        df = ctx.ledger.trades(rid).tail(limit)
        cols = ["trade_id", "qty", "entry_time", "entry_price", "exit_time", "exit_price", "exit_reason", "pnl",
                "fees", "funding"]
        rows = clean(df[cols].to_dict("records"))
        for row, side in zip(rows, df["side"].to_numpy()):
            row["side"] = "long" if side > 0 else "short"
        return {"run_id": rid, "trades": rows}

    @route("get", "/signals", response_model=m.SignalsOut, responses=not_found, summary="A run's model calls")
    def get_signals(run_id: int | None = RunIdQuery, limit: int = Query(100, ge=1, le=1000)):
        rid = resolve(run_id)
        df = ctx.ledger.predictions(rid).tail(limit)
        cols = ["time", "p_down", "p_flat", "p_up", "confidence", "signal", "decision", "model_version"]
        return {"run_id": rid, "signals": clean(df.reindex(columns=cols).to_dict("records"))}

    @route("get", "/equity", response_model=m.EquityOut, responses=not_found, summary="A run's equity and drawdown")
    def get_equity(run_id: int | None = RunIdQuery, max_points: int = Query(1000, ge=10, le=5000)):
        """Equity (USDT) and drawdown (fraction <= 0) evenly downsampled to ``max_points``; the
        first point, the last point and the deepest drawdown are always included."""
        rid = resolve(run_id)
        eq = ctx.ledger.equity(rid)
        eq = eq[np.isfinite(eq.to_numpy(np.float64))]
        if not len(eq):
            return {"run_id": rid, "points": []}
        cap = (ctx.ledger.get_run(rid).get("config") or {}).get("starting_capital", ctx.settings.starting_capital)
        values = eq.to_numpy(np.float64)
        dd = drawdown(values, cap)
        trough = (int(np.nanargmin(dd)),) if np.isfinite(dd).any() else ()
        idx = downsample_index(len(values), max_points, trough)
        times = eq.index[idx]
        points = [{"time": t.isoformat(), "equity": float(values[i]), "drawdown": float(dd[i])}
                  for t, i in zip(times, idx) if np.isfinite(dd[i])]
        return {"run_id": rid, "points": points}

    @route("get", "/metrics", response_model=m.MetricsOut, responses=not_found, summary="A run's metrics")
    def get_metrics(run_id: int | None = RunIdQuery):
        rid = resolve(run_id)
        run = ctx.ledger.get_run(rid)
        info = {k: run.get(k) for k in m.RunInfo.model_fields}
        return {"run_id": rid, "metrics": clean(run.get("metrics") or {}), "run": clean(info)}

    @route("get", "/candles", response_model=m.CandlesOut, responses=not_found, summary="Latest candles")
    def get_candles(run_id: int | None = RunIdQuery, limit: int = Query(500, ge=10, le=5000)):
        """The last ``limit`` candles, ending at the run's last candle when the run has a data range."""
        rid = None
        try:
            rid = ctx.run_id(run_id)
        except UnknownRunError:
            raise HTTPException(404, f"run {run_id} not found") from None
        try:
            c = candles_cache.get()
        except Exception as exc:  # missing / invalid candles file or a failing live source
            raise HTTPException(503, f"candles unavailable: {exc}") from None
        if rid is not None:
            end = ctx.ledger.get_run(rid).get("data_range_end")
            if end is not None and len(c):
                c = c.iloc[: int(c["timestamp"].searchsorted(pd.Timestamp(end), side="right"))]
        c = c.iloc[-limit:]
        rows = clean(c[["timestamp", "open", "high", "low", "close", "volume"]].rename(
            columns={"timestamp": "time"}).to_dict("records"))
        return {"symbol": ctx.settings.symbol, "timeframe": ctx.settings.timeframe, "run_id": rid, "candles": rows}

    # ------------------------------------------------------------------ control
    @route("post", "/pause", response_model=m.ControlOut, summary="Pause: no new positions (stops stay active)")
    def pause():
        ctx.control.pause(by="api")
        return {"ok": True, "status": status()}

    @route("post", "/resume", response_model=m.ControlOut, summary="Resume opening positions")
    def resume():
        ctx.control.resume(by="api")
        return {"ok": True, "status": status()}

    @route("post", "/force-exit", response_model=m.ControlOut, summary="Close the open position at the next cycle")
    def force_exit():
        ctx.control.request_force_exit(by="api")
        return {"ok": True, "status": status()}

    # ------------------------------------------------------------------ backtests
    JobId = PathParam(..., min_length=1, max_length=64, description="from POST /api/v1/backtests")
    job_not_found = {404: {"model": m.ErrorOut, "description": "unknown job (or, for the report, not finished)"}}

    @route("post", "/backtests", status_code=202, response_model=m.JobCreatedOut, summary="Queue a backtest",
                 responses={429: {"model": m.ErrorOut, "description": "too many backtests queued"}})
    def post_backtest(body: m.BacktestIn = Body(...)):
        try:
            job = jobs.submit(body.strategy, body.last_bars)
        except QueueFull as exc:
            raise HTTPException(429, str(exc)) from None
        return {"job_id": job.job_id, "status": job.status}

    @route("get", "/backtests/{job_id}", response_model=m.JobOut, responses=job_not_found, summary="A backtest job")
    def get_backtest(job_id: str = JobId):
        job = jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"backtest job {job_id} not found")
        return job

    @route("get", "/backtests/{job_id}/report", response_class=FileResponse, responses=job_not_found,
                summary="A finished backtest's HTML report")
    def get_backtest_report(job_id: str = JobId):
        state, path = jobs.report(job_id)
        if state is None:
            raise HTTPException(404, f"backtest job {job_id} not found")
        if state == "failed":
            raise HTTPException(404, f"backtest job {job_id} failed, so it has no report (see its error)")
        if path is None:
            raise HTTPException(404, f"backtest job {job_id} is {state}: its report exists once it has finished")
        if not path.exists():
            raise HTTPException(404, f"the report of backtest job {job_id} was removed from {path.parent}")
        return FileResponse(path, media_type="text/html")

    register_dash_routes(route, ctx, resolve, candles_cache.get)
