"""Injectable faults of the Bitget simulator (``sim.faults``).

Each injector arms a fault for the next N matching requests / orders; :meth:`Faults.clear`
disarms everything (and resets the clock skew). ``endpoint`` matches the end of the request path, e.g. ``"place-order"``
matches ``/api/v2/mix/order/place-order``; None matches every path. Thread-safe: tests call
these from their own thread while the server runs in its loop thread.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class _Armed:
    kind: str
    endpoint: str | None
    remaining: int
    params: dict = field(default_factory=dict)


class Faults:
    """Fault switches. See the module docstring; every method returns None."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[_Armed] = []
        self._drop_ws: Callable[[str], None] | None = None
        self.skew_ms = 0  # the venue's clock minus the local clock (see clock_skew)
        self.fired: list[tuple[str, str]] = []  # (kind, path) of every fault that fired

    # ---- HTTP faults ----------------------------------------------------------------------------
    def timeout_after_accept(self, delay: float = 2.0, endpoint: str = "place-order", count: int = 1) -> None:
        """The next ``count`` matching requests are processed (an order is recorded server-side),
        then the answer is held back ``delay`` seconds, beyond the client's timeout."""
        self._arm("timeout", endpoint, count, delay=float(delay))

    def slow(self, delay: float = 0.5, endpoint: str | None = None, count: int = 1) -> None:
        """The next ``count`` matching requests wait ``delay`` seconds BEFORE they are processed (a slow
        venue: what happens meanwhile, e.g. a fill at the next candle, shows in their answer)."""
        self._arm("slow", endpoint, count, delay=float(delay))

    def rate_limit(self, count: int = 1, endpoint: str | None = None) -> None:
        """The next ``count`` matching requests get HTTP 429 ``{"code":"429","msg":"Too Many Requests"}``
        and are not processed."""
        self._arm("429", endpoint, count)

    def server_error(self, endpoint: str | None = None, count: int = 1, status: int = 503) -> None:
        """The next ``count`` matching requests get HTTP ``status`` (5xx) with an HTML body, as a
        gateway in front of the exchange answers, and are not processed."""
        if not 500 <= status <= 599:
            raise ValueError(f"status must be a 5xx code, got {status}")
        self._arm("5xx", endpoint, count, status=status)

    def clock_skew(self, offset_ms: int) -> None:
        """From now on the venue's clock runs ``offset_ms`` ms ahead of the local clock (negative:
        behind), as when the client machine's clock jumps or drifts mid-run: a signed request whose
        ACCESS-TIMESTAMP is more than 30 s from it gets Bitget's 40008 "Request timestamp expired",
        and every answer's ``requestTime`` shows it (so a client can re-sync from any answer, e.g.
        the server-time request). ``serverTime`` stays the replay clock. Stays until :meth:`clear`."""
        self.skew_ms = int(offset_ms)
        self.fired.append(("clock_skew", str(self.skew_ms)))

    # ---- order faults ---------------------------------------------------------------------------
    def reject_orders(self, code: str = "40762", msg: str = "The order amount exceeds the balance",
                      count: int = 1) -> None:
        """The next ``count`` place-order requests are refused with Bitget error ``code``
        (e.g. 40762 insufficient balance, 45110 below the 5 USDT minimum)."""
        self._arm("reject", "place-order", count, code=str(code), msg=msg)

    def partial_fill(self, fraction: float = 0.5, count: int = 1) -> None:
        """The next ``count`` market orders fill ``fraction`` of their size (floored to the lot)
        when they fill, and the rest on the following advance()."""
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"fraction must be in (0, 1), got {fraction}")
        self._arm("partial", None, count, fraction=float(fraction))

    # ---- websocket faults -----------------------------------------------------------------------
    def drop_websocket(self, which: str = "all") -> None:
        """Close the server side of every open websocket now: ``"public"``, ``"private"`` or ``"all"``."""
        if which not in ("public", "private", "all"):
            raise ValueError(f"which must be 'public', 'private' or 'all', got {which!r}")
        if self._drop_ws is None:
            raise RuntimeError("drop_websocket: the simulator is not running")
        self.fired.append(("ws_drop", which))
        self._drop_ws(which)

    def clear(self) -> None:
        """Disarm every pending fault and reset the clock skew."""
        with self._lock:
            self._armed.clear()
            self.skew_ms = 0

    # ---- used by the server ---------------------------------------------------------------------
    def _arm(self, kind: str, endpoint: str | None, count: int, **params) -> None:
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        with self._lock:
            self._armed.append(_Armed(kind, endpoint, int(count), params))

    async def before_request(self, where: str) -> int | None:
        """Faults before a request is processed: a 'slow' delay (awaited here), then the HTTP
        status of an armed 429 or 5xx fault (the request is not processed), else None."""
        slow = self.take("slow", where)
        if slow is not None:
            await asyncio.sleep(slow["delay"])
        if self.take("429", where) is not None:
            return 429
        fault = self.take("5xx", where)
        return None if fault is None else int(fault["status"])

    async def after_accept(self, where: str, sleepers: set) -> None:
        """An armed 'timeout' fault: hold the (processed) answer back; the sleeping task is in
        ``sleepers`` meanwhile (so that a stopping server can cancel it)."""
        fault = self.take("timeout", where)
        if fault is None:
            return
        task = asyncio.current_task()
        sleepers.add(task)
        try:
            await asyncio.sleep(fault["delay"])
        finally:
            sleepers.discard(task)

    def take(self, kind: str, path: str = "") -> dict | None:
        """Consume one armed fault of ``kind`` matching ``path``; its params, or None."""
        with self._lock:
            for a in self._armed:
                if a.kind == kind and (a.endpoint is None or path.endswith(a.endpoint)):
                    a.remaining -= 1
                    if a.remaining <= 0:
                        self._armed.remove(a)
                    self.fired.append((kind, path))
                    return dict(a.params)
        return None
