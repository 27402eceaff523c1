"""Run the ``perpbot`` command line with its ccxt client pointed at a local Bitget simulator.

Used by the real-money gate tests as ``python tests/_sim_cli.py run --mode live ...`` in a
subprocess. The real ccxt library is used unchanged; only its ``urls`` are set to the
simulator's (REST for every API group, the websocket URLs), exactly as
``BitgetSim.point`` does in-process. Environment: ``SIM_BASE_URL``, ``SIM_WS_PUBLIC``,
``SIM_WS_PRIVATE``.
"""

from __future__ import annotations

import os
import sys

from perpbot.devtools.bitget_sim.server import REST_API_KEYS
from perpbot.exchange import ccxt_adapter

_make_exchange = ccxt_adapter.make_exchange


def make_exchange(settings, **kwargs):
    ex = _make_exchange(settings, **kwargs)
    ws = {"public": os.environ["SIM_WS_PUBLIC"], "private": os.environ["SIM_WS_PRIVATE"],
          "utaPublic": os.environ["SIM_WS_PUBLIC"], "utaPrivate": os.environ["SIM_WS_PRIVATE"]}
    api = {k: os.environ["SIM_BASE_URL"] for k in REST_API_KEYS}
    old = ex.urls.get("api", {})
    if isinstance(old, dict) and "ws" in old:
        api["ws"], api["demo"] = dict(ws), dict(ws)
    ex.urls["api"] = api
    return ex


ccxt_adapter.make_exchange = make_exchange

if __name__ == "__main__":
    from perpbot.cli.main import app

    sys.exit(app(sys.argv[1:], prog_name="perpbot"))
