"""The compiled portfolio loop: several symbols in one USDT-M account, isolated margin per position.

Each symbol keeps its own kernel state (position, stops, cooldown, resting limit order) and row
buffers; the account's wallet balance (USDT) is one number shared by all: before each of a symbol's
phases the loop copies it into the symbol's state and takes it back after. Every bar runs in two
phases over the symbols, in their given order: the open of every symbol (:func:`perpbot.sim.kernel.run_bars`
with ``OPEN``: funding, gaps, the previous signal's entries and exits), then the rest of the bar of every
symbol (``CLOSE``: intrabar stops, the close), so
an entry at an open is sized from what the account knew at that open, never from a later stop fill.

Risk budget, set before each symbol's open for an entry in direction d (the symbol's previous
signal, else the side of its resting limit order), counting the OTHER symbols' open positions:

* max open positions: ``max_positions`` (> 0) already open -> veto ``max_positions`` (value = count);
* correlation guard (``corr_threshold`` > 0): another open position in direction d whose
  close-to-close returns over the last ``corr_window`` closed bars correlate with this symbol's at
  r >= ``corr_threshold`` (Pearson) -> veto ``correlated`` (value = r);
* margin: an entry's initial margin + entry fee is capped at the least of the available balance
  (balance - others' margin), ``max_total_margin`` x balance - others' margin and
  ``max_symbol_margin`` x balance (a cap of 0 = none; :func:`perpbot.risk.rules.margin_budget`, with the
  balance at the entry: after this symbol's own exits at the same open, e.g. a reversal's losing exit)
  -> ``margin_budget`` when nothing is left, else the size shrinks to fit (then ``below_min_size`` if
  that is below the market's minimum). So the positions' margins never exceed the balance, and as each
  loses at most its margin + entry fee, the account's equity never goes below zero.

The account's limits use the portfolio's equity (balance + every position's unrealised PnL at the
bar's close, USDT): the max-drawdown and daily-loss halts stop entries on every symbol and are
recorded in the portfolio's own event buffer (the symbols' own limits must be off: +inf).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from perpbot.risk.rules import (
    EV_CORRELATED, EV_DAILY_LOSS_HALT, EV_MAX_DD_HALT, EV_MAX_POSITIONS, daily_loss_halt, drawdown_halt,
    next_utc_midnight,
)
from perpbot.sim import kernel as K
from perpbot.sim.accounting import unrealized_pnl

# ---- portfolio params (float64 array) -------------------------------------------------------------
PP_MAX_POSITIONS, PP_MAX_TOTAL_MARGIN, PP_MAX_SYMBOL_MARGIN, PP_CORR_THRESHOLD, PP_CORR_WINDOW = range(5)
PP_MAX_DD, PP_MAX_DAILY_LOSS = range(5, 7)
N_PPARAMS = 7
# ---- portfolio state (float64 array) --------------------------------------------------------------
PS_BALANCE, PS_EQUITY, PS_PEAK, PS_DAY_START, PS_NEXT_DAY_MS, PS_HALT_DD, PS_HALT_DAY, PS_NEVENTS = range(8)
N_PSTATE = 8


def new_portfolio_state(capital: float) -> np.ndarray:
    """A fresh account of ``capital`` USDT: flat, no halt."""
    s = np.zeros(N_PSTATE, dtype=np.float64)
    s[PS_BALANCE] = s[PS_EQUITY] = s[PS_PEAK] = s[PS_DAY_START] = capital
    s[PS_NEXT_DAY_MS] = -1.0
    return s


@njit(cache=True)
def returns_correlation(a, b, end, window):
    """Pearson correlation of the close-to-close returns of closes ``a`` and ``b`` (float64 USDT) over
    the ``window`` returns ending at bar ``end`` (closes ``end - window .. end``); NaN when fewer bars
    exist or a series is flat."""
    if window < 2 or end - window < 0:
        return math.nan
    ma = 0.0
    mb = 0.0
    for t in range(end - window + 1, end + 1):
        ma += a[t] / a[t - 1] - 1.0
        mb += b[t] / b[t - 1] - 1.0
    ma /= window
    mb /= window
    sab = 0.0
    saa = 0.0
    sbb = 0.0
    for t in range(end - window + 1, end + 1):
        da = a[t] / a[t - 1] - 1.0 - ma
        db = b[t] / b[t - 1] - 1.0 - mb
        sab += da * db
        saa += da * da
        sbb += db * db
    if saa <= 0.0 or sbb <= 0.0:
        return math.nan
    return sab / math.sqrt(saa * sbb)


@njit(cache=True)
def _budget(k, i, c, signal, pparams, state):
    """Set symbol ``k``'s budget slots (veto code / value, the others' margin) before its open at bar ``i``."""
    others = 0.0
    n_open = 0
    for j in range(state.shape[0]):
        if j != k and state[j, K.S_SIDE] != 0:
            others += state[j, K.S_MARGIN]
            n_open += 1
    state[k, K.S_BUDGET_USED] = others
    d = int(signal[k, i - 1]) if i > 0 else 0
    if d == 0:
        d = int(state[k, K.S_PEND_SIDE])
    veto = 0
    value = 0.0
    if d != 0 and pparams[PP_MAX_POSITIONS] > 0 and n_open >= pparams[PP_MAX_POSITIONS]:
        veto, value = EV_MAX_POSITIONS, float(n_open)
    elif d != 0 and pparams[PP_CORR_THRESHOLD] > 0.0:
        for j in range(state.shape[0]):
            if j != k and state[j, K.S_SIDE] == d:
                r = returns_correlation(c[k], c[j], i - 1, int(pparams[PP_CORR_WINDOW]))
                if r >= pparams[PP_CORR_THRESHOLD]:  # NaN (too few bars) compares False
                    veto, value = EV_CORRELATED, r
                    break
    state[k, K.S_BUDGET_VETO] = veto
    state[k, K.S_BUDGET_VALUE] = value


@njit(cache=True)
def _event(pstate, pevents, bar, code, value):
    n = int(pstate[PS_NEVENTS])
    pevents[n, K.E_BAR], pevents[n, K.E_CODE], pevents[n, K.E_VALUE] = bar, code, value
    pstate[PS_NEVENTS] = n + 1


@njit(cache=True)
def _account_close(i, ts, c, pparams, pstate, state, pevents):
    """The account at bar ``i``'s close: equity, peak, and the halts on every symbol."""
    equity = pstate[PS_BALANCE]
    for k in range(state.shape[0]):
        side = int(state[k, K.S_SIDE])
        if side != 0:
            equity += unrealized_pnl(side, state[k, K.S_QTY], state[k, K.S_ENTRY], c[k, i])
    pstate[PS_EQUITY] = equity
    if equity > pstate[PS_PEAK]:
        pstate[PS_PEAK] = equity
    if pstate[PS_HALT_DD] == 0.0 and drawdown_halt(equity, pstate[PS_PEAK], pparams[PP_MAX_DD]):
        pstate[PS_HALT_DD] = 1.0
        _event(pstate, pevents, i, EV_MAX_DD_HALT, equity / pstate[PS_PEAK] - 1.0)
        for k in range(state.shape[0]):
            state[k, K.S_HALT_DD] = 1.0
    if pstate[PS_HALT_DAY] == 0.0 and daily_loss_halt(equity, pstate[PS_DAY_START], pparams[PP_MAX_DAILY_LOSS]):
        pstate[PS_HALT_DAY] = 1.0
        _event(pstate, pevents, i, EV_DAILY_LOSS_HALT, equity / pstate[PS_DAY_START] - 1.0)
        for k in range(state.shape[0]):
            state[k, K.S_HALT_DAY] = 1.0
    return equity


