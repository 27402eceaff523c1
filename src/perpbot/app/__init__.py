"""perpbot.app: the application layer — the jobs (train, backtest, paper) every interface calls.

The CLI, the API and notebooks call these functions; they import nothing of the interfaces.
"""
