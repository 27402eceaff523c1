"""Read-only venue requests of the live loop (a part of :class:`~perpbot.exchange.executor.Executor`):
server time, the candle history of the trailing window, funding rates, the account's fills and
funding bills, one order by id. The bot asks the executor; nothing outside ``exchange/`` touches
the ccxt client. Times ms UTC, prices USDT, amounts base asset; ccxt's unified structures."""

from __future__ import annotations

from typing import Any

import pandas as pd


def funding_events(rows: list[dict] | None) -> pd.DataFrame | None:
    """ccxt funding-rate history rows -> ``timestamp`` (UTC), ``funding_rate`` (fraction per
    interval), oldest first, one row per time (the first); None when the venue gave none."""
    if not rows:
        return None
    return pd.DataFrame({"timestamp": pd.to_datetime([r["timestamp"] for r in rows], unit="ms", utc=True),
                         "funding_rate": [float(r["fundingRate"]) for r in rows]}
                        ).drop_duplicates("timestamp").sort_values("timestamp", kind="stable").reset_index(drop=True)


class VenueReads:
    """Read requests on ``self.ex`` (an asyncio ccxt client) for ``self.symbol``."""

    ex: Any
    symbol: str

    def time_difference_ms(self) -> int:
        """ccxt's measured clock difference (local - venue), ms; 0 before a sync."""
        return int(self.ex.options.get("timeDifference") or 0)

    @property
    def venue_id(self) -> str:
        """The venue's id (ccxt's: ``bitget``, ``binance``, ...)."""
        return str(self.ex.id)

    @property
    def real_money(self) -> bool:
        """True when the client trades the real account (not the venue's demo)."""
        return bool(getattr(self.ex, "perpbot_real_money", False))

    async def server_time(self) -> int:
        """The venue's clock, ms UTC."""
        return int(await self.ex.fetch_time())

    async def closed_candles(self, timeframe: str, tf_ms: int, now_ms: int, count: int, page: int = 200) -> list:
        """The last ``count`` candles closed at ``now_ms`` (ccxt OHLCV rows, oldest first), fetched
        by REST pages of ``page`` rows from ``count + 1`` bars back."""
        since, out = now_ms - (count + 1) * tf_ms, {}
        while True:
            rows = await self.ex.fetch_ohlcv(self.symbol, timeframe, since, page)
            rows = [r for r in rows if r[0] + tf_ms <= now_ms]
            for r in rows:
                out[int(r[0])] = r
            if not rows or rows[-1][0] + 2 * tf_ms > now_ms:
                break
            since = int(rows[-1][0]) + tf_ms
        return [out[k] for k in sorted(out)][-count:]

    async def funding_rates(self, limit: int = 100) -> list[dict] | None:
        """The latest funding-rate events (ccxt funding-rate history), None when the venue has no such endpoint."""
        if not self.ex.has.get("fetchFundingRateHistory"):
            return None
        return await self.ex.fetch_funding_rate_history(self.symbol, None, limit)

    async def my_fills(self, since_ms: int) -> list[dict]:
        """The account's fills (ccxt trades) on the symbol since ``since_ms``."""
        return await self.ex.fetch_my_trades(self.symbol, since_ms)

    async def funding_bills(self, since_ms: int) -> list[dict] | None:
        """The account's funding payments (ccxt funding history, ``amount`` USDT < 0 = paid, > 0 = received)
        since ``since_ms``; None when the venue has no such endpoint. ccxt passes each venue's own sign on:
        Bybit's ``execFee`` is > 0 when paid (its venue module's ``FUNDING_PAID_POSITIVE``), so it is turned."""
        if not self.ex.has.get("fetchFundingHistory"):
            return None
        from perpbot.exchange.clients import VENUES

        rows = await self.ex.fetch_funding_history(self.symbol, since_ms)
        if getattr(VENUES.get(self.ex.id), "FUNDING_PAID_POSITIVE", False):
            rows = [{**r, "amount": -float(r["amount"])} if r.get("amount") is not None else r for r in rows]
        return rows

    async def with_fee(self, order: dict) -> dict:
        """``order`` with its fee (USDT): a venue whose order answer has none (Binance USDⓈ-M) gets the sum of
        the commissions of the order's fills (``fetch_my_trades``, Binance ``GET /fapi/v1/userTrades?orderId=``)."""
        if order.get("fee") is not None or float(order.get("filled") or 0.0) <= 0 or order.get("id") is None:
            return order
        fills = await self.ex.fetch_my_trades(self.symbol, None, None, {"orderId": order["id"]})
        mine = [f for f in fills if str(f.get("order")) == str(order["id"])]
        if not mine:
            return order
        cost = sum(abs(float((f.get("fee") or {}).get("cost") or 0.0)) for f in mine)
        return {**order, "fee": {"cost": cost, "currency": (mine[0].get("fee") or {}).get("currency")}}

    async def order_by_id(self, order_id: str) -> dict:
        """One order (ccxt order structure) by the venue's id."""
        return await self.ex.fetch_order(order_id, self.symbol)

    async def exit_order(self, order_id: str) -> dict:
        """The order whose fields say why a position closed, for the exit fill of order ``order_id``: that
        order, or (OKX) the algo order that placed it (:func:`perpbot.exchange.venue_params.exit_order`)."""
        from perpbot.exchange import venue_params

        return await venue_params.exit_order(self.ex, self.symbol, await self.order_by_id(order_id))


class PublicReads(VenueReads):
    """The public part of :class:`VenueReads` on its own (no keys, no account): server time, the
    candle history and funding rates of ``symbol`` from the asyncio ccxt client ``ex`` (the paper
    node on live prices reads the venue through this)."""

    def __init__(self, ex: Any, symbol: str) -> None:
        self.ex, self.symbol = ex, symbol
