"""The compiled bar loop: one futures account (isolated margin, one-way) over candles.

Shared by the backtester (all bars in one call), the simulated exchange of the paper loop (one
call per new candle) and a portfolio of symbols (:mod:`perpbot.sim.portfolio_kernel`), so all
produce the same fills by construction. Arithmetic: :mod:`perpbot.sim.accounting`, :mod:`perpbot.sim.sizing`.

Order of events inside bar ``i`` (timestamps mark the candle open, UTC):

1. new UTC day: the day's starting equity is reset and a daily-loss halt lifted;
2. funding: a position held at the open of a bar that carries a funding event pays
   ``side * qty * mark * rate`` out of its isolated margin, at most down to the liquidation
   level (:func:`~perpbot.sim.accounting.funding_charge`); liquidation price updated;
3. the open: a stop / liquidation already crossed fills at the open (gap; beyond the liquidation
   price it liquidates even if it also gapped through the stop); then bar ``i-1``'s signal acts:
   an opposite signal closes the position, a flat account enters if the risk rules allow (else a
   risk event records the veto), or with limit entries (``P_LIMIT_OFFSET`` > 0) places a post-only
   limit order that fills in a bar trading through its price (maker fee, :func:`_work_limit`);
4. intrabar: stop-loss, take-profit and liquidation on the bar's high/low, the losing side first
   when both are touched, unless 1m candles of the bar resolve the order;
5. the close: equity marked at the close, trailing stop moved, drawdown / daily-loss limits checked.

Every close goes through :func:`~perpbot.sim.accounting.close_settlement`: a liquidation loses exactly
the position margin, and a close that would lose more is settled as one, so no trade loses more than
its initial margin + entry fee and equity stays >= 0. ``state`` / ``params``: the ``S_*``, ``P_*`` indices
(:mod:`perpbot.sim.kernel_layout`).
"""

from __future__ import annotations

import math

from numba import njit

from perpbot.sim.accounting import (
    NO_TRIGGER, TRIGGER_SL, candle_trigger, close_settlement, funding_charge, initial_margin,
    is_ambiguous, liquidation_price, maintenance_margin_rate, slipped_price, trade_fee, unrealized_pnl,
)
from perpbot.risk.rules import (  # noqa: F401  (EV_* and MS_PER_DAY re-exported: the loop's codes)
    ALLOWED, EV_BELOW_MIN, EV_COOLDOWN, EV_DAILY_LOSS_HALT, EV_HALTED, EV_LIMIT_UNFILLED, EV_MAX_DD_HALT,
    EV_MARGIN_BUDGET, EV_NO_EQUITY, EV_RISK_REWARD, MS_PER_DAY, below_min_size, cooldown_after, daily_loss_halt,
    drawdown_halt, entry_veto, margin_budget, next_utc_midnight, reward_to_risk, risk_reward_short,
)
from perpbot.sim.kernel_layout import *  # noqa: F401,F403  (the P_/S_/T_/E_/F_/X_ layouts and new_state, re-exported)
from perpbot.sim.sizing import (
    STOP_LEVELS, limit_entry_price, position_size, protective_levels, recent_levels, trade_leverage,
    within_margin_cap,
)

OPEN, CLOSE = 1, 2  # the phases of a bar (run_bars: steps 1-3, steps 4-5)


@njit(cache=True)
def _event(state, events, bar, code, value):
    k = int(state[S_NEVENTS])
    events[k, E_BAR], events[k, E_CODE], events[k, E_VALUE] = bar, code, value
    state[S_NEVENTS] = k + 1


