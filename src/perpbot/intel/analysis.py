"""Timeframe analysis, bias, the short signal and intraday (scalp) levels — pure functions.

One implementation for every interface: the signal bot's ``/signal``, ``/timeframes`` and
``/scalp``, the command bot's ``/timeframes`` and the dashboard's indicator panel
(:meth:`perpbot.bot.context.BotContext.indicators` delegates to :func:`indicators_from_base`).
The sentiment score and the market explanation are in :mod:`perpbot.intel.explain`.

**Indicators of one timeframe** (:func:`indicator_row`, TA-Lib, last CLOSED candle): EMA(20),
EMA(50), RSI(14) (0..100), ATR(14) (Wilder, quote currency), close; ``trend`` "up" when
EMA20 > EMA50 else "down". At least :data:`MIN_CANDLES` candles are needed (EMA(50) plus ten
bars of seed decay), else there is no row.

**Timeframe score** (:func:`timeframe_score`, in [-1, 1]): 0.5 × trend (+1 up, −1 down)
+ 0.25 × price side (+1 close above EMA20, −1 below, 0 on it) + 0.25 × momentum
((RSI − 50) / 50, clipped to [-1, 1]).

**Bias** (:func:`bias_of`): the weighted mean of the timeframe scores with weights
:data:`TF_WEIGHTS` (5m 1, 15m 1.5, 1h 2, 4h 2.5: slower timeframes weigh more), over the
timeframes that have a row. Direction "long" when the bias >= :data:`BIAS_THRESHOLD` (0.25),
"short" when <= −0.25, else "neutral"; strength "strong" from 0.6 in absolute value.

**Short signal** (:func:`short_signal`): LONG when the bias is long, the 15m score agrees
(> 0) and the 15m RSI is below 70 (not overbought); SHORT mirrored (RSI above 30); else WAIT.
Entry reference = last 1h close; stop-loss / take-profit = entry ∓/± ``stop_atr`` /
``tp_atr`` × ATR(14) of 1h (the settings ``stop_loss_atr`` / ``take_profit_atr``).

**Scalp** (:func:`scalp_view`): intraday bias = 0.4 × score(5m) + 0.4 × score(15m) + 0.2 ×
side of the POC (+1 above, −1 below; only when the volume profile is used, else the two
scores share the weight 0.5 / 0.5). Stop-loss / take-profit = price ∓/± ``stop_atr`` /
``tp_atr`` × ATR(1m) for the bias's side (both sides when neutral).

These are heuristics that summarise indicators, not a tested trading edge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import talib

__all__ = [
    "BIAS_THRESHOLD", "MIN_CANDLES", "TF_WEIGHTS", "TIMEFRAMES", "Bias", "Levels", "ScalpView", "TradeSignal",
    "bias_of", "indicator_row", "indicators_from_base", "levels", "scalp_view", "short_signal", "timeframe_score",
]

#: Timeframes of the analysis, fastest first.
TIMEFRAMES = ("5m", "15m", "1h", "4h")
#: Weight of each timeframe's score in the bias.
TF_WEIGHTS = {"5m": 1.0, "15m": 1.5, "1h": 2.0, "4h": 2.5}
#: Closed candles an indicator row needs.
MIN_CANDLES = 60
BIAS_THRESHOLD = 0.25
STRONG = 0.6


def _f(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def indicator_row(candles: pd.DataFrame) -> dict[str, Any] | None:
    """Indicators of the last candle of ``candles`` (closed candles, oldest first; columns
    ``timestamp`` (UTC open), ``high``, ``low``, ``close`` in quote currency).

    Returns ``{time (ISO UTC open of the last candle), close, ema20, ema50, rsi14, atr14,
    trend ("up"/"down")}`` (floats, None when not finite) or None with fewer than
    :data:`MIN_CANDLES` rows.
    """
    if len(candles) < MIN_CANDLES:
        return None
    h, lo, cl = (np.ascontiguousarray(candles[k].to_numpy(np.float64)) for k in ("high", "low", "close"))
    ema20, ema50 = talib.EMA(cl, 20)[-1], talib.EMA(cl, 50)[-1]
    t = pd.Timestamp(candles["timestamp"].iloc[-1])
    return {"time": t.isoformat(), "close": _f(cl[-1]), "ema20": _f(ema20), "ema50": _f(ema50),
            "rsi14": _f(talib.RSI(cl, 14)[-1]), "atr14": _f(talib.ATR(h, lo, cl, 14)[-1]),
            "trend": "up" if ema20 > ema50 else "down"}


def indicators_from_base(base: pd.DataFrame, base_timeframe: str,
                         timeframes: tuple[str, ...] = TIMEFRAMES) -> dict[str, dict]:
    """:func:`indicator_row` per timeframe from one candle frame of ``base_timeframe``: higher
    timeframes are resampled (complete bars only) from the last 300 bars' worth of base candles;
    timeframes finer than the base, or with too few bars, are left out."""
    from perpbot.data.resample import resample_candles
    from perpbot.data.validate import timeframe_to_ms

    base_ms = timeframe_to_ms(base_timeframe)
    out: dict[str, dict] = {}
    for tf in timeframes:
        ms = timeframe_to_ms(tf)
        if ms < base_ms:
            continue
        c = base if ms == base_ms else resample_candles(base.iloc[-(ms // base_ms) * 300:], tf)
        row = indicator_row(c)
        if row is not None:
            out[tf] = row
    return out


def timeframe_score(row: dict | None) -> float | None:
    """Score of one timeframe in [-1, 1] (module docstring); None without a row or values."""
    if not row or None in (row.get("close"), row.get("ema20"), row.get("ema50"), row.get("rsi14")):
        return None
    trend = 1.0 if row["ema20"] > row["ema50"] else -1.0
    side = float(np.sign(row["close"] - row["ema20"]))
    momentum = float(np.clip((row["rsi14"] - 50.0) / 50.0, -1.0, 1.0))
    return 0.5 * trend + 0.25 * side + 0.25 * momentum


def _direction(score: float) -> str:
    return "long" if score >= BIAS_THRESHOLD else "short" if score <= -BIAS_THRESHOLD else "neutral"


@dataclass(frozen=True)
class Bias:
    """Weighted bias of the timeframes: ``score`` in [-1, 1], ``direction`` long / short /
    neutral, ``strength`` strong / moderate / weak, ``scores`` per timeframe (None: no row)."""

    score: float
    direction: str
    strength: str
    scores: dict[str, float | None]

    @property
    def agreeing(self) -> int:
        """Timeframes whose score has the bias's sign."""
        s = np.sign(self.score)
        return sum(1 for v in self.scores.values() if v is not None and np.sign(v) == s and s != 0)