@njit(cache=True)
def run_portfolio_bars(i0, i1, ts, o, h, lo, c, signal, size, atr, funding_rate, funding_mark, tier_upper, tier_mmr,
                       params, state, pparams, pstate, equity_out, position_out, trades, events, fundings,
                       pequity_out, pevents, no_m1):
    """Simulate bars ``i0 .. i1-1`` of S symbols on one account, in place (module docstring: the order).

    Arrays: ``ts`` int64 (n,) ms UTC candle opens shared by every symbol; ``o, h, lo, c, atr,
    funding_rate, funding_mark, size`` float64 (S, n) and ``signal`` int8 (S, n), as the rows of
    :func:`perpbot.sim.kernel.run_bars`; ``tier_upper`` / ``tier_mmr`` float64 (S, T) margin tiers
    (padded with +inf / the last rate); ``params`` (S, N_PARAMS) and ``state`` (S, N_STATE) the
    symbols' kernel arrays; ``pparams`` / ``pstate`` the portfolio's (``PP_*``, ``PS_*``);
    outputs ``equity_out`` / ``position_out`` (S, n) per symbol (its balance share is the whole
    balance: only ``pequity_out`` (n,), the account's equity, is meaningful), row buffers
    ``trades`` / ``events`` / ``fundings`` (S, rows, cols) with room as run_bars needs, ``pevents``
    (rows, 3) with room for 2 rows per bar; ``no_m1`` int64 (n,) of -1 (no 1m candles).
    """
    n_sym = state.shape[0]
    empty = np.zeros(0, dtype=np.float64)
    for i in range(i0, i1):
        if ts[i] >= pstate[PS_NEXT_DAY_MS]:  # the account's new UTC day (each symbol's own lifts its halt)
            pstate[PS_NEXT_DAY_MS] = next_utc_midnight(ts[i])
            pstate[PS_DAY_START] = pstate[PS_EQUITY]
            pstate[PS_HALT_DAY] = 0.0
        for k in range(n_sym):
            state[k, K.S_BALANCE] = pstate[PS_BALANCE]
            _budget(k, i, c, signal, pparams, state)
            K.run_bars(i, i + 1, ts, o[k], h[k], lo[k], c[k], signal[k], atr[k], funding_rate[k], funding_mark[k],
                       no_m1, no_m1, empty, empty, empty, tier_upper[k], tier_mmr[k], params[k], state[k],
                       equity_out[k], position_out[k], trades[k], events[k], fundings[k], size[k], K.OPEN)
            pstate[PS_BALANCE] = state[k, K.S_BALANCE]
        for k in range(n_sym):
            state[k, K.S_BALANCE] = pstate[PS_BALANCE]
            K.run_bars(i, i + 1, ts, o[k], h[k], lo[k], c[k], signal[k], atr[k], funding_rate[k], funding_mark[k],
                       no_m1, no_m1, empty, empty, empty, tier_upper[k], tier_mmr[k], params[k], state[k],
                       equity_out[k], position_out[k], trades[k], events[k], fundings[k], size[k], K.CLOSE)
            pstate[PS_BALANCE] = state[k, K.S_BALANCE]
        pequity_out[i] = _account_close(i, ts, c, pparams, pstate, state, pevents)


@njit(cache=True)
def close_all_positions(i, price, reason, params, state, pstate, equity_out, position_out, trades):
    """Close every open position at ``price[k]`` (USDT, before slippage) in bar ``i`` (end of data: the
    close; an operator's force-exit), re-marking the account's equity (returned, USDT)."""
    for k in range(state.shape[0]):
        state[k, K.S_BALANCE] = pstate[PS_BALANCE]
        K.close_position(i, price[k], reason, params[k], state[k], equity_out[k], position_out[k], trades[k])
        pstate[PS_BALANCE] = state[k, K.S_BALANCE]
    equity = pstate[PS_BALANCE]
    for k in range(state.shape[0]):
        if state[k, K.S_SIDE] != 0:
            equity += unrealized_pnl(int(state[k, K.S_SIDE]), state[k, K.S_QTY], state[k, K.S_ENTRY], price[k])
    pstate[PS_EQUITY] = equity
    return equity
