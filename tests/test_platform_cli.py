"""The platform's operator commands through real subprocesses: ``journal verify`` (intact /
altered row named, exit 1), ``platform create-admin`` (password from stdin, never echoed) and
``platform rotate-key`` (every stored exchange key readable with the new master key only)."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

pytest.importorskip("cryptography", reason="the platform extra is not installed")

from cryptography.fernet import Fernet, MultiFernet  # noqa: E402

from perpbot.platform.db import open_engine  # noqa: E402
from perpbot.platform.keystore import KeyStore, KeyStoreError  # noqa: E402
from perpbot.platform.ledger_models import WalletEntry  # noqa: E402
from perpbot.platform.models import User  # noqa: E402
from perpbot.platform.wallet import Wallet  # noqa: E402
from _cli_helpers import perpbot  # noqa: E402

PASSWORD = "correct horse battery"


def _ledger(tmp_path):
    (tmp_path / "runs").mkdir(exist_ok=True)
    return open_engine(f"sqlite:///{tmp_path / 'runs' / 'perpbot.db'}")


def _admin(tmp_path) -> int:
    r = perpbot(["platform", "create-admin", "ops.admin", "--password-stdin"], cwd=tmp_path, input=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    assert PASSWORD not in r.stdout + r.stderr
    engine = _ledger(tmp_path)
    with engine.connect() as c:
        row = c.execute(sa.select(User.id, User.role, User.password_hash).where(User.username == "ops.admin")).one()
    engine.dispose()
    assert r.stdout.strip() == f"admin 'ops.admin' created (user id {row.id})"
    assert row.role == "admin" and row.password_hash.startswith("$argon2id$")
    return row.id


def test_create_admin_refuses_a_short_password_with_exit_2(tmp_path):
    r = perpbot(["platform", "create-admin", "ops.admin", "--password-stdin"], cwd=tmp_path, input="short\n")
    assert r.returncode == 2 and r.stderr.strip() == "error: password must be 10-256 characters"


def test_journal_verify_is_intact_then_names_the_altered_deposit(tmp_path):
    uid = _admin(tmp_path)
    engine = _ledger(tmp_path)
    wallet = Wallet(engine)
    first = wallet.deposit(uid, "USDT", "100", key="dep-1")
    wallet.deposit(uid, "USDT", "25.5", key="dep-2")
    r = perpbot(["journal", "verify"], cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("journal intact: 2 links, head 2 ")
    with engine.begin() as c:  # someone edits a deposit in the database
        c.execute(sa.update(WalletEntry).where(WalletEntry.id == first.id).values(amount=Decimal("1000")))
    engine.dispose()
    r = perpbot(["journal", "verify"], cwd=tmp_path)
    assert r.returncode == 1
    assert r.stdout.splitlines() == [f"altered: wallet_entries row {first.id} (link 1) was altered",
                                     "journal NOT intact: 1 finding(s) in 2 links"]


def test_rotate_key_re_encrypts_every_stored_key_and_never_prints_it(tmp_path):
    uid = _admin(tmp_path)
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    engine = _ledger(tmp_path)
    creds = {"api_key": "bg_live_key_123", "secret": "s3cr3t-value-xyz", "password": "pass-phrase-q"}
    KeyStore(engine, MultiFernet([Fernet(old)])).put(uid, "bitget", creds)
    engine.dispose()
    raw = (tmp_path / "runs" / "perpbot.db").read_bytes()
    assert b"s3cr3t-value-xyz" not in raw and b"bg_live_key_123" not in raw  # encrypted at rest

    r = perpbot(["platform", "rotate-key", "--new-key-stdin"], cwd=tmp_path, input=new + "\n")
    assert r.returncode == 2 and "set PERPBOT_MASTER_KEY to the current master key" in r.stderr
    r = perpbot(["platform", "rotate-key", "--new-key-stdin"], cwd=tmp_path, input="not-a-key\n",
                env={"PERPBOT_MASTER_KEY": old})
    assert r.returncode == 1 and r.stderr.startswith("error: ")
    r = perpbot(["platform", "rotate-key", "--new-key-stdin"], cwd=tmp_path, input=new + "\n",
                env={"PERPBOT_MASTER_KEY": old})
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("1 exchange key(s) re-encrypted")
    assert old not in r.stdout + r.stderr and new not in r.stdout + r.stderr
    engine = _ledger(tmp_path)
    assert KeyStore(engine, MultiFernet([Fernet(new)])).get(uid, "bitget") == creds
    with pytest.raises(KeyStoreError):
        KeyStore(engine, MultiFernet([Fernet(old)])).get(uid, "bitget")
    engine.dispose()


def test_serve_platform_needs_its_secrets_then_logs_in_the_admin(tmp_path):
    import socket
    import subprocess
    import sys
    import time

    import httpx

    from _api_helpers import TOKEN

    _admin(tmp_path)
    r = perpbot(["serve", "--platform"], cwd=tmp_path, env={"PERPBOT_API_TOKEN": TOKEN}, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip() == "error: --platform: no master key: set PERPBOT_MASTER_KEY to a Fernet key " \
                               "(Fernet.generate_key())"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    import os
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERPBOT_")}
    env.update(PERPBOT_API_TOKEN=TOKEN, PERPBOT_MASTER_KEY=Fernet.generate_key().decode(),
               PERPBOT_JWT_SECRET="j" * 40, PERPBOT_FUNDING="false")
    proc = subprocess.Popen([sys.executable, "-m", "perpbot", "serve", "--platform", "--port", str(port)], cwd=tmp_path,
                            env=env, stdout=subprocess.DEVNULL, stderr=(tmp_path / "err.txt").open("w"))
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as c:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, (tmp_path / "err.txt").read_text()
                try:
                    if c.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
            login = c.post("/api/v1/auth/token", data={"username": "ops.admin", "password": PASSWORD})
            assert login.status_code == 200, login.text
            me = c.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
            assert me.status_code == 200 and me.json()["role"] == "admin" and me.json()["username"] == "ops.admin"
            assert c.post("/api/v1/auth/token", data={"username": "ops.admin",
                                                      "password": "wrong password"}).status_code == 401
    finally:
        proc.terminate()
        proc.wait(30)
