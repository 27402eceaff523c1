"""Shared domain types: sides, exit reasons, veto reasons and table schemas.

Imports nothing of ours, so every stage can import it. Integer codes are what the
compiled simulation loop writes into its output arrays; the string names are what
the ledger, the reports and the logs show.
"""

from __future__ import annotations

from enum import IntEnum


class Side(IntEnum):
    """Position direction. ``LONG`` profits when the price rises."""

    SHORT = -1
    FLAT = 0
    LONG = 1


class Signal(IntEnum):
    """A strategy's call for the next bar: buy (go/stay long), sell (go/stay short), hold."""

    SELL = -1
    HOLD = 0
    BUY = 1


class ExitReason(IntEnum):
    """Why a position was closed (code written by the simulation loop)."""

    TAKE_PROFIT = 1
    STOP_LOSS = 2
    SIGNAL = 3
    LIQUIDATION = 4
    END_OF_DATA = 5
    TRAILING_STOP = 6
    MANUAL = 7            # operator's force-exit

    @property
    def label(self) -> str:
        return _EXIT_LABELS[self]


_EXIT_LABELS = {
    ExitReason.TAKE_PROFIT: "take_profit",
    ExitReason.STOP_LOSS: "stop_loss",
    ExitReason.SIGNAL: "signal",
    ExitReason.LIQUIDATION: "liquidation",
    ExitReason.END_OF_DATA: "end_of_data",
    ExitReason.TRAILING_STOP: "trailing_stop",
    ExitReason.MANUAL: "manual",
}


class RiskEvent(IntEnum):
    """Why an entry signal was vetoed, or why trading state changed (risk event codes)."""

    COOLDOWN = 1          # entry refused: cooling down after a losing trade
    DAILY_LOSS_HALT = 2   # daily loss limit reached: entries halted until the next UTC day
    MAX_DRAWDOWN_HALT = 3  # max drawdown limit reached: entries halted for the rest of the run
    BELOW_MIN_SIZE = 4    # computed quantity below the market's minimum size / notional
    NO_EQUITY = 5         # equity too small to post margin and fees
    HALTED = 6            # entry refused because a halt is in force
    STALE_CANDLE = 7      # live: entry refused, the candle closed more than max_entry_lag bars ago
    CLOCK_SKEW_HALT = 8   # live: the venue kept refusing request timestamps; entries halted
    LIMIT_UNFILLED = 9    # a limit entry expired or was rejected (post-only) unfilled; value = its price
    MAX_POSITIONS = 10    # portfolio: entry refused, the account holds max_open_positions; value = that count
    MARGIN_BUDGET = 11    # portfolio: entry refused, no initial margin left in the budget; value = USDT left
    CORRELATED = 12       # portfolio: entry refused, a same-direction position's returns correlate; value = r
    RISK_REWARD = 13      # stops at support / resistance: take-profit / stop-loss distance below the minimum; value
    LEVERAGE_REFUSED = 14  # live: the venue refused the leverage an entry was sized for; value = that leverage

    @property
    def label(self) -> str:
        return self.name.lower()


#: Columns of the trades table produced by the backtester and the paper exchange.
#: Times are tz-aware UTC pandas Timestamps; prices in USDT; qty in base asset;
#: pnl, fees and funding in USDT. ``funding`` > 0 means the position paid funding.
#: ``pnl`` is net: gross price PnL - fees - funding.
TRADE_COLUMNS = (
    "trade_id", "side", "qty", "entry_time", "entry_price", "exit_time", "exit_price",
    "exit_reason", "gross_pnl", "fees", "funding", "pnl", "entry_bar", "exit_bar",
    "leverage", "margin", "stop_loss", "take_profit", "liquidation_price",
)

#: Columns of the risk-events table: time (UTC), bar index, event (RiskEvent label), value.
RISK_EVENT_COLUMNS = ("time", "bar", "event", "value")
