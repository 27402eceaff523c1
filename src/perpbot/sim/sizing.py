"""Position sizing and protective levels (compiled; used inside the simulation loop).

Three sizing modes (``SIZING_*``):

* fixed fraction: lose ``risk`` (fraction of equity) if the stop-loss fills:
  ``qty = equity * risk / (stop_distance + 2 * price * taker_fee)`` — the round-trip fee is
  part of the loss at the stop (fixed-fractional sizing, R. Vince, *The Mathematics of Money
  Management*, 1992);
* ATR (volatility-scaled): the same, with the stop distance replaced by ``k * ATR`` so the
  position shrinks when volatility rises;
* equity: post ``fraction`` of equity as margin: ``notional = fraction * equity / (1/leverage + fee)``
  (fee reserved so margin + entry fee fit in the equity).

Every mode is capped so that initial margin + entry fee never exceed equity (leverage cap),
then rounded down to the lot size, and one more lot is dropped if float rounding would still
leave ``equity - entry fee`` below the initial margin (both computed as the account loop does).
This is what keeps equity >= 0 under isolated margin: a trade loses at most its initial margin
plus its entry fee (:mod:`perpbot.sim.accounting`). Units: equity USDT, price USDT, qty base asset.
"""

from __future__ import annotations

import math

from numba import njit

from perpbot.risk.rules import max_qty_for_equity
from perpbot.sim.accounting import floor_to_step, initial_margin, round_to_step, trade_fee

SIZING_FIXED_FRACTION = 0
SIZING_ATR = 1
SIZING_EQUITY = 2

STOP_PERCENT = 0
STOP_ATR = 1
STOP_LEVELS = 2  # support / resistance of the candles before the entry (recent_levels)


@njit(cache=True)
def position_size(mode: int, equity: float, price: float, stop_distance: float, atr: float,
                  risk: float, equity_fraction: float, atr_mult: float, leverage: float,
                  fee_rate: float, lot_size: float) -> float:
    """Order quantity (base asset, rounded down to ``lot_size``) for a new position.

    Args:
        mode: SIZING_FIXED_FRACTION, SIZING_ATR or SIZING_EQUITY.
        equity: account equity in USDT (> 0).
        price: expected fill price in USDT.
        stop_distance: |entry - stop-loss| in USDT (NaN when the position has no stop).
        atr: average true range in USDT at the decision bar (mode ATR).
        risk: fraction of equity lost at the stop (modes fixed fraction / ATR).
        equity_fraction: fraction of equity posted as margin (mode equity).
    Returns:
        qty >= 0; 0.0 when nothing can be sized (no stop distance, NaN ATR, no equity).
    """
    if equity <= 0.0 or price <= 0.0:
        return 0.0
    cap = max_qty_for_equity(equity, price, leverage, fee_rate)
    round_trip_fee = 2.0 * price * fee_rate
    if mode == SIZING_EQUITY:
        qty = equity_fraction * cap
    elif mode == SIZING_ATR:
        if math.isnan(atr) or atr <= 0.0:
            return 0.0
        qty = equity * risk / (atr_mult * atr + round_trip_fee)
    else:
        if math.isnan(stop_distance) or stop_distance <= 0.0:
            return 0.0
        qty = equity * risk / (stop_distance + round_trip_fee)
    if qty > cap:
        qty = cap
    return affordable_qty(qty, equity, price, leverage, fee_rate, lot_size)


@njit(cache=True)
def affordable_qty(qty: float, equity: float, price: float, leverage: float, fee_rate: float,
                   lot_size: float) -> float:
    """``qty`` rounded down to ``lot_size``, then one lot less while its initial margin + entry fee
    (USDT, computed as the account loop does) would exceed ``equity``: floor_to_step's 1e-9
    tolerance or float noise must never round a size up past what the equity (or a margin budget)
    can lose. Used for the whole balance here and for a portfolio's margin budget."""
    qty = floor_to_step(qty, lot_size)
    while qty > 0.0 and equity - trade_fee(qty, price, fee_rate) < initial_margin(qty, price, leverage):
        qty = floor_to_step(qty - lot_size, lot_size)
    return qty


@njit(cache=True)
def within_margin_cap(qty: float, margin_cap: float, price: float, leverage: float, fee_rate: float,
                      lot: float) -> float:
    """``qty`` shrunk to the largest lot whose initial margin + entry fee fits in ``margin_cap`` (USDT; a
    portfolio's margin budget, inf = none: ``qty`` unchanged)."""
    if margin_cap < math.inf:
        return min(qty, affordable_qty(max_qty_for_equity(margin_cap, price, leverage, fee_rate), margin_cap, price,
                                       leverage, fee_rate, lot))
    return qty