@njit(cache=True)
def _close(state, params, trades, bar, price, reason):
    """Close the open position at ``price`` (before slippage) and write the trade row.

    ``reason`` X_LIQ settles a liquidation; any close that would cost more than the position
    margin becomes one (:func:`~perpbot.sim.accounting.close_settlement`)."""
    side = int(state[S_SIDE])
    qty = state[S_QTY]
    entry = state[S_ENTRY]
    # isolated margin: the balance never loses more than the position margin (see close_settlement)
    fill, gross, exit_fee, cash, liquidated = close_settlement(
        side, qty, entry, state[S_MARGIN], price, params[P_TAKER_FEE], params[P_SLIPPAGE], reason == X_LIQ)
    if liquidated:
        reason = X_LIQ
    state[S_BALANCE] += cash
    pnl = gross - state[S_ENTRY_FEE] - exit_fee - state[S_FUNDING]
    k = int(state[S_NTRADES])
    trades[k, T_SIDE] = side
    trades[k, T_QTY] = qty
    trades[k, T_ENTRY_BAR] = state[S_ENTRY_BAR]
    trades[k, T_ENTRY_PRICE] = entry
    trades[k, T_EXIT_BAR] = bar
    trades[k, T_EXIT_PRICE] = fill
    trades[k, T_REASON] = reason
    trades[k, T_GROSS] = gross
    trades[k, T_FEES] = state[S_ENTRY_FEE] + exit_fee
    trades[k, T_FUNDING] = state[S_FUNDING]
    trades[k, T_PNL] = pnl
    trades[k, T_MARGIN] = qty * entry / state[S_LEV]
    trades[k, T_LEV] = state[S_LEV]
    trades[k, T_SL] = state[S_SL_INIT]
    trades[k, T_TP] = state[S_TP]
    trades[k, T_LIQ] = state[S_LIQ]
    trades[k, T_ENTRY_FEE] = state[S_ENTRY_FEE]
    trades[k, T_EXIT_FEE] = exit_fee
    state[S_NTRADES] = k + 1
    state[S_COOLDOWN_UNTIL] = cooldown_after(pnl, bar, params[P_COOLDOWN], state[S_COOLDOWN_UNTIL])
    state[S_SIDE] = 0.0
    state[S_QTY] = 0.0
    state[S_MARGIN] = 0.0
    state[S_FUNDING] = 0.0
    state[S_ENTRY_FEE] = 0.0
    state[S_SL] = math.nan
    state[S_TP] = math.nan
    state[S_LIQ] = math.nan
    state[S_TRAILED] = 0.0


@njit(cache=True)
def _vetoed(state, params, events, bar):
    """(vetoed, margin budget): True (and the risk event recorded) when the risk rules refuse an entry at bar
    ``bar`` (a halt, the cooldown, no equity, the portfolio's budget: :func:`perpbot.risk.rules.entry_veto`);
    the budget is the portfolio's initial margin left (USDT) from the balance now, after this bar's exits of
    this symbol (inf = none)."""
    equity = state[S_BALANCE]
    code, value = entry_veto(state[S_HALT_DD] > 0, state[S_HALT_DAY] > 0, 0, bar, state[S_COOLDOWN_UNTIL], equity)
    cap = margin_budget(equity, state[S_BUDGET_USED], params[P_BUDGET_TOTAL], params[P_BUDGET_SYMBOL])
    if code == ALLOWED and state[S_BUDGET_VETO] != 0:
        code, value = int(state[S_BUDGET_VETO]), state[S_BUDGET_VALUE]
    elif code == ALLOWED and cap <= 0.0:
        code, value = EV_MARGIN_BUDGET, cap
    if code != ALLOWED:
        _event(state, events, bar, code, value)
        return True, cap
    return False, cap


@njit(cache=True)
def _try_entry(state, params, events, bar, side, price, atr, tier_upper, tier_mmr, scale=1.0, maker=False,
               support=math.nan, resistance=math.nan):
    """Open a position at ``price`` (a market order at the bar's open; with ``maker``, a limit order's
    fill: no slippage, the maker fee) if the risk rules allow; else record the veto.

    ``scale`` multiplies the sizing mode's risk / equity fraction (1.0 = the configured size)."""
    vetoed, cap = _vetoed(state, params, events, bar)
    if vetoed:
        return
    equity = state[S_BALANCE]
    fill = price if maker else slipped_price(price, side > 0, params[P_SLIPPAGE])
    sl, tp, dist = protective_levels(side, fill, int(params[P_STOP_MODE]), params[P_SL], params[P_TP],
                                     atr, params[P_TICK], support, resistance, params[P_LEVELS_BUFFER])
    if int(params[P_STOP_MODE]) == STOP_LEVELS and risk_reward_short(fill, tp, dist, params[P_MIN_RR]):
        _event(state, events, bar, EV_RISK_REWARD, reward_to_risk(fill, tp, dist))
        return
    lev = trade_leverage(params[P_LEV_ADAPTIVE] > 0, params[P_LEVERAGE], params[P_LEV_MIN], params[P_LEV_TARGET_ATR],
                         atr, fill, scale)
    fee_rate = params[P_TAKER_FEE]
    entry_fee_rate = params[P_MAKER_FEE] if maker else fee_rate
    # sized with the entry's own fee when it is higher (a maker fee above the taker fee): margin + entry fee fit
    size_fee = max(fee_rate, entry_fee_rate)
    qty = position_size(int(params[P_SIZING]), equity, fill, dist, atr, params[P_RISK] * scale,
                        params[P_EQUITY_FRAC] * scale, params[P_SIZING_ATR_MULT], lev, size_fee, params[P_LOT])
    qty = within_margin_cap(qty, cap, fill, lev, size_fee, params[P_LOT])  # the portfolio's margin budget
    if below_min_size(qty, fill, params[P_MIN_QTY], params[P_MIN_NOTIONAL]):
        _event(state, events, bar, EV_BELOW_MIN, qty)
        return
    margin = initial_margin(qty, fill, lev)
    fee = trade_fee(qty, fill, entry_fee_rate)
    mmr = maintenance_margin_rate(qty * fill, tier_upper, tier_mmr)
    state[S_BALANCE] -= fee
    state[S_SIDE] = side
    state[S_QTY] = qty
    state[S_ENTRY] = fill
    state[S_MARGIN] = margin
    state[S_LEV] = lev
    state[S_ENTRY_FEE] = fee
    state[S_FUNDING] = 0.0
    state[S_ENTRY_BAR] = bar
    state[S_SL] = sl
    state[S_SL_INIT] = sl
    state[S_TP] = tp
    state[S_MMR] = mmr
    state[S_LIQ] = liquidation_price(side, qty, fill, margin, mmr, fee_rate)
    state[S_TRAILED] = 0.0


