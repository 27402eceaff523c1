"""The shared USDT wallet and the account settings of the Bitget simulator.

:class:`Wallet` is the one futures account: one USDT balance shared by every traded symbol's
:class:`~perpbot.devtools.bitget_sim.engine.Engine` (each symbol keeps its own position, orders,
plans, leverage and margin mode) and the account-wide id counter. :class:`AccountSettingsMixin`
(a part of the engine) holds leverage, margin mode and position mode (with Bitget's refusals),
and the account row of ``/api/v2/mix/account/accounts``."""

from __future__ import annotations

import itertools

from perpbot.devtools.bitget_sim.errors import SimError, bad_param
from perpbot.devtools.bitget_sim.market import num


class Wallet:
    """One USDT-futures account shared by the engines of several symbols.

    ``balance`` is the wallet balance in USDT (fees, realised PnL, funding and liquidations of
    every symbol change it); ``engines`` are the registered engines, in registration order.
    Order / plan / fill ids come from one counter, so they are unique across symbols.
    Raises ValueError when ``capital`` <= 0.
    """

    def __init__(self, capital: float = 1000.0) -> None:
        if not capital > 0:
            raise ValueError(f"capital must be > 0 USDT, got {capital}")
        self.balance = float(capital)
        self.engines: list = []
        self._ids = itertools.count(1_100_000_000_000_000_001)

    def new_id(self) -> str:
        return str(next(self._ids))

    def frozen(self) -> float:
        """USDT reserved by the live orders of every symbol."""
        return sum(e.frozen() for e in self.engines)

    def used(self) -> float:
        """Isolated margin of every symbol's open position, USDT."""
        return sum(e.position.margin for e in self.engines if e.position is not None)

    def available(self) -> float:
        """balance - every position's margin - every live order's frozen margin (USDT)."""
        return self.balance - self.used() - self.frozen()

    def upnl(self) -> float:
        """Unrealised PnL of every open position at its symbol's last price (USDT)."""
        return sum(e.upnl() for e in self.engines)

    def equity(self) -> float:
        return self.balance + self.upnl()


class AccountSettingsMixin:
    """Leverage / margin mode / position mode endpoints (reads the engine's account state)."""

    def set_leverage(self, params: dict) -> dict:
        self.check_symbol(params)
        try:
            lev = int(float(params.get("leverage", "")))
        except ValueError:
            raise bad_param(f"leverage={params.get('leverage')!r} is not a number") from None
        if not 1 <= lev <= self.max_lever:
            raise SimError("40797", f"Exceeded the maximum settable leverage {self.max_lever}")
        self.leverage = lev
        return {"symbol": self.symbol, "marginCoin": "USDT", "longLeverage": str(lev), "shortLeverage": str(lev),
                "crossMarginLeverage": str(lev), "marginMode": self.margin_mode}

    def set_margin_mode(self, params: dict) -> dict:
        self.check_symbol(params)
        mode = params.get("marginMode")
        if mode not in ("isolated", "crossed"):
            raise bad_param(f"marginMode={mode!r} is not isolated or crossed")
        if self.position is not None or any(o.open for o in self.orders.values()):
            raise SimError("45117", "Currently holding positions or orders, the margin mode cannot be adjusted")
        self.margin_mode = mode
        return {"symbol": self.symbol, "marginCoin": "USDT", "longLeverage": str(self.leverage),
                "shortLeverage": str(self.leverage), "marginMode": mode}

    def set_position_mode(self, params: dict) -> dict:
        mode = params.get("posMode")
        if mode not in ("one_way_mode", "hedge_mode"):
            raise bad_param(f"posMode={mode!r} is not one_way_mode or hedge_mode")
        if mode == "hedge_mode":
            raise SimError("40017", "Parameter verification failed: hedge_mode is not simulated (one-way only)")
        if any(e.position is not None or any(o.open for o in e.orders.values()) for e in self.wallet.engines):
            raise SimError("40920", "Position or order exists, the position mode cannot be switched")
        for e in self.wallet.engines:  # an account setting: every symbol
            e.pos_mode = mode
        return {"posMode": mode}

    def account_row(self) -> dict:
        """The account row (wallet-wide money; leverage / margin mode / symbol of this engine)."""
        w = self.wallet
        avail = w.available()
        upnl = w.upnl()
        eq = w.balance + upnl
        return {
            "marginCoin": "USDT", "locked": num(w.frozen()), "available": num(w.balance - w.frozen()),
            "crossedMaxAvailable": num(avail), "isolatedMaxAvailable": num(avail), "maxTransferOut": num(max(avail, 0.0)),
            "accountEquity": num(eq), "usdtEquity": num(eq), "btcEquity": "0", "crossedRiskRate": "0",
            "crossedMarginLeverage": str(self.leverage), "isolatedLongLever": str(self.leverage),
            "isolatedShortLever": str(self.leverage), "marginMode": self.margin_mode, "posMode": self.pos_mode,
            "unrealizedPL": num(upnl), "coupon": "0", "crossedUnrealizedPL": "0", "isolatedUnrealizedPL": num(upnl),
            "assetMode": "single", "symbol": self.symbol.lower(),
        }
