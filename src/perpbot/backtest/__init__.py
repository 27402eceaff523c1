"""perpbot.backtest: simulate strategies on history, measure them, report them."""

from perpbot.ml.trading_metrics import (
    drawdown_series,
    format_metrics_table,
    metrics_table,
    trading_metrics,
)
from perpbot.backtest.report import write_html_report

__all__ = [
    "drawdown_series",
    "format_metrics_table",
    "metrics_table",
    "trading_metrics",
    "write_html_report",
]
