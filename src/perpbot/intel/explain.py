"""The sentiment score and the market explanation of a symbol — pure functions of a
:class:`~perpbot.intel.snapshot.MarketSnapshot` and the timeframe :class:`~perpbot.intel.analysis.Bias`.

**Sentiment score** (:func:`sentiment_score`, in [-100, 100], positive = the crowd leans
bullish): the mean of the components that are available, each clipped to [-100, 100]:

| component | from | value |
|---|---|---|
| ``funding`` | mean CoinGlass funding rate over USDT-margined venues (else the venue's own rate) | rate % per interval / 0.05 % × 100 (0.05 % per 8 h = +100: longs pay heavily) |
| ``long_short`` | CoinGlass taker buy share of volume | (buy % − 50) × 10 (60 % buys = +100) |
| ``open_interest`` | CoinGlass 24 h open-interest change and the venue's 24 h price change | OI change % × 10 × sign(price change): rising OI confirms the move, falling OI weakens it |
| ``liquidations`` | CoinGlass long / short liquidations of the last 6 bars | (short − long) / (short + long) × 100 (shorts squeezed = +) |
| ``fear_greed`` | alternative.me index | (value − 50) × 2 |
| ``news`` | news / Reddit sentiment (VADER or the plugged-in scorer, [-1, 1]) | score × 100 (only with at least one post) |

Label: "bullish" from +20, "bearish" from −20, else "neutral"; "unknown" without any
component. A heuristic summary of positioning, not a forecast.

**Market explanation** (:func:`explain`): a list of :class:`Reason` (a text key plus values)
that :mod:`perpbot.notify.signal_replies` turns into English or Indonesian sentences: the
bias and how many timeframes agree, RSI extremes, crowded funding, what open interest says
about the move, a liquidation squeeze, extreme fear or greed, and — when the volume profile
is used — where the price is against the POC and the value area and how large ATR(1m) is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from perpbot.intel.analysis import Bias

__all__ = ["LIQUIDATION_BARS", "Reason", "Sentiment", "explain", "sentiment_score"]

#: Liquidation bars summed by the score and the explanation (6 × 4 h = 24 h at the default interval).
LIQUIDATION_BARS = 6
LABEL_AT = 20.0


def _clip(x: float) -> float:
    return float(np.clip(x, -100.0, 100.0))


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


@dataclass(frozen=True)
class Sentiment:
    """``score`` in [-100, 100] (NaN without components), ``label``, the ``components`` used."""

    score: float
    label: str
    components: dict[str, float] = field(default_factory=dict)


def funding_pct(snap: Any) -> float | None:
    """Funding rate in percent per interval: CoinGlass's mean over USDT-margined venues, else
    the venue's own rate (a fraction, converted), else None."""
    fr = snap.get("funding")
    if fr is not None and _finite(fr.mean_rate_pct):
        return float(fr.mean_rate_pct)
    vf = snap.get("venue_funding")
    if vf is not None and _finite(vf.funding_rate):
        return float(vf.funding_rate) * 100.0
    return None


def sentiment_score(snap: Any) -> Sentiment:
    """The sentiment score of a snapshot (module docstring)."""
    c: dict[str, float] = {}
    rate = funding_pct(snap)
    if rate is not None:
        c["funding"] = _clip(rate / 0.05 * 100.0)
    lsr = snap.get("long_short")
    if lsr is not None and _finite(lsr.buy_ratio_pct):
        c["long_short"] = _clip((lsr.buy_ratio_pct - 50.0) * 10.0)
    oi, tk = snap.get("open_interest"), snap.get("ticker")
    if oi is not None and tk is not None and _finite(oi.change_24h_pct) and _finite(tk.change_pct):
        c["open_interest"] = _clip(oi.change_24h_pct * 10.0 * float(np.sign(tk.change_pct)))
    liq = snap.get("liquidations")
    if liq is not None:
        long_usd, short_usd = liq.total(LIQUIDATION_BARS)
        if _finite(long_usd) and _finite(short_usd) and long_usd + short_usd > 0:
            c["liquidations"] = _clip((short_usd - long_usd) / (short_usd + long_usd) * 100.0)
    fg = snap.get("fear_greed")
    if fg is not None:
        c["fear_greed"] = _clip((fg.value - 50.0) * 2.0)
    news = snap.get("sentiment")
    if news is not None and news.n_posts > 0 and _finite(news.score):
        c["news"] = _clip(news.score * 100.0)
    if not c:
        return Sentiment(math.nan, "unknown", {})
    score = sum(c.values()) / len(c)
    label = "bullish" if score >= LABEL_AT else "bearish" if score <= -LABEL_AT else "neutral"
    return Sentiment(score, label, c)