@njit(cache=True)
def protective_levels(side: int, fill_price: float, stop_mode: int, stop_loss: float,
                      take_profit: float, atr: float, tick_size: float, support: float = math.nan,
                      resistance: float = math.nan, buffer_atr: float = 0.0):
    """Stop-loss and take-profit prices (USDT, rounded to the tick) for a new position.

    ``stop_loss`` / ``take_profit`` are fractions of the fill price (STOP_PERCENT) or ATR
    multiples (STOP_ATR). A value <= 0 means "no such level" and gives NaN. STOP_LEVELS: a long's
    stop-loss is ``support`` - ``buffer_atr`` x ``atr`` and its take-profit ``resistance`` (a short's
    ``resistance`` + buffer and ``support``; :func:`recent_levels`); all NaN when a level is missing or the
    fill is already beyond one (no valid stop or target).

    Returns:
        (stop_loss_price, take_profit_price, stop_distance)
    """
    if stop_mode == STOP_LEVELS:
        buf = buffer_atr * atr if buffer_atr > 0.0 else 0.0
        sl = support - buf if side > 0 else resistance + buf
        tp = resistance if side > 0 else support
        if not (side * (fill_price - sl) > 0.0 and side * (tp - fill_price) > 0.0):  # NaN compares False
            return math.nan, math.nan, math.nan
        sl = round_to_step(sl, tick_size)
        tp = round_to_step(tp, tick_size)
        return sl, tp, abs(fill_price - sl)
    if stop_mode == STOP_ATR:
        sl_dist = stop_loss * atr
        tp_dist = take_profit * atr
    else:
        sl_dist = stop_loss * fill_price
        tp_dist = take_profit * fill_price
    sl = math.nan
    tp = math.nan
    if stop_loss > 0.0 and sl_dist > 0.0:
        sl = round_to_step(fill_price - side * sl_dist, tick_size)
    if take_profit > 0.0 and tp_dist > 0.0:
        tp = round_to_step(fill_price + side * tp_dist, tick_size)
    dist = abs(fill_price - sl) if not math.isnan(sl) else math.nan
    return sl, tp, dist


@njit(cache=True)
def recent_levels(high, low, i: int, n: int):
    """(support, resistance) for an entry at bar ``i``: the lowest low and the highest high (USDT) of the
    ``n`` candles before it (bars ``i - n .. i - 1``, all closed when the signal was decided); NaN, NaN
    when fewer exist."""
    if n < 1 or i - n < 0:
        return math.nan, math.nan
    lo = low[i - n]
    hi = high[i - n]
    for j in range(i - n + 1, i):
        lo = min(lo, low[j])
        hi = max(hi, high[j])
    return lo, hi


@njit(cache=True)
def trade_leverage(adaptive: bool, max_leverage: float, min_leverage: float, target_atr: float, atr: float,
                   price: float, scale: float) -> float:
    """The leverage of one entry: ``max_leverage`` (the ``leverage`` setting) when not ``adaptive``; else the
    whole number ``floor(max_leverage x min(1, target_atr / (atr / price)) x min(1, scale))`` kept within
    [``min_leverage``, ``max_leverage``]: full leverage while the ATR (USDT, at the signal bar) is at most
    ``target_atr`` (fraction of the price), less in proportion as volatility rises (the liquidation price
    moves away with the larger moves), and less again for a smaller decision size scale (a less confident
    call, e.g. a fractional-Kelly size below the full risk). A NaN or zero ATR keeps ``max_leverage`` x the
    scale. Volatility targeting as in Moreira & Muir, "Volatility-Managed Portfolios", J. Finance 2017."""
    if not adaptive:
        return max_leverage
    vol = min(1.0, target_atr / (atr / price)) if atr > 0.0 and price > 0.0 else 1.0
    lev = math.floor(max_leverage * vol * min(1.0, scale) + 1e-9)
    return max(min(min_leverage, max_leverage), min(max_leverage, float(lev)))


@njit(cache=True)
def limit_entry_price(side: int, close: float, offset: float, tick: float) -> float:
    """The price of a post-only limit entry (USDT): ``close`` x (1 - ``offset``) for a buy (``side`` +1),
    x (1 + ``offset``) for a sell, rounded to the ``tick`` away from the market (down for a buy, up for a
    sell; no rounding when ``tick`` <= 0). ``offset`` is a fraction (0.0005 = 0.05 %)."""
    price = close * (1.0 - offset) if side > 0 else close * (1.0 + offset)
    if tick > 0.0:
        price = math.floor(price / tick + 1e-9) * tick if side > 0 else math.ceil(price / tick - 1e-9) * tick
    return price
