"""Symbol spellings: what a user types, what ccxt wants, what CoinGlass wants.

- :func:`coin_of` — the base coin CoinGlass and the sentiment keywords use: ``"SOL"`` from
  ``"SOL/USDT:USDT"``, ``"SOLUSDT"``, ``"sol"``, ``"$SOL"`` or ``"SOL-USDT-SWAP"``.
- :func:`perp_symbol` — the ccxt unified symbol of the linear perpetual:
  ``"SOL/USDT:USDT"`` from any of the above.
"""

from __future__ import annotations

import re

__all__ = ["QUOTES", "coin_of", "perp_symbol"]

#: Quote currencies stripped from a concatenated pair like "SOLUSDT" (longest first).
QUOTES = ("USDT", "USDC", "BUSD", "FDUSD", "USD")
_COIN = re.compile(r"^[A-Z0-9]{1,20}$")


def coin_of(symbol: str) -> str:
    """Base coin of ``symbol`` in upper case (see the module docstring).

    Raises:
        ValueError: empty or not a symbol (characters other than letters and digits in the coin).
    """
    text = str(symbol).strip().upper().lstrip("$")
    if not text:
        raise ValueError("empty symbol")
    for sep in ("/", "-", "_", ":"):
        if sep in text:
            text = text.split(sep, 1)[0]
            break
    else:
        for quote in QUOTES:
            if text.endswith(quote) and len(text) > len(quote):
                text = text[: -len(quote)]
                break
    if not _COIN.match(text):
        raise ValueError(f"{symbol!r} is not a symbol like SOL, SOLUSDT or SOL/USDT:USDT")
    return text


def perp_symbol(symbol: str, quote: str = "USDT") -> str:
    """ccxt unified symbol of the ``quote``-margined linear perpetual of ``symbol``'s coin."""
    q = quote.upper()
    return f"{coin_of(symbol)}/{q}:{q}"
