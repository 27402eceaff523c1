"""Shipped contract rules of the USDT-M perpetuals perpbot knows, the offline fallback of the
venue's own (live trading reads them from the venue: :func:`perpbot.exchange.venue.market_rules`).

Bitget USDT-FUTURES contract specifications (``GET /api/v2/mix/market/contracts``:
lot step = ``sizeMultiplier``, minimum quantity = ``minTradeNum``, tick = ``priceEndStep x
10^-pricePlace``, minimum order value ``minTradeUSDT`` = 5 USDT; shared/reference/bitget.md).
A backtest of BTC or ETH with SOL's 0.1-coin minimum could never place an order (0.1 BTC is
about 10,000 USDT), so the account uses the symbol's own rules unless the settings set
``lot_size`` / ``tick_size`` / ``min_qty`` explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass


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


def rules_for(settings) -> dict[str, float]:
    """``lot_size``, ``tick_size``, ``min_qty`` of the account of ``settings``: each one the
    settings set explicitly (file, environment, override) wins; otherwise the symbol's shipped
    rule; otherwise the settings' default (SOL's)."""
    shipped = shipped_rules(settings.symbol)
    chosen: set[str] = set(getattr(settings, "model_fields_set", ()))
    out = {"lot_size": settings.lot_size, "tick_size": settings.tick_size, "min_qty": settings.min_qty}
    if shipped is not None:
        for key, value in (("lot_size", shipped.lot), ("tick_size", shipped.tick), ("min_qty", shipped.min_qty)):
            if key not in chosen:
                out[key] = value
    return out
