"""A local Binance USDⓈ-M futures exchange for tests: Binance's ``/fapi`` REST protocol on
127.0.0.1, answering the real, unpatched ccxt 4.5 ``binanceusdm`` client (async or sync).

It is a protocol facade over the Bitget simulator (:mod:`perpbot.devtools.bitget_sim`): the
same replay clock and market (real candles; only closed candles are served), the same
per-symbol :class:`~perpbot.devtools.bitget_sim.engine.Engine` (orders, TP/SL plans,
positions, fills, funding, liquidation, with :mod:`perpbot.sim.accounting`'s money math) on
one shared :class:`~perpbot.devtools.bitget_sim.account.Wallet`, and the same
:class:`~perpbot.devtools.bitget_sim.faults.Faults`. Only the wire protocol, the market rules
and the fees are Binance's.

Design decisions and where the simulator departs from Binance (details in each module):

* **Fills**: a MARKET order fills on placement at the last close (+ ``slippage``), taker fee;
  limit orders are matched by the candles; conditional orders trigger on the trade candles
  (mark = index = last in this simulator, whatever ``workingType``) and fill at their trigger
  level (gaps: at the open), the losing side first when one candle touches both.
  Liquidation (the engine's rule: the whole isolated margin is lost) fills an order whose
  ``clientOrderId`` starts with ``autoclose-``; its trade's ``commission`` is the clearance (the
  rest of the margin), where Binance would book an INSURANCE_CLEAR income row.
* **Rules**: :mod:`.info` (SOLUSDT tick 0.01 / step 1 / min notional 5; BTCUSDT, ETHUSDT);
  fees VIP 0 (taker 0.05 %, maker 0.02 %); one tier table for liquidation (served as
  ``leverageBracket``); one-way mode only; isolated margin only for orders (a symbol starts
  CROSSED, as on Binance: set ISOLATED first).
* **Conditional orders** (the algo service, ``/fapi/v1/algoOrder``): STOP_MARKET,
  TAKE_PROFIT_MARKET and TRAILING_STOP_MARKET, reduce-only or closePosition only, accepted only
  while a position is open on the side they close (-2022 otherwise); they expire when the
  position closes (:mod:`.orders`, statuses in :mod:`.shapes`).
* **Errors**: Binance's codes, translated from the engine's in one table (:mod:`.errors`);
  :meth:`BinanceSim.point` also gives the ccxt instance ccxt's own USDⓈ-M error table, which
  ccxt otherwise selects by the ``fapi.binance.com`` host name.
* **Clock**: ``serverTime`` (``/fapi/v1/time``) is the venue's wall clock, the local clock plus
  ``faults.clock_skew`` (Binance has one clock: the one a client syncs its signatures to, as
  perpbot's :func:`~perpbot.exchange.clock.sync_clock` does), and request timestamps are checked
  against it; market time is the replay clock (``market.now_ms``: the candles served, the
  ``time`` of tickers and the premium index). A live loop on this simulator takes its candle
  clock from the replay (``LiveBot(clock=...)``), as on the Bitget simulator.

Endpoint lists: :mod:`.public`, :mod:`.private`, :mod:`.orders`; authentication: :mod:`.auth`.
"""

from __future__ import annotations

from perpbot.devtools.binance_sim.server import BinanceSim
from perpbot.devtools.bitget_sim.faults import Faults

__all__ = ["BinanceSim", "Faults"]
