"""perpbot.sim: the futures account core shared by backtest, paper and live.

Accounting formulas (:mod:`~perpbot.sim.accounting`), the compiled bar loop
(:mod:`~perpbot.sim.kernel`), position sizing (:mod:`~perpbot.sim.sizing`), the account
configuration and margin tiers (:mod:`~perpbot.sim.config`), market arrays and result frames
(:mod:`~perpbot.sim.engine`). It imports none of backtest / bot / exchange.
"""

from perpbot.sim.config import SOLUSDT_TIERS, AccountConfig
from perpbot.sim.engine import BacktestResult, MarketArrays, run_backtest

__all__ = ["SOLUSDT_TIERS", "AccountConfig", "BacktestResult", "MarketArrays", "run_backtest"]
