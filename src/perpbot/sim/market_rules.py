"""Contract rules of the simulated account: the venue's own from the market cache, else the
shipped tables, and where each rule came from.

The market cache (written by :mod:`perpbot.exchange.market_cache`, ``perpbot markets refresh``)
is one JSON file per venue, ``Settings.markets_file()`` = ``<markets_dir>/<exchange>.json``::

    {"version": 1, "exchange": "bitget", "markets": {"SOL/USDT:USDT": {
        "id": "SOLUSDT", "fetched_ms": 1764669600000, "fetched": "2025-12-02T10:00:00Z",
        "lot": 0.1, "tick": 0.001, "min_qty": 0.1, "min_notional": 5.0, "contract_size": 1.0,
        "max_leverage": 100.0, "taker": 0.0006, "maker": 0.0002, "precision_mode": "tick_size",
        "tiers": [{"min_notional": 0, "max_notional": 50000, "mmr": 0.005, "max_leverage": 100}, ...],
        "tiers_note": null}}}

``lot`` / ``min_qty`` base asset (contracts x contract size), ``tick`` and notionals USDT, rates
fractions, ``max_notional`` null = unbounded, ``tiers`` null when the venue gave none. This
module only READS the file (the sim layer never talks to a venue): a missing file means no
cache; an unreadable one is logged once and ignored; a value that is missing, not finite or not
positive falls back to the next source for that rule.

Each rule of the account (:func:`account_rules`): set explicitly in the settings (file,
environment, override) > the venue cache > the shipped table of the symbol's base asset
(:data:`SHIPPED_RULES`, Bitget USDT-FUTURES ``GET /api/v2/mix/market/contracts``: lot =
``sizeMultiplier``, min qty = ``minTradeNum``, tick = ``priceEndStep x 10^-pricePlace``, min
order value ``minTradeUSDT`` = 5 USDT; shared/reference/bitget.md) > the settings' defaults
(SOL's). Margin tiers: the cache's, else the shipped SOLUSDT tiers
(:data:`perpbot.sim.config.SOLUSDT_TIERS`). A backtest of BTC with SOL's 0.1-coin minimum could
never place an order (0.1 BTC is about 10,000 USDT), hence the per-symbol rules.
"""

from __future__ import annotations

import functools
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from perpbot.logs import get_logger

log = get_logger("perpbot.sim")

CACHE_VERSION = 1
#: the account rules and the settings field of each
RULE_FIELDS = ("lot_size", "tick_size", "min_qty", "min_notional")
_CACHE_KEYS = {"lot_size": "lot", "tick_size": "tick", "min_qty": "min_qty", "min_notional": "min_notional"}


@dataclass(frozen=True)
class ContractRules:
    """Lot step and minimum quantity (base asset), tick size (USDT), minimum notional (USDT)."""

    lot: float
    tick: float
    min_qty: float
    min_notional: float = 5.0


#: base asset -> its Bitget USDT-M perpetual's rules
SHIPPED_RULES: dict[str, ContractRules] = {
    "SOL": ContractRules(lot=0.1, tick=0.001, min_qty=0.1),
    "BTC": ContractRules(lot=0.0001, tick=0.1, min_qty=0.0001),
    "ETH": ContractRules(lot=0.01, tick=0.01, min_qty=0.01),
}


def base_asset(symbol: str) -> str:
    """``"BTC/USDT:USDT"`` -> ``"BTC"`` (also ``"BTCUSDT"`` -> ``"BTC"``)."""
    head = symbol.split("/")[0].split(":")[0].upper()
    return head[:-4] if "/" not in symbol and head.endswith("USDT") else head


def shipped_rules(symbol: str) -> ContractRules | None:
    """The shipped :class:`ContractRules` of ``symbol``'s base asset, or None when perpbot has none."""
    return SHIPPED_RULES.get(base_asset(symbol))