@dataclass(frozen=True)
class Reason:
    """One sentence of the explanation: ``key`` (a text of :mod:`perpbot.notify.signal_replies`)
    and the ``values`` it is filled with (numbers stay numbers; the text formats them)."""

    key: str
    values: dict[str, Any] = field(default_factory=dict)


def explain(snap: Any, bias: Bias | None, rows: dict[str, dict | None], *, use_profile: bool = True) -> list[Reason]:
    """The market explanation (module docstring), most important first."""
    out: list[Reason] = []
    if bias is not None:
        n = sum(1 for v in bias.scores.values() if v is not None)
        out.append(Reason(f"bias_{bias.direction}", {"agree": bias.agreeing, "of": n, "strength": bias.strength}))
    for tf in ("1h", "4h"):
        rsi = (rows.get(tf) or {}).get("rsi14")
        if rsi is not None and (rsi >= 70 or rsi <= 30):
            out.append(Reason("rsi_overbought" if rsi >= 70 else "rsi_oversold", {"tf": tf, "rsi": rsi}))
    rate = funding_pct(snap)
    if rate is not None and abs(rate) >= 0.03:
        out.append(Reason("funding_longs_pay" if rate > 0 else "funding_shorts_pay", {"rate_pct": rate}))
    oi, tk = snap.get("open_interest"), snap.get("ticker")
    if oi is not None and tk is not None and _finite(oi.change_24h_pct) and _finite(tk.change_pct):
        rising, up = oi.change_24h_pct > 0, tk.change_pct > 0
        key = {(True, True): "oi_confirms_up", (True, False): "oi_confirms_down",
               (False, True): "oi_short_covering", (False, False): "oi_long_unwinding"}[(rising, up)]
        out.append(Reason(key, {"oi_pct": oi.change_24h_pct, "price_pct": tk.change_pct}))
    liq = snap.get("liquidations")
    if liq is not None:
        long_usd, short_usd = liq.total(LIQUIDATION_BARS)
        total = long_usd + short_usd
        if _finite(total) and total > 0 and max(long_usd, short_usd) >= 0.65 * total:
            key = "liq_longs" if long_usd > short_usd else "liq_shorts"
            out.append(Reason(key, {"usd": max(long_usd, short_usd), "share": max(long_usd, short_usd) / total}))
    fg = snap.get("fear_greed")
    if fg is not None and (fg.value <= 25 or fg.value >= 75):
        out.append(Reason("extreme_fear" if fg.value <= 25 else "extreme_greed", {"value": fg.value}))
    micro = snap.get("micro")
    if use_profile and micro is not None:
        prof = micro.profile
        if prof is not None:
            price = micro.last_close
            if prof.value_area_low <= price <= prof.value_area_high:
                key = "inside_value"
            else:
                key = "above_value" if price > prof.value_area_high else "below_value"
            out.append(Reason(key, {"poc": prof.poc, "val": prof.value_area_low, "vah": prof.value_area_high,
                                    "minutes": micro.minutes}))
        if _finite(micro.atr_pct):
            out.append(Reason("atr_1m", {"atr": micro.atr, "atr_pct": micro.atr_pct}))
    return out
