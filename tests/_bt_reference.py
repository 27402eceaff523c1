"""Reference run of the EMA-cross strategy in backtesting.py (an independent backtest engine).

Used by ``tests/test_vs_backtesting_py.py`` to check that perpbot's engine gives the same
trades. Nothing here imports perpbot: signals, sizing, stop-loss / take-profit and fills
are all backtesting.py's own (``backtesting.lib.crossover``, ``Strategy.buy/sell`` with a
fraction-of-equity size, bracket ``sl=`` / ``tp=`` orders, ``exclusive_orders=True``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import talib
from backtesting import Backtest, Strategy
from backtesting.lib import crossover

#: Fraction of equity per order: backtesting.py's own "all in" default (1 - machine epsilon),
#: sized as ``int(margin_available * leverage * size // (price * (1 + commission)))`` units.
FULL_EQUITY = Strategy._FULL_EQUITY

#: SL / TP prices are expressed to 1e-9 USDT (perpbot rounds them to its tick size, 1e-9 here).
LEVEL_DECIMALS = 9


def bt_frame(candles: pd.DataFrame) -> pd.DataFrame:
    """OHLCV frame in backtesting.py's layout: Open/High/Low/Close/Volume, UTC DatetimeIndex."""
    df = candles.rename(columns={"open": "Open", "high": "High", "low": "Low", "close": "Close",
                                 "volume": "Volume"})
    return df.set_index(pd.DatetimeIndex(candles["timestamp"]))[["Open", "High", "Low", "Close", "Volume"]]


class EmaCrossBracket(Strategy):
    """EMA(fast) / EMA(slow) cross, all-in, with a stop-loss and take-profit from the entry price.

    On a cross at bar t the order fills at the open of bar t+1 (``trade_on_close=False``), so
    "2 % from entry" is 2 % from that open. backtesting.py only accepts absolute ``sl`` / ``tp``
    prices when the order is placed, so the strategy reads the next open from ``full_open``
    (the whole Open column, set as a class attribute before the run). That value is used for
    nothing else: it only expresses "from the fill price" in backtesting.py's API.
    """

    fast = 20
    slow = 50
    stop_loss = 0.02
    take_profit = 0.04
    size = FULL_EQUITY
    full_open: np.ndarray = np.empty(0)

    def init(self):
        close = np.asarray(self.data.Close, dtype=np.float64)
        self.ema_fast = self.I(talib.EMA, close, timeperiod=self.fast)
        self.ema_slow = self.I(talib.EMA, close, timeperiod=self.slow)

    def _levels(self, side: int):
        t = len(self.data) - 1
        if t + 1 >= len(self.full_open):  # cross on the last bar: the order can never fill
            return None, None
        entry = float(self.full_open[t + 1])
        sl = round(entry * (1.0 - side * self.stop_loss), LEVEL_DECIMALS)
        tp = round(entry * (1.0 + side * self.take_profit), LEVEL_DECIMALS)
        return sl, tp

    def next(self):
        if crossover(self.ema_fast, self.ema_slow):
            sl, tp = self._levels(+1)
            if sl is not None:
                self.buy(size=self.size, sl=sl, tp=tp)
        elif crossover(self.ema_slow, self.ema_fast):
            sl, tp = self._levels(-1)
            if sl is not None:
                self.sell(size=self.size, sl=sl, tp=tp)


def run_reference(candles: pd.DataFrame, *, cash: float, commission: float, stop_loss: float,
                  take_profit: float, fast: int = 20, slow: int = 50):
    """Run :class:`EmaCrossBracket` on ``candles`` (perpbot candle frame) in backtesting.py.

    Open trades are NOT force-closed at the end (``finalize_trades=False``): backtesting.py
    0.6.6 would close them at the last bar's *open* (it re-runs the broker on the last bar),
    while perpbot closes at the last *close*; the still-open trade is compared separately.

    Returns:
        (stats, closed, open_trades, equity): backtesting.py's stats Series; a frame of closed
        trades (side, qty, entry_bar, exit_bar, entry_price, exit_price, sl, tp, pnl, fees);
        the list of still-open ``backtesting.Trade`` objects; equity per bar (numpy, USDT).
    """
    df = bt_frame(candles)
    strat = type("EmaCrossBracketRun", (EmaCrossBracket,), dict(
        fast=fast, slow=slow, stop_loss=stop_loss, take_profit=take_profit,
        full_open=df["Open"].to_numpy(np.float64)))
    bt = Backtest(df, strat, cash=cash, commission=commission, spread=0.0, margin=1.0,
                  trade_on_close=False, hedging=False, exclusive_orders=True, finalize_trades=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "trades remain open" — intended, see above
        stats = bt.run()
    strategy = stats["_strategy"]
    ct = strategy.closed_trades
    closed = pd.DataFrame({
        "side": [1 if t.size > 0 else -1 for t in ct],
        "qty": [float(abs(t.size)) for t in ct],
        "entry_bar": [t.entry_bar for t in ct],
        "exit_bar": [t.exit_bar for t in ct],
        "entry_price": [t.entry_price for t in ct],
        "exit_price": [t.exit_price for t in ct],
        "sl": [t.sl for t in ct],
        "tp": [t.tp for t in ct],
        "pnl": [t.pl for t in ct],
        "fees": [t._commissions for t in ct],
    })
    equity = stats["_equity_curve"]["Equity"].to_numpy(np.float64)
    return stats, closed, list(strategy.trades), equity
