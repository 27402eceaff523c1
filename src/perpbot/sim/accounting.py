"""Accounting core: pure, compiled functions for a linear USDT-margined perpetual.

Fees, slippage, funding payments, isolated margin, liquidation price, lot/tick rounding
and intrabar stop-loss / take-profit / liquidation triggers. The backtester's compiled
loop and the simulated (paper) exchange both call these and nothing else, so their
accounting cannot drift apart. Every function is ``numba.njit`` and also callable from
plain Python (tests call them directly).

Conventions: ``side`` is +1 long / -1 short; ``qty`` is in base asset (SOL), > 0;
prices in USDT; rates and fees are fractions (0.0006 = 0.06 %); money in USDT.

Isolated-margin cap (Bitget's rules, sources in each function): a position can never lose
more than its isolated margin. The entry fee is paid from the available balance at the open
(Bitget futures guide "Trading fee", futures/introduction/trading-fee: "deducted from the
account balance, not affecting the initial margin"), so one trade loses at most its initial
margin + entry fee, and an account whose entry sizing keeps initial margin + entry fee within
equity (:mod:`perpbot.sim.sizing`) never has negative equity. Three rules enforce the cap:

* funding is taken from the margin only down to the liquidation level (:func:`funding_charge`);
* a bar that opens beyond the liquidation price is a liquidation, whatever stop lies before it
  (:func:`candle_trigger`): the liquidation engine takes the position over and cancels its orders;
* a liquidation is settled at the bankruptcy price or better, and any other close whose fill
  would cost more than the margin is settled as a liquidation (:func:`close_settlement`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Trigger codes returned by :func:`candle_trigger` (same numbers as perpbot.types.ExitReason).
NO_TRIGGER = 0
TRIGGER_TP = 1
TRIGGER_SL = 2
TRIGGER_LIQ = 4


@njit(cache=True)
def trade_fee(qty: float, price: float, fee_rate: float) -> float:
    """Exchange fee in USDT for trading ``qty`` at ``price``: qty x price x fee_rate."""
    return abs(qty) * price * fee_rate


@njit(cache=True)
def initial_margin(qty: float, price: float, leverage: float) -> float:
    """Isolated initial margin in USDT: notional / leverage (notional = qty x price)."""
    return abs(qty) * price / leverage


@njit(cache=True)
def unrealized_pnl(side: int, qty: float, entry_price: float, price: float) -> float:
    """Unrealised PnL in USDT of a linear contract: side x qty x (price - entry)."""
    return side * qty * (price - entry_price)


@njit(cache=True)
def funding_payment(side: int, qty: float, mark_price: float, rate: float) -> float:
    """Funding paid by the position in USDT (> 0 paid, < 0 received).

    qty x mark price x funding rate; with a positive rate longs pay and shorts receive
    (Bitget / Binance USDT-M funding rules).
    """
    return side * qty * mark_price * rate


@njit(cache=True)
def funding_charge(side: int, qty: float, entry_price: float, margin: float, mark_price: float,
                   rate: float, mmr: float, taker_fee: float) -> float:
    """Funding in USDT actually taken from an isolated position (> 0 paid, < 0 received).

    :func:`funding_payment`, but a payment is taken from the position margin only down to the
    liquidation level: at most ``margin + unrealised PnL at the mark - (MMR + takerFee) x qty x
    mark`` (the level the liquidation price reserves) and never more than ``margin``; the excess
    is not charged. Received funding is never capped (it adds to the margin). Source: Bitget
    support "Funding Fee" (articles/360059301491): "deducted from the fixed margin of the user's
    position, at most until the user's margin rate is equal to the maintenance margin rate ...
    the excess will not be charged". Worked check: long 1 at entry 10, margin 2, MMR 0.01,
    taker 0.0006, mark 9, rate 0.5: payment 4.5, room 2 - 1 - 0.0106 x 9 = 0.9046 -> 0.9046.
    """
    pay = funding_payment(side, qty, mark_price, rate)
    if pay <= 0.0:
        return pay
    room = margin + unrealized_pnl(side, qty, entry_price, mark_price) - (mmr + taker_fee) * qty * mark_price
    if room > margin:
        room = margin
    if room < 0.0:
        room = 0.0
    if pay > room:
        return room
    return pay


@njit(cache=True)
def liquidation_price(side: int, qty: float, entry_price: float, margin: float,
                      mmr: float, taker_fee: float) -> float:
    """Estimated isolated-margin liquidation price in USDT.

    ``L = (M - S*P*d) / (S * (MMR + takerFee - d))`` with M = position margin (USDT),
    S = size (base), P = average entry price, d = +1 long / -1 short (Bitget support
    article "liquidation price under isolated margin"; ``shared/reference/bitget.md``).
    Worked check: entry 10, size 1, MMR 0.01, taker 0.0006, margin = notional / 5 gives
    8.085709 long and 11.874134 short. Returns 0.0 for a long that cannot be liquidated.
    """
    denom = qty * (mmr + taker_fee - side)
    price = (margin - qty * entry_price * side) / denom
    if price < 0.0:
        return 0.0
    return price


@njit(cache=True)
def maintenance_margin_rate(notional: float, tier_upper: np.ndarray, tier_mmr: np.ndarray) -> float:
    """Maintenance margin rate (fraction) of the position tier holding ``notional`` USDT.

    ``tier_upper[k]`` is the upper notional bound of tier k (ascending), ``tier_mmr[k]`` its
    rate; notional above the last bound uses the last tier.
    """
    for k in range(tier_upper.shape[0]):
        if notional <= tier_upper[k]:
            return tier_mmr[k]
    return tier_mmr[tier_upper.shape[0] - 1]


@njit(cache=True)
def floor_to_step(x: float, step: float) -> float:
    """Largest multiple of ``step`` not above ``x`` (order quantities round down to the lot size).

    A relative tolerance of 1e-9 absorbs binary noise (0.3 / 0.1 = 2.9999999999999996).
    """
    n = math.floor(x / step + 1e-9)
    return round(n * step, 12)


@njit(cache=True)
def round_to_step(x: float, step: float) -> float:
    """Nearest multiple of ``step`` (prices round to the tick size; halves round away from 0)."""
    n = math.floor(x / step + 0.5)
    return round(n * step, 12)


@njit(cache=True)
def slipped_price(price: float, is_buy: bool, slippage: float) -> float:
    """Fill price of a market order: ``slippage`` (fraction) against the taker (buy higher, sell lower)."""
    if is_buy:
        return price * (1.0 + slippage)
    return price * (1.0 - slippage)


@njit(cache=True)
def bankruptcy_price(side: int, qty: float, entry_price: float, margin: float) -> float:
    """Price in USDT at which an isolated position's margin is used up (margin + unrealised PnL = 0).

    ``B = P - d * M / S`` (P entry, d = +1 long / -1 short, M position margin, S size): below the
    entry for a long, above it for a short; with margin = notional / leverage, ``P * (1 - d / lev)``.
    Worked check: entry 100, size 197.6, margin 988 (20x) -> long 95, short 105.
    """
    return entry_price - side * margin / qty


@njit(cache=True)
def close_settlement(side: int, qty: float, entry_price: float, margin: float, price: float,
                     fee_rate: float, slippage: float, liquidation: bool):
    """Settle the close of an isolated position; the trader never loses more than ``margin``.

    * An ordinary close (stop-loss, take-profit, signal, end of data, manual) fills at ``price``
      moved by ``slippage`` against the taker and pays the taker fee on the fill; the balance
      changes by ``gross - exit_fee``.
    * A liquidation (``liquidation`` True, ``price`` = where it executes: the liquidation price,
      or the open of a bar that opens beyond it) loses exactly the position margin: the balance
      changes by ``-margin``. Bitget settles a liquidated position at the bankruptcy price "regardless
      of the current market price": what is left of the margin when it executes better than the
      bankruptcy price goes to the insurance fund, a shortfall when it executes worse is covered by
      the insurance fund (Bitget support "Understanding the Insurance Fund", articles/360059239211;
      "Isolated Margin Mode", articles/360058878512: "liquidation will only lose the margin
      allocated to this position"). Reported here: exit price = ``price`` but never worse than the
      bankruptcy price (:func:`bankruptcy_price`), gross PnL at that price, and the exit fee = the
      rest of the margin taken by the liquidation (margin + gross >= 0: the maintenance margin
      plus the taker fee that the liquidation price reserves, 0 when settled at the bankruptcy price).
    * An ordinary close whose fill and fee would cost more than the margin (a fill beyond the
      bankruptcy price, e.g. slippage past it) is settled as a liquidation at its fill: the
      exchange's liquidation engine takes over a position whose margin is used up.

    Returns:
        (fill, gross, exit_fee, cash, liquidated): exit price (USDT), price PnL (USDT), exit fee
        or liquidation clearance (USDT), balance change (USDT, >= -margin) and whether the close
        was (or became) a liquidation.
    """
    if not liquidation:
        fill = slipped_price(price, side < 0, slippage)
        gross = unrealized_pnl(side, qty, entry_price, fill)
        fee = trade_fee(qty, fill, fee_rate)
        cash = gross - fee
        if cash >= -margin:
            return fill, gross, fee, cash, False
        price = fill
    bankrupt = bankruptcy_price(side, qty, entry_price, margin)
    if (side > 0 and price <= bankrupt) or (side < 0 and price >= bankrupt):
        return bankrupt, -margin, 0.0, -margin, True
    gross = unrealized_pnl(side, qty, entry_price, price)
    return price, gross, margin + gross, -margin, True


@njit(cache=True)
def candle_trigger(side: int, o: float, h: float, lo: float, stop_loss: float, take_profit: float,
                   liq_price: float):
    """Which protective level a candle triggers first, and at what price.

    Levels set to NaN are absent. For a long, the stop-loss and liquidation sit below and the
    take-profit above; the mirror for a short. Rules:

    * a level already crossed at the candle's open fills at the open (gap);
    * a candle that opens beyond the liquidation price is a liquidation even when it also gapped
      through the stop-loss: the liquidation engine takes the position over and cancels its
      orders first (Bitget futures guide "Liquidation", futures/introduction/liquidation-summarize:
      "in isolated margin mode, only current position orders will be canceled"), so the stop
      cannot fill past the liquidation;
    * otherwise, between the two levels on the losing side, the one nearer the open triggers first
      (the stop on a tie);
    * when the candle touches both a losing-side level and the take-profit, the losing side
      is assumed first (conservative; finer candles can resolve it, see the backtester);
    * stop-loss and take-profit fill at their level (or the open on a gap); liquidation
      reports min/max(open, level).

    Returns:
        (code, price): code is NO_TRIGGER, TRIGGER_SL, TRIGGER_TP or TRIGGER_LIQ.
    """
    if side > 0:
        # losing side: the higher of stop-loss and liquidation comes first
        sl_hit = (not math.isnan(stop_loss)) and lo <= stop_loss
        liq_hit = (not math.isnan(liq_price)) and lo <= liq_price
        if sl_hit and liq_hit:
            if o <= liq_price or liq_price > stop_loss:
                sl_hit = False
            else:
                liq_hit = False
        if liq_hit:
            return TRIGGER_LIQ, min(o, liq_price)
        if sl_hit:
            return TRIGGER_SL, min(o, stop_loss)
        if (not math.isnan(take_profit)) and h >= take_profit:
            return TRIGGER_TP, max(o, take_profit)
        return NO_TRIGGER, math.nan
    sl_hit = (not math.isnan(stop_loss)) and h >= stop_loss
    liq_hit = (not math.isnan(liq_price)) and h >= liq_price
    if sl_hit and liq_hit:
        if o >= liq_price or liq_price < stop_loss:
            sl_hit = False
        else:
            liq_hit = False
    if liq_hit:
        return TRIGGER_LIQ, max(o, liq_price)
    if sl_hit:
        return TRIGGER_SL, max(o, stop_loss)
    if (not math.isnan(take_profit)) and lo <= take_profit:
        return TRIGGER_TP, min(o, take_profit)
    return NO_TRIGGER, math.nan


@njit(cache=True)
def is_ambiguous(side: int, h: float, lo: float, stop_loss: float, take_profit: float,
                 liq_price: float) -> bool:
    """True when one candle touches both a losing-side level and the take-profit."""
    if math.isnan(take_profit):
        return False
    if side > 0:
        down = ((not math.isnan(stop_loss)) and lo <= stop_loss) or ((not math.isnan(liq_price)) and lo <= liq_price)
        return down and h >= take_profit
    up = ((not math.isnan(stop_loss)) and h >= stop_loss) or ((not math.isnan(liq_price)) and h >= liq_price)
    return up and lo <= take_profit
