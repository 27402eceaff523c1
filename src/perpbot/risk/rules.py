"""The one risk engine: the entry vetoes, halts, cooldown, minimum size and leverage cap as
named compiled functions, called by the account loop (:mod:`perpbot.sim.kernel`) and by the
live loop (:class:`perpbot.bot.live_risk.LiveRisk`), so both take the same decisions and record
the same reasons (codes of :class:`perpbot.types.RiskEvent`).

Rules (fractions, USDT, bar numbers; days are UTC days):

* **max-drawdown halt**: equity at a close <= peak equity x (1 - max_drawdown); for the rest of the run;
* **daily-loss halt**: equity at a close <= the day's starting equity x (1 - max_daily_loss);
  until the next UTC day (the day's starting equity is the equity at the first bar of the day);
* **cooldown**: after a losing trade closed at bar ``b``, no entry at bars <= b + cooldown_bars;
* an entry is vetoed, in this order, by a halt in force (``halted``, value = the halt's code:
  3 drawdown, 2 daily loss, or the live loop's own, 8 clock skew), the cooldown (``cooldown``,
  value = the last bar of the cooldown), no equity (``no_equity``, value = equity), and a size
  below the market's minimum quantity or notional (``below_min_size``, value = the qty);
* **leverage cap**: the largest quantity whose initial margin plus entry fee fits in the equity;
* **risk : reward** (stop mode "levels"): an entry whose reward (take-profit - fill) is below
  ``min_risk_reward`` x its risk (the stop distance), or unknown (no levels), is vetoed
  (``risk_reward``, value = reward / risk).
"""

from __future__ import annotations

import math

from numba import njit

from perpbot.types import RiskEvent

ALLOWED = 0
EV_COOLDOWN = int(RiskEvent.COOLDOWN)
EV_DAILY_LOSS_HALT = int(RiskEvent.DAILY_LOSS_HALT)
EV_MAX_DD_HALT = int(RiskEvent.MAX_DRAWDOWN_HALT)
EV_BELOW_MIN = int(RiskEvent.BELOW_MIN_SIZE)
EV_NO_EQUITY = int(RiskEvent.NO_EQUITY)
EV_HALTED = int(RiskEvent.HALTED)
EV_CLOCK_SKEW_HALT = int(RiskEvent.CLOCK_SKEW_HALT)
EV_LIMIT_UNFILLED = int(RiskEvent.LIMIT_UNFILLED)
EV_MAX_POSITIONS = int(RiskEvent.MAX_POSITIONS)
EV_MARGIN_BUDGET = int(RiskEvent.MARGIN_BUDGET)
EV_CORRELATED = int(RiskEvent.CORRELATED)
EV_RISK_REWARD = int(RiskEvent.RISK_REWARD)
MS_PER_DAY = 86_400_000


@njit(cache=True)
def entry_veto(halt_drawdown: bool, halt_daily: bool, halt_code: int, bar: float, cooldown_until: float,
               equity: float):
    """(event code, value) of the rule that vetoes an entry at ``bar``, or (ALLOWED, 0.0).

    ``halt_code``: a further halt in force (the live loop's clock-skew halt code), 0 = none."""
    if halt_drawdown:
        return EV_HALTED, float(EV_MAX_DD_HALT)
    if halt_daily:
        return EV_HALTED, float(EV_DAILY_LOSS_HALT)
    if halt_code != 0:
        return EV_HALTED, float(halt_code)
    if bar <= cooldown_until:
        return EV_COOLDOWN, float(cooldown_until)
    if equity <= 0.0:
        return EV_NO_EQUITY, float(equity)
    return ALLOWED, 0.0


@njit(cache=True)
def below_min_size(qty: float, price: float, min_qty: float, min_notional: float) -> bool:
    """True when ``qty`` (base) at ``price`` (USDT) is no order: zero, below the minimum quantity
    or below the minimum notional (USDT)."""
    return qty <= 0.0 or qty < min_qty or qty * price < min_notional


@njit(cache=True)
def drawdown_halt(equity: float, peak: float, max_drawdown: float) -> bool:
    """True when ``equity`` is at or below ``peak`` x (1 - ``max_drawdown``)."""
    return equity <= peak * (1.0 - max_drawdown)


@njit(cache=True)
def daily_loss_halt(equity: float, day_start: float, max_daily_loss: float) -> bool:
    """True when ``equity`` is at or below the day's starting equity x (1 - ``max_daily_loss``)."""
    return equity <= day_start * (1.0 - max_daily_loss)


@njit(cache=True)
def cooldown_after(pnl: float, exit_bar: float, cooldown_bars: float, cooldown_until: float) -> float:
    """The last bar of the cooldown after a trade closed at ``exit_bar`` with net ``pnl`` (USDT):
    ``exit_bar + cooldown_bars`` after a loss, else the current ``cooldown_until``."""
    if pnl < 0.0 and cooldown_bars > 0:
        return exit_bar + cooldown_bars
    return cooldown_until


@njit(cache=True)
def next_utc_midnight(ts_ms: float) -> float:
    """The first UTC midnight (ms) after the time ``ts_ms`` (ms UTC)."""
    return (ts_ms // MS_PER_DAY + 1) * MS_PER_DAY


@njit(cache=True)
def margin_budget(balance: float, used: float, max_total_margin: float, max_symbol_margin: float) -> float:
    """Initial margin + entry fee (USDT) a portfolio's budget leaves one entry, at the moment of the entry:
    the least of the available balance ``balance - used`` (``used``: the other open positions' initial
    margin), ``max_total_margin x balance - used`` and ``max_symbol_margin x balance`` (fractions of the
    balance; 0 = no such cap). inf when ``used`` is inf (no budget: a single-symbol account)."""
    if used == math.inf:
        return math.inf
    cap = balance - used
    if max_total_margin > 0.0:
        cap = min(cap, max_total_margin * balance - used)
    if max_symbol_margin > 0.0:
        cap = min(cap, max_symbol_margin * balance)
    return cap


@njit(cache=True)
def max_qty_for_equity(equity: float, price: float, leverage: float, fee_rate: float) -> float:
    """Leverage cap: the largest qty whose initial margin plus entry fee fits in ``equity`` (before lot rounding)."""
    return equity / (price * (1.0 / leverage + fee_rate))


@njit(cache=True)
def risk_reward_short(fill: float, take_profit: float, stop_distance: float, min_risk_reward: float) -> bool:
    """True when an entry at ``fill`` earns less than ``min_risk_reward`` x ``stop_distance`` at ``take_profit``
    (USDT), or when that is unknown (NaN levels): the ``risk_reward`` veto, value :func:`reward_to_risk`."""
    return not abs(take_profit - fill) >= min_risk_reward * stop_distance


@njit(cache=True)
def reward_to_risk(fill: float, take_profit: float, stop_distance: float) -> float:
    """The reward : risk of an entry at ``fill``: |take-profit - fill| / stop distance (NaN without levels)."""
    return abs(take_profit - fill) / stop_distance
