"""Command-line entry points of live trading: ``perpbot run --mode live`` and ``perpbot status``.

* :func:`run_live` (:mod:`perpbot.cli.live_node`; called by ``perpbot run --mode live``; also the
  Typer command :func:`live_run`): demo trading by default; one symbol, or several on one account.
* :func:`status` (``perpbot status``): the run's position, open orders, equity, last signal and
  health (age of the last cycle, reconciliation state, latency p50/p99) from the ledger and,
  unless ``--no-exchange``, the venue (read-only); the position's 1-day VaR / expected shortfall
  and worst days replayed (:mod:`perpbot.cli.status_risk`).

Register with ``app.command("status")(status)`` and ``app.command("live")(live_run)``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from perpbot.cli.live_node import run_live  # noqa: F401  (re-exported: perpbot.cli.live.run_live)
from perpbot.logs import get_logger

log = get_logger("perpbot.live")
console = Console()
err_console = Console(stderr=True)


def live_run(config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML settings file"),
             strategy: str = typer.Option("ai", help="ai | meta:ema-cross | meta:donchian | meta:scoring | ema-cross | "
                                                     "donchian | scoring"),
             model_path: Optional[Path] = typer.Option(None, "--model-path", help="saved model (default from settings)"),
             real_money: bool = typer.Option(False, "--real-money",
                                             help="trade the REAL account (also needs PERPBOT_CONFIRM_REAL_MONEY=yes)"),
             new_run: bool = typer.Option(False, "--new-run", help="do not resume an unfinished live run"),
             accept_unproven_model: bool = typer.Option(False, "--accept-unproven-model",
                                                        help="real money: trade a model whose saved verdict is not "
                                                             "'edge confirmed' (logged and shown)")) -> None:
    """Trade live on every candle close (Bitget demo trading unless --real-money)."""
    from perpbot.cli.common import handled, settings_for

    with handled():
        s = settings_for(config, mode="live")
        run_live(s, real_money=real_money, strategy=strategy, model_path=model_path, resume=not new_run,
                 accept_unproven_model=accept_unproven_model)


# ------------------------------------------------------------------------------------------ status
def _run_mode(run) -> str | None:
    """"demo" / "real" of a live run: its recorded account, else (older runs) its banner note."""
    config = run.get("config") if isinstance(run.get("config"), dict) else {}
    mode = (config.get("live_account") or {}).get("trading_mode")
    return mode or {"DEMO": "demo", "REAL MONEY": "real"}.get(run.get("note") or "")


def status_report(settings, ledger, run_id: int | None = None, account: dict | None = None,
                  now: pd.Timestamp | None = None, mode: str | None = None, oos_metrics: dict | None = None) -> dict:
    """What ``perpbot status`` shows, as a dict: run (id, kind, status, note), position, equity,
    open_orders (list), last_signal, last_cycle (time, age_s), latency (p50_ms, p99_ms, n over
    the last 1000 cycles that sent an order; all_p50_ms over all cycles), reconcile (last
    summary), errors (order_failed count). ``account``: the venue's live view
    ({position, equity, orders}) or None. ``mode`` ("demo" / "real"): without ``run_id``, the
    latest live run of that trading mode (default: of any). Raises ValueError when the ledger has
    no such live run. ``outcomes``: the live scorecard of the run's recorded calls
    (:func:`perpbot.ml.outcomes.scorecard`) beside ``oos_metrics``, the model's out-of-sample figures.
    ``risk``: VaR / ES at 95 and 99 % and the worst days replayed on the position
    (:func:`perpbot.cli.status_risk.position_risk`)."""
    from perpbot.ml.outcomes import scorecard

    now = now or pd.Timestamp.now(tz="UTC")
    if run_id is not None:
        run = ledger.get_run(run_id)
    elif mode is None:
        run = ledger.last_run(kind="live")
    else:
        runs = ledger.runs()
        ids = [int(r["id"]) for r in (runs[runs["kind"] == "live"].to_dict("records") if len(runs) else [])
               if _run_mode(r) == mode]
        run = ledger.get_run(ids[-1]) if ids else None
    if run is None:
        what = "live run" if mode is None else f"{'real-money' if mode == 'real' else 'demo'} live run"
        raise ValueError(f"the ledger {settings.ledger_display} has no {what} yet (perpbot run --mode live"
                         f"{' --real-money' if mode == 'real' else ''})")
    rid = int(run["id"])
    ev = ledger.risk_events(rid)
    cyc = ev[ev["event"] == "cycle_latency"].tail(1000)
    details = [json.loads(d) if isinstance(d, str) else {} for d in cyc["detail"]]
    sent = cyc["value"].to_numpy()[[bool(d.get("order_sent")) for d in details]] if len(cyc) else np.zeros(0)
    rec = ev[ev["event"] == "reconcile"]
    out = {"run": {"id": rid, "kind": run["kind"], "status": run["status"], "note": run.get("note"),
                   "strategy": run["strategy"], "symbol": run["symbol"]},
           "last_cycle": None, "latency": None, "last_signal": None,
           "reconcile": json.loads(rec["detail"].iloc[-1]).get("summary") if len(rec) else None,
           "errors": int((ev["event"] == "order_failed").sum()),
           "unproven_model": (run.get("config") or {}).get("unproven_model_accepted")
           if isinstance(run.get("config"), dict) else None}
    if len(cyc):
        t = cyc["time"].iloc[-1]
        out["last_cycle"] = {"time": t.isoformat(), "age_s": (now - t).total_seconds(), "bar": int(cyc["bar"].iloc[-1])}
        out["last_signal"] = details[-1].get("signal")
        if details[-1].get("reconcile"):
            out["reconcile"] = details[-1]["reconcile"]
        out["latency"] = {"p50_ms": float(np.percentile(sent, 50)) if len(sent) else None,
                          "p99_ms": float(np.percentile(sent, 99)) if len(sent) else None, "n": int(len(sent)),
                          "all_p50_ms": float(cyc["value"].median())}
    pos = ledger.positions(rid)
    last = pos.iloc[-1] if len(pos) else None
    out["position"] = None if last is None or last["side"] == "flat" else {
        k: (None if pd.isna(last[k]) else (last[k] if k == "side" else float(last[k])))
        for k in ("side", "qty", "entry_price", "mark_price", "stop_loss", "take_profit", "liquidation_price")}
    eq = ledger.equity(rid)
    out["equity"] = float(eq.iloc[-1]) if len(eq) else None
    out["outcomes"] = scorecard(ledger.predictions(rid), oos_metrics)
    out["open_orders"] = []
    if account is not None:
        out["position"], out["equity"], out["open_orders"] = account["position"], account["equity"], account["orders"]
        out["source"] = "exchange"
    else:
        out["source"] = "ledger"
    from perpbot.cli.status_risk import position_risk

    out["risk"] = position_risk(settings, out["position"], run["symbol"])  # VaR, ES, worst days replayed
    return out


async def _account(settings, real_money: bool) -> dict:
    from perpbot.exchange.ccxt_adapter import make_exchange
    from perpbot.exchange import venue_params
    from perpbot.exchange.executor import Executor

    ex = make_exchange(settings, real_money=real_money, environ={"PERPBOT_CONFIRM_REAL_MONEY": "yes"})
    executor = Executor(ex, settings)
    try:
        await ex.load_markets()
        executor.market = ex.market(settings.symbol)
        snap = await executor.snapshot()
        normal, plans = await executor.open_orders()
    finally:
        await ex.close()
    p = snap.position
    orders = [{"id": o["id"], "client_id": o.get("clientOrderId"), "side": o["side"], "type": o.get("type"),
               "qty": o.get("amount"), "price": o.get("price"), "reduce_only": o.get("reduceOnly")} for o in normal]
    orders += [{"id": o["id"], "client_id": o.get("clientOrderId"), "side": o["side"], "type": executor.kind_of(o),
                "qty": o.get("amount"), "price": next(iter(venue_params.protection_levels(executor.ex.id, o).values()),
                                                      o.get("triggerPrice")), "reduce_only": True} for o in plans]
    return {"equity": snap.equity, "orders": orders, "position": None if p is None else {
        "side": "long" if p.side > 0 else "short", "qty": p.qty, "entry_price": p.entry_price,
        "liquidation_price": p.liquidation_price, "mark_price": p.mark_price, "unrealized_pnl": p.unrealized_pnl}}


def status(config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML settings file"),
           run_id: Optional[int] = typer.Option(None, "--run-id",
                                                help="default: the latest live run of the mode (demo / --real-money)"),
           exchange: bool = typer.Option(True, "--exchange/--no-exchange", help="also ask the venue (read-only)"),
           real_money: bool = typer.Option(False, "--real-money", help="read the real account instead of the demo")) -> None:
    """Position, open orders, equity, last signal, health and value-at-risk of the live bot."""
    from perpbot.cli.common import handled, open_ledger, settings_for

    with handled():
        s = settings_for(config)
        account, note = None, ""
        if exchange:
            try:
                account = asyncio.run(_account(s, real_money))
            except Exception as exc:
                from perpbot.exchange.ccxt_adapter import describe_error

                note = f"exchange not read ({describe_error(exc)}); showing the ledger"
        rep = status_report(s, open_ledger(s), run_id, account, mode="real" if real_money else "demo",
                            oos_metrics=_model_oos_metrics(s))
        console.print(render_status(rep))
        if (warning := rep["outcomes"]["warning"]) is not None:
            err_console.print(f"[bold yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
        if note:
            err_console.print(f"[yellow]{note}[/]", highlight=False)


def _model_oos_metrics(settings) -> dict | None:
    """The out-of-sample metrics saved beside the settings' model (None without a readable model)."""
    from perpbot.ml.metadata import ModelError, load_metadata

    try:
        return load_metadata(settings.model_file).get("oos_metrics")
    except ModelError:
        return None


