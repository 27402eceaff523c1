"""perpbot.data: loading, validating and reshaping market data (candles, funding, mark price).

Public API (re-exported here): :class:`DataError`, :data:`TIMEFRAMES`, :func:`timeframe_to_ms`,
:func:`load_candles`, :func:`validate_candles`, :func:`load_funding`, :func:`validate_funding`,
:func:`resample_candles`, :func:`align_funding`.
"""

from __future__ import annotations

from perpbot.data.loader import load_candles, load_funding
from perpbot.data.resample import align_funding, resample_candles
from perpbot.data.validate import (
    CANDLE_COLUMNS,
    FUNDING_COLUMNS,
    TIMEFRAMES,
    DataError,
    infer_timeframe,
    timeframe_to_ms,
    timestamps_to_ms,
    validate_candles,
    validate_funding,
)

__all__ = [
    "CANDLE_COLUMNS",
    "FUNDING_COLUMNS",
    "TIMEFRAMES",
    "DataError",
    "align_funding",
    "infer_timeframe",
    "load_candles",
    "load_funding",
    "resample_candles",
    "timeframe_to_ms",
    "timestamps_to_ms",
    "validate_candles",
    "validate_funding",
]
