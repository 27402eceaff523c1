"""A local Bybit exchange for tests: Bybit's v5 REST protocol (``category=linear`` USDT perpetuals, a
unified trading account, one-way mode) on 127.0.0.1, answering the real, unpatched ccxt 4.5 ``bybit``
client (async or sync).

It is a protocol facade over the Bitget simulator (:mod:`perpbot.devtools.bitget_sim`), as the Binance
one (:mod:`perpbot.devtools.binance_sim`): the same replay clock and market (real candles; only closed
candles are served), the same per-symbol :class:`~perpbot.devtools.bitget_sim.engine.Engine` (orders,
TP/SL plans, positions, fills, funding, liquidation, with :mod:`perpbot.sim.accounting`'s money math)
on one shared :class:`~perpbot.devtools.bitget_sim.account.Wallet`, and the same
:class:`~perpbot.devtools.bitget_sim.faults.Faults`. Only the wire protocol, the market rules and the
fees are Bybit's.

Design decisions and where the simulator departs from Bybit (details in each module):

* **Fills**: a Market order fills on placement at the last close (+ ``slippage``), taker fee; limit
  orders are matched by the candles; conditional / TP/SL orders trigger on the trade candles (mark =
  index = last in this simulator, whatever ``triggerBy``) and fill at their trigger level (gaps: at
  the open), the losing side first when one candle touches both. Bybit executes a triggered order as a
  market order at the then price (slippage beyond the level is not simulated). Liquidation (the
  engine's rule: the whole isolated margin is lost) is one takeover order (BustTrade) at the
  liquidation price; Bybit's laddered liquidation (CreateByLiq) is not simulated.
* **Rules**: :mod:`.info` (SOLUSDT tick 0.01 / qty step 0.1 / min 0.1 SOL / min notional 5 USDT;
  contract = 1 SOL, as on Bybit: a linear ``qty`` is in the base coin); fees VIP 0 (taker 0.055 %,
  maker 0.02 %); one tier table for liquidation instead of Bybit's risk limits; one-way mode only;
  isolated margin only for orders (the account starts in REGULAR_MARGIN, as on Bybit: set
  ISOLATED_MARGIN first; the simulator's margin mode is account-wide, as Bybit's UTA setting).
* **TP/SL**: the entry's ``takeProfit`` / ``stopLoss`` (``tpslMode`` Full) become position-wide
  ``TakeProfit`` / ``StopLoss`` orders when it fills, listed by ``GET /v5/order/realtime``
  (``orderFilter=StopOrder``), cancellable by id (the pair together); reduce-only conditional market
  orders (``triggerPrice`` / ``triggerDirection``) are ``Stop`` orders with the user's ``orderLinkId``.
  Every conditional / TP/SL order of a symbol is cancelled (Deactivated) when its position closes
  (Bybit says so of TP/SL orders; the simulator applies it to reduce-only conditional orders as well).
  ``/v5/position/trading-stop`` (trailing stops, TP/SL edits) is not simulated (HTTP 404, 10017).
* **Errors**: Bybit's codes, translated from the engine's in one table (:mod:`.errors`), with HTTP 200
  as Bybit answers business errors; ccxt maps them with its own ``bybit.exceptions``.
* **Clock**: ``/v5/market/time`` and every answer's ``time`` are the venue's wall clock, the local
  clock plus ``faults.clock_skew`` (the clock a client signs with; refused outside
  ``[server_time - recv_window, server_time + 1000)``); market time is the replay clock (candles,
  order and execution times). A live loop takes its candle clock from the replay (``LiveBot(clock=...)``).
* **Lists** are one page (``nextPageCursor`` ""); the realtime list keeps every order (Bybit: the last
  500 closed ones); funding executions carry ``execFee`` > 0 when paid (Bybit's sign).

Endpoint lists: :mod:`.public`, :mod:`.private`, :mod:`.orders`; authentication: :mod:`.auth`; JSON
shapes: :mod:`.shapes`.
"""

from __future__ import annotations

from perpbot.devtools.bitget_sim.faults import Faults
from perpbot.devtools.bybit_sim.server import BybitSim

__all__ = ["BybitSim", "Faults"]