def outcomes_line(card: dict) -> str:
    """One line of a :func:`perpbot.ml.outcomes.scorecard`: live precision of the labelled calls,
    their mean confidence and calibration error, beside the out-of-sample precision."""
    def pct(x: float) -> str:
        return "?" if not np.isfinite(x) else f"{100 * x:.1f} %"

    if not card["n_labelled"]:
        return f"{card['n_calls']} calls, none labelled yet (out-of-sample precision {pct(card['oos_precision'])})"
    return (f"precision {pct(card['precision'])} over {card['n_labelled']} labelled calls "
            f"({card['n_pending']} pending), mean confidence {pct(card['mean_confidence'])}, ECE "
            f"{card['ece']:.3f}; out-of-sample {pct(card['oos_precision'])} (base {pct(card['oos_precision_base'])})"
            + ("  DRIFT" if card["drift"] else ""))


def render_status(rep: dict) -> Table:
    """A Rich table of :func:`status_report`."""
    r = rep["run"]
    t = Table(title=f"live run {r['id']} ({r['note'] or ''} {r['strategy']} {r['symbol']}, {r['status']})",
              show_header=False)
    t.add_column("what")
    t.add_column("value")
    pos = rep["position"]
    t.add_row("position", "flat" if not pos else ", ".join(f"{k} {v}" for k, v in pos.items() if v is not None))
    t.add_row("equity", "?" if rep["equity"] is None else f"{rep['equity']:.2f} USDT ({rep['source']})")
    t.add_row("open orders", "none" if not rep["open_orders"] else "\n".join(
        f"{o['type']} {o['side']} {o['qty']} @ {o['price']} ({o['client_id']})" for o in rep["open_orders"]))
    t.add_row("last signal", str(rep["last_signal"]))
    lc = rep["last_cycle"]
    t.add_row("last cycle", "never" if lc is None else f"{lc['time']} ({lc['age_s']:.0f} s ago)")
    lat = rep["latency"]
    if lat:
        t.add_row("latency (candle -> order)", f"p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms over {lat['n']} orders; "
                                               f"decision p50 {lat['all_p50_ms']:.2f} ms")
    t.add_row("reconciliation", str(rep["reconcile"]))
    t.add_row("failed orders", str(rep["errors"]))
    if "outcomes" in rep:
        t.add_row("live calls vs model", outcomes_line(rep["outcomes"]))
    if "risk" in rep:
        from perpbot.cli.status_risk import add_risk_rows

        add_risk_rows(t, rep["risk"])
    if rep.get("unproven_model"):
        t.add_row("model verdict", f"[bold red]UNPROVEN MODEL ACCEPTED[/] (--accept-unproven-model): {rep['unproven_model']}")
    return t
