"""Public market data of the Bitget simulator: contracts, candles, funding, ticker, book, tiers.

Everything is computed from the replayed real candles and only from candles already CLOSED
by the replay clock (no future data). The clock is :attr:`ReplayMarket.closed`: the number of
base candles closed so far; "now" is the close time of the last closed candle.

Models (documented because Bitget's own data is not available offline):

* trade candles of a higher granularity are aggregated from the base candles on the UTC epoch
  grid (weeks start Monday 00:00 UTC, months on the 1st); only complete buckets exist, and a
  bucket is served once its close time is <= now. Bitget's non-"utc" 1D/1W/1M (aligned to
  UTC+8) are served UTC-aligned like the "utc" variants.
* MARK and INDEX candles (``kLineType`` MARK/INDEX, history-mark-candles,
  history-index-candles) are the trade candles themselves (volume 0): the data holds no
  finer mark/index series. The 8h mark file is used only for the funding mark price, exactly
  as the backtester does (:func:`perpbot.data.align_funding`).
* the order book is synthetic, centred on the last close: best bid = last close floored to the
  tick, best ask = best bid + 1 tick, level k (0-based) one tick further out per level, size of
  level k = (k + 1) x max(min size, average base volume of the last 12 closed candles / 100),
  floored to the lot size.
* the ticker's 24 h statistics come from the closed base candles of the last 24 h;
  markPrice = indexPrice = last close; fundingRate = the last settled rate.
* open interest (no data available) = 24 h base volume / 10 plus the simulator's own open
  position, in base coin.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from perpbot.sim.config import SOLUSDT_TIERS
from perpbot.data import align_funding, timestamps_to_ms

MIN_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
MONTH = -1  # marker: calendar month

#: Bitget v2 mix granularities -> bucket length in ms (MONTH for calendar months).
GRANULARITY_MS = {
    "1m": MIN_MS, "3m": 3 * MIN_MS, "5m": 5 * MIN_MS, "15m": 15 * MIN_MS, "30m": 30 * MIN_MS,
    "1H": HOUR_MS, "2H": 2 * HOUR_MS, "4H": 4 * HOUR_MS, "6H": 6 * HOUR_MS, "12H": 12 * HOUR_MS,
    "1D": DAY_MS, "3D": 3 * DAY_MS, "1W": WEEK_MS, "1M": MONTH,
    "6Hutc": 6 * HOUR_MS, "12Hutc": 12 * HOUR_MS, "1Dutc": DAY_MS, "3Dutc": 3 * DAY_MS,
    "1Wutc": WEEK_MS, "1Mutc": MONTH,
}

#: Position tiers (upper notional USDT, maintenance margin rate, max leverage). SOLUSDT from
#: Bitget's Sep 2025 announcement (shared/reference/bitget.md); used for every symbol here.
TIER_LEVERAGE = (100, 75, 50, 25, 20, 10, 5)
TIERS = tuple((upper, mmr, lev) for (upper, mmr), lev in zip(SOLUSDT_TIERS, TIER_LEVERAGE))


def _contract(symbol: str, base: str, price_place: int, volume_place: int, size_mult: str,
              min_num: str, max_lever: int) -> dict:
    return {
        "symbol": symbol, "baseCoin": base, "quoteCoin": "USDT", "buyLimitPriceRatio": "0.05",
        "sellLimitPriceRatio": "0.05", "feeRateUpRatio": "0.005", "makerFeeRate": "0.0002",
        "takerFeeRate": "0.0006", "openCostUpRatio": "0.01", "supportMarginCoins": ["USDT"],
        "minTradeNum": min_num, "priceEndStep": "1", "volumePlace": str(volume_place),
        "pricePlace": str(price_place), "sizeMultiplier": size_mult, "symbolType": "perpetual",
        "minTradeUSDT": "5", "maxSymbolOrderNum": "200", "maxProductOrderNum": "400",
        "maxPositionNum": "150", "symbolStatus": "normal", "offTime": "-1", "limitOpenTime": "-1",
        "deliveryTime": "", "deliveryStartTime": "", "deliveryPeriod": "", "launchTime": "",
        "fundInterval": "8", "minLever": "1", "maxLever": str(max_lever), "posLimit": "0.05",
        "maintainTime": "", "maxMarketOrderQty": "", "maxOrderQty": "",
    }


#: USDT-FUTURES contract rules as Bitget publishes them (SOLUSDT per the issue; BTC/ETH from
#: Bitget's public contract list as of 2025).
CONTRACTS = {
    "SOLUSDT": _contract("SOLUSDT", "SOL", 3, 1, "0.1", "0.1", 100),
    "BTCUSDT": _contract("BTCUSDT", "BTC", 1, 4, "0.0001", "0.0001", 125),
    "ETHUSDT": _contract("ETHUSDT", "ETH", 2, 2, "0.01", "0.01", 100),
}


def num(x: float) -> str:
    """A float as Bitget writes numbers: a decimal string without exponent or trailing zeros."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    s = repr(round(float(x), 10))
    if "e" in s or "E" in s:
        s = f"{float(x):.10f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def tick_size(symbol: str, spec: dict | None = None) -> float:
    """Price step (USDT) of a contract row (``spec``, default ``CONTRACTS[symbol]``)."""
    c = spec if spec is not None else CONTRACTS[symbol]
    return int(c["priceEndStep"]) * 10.0 ** -int(c["pricePlace"])


