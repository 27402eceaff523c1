"""Records of the Bitget simulator (orders, TP/SL plan orders, the position, fills) and their
Bitget v2 JSON shapes, as ccxt's ``parse_order`` / ``parse_position`` / ``parse_trade`` read them.

Units: prices USDT, sizes base coin, money USDT; times ms UTC (replay clock). ``fee`` fields
are kept positive (USDT paid) and written negative, as Bitget reports fees.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from perpbot.devtools.bitget_sim.market import num

#: TP/SL plan types of place-tpsl-order (listed by orders-plan-pending planType=profit_loss).
TPSL_TYPES = ("pos_profit", "pos_loss", "profit_plan", "loss_plan", "moving_plan")
PROFIT_TYPES = ("pos_profit", "profit_plan")
LOSS_TYPES = ("pos_loss", "loss_plan", "moving_plan")


@dataclass
class Order:
    """An ordinary (market / limit) order. ``status``: live, partially_filled, filled, canceled."""

    order_id: str
    client_oid: str
    symbol: str
    side: str                 # "buy" | "sell"
    order_type: str           # "market" | "limit"
    size: float
    price: float | None
    reduce_only: bool
    force: str
    margin_mode: str
    leverage: int
    c_time: int
    preset_tp: float | None = None
    preset_sl: float | None = None
    source: str = "normal"    # normal | profit_loss (closing order of a TP/SL plan) | liquidation
    filled: float = 0.0
    cost: float = 0.0         # quote volume filled
    fee: float = 0.0          # USDT paid, > 0
    profit: float = 0.0       # gross realised PnL of the closing part
    status: str = "live"
    u_time: int = 0
    fill_fraction: float | None = None   # partial-fill fault: share filled at the first fill
    reserved: float = 0.0     # USDT frozen for the opening part while live
    candles_seen: int = 0     # candles matched against while live (a post-only's first candle)

    @property
    def remaining(self) -> float:
        return round(self.size - self.filled, 10)

    @property
    def avg_price(self) -> float | None:
        return self.cost / self.filled if self.filled > 0 else None

    @property
    def open(self) -> bool:
        return self.status in ("live", "partially_filled")

    def to_bitget(self) -> dict:
        avg = self.avg_price
        return {
            "symbol": self.symbol, "size": num(self.size), "orderId": self.order_id, "clientOid": self.client_oid,
            "baseVolume": num(self.filled), "fee": num(-self.fee), "price": num(self.price) if self.price else "",
            "priceAvg": num(avg) if avg else "", "state": self.status, "status": self.status, "side": self.side,
            "force": self.force, "totalProfits": num(self.profit), "posSide": "net", "marginCoin": "USDT",
            "quoteVolume": num(self.cost), "leverage": str(self.leverage), "marginMode": self.margin_mode,
            "enterPointSource": "API", "tradeSide": f"{self.side}_single", "posMode": "one_way_mode",
            "orderType": self.order_type, "orderSource": self.source,
            "presetStopSurplusPrice": num(self.preset_tp) if self.preset_tp else "",
            "presetStopLossPrice": num(self.preset_sl) if self.preset_sl else "",
            "reduceOnly": "YES" if self.reduce_only else "NO", "cTime": str(self.c_time),
            "uTime": str(self.u_time or self.c_time),
        }


@dataclass
class Plan:
    """A TP/SL plan order on the position. ``status``: live, executed, cancelled.

    ``size`` None closes the whole position (pos_profit / pos_loss). moving_plan trails at
    ``range_rate`` (fraction) behind the best price once ``trigger_price`` is reached;
    ``stop`` is its current stop level (NaN until activated).
    """

    order_id: str
    client_oid: str
    symbol: str
    plan_type: str
    trigger_price: float
    trigger_type: str
    execute_price: float
    hold_side: str            # "long" | "short": the position side it protects
    size: float | None
    c_time: int
    range_rate: float = 0.0
    stop: float = float("nan")
    status: str = "live"
    u_time: int = 0
    exec_order_id: str = ""
    origin: str = ""          # the entry order whose preset TP/SL made it ("" for a placed plan)

    @property
    def close_side(self) -> str:
        return "sell" if self.hold_side == "long" else "buy"

    def to_bitget(self) -> dict:
        return {
            "planType": self.plan_type, "symbol": self.symbol, "size": num(self.size) if self.size else "",
            "orderId": self.order_id, "clientOid": self.client_oid, "price": "",
            "executePrice": num(self.execute_price), "callbackRatio": num(self.range_rate) if self.range_rate else "",
            "triggerPrice": num(self.trigger_price), "triggerType": self.trigger_type, "planStatus": self.status,
            "side": self.close_side, "posSide": "net", "marginCoin": "USDT", "marginMode": "isolated",
            "enterPointSource": "API", "tradeSide": f"{self.close_side}_single", "posMode": "one_way_mode",
            "orderType": "market" if self.execute_price == 0 else "limit", "orderSource": self.plan_type,
            "reduceOnly": "YES", "stopSurplusTriggerPrice": "", "stopSurplusExecutePrice": "",
            "stopSurplusTriggerType": "", "stopLossTriggerPrice": "", "stopLossExecutePrice": "",
            "stopLossTriggerType": "", "executeOrderId": self.exec_order_id,
            "cTime": str(self.c_time), "uTime": str(self.u_time or self.c_time),
        }


@dataclass
class Position:
    """The one-way isolated position: ``side`` +1 long / -1 short, ``qty`` base coin > 0,
    ``entry`` average entry price, ``margin`` isolated margin (reduced by funding paid),
    ``mmr`` maintenance margin rate of its tier, ``liq`` liquidation price.

    ``marginRatio`` is reported as maintenance margin / (margin + unrealised PnL) at the mark
    price (mmr x qty x mark): 1.0 means liquidation, as in Bitget's position "margin ratio"."""

    symbol: str
    side: int
    qty: float
    entry: float
    margin: float
    leverage: int
    mmr: float
    liq: float
    c_time: int
    u_time: int
    open_fee: float = 0.0
    close_fee: float = 0.0
    funding: float = 0.0       # paid (> 0) / received (< 0)
    achieved: float = 0.0      # gross realised PnL of partial closes

    @property
    def hold_side(self) -> str:
        return "long" if self.side > 0 else "short"

    def to_bitget(self, mark: float) -> dict:
        upnl = self.side * self.qty * (mark - self.entry)
        value = self.qty * mark
        ratio = (self.mmr * value) / (self.margin + upnl) if self.margin + upnl > 0 else 1.0
        return {
            "marginCoin": "USDT", "symbol": self.symbol, "holdSide": self.hold_side, "openDelegateSize": "0",
            "marginSize": num(self.margin), "available": num(self.qty), "locked": "0", "total": num(self.qty),
            "leverage": str(self.leverage), "achievedProfits": num(self.achieved), "openPriceAvg": num(self.entry),
            "marginMode": "isolated", "posMode": "one_way_mode", "unrealizedPL": num(upnl),
            "liquidationPrice": num(self.liq), "keepMarginRate": num(self.mmr), "markPrice": num(mark),
            "marginRatio": num(round(ratio, 10)), "breakEvenPrice": "", "totalFee": num(-self.open_fee),
            "deductedFee": num(self.open_fee), "cTime": str(self.c_time), "uTime": str(self.u_time),
        }