@njit(cache=True)
def _levels(params, h, lo, i):
    """(support, resistance) for an entry at bar ``i`` under stop mode "levels" (else NaN, NaN): only
    computed where an entry can happen, not on every bar."""
    return recent_levels(h, lo, i, int(params[P_LEVELS_N]) if int(params[P_STOP_MODE]) == STOP_LEVELS else 0)


@njit(cache=True)
def _place_limit(state, params, bar, side, close, atr, tick, scale):
    """A post-only limit entry at ``close`` x (1 -/+ offset) for a buy / sell (rounded to the tick away
    from the market), resting from bar ``bar`` for ``P_LIMIT_BARS`` bars; replaces a resting one."""
    price = limit_entry_price(side, close, params[P_LIMIT_OFFSET], tick)
    state[S_PEND_SIDE] = side
    state[S_PEND_PRICE] = price
    state[S_PEND_PLACED] = bar
    state[S_PEND_UNTIL] = bar + max(1.0, params[P_LIMIT_BARS]) - 1.0
    state[S_PEND_SCALE] = scale
    state[S_PEND_ATR] = atr


@njit(cache=True)
def _work_limit(state, params, events, bar, o, h, lo, tier_upper, tier_mmr, support, resistance):
    """Bar ``bar`` of a resting limit entry (flat account). It fills at its price, maker fee, no
    slippage, only when the bar trades THROUGH it (low < price for a buy, high > price for a sell;
    a touch is not a fill). Post-only: when the bar it is placed in already opens through it, the venue
    would reject it. Rejected, or not filled by its last bar: a ``limit_unfilled`` risk event (value =
    its price), then a market entry at this open when ``P_LIMIT_FALLBACK`` is set."""
    side = int(state[S_PEND_SIDE])
    price = state[S_PEND_PRICE]
    rejected = bar == state[S_PEND_PLACED] and ((side > 0 and o <= price) or (side < 0 and o >= price))
    if rejected or bar > state[S_PEND_UNTIL]:
        state[S_PEND_SIDE] = 0.0
        _event(state, events, bar, EV_LIMIT_UNFILLED, price)
        if params[P_LIMIT_FALLBACK] > 0:
            _try_entry(state, params, events, bar, side, o, state[S_PEND_ATR], tier_upper, tier_mmr,
                       state[S_PEND_SCALE], False, support, resistance)
        return
    if (side > 0 and lo < price) or (side < 0 and h > price):
        state[S_PEND_SIDE] = 0.0
        _try_entry(state, params, events, bar, side, price, state[S_PEND_ATR], tier_upper, tier_mmr,
                   state[S_PEND_SCALE], True, support, resistance)


@njit(cache=True)
def _new_day(state, ts_ms):
    """Step 1 of a bar opening at ``ts_ms``: on a new UTC day the day's starting equity is the
    last close's and a daily-loss halt is lifted."""
    if ts_ms >= state[S_NEXT_DAY_MS]:
        state[S_NEXT_DAY_MS] = next_utc_midnight(ts_ms)
        state[S_DAY_START] = state[S_EQUITY]
        state[S_HALT_DAY] = 0.0