def lot_size(symbol: str, spec: dict | None = None) -> float:
    """Size step (base coin) of a contract row (``spec``, default ``CONTRACTS[symbol]``)."""
    return float((spec if spec is not None else CONTRACTS[symbol])["sizeMultiplier"])


def _month_bucket(ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = pd.to_datetime(ts, unit="ms", utc=True)
    start = t.to_period("M").to_timestamp().tz_localize("UTC") if len(t) else t
    b = np.asarray(start.as_unit("ms").asi8, dtype=np.int64)
    nxt = np.asarray((start + pd.offsets.MonthBegin(1)).as_unit("ms").asi8, dtype=np.int64)
    return b, nxt


class ReplayMarket:
    """Candles, funding and derived public data of one replayed symbol.

    Args:
        candles: base candle frame (``timestamp`` UTC candle open, ``open/high/low/close`` USDT,
            ``volume`` base coin), sorted, no duplicates.
        symbol: Bitget symbol id, a key of :data:`CONTRACTS`.
        funding: funding events (``timestamp``, ``funding_rate`` fraction per 8 h) or None.
        mark: mark-price candles for the funding mark price (e.g. the 8h mark file) or None.
        closed: number of base candles already closed at start (the replay clock).
        spec: the contract row (Bitget ``contracts`` shape: pricePlace / priceEndStep /
            sizeMultiplier / minTradeNum / minTradeUSDT / taker and maker fee rates / maxLever)
            when another venue's rules apply (the Binance facade); default ``CONTRACTS[symbol]``.

    Raises:
        ValueError: unknown symbol, too few candles, or ``closed`` out of range.
    """

    def __init__(self, candles: pd.DataFrame, symbol: str = "SOLUSDT", funding: pd.DataFrame | None = None,
                 mark: pd.DataFrame | None = None, closed: int = 1, spec: dict | None = None) -> None:
        if symbol not in CONTRACTS:
            raise ValueError(f"symbol {symbol!r} is not one of {sorted(CONTRACTS)}")
        if len(candles) < 2:
            raise ValueError(f"candles: need at least 2 rows, got {len(candles)}")
        self.symbol = symbol
        self.spec = spec if spec is not None else CONTRACTS[symbol]
        self.tick = tick_size(symbol, self.spec)
        self.lot = lot_size(symbol, self.spec)
        self.ts = timestamps_to_ms(candles["timestamp"]).astype(np.int64)
        if (np.diff(self.ts) <= 0).any():
            raise ValueError("candles: timestamps must be strictly increasing")
        self.base_ms = int(np.min(np.diff(self.ts)))
        self.o, self.h, self.lo, self.c, self.v = (candles[k].to_numpy(dtype=np.float64)
                                                  for k in ("open", "high", "low", "close", "volume"))
        self.n = len(self.ts)
        # funding rate / mark per base candle, aligned exactly as the backtester aligns them
        ts_series = pd.Series(pd.to_datetime(self.ts, unit="ms", utc=True))
        tf = _tf_name(self.base_ms)
        self.f_rate, self.f_mark = align_funding(ts_series, tf, funding, mark, self.o.copy())
        if funding is not None and len(funding):
            self.fund_ms = timestamps_to_ms(funding["timestamp"]).astype(np.int64)
            self.fund_rate = funding["funding_rate"].to_numpy(dtype=np.float64)
        else:
            self.fund_ms = np.zeros(0, dtype=np.int64)
            self.fund_rate = np.zeros(0)
        self._agg: dict[str, tuple] = {}
        self.position_qty = 0.0  # the simulator's own open position (for open interest)
        self.closed = 0
        self.set_closed(closed)

    # ---- the clock ----------------------------------------------------------------------------
    def set_closed(self, closed: int) -> None:
        if not 1 <= closed <= self.n:
            raise ValueError(f"closed candles must be in [1, {self.n}], got {closed}")
        self.closed = closed

    @property
    def now_ms(self) -> int:
        """Replay time in ms UTC: the close time of the last closed candle."""
        return int(self.ts[self.closed - 1] + self.base_ms)

    @property
    def last(self) -> float:
        """Last traded price (USDT): the close of the last closed candle."""
        return float(self.c[self.closed - 1])

    # ---- candles ------------------------------------------------------------------------------
    def _aggregate(self, gran: str):
        if gran in self._agg:
            return self._agg[gran]
        step = GRANULARITY_MS[gran]
        ts = self.ts
        if step == MONTH:
            bucket, close = _month_bucket(ts)
        else:
            if step < self.base_ms or step % self.base_ms:
                raise ValueError(f"granularity {gran} is not a multiple of the replayed {self.base_ms // MIN_MS}m candles")
            offset = 4 * DAY_MS if step == WEEK_MS else 0  # 1970-01-01 was a Thursday
            bucket = ts - (ts - offset) % step
            close = bucket + step
        starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
        ends = np.r_[starts[1:], len(ts)]
        full = (close[starts] - bucket[starts]) // self.base_ms == (ends - starts)
        s, e = starts[full], ends[full]
        out = (bucket[s], self.o[s],
               np.maximum.reduceat(self.h, starts)[full], np.minimum.reduceat(self.lo, starts)[full],
               self.c[e - 1], np.add.reduceat(self.v, starts)[full], close[s])
        self._agg[gran] = out
        return out

    def candles(self, granularity: str, start: int | None = None, end: int | None = None,
                limit: int = 100, max_limit: int = 1000, kind: str = "MARKET") -> list[list[str]]:
        """Closed candles as Bitget rows ``[ts, open, high, low, close, baseVol, quoteVol]`` (strings).

        Selection: ``start <= ts < end`` (ms, candle open; either bound optional), only candles
        whose close time is <= now; the LAST ``min(limit, max_limit)`` of them (Bitget aligns
        from endTime), ascending. ``kind`` MARK/INDEX: same prices, volumes 0 (module doc).
        quoteVol = baseVol x close (approximation). Raises ValueError for an unknown
        granularity / kind or a limit < 1.
        """
        if granularity not in GRANULARITY_MS:
            raise ValueError(f"granularity {granularity!r} is not one of {list(GRANULARITY_MS)}")
        kind = (kind or "MARKET").upper()
        if kind not in ("MARKET", "MARK", "INDEX"):
            raise ValueError(f"kLineType {kind!r} is not MARKET, MARK or INDEX")
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        limit = min(limit, max_limit)
        ts, o, h, lo, c, v, close = self._aggregate(granularity)
        hi = int(np.searchsorted(close, self.now_ms, side="right"))
        if end is not None:
            hi = min(hi, int(np.searchsorted(ts, end, side="left")))
        lo_i = 0 if start is None else int(np.searchsorted(ts, start, side="left"))
        lo_i = max(lo_i, hi - limit)
        rows = []
        for i in range(lo_i, hi):
            vol = 0.0 if kind != "MARKET" else v[i]
            rows.append([str(int(ts[i])), num(o[i]), num(h[i]), num(lo[i]), num(c[i]), num(vol), num(vol * c[i])])
        return rows

    def candle_close_ms(self, granularity: str, ts: int) -> int:
        """Close time (ms) of the ``granularity`` candle that opens at ``ts``."""
        opens, *_rest, close = self._aggregate(granularity)
        return int(close[int(opens.searchsorted(ts))])

    # ---- funding ------------------------------------------------------------------------------
    def funding_history(self, page_size: int = 20, page_no: int = 1) -> list[dict]:
        """Settled funding events (fundingTime <= now), newest first, one page of ``page_size``."""
        k = int(np.searchsorted(self.fund_ms, self.now_ms, side="right"))
        idx = list(range(k - 1, -1, -1))[(page_no - 1) * page_size: page_no * page_size]
        return [{"symbol": self.symbol, "fundingRate": num(self.fund_rate[i]), "fundingTime": str(int(self.fund_ms[i]))}
                for i in idx]

    def last_funding_rate(self) -> float:
        k = int(np.searchsorted(self.fund_ms, self.now_ms, side="right"))
        return float(self.fund_rate[k - 1]) if k else 0.0

    def next_funding_ms(self) -> int:
        step = 8 * HOUR_MS
        return (self.now_ms // step + 1) * step

    def current_funding(self) -> dict:
        return {"symbol": self.symbol, "fundingRate": num(self.last_funding_rate()),
                "fundingRateInterval": "8", "nextUpdate": str(self.next_funding_ms()),
                "minFundingRate": "-0.003", "maxFundingRate": "0.003"}

    # ---- ticker / book / tiers / OI ---------------------------------------------------------------
    def _window_24h(self) -> slice:
        lo_i = int(np.searchsorted(self.ts, self.now_ms - DAY_MS, side="left"))
        return slice(lo_i, self.closed)

    def book_top(self) -> tuple[float, float, float]:
        """(best bid, best ask, size per level-unit) of the synthetic book (module doc)."""
        bid = math.floor(self.last / self.tick + 1e-9) * self.tick
        vol = float(np.mean(self.v[max(0, self.closed - 12): self.closed]))
        unit = max(self.lot, math.floor(vol / 100 / self.lot + 1e-9) * self.lot)
        return round(bid, 10), round(bid + self.tick, 10), unit

    def ticker(self) -> dict:
        w = self._window_24h()
        bid, ask, unit = self.book_top()
        base_vol = float(self.v[w].sum())
        quote_vol = float((self.v[w] * self.c[w]).sum())
        open24 = float(self.o[w.start])
        last = self.last
        return {
            "symbol": self.symbol, "lastPr": num(last), "askPr": num(ask), "bidPr": num(bid),
            "bidSz": num(unit), "askSz": num(unit), "high24h": num(self.h[w].max()), "low24h": num(self.lo[w].min()),
            "ts": str(self.now_ms), "change24h": num(round(last / open24 - 1, 6)), "baseVolume": num(base_vol),
            "quoteVolume": num(quote_vol), "usdtVolume": num(quote_vol), "openUtc": num(open24),
            "changeUtc24h": num(round(last / open24 - 1, 6)), "indexPrice": num(last),
            "fundingRate": num(self.last_funding_rate()), "holdingAmount": num(self.open_interest_size()),
            "deliveryStartTime": None, "deliveryTime": None, "deliveryStatus": "", "open24h": num(open24),
            "markPrice": num(last),
        }

    def depth(self, limit: int = 100) -> dict:
        bid, ask, unit = self.book_top()
        places = int(self.spec["pricePlace"])
        bids = [[num(round(bid - k * self.tick, places)), num(round((k + 1) * unit, 6))] for k in range(limit)]
        asks = [[num(round(ask + k * self.tick, places)), num(round((k + 1) * unit, 6))] for k in range(limit)]
        return {"asks": asks, "bids": bids, "ts": str(self.now_ms), "scale": num(self.tick),
                "precision": "scale0", "isMaxPrecision": "NO"}

    def open_interest_size(self) -> float:
        w = self._window_24h()
        return round(float(self.v[w].sum()) / 10 + abs(self.position_qty), 4)

    def open_interest(self) -> dict:
        return {"openInterestList": [{"symbol": self.symbol, "size": num(self.open_interest_size())}],
                "ts": str(self.now_ms)}

    def tiers(self) -> list[dict]:
        out, lower = [], 0.0
        for k, (upper, mmr, lev) in enumerate(TIERS, start=1):
            out.append({"symbol": self.symbol, "level": str(k), "startUnit": num(lower), "endUnit": num(upper),
                        "leverage": str(lev), "keepMarginRate": num(mmr)})
            lower = upper
        return out


def _tf_name(ms: int) -> str:
    for name, v in (("1m", MIN_MS), ("3m", 3 * MIN_MS), ("5m", 5 * MIN_MS), ("15m", 15 * MIN_MS),
                    ("30m", 30 * MIN_MS), ("1h", HOUR_MS), ("2h", 2 * HOUR_MS), ("4h", 4 * HOUR_MS),
                    ("8h", 8 * HOUR_MS), ("1d", DAY_MS)):
        if v == ms:
            return name
    raise ValueError(f"candles: base step of {ms} ms is not a supported timeframe")