@dataclass
class Fill:
    """One execution. ``fee`` USDT paid (> 0); ``profit`` gross realised PnL of a closing fill."""

    trade_id: str
    order_id: str
    symbol: str
    side: str
    price: float
    qty: float
    fee: float
    profit: float
    trade_side: str           # "open" | "close"
    scope: str                # "taker" | "maker"
    c_time: int
    order_type: str = "market"
    extra: dict = field(default_factory=dict)

    def to_bitget(self) -> dict:
        return {
            "tradeId": self.trade_id, "symbol": self.symbol, "orderId": self.order_id, "price": num(self.price),
            "baseVolume": num(self.qty), "feeDetail": [{"deduction": "no", "feeCoin": "USDT",
                                                        "totalDeductionFee": "0", "totalFee": num(-self.fee)}],
            "side": self.side, "quoteVolume": num(self.qty * self.price), "profit": num(self.profit),
            "enterPointSource": "API", "tradeSide": self.trade_side, "posMode": "one_way_mode",
            "tradeScope": self.scope, "orderType": self.order_type, "cTime": str(self.c_time),
        }


def fee_detail_json(fee: float) -> str:
    """Bitget's ``feeDetail`` string of websocket order updates."""
    return json.dumps({"USDT": {"feeCoinCode": "USDT", "totalFee": num(-fee)}})