@njit(cache=True)
def _limits_at_close(state, events, bar, equity, max_dd, max_daily):
    """Step 5 of a bar: mark ``equity`` (USDT) at the close, update the peak, start the
    max-drawdown / daily-loss halts (risk events with the drawdown / day loss as a fraction)."""
    state[S_EQUITY] = equity
    if equity > state[S_PEAK]:
        state[S_PEAK] = equity
    if state[S_HALT_DD] == 0.0 and drawdown_halt(equity, state[S_PEAK], max_dd):
        state[S_HALT_DD] = 1.0
        _event(state, events, bar, EV_MAX_DD_HALT, equity / state[S_PEAK] - 1.0)
    if state[S_HALT_DAY] == 0.0 and daily_loss_halt(equity, state[S_DAY_START], max_daily):
        state[S_HALT_DAY] = 1.0
        _event(state, events, bar, EV_DAILY_LOSS_HALT, equity / state[S_DAY_START] - 1.0)


@njit(cache=True)
def _check_triggers(state, params, trades, bar, o, h, lo, m1_start, m1_end, m1_open, m1_high, m1_low):
    side = int(state[S_SIDE])
    sl, tp, liq = state[S_SL], state[S_TP], state[S_LIQ]
    code, price = candle_trigger(side, o, h, lo, sl, tp, liq)
    if code != NO_TRIGGER and m1_start >= 0 and is_ambiguous(side, h, lo, sl, tp, liq):
        # finer candles of this bar decide which level came first
        for j in range(m1_start, m1_end):
            c2, p2 = candle_trigger(side, m1_open[j], m1_high[j], m1_low[j], sl, tp, liq)
            if c2 != NO_TRIGGER:
                code, price = c2, p2
                break
    if code == NO_TRIGGER:
        return
    reason = code
    if code == TRIGGER_SL and state[S_TRAILED] > 0:
        reason = X_TRAIL
    _close(state, params, trades, bar, price, reason)


