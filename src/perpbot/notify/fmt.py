"""Human formatting of numbers, times and long texts for operator messages (English / Indonesian).

English groups thousands with "," and uses "." for decimals ("1,234.56"); Indonesian the
other way round ("1.234,56"), as Indonesian readers expect. Money is USDT with 2 decimals,
prices are rounded to the market's tick size, quantities to its lot size, fractions are
shown as percents. Missing values (None, NaN, inf) show as "-".
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pandas as pd

#: Telegram's limit on one message's text (characters).
TELEGRAM_LIMIT = 4096
DASH = "-"


def _finite(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def decimals_for_step(step: float) -> int:
    """Decimals needed to show multiples of ``step`` (0.001 -> 3, 0.1 -> 1, 1 -> 0, 0.0005 -> 4)."""
    if step <= 0 or not math.isfinite(step):
        raise ValueError(f"step {step!r} must be a positive finite number")
    exp = Decimal(repr(float(step))).normalize().as_tuple().exponent
    return max(0, -int(exp))


def number(x: Any, decimals: int = 2, lang: str = "en", sign: bool = False) -> str:
    """``x`` with thousands grouping and ``decimals`` decimals in the language's style."""
    v = _finite(x)
    if v is None:
        return DASH
    text = format(v, f"{'+' if sign else ''},.{decimals}f")
    if text.lstrip("+-").strip("0.,") == "":  # "-0.00" -> "0.00"
        text = text.lstrip("+-")
        if sign:
            text = "+" + text
    if lang == "id":
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text


def usdt(x: Any, lang: str = "en", sign: bool = False) -> str:
    """Amount in USDT, 2 decimals: ``1,234.50 USDT`` / ``1.234,50 USDT``."""
    v = _finite(x)
    return DASH if v is None else f"{number(v, 2, lang, sign)} USDT"


def price(x: Any, tick: float = 0.001, lang: str = "en") -> str:
    """Price rounded to the tick size (0.001 -> 3 decimals)."""
    v = _finite(x)
    if v is None:
        return DASH
    d = decimals_for_step(tick)
    return number(round(v / tick) * tick, d, lang)


def qty(x: Any, lot: float = 0.1, lang: str = "en") -> str:
    """Quantity (base asset) rounded to the lot size."""
    v = _finite(x)
    if v is None:
        return DASH
    return number(round(v / lot) * lot, decimals_for_step(lot), lang)


def pct(fraction: Any, lang: str = "en", decimals: int = 2, sign: bool = False) -> str:
    """A fraction as a percent: 0.1234 -> ``12.34%`` (``12,34%`` in Indonesian)."""
    v = _finite(fraction)
    return DASH if v is None else f"{number(v * 100.0, decimals, lang, sign)}%"


def when(t: Any) -> str:
    """UTC time as ``2025-06-15 10:35 UTC`` (accepts Timestamp, datetime or ISO text)."""
    if t is None or (isinstance(t, float) and math.isnan(t)):
        return DASH
    try:
        ts = pd.Timestamp(t)
    except (TypeError, ValueError):
        return str(t)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return f"{ts:%Y-%m-%d %H:%M} UTC"


def base_asset(symbol: str) -> str:
    """``SOL/USDT:USDT`` -> ``SOL``."""
    return symbol.split("/")[0]


def split_message(text: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Split ``text`` into chunks of at most ``limit`` characters, at line breaks when possible.

    Joining the chunks with "\\n" gives back the text when every split fell on a line break.
    Raises ValueError for ``limit`` < 1.
    """
    if limit < 1:
        raise ValueError(f"limit {limit} must be >= 1")
    chunks: list[str] = []
    current: str | None = None
    for line in text.split("\n"):
        while len(line) > limit:  # a single over-long line: hard split
            if current is not None:
                chunks.append(current)
                current = None
            chunks.append(line[:limit])
            line = line[limit:]
        if current is None:
            current = line
        elif len(current) + 1 + len(line) > limit:
            chunks.append(current)
            current = line
        else:
            current = f"{current}\n{line}"
    if current is not None:
        chunks.append(current)
    return chunks
