"""A real ``perpbot serve --platform`` for the platform pages' browser tests.

The server is the CLI in a subprocess (``python -m perpbot serve --platform``) on a SQLite file or a
fresh PostgreSQL schema (``PERPBOT_LEDGER_URL``); its first admin comes from ``perpbot platform
create-admin --password-stdin``, the other users from the admin's ``POST /api/v1/users``. Bob's two
closed trades are booked through the platform's own order flow (:class:`TradeDesk`: lock margin, fill,
settle) on real SOL/USDT 5m closes, so that his statistics are not zeros.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from decimal import Decimal

import httpx
import pandas as pd
from cryptography.fernet import Fernet

from _cli_helpers import perpbot
from _platform_db import url_for

OPERATOR_TOKEN = "operator-token-0123456789-abcdefghijklmnop"
PASSWORDS = {"root": "root password 123", "alice": "alice password 123", "bob": "bob password 1234",
             "vic": "viewer password 12", "eve": "eve password 12345"}
ROLES = {"alice": "trader", "bob": "trader", "vic": "viewer", "eve": "trader"}
FEE, FUNDING = Decimal("0.05"), Decimal("0.01")
#: Bob's trades: (side, qty SOL, entry candle, exit candle) on the real SOLUSDT 5m closes, 2x leverage.
BOB_TRADES = (("buy", Decimal(2), 2000, 2050), ("buy", Decimal(1), 1000, 1100))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(proc, base: str, err_path) -> None:
    deadline = time.monotonic() + 90
    while True:
        assert proc.poll() is None, err_path.read_text()
        try:
            if httpx.get(base + "/health", timeout=5, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "perpbot serve --platform did not answer /health"
        time.sleep(0.2)


def book_bob_trades(url: str, user_id: int, sol5m_path) -> list[Decimal]:
    """Deposit 2000 USDT for bob and run :data:`BOB_TRADES` through the order flow; returns each trade's
    net result worked out here: side x (exit - entry) x qty - entry fee - exit fee - funding (USDT)."""
    from perpbot.platform.db import open_engine, utcnow
    from perpbot.platform.profiles import Profiles
    from perpbot.platform.trading import FillReport, OrderRequest, TradeDesk
    from perpbot.platform.wallet import Wallet

    close = pd.read_parquet(sol5m_path, columns=["close"])["close"]
    engine = open_engine(url)
    try:
        wallet = Wallet(engine)
        wallet.deposit(user_id, "USDT", Decimal(2000), "bob-seed")
        desk = TradeDesk(engine, wallet, Profiles(engine))
        nets = []
        for side, qty, i, j in BOB_TRADES:
            entry, exit_ = Decimal(str(close.iloc[i])), Decimal(str(close.iloc[j]))
            order = desk.open_order(user_id, OrderRequest("SOL/USDT:USDT", side, qty, Decimal(2), entry))
            desk.send(order.id, lambda o: FillReport(o.qty, o.price, FEE, utcnow()))
            desk.settle(order.id, exit_, fee=FEE, funding=FUNDING)
            nets.append((1 if side == "buy" else -1) * (exit_ - entry) * qty - FEE - FEE - FUNDING)
        return nets
    finally:
        engine.dispose()


@contextmanager
def served_platform(backend: str, tmp_path, sol5m_path):
    """Yields {base, url, ids: {user: id}, bob_nets}; the server is stopped (SIGTERM) at exit."""
    with url_for(backend, tmp_path) as url:
        env = {"PERPBOT_LEDGER_URL": url, "PERPBOT_API_TOKEN": OPERATOR_TOKEN, "PERPBOT_FUNDING": "false",
               "PERPBOT_MASTER_KEY": Fernet.generate_key().decode(), "PERPBOT_JWT_SECRET": "j" * 40}
        r = perpbot(["platform", "create-admin", "root", "--password-stdin"], cwd=tmp_path, env=env,
                    input=PASSWORDS["root"] + "\n", timeout=120)
        assert r.returncode == 0, r.stderr
        port = _free_port()
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("PERPBOT_")} | env
        err = tmp_path / "serve-stderr.txt"
        with err.open("w") as err_file:
            proc = subprocess.Popen([sys.executable, "-m", "perpbot", "serve", "--platform", "--port", str(port)],
                                    cwd=tmp_path, env=full_env, stdout=subprocess.DEVNULL, stderr=err_file)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(proc, base, err)
            tok = httpx.post(base + "/api/v1/auth/token", data={"username": "root", "password": PASSWORDS["root"]},
                             timeout=30, trust_env=False)
            assert tok.status_code == 200, tok.text
            admin = {"Authorization": f"Bearer {tok.json()['access_token']}"}
            ids = {"root": httpx.get(base + "/api/v1/auth/me", headers=admin, trust_env=False).json()["user_id"]}
            for name, role in ROLES.items():
                made = httpx.post(base + "/api/v1/users", headers=admin, timeout=30, trust_env=False,
                                  json={"username": name, "password": PASSWORDS[name], "role": role})
                assert made.status_code == 201, made.text
                ids[name] = made.json()["id"]
            nets = book_bob_trades(url, ids["bob"], sol5m_path)
            yield {"base": base, "url": url, "ids": ids, "bob_nets": nets, "stderr": err}
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
