"""Reconciliation: make the ledger and the exchange agree, and leave no position unprotected.

:func:`reconcile` runs at start-up and after every live cycle. It reads the exchange's
position, open orders, open TP/SL (plan) orders and balance (concurrently), then:

1. **unsettled orders**: every ledger order still ``new`` or ``open`` (at start-up read from the
   ledger - this run and the live runs of the same account that did not finish, e.g. a process
   that died after sending; then the ones the executor tracks) is matched by client order id with
   the open orders / plans just read, else looked up by client id:
   filled -> ``filled`` (+ its fill), cancelled after a partial fill -> ``partially_filled``
   (+ fill), cancelled -> ``canceled``, unknown to the venue -> ``failed`` (it never reached
   it), a plan order no longer live -> ``canceled``;
2. **the position**: an exchange position that the ledger's latest position snapshot does not
   show (side or size) is adopted: a snapshot is recorded; a ledger position the exchange no
   longer has gets a flat snapshot;
3. **protection**: an open position without a venue-side stop (pos_loss / loss_plan / trailing
   plan on its side) gets one at the configured stop distance from its entry price (and a
   take-profit when it has none); when the price is already beyond that stop, the position
   is closed at market instead (reduce-only) - it must not stay naked;
4. **orphans**: TP/SL plans and reduce-only orders that can no longer reduce anything (no
   position, or on the wrong side) are cancelled; before "no position" cancels anything the position is
   read again (an entry filling between the reads brings its own stops; step 3 reads the plans again too
   before placing a stop). Market entry orders are kept (an order sent just before a crash is settled
   by step 1); at start-up a resting limit entry is cancelled: the process that placed it, and its
   signal, are gone (it would fill as a stale entry nobody manages).

Whatever it did is returned as a :class:`ReconcileReport`, logged, and recorded as a
``reconcile`` risk event (value = number of actions, detail = JSON summary).

**Runs belong to one account.** A live run records its :func:`account_identity` in its config
JSON (key ``live_account``): the trading mode (``demo`` = Bitget demo trading, the client in
sandbox mode; ``real``) and a fingerprint of the API key, beside the run's exchange and symbol
columns. Only runs of the same exchange, symbol, mode and key are resumed
(:func:`resumable_run`) or have their orders looked up (:func:`load_unsettled`): a demo run's
orders are never asked for on the real account, nor the other way round. Runs recorded
before this (no ``live_account``) match no account.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field

import pandas as pd

from perpbot.exchange import venue_params
from perpbot.exchange.executor import _UNKNOWN, PositionInfo
from perpbot.logs import get_logger
from perpbot.sim.config import AccountConfig
from perpbot.storage.lifecycle import RESUMABLE_STATUSES

log = get_logger("perpbot.live")

UNSETTLED = ("new", "open")
_STOPS = ("stop_loss", "trailing_stop")  # the kinds of protection order that stop a loss


@dataclass
class ReconcileReport:
    """What one reconciliation found and did. Money USDT, qty base asset."""

    time: pd.Timestamp
    position: PositionInfo | None = None
    equity: float | None = None
    free: float | None = None
    open_orders: int = 0
    plan_orders: int = 0
    has_stop: bool = False
    resolved: list[dict] = field(default_factory=list)     # {cid, was, now}
    adopted: dict | None = None                             # the adopted / repaired position
    stop_placed: float | None = None
    take_profit_placed: float | None = None
    closed_unprotected: bool = False
    cancelled: list[str] = field(default_factory=list)      # exchange order ids
    warnings: list[str] = field(default_factory=list)

    @property
    def actions(self) -> int:
        return (len(self.resolved) + (self.adopted is not None) + (self.stop_placed is not None)
                + (self.take_profit_placed is not None) + int(self.closed_unprotected) + len(self.cancelled))

    @property
    def clean(self) -> bool:
        """Nothing to repair and nothing unexplained."""
        return self.actions == 0 and not self.warnings

    def to_dict(self) -> dict:
        d = asdict(self)
        d["time"] = self.time.isoformat()
        d["actions"] = self.actions
        return d

    def summary(self) -> str:
        parts = []
        if self.resolved:
            parts.append("orders " + ", ".join(f"{r['cid']}:{r['was']}->{r['now']}" for r in self.resolved))
        if self.adopted is not None:
            parts.append(f"adopted position {self.adopted}")
        if self.stop_placed is not None:
            parts.append(f"stop placed at {self.stop_placed}")
        if self.take_profit_placed is not None:
            parts.append(f"take-profit placed at {self.take_profit_placed}")
        if self.closed_unprotected:
            parts.append("position closed: price beyond its stop")
        if self.cancelled:
            parts.append(f"cancelled orphans {', '.join(self.cancelled)}")
        parts += self.warnings
        return "; ".join(parts) or "clean"


def trading_mode(exchange) -> str:
    """``"demo"`` when the ccxt client sends to the venue's demo / sandbox (Bitget: the
    ``paptrading`` header, ``options["sandboxMode"]``; Binance demo trading: ``options["enableDemoTrading"]``),
    else ``"real"``."""
    options = getattr(exchange, "options", None) or {}
    demo = getattr(exchange, "isSandboxModeEnabled", False) or options.get("sandboxMode") or options.get("enableDemoTrading")
    return "demo" if demo else "real"


def account_identity(exchange) -> dict:
    """What ties a live run to one account: {trading_mode: "demo" | "real", account: the first 16
    hex digits of SHA-256 over the exchange id and the client's API key (None without a key)}.
    The key itself is never stored; the digest cannot be turned back into it."""
    key = getattr(exchange, "apiKey", None) or None
    digest = None if key is None else hashlib.sha256(f"perpbot-account\0{exchange.id}\0{key}".encode()).hexdigest()[:16]
    return {"trading_mode": trading_mode(exchange), "account": digest}


def same_account(run, exchange_id: str, symbol: str, identity: dict) -> bool:
    """True when ledger ``run`` (a row of ``Ledger.runs()`` / ``get_run``) is a live run of
    ``exchange_id`` / ``symbol`` recorded with this :func:`account_identity`."""
    config = run["config"] if isinstance(run["config"], dict) else {}
    mine = config.get("live_account")
    return (run["kind"] == "live" and run["exchange"] == exchange_id and run["symbol"] == symbol
            and isinstance(mine, dict) and identity.get("account") is not None
            and mine.get("trading_mode") == identity["trading_mode"] and mine.get("account") == identity["account"])


def resumable_run(ledger, strategy: str, exchange_id: str, symbol: str, identity: dict) -> dict | None:
    """The latest live run of ``strategy`` on this exchange, symbol and account
    (:func:`same_account`) when it did not finish (status ``running`` or ``abandoned``: the process died), else None."""
    runs = ledger.runs()
    if not len(runs):
        return None
    mine = [r for r in runs[(runs["kind"] == "live") & (runs["strategy"] == strategy)].to_dict("records")
            if same_account(r, exchange_id, symbol, identity)]
    if not mine or mine[-1]["status"] not in RESUMABLE_STATUSES:
        return None
    return ledger.get_run(int(mine[-1]["id"]))


def load_unsettled(executor, ledger, run_id: int) -> int:
    """Add to ``executor.unsettled`` the ledger orders still new/open of this run and of the
    unfinished live runs of the same exchange, symbol and account (:func:`same_account`; e.g. a
    process that died after sending). Returns how many were added."""
    from perpbot.exchange.order_ledger import OrderRow

    runs = ledger.runs()
    ids = {run_id}
    if len(runs):
        identity = account_identity(executor.ex)
        ids |= {int(r["id"]) for r in runs[runs["status"] != "finished"].to_dict("records")
                if same_account(r, executor.ex.id, executor.symbol, identity)}
    n = 0
    for rid in sorted(ids):
        orders = ledger.orders(rid)
        if not len(orders):
            continue
        for r in orders[orders["status"].isin(UNSETTLED)].itertuples(index=False):
            if r.client_order_id not in executor.unsettled:
                executor.unsettled[r.client_order_id] = OrderRow(
                    int(r.id), rid, r.client_order_id, r.side, r.type, r.status, r.reason,
                    None if pd.isna(r.trade_no) else int(r.trade_no))
                n += 1
    return n


def ledger_position(ledger, run_id: int) -> tuple[int, float]:
    """(side +1/-1/0, qty) of the run's latest position snapshot (flat when none)."""
    snaps = ledger.positions(run_id)
    if not len(snaps):
        return 0, 0.0
    last = snaps.iloc[-1]
    return {"long": 1, "short": -1}.get(last["side"], 0), float(last["qty"])


async def reconcile(executor, ledger, run_id: int, *, atr: float = math.nan, cfg=None, bar: int | None = None,
                    record: str = "changes", scan_ledger: bool = True, snapshot=None) -> ReconcileReport:
    """Compare and repair (module docstring). ``cfg``: the run's
    :class:`~perpbot.sim.engine.AccountConfig` (stop distance; default from the executor's
    settings); ``atr`` (USDT) for ATR stops; ``record``: "changes" (risk event only when
    something was done or is wrong), "always" or "never"; ``scan_ledger``: read the unsettled
    orders and the position from the ledger (start-up) rather than from what the executor
    tracked since (every cycle); ``snapshot``: an :class:`~perpbot.exchange.executor.AccountSnapshot`
    just taken (not fetched again). Exchange errors propagate (ccxt)."""
    if snapshot is None:
        snap, (normal, plans) = await asyncio.gather(executor.snapshot(), executor.open_orders())
    else:
        snap, (normal, plans) = snapshot, await executor.open_orders()
    rep = ReconcileReport(time=executor.now(), position=snap.position, equity=snap.equity,
                          free=snap.free, open_orders=len(normal), plan_orders=len(plans))
    live = {o.get("clientOrderId"): o for o in normal}
    live_plans = {venue_params.listed_client_id(executor.ex.id, p): p for p in plans}
    # 1. unsettled ledger orders
    if ledger is not None and scan_ledger:
        load_unsettled(executor, ledger, run_id)
    for row in list(executor.unsettled.values()):
        found = (live_plans if row.plan else live).get(venue_params.client_id(executor.ex.id, row.client_order_id))
        if found is None and not row.plan:
            found = await executor.lookup(row.client_order_id)
        if found is _UNKNOWN:
            rep.warnings.append(f"order {row.client_order_id} could not be looked up")
            continue
        was = row.status
        new = executor.settle(row, found)
        if new != was:
            rep.resolved.append({"cid": row.client_order_id, "was": was, "now": new})
    # 2. the position against the ledger
    pos = snap.position
    if ledger is not None:
        if executor.ledger_position is None or scan_ledger:
            executor.ledger_position = ledger_position(ledger, run_id)
        l_side, l_qty = executor.ledger_position
        lot = executor.rules.lot if executor.rules else 1e-9
        if pos is not None and (l_side != pos.side or abs(l_qty - pos.qty) > lot / 2):
            rep.adopted = {"side": pos.side, "qty": pos.qty, "entry_price": pos.entry_price}
            executor.record_position(pos.side, pos.qty, entry_price=pos.entry_price, mark_price=pos.mark_price,
                                     liquidation_price=pos.liquidation_price, margin=pos.margin,
                                     unrealized_pnl=pos.unrealized_pnl)
        elif pos is None and l_side != 0:
            executor.record_position(0, 0.0)
            rep.warnings.append("the ledger's position is no longer on the exchange (closed there)")
    # 3. protection
    if pos is not None:
        close_side = "sell" if pos.side > 0 else "buy"
        mine = [p for p in plans if p.get("side") == close_side]
        if not any(executor.kind_of(p) in _STOPS for p in mine):  # read again: an entry's preset
            normal, plans = await executor.open_orders()                  # stops may have come with its fill
            mine = [p for p in plans if p.get("side") == close_side]      # after the first read
        rep.has_stop = any(executor.kind_of(p) in _STOPS for p in mine)
        has_tp = any(executor.kind_of(p) == "take_profit" for p in mine)
        if not rep.has_stop:
            cfg = cfg or AccountConfig.for_live(executor.settings, "ai", executor.rules)
            sl, tp, _ = cfg.levels(pos.side, pos.entry_price, atr)
            if not math.isfinite(sl):  # ATR stop without an ATR: the percent distance of the settings
                sl = executor.round_price(pos.entry_price * (1 - pos.side * executor.settings.stop_loss / 100))
            mark = pos.mark_price or pos.entry_price
            if (pos.side > 0 and mark <= sl) or (pos.side < 0 and mark >= sl):
                res = await executor.close_position("unprotected", side=pos.side, qty=pos.qty,
                                                    bar=bar if bar is not None else 0)
                rep.closed_unprotected = res.ok
                rep.warnings.append(f"price {mark} is beyond the stop {sl}: closing at market"
                                    + ("" if res.ok else f" FAILED ({res.error})"))
            else:
                placed = await executor.protect(pos.side, pos.qty, stop_loss=sl,
                                                take_profit=None if has_tp else tp, bar=bar if bar is not None else 0)
                for r, kind in zip(placed, ("sl", "tp")):
                    if r.ok and kind == "sl":
                        rep.stop_placed, rep.has_stop = sl, True
                    elif r.ok:
                        rep.take_profit_placed = tp
                    else:
                        rep.warnings.append(f"{kind} could not be placed: {r.error}")
    # 4. orphans (a position that came with a fill after the first read is read again, before anything of it
    # is cancelled: its own stops must not be taken for orphans)
    if pos is None and (plans or any(o.get("reduceOnly") for o in normal)):
        pos = (await executor.snapshot()).position
        if pos is not None:
            rep.warnings.append("a position opened while reconciling; its orders are checked next cycle")
            plans, normal = [], []
    for p in plans:
        if pos is None or p.get("side") != ("sell" if pos.side > 0 else "buy"):
            if await executor.cancel(p, plan=True):
                rep.cancelled.append(str(p["id"]))
    for o in normal:
        orphan = o.get("reduceOnly") and (pos is None or o.get("side") != ("sell" if pos.side > 0 else "buy"))
        stale_limit = scan_ledger and not o.get("reduceOnly") and o.get("type") == "limit"
        if (orphan or stale_limit) and await executor.cancel(o):
            rep.cancelled.append(str(o["id"]))
    # record
    if rep.actions or rep.warnings:
        log.warning("reconcile", actions=rep.actions, summary=rep.summary())
    if ledger is not None and (record == "always" or (record == "changes" and not rep.clean)):
        executor.risk_event("reconcile", float(rep.actions), json.dumps({"summary": rep.summary(), **{
            k: v for k, v in rep.to_dict().items() if k in ("resolved", "adopted", "stop_placed", "take_profit_placed",
                                                            "cancelled", "warnings", "has_stop", "equity")}},
            default=str), bar)
    return rep
