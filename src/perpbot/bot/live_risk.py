"""Risk rules of the live loop: the backtest kernel's entry rules, applied to live equity.

The rules and their order are those of :mod:`perpbot.sim.kernel` (``_try_entry`` and the
close of ``run_bars``), computed with the same compiled functions
(:func:`~perpbot.sim.sizing.position_size`, :func:`~perpbot.sim.sizing.protective_levels`,
:func:`~perpbot.sim.accounting.slipped_price`) on a :class:`~perpbot.sim.engine.AccountConfig`
built from the settings (and the venue's lot / tick / minimums / taker fee when known):

* at each candle close: the equity peak is updated, the max-drawdown halt (equity <= peak x
  (1 - max_drawdown), for the rest of the run) and the daily-loss halt (equity <= the day's
  starting equity x (1 - max_daily_loss), until the next UTC day) are checked; then, when the
  next candle opens on a new UTC day, the day's starting equity is reset and a daily halt lifted;
* an entry for the next candle is refused (risk event) when a halt is in force (``halted``,
  value 3 = drawdown / 2 = daily / 8 = clock skew, the live loop's own halt), during the cooldown after a losing trade (``cooldown``:
  entry bar <= exit bar + cooldown_bars), without equity (``no_equity``) or when the size
  is below the minimum (``below_min_size``);
* size and protective levels use the expected fill (last close moved by the configured
  slippage) and the ATR of the decision candle; live, the venue fills at the next open, and
  the stop-loss / take-profit are then re-placed from the actual fill price, as the kernel sets
  them from its fill.

Bars are bar numbers (candle open ms // timeframe ms), so cooldowns survive restarts and gaps.

The live loop's own halt, **clock skew**: :meth:`LiveRisk.on_timestamp_refused` counts the
cycles that failed because the venue refused the request timestamps (after a clock re-sync);
``clock_halt_cycles`` of them in a row halt entries, and as many complete cycles in a row
(:meth:`LiveRisk.on_cycle_ok`) lift the halt. It is not restored on resume (a restart syncs the
clock afresh).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from perpbot.sim.config import AccountConfig
from perpbot.sim import kernel as K
from perpbot.sim.accounting import slipped_price
from perpbot.sim.sizing import limit_entry_price, position_size, trade_leverage, within_margin_cap
from perpbot.risk import rules as R
from perpbot.types import RiskEvent

DAY_MS = 86_400_000


def live_config(settings, strategy: str, rules=None) -> AccountConfig:
    """The risk/market configuration of a live run (:meth:`AccountConfig.for_live`)."""
    return AccountConfig.for_live(settings, strategy, rules)


def levels(cfg: AccountConfig, side: int, price: float, atr: float, support: float = math.nan,
           resistance: float = math.nan) -> tuple[float, float, float]:
    """(stop-loss, take-profit, stop distance) in USDT for an entry at ``price`` (kernel rule; ``support`` /
    ``resistance`` for stop_mode "levels")."""
    return cfg.levels(side, price, atr, support, resistance)


@dataclass
class EntryPlan:
    """An allowed entry: side +1/-1, qty (base), expected fill price, stop-loss, take-profit (USDT), and
    the leverage it is opened at (a whole number; the kernel's :func:`~perpbot.sim.sizing.trade_leverage`)."""

    side: int
    qty: float
    price: float
    stop_loss: float
    take_profit: float
    stop_distance: float
    atr: float
    support: float = math.nan     # stop_mode "levels": the levels it was planned at (USDT)
    resistance: float = math.nan
    leverage: float = 1.0
    limit_price: float = math.nan  # entry_order "limit": the post-only limit price (USDT); NaN: a market entry
    scale: float = 1.0             # the decision's size scale it was sized with


class LiveRisk:
    """Halts, cooldown and sizing of the live loop (module docstring). All money USDT."""

    def __init__(self, cfg: AccountConfig, tf_ms: int, clock_halt_cycles: int = 3) -> None:
        self.cfg = cfg
        self.clock_halt_cycles = max(1, int(clock_halt_cycles))
        self.clock_refusals = 0  # consecutive cycles failed on a refused timestamp
        self.clock_ok = 0        # consecutive complete cycles while the clock halt is in force
        self.params = cfg.params()
        self.tf_ms = tf_ms
        self.peak: float | None = None
        self.day_start: float | None = None
        self.next_day_ms = -1
        self.halt_day = False
        self.halt_dd = False
        self.halt_clock = False
        self.cooldown_until = -1
        # compile the risk engine's functions for the live argument types now, not in a cycle
        R.drawdown_halt(1.0, 1.0, 0.5), R.daily_loss_halt(1.0, 1.0, 0.5), R.next_utc_midnight(0)
        R.cooldown_after(0.0, 0.0, 0.0, -1.0), R.entry_veto(False, False, 0, 0.0, -1.0, 1.0)
        R.risk_reward_short(1.0, 2.0, 1.0, 1.5), R.reward_to_risk(1.0, 2.0, 1.0)

    def on_close(self, candle_open_ms: int, equity: float) -> list[tuple[str, float]]:
        """Account for the equity at a candle's close; returns new halt events (label, value)."""
        if self.peak is None:
            self.peak = equity
        if self.day_start is None:
            self.day_start = equity
            self.next_day_ms = int(R.next_utc_midnight(candle_open_ms))
        events = []
        self.peak = max(self.peak, equity)
        if not self.halt_dd and R.drawdown_halt(equity, self.peak, self.cfg.max_drawdown):
            self.halt_dd = True
            events.append((RiskEvent.MAX_DRAWDOWN_HALT.label, equity / self.peak - 1.0))
        if not self.halt_day and R.daily_loss_halt(equity, self.day_start, self.cfg.max_daily_loss):
            self.halt_day = True
            events.append((RiskEvent.DAILY_LOSS_HALT.label, equity / self.day_start - 1.0))
        nxt = candle_open_ms + self.tf_ms
        if nxt >= self.next_day_ms:  # the next candle opens on a new UTC day
            self.next_day_ms = int(R.next_utc_midnight(nxt))
            self.day_start = equity
            self.halt_day = False
        return events

    def on_timestamp_refused(self) -> int | None:
        """A cycle failed because the venue refused its timestamps; returns the number of such
        cycles in a row when this one starts the clock halt, else None."""
        self.clock_refusals += 1
        self.clock_ok = 0
        if self.halt_clock or self.clock_refusals < self.clock_halt_cycles:
            return None
        self.halt_clock = True
        return self.clock_refusals

    def on_cycle_ok(self) -> int | None:
        """A cycle got through to the venue; returns the number of complete cycles in a row when
        this one lifts the clock halt, else None."""
        self.clock_refusals = 0
        if not self.halt_clock:
            return None
        self.clock_ok += 1
        if self.clock_ok < self.clock_halt_cycles:
            return None
        n, self.clock_ok, self.halt_clock = self.clock_ok, 0, False
        return n

    def on_trade_closed(self, exit_bar: int, pnl: float) -> None:
        """A losing trade starts the cooldown (no entry while entry bar <= exit bar + cooldown_bars)."""
        self.cooldown_until = int(R.cooldown_after(float(pnl), float(exit_bar), float(self.cfg.cooldown_bars),
                                                   float(self.cooldown_until)))

    def plan_entry(self, bar: int, side: int, price: float, atr: float, equity: float,
                   scale: float = 1.0, budget_veto: tuple[str, float] | None = None,
                   margin_cap: float = math.inf, support: float = math.nan,
                   resistance: float = math.nan, market: bool = False) -> EntryPlan | tuple[str, float]:
        """The entry at bar ``bar`` (the next candle) if the rules allow it, else the veto
        (risk-event label, value) exactly as the kernel's ``_try_entry`` records it. ``scale``:
        the decision's size scale (the kernel's per-bar ``size``; 1.0 = the configured size).
        A node over several symbols adds its budget (:class:`~perpbot.bot.live_budget.LiveBudget`):
        ``budget_veto`` (checked after the kernel's own vetoes) and ``margin_cap`` (USDT of initial
        margin + fee: <= 0 vetoes ``margin_budget``, else the size shrinks to fit), in the kernel's order.
        ``support`` / ``resistance``: the recent levels (stop_mode "levels"; a ``risk_reward`` veto as the kernel's).
        ``entry_order = "limit"`` (unless ``market``: a limit entry's market fallback): a post-only limit
        entry at :func:`~perpbot.sim.sizing.limit_entry_price` of ``price``, sized and protected as the
        kernel fills it (at that price, no slippage)."""
        code, value = R.entry_veto(self.halt_dd, self.halt_day, R.EV_CLOCK_SKEW_HALT if self.halt_clock else 0,
                                   float(bar), float(self.cooldown_until), float(equity))
        if code != R.ALLOWED:
            return RiskEvent(code).label, float(value)
        if budget_veto is not None:
            return budget_veto
        if margin_cap <= 0:
            return RiskEvent.MARGIN_BUDGET.label, float(margin_cap)
        p, cfg = self.params, self.cfg
        limit = cfg.limit_offset > 0 and not market
        fill = (limit_entry_price(int(side), float(price), cfg.limit_offset, cfg.tick_size) if limit
                else slipped_price(float(price), side > 0, cfg.slippage))
        sl, tp, dist = levels(cfg, side, fill, atr, support, resistance)
        if cfg.stop_mode == "levels" and R.risk_reward_short(fill, tp, dist, cfg.min_risk_reward):
            return RiskEvent.RISK_REWARD.label, float(R.reward_to_risk(fill, tp, dist))
        lev = trade_leverage(cfg.adaptive_leverage, cfg.leverage, cfg.leverage_min, cfg.leverage_target_atr,
                             float(atr), fill, float(scale))
        size_fee = max(cfg.taker_fee, cfg.maker_fee) if limit else cfg.taker_fee  # the kernel's: margin + entry fee fit
        qty = position_size(int(p[K.P_SIZING]), float(equity), fill, dist, float(atr), cfg.risk * scale,
                            cfg.equity_fraction * scale, cfg.sizing_atr_mult, lev, size_fee, cfg.lot_size)
        qty = within_margin_cap(qty, float(margin_cap), fill, lev, size_fee, cfg.lot_size)
        if R.below_min_size(qty, fill, cfg.min_qty, cfg.min_notional):
            return RiskEvent.BELOW_MIN_SIZE.label, float(qty)
        return EntryPlan(side, float(qty), fill, sl, tp, dist, float(atr), float(support), float(resistance), float(lev),
                         fill if limit else math.nan, float(scale))

    def restore(self, ledger, run_id: int, now: pd.Timestamp | None = None) -> None:
        """Continue a resumed run: equity peak, drawdown halt, today's starting equity / daily
        halt and the cooldown of its last losing trade, from the ledger."""
        now = now or pd.Timestamp.now(tz="UTC")
        midnight = now.floor("1D")
        eq = ledger.equity(run_id)
        if len(eq):
            self.peak = float(eq.max())
            before = eq[eq.index < midnight]
            self.day_start = float(before.iloc[-1]) if len(before) else float(eq.iloc[0])
            self.next_day_ms = int(midnight.value // 1_000_000) + DAY_MS
        ev = ledger.risk_events(run_id)
        if len(ev):
            self.halt_dd = bool((ev["event"] == RiskEvent.MAX_DRAWDOWN_HALT.label).any())
            self.halt_day = bool(((ev["event"] == RiskEvent.DAILY_LOSS_HALT.label) & (ev["time"] >= midnight)).any())
        trades = ledger.trades(run_id)
        if len(trades):
            last = trades.iloc[-1]
            if last.pnl < 0 and not math.isnan(last.exit_bar):
                self.on_trade_closed(int(last.exit_bar), float(last.pnl))
