"""Account engine of the Bitget simulator, one per traded symbol: leverage / margin / position
mode, orders, TP/SL plan orders, executions and the one-way isolated position of that symbol.
The USDT balance lives in a :class:`~perpbot.devtools.bitget_sim.account.Wallet` shared by the
engines of one account (``available`` and ``equity`` are account-wide).

All money math calls :mod:`perpbot.sim.accounting` (trade_fee, initial_margin,
unrealized_pnl, liquidation_price, maintenance_margin_rate, slipped_price), the functions the
backtester's loop and the paper exchange use, so equal inputs give equal fees, margins and
liquidation prices. Per-candle matching is in :mod:`perpbot.devtools.bitget_sim.matching`.

Rules (Bitget v2 one-way mode; where Bitget's exact behaviour is unknown the rule is ours):

* orders must say ``marginMode: isolated`` (the simulator accounts isolated margin only);
  ``tradeSide`` is refused in one-way mode (40774);
* opening size >= minTradeNum (45111) and notional >= 5 USDT at the reference price (45110);
  sizes on the lot grid (40808), limit prices on the tick grid (41103);
* the opening part reserves initial margin + taker fee at the reference price (limit price,
  else last close) from the available balance (40762 when short);
* duplicate ``clientOid`` -> 40786 "Duplicate clientOid"; unknown order -> 40768;
* reduceOnly with no opposite position -> 22002; a non-reduce-only opposite order larger
  than the position closes it and opens the rest the other way;
* preset TP/SL (``presetStopSurplusPrice`` / ``presetStopLossPrice``) must lie on the right
  side of the last price (40917 long stop, 45122 short stop, 40915 take-profit); TP/SL plans
  are in :mod:`perpbot.devtools.bitget_sim.plans`.
"""

from __future__ import annotations

import math

import numpy as np

from perpbot.devtools.bitget_sim.account import AccountSettingsMixin, Wallet
from perpbot.devtools.bitget_sim.errors import SimError, bad_param, parse_price as _price
from perpbot.devtools.bitget_sim.market import TIERS, ReplayMarket, num
from perpbot.devtools.bitget_sim.matching import close_next_candle, fill_market
from perpbot.devtools.bitget_sim.models import Fill, Order, Plan, Position
from perpbot.devtools.bitget_sim.plans import PlansMixin
from perpbot.sim.accounting import (
    initial_margin, liquidation_price, maintenance_margin_rate, slipped_price, trade_fee, unrealized_pnl,
)

EPS = 1e-9
_TIER_UPPER = np.array([t[0] for t in TIERS], dtype=np.float64)
_TIER_MMR = np.array([t[1] for t in TIERS], dtype=np.float64)


