"""A local Bitget-compatible exchange for tests: Bitget v2 USDT-futures REST + websocket on 127.0.0.1.

It replays real candles (a replay clock advanced by :meth:`BitgetSim.advance`), matches orders
against them with the accounting of :mod:`perpbot.sim.accounting` (so its fees, funding
and liquidation equal the paper exchange's), and answers what the real, unpatched ccxt 4.5
``bitget`` and ``ccxt.pro.bitget`` clients send and parse. Faults (timeouts after accepting an
order, 429, 5xx, dropped websockets, partial fills, rejections, clock skew) are injected via ``sim.faults``.

Design decisions (details in each module's docstring):

* **Clock**: ``start_bar`` candles are history at start; ``advance()`` closes one candle. Only
  candles closed by the clock are served (REST and WS); "now" is the last close time.
* **Fill timing**: a market order fills at the OPEN of the next candle ``advance()`` closes, like
  the backtester (``market_fill="next_open"``, default), or at once at the last close
  (``"last_close"``). Optional ``slippage`` moves taker fills against the taker.
* **Triggers**: TP / SL / liquidation use :func:`~perpbot.sim.accounting.candle_trigger`
  (losing side first when one candle touches both); TP/SL execute as market orders at the level.
* **Mark / index price** = the trade candles (the data has no finer mark series); the 8h mark
  file gives the funding mark price, as in the backtester. Funding at 00/08/16 UTC:
  qty x mark x rate, from the isolated margin.
* **Order book**: synthetic around the last close (best bid = close floored to the tick, ask one
  tick above, sizes growing linearly with depth from 1 % of the recent 5m volume); market orders
  do not walk it.
* **Account**: one USDT wallet (:class:`~perpbot.devtools.bitget_sim.account.Wallet`) shared by
  the traded symbols: ``symbol`` plus the optional ``tradable={"BTCUSDT": (candles, funding,
  mark)}`` (same candle timestamps, same replay clock). Each symbol has its own
  :class:`~perpbot.devtools.bitget_sim.engine.Engine` (``sim.engines[sym]``): one-way isolated
  position, orders, TP/SL plans, leverage, margin mode, fills, funding bills. ``available`` =
  balance - every position's margin - every live order's frozen margin; equity = balance +
  every position's unrealised PnL. One-way position mode, isolated margin only.
  ``others={...}`` adds public market data only (not tradable).

Endpoint lists: :mod:`~perpbot.devtools.bitget_sim.routes` (public),
:mod:`~perpbot.devtools.bitget_sim.private` (signed), :mod:`~perpbot.devtools.bitget_sim.ws`.
"""

from __future__ import annotations

from perpbot.devtools.bitget_sim.faults import Faults
from perpbot.devtools.bitget_sim.server import BitgetSim

__all__ = ["BitgetSim", "Faults"]
