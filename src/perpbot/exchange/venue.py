"""The venue side of live trading: start-up checks, market rules and the account snapshot.

* :func:`check_venue`: API keys present, markets loaded, the symbol listed (a linear
  perpetual swap), the timeframe offered (``ex.timeframes``), integer leverage within the
  market's maximum, the keys accepted (``fetch_balance``); each failure is ONE
  :class:`LiveStartupError` line and nothing has been sent (no private POST);
* :func:`setup_account`: one-way position mode, isolated margin (skipped while a position is
  open; a cross-margin position is refused) and the leverage, before the first order;
* :func:`parse_snapshot`: ccxt positions + balance -> :class:`AccountSnapshot`.

Units: qty base asset, prices and money USDT, fees fractions, times ms UTC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from perpbot.exchange import venue_params
from perpbot.exchange.ccxt_adapter import ExchangeSetupError, describe_error, error_code
from perpbot.exchange.clients import base_per_amount
from perpbot.logs import get_logger

log = get_logger("perpbot.live")

_ENV = {"apiKey": "PERPBOT_API_KEY", "secret": "PERPBOT_API_SECRET", "password": "PERPBOT_API_PASSPHRASE"}


class LiveStartupError(ExchangeSetupError):
    """Live trading cannot start (bad keys, symbol, timeframe, account mode); nothing was sent."""


@dataclass(frozen=True)
class MarketRules:
    """Trading rules of the symbol from the venue: lot and tick size, minimum amount (base) and
    notional (USDT), taker fee (fraction), maximum leverage, contract size (base per contract)."""

    lot: float
    tick: float
    min_qty: float
    min_notional: float
    taker: float
    max_leverage: float
    contract_size: float = 1.0
    maker: float | None = None  # maker fee (fraction; None: the venue does not say)


@dataclass
class PositionInfo:
    """The venue's open position: side +1/-1, qty base, prices USDT, margin USDT, ``opened_ms`` UTC."""

    side: int
    qty: float
    entry_price: float
    liquidation_price: float | None = None
    margin: float | None = None
    mark_price: float | None = None
    unrealized_pnl: float | None = None
    opened_ms: int | None = None
    margin_mode: str | None = None
    leverage: float | None = None


@dataclass
class AccountSnapshot:
    """Position (or None), equity (USDT, incl. unrealised PnL) and free balance (USDT)."""

    position: PositionInfo | None
    equity: float
    free: float


def _step(value, precision_mode: int) -> float:
    import ccxt

    if value is None:
        return math.nan
    return 10.0 ** -float(value) if precision_mode == ccxt.DECIMAL_PLACES else float(value)


async def check_venue(ex, settings, symbol: str, timeframe: str) -> tuple[dict, MarketRules, dict]:
    """(ccxt market, :class:`MarketRules`, ccxt balance) after the checks of the module docstring.

    Raises:
        LiveStartupError: one line naming the problem; nothing was sent.
    """
    import ccxt

    venue = ex.id
    missing = [k for k, need in (getattr(ex, "requiredCredentials", {}) or {}).items()
               if need and k in _ENV and not getattr(ex, k, None)]
    if missing:
        raise LiveStartupError(f"no {venue} API credentials: set {', '.join(_ENV[k] for k in missing)} "
                               "(demo-trading keys for demo mode); nothing was sent")
    lev = float(settings.leverage)
    if not lev.is_integer():
        raise LiveStartupError(f"leverage {lev:g} is not a whole number; {venue} takes integer leverage")
    try:
        await ex.load_markets()
    except ccxt.BaseError as exc:
        raise LiveStartupError(describe_error(exc, f"cannot load {venue} markets")) from None
    if symbol not in ex.markets:
        import difflib

        by_base: dict[str, list[str]] = {}
        for sym, mk in ex.markets.items():
            if mk.get("swap") and mk.get("linear"):
                by_base.setdefault(str(mk.get("base")), []).append(sym)
        near = [sym for b in difflib.get_close_matches(symbol.split("/")[0], list(by_base), n=3) for sym in by_base[b]]
        hint = f" (did you mean {', '.join(near[:3])}?)" if near else ""
        raise LiveStartupError(f"{venue} does not list {symbol}{hint}; nothing was sent")
    m = ex.market(symbol)
    if not (m.get("swap") and m.get("linear")):
        raise LiveStartupError(f"{symbol} on {venue} is not a linear perpetual swap; nothing was sent")
    if timeframe not in (ex.timeframes or {}):
        raise LiveStartupError(f"{venue} does not offer the timeframe {timeframe!r} "
                               f"(it has {', '.join(ex.timeframes or {})}); nothing was sent")
    if base_per_amount(venue, m) != 1.0:  # the executor sends base-asset amounts
        raise LiveStartupError(f"{symbol} on {venue} trades in contracts of {m['contractSize']:g} {m.get('base')}; "
                               "perpbot's executor sends base-asset amounts (contract size 1 only); nothing was sent")
    rules = market_rules(ex, m, settings)
    if lev > rules.max_leverage:
        raise LiveStartupError(f"leverage {lev:g} is above {venue}'s maximum {rules.max_leverage:g} for {symbol}; "
                               "nothing was sent")
    try:
        balance = await ex.fetch_balance()
    except ccxt.AuthenticationError as exc:
        msg = describe_error(exc).split(": ", 1)[-1]
        raise LiveStartupError(f"API key rejected by {venue} ({msg}): check {', '.join(_ENV.values())} "
                               "(demo keys in demo mode); nothing was sent") from None
    except ccxt.BaseError as exc:
        raise LiveStartupError(describe_error(exc, f"cannot read the {venue} account")) from None
    return m, rules, balance


