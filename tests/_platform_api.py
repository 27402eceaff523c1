"""A served platform for the API tests: the app of perpbot.api with a Platform (in-process
TradePolicy contract; oracle guard over the Bitget simulator replaying real candles and two local
ticker stubs) on a SQLite file or a fresh PostgreSQL schema, and four users: an admin, two traders
(alice, whose data no one else may see, and bob) and a viewer."""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from decimal import Decimal

import ccxt
import httpx
from cryptography.fernet import Fernet
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from _api_helpers import serving
from _platform_db import url_for
from _sim_fixtures import quiet_loggers, running_sim, sim_data
from fake_venues import FakeVenue

from perpbot.api import create_app
from perpbot.bot.context import BotContext
from perpbot.config import Settings, load_settings
from perpbot.platform.contract import Policy, PolicyChain
from perpbot.platform.oracle import OracleGuard
from perpbot.platform.service import Platform

OPERATOR_TOKEN = "operator-token-0123456789-abcdefghijklmnop"
SYMBOL = "SOL/USDT:USDT"
FAST = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))
PASSWORDS = {"root": "root password 123", "alice": "alice password 123", "bob": "bob password 1234",
             "vic": "viewer password 12"}
#: What only alice (and, for the name, the admin's user list / audit log) may ever see.
ALICE_MARKERS = ("alice", "777.123456789", "ALICE-EXCHANGE-KEY-7f3a", "ALICE-SECRET-9b2c", "alice-bot")


def platform_settings(**kw) -> Settings:
    """The main settings with the platform's secrets and a one-hour token lifetime."""
    return load_settings(None, master_key=Fernet.generate_key().decode(), jwt_secret="j" * 48, token_ttl_s=3600, **kw)


def spec_app():
    """The app over an in-memory database: enough to read the OpenAPI schema."""
    pf = Platform("sqlite://", platform_settings(), hasher=FAST)
    return create_app(BotContext(load_settings(None, ledger_url="sqlite://")), OPERATOR_TOKEN, platform=pf)


def login(base: str, user: str) -> dict:
    r = httpx.post(f"{base}/api/v1/auth/token", data={"username": user, "password": PASSWORDS[user]}, timeout=30)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@contextmanager
def live_platform(backend: str, tmp_path, data_paths, sol5m_path):
    """Yields {base, platform, headers: {user: auth header}, ids: {user: id}, alice_key, sim, venues}."""
    with ExitStack() as stack:
        url = stack.enter_context(url_for(backend, tmp_path))
        data = sim_data(*data_paths, 1600)
        stack.enter_context(quiet_loggers("aiohttp.access"))
        sim = stack.enter_context(running_sim(data, 1500))
        bitget = ccxt.bitget({"options": {"defaultType": "swap", "uta": False, "fetchMarkets": {"types": ["swap"]}}})
        sim.point(bitget)
        last = float(data[0]["close"].iloc[1499])
        now = sim.market.now_ms
        binance = stack.enter_context(FakeVenue("binanceusdm", last, now))
        okx = stack.enter_context(FakeVenue("okx", last, now))
        guard = OracleGuard(("bitget", bitget), {"binanceusdm": binance.client(), "okx": okx.client()},
                            clock=lambda: sim.market.now_ms)
        policy = PolicyChain.in_process(Policy(symbols=[SYMBOL], max_leverage=Decimal(3),
                                               default_max_notional=Decimal(5000), price_band_bps=50))
        pf = Platform(url, platform_settings(), oracle=guard, policy=policy, hasher=FAST)
        guard.engine = pf.engine
        stack.callback(pf.close)
        ids = {"root": pf.access.create_user("root", PASSWORDS["root"], "admin").id}
        for name, role in (("alice", "trader"), ("bob", "trader"), ("vic", "viewer")):
            ids[name] = pf.access.create_user(name, PASSWORDS[name], role, actor_id=ids["root"]).id
        app = create_app(BotContext(load_settings(None, ledger_url=url, candles_file=sol5m_path)), OPERATOR_TOKEN,
                         platform=pf)
        base = stack.enter_context(serving(app))
        headers = {u: login(base, u) for u in PASSWORDS}
        # alice's private data
        a = headers["alice"]
        assert httpx.post(f"{base}/api/v1/wallet/deposit", headers=a, timeout=30,
                          json={"amount": "777.123456789", "idempotency_key": "alice-dep-1"}).status_code == 200
        assert httpx.put(f"{base}/api/v1/user/exchange-keys/bitget", headers=a, timeout=30,
                         json={"api_key": "ALICE-EXCHANGE-KEY-7f3a", "secret": "ALICE-SECRET-9b2c"}).status_code == 200
        r = httpx.post(f"{base}/api/v1/auth/api-keys", headers=a, json={"name": "alice-bot"}, timeout=30)
        assert r.status_code == 201
        yield {"base": base, "platform": pf, "headers": headers, "ids": ids, "alice_key": r.json()["key"],
               "sim": sim, "last": last, "venues": (binance, okx), "app": app}