def bias_of(rows: dict[str, dict | None]) -> Bias | None:
    """Bias of the timeframe rows (module docstring); None when no timeframe has a score."""
    scores = {tf: timeframe_score(rows.get(tf)) for tf in TIMEFRAMES if tf in rows}
    have = {tf: s for tf, s in scores.items() if s is not None}
    if not have:
        return None
    w = sum(TF_WEIGHTS[tf] for tf in have)
    score = sum(TF_WEIGHTS[tf] * s for tf, s in have.items()) / w
    strength = "strong" if abs(score) >= STRONG else "moderate" if abs(score) >= BIAS_THRESHOLD else "weak"
    return Bias(score=score, direction=_direction(score), strength=strength, scores=scores)


@dataclass(frozen=True)
class Levels:
    """Stop-loss and take-profit of one side around ``entry`` (quote currency); ``risk_pct`` and
    ``reward_pct`` are the distances in percent of ``entry``."""

    side: str            # "long" or "short"
    entry: float
    stop_loss: float
    take_profit: float

    @property
    def risk_pct(self) -> float:
        return abs(self.entry - self.stop_loss) / self.entry * 100.0

    @property
    def reward_pct(self) -> float:
        return abs(self.take_profit - self.entry) / self.entry * 100.0


def levels(side: str, entry: float, atr: float, stop_atr: float, tp_atr: float) -> Levels:
    """Stop-loss at ``stop_atr`` × ``atr`` and take-profit at ``tp_atr`` × ``atr`` from ``entry``
    on the losing / winning side of a ``side`` ("long" / "short") position.

    Raises:
        ValueError: unknown side, or a non-positive / non-finite entry, ATR or multiple.
    """
    if side not in ("long", "short"):
        raise ValueError(f"side must be 'long' or 'short', got {side!r}")
    if not all(math.isfinite(v) and v > 0 for v in (entry, atr, stop_atr, tp_atr)):
        raise ValueError("entry, atr and the multiples must be finite and > 0")
    sign = 1.0 if side == "long" else -1.0
    return Levels(side, entry, entry - sign * stop_atr * atr, entry + sign * tp_atr * atr)


