"""Operator control of a running bot: pause / resume / force-exit, and its status snapshot.

Shared (thread-safe) between the trading loop and the operator interfaces (Telegram, REST
API, dashboard). The loop reads the flags at the start of each cycle: while paused it opens
no new positions (stops and take-profits stay active); a force-exit request closes the open
position at the latest close in the next cycle.

A node trading several symbols has one :class:`BotControl` (pause, resume and force-exit act on every
symbol) and gives each symbol's loop a :class:`SymbolControl` view: it sees the node's pause, takes
each force-exit request once for its own symbol, and writes its status under ``symbols[<symbol>]``
(the node's ``positions`` list every open position).
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any

from perpbot.bot.events import EventBus


class BotControl:
    """Flags set by operators and the status the loop publishes after every cycle."""

    def __init__(self, events: EventBus | None = None, *, mode: str = "paper", strategy: str = "ai",
                 symbol: str = "SOL/USDT:USDT", timeframe: str = "5m") -> None:
        self.events = events or EventBus()
        self._lock = threading.Lock()
        self._paused = False
        self._force_exit = False
        self._force_seq = 0  # force-exit requests so far (each SymbolControl takes every one once)
        self._status: dict[str, Any] = {"mode": mode, "strategy": strategy, "symbol": symbol,
                                        "timeframe": timeframe, "paused": False, "running": False,
                                        "position": None, "equity": None, "last_signal": None,
                                        "last_cycle_time": None, "last_candle_time": None, "cycles": 0,
                                        "errors": 0, "run_id": None}

    # ---- operator side ------------------------------------------------------------------
    def pause(self, by: str = "operator") -> None:
        with self._lock:
            changed = not self._paused
            self._paused = True
            self._status["paused"] = True
        if changed:
            self.events.publish("paused", by=by)

    def resume(self, by: str = "operator") -> None:
        with self._lock:
            changed = self._paused
            self._paused = False
            self._status["paused"] = False
        if changed:
            self.events.publish("resumed", by=by)

    def request_force_exit(self, by: str = "operator") -> None:
        with self._lock:
            self._force_exit = True
            self._force_seq += 1
        self.events.publish("force_exit", by=by)

    # ---- loop side ----------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        with self._lock:
            return self._paused

    def take_force_exit(self) -> bool:
        """True once per request (the loop consumes it)."""
        with self._lock:
            flag, self._force_exit = self._force_exit, False
            return flag

    @property
    def force_exit_seq(self) -> int:
        """How many force-exits were requested so far."""
        with self._lock:
            return self._force_seq

    def update_status(self, **fields: Any) -> None:
        with self._lock:
            self._status.update(fields)
            self._status["updated_at"] = datetime.now(timezone.utc).isoformat()

    def update_symbol_status(self, symbol: str, **fields: Any) -> None:
        """One symbol's status (a node over several symbols): kept under ``symbols[symbol]``; its
        ``position`` joins ``positions`` ({symbol: position} of the open ones) and its ``run_id``
        ``run_ids``; ``run_id`` / ``position`` are the first symbol's run and the first open position
        (for readers of one run); ``running`` while any symbol's loop runs; the account-wide fields (equity, errors,
        last times) are the node's."""
        node_fields = {k: v for k, v in fields.items() if k in ("equity", "errors", "last_error", "last_candle_time",
                                                                "last_cycle_time", "demo", "mode")}
        with self._lock:
            symbols = self._status.setdefault("symbols", {})
            symbols.setdefault(symbol, {}).update(fields)
            self._status["positions"] = {s: st["position"] for s, st in symbols.items() if st.get("position")}
            # what one-run readers (the risk card, /status) see: the first symbol's run and the first open position
            run_ids = {s: st["run_id"] for s, st in symbols.items() if st.get("run_id") is not None}
            self._status["run_ids"] = run_ids
            self._status["run_id"] = next(iter(run_ids.values()), None)
            self._status["position"] = next(iter(self._status["positions"].values()), None)
            self._status["cycles"] = sum(int(st.get("cycles") or 0) for st in symbols.values())
            self._status["running"] = any(st.get("running") for st in symbols.values())  # a retired symbol ends
            self._status.update(node_fields)
            self._status["updated_at"] = datetime.now(timezone.utc).isoformat()

    def status(self) -> dict[str, Any]:
        """A copy of the status: mode, strategy, symbol, paused, running, position (dict or None),
        equity (USDT), last_signal {signal, p_down, p_flat, p_up, time}, last_cycle_time, cycles, errors."""
        with self._lock:
            return dict(self._status)


class SymbolControl:
    """One symbol's view of a node's :class:`BotControl` (module docstring): what a loop reads and
    writes (``paused``, ``take_force_exit``, ``update_status``, ``status``, ``events``); the operator
    side (pause, resume, force-exit) acts on the whole node."""

    def __init__(self, node: BotControl, symbol: str) -> None:
        self.node, self.symbol, self.events = node, symbol, node.events
        self._seen = node.force_exit_seq

    @property
    def paused(self) -> bool:
        return self.node.paused

    def take_force_exit(self) -> bool:
        """True once per node-wide force-exit request, for this symbol."""
        seq = self.node.force_exit_seq
        if seq > self._seen:
            self._seen = seq
            return True
        return False

    def update_status(self, **fields: Any) -> None:
        self.node.update_symbol_status(self.symbol, **fields)

    def status(self) -> dict[str, Any]:
        """The node's status with this symbol's own fields on top."""
        st = self.node.status()
        return {**st, **(st.get("symbols") or {}).get(self.symbol, {})}

    def pause(self, by: str = "operator") -> None:
        self.node.pause(by)

    def resume(self, by: str = "operator") -> None:
        self.node.resume(by)

    def request_force_exit(self, by: str = "operator") -> None:
        self.node.request_force_exit(by)
