"""OKX errors of the simulator and the one table translating the shared engine's Bitget
:class:`SimError` codes into them.

Shapes (OKX API v5 "Error Code"): a refused request answers ``{"code": "51603", "msg": "Order does
not exist", "data": []}``; a refused order (place, cancel) answers ``{"code": "1", "msg": "All
operations failed", "data": [{"sCode": "51008", "sMsg": "...", "ordId": "", "clOrdId": ...}]}``,
both with HTTP 200; authentication refusals HTTP 401. The classes ccxt 4.5 raises come from
``okx.exceptions["exact"]`` (matched on ``sCode`` first, then ``code``): 51603 / 51400 / 51402
OrderNotFound, 51008 InsufficientFunds, 51016 / 51020 / 51121 / 51277-51280 InvalidOrder, 51000 /
50014 BadRequest, 51001 BadSymbol, 50102 InvalidNonce, 50103-50105 / 50111-50113
AuthenticationError, 50011 RateLimitExceeded; 51169 (not in ccxt's table) ExchangeError.
"""

from __future__ import annotations

from perpbot.devtools.bitget_sim.errors import SimError
from perpbot.devtools.facade import VenueError


class OkxError(VenueError):
    """A refused request: ``code`` (OKX's, a digit string), ``msg``, HTTP ``status`` (200 by default),
    ``data`` (the per-order rows of a refused order request: ``sCode`` / ``sMsg``); ``body()`` =
    ``{"code": code, "msg": msg, "data": data}``."""

    def __init__(self, code: str, msg: str, status: int = 200, data: list | None = None) -> None:
        super().__init__(str(code), msg, status)
        self.data = data or []

    def body(self) -> dict:
        return {"code": self.code, "msg": self.msg, "data": self.data}


#: Bitget engine code -> (OKX code, OKX message)
BITGET_TO_OKX: dict[str, tuple[str, str]] = {
    "40768": ("51603", "Order does not exist"),
    "43025": ("51603", "Order does not exist"),
    "40762": ("51008", "Order failed. Insufficient USDT margin in account"),
    "22002": ("51169", "Order placement failed because you don't have any positions in this direction for this "
                       "contract."),
    "43023": ("51169", "Order placement failed because you don't have any positions in this direction for this "
                       "contract."),
    "40917": ("51280", "SL trigger price cannot be higher than the last price"),
    "45122": ("51278", "SL trigger price cannot be lower than the last price"),
    "40915": ("51279", "TP trigger price cannot be lower than the last price"),  # short side: 51277 (orders.py)
    "40786": ("51016", "Duplicated clOrdId"),
    "40305": ("51000", "Parameter clOrdId error"),
    "45111": ("51020", "Order amount should be greater than the min available amount."),
    "40808": ("51121", "Order quantity must be a multiple of the lot size."),
    "41103": ("51000", "Parameter px error"),
    "40034": ("51001", "Instrument ID does not exist."),
    "40019": ("50014", "Parameter instId can not be empty."),
    "40797": ("59102", "Leverage exceeds the maximum leverage. Please adjust the leverage."),
    "45117": ("59000", "Your settings failed as you have positions or open orders."),
}


def translate(exc: SimError) -> OkxError:
    """The OKX error for an engine :class:`SimError` (table above). A code already OKX's (five
    digits starting 5, e.g. armed by ``faults.reject_orders(code="51008")``) passes through with its
    message; 40017 (the engine's parameter check) becomes 51000 with the engine's detail; an unknown
    one becomes 50000 with its text."""
    code = str(exc.code)
    if len(code) == 5 and code.startswith("5"):
        return OkxError(code, exc.msg)
    if code == "40017":
        return OkxError("51000", f"Parameter error: {exc.msg}")
    hit = BITGET_TO_OKX.get(code)
    return OkxError(*hit) if hit else OkxError("50000", f"Internal error ({exc.code} {exc.msg})")


def failed(err: OkxError | SimError, **row) -> OkxError:
    """The answer to an order request whose every order was refused: code 1 and one ``sCode`` row."""
    e = err if isinstance(err, OkxError) else translate(err)
    return OkxError("1", "All operations failed", data=[{**row, "sCode": e.code, "sMsg": e.msg, "tag": ""}])


def empty(name: str) -> OkxError:
    return OkxError("50014", f"Parameter {name} can not be empty.")


def bad(name: str) -> OkxError:
    return OkxError("51000", f"Parameter {name} error")