# ---- the cache file ----------------------------------------------------------------------------
def _number(value) -> float | None:
    """``value`` as a finite float, or None."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _positive(value) -> float | None:
    x = _number(value)
    return x if x is not None and x > 0 else None


def parse_tiers(rows) -> tuple[tuple[float, float], ...] | None:
    """Cached tier rows -> ((upper notional USDT, maintenance margin rate), ...) ascending; the
    last bound may be ``inf`` (null). None when absent or inconsistent (bounds not increasing,
    a rate outside [0, 1))."""
    if not isinstance(rows, list) or not rows:
        return None
    out, last = [], 0.0
    for row in rows:
        if not isinstance(row, dict):
            return None
        upper = math.inf if row.get("max_notional") is None else _positive(row.get("max_notional"))
        mmr = _number(row.get("mmr"))
        if upper is None or upper <= last or mmr is None or not 0.0 <= mmr < 1.0:
            return None
        out.append((upper, mmr))
        last = upper
    return tuple(out)


@dataclass(frozen=True)
class CachedMarket:
    """One venue + symbol entry of the market cache (units in the module docstring); a rule the
    entry lacks (or holds an unusable value for) is None."""

    exchange: str
    symbol: str
    fetched_ms: int
    path: Path
    lot: float | None = None
    tick: float | None = None
    min_qty: float | None = None
    min_notional: float | None = None
    tiers: tuple[tuple[float, float], ...] | None = None
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    def value(self, rule: str) -> float | None:
        """The cached value of account rule ``rule`` (a :data:`RULE_FIELDS` name)."""
        return getattr(self, _CACHE_KEYS[rule])

    def age_hours(self, now_ms: int | None = None) -> float:
        now = int(time.time() * 1000) if now_ms is None else now_ms
        return (now - self.fetched_ms) / 3_600_000.0

    @property
    def fetched_text(self) -> str:
        """``fetched_ms`` as ``YYYY-MM-DD HH:MM UTC``."""
        return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(self.fetched_ms / 1000))


@functools.lru_cache(maxsize=32)
def _load(path: str, _mtime_ns: int, _size: int) -> dict:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("market_cache_unreadable", path=path, error=str(exc)[:200])
        return {}
    if not isinstance(doc, dict) or doc.get("version") != CACHE_VERSION or not isinstance(doc.get("markets"), dict):
        log.warning("market_cache_unreadable", path=path, error=f"not a version {CACHE_VERSION} market cache")
        return {}
    return doc


def read_cache(path: Path) -> dict:
    """The market cache document at ``path`` (read once per file version; do not mutate), ``{}``
    when the file is missing or unreadable (logged)."""
    try:
        st = Path(path).stat()
    except OSError:
        return {}
    return _load(str(path), st.st_mtime_ns, st.st_size)


def cached_entry(path: Path, exchange: str, symbol: str) -> CachedMarket | None:
    """The cache entry of ``exchange`` / ``symbol`` in the file at ``path``, or None."""
    doc = read_cache(path)
    raw = (doc.get("markets") or {}).get(symbol) if doc.get("exchange", exchange) == exchange else None
    if not isinstance(raw, dict) or not isinstance(raw.get("fetched_ms"), int):
        return None
    return CachedMarket(exchange=exchange, symbol=symbol, fetched_ms=raw["fetched_ms"], path=Path(path),
                        lot=_positive(raw.get("lot")), tick=_positive(raw.get("tick")),
                        min_qty=_positive(raw.get("min_qty")), min_notional=_positive(raw.get("min_notional")),
                        tiers=parse_tiers(raw.get("tiers")), raw=raw)


def settings_entry(settings) -> CachedMarket | None:
    """The cache entry of the settings' venue and symbol (None without a cache or a ``markets_file``)."""
    markets_file = getattr(settings, "markets_file", None)
    if markets_file is None:
        return None
    return cached_entry(markets_file(), settings.exchange, settings.symbol)


