"""The venue's market rules, fetched through its ccxt client and cached on disk with an expiry.

:func:`refresh_markets` asks the configured venue (the real ccxt client,
:func:`perpbot.exchange.download_request.make_sync_exchange`) for ``load_markets()`` and, per
symbol, ``fetch_market_leverage_tiers(symbol)``, and writes one entry per symbol into the venue's
cache file ``Settings.markets_file(exchange)`` (format: :mod:`perpbot.sim.market_rules`, which
reads it for the backtest and paper accounts). The file is rewritten atomically (temporary file
in the same folder, then ``os.replace``), entries of other symbols kept.

From the ccxt unified market structure (ccxt Manual, "Market structure" / "Precision and limits"):

* ``lot`` = ``precision.amount`` x ``contractSize``, ``min_qty`` = ``limits.amount.min`` x
  ``contractSize`` (ccxt amounts of derivatives are contracts; perpbot's quantities are base asset);
* ``tick`` = ``precision.price``; both precisions are converted by the client's
  ``precisionMode``: TICK_SIZE (the step itself; Bitget, Binance, Bybit, OKX, MEXC in ccxt 4.5),
  DECIMAL_PLACES (step = 10^-value), SIGNIFICANT_DIGITS (no fixed step: left out, so the shipped
  rule stands);
* ``min_notional`` = ``limits.cost.min`` (USDT); ``max_leverage`` = ``limits.leverage.max``;
* tiers from the leverage tiers structure: ``minNotional`` / ``maxNotional`` /
  ``maintenanceMarginRate`` / ``maxLeverage``. ccxt gives the bounds in USDT for Bitget
  (``startUnit`` / ``endUnit``), Binance (``notionalFloor`` / ``notionalCap``) and Bybit
  (``riskLimitValue``), but in contracts for OKX (``minSz`` / ``maxSz``) and MEXC (``riskIncrVol``):
  those venues' tiers are not cached (the shipped tiers stand; ``tiers_note`` says why).

Expiry: an entry younger than ``markets_max_age`` hours is used as it is (no request); an older
or missing one is fetched; when the fetch fails the stale entry is kept and used with a warning,
and with no entry the shipped rules stand (warning). Units: qty base asset, prices and money
USDT, rates fractions, times ms UTC.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from perpbot.data.store import atomic_write
from perpbot.exchange.ccxt_adapter import describe_error
from perpbot.exchange.clients import base_per_amount
from perpbot.logs import get_logger
from perpbot.sim.market_rules import CACHE_VERSION, cached_entry, read_cache, shipped_rules

log = get_logger("perpbot.markets")

#: venues whose ccxt leverage tiers have USDT bounds (the others': contracts, module docstring)
TIERS_IN_QUOTE = ("bitget", "binanceusdm", "binance", "bybit")


class MarketCacheError(RuntimeError):
    """The venue cannot be asked at all (unknown exchange id); one line for the user."""


def precision_step(value, mode) -> float | None:
    """A ccxt precision as a step: TICK_SIZE -> the value, DECIMAL_PLACES -> 10^-value,
    SIGNIFICANT_DIGITS or missing -> None."""
    import ccxt

    if value is None:
        return None
    if mode == ccxt.DECIMAL_PLACES:
        return 10.0 ** -float(value)
    if mode == ccxt.SIGNIFICANT_DIGITS:
        return None
    return float(value)


def _mode_name(mode) -> str:
    import ccxt

    return {ccxt.DECIMAL_PLACES: "decimal_places", ccxt.SIGNIFICANT_DIGITS: "significant_digits",
            ccxt.TICK_SIZE: "tick_size"}.get(mode, str(mode))


def _times(x, k: float) -> float | None:
    return None if x is None else round(float(x) * k, 12)


def market_entry(market: dict, precision_mode, tiers: list | None, fetched_ms: int,
                 tiers_note: str | None = None, size: float | None = None) -> dict:
    """A cache entry (format of :mod:`perpbot.sim.market_rules`) from ccxt market ``market`` and its
    leverage ``tiers`` (ccxt structures; None: none fetched), fetched at ``fetched_ms``; ``size`` is
    base asset per ccxt amount unit (default the market's ``contractSize``, see
    :func:`perpbot.exchange.clients.base_per_amount`)."""
    size = float(market.get("contractSize") or 1.0) if size is None else float(size)
    prec, lim = market.get("precision") or {}, market.get("limits") or {}
    amount_step = precision_step(prec.get("amount"), precision_mode)
    rows = None
    if tiers:
        rows = [{"min_notional": t.get("minNotional"), "max_notional": t.get("maxNotional"),
                 "mmr": t.get("maintenanceMarginRate"), "max_leverage": t.get("maxLeverage")}
                for t in sorted(tiers, key=lambda t: float(t.get("minNotional") or 0.0))]
    return {"id": market.get("id"), "fetched_ms": int(fetched_ms),
            "fetched": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(fetched_ms / 1000)),
            "lot": _times(amount_step, size), "tick": precision_step(prec.get("price"), precision_mode),
            "min_qty": _times((lim.get("amount") or {}).get("min"), size),
            "min_notional": (lim.get("cost") or {}).get("min"), "contract_size": size,
            "max_leverage": (lim.get("leverage") or {}).get("max"), "taker": market.get("taker"),
            "maker": market.get("maker"), "precision_mode": _mode_name(precision_mode), "tiers": rows,
            "tiers_note": tiers_note}


def fetch_entries(ex, symbols: list[str], now_ms: int | None = None) -> tuple[dict[str, dict], dict[str, str]]:
    """(entries, unlisted): cache entries of ``symbols`` from the venue of ccxt client ``ex`` (one
    ``load_markets(reload=True)``, one tier request per symbol) and, for each symbol the venue
    does not list, the reason. A tier request the venue refuses (not supported, keys needed) leaves ``tiers``
    null with a ``tiers_note``.

    Raises:
        ccxt.BaseError: the markets could not be loaded, or a tier request failed on the network.
    """
    import ccxt

    ex.load_markets(True)
    fetched = int(time.time() * 1000) if now_ms is None else int(now_ms)
    out, unlisted = {}, {}
    for symbol in symbols:
        if symbol not in ex.markets:
            unlisted[symbol] = f"{ex.id} does not list {symbol}"
            continue
        tiers, note = None, None
        if ex.id not in TIERS_IN_QUOTE:
            note = f"{ex.id}'s ccxt tier bounds are contracts, not USDT: the shipped tiers stand"
        elif not ex.has.get("fetchMarketLeverageTiers"):
            note = f"{ex.id} has no leverage tiers in ccxt"
        else:
            try:
                tiers = ex.fetch_market_leverage_tiers(symbol)
            except ccxt.NetworkError:
                raise
            except ccxt.BaseError as exc:
                note = describe_error(exc, "leverage tiers")
        out[symbol] = market_entry(ex.market(symbol), ex.precisionMode, tiers, fetched, note,
                                   base_per_amount(ex.id, ex.market(symbol)))
    return out, unlisted


def write_entries(path: Path, exchange_id: str, entries: dict[str, dict]) -> None:
    """Merge ``entries`` (symbol -> entry) into the cache file at ``path``, atomically."""
    path = Path(path)
    doc = read_cache(path)
    markets = dict(doc.get("markets") or {}) if doc.get("exchange") == exchange_id else {}
    markets.update(entries)
    text = json.dumps({"version": CACHE_VERSION, "exchange": exchange_id, "markets": markets}, indent=1,
                      sort_keys=True) + "\n"
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


@dataclass(frozen=True)
class Refreshed:
    """What :func:`refresh_markets` did for one symbol: ``status`` ``fresh`` (cached entry young
    enough, nothing asked), ``fetched`` (asked and written), ``stale`` (the fetch failed: the older
    entry is used), ``shipped`` / ``none`` (the fetch failed and no entry exists: the shipped rules
    stand, or none: the settings' defaults); ``entry`` the cache entry now in use (or None),
    ``warning`` the line to show when the rules could not be refreshed."""

    symbol: str
    status: str
    entry: dict | None
    age_hours: float | None = None
    warning: str | None = None


def make_client(exchange_id: str, api_url: str | None = None, timeout_ms: int = 15_000):
    """The synchronous ccxt client of ``exchange_id`` (swap markets; ``api_url`` replaces every REST
    base url). Raises :class:`MarketCacheError` for an unknown exchange id."""
    from perpbot.exchange.download_request import DownloadError, make_sync_exchange

    try:
        return make_sync_exchange(exchange_id, api_url=api_url, timeout_ms=timeout_ms)
    except DownloadError as exc:
        raise MarketCacheError(str(exc)) from None


def refresh_markets(settings, symbols: list[str] | None = None, *, exchange_id: str | None = None, ex=None,
                    api_url: str | None = None, force: bool = False, now_ms: int | None = None) -> list[Refreshed]:
    """Bring the cache entries of ``symbols`` (default the settings' symbol) on ``exchange_id``
    (default the settings' exchange) up to date: entries younger than ``settings.markets_max_age``
    hours are kept without a request (unless ``force``); the others are fetched with ``ex`` (default
    a new client, :func:`make_client`) and written. A failed fetch keeps what there is, with a
    warning returned for the caller to show (and logged at info: the log file keeps it, the console
    does not repeat it). Raises :class:`MarketCacheError` for an unknown exchange id."""
    venue = exchange_id or settings.exchange
    path = settings.markets_file(venue)
    now = int(time.time() * 1000) if now_ms is None else int(now_ms)
    max_age = float(settings.markets_max_age)
    wanted = list(dict.fromkeys(symbols or [settings.symbol]))
    current = {s: cached_entry(path, venue, s) for s in wanted}
    done: dict[str, Refreshed] = {}
    due = []
    for s in wanted:
        entry = current[s]
        if force or entry is None or entry.age_hours(now) > max_age:
            due.append(s)
        else:
            done[s] = Refreshed(s, "fresh", entry.raw, entry.age_hours(now))
    if due:
        import ccxt

        client = ex if ex is not None else make_client(venue, api_url)
        try:
            fetched, failed = fetch_entries(client, due, now)
        except ccxt.BaseError as exc:
            fetched, failed = {}, {s: describe_error(exc) for s in due}
        if fetched:
            write_entries(path, venue, fetched)
        for s, new in fetched.items():
            done[s] = Refreshed(s, "fetched", new, 0.0)
            log.info("market_rules_cached", exchange=venue, symbol=s, path=str(path))
        for s, reason in failed.items():
            done[s] = _fallback(venue, s, current[s], now, reason, path)
    return [done[s] for s in wanted]


def _fallback(venue: str, symbol: str, entry, now: int, reason: str, path: Path) -> Refreshed:
    if entry is not None:
        age = entry.age_hours(now)
        warning = (f"could not refresh the {venue} market rules of {symbol} ({reason}); using the cached ones "
                   f"fetched {entry.fetched_text} ({age:.0f} h old)")
        log.info("market_rules_stale", exchange=venue, symbol=symbol, age_hours=round(age, 1), reason=reason)
        return Refreshed(symbol, "stale", entry.raw, age, warning)
    status = "shipped" if shipped_rules(symbol) is not None else "none"
    what = "the shipped Bitget rules" if status == "shipped" else "the settings' rules"
    warning = f"could not fetch the {venue} market rules of {symbol} ({reason}); no cache at {path}: using {what}"
    log.info("market_rules_unavailable", exchange=venue, symbol=symbol, reason=reason)
    return Refreshed(symbol, status, None, None, warning)