def market_rules(ex, m: dict, settings) -> MarketRules:
    """The :class:`MarketRules` of ccxt market ``m`` (taker fee from the settings when the venue has none)."""
    lim, prec = m.get("limits", {}), m.get("precision", {})
    mode = getattr(ex, "precisionMode", None)
    return MarketRules(lot=_step(prec.get("amount"), mode), tick=_step(prec.get("price"), mode),
                       min_qty=float((lim.get("amount") or {}).get("min") or 0.0),
                       min_notional=float((lim.get("cost") or {}).get("min") or 0.0),
                       taker=float(m.get("taker") or settings.taker_fee / 100),
                       max_leverage=float((lim.get("leverage") or {}).get("max") or 125.0),
                       contract_size=base_per_amount(ex.id, m),
                       maker=float(m["maker"]) if m.get("maker") is not None else None)


async def setup_account(ex, symbol: str, balance: dict, leverage: int, position: PositionInfo | None) -> int:
    """One-way mode, isolated margin (only while flat) and ``leverage`` on ``symbol``; returns the leverage
    in force. An open position whose leverage the venue reports (in the position, else ccxt ``fetch_leverage``:
    Binance ``GET /fapi/v1/symbolConfig``) keeps it (changing an isolated position's leverage moves its margin
    and liquidation price): the next entry sets another one when it needs it.

    Raises:
        LiveStartupError: the venue refused, or an open position uses cross margin.
    """
    import ccxt

    try:
        await venue_params.ensure_one_way(ex, symbol, balance)
        if position is None:
            try:
                await venue_params.setup_isolated(ex, symbol, leverage, margin=True)
            except ccxt.ExchangeError as exc:
                if error_code(exc) not in venue_params.margin_locked_codes(ex.id):  # orders open: reconciliation
                    raise
                log.warning("margin_mode_unchanged", reason=describe_error(exc))
                await ex.set_leverage(leverage, symbol)
            return leverage
        if position.margin_mode not in (None, "isolated"):
            raise LiveStartupError(f"the open {symbol} position uses {position.margin_mode} margin; perpbot trades "
                                   "isolated margin only: close it or switch it on the venue first")
        if position.leverage is None and ex.has.get("fetchLeverage"):  # Binance: not in its position answer
            got = await ex.fetch_leverage(symbol) or {}
            lev = got.get("longLeverage" if position.side > 0 else "shortLeverage")
            position.leverage = float(lev) if lev else None
        if position.leverage is not None and position.leverage >= 1 and position.leverage == int(position.leverage):
            return int(position.leverage)
        await venue_params.setup_isolated(ex, symbol, leverage, margin=False)
        return leverage
    except LiveStartupError:
        raise
    except ccxt.BaseError as exc:
        raise LiveStartupError(describe_error(exc, "account set-up (position mode / margin mode / leverage)")) from None


def parse_snapshot(positions: list, balance: dict, symbol: str, settle: str = "USDT",
                   exchange_id: str = "") -> AccountSnapshot:
    """ccxt ``fetch_positions`` + ``fetch_balance`` -> :class:`AccountSnapshot` (equity = ccxt
    ``total`` of the settle currency, which for Bitget futures is the account equity; the position
    in base asset: contracts x :func:`~perpbot.exchange.clients.base_per_amount` of ``exchange_id``)."""
    pos = None
    for p in positions or []:
        qty = float(p.get("contracts") or 0.0) * base_per_amount(exchange_id, p)
        if p.get("symbol") == symbol and qty > 0:
            pos = PositionInfo(side=1 if p.get("side") == "long" else -1, qty=qty, entry_price=float(p["entryPrice"]),
                               liquidation_price=p.get("liquidationPrice"),
                               margin=p.get("initialMargin") or p.get("collateral"), mark_price=p.get("markPrice"),
                               unrealized_pnl=p.get("unrealizedPnl"), opened_ms=p.get("timestamp"),
                               margin_mode=p.get("marginMode"),
                               leverage=float(p["leverage"]) if p.get("leverage") else None)
    acct = balance.get(settle) or {}
    return AccountSnapshot(pos, float(acct.get("total") or 0.0), float(acct.get("free") or 0.0))