@njit(cache=True)
def run_bars(i0, i1, ts, o, h, lo, c, signal, atr, funding_rate, funding_mark,
             m1_start, m1_end, m1_open, m1_high, m1_low, tier_upper, tier_mmr,
             params, state, equity_out, position_out, trades, events, fundings, size=None, phases=OPEN | CLOSE):
    """Simulate bars ``i0 .. i1-1`` in place (see the module docstring for the event order).

    Arrays (length n >= i1 unless stated): ``ts`` int64 ms UTC candle opens; ``o, h, lo, c``
    float64 USDT; ``signal`` int8 (+1 buy, -1 sell, 0 hold) decided at each bar's close;
    ``atr`` float64 USDT known at each close; ``funding_rate`` / ``funding_mark`` float64 per bar
    (0 where no funding event); ``m1_start`` / ``m1_end`` int64 index range of the bar's 1m candles
    in ``m1_*`` (-1 when none). Outputs: ``equity_out`` / ``position_out`` (signed qty) per bar;
    ``trades``, ``events``, ``fundings``: row buffers filled from the counters in ``state``, with room
    for (i1 - i0) * 2 more trade / funding rows and (i1 - i0) * 4 risk events (the caller's duty).
    ``size`` (optional, float64 per bar, decided with ``signal``): scale of an entry's size (risk or
    equity fraction of the sizing mode, before the leverage cap and lot rounding); None = 1.0.
    ``phases``: the steps of each bar that run, ``OPEN`` (1-3: new day, funding, the open: gaps, the previous
    signal, a resting limit entry) and / or ``CLOSE`` (4-5: intrabar stops, the close: equity, trailing stop,
    limits). A portfolio (:mod:`perpbot.sim.portfolio_kernel`) runs the open of every symbol before the close
    of any, so no entry at an open is sized from a later intrabar fill. One loop with both phases inside (not a
    call per phase and bar: each call of a compiled function with arrays costs a reference count per array,
    which made the loop ten times slower).
    """
    for i in range(i0, i1):
        if phases & OPEN:
            # 1. new UTC day
            _new_day(state, ts[i])
            side = int(state[S_SIDE])
            # 2. funding at the open
            if side != 0 and params[P_FUNDING_ON] > 0 and funding_rate[i] != 0.0:
                pay = funding_charge(side, state[S_QTY], state[S_ENTRY], state[S_MARGIN], funding_mark[i],
                                     funding_rate[i], state[S_MMR], params[P_TAKER_FEE])
                state[S_BALANCE] -= pay
                state[S_MARGIN] -= pay
                state[S_FUNDING] += pay
                state[S_LIQ] = liquidation_price(side, state[S_QTY], state[S_ENTRY], state[S_MARGIN],
                                                 state[S_MMR], params[P_TAKER_FEE])
                k = int(state[S_NFUNDING])
                fundings[k, F_BAR], fundings[k, F_RATE], fundings[k, F_MARK] = i, funding_rate[i], funding_mark[i]
                fundings[k, F_QTY], fundings[k, F_AMOUNT] = side * state[S_QTY], pay
                state[S_NFUNDING] = k + 1
            # 3. the open: gaps through protective levels, then the previous bar's signal
            if side != 0:
                oi = o[i]
                if side > 0:
                    gap = oi <= state[S_SL] or oi <= state[S_LIQ] or oi >= state[S_TP]
                else:
                    gap = oi >= state[S_SL] or oi >= state[S_LIQ] or oi <= state[S_TP]
                if gap:  # NaN levels compare False
                    _check_triggers(state, params, trades, i, oi, oi, oi, -1, -1, m1_open, m1_high, m1_low)
            sig = 0
            if i > 0:
                sig = signal[i - 1]
            if sig != 0:
                side = int(state[S_SIDE])
                if side == -sig:
                    _close(state, params, trades, i, o[i], X_SIGNAL)
                    side = 0
                state[S_PEND_SIDE] = 0.0  # a new signal replaces a resting limit entry
                if side == 0 and i >= params[P_WARMUP] and not (sig < 0 and params[P_LONG_ONLY] > 0):
                    scale = 1.0 if size is None else size[i - 1]
                    if params[P_LIMIT_OFFSET] > 0.0:  # placed only when the rules allow an entry now (and at the fill)
                        if not _vetoed(state, params, events, i)[0]:
                            _place_limit(state, params, i, sig, c[i - 1], atr[i - 1], params[P_TICK], scale)
                    else:
                        sup, res = _levels(params, h, lo, i)
                        _try_entry(state, params, events, i, sig, o[i], atr[i - 1], tier_upper, tier_mmr, scale,
                                   False, sup, res)
            if state[S_PEND_SIDE] != 0 and state[S_SIDE] == 0:
                sup, res = _levels(params, h, lo, i)
                _work_limit(state, params, events, i, o[i], h[i], lo[i], tier_upper, tier_mmr, sup, res)
        if phases & CLOSE:
            # 4. intrabar triggers
            if state[S_SIDE] != 0:
                _check_triggers(state, params, trades, i, o[i], h[i], lo[i], m1_start[i], m1_end[i],
                                m1_open, m1_high, m1_low)
            # 5. the close
            side = int(state[S_SIDE])
            equity = state[S_BALANCE]
            trail = params[P_TRAIL]
            if side != 0:
                equity += unrealized_pnl(side, state[S_QTY], state[S_ENTRY], c[i])
                if trail > 0.0:
                    if side > 0:
                        new_sl = h[i] * (1.0 - trail)
                        if math.isnan(state[S_SL]) or new_sl > state[S_SL]:
                            state[S_SL] = new_sl
                            state[S_TRAILED] = 1.0
                    else:
                        new_sl = lo[i] * (1.0 + trail)
                        if math.isnan(state[S_SL]) or new_sl < state[S_SL]:
                            state[S_SL] = new_sl
                            state[S_TRAILED] = 1.0
            _limits_at_close(state, events, i, equity, params[P_MAX_DD], params[P_MAX_DAILY_LOSS])
            equity_out[i] = equity
            position_out[i] = side * state[S_QTY]
            state[S_NEXT_BAR] = i + 1


@njit(cache=True)
def close_position(i, price, reason, params, state, equity_out, position_out, trades):
    """Close any open position at ``price`` (before slippage) in bar ``i``, re-marking equity."""
    if state[S_SIDE] != 0:
        _close(state, params, trades, i, price, reason)
        state[S_EQUITY] = state[S_BALANCE]
        equity_out[i] = state[S_BALANCE]
        position_out[i] = 0.0


@njit(cache=True)
def close_at_end(i, c, params, state, equity_out, position_out, trades):
    """Close any open position at the close of bar ``i`` (end of data), re-marking equity."""
    close_position(i, c[i], X_END, params, state, equity_out, position_out, trades)
