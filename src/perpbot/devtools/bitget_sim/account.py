"""Account settings of the Bitget simulator (a part of its :class:`~perpbot.devtools.bitget_sim.engine.Engine`):
leverage, margin mode and position mode (with Bitget's refusals), and the account row of
``/api/v2/mix/account/accounts``."""

from __future__ import annotations

from perpbot.devtools.bitget_sim.errors import SimError, bad_param
from perpbot.devtools.bitget_sim.market import num


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
        if self.position is not None or any(o.open for o in self.orders.values()):
            raise SimError("40920", "Position or order exists, the position mode cannot be switched")
        self.pos_mode = mode
        return {"posMode": mode}

    def account_row(self) -> dict:
        avail = self.available()
        upnl = self.upnl()
        eq = self.balance + upnl
        return {
            "marginCoin": "USDT", "locked": num(self.frozen()), "available": num(self.balance - self.frozen()),
            "crossedMaxAvailable": num(avail), "isolatedMaxAvailable": num(avail), "maxTransferOut": num(max(avail, 0.0)),
            "accountEquity": num(eq), "usdtEquity": num(eq), "btcEquity": "0", "crossedRiskRate": "0",
            "crossedMarginLeverage": str(self.leverage), "isolatedLongLever": str(self.leverage),
            "isolatedShortLever": str(self.leverage), "marginMode": self.margin_mode, "posMode": self.pos_mode,
            "unrealizedPL": num(upnl), "coupon": "0", "crossedUnrealizedPL": "0", "isolatedUnrealizedPL": num(upnl),
            "assetMode": "single", "symbol": self.symbol.lower(),
        }
