"""Fixtures of the live-loop tests on the local Bitget simulator (imported by name into each test module):
quiet client loggers, the module's real candles / funding / mark (its ``N_ROWS`` first rows, default 2,400),
a running simulator at the module's ``START`` row (default 2,000) and a SQLite ledger in ``tmp_path``."""

from __future__ import annotations

import pytest

from perpbot.storage.ledger import Ledger
from _sim_fixtures import quiet_loggers, running_sim, sim_data


@pytest.fixture(scope="module", autouse=True)
def _quiet():
    with quiet_loggers("ccxt", "aiohttp", "asyncio", "perpbot.live", "perpbot.bot"):
        yield


@pytest.fixture(scope="module")
def data(request, sol5m_path, sol_funding_path, sol_mark8h_path):
    return sim_data(sol5m_path, sol_funding_path, sol_mark8h_path, getattr(request.module, "N_ROWS", 2400))


@pytest.fixture
def sim(request, data):
    with running_sim(data, getattr(request.module, "START", 2000)) as s:
        yield s


@pytest.fixture
def ledger(tmp_path):
    led = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield led
    led.close()
