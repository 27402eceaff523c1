"""Developer tools: local stand-ins for outside services, used by tests and demos.

:mod:`perpbot.devtools.bitget_sim` is a local Bitget v2 USDT-futures exchange (HTTP and
websocket on 127.0.0.1) that replays real candles, so the real ccxt client can be tested
end to end without a network or an account.
"""

from __future__ import annotations