class Engine(AccountSettingsMixin, PlansMixin):
    """The trading of ``market.symbol`` on a USDT-futures account (its :class:`Wallet`).

    Args:
        market: the replayed market (clock, prices, contract rules).
        capital: starting balance, USDT (used only when ``wallet`` is None: a new wallet).
        slippage: fraction against the taker on market and trigger fills.
        market_fill: "next_open" or "last_close" (see :class:`BitgetSim`).
        leverage: default leverage.
        wallet: the account's shared wallet (the engine registers in ``wallet.engines``); None
            creates a wallet of ``capital`` for this engine alone.
    Raises ValueError for a bad ``market_fill``, capital <= 0 or slippage < 0, or a symbol
    already registered in ``wallet``.
    """

    def __init__(self, market: ReplayMarket, capital: float = 1000.0, slippage: float = 0.0,
                 market_fill: str = "next_open", leverage: int = 10, wallet: Wallet | None = None) -> None:
        if market_fill not in ("next_open", "last_close"):
            raise ValueError(f"market_fill must be 'next_open' or 'last_close', got {market_fill!r}")
        if not capital > 0:
            raise ValueError(f"capital must be > 0 USDT, got {capital}")
        if slippage < 0:
            raise ValueError(f"slippage must be >= 0, got {slippage}")
        self.market = market
        self.symbol = market.symbol
        spec = market.spec
        self.taker = float(spec["takerFeeRate"])
        self.maker = float(spec["makerFeeRate"])
        self.min_qty = float(spec["minTradeNum"])
        self.min_usdt = float(spec["minTradeUSDT"])
        self.max_lever = int(spec["maxLever"])
        self.slippage = slippage
        self.market_fill = market_fill
        self.wallet = wallet if wallet is not None else Wallet(capital)
        if any(e.symbol == self.symbol for e in self.wallet.engines):
            raise ValueError(f"the wallet already trades {self.symbol}")
        self.wallet.engines.append(self)
        self.leverage = int(leverage)
        self.margin_mode = "crossed"      # Bitget's default account setting
        self.pos_mode = "one_way_mode"
        self.position: Position | None = None
        self.orders: dict[str, Order] = {}
        self.by_client: dict[str, str] = {}
        self.plans: dict[str, Plan] = {}
        self.fills: list[Fill] = []
        self.bills: list[dict] = []       # funding settlements: time, rate, mark, qty, amount
        self.events: list[tuple[str, object]] = []   # for the websocket hub
        self.faults = None                # set by BitgetSim

    # ---- helpers --------------------------------------------------------------------------------------
    @property
    def balance(self) -> float:
        """The account's wallet balance, USDT (shared by every symbol of the wallet)."""
        return self.wallet.balance

    @balance.setter
    def balance(self, value: float) -> None:
        self.wallet.balance = value

    def new_id(self) -> str:
        return self.wallet.new_id()

    @property
    def now(self) -> int:
        return self.market.now_ms

    def frozen(self) -> float:
        """USDT reserved by this symbol's live orders."""
        return sum(o.reserved for o in self.orders.values() if o.open)

    def available(self) -> float:
        """Account-wide: balance - every symbol's position margin and frozen order margin (USDT)."""
        return self.wallet.available()

    def upnl(self) -> float:
        """Unrealised PnL of this symbol's position at its last price (USDT)."""
        p = self.position
        return unrealized_pnl(p.side, p.qty, p.entry, self.market.last) if p else 0.0

    def equity(self) -> float:
        """Account equity: balance + every symbol's unrealised PnL (USDT)."""
        return self.wallet.equity()

    def check_symbol(self, params: dict) -> str:
        sym = (params.get("symbol") or "").upper()
        if not sym:
            raise SimError("40019", "Parameter symbol cannot be empty")
        if sym != self.symbol:
            raise SimError("40034", f"Parameter {sym} does not exist (the simulator trades {self.symbol})")
        if (params.get("productType") or "").upper() != "USDT-FUTURES":
            raise SimError("40099", "The exchange environment is incorrect (sim serves productType USDT-FUTURES)")
        return sym

    def _on_grid(self, x: float, step: float) -> bool:
        return abs(x / step - round(x / step)) < 1e-6

    # ---- orders ---------------------------------------------------------------------------------------
    def _client_oid(self, params: dict) -> str:
        coid = params.get("clientOid")
        if coid in (None, ""):
            return self.new_id()
        coid = str(coid)
        if len(coid) > 50:
            raise SimError("40305", "Client_oid length is not greater than 50, and cannot be Martian characters")
        if coid in self.by_client:
            raise SimError("40786", "Duplicate clientOid")
        return coid

    def place_order(self, params: dict) -> Order:
        """Validate and record a market / limit order (rules in the module docstring)."""
        self.check_symbol(params)
        fault = self.faults.take("reject", "/api/v2/mix/order/place-order") if self.faults else None
        if fault is not None:
            raise SimError(fault["code"], fault["msg"])
        side = params.get("side")
        otype = params.get("orderType")
        if side not in ("buy", "sell"):
            raise bad_param(f"side={side!r} is not buy or sell")
        if otype not in ("market", "limit"):
            raise bad_param(f"orderType={otype!r} is not market or limit")
        if params.get("tradeSide"):
            raise SimError("40774", "The order type for unilateral position must also be the unilateral position type.")
        mm = params.get("marginMode")
        if mm != "isolated":
            raise bad_param(f"marginMode={mm!r}: the simulator accounts isolated margin only")
        if (params.get("marginCoin") or "").upper() != "USDT":
            raise SimError("40019", "Parameter marginCoin cannot be empty")
        try:
            size = float(params.get("size", ""))
        except ValueError:
            raise bad_param(f"size={params.get('size')!r} is not a number") from None
        if not size > 0 or not self._on_grid(size, self.market.lot):
            raise SimError("40808", f"Parameter verification exception size checkBDScale error value={params.get('size')} "
                                    f"checkScale={self.market.spec['volumePlace']}")
        price = _price(params, "price") if otype == "limit" else None
        if otype == "limit" and price is None:
            raise bad_param("price is required for a limit order")
        if price is not None and not self._on_grid(price, self.market.tick):
            raise SimError("41103", "param price scale error error")
        force = (params.get("force") or "gtc").lower()
        if force not in ("gtc", "ioc", "fok", "post_only"):
            raise bad_param(f"force={force!r} is not gtc, ioc, fok or post_only")
        reduce_only = (params.get("reduceOnly") or "NO").upper() == "YES"
        sgn = 1 if side == "buy" else -1
        pos = self.position
        if reduce_only and (pos is None or pos.side != -sgn):
            raise SimError("22002", "No position to close")
        ref = price if price is not None else self.market.last
        closing = min(size, pos.qty) if (pos is not None and pos.side == -sgn) else 0.0
        opening = 0.0 if reduce_only else round(size - closing, 10)
        if opening > EPS:
            if opening < self.min_qty - EPS:
                raise SimError("45111", f"less than the minimum order quantity {num(self.min_qty)}")
            if opening * ref < self.min_usdt - EPS:
                raise SimError("45110", f"less than the minimum amount {num(self.min_usdt)} USDT")
        tp, sl = _price(params, "presetStopSurplusPrice"), _price(params, "presetStopLossPrice")
        self._check_levels(sgn, tp, sl)
        reserve = initial_margin(opening, ref, self.leverage) + trade_fee(opening, ref, self.taker) if opening > EPS else 0.0
        if reserve > self.available() + EPS:
            raise SimError("40762", "The order amount exceeds the balance")
        order = Order(order_id=self.new_id(), client_oid=self._client_oid(params), symbol=self.symbol, side=side,
                      order_type=otype, size=size, price=price, reduce_only=reduce_only, force=force,
                      margin_mode="isolated", leverage=self.leverage, c_time=self.now, preset_tp=tp, preset_sl=sl,
                      reserved=reserve)
        if otype == "market" and self.faults is not None:
            f = self.faults.take("partial", "/api/v2/mix/order/place-order")
            if f is not None:
                order.fill_fraction = f["fraction"]
        self.orders[order.order_id] = order
        self.by_client[order.client_oid] = order.order_id
        self.events.append(("orders", order))
        if otype == "market" and self.market_fill == "last_close":
            fill_market(self, order, self.market.last, self.now)
        elif force == "post_only" and price is not None:
            bid, ask, _ = self.market.book_top()
            if (side == "buy" and price >= ask) or (side == "sell" and price <= bid):
                self._cancel(order)  # would take liquidity
        return order

    def _check_levels(self, sgn: int, tp: float | None, sl: float | None) -> None:
        last = self.market.last
        if sl is not None:
            if sgn > 0 and sl >= last:
                raise SimError("40917", f"Stop price for long positions please < mark price {num(last)}")
            if sgn < 0 and sl <= last:
                raise SimError("45122", f"Short position stop loss price please > mark price {num(last)}")
        if tp is not None and ((sgn > 0 and tp <= last) or (sgn < 0 and tp >= last)):
            raise SimError("40915", f"Take profit price is on the wrong side of mark price {num(last)}")

    def find_order(self, params: dict) -> Order:
        oid = params.get("orderId")
        coid = params.get("clientOid")
        if not oid and coid:
            oid = self.by_client.get(str(coid))
        order = self.orders.get(str(oid)) if oid else None
        if order is None:
            raise SimError("40768", "Order does not exist")
        return order

    def _cancel(self, order: Order) -> None:
        order.status = "canceled"
        order.reserved = 0.0
        order.u_time = self.now
        self.events.append(("orders", order))

    def cancel_order(self, params: dict) -> Order:
        self.check_symbol(params)
        order = self.find_order(params)
        if not order.open:
            raise SimError("40768", "Order does not exist")  # Bitget: filled / cancelled orders cannot be cancelled
        self._cancel(order)
        return order

    # ---- executions -------------------------------------------------------------------------------------
    def execute(self, order: Order, qty: float, price: float, scope: str, t: int) -> None:
        """Fill ``qty`` of ``order`` at ``price`` (already slipped): close the opposite position
        first, then open / add the rest (nothing opens for reduce-only)."""
        sgn = 1 if order.side == "buy" else -1
        rate = self.taker if scope == "taker" else self.maker
        pos = self.position
        rest, done = qty, 0.0
        if pos is not None and pos.side == -sgn:
            q = min(rest, pos.qty)
            self._reduce(order, q, price, rate, scope, t)
            rest, done = round(rest - q, 10), q
        if order.reduce_only:
            if rest > EPS:  # nothing left to reduce: the unfilled part is cancelled
                order.size = round(order.size - rest, 10)
            rest = 0.0
        if rest > EPS:
            self._increase(order, sgn, rest, price, rate, scope, t)
            done = round(done + rest, 10)
        before = order.remaining
        order.filled = round(order.filled + done, 10)
        order.cost += price * done
        order.u_time = t
        if order.remaining <= EPS:
            order.status = "filled"
            order.reserved = 0.0
        else:
            order.status = "partially_filled"
            order.reserved *= order.remaining / before if before > EPS else 0.0
        self.events.append(("orders", order))
        self.events.append(("positions", None))
        self.events.append(("account", None))

    def _fill(self, order: Order, q: float, price: float, fee: float, profit: float, trade_side: str,
              scope: str, t: int) -> None:
        f = Fill(trade_id=self.new_id(), order_id=order.order_id, symbol=self.symbol, side=order.side, price=price,
                 qty=q, fee=fee, profit=profit, trade_side=trade_side, scope=scope, c_time=t,
                 order_type=order.order_type)
        self.fills.append(f)
        order.fee += fee
        order.profit += profit
        self.events.append(("fill", f))

    def _increase(self, order: Order, sgn: int, q: float, price: float, rate: float, scope: str, t: int) -> None:
        fee = trade_fee(q, price, rate)
        self.balance -= fee
        margin = initial_margin(q, price, self.leverage)
        pos = self.position
        if pos is None:
            pos = Position(symbol=self.symbol, side=sgn, qty=q, entry=price, margin=margin, leverage=self.leverage,
                           mmr=0.0, liq=0.0, c_time=t, u_time=t, open_fee=fee)
            self.position = pos
        else:
            pos.entry = (pos.entry * pos.qty + price * q) / (pos.qty + q)
            pos.qty = round(pos.qty + q, 10)
            pos.margin += margin
            pos.open_fee += fee
            pos.u_time = t
        self.update_liq()
        self.market.position_qty = pos.qty
        self._fill(order, q, price, fee, 0.0, "open", scope, t)
        if order.preset_tp is not None or order.preset_sl is not None:
            self.add_preset_plans(order)

    def _reduce(self, order: Order, q: float, price: float, rate: float, scope: str, t: int) -> None:
        pos = self.position
        gross = unrealized_pnl(pos.side, q, pos.entry, price)
        fee = trade_fee(q, price, rate)
        self.balance += gross - fee
        share = q / pos.qty
        pos.margin -= pos.margin * share
        pos.qty = round(pos.qty - q, 10)
        pos.close_fee += fee
        pos.achieved += gross
        pos.u_time = t
        self._fill(order, q, price, fee, gross, "close", scope, t)
        if pos.qty <= EPS:
            self.position = None
            self.market.position_qty = 0.0
            self.cancel_position_plans()
        else:
            self.market.position_qty = pos.qty
            self.update_liq()

    def update_liq(self) -> None:
        """Tier MMR from the entry notional and the isolated liquidation price (accounting core)."""
        pos = self.position
        pos.mmr = maintenance_margin_rate(pos.qty * pos.entry, _TIER_UPPER, _TIER_MMR)
        pos.liq = liquidation_price(pos.side, pos.qty, pos.entry, pos.margin, pos.mmr, self.taker)

    def market_price(self, reference: float, is_buy: bool) -> float:
        """A taker fill price: ``reference`` moved by the slippage against the taker."""
        return slipped_price(reference, is_buy, self.slippage) if self.slippage else reference

    def close_next_candle(self) -> dict:
        """Close the next candle of the replay (see :mod:`perpbot.devtools.bitget_sim.matching`)."""
        return close_next_candle(self)

    # ---- snapshot ---------------------------------------------------------------------------------------
    def snapshot(self) -> dict:
        """This symbol's state: ``symbol``, account-wide ``balance`` / ``equity`` / ``available``
        (USDT), its leverage, modes, position (None when flat), orders, plans, fills, funding bills."""
        pos = self.position
        return {
            "symbol": self.symbol, "time": self.now, "balance": self.balance, "equity": self.equity(), "available": self.available(),
            "leverage": self.leverage, "margin_mode": self.margin_mode, "pos_mode": self.pos_mode,
            "position": None if pos is None else {
                "side": pos.side, "qty": pos.qty, "entry_price": pos.entry, "margin": pos.margin,
                "liquidation_price": pos.liq, "mmr": pos.mmr, "funding": pos.funding, "open_fee": pos.open_fee},
            "orders": [o.to_bitget() for o in self.orders.values()],
            "plans": [p.to_bitget() for p in self.plans.values()],
            "fills": [f.to_bitget() for f in self.fills],
            "bills": list(self.bills),
            "last_price": self.market.last if math.isfinite(self.market.last) else None,
        }
