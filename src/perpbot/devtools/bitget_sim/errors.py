"""The simulator's business error (a Bitget error code, message and HTTP status) and the
parsing of numeric request parameters into such errors."""

from __future__ import annotations

from typing import Callable


class SimError(Exception):
    """A request the exchange refuses: answered ``{"code": code, "msg": msg, "data": null}``.

    ``status`` is the HTTP status (Bitget answers business errors with 400).
    """

    def __init__(self, code: str, msg: str, status: int = 400) -> None:
        super().__init__(f"{code} {msg}")
        self.code = str(code)
        self.msg = msg
        self.status = status


def bad_param(msg: str) -> SimError:
    """40017 "Parameter verification failed" with the detail in the message (ccxt: BadRequest)."""
    return SimError("40017", f"Parameter verification failed: {msg}")


def parse_price(params: dict, key: str) -> float | None:
    """``params[key]`` as a price / size > 0, None when absent, empty or "0"; 40017 otherwise."""
    v = params.get(key)
    if v in (None, "", "0"):
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise bad_param(f"{key}={v!r} is not a number") from None
    if not x > 0:
        raise bad_param(f"{key} must be > 0, got {v}")
    return x


def parse_int(params: dict, key: str, default: int | None = None,
              error: Callable[[str, object], Exception] | None = None) -> int | None:
    """``params[key]`` as an int, ``default`` when absent or empty; otherwise ``error(key, value)``
    is raised (default: 40017 "... is not an integer"; a facade passes its venue's error)."""
    v = params.get(key)
    if v in (None, ""):
        return default
    try:
        return int(v)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise (error or _not_int)(key, v) from None


def _not_int(key: str, v: object) -> SimError:
    return bad_param(f"{key}={v!r} is not an integer")
