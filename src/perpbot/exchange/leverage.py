"""The leverage set on the venue for one symbol, changed before an entry that needs another one
(a part of :class:`~perpbot.exchange.executor.Executor`, mixed in).

``leverage_mode = "adaptive"`` (:func:`perpbot.sim.sizing.trade_leverage`) gives each entry its own
whole leverage. Under isolated margin the venue applies the symbol's leverage setting when the entry
fills (Bitget v2 ``POST /api/v2/mix/account/set-leverage``, ccxt ``set_leverage``; with isolated
margin in one-way mode perpbot sets it for both hold sides, :func:`perpbot.exchange.venue_params.setup_isolated`),
so :meth:`VenueLeverage.ensure_leverage` sets it while the account is flat, just before the entry order.
A venue that refuses the change refuses the entry with it (nothing is sent at another leverage than
the one the entry was sized for).

At start-up an open position keeps its own leverage (changing it would move an isolated position's
margin and liquidation price); the next entry sets the one it needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable

from perpbot.exchange import venue_params
from perpbot.exchange.ccxt_adapter import describe_error
from perpbot.logs import get_logger
from perpbot.types import RiskEvent

log = get_logger("perpbot.live")


class VenueLeverage:
    """``leverage``: the whole leverage set on the venue for ``symbol`` (None until start-up)."""

    leverage: int | None = None
    ex: Any          # the executor's ccxt client and symbol (the composed class's)
    symbol: str

    if TYPE_CHECKING:  # the executor's methods this mixin calls
        async def _synced(self, call: Callable[[], Awaitable[Any]]) -> Any: ...

        def risk_event(self, event: str, value: float | None = None, detail: str | None = None,
                       bar: int | None = None) -> None: ...

    async def ensure_leverage(self, leverage: float, bar: int | None = None) -> str | None:
        """Set ``leverage`` (a whole number >= 1) on the venue unless it is the one already set.

        Returns None when it is set, else the one-line reason the venue refused (logged, and a
        ``leverage_refused`` risk event with the leverage as value): the caller sends no entry then.
        Raises ValueError for a leverage that is not a whole number >= 1."""
        import ccxt

        lev = int(leverage)
        if lev != leverage or lev < 1:
            raise ValueError(f"leverage {leverage!r} is not a whole number >= 1")
        if lev == self.leverage:
            return None
        try:
            await self._synced(lambda: venue_params.setup_isolated(self.ex, self.symbol, lev, margin=False))
        except ccxt.BaseError as exc:
            why = describe_error(exc, f"set leverage {lev}")
            log.error("leverage_refused", symbol=self.symbol, leverage=lev, was=self.leverage, error=why)
            self.risk_event(RiskEvent.LEVERAGE_REFUSED.label, float(lev), why, bar)
            return why
        log.info("leverage_set", symbol=self.symbol, leverage=lev, was=self.leverage)
        self.leverage = lev
        return None
