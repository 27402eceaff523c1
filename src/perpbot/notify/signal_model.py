"""The model's call in the signal bot's ``/signal``: a trained model for the asked symbol, fed
with fresh venue candles through the same code as the command bot's ``/signal``
(:meth:`perpbot.bot.context.BotContext.current_signal`).

Which model: ``signal_models[COIN]`` (settings: coin -> model file), else — for the coin of
the traded ``symbol`` — ``model_file``. No file: no model line (not reported missing). The
bundle is loaded once per file and again when the file changes. Candles: the last
``live_window`` closed candles of the settings' ``timeframe`` from the signal venue. Funding
features (a model trained with ``funding = true``) read ``funding_file``, which holds the
traded symbol's history only: for another coin the model runs without funding and a model
that needs it is reported missing with that reason.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pandas as pd

from perpbot.intel.symbols import coin_of
from perpbot.logs import get_logger

__all__ = ["ModelCaller"]

log = get_logger("perpbot.signal_bot")
_TF_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000}


class ModelCaller:
    """``await caller(symbol) -> dict | None`` (the dict of ``BotContext.current_signal``).

    Args:
        settings: :class:`perpbot.config.Settings`.
        venue: the signal venue's :class:`~perpbot.intel.venue.VenueClient`.
        now_ms: wall clock, ms UTC (closed-candle cut).
    """

    def __init__(self, settings: Any, venue: Any, now_ms=lambda: int(time.time() * 1000)) -> None:
        self.settings, self.venue, self.now_ms = settings, venue, now_ms
        self._bundles: dict[Path, tuple[float, Any]] = {}

    def path_for(self, symbol: str) -> Path | None:
        """The model file of ``symbol``'s coin, or None when there is none."""
        coin = coin_of(symbol)
        models = {coin_of(k): Path(v) for k, v in self.settings.signal_models.items()}
        path = models.get(coin)
        if path is None and coin == coin_of(self.settings.symbol):
            path = Path(self.settings.model_file)
        return path if path is not None and path.is_file() else None

    def _bundle(self, path: Path) -> Any:
        from perpbot.ml.registry import load_bundle

        mtime = path.stat().st_mtime
        held = self._bundles.get(path)
        if held is None or held[0] != mtime:
            held = self._bundles[path] = (mtime, load_bundle(path))
        return held[1]

    async def __call__(self, symbol: str) -> dict | None:
        path = self.path_for(symbol)
        if path is None or self.venue is None:
            return None
        s = self.settings
        step = _TF_MS[s.timeframe]
        rows = await self.venue.ohlcv(symbol, s.timeframe, s.live_window + 1)
        now = self.now_ms()
        rows = [r for r in rows if r[0] + step <= now][-s.live_window:]
        frame = pd.DataFrame(rows, columns=["timestamp", "open", "high", "low", "close", "volume"])
        frame["timestamp"] = pd.to_datetime(frame["timestamp"].astype("int64"), unit="ms", utc=True)
        frame.attrs["timeframe"] = s.timeframe
        own = coin_of(symbol) == coin_of(s.symbol)
        local = s.model_copy(update={"symbol": symbol, **({} if own else {"funding": False, "funding_file": None})})
        return await asyncio.to_thread(self._call, path, local, frame, symbol)

    def _call(self, path: Path, settings: Any, frame: pd.DataFrame, symbol: str) -> dict:
        from perpbot.bot.context import BotContext

        bundle = self._bundle(path)
        ctx = BotContext(settings, candles_source=lambda _sym: frame, bundle=bundle)
        try:
            return ctx.current_signal(symbol, window=len(frame))
        except Exception as exc:
            if "funding" in str(exc) and not settings.funding:
                raise RuntimeError(f"the model needs funding history, held for {coin_of(self.settings.symbol)} "
                                   "only") from None
            raise