@dataclass(frozen=True)
class TradeSignal:
    """The short signal: ``action`` LONG / SHORT / WAIT, its ``levels`` (None for WAIT) and the
    ``reason`` key (``aligned``, ``no_bias``, ``fast_disagrees``, ``overbought``, ``oversold``,
    ``no_data``)."""

    action: str
    reason: str
    levels: Levels | None = None


def short_signal(rows: dict[str, dict | None], bias: Bias | None, stop_atr: float, tp_atr: float) -> TradeSignal:
    """The short signal from the timeframe rows and their bias (module docstring)."""
    r15, r1h = rows.get("15m"), rows.get("1h")
    if bias is None or not r15 or not r1h or r1h.get("close") is None or r1h.get("atr14") is None:
        return TradeSignal("WAIT", "no_data")
    if bias.direction == "neutral":
        return TradeSignal("WAIT", "no_bias")
    s15 = timeframe_score(r15) or 0.0
    rsi15 = r15.get("rsi14") or 50.0
    if bias.direction == "long":
        if s15 <= 0:
            return TradeSignal("WAIT", "fast_disagrees")
        if rsi15 >= 70:
            return TradeSignal("WAIT", "overbought")
    else:
        if s15 >= 0:
            return TradeSignal("WAIT", "fast_disagrees")
        if rsi15 <= 30:
            return TradeSignal("WAIT", "oversold")
    lv = levels(bias.direction, r1h["close"], r1h["atr14"], stop_atr, tp_atr)
    return TradeSignal(bias.direction.upper(), "aligned", lv)


@dataclass(frozen=True)
class ScalpView:
    """Intraday view of ``/scalp``: ``score`` in [-1, 1], ``direction``, the ``levels`` of the
    side(s) shown, ``price`` (last 1m close, else the 5m close) and ``poc_side`` (+1 above the
    POC, −1 below, 0 on it, None when the profile is not used)."""

    score: float
    direction: str
    price: float
    levels: tuple[Levels, ...] = field(default_factory=tuple)
    poc_side: int | None = None


def scalp_view(rows: dict[str, dict | None], price: float | None, atr_1m: float | None, poc: float | None,
               stop_atr: float, tp_atr: float) -> ScalpView | None:
    """The intraday view (module docstring); None without a 5m or 15m score or a price.

    ``price``: last price (quote currency); ``atr_1m``: ATR(1m) in quote currency (None or NaN:
    no levels); ``poc``: the volume profile's POC, or None to leave the profile out.
    """
    s5, s15 = timeframe_score(rows.get("5m")), timeframe_score(rows.get("15m"))
    if s5 is None or s15 is None:
        return None
    if price is None or not math.isfinite(price) or price <= 0:
        price = (rows.get("5m") or {}).get("close")
        if price is None:
            return None
    poc_side = None
    if poc is not None and math.isfinite(poc):
        poc_side = int(np.sign(price - poc))
        score = 0.4 * s5 + 0.4 * s15 + 0.2 * poc_side
    else:
        score = 0.5 * s5 + 0.5 * s15
    direction = _direction(score)
    lv: tuple[Levels, ...] = ()
    if atr_1m is not None and math.isfinite(atr_1m) and atr_1m > 0:
        sides = ("long", "short") if direction == "neutral" else (direction,)
        lv = tuple(levels(s, price, atr_1m, stop_atr, tp_atr) for s in sides)
    return ScalpView(score=score, direction=direction, price=float(price), levels=lv, poc_side=poc_side)
