"""perpbot: an AI-driven trading bot for crypto perpetual futures.

Flow (one folder per stage): data -> features -> ml -> strategy -> risk ->
exchange (accounting core, simulated exchange) -> backtest / bot -> storage -> cli.
"""

__version__ = "0.1.0"
