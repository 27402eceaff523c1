"""Users and access (perpbot.platform.access) and the encrypted exchange-key store
(perpbot.platform.keystore): argon2 passwords, JWTs, API keys, roles, lockout, rate limit,
audit rows, no exchange key in plain text anywhere in the database, master-key rotation."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from _platform_db import PG_REQUIRED, BACKENDS, url_for

from perpbot.platform.access import (
    Access, AccessError, AccessInputError, LockedOut, RateLimited,
)
from perpbot.platform.db import open_engine
from perpbot.platform.keystore import KeyStore, KeyStoreError, master_key_from_env, rotate_master_key
from perpbot.platform.models import ApiKey, AuditEvent, User

SECRET = "jwt-secret-for-tests-0123456789abcdef"
#: argon2id with small costs: the tests hash many passwords; the default costs are checked once below.
FAST = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    with url_for(request.param, tmp_path) as url:
        eng = open_engine(url)
        yield request.param, url, eng
        eng.dispose()


def actions(eng):
    with eng.connect() as c:
        return [r for r in c.execute(sa.select(AuditEvent.action, AuditEvent.target).order_by(AuditEvent.id))]


def test_password_login_token_and_roles(backend):
    _, _, eng = backend
    acc = Access(eng, SECRET, token_ttl_s=60)  # the recommended argon2id costs
    alice = acc.create_user("alice", "correct horse battery", "trader")
    with eng.connect() as c:
        stored = c.execute(sa.select(User.password_hash).where(User.id == alice.id)).scalar_one()
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$") and "correct horse" not in stored
    user = acc.authenticate("alice", "correct horse battery", client="10.0.0.1")
    token, ttl = acc.issue_token(user)
    assert ttl == 60
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], issuer="perpbot")
    assert claims["sub"] == str(alice.id) and claims["role"] == "trader" and claims["exp"] - claims["iat"] == 60
    p = acc.principal(token)
    assert (p.user_id, p.role, p.via) == (alice.id, "trader", "jwt") and p.allows("viewer") and not p.allows("admin")
    # a lowered role applies at once, whatever the token says; a disabled user is out
    acc.update_user(alice.id, actor_id=None, role="viewer")
    assert acc.principal(token).role == "viewer"
    acc.update_user(alice.id, actor_id=None, disabled=True)
    with pytest.raises(AccessError, match="disabled"):
        acc.principal(token)
    forged = jwt.encode({**claims, "role": "admin"}, "another-secret-of-32-characters-xxxx", algorithm="HS256")
    with pytest.raises(AccessError, match="invalid access token"):
        acc.principal(forged)
    expired = jwt.encode({**claims, "exp": int(time.time()) - 5}, SECRET, algorithm="HS256")
    with pytest.raises(AccessError, match="expired"):
        acc.principal(expired)
    with pytest.raises(AccessInputError, match="taken"):
        acc.create_user("alice", "another password!", "viewer")
    with pytest.raises(AccessInputError, match="10-256"):
        acc.create_user("bob", "short", "viewer")
    with pytest.raises(AccessInputError, match="role"):
        acc.create_user("bob", "long enough password", "root")
    assert [a for a, _ in actions(eng)] == ["user_created", "login_ok", "role_changed", "user_changed"]


def test_lockout_after_five_wrong_passwords_and_rate_limit(backend):
    _, _, eng = backend
    acc = Access(eng, SECRET, max_failures=5, lockout_s=3600, rate_limit=100, hasher=FAST)
    acc.create_user("carol", "the right password", "trader")
    for _ in range(4):
        with pytest.raises(AccessError, match="wrong user name or password"):
            acc.authenticate("carol", "wrong password!", client="1.2.3.4")
    with pytest.raises(LockedOut, match="locked until"):
        acc.authenticate("carol", "wrong password!", client="1.2.3.4")
    with pytest.raises(LockedOut):  # even the right password, while locked
        acc.authenticate("carol", "the right password", client="1.2.3.4")
    with pytest.raises(AccessError, match="wrong user name or password"):
        acc.authenticate("nobody", "whatever password", client="1.2.3.4")
    with pytest.raises(AccessError, match="wrong user name or password"):  # NUL bytes never reach the database
        acc.authenticate("carol\x00", "whatever password", client="1.2.3.4")
    kinds = [a for a, _ in actions(eng)]
    assert kinds == ["user_created"] + ["login_failed"] * 4 + ["login_locked", "login_locked", "login_failed"] * 1 + \
        ["login_failed"]
    assert actions(eng)[-1] == ("login_failed", "username:<not a user name>")
    limited = Access(eng, SECRET, rate_limit=3, rate_window=60, hasher=FAST)
    for _ in range(3):
        with pytest.raises(AccessError):
            limited.authenticate("nobody", "whatever password", client="5.6.7.8")
    with pytest.raises(RateLimited, match="retry in") as err:
        limited.authenticate("carol", "the right password", client="5.6.7.8")
    assert 1 <= err.value.retry_after <= 61
    # another client is not limited:
    with pytest.raises(LockedOut):
        limited.authenticate("carol", "the right password", client="9.9.9.9")
    assert actions(eng)[-2][0] == "login_rate_limited"


def test_api_keys_are_hashed_revocable_and_capped_at_the_owner_role(backend):
    _, _, eng = backend
    acc = Access(eng, SECRET, hasher=FAST)
    dave = acc.create_user("dave", "dave's long password", "trader")
    key, row = acc.create_api_key(dave.id, "my bot", role="viewer")
    assert key.startswith("pbk_") and len(key) == 47 and row.prefix == key[:12]
    with eng.connect() as c:
        hashes = c.execute(sa.select(ApiKey.key_hash)).scalars().all()
    assert key not in hashes and len(hashes[0]) == 64
    p = acc.principal(key)
    assert (p.user_id, p.role, p.via) == (dave.id, "viewer", "api_key")
    with pytest.raises(AccessInputError, match="cannot exceed"):
        acc.create_api_key(dave.id, "too strong", role="admin")
    assert acc.revoke_api_key(dave.id, row.id) and not acc.revoke_api_key(dave.id, row.id)
    with pytest.raises(AccessError, match="revoked"):
        acc.principal(key)
    other = acc.create_user("erin", "erin's long password", "trader")
    key2, row2 = acc.create_api_key(other.id, "erin bot")
    assert not acc.revoke_api_key(dave.id, row2.id)  # not dave's key
    assert acc.principal(key2).user_id == other.id


CREDS = [{"api_key": "bg_4f8a2c91d0e7b6a5fe31", "secret": "S3cr3tValueNobodyMayRead0987654321", "password": "Passphrase!2468"},
         {"api_key": "bn_77aa66bb55cc44dd33ee", "secret": "AnotherSecretValue1122334455667788"}]


def raw_database_bytes(backend_name: str, url: str, tmp_path: Path) -> bytes:
    """The database as stored: every SQLite file (main + WAL), or a pg_dump of the schema."""
    if backend_name == "sqlite":
        db = Path(sa.engine.make_url(url).database)
        return b"".join(p.read_bytes() for p in db.parent.iterdir() if p.name.startswith(db.name))
    schema = sa.engine.make_url(url).query["options"].split("=", 1)[1]
    pg = sa.engine.make_url(os.environ["PERPBOT_TEST_POSTGRES_URL"])
    try:
        out = subprocess.run(["pg_dump", "-h", pg.host or "127.0.0.1", "-p", str(pg.port or 5432), "-U",
                              pg.username or "postgres", "-n", schema, pg.database], capture_output=True, check=True,
                             timeout=60)
    except FileNotFoundError:
        if PG_REQUIRED:
            pytest.fail("pg_dump is not installed")
        pytest.skip("pg_dump is not installed")
    return out.stdout


def test_no_exchange_key_in_plain_text_and_rotation_keeps_keys_usable(backend, tmp_path):
    name, url, eng = backend
    acc = Access(eng, SECRET, hasher=FAST)
    users = [acc.create_user(f"user{i}", "a long enough password", "trader").id for i in range(2)]
    old_key = Fernet.generate_key().decode()
    store = KeyStore(eng, master_key_from_env({"PERPBOT_MASTER_KEY": old_key}))
    for uid, creds, ex in zip(users, CREDS, ("bitget", "binanceusdm")):
        store.put(uid, ex, creds)
    store.put(users[0], "okx", {"api_key": "okx_key_0011223344", "secret": "okx-secret-5566778899"}, label="spare")
    raw = raw_database_bytes(name, url, tmp_path)
    assert b"pbk_" not in raw
    assert len(raw) > 10_000 and b"gAAAAA" in raw  # the rows are there, as Fernet tokens
    for creds in CREDS:
        for value in creds.values():
            assert value.encode() not in raw, f"{value[:4]}... found in plain text"
    assert [i.exchange for i in store.list(users[0])] == ["bitget", "okx"]
    # rotation: every user's keys still decrypt, now with the new key alone; the old key no longer works
    new_key = Fernet.generate_key().decode()
    assert rotate_master_key(eng, old_key, new_key) == 3
    rotated = KeyStore(eng, master_key_from_env({"PERPBOT_MASTER_KEY": new_key}))
    assert rotated.get(users[0], "bitget") == CREDS[0]
    assert rotated.get(users[1], "binanceusdm") == CREDS[1]
    assert rotated.get(users[0], "okx", "spare")["secret"] == "okx-secret-5566778899"
    with pytest.raises(KeyStoreError, match="does not decrypt"):
        store.get(users[0], "bitget")
    with pytest.raises(KeyStoreError, match="nothing was rotated"):
        rotate_master_key(eng, old_key, Fernet.generate_key().decode())
    assert rotated.get(users[1], "binanceusdm") == CREDS[1]  # the failed rotation changed nothing
    for value in CREDS[0].values():
        assert value.encode() not in raw_database_bytes(name, url, tmp_path)
    with pytest.raises(KeyStoreError, match="PERPBOT_MASTER_KEY"):
        master_key_from_env({"PERPBOT_MASTER_KEY": "not-a-key"})
    with pytest.raises(KeyStoreError, match="no master key"):
        master_key_from_env({})


def test_the_platform_reads_its_settings_from_the_main_settings(tmp_path, monkeypatch):
    """Platform(url) without settings loads perpbot.config.Settings: the config file and the
    PERPBOT_* variables users already set (the environment beating the file)."""
    from perpbot.platform.service import Platform

    for key in [k for k in os.environ if k.startswith("PERPBOT_") and k != "PERPBOT_DATA_DIR"]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "perpbot.toml").write_text("token_ttl_s = 600\nlogin_max_failures = 7\nlogin_lockout_s = 120\n"
                                           'lock_timeout_s = 90\ncurrency = "USDC"\n')
    with pytest.raises(KeyStoreError, match="no master key: set PERPBOT_MASTER_KEY"):
        Platform("sqlite://", hasher=FAST)
    monkeypatch.setenv("PERPBOT_MASTER_KEY", Fernet.generate_key().decode())
    with pytest.raises(ValueError, match=r"^set PERPBOT_JWT_SECRET \(at least 32 characters\) to run the platform$"):
        Platform("sqlite://", hasher=FAST)
    monkeypatch.setenv("PERPBOT_JWT_SECRET", SECRET)
    monkeypatch.setenv("PERPBOT_TOKEN_TTL_S", "1800")
    monkeypatch.setenv("PERPBOT_LOGIN_RATE_LIMIT", "40")
    pf = Platform("sqlite://", hasher=FAST)
    try:
        acc = pf.access
        assert (acc.token_ttl_s, acc.max_failures, acc.lockout_s, acc.limiter.limit) == (1800, 7, 120, 40)
        assert (pf.desk.currency, pf.settings.lock_timeout_s) == ("USDC", 90.0)
        user = acc.create_user("alice", "correct horse battery", "trader")
        token, ttl = acc.issue_token(acc.authenticate("alice", "correct horse battery", client="10.0.0.1"))
        claims = jwt.decode(token, SECRET, algorithms=["HS256"], issuer="perpbot")
        assert ttl == 1800 and claims["exp"] - claims["iat"] == 1800 and claims["sub"] == str(user.id)
    finally:
        pf.close()