# ---- the account's rules -------------------------------------------------------------------------
@dataclass(frozen=True)
class AccountRules:
    """The account's ``lot_size``, ``tick_size``, ``min_qty`` (base asset), ``min_notional``
    (USDT) and margin ``tiers`` (None: the shipped SOLUSDT tiers), with the ``origin`` of each
    (``settings`` | ``cache`` | ``shipped`` | ``default``), the cache entry found (if any), its
    age in hours and ``stale``: a rule came from it although it is older than ``markets_max_age``."""

    values: dict[str, float]
    tiers: tuple[tuple[float, float], ...] | None
    origin: dict[str, str]
    cache: CachedMarket | None
    age_hours: float | None = None
    stale: bool = False

    def note(self, settings) -> str:
        """One line naming each rule's value and source, e.g. "market rules of SOL/USDT:USDT:
        lot_size 0.1, ... from the bitget venue cache fetched 2025-12-02 10:00 UTC (runs/markets/bitget.json)"."""
        sources = {
            "cache": (f"from the {self.cache.exchange} venue cache fetched {self.cache.fetched_text} "
                      f"({self.cache.path})" if self.cache else ""),
            "settings": "from the settings",
            "shipped": "from the shipped Bitget tables",
            "default": "from the settings' defaults (Bitget SOLUSDT)"}
        parts = []
        for origin, text in sources.items():
            names = [f"{k} {self.values[k]:g}" for k in RULE_FIELDS if self.origin[k] == origin]
            if self.origin["tiers"] == origin:
                names.append(f"{len(self.tiers)} margin tiers" if self.tiers else "SOLUSDT's margin tiers")
            if names:
                parts.append(f"{', '.join(names)} {text}")
        line = f"market rules of {settings.symbol}: " + "; ".join(parts)
        markets_file = getattr(settings, "markets_file", None)
        if self.cache is None and markets_file is not None and {"shipped", "default"} & set(self.origin.values()):
            line += f" (no venue cache at {markets_file()}: perpbot markets refresh)"
        elif self.stale and self.cache is not None:
            line += (f" (stale: {self.age_hours:.0f} h old, markets_max_age "
                     f"{getattr(settings, 'markets_max_age', 24.0):g} h: perpbot markets refresh)")
        return line


def account_rules(settings, now_ms: int | None = None) -> AccountRules:
    """The rules of the account of ``settings``, each from the first source that has it: the
    settings when set explicitly (file, environment, override), the venue cache of the settings'
    exchange and symbol, the symbol's shipped table, the settings' defaults (module docstring)."""
    chosen: set[str] = set(getattr(settings, "model_fields_set", ()))
    cache = settings_entry(settings)
    shipped = shipped_rules(settings.symbol)
    values: dict[str, float] = {}
    origin: dict[str, str] = {}
    for key in RULE_FIELDS:
        cached = cache.value(key) if cache is not None else None
        if key in chosen:
            values[key], origin[key] = float(getattr(settings, key)), "settings"
        elif cached is not None:
            values[key], origin[key] = cached, "cache"
        elif shipped is not None:
            values[key], origin[key] = float(getattr(shipped, _CACHE_KEYS[key])), "shipped"
        else:
            values[key], origin[key] = float(getattr(settings, key)), "default"
    tiers = cache.tiers if cache is not None else None
    origin["tiers"] = "cache" if tiers is not None else "shipped"
    age = cache.age_hours(now_ms) if cache is not None else None
    stale = age is not None and "cache" in origin.values() and age > float(getattr(settings, "markets_max_age", 24.0))
    return AccountRules(values=values, tiers=tiers, origin=origin, cache=cache, age_hours=age, stale=stale)


def rules_for(settings) -> dict[str, float]:
    """``lot_size``, ``tick_size``, ``min_qty`` of the account of ``settings`` (:func:`account_rules`)."""
    values = account_rules(settings).values
    return {k: values[k] for k in ("lot_size", "tick_size", "min_qty")}


def rules_note(settings, now_ms: int | None = None) -> str:
    """One line: the account's market rules and where each came from (:meth:`AccountRules.note`)."""
    return account_rules(settings, now_ms).note(settings)
