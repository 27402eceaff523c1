"""TP/SL plan orders of the Bitget simulator (place-tpsl-order, presets, cancel-plan-order).

Mixed into :class:`perpbot.devtools.bitget_sim.engine.Engine`. Rules: pos_profit / pos_loss
close the whole position and there is one of each (a new one replaces the old);
profit_plan / loss_plan close ``size``; moving_plan trails ``rangeRate`` percent behind the best
price once ``triggerPrice`` is reached. Plans need an open position on ``holdSide`` (43023);
trigger levels must lie on the right side of the last price. The entry's preset TP/SL become
pos_profit / pos_loss when it fills; when the position closes every plan is cancelled.
"""

from __future__ import annotations

from perpbot.devtools.bitget_sim.errors import SimError, bad_param
from perpbot.devtools.bitget_sim.errors import parse_price as _price
from perpbot.devtools.bitget_sim.models import PROFIT_TYPES, TPSL_TYPES, Order, Plan


class PlansMixin:
    """Plan-order methods of the engine (they use its ``plans``, ``position``, ``events``...)."""

    def place_tpsl(self, params: dict) -> Plan:
        """place-tpsl-order: planType pos_profit / pos_loss / profit_plan / loss_plan / moving_plan."""
        self.check_symbol(params)
        ptype = params.get("planType")
        if ptype not in TPSL_TYPES:
            raise bad_param(f"planType={ptype!r} is not one of {', '.join(TPSL_TYPES)}")
        trigger = _price(params, "triggerPrice")
        if trigger is None:
            raise bad_param("triggerPrice is required")
        if not self._on_grid(trigger, self.market.tick):
            raise SimError("41103", "param price scale error error")
        hold = params.get("holdSide")
        hold = {"buy": "long", "sell": "short"}.get(hold, hold)   # one-way mode: buy = the long position
        if hold not in ("long", "short"):
            raise bad_param(f"holdSide={params.get('holdSide')!r} is not long/short (or buy/sell in one-way mode)")
        pos = self.position
        if pos is None or pos.hold_side != hold:
            raise SimError("43023", "Insufficient position, can not set profit or stop loss")
        size = _price(params, "size") if ptype not in ("pos_profit", "pos_loss") else None
        if ptype in ("profit_plan", "loss_plan", "moving_plan") and size is None:
            raise bad_param("size is required for a partial plan")
        if ptype != "moving_plan":
            is_tp = ptype in PROFIT_TYPES
            self._check_levels(pos.side, trigger if is_tp else None, None if is_tp else trigger)
        rate = 0.0
        if ptype == "moving_plan":
            rate = float(params.get("rangeRate") or params.get("callbackRatio") or 0) / 100.0
            if not 0 < rate <= 0.1:
                raise bad_param("rangeRate (callback, percent) must be in (0, 10]")
        execute = _price(params, "executePrice") or 0.0
        if ptype in ("pos_profit", "pos_loss"):  # one position TP / SL each: the new one replaces the old
            for p in self.plans.values():
                if p.status == "live" and p.plan_type == ptype:
                    self._cancel_plan(p)
        plan = Plan(order_id=self.new_id(), client_oid=self._client_oid(params), symbol=self.symbol, plan_type=ptype,
                    trigger_price=trigger, trigger_type=params.get("triggerType") or "mark_price",
                    execute_price=execute, hold_side=hold, size=size, c_time=self.now, range_rate=rate)
        self.plans[plan.order_id] = plan
        self.by_client[plan.client_oid] = plan.order_id
        self.events.append(("orders-algo", plan))
        return plan

    def add_preset_plans(self, order: Order) -> None:
        """The entry's preset TP/SL become the position's pos_profit / pos_loss."""
        pos = self.position
        if pos is None:
            return
        for ptype, level in (("pos_profit", order.preset_tp), ("pos_loss", order.preset_sl)):
            if level is None:
                continue
            for p in self.plans.values():
                if p.status == "live" and p.plan_type == ptype:
                    self._cancel_plan(p)
            plan = Plan(order_id=self.new_id(), client_oid=self.new_id(), symbol=self.symbol, plan_type=ptype,
                        trigger_price=level, trigger_type="mark_price", execute_price=0.0, hold_side=pos.hold_side,
                        size=None, c_time=self.now, origin=order.order_id)
            self.plans[plan.order_id] = plan
            self.by_client[plan.client_oid] = plan.order_id
            self.events.append(("orders-algo", plan))

    def _cancel_plan(self, plan: Plan) -> None:
        plan.status = "cancelled"
        plan.u_time = self.now
        self.events.append(("orders-algo", plan))

    def cancel_plans(self, params: dict) -> dict:
        """cancel-plan-order: ``orderIdList`` of {orderId | clientOid}; without a list, every live
        plan of ``planType`` (default all)."""
        self.check_symbol(params)
        ids = params.get("orderIdList")
        ok, failed = [], []
        if ids:
            for item in ids:
                pid = item.get("orderId") or self.by_client.get(str(item.get("clientOid")))
                plan = self.plans.get(str(pid)) if pid else None
                if plan is None or plan.status != "live":
                    failed.append({"orderId": item.get("orderId", ""), "clientOid": item.get("clientOid", ""),
                                   "errorMsg": "Plan order does not exist", "errorCode": "43025"})
                else:
                    self._cancel_plan(plan)
                    ok.append({"orderId": plan.order_id, "clientOid": plan.client_oid})
        else:
            ptype = params.get("planType")
            for plan in self.plans.values():
                if plan.status == "live" and (ptype in (None, "", "profit_loss") or plan.plan_type == ptype):
                    self._cancel_plan(plan)
                    ok.append({"orderId": plan.order_id, "clientOid": plan.client_oid})
        return {"successList": ok, "failureList": failed}

    def cancel_position_plans(self) -> None:
        for plan in self.plans.values():
            if plan.status == "live":
                self._cancel_plan(plan)

