"""Market data a run needs, loaded from the files the settings name.

Candles (required), funding-rate history, mark-price candles (funding mark price) and finer
candles for intrabar stop/take-profit resolution (all optional). Every file is validated by
:mod:`perpbot.data.loader`; a missing or bad file raises :class:`DataError` naming it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from perpbot.data.loader import load_candles, load_funding
from perpbot.data.validate import DataError

#: Bars a run must have after its warm-up: fewer cannot trade meaningfully (``perpbot demo``
#: asks the same of its replay window).
MIN_TRADABLE_BARS = 10


@dataclass
class MarketData:
    """Validated frames of one symbol/timeframe (see :func:`perpbot.data.load_candles`)."""

    candles: pd.DataFrame
    timeframe: str
    funding: pd.DataFrame | None = None
    mark: pd.DataFrame | None = None
    intrabar: pd.DataFrame | None = None
    source: Path | None = None
    series: dict = field(default_factory=dict)  # other assets' candles ("btc", "eth"), loaded on demand


    def slice(self, start: int, stop: int | None = None) -> "MarketData":
        """Candles ``[start, stop)`` (reindexed from 0); the other frames are shared."""
        c = self.candles.iloc[start:stop].reset_index(drop=True)
        c.attrs = dict(self.candles.attrs)
        return MarketData(c, self.timeframe, self.funding, self.mark, self.intrabar, self.source, self.series)


def check_enough_candles(market: "MarketData", warmup_bars: int) -> None:
    """Refuse a run over too few candles to trade: at least ``warmup_bars + MIN_TRADABLE_BARS``.

    Raises:
        DataError: "<source>: N candle(s), too few ..." (a 1-row or 50-row file, or warm-up
            longer than the data, would otherwise run to 0 trades without a word).
    """
    n, need = len(market.candles), int(warmup_bars) + MIN_TRADABLE_BARS
    if n < need:
        raise DataError(f"{market.source or '<candles>'}: {n} candle(s), too few to trade: warmup_bars = {warmup_bars} "
                        f"needs at least {need} ({warmup_bars} warm-up + {MIN_TRADABLE_BARS} to trade); use more "
                        "candles or lower warmup_bars")


def _optional(path: Path | None, loader, what: str, setting: str):
    if path is None:
        return None
    p = Path(path)
    if not p.exists():
        raise DataError(f'{p}: {what} file not found (set {setting} = "none" to run without it)')
    return loader(p)


def _finer_resampled(path: Path, timeframe: str | None, exc: DataError) -> pd.DataFrame:
    """Candles of a finer timeframe that divides ``timeframe``, resampled to it; else raise ``exc``."""
    from perpbot.data.resample import resample_candles
    from perpbot.data.validate import timeframe_to_ms

    if timeframe is None:
        raise exc
    try:
        candles = load_candles(path)
    except DataError:
        raise exc from None
    have_ms, want_ms = timeframe_to_ms(candles.attrs["timeframe"]), timeframe_to_ms(timeframe)
    if want_ms <= have_ms or want_ms % have_ms:
        raise exc
    return resample_candles(candles, timeframe)


def load_market(candles_file: str | Path, timeframe: str | None = None, *, funding_file: str | Path | None = None,
                mark_file: str | Path | None = None, intrabar_file: str | Path | None = None) -> MarketData:
    """Load and validate a run's market data.

    Args:
        candles_file: OHLCV Parquet (UTC candle opens, USDT prices, base-asset volume).
        timeframe: expected timeframe ("5m" ...); None infers it. A file of a finer timeframe that
            divides it is resampled to it (5m -> 15m / 1h, complete buckets only); a coarser or
            non-dividing one raises DataError.
        funding_file / mark_file / intrabar_file: optional Parquet files (None = not used).

    Raises:
        DataError: a named file is missing, unreadable or fails validation.
    """
    path = Path(candles_file)
    try:
        candles = load_candles(path, timeframe)
    except DataError as exc:  # a finer file (5m for --timeframe 1h) is resampled; anything else re-raises
        candles = _finer_resampled(path, timeframe, exc)
    tf = candles.attrs.get("timeframe", timeframe)
    funding = _optional(funding_file, load_funding, "funding-rate", "funding_file")
    mark = _optional(mark_file, load_candles, "mark-price candle", "mark_file")
    intrabar = _optional(intrabar_file, lambda p: load_candles(p, "1m"), "1m candle", "intrabar_file")
    return MarketData(candles=candles, timeframe=tf, funding=funding, mark=mark, intrabar=intrabar, source=path)


def load_market_for(settings, candles_file: str | Path | None = None) -> MarketData:
    """:func:`load_market` with the files and timeframe of :class:`perpbot.config.Settings`."""
    return load_market(candles_file or settings.candles_file, settings.timeframe,
                       funding_file=settings.funding_file if settings.funding else None,
                       mark_file=settings.mark_file if settings.funding else None,
                       intrabar_file=settings.intrabar_file)


def align_markets(markets: dict[str, MarketData]) -> dict[str, MarketData]:
    """The symbols' market data cut to the candle opens they all have (one timeline for a portfolio).

    Raises:
        DataError: the symbols' timeframes differ, or they share no candle time.
    """
    frames = list(markets.items())
    tfs = {m.timeframe for _, m in frames}
    if len(tfs) > 1:
        raise DataError("the symbols' candles have different timeframes: " + ", ".join(
            f"{s} {m.timeframe}" for s, m in frames))
    common = pd.DatetimeIndex(frames[0][1].candles["timestamp"])
    for _, m in frames[1:]:
        common = common.intersection(pd.DatetimeIndex(m.candles["timestamp"]))
    if not len(common):
        raise DataError("the symbols' candles share no candle time: " + ", ".join(
            f"{s} {m.candles['timestamp'].iloc[0]:%Y-%m-%d} to {m.candles['timestamp'].iloc[-1]:%Y-%m-%d}"
            for s, m in frames))
    out = {}
    for s, m in frames:
        c = m.candles[pd.DatetimeIndex(m.candles["timestamp"]).isin(common)].reset_index(drop=True)
        c.attrs = dict(m.candles.attrs)
        out[s] = MarketData(c, m.timeframe, m.funding, m.mark, None, m.source, m.series)
    return out
