"""A local OKX exchange for tests: OKX's API v5 REST protocol (USDT perpetual swaps, ``instType``
SWAP) on 127.0.0.1, answering the real, unpatched ccxt 4.5 ``okx`` client (async or sync, demo
trading or not).

It is a protocol facade over the Bitget simulator (:mod:`perpbot.devtools.bitget_sim`), as
:mod:`perpbot.devtools.binance_sim` is: the same replay clock and market (real candles; only
closed candles are served), the same :class:`~perpbot.devtools.bitget_sim.engine.Engine` (orders,
TP/SL plans, the position, fills, funding, liquidation, with :mod:`perpbot.sim.accounting`'s money
math) on a :class:`~perpbot.devtools.bitget_sim.account.Wallet`, and the same
:class:`~perpbot.devtools.bitget_sim.faults.Faults`. Only the wire protocol, the market rules and
the fees are OKX's.

Design decisions and where the simulator departs from OKX (details in each module):

* **Account**: one trading account, single-currency margin (``acctLv`` 2), net position mode
  only (long_short_mode refused), isolated margin only (``tdMode`` cross refused); USDT.
* **Instrument** (:mod:`.info`): SOL-USDT-SWAP only (``ctVal`` 1 SOL: amounts in contracts are
  SOL; tick 0.01, lot and minimum 0.01, no minimum notional, max leverage 50); fees Lv1 (VIP 0)
  taker 0.05 %, maker 0.02 %. Liquidation uses the engine's one tier table (the whole isolated
  margin is lost), not OKX's position tiers; the liquidation order has ``category``
  full_liquidation and its fee is the clearance (the rest of the margin).
* **Fills**: a market order fills on placement at the last close (+ ``slippage``), taker fee;
  limit orders are matched by the candles; TP/SL algo orders trigger on the trade candles (mark =
  index = last in this simulator, whatever the trigger price type) and fill at their level
  (gaps: at the open), the losing side first when one candle touches both.
* **TP/SL** (:mod:`.orders`, :mod:`.shapes`): an entry's ``attachAlgoOrds`` (one element, market
  execution) become, when it fills, one algo order on the whole position (``oco`` with both
  levels, else ``conditional``; OKX sizes it to the entry); ``order-algo`` takes reduce-only
  one-sided ``conditional`` orders with ``sz`` only (no trigger / move_order_stop / twap /
  closeFraction), while a position is open on the side they close. The venue cancels every TP/SL
  algo order of the symbol when its position closes. ``clOrdId`` of an algo order is echoed in
  its rows and given to the order it places when it triggers (that order also carries the algo
  order's ``algoId`` / ``algoClOrdId`` and ``source`` 7); the triggered leg is the algo order's
  ``actualSide`` (sl / tp).
* **Errors**: OKX's codes and shapes (``sCode`` rows for orders, HTTP 200; 401 for
  authentication), translated from the engine's in one table (:mod:`.errors`).
* **Auth and clock** (:mod:`.auth`): OKX's HMAC-SHA256 / Base64 signature with the passphrase;
  timestamps more than 30 s from the venue clock (local clock + ``faults.clock_skew``) get 50102.
  ``/api/v5/public/time`` is that clock; market time is the replay clock (candles, tickers, the
  ``uTime`` of balances). Demo trading (``x-simulated-trading: 1``) is recorded per request
  (``requests[i]["demo"]``) and not enforced: one key serves both.
* **Not served**: websockets, spot / futures / options instruments, the funding account
  (``asset/balances``), transfers, order amendment.

Endpoint lists: :mod:`.public`, :mod:`.private`, :mod:`.orders`; authentication: :mod:`.auth`.
"""

from __future__ import annotations

from perpbot.devtools.bitget_sim.faults import Faults
from perpbot.devtools.okx_sim.server import OkxSim

__all__ = ["Faults", "OkxSim"]
