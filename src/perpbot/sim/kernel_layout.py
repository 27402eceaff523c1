"""The array layouts of the compiled bar loop (:mod:`perpbot.sim.kernel`): the indices of its parameter
array (``P_*``), account state (``S_*``), trade / risk-event / funding rows (``T_*``, ``E_*``, ``F_*``),
its exit codes (``X_*``, :class:`perpbot.types.ExitReason`), a fresh account state and its open position as
a dict. The kernel re-exports them (``kernel.S_BALANCE`` ...)."""

from __future__ import annotations

import math

import numpy as np

# ---- params layout (float64 array) ---------------------------------------------------------
P_LEVERAGE, P_TAKER_FEE, P_SLIPPAGE, P_SIZING, P_RISK, P_EQUITY_FRAC, P_SIZING_ATR_MULT = range(7)
P_STOP_MODE, P_SL, P_TP, P_TRAIL, P_MAX_DAILY_LOSS, P_MAX_DD, P_COOLDOWN = range(7, 14)
P_LOT, P_TICK, P_MIN_QTY, P_MIN_NOTIONAL, P_FUNDING_ON, P_WARMUP = range(14, 20)
P_LONG_ONLY = 20  # spot: a sell signal closes the long and opens nothing
# limit entries (0 offset = market entries): offset from the signal bar's close (fraction), maker fee,
# bars the order rests, and 1 = a market entry at the next open when it expires / is rejected
P_LIMIT_OFFSET, P_MAKER_FEE, P_LIMIT_BARS, P_LIMIT_FALLBACK = range(21, 25)
# leverage per trade (sim.sizing.trade_leverage): 1 = from volatility and the size scale, its floor, the ATR fraction
P_LEV_ADAPTIVE, P_LEV_MIN, P_LEV_TARGET_ATR = range(25, 28)
# stops at support / resistance (stop mode STOP_LEVELS): candles looked back, ATR buffer, minimum reward / risk
P_LEVELS_N, P_LEVELS_BUFFER, P_MIN_RR = range(28, 31)
# a portfolio's margin budget (perpbot.sim.portfolio.PortfolioBook; 0 = none): all positions' / one position's
# initial margin as fractions of the balance (risk.rules.margin_budget)
P_BUDGET_TOTAL, P_BUDGET_SYMBOL = range(31, 33)
N_PARAMS = 33

# ---- state layout (float64 array) ----------------------------------------------------------
S_BALANCE, S_SIDE, S_QTY, S_ENTRY, S_MARGIN, S_SL, S_TP, S_LIQ, S_ENTRY_FEE, S_FUNDING = range(10)
S_ENTRY_BAR, S_PEAK, S_DAY_START, S_NEXT_DAY_MS, S_HALT_DAY, S_HALT_DD, S_COOLDOWN_UNTIL = range(10, 17)
S_NTRADES, S_NEVENTS, S_NFUNDING, S_TRAILED, S_EQUITY, S_SL_INIT, S_MMR, S_NEXT_BAR = range(17, 25)
# a resting limit entry: side (0 = none), price, bar it was placed at, last bar it may fill, size scale, ATR
S_PEND_SIDE, S_PEND_PRICE, S_PEND_PLACED, S_PEND_UNTIL, S_PEND_SCALE, S_PEND_ATR = range(25, 31)
# set by a portfolio before each open (perpbot.sim.portfolio_kernel): a veto of its risk budget (code, value;
# 0 = none) and the initial margin (USDT) of the account's other open positions (inf = no budget); the margin
# an entry may take is computed from it with the balance at the entry (after this symbol's own exits)
S_BUDGET_VETO, S_BUDGET_VALUE, S_BUDGET_USED = range(31, 34)
S_LEV = 34  # the open position's leverage
N_STATE = 35

# ---- output row layouts ----------------------------------------------------------------------
T_SIDE, T_QTY, T_ENTRY_BAR, T_ENTRY_PRICE, T_EXIT_BAR, T_EXIT_PRICE, T_REASON, T_GROSS = range(8)
T_FEES, T_FUNDING, T_PNL, T_MARGIN, T_SL, T_TP, T_LIQ, T_ENTRY_FEE, T_EXIT_FEE, T_LEV = range(8, 18)
N_TRADE_COLS = 18
E_BAR, E_CODE, E_VALUE = range(3)
N_EVENT_COLS = 3
F_BAR, F_RATE, F_MARK, F_QTY, F_AMOUNT = range(5)
N_FUNDING_COLS = 5

# event codes (perpbot.types.RiskEvent) from the risk engine; exit codes (perpbot.types.ExitReason):
X_TP, X_SL, X_SIGNAL, X_LIQ, X_END, X_TRAIL, X_MANUAL = 1, 2, 3, 4, 5, 6, 7


def new_state(capital: float) -> np.ndarray:
    """A fresh account: ``capital`` USDT, flat, no limits in force."""
    s = np.zeros(N_STATE, dtype=np.float64)
    s[S_BALANCE] = s[S_PEAK] = s[S_DAY_START] = s[S_EQUITY] = capital
    s[S_NEXT_DAY_MS] = -1.0  # next UTC midnight, ms; -1 forces a reset on the first bar
    s[S_COOLDOWN_UNTIL] = -1.0
    s[S_SL] = s[S_TP] = s[S_LIQ] = s[S_PEND_PRICE] = math.nan
    s[S_BUDGET_USED] = math.inf
    return s


def position_of(s: np.ndarray) -> dict:
    """The open position in account state ``s``: side (+1/-1/0), qty, entry_price, stop_loss, take_profit,
    liquidation_price (USDT), margin (USDT), entry_bar (index of the candle it was opened in; None when flat)."""
    return {"side": int(s[S_SIDE]), "qty": float(s[S_QTY]), "entry_price": float(s[S_ENTRY]),
            "stop_loss": float(s[S_SL]), "take_profit": float(s[S_TP]),
            "liquidation_price": float(s[S_LIQ]), "margin": float(s[S_MARGIN]),
            "entry_bar": int(s[S_ENTRY_BAR]) if s[S_SIDE] != 0 else None}
