"""Platform costs: wallet movements, concurrent withdrawals, journal verification, the TradePolicy
contract on the in-process EVM, and a password login.

Prints, on a SQLite file (and PostgreSQL when PERPBOT_TEST_POSTGRES_URL is set, in a fresh
schema dropped afterwards): deposits per second (one thread: row lock + idempotency check +
balanced entry + hash-chain link per movement), 20 concurrent withdrawals (wall time, how many
succeeded), verify_journal time per 1,000 links; then the contract's compile and deploy time,
a validate call and a record_fill transaction, and one argon2id login check (pwdlib defaults).

    .venv/bin/python benchmarks/bench_platform.py [--n 500]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa


def _pg_schema(url: str):
    schema = f"pfbench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with admin.begin() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    scoped = sa.engine.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return scoped.render_as_string(hide_password=False), lambda: _drop(admin, schema)


def _drop(admin, schema):
    with admin.begin() as c:
        c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def bench_wallet(label: str, url: str, n: int) -> None:
    from perpbot.platform.chain import verify_journal
    from perpbot.platform.db import open_engine
    from perpbot.platform.models import User
    from perpbot.platform.wallet import InsufficientFunds, Wallet, write_session

    eng = open_engine(url)
    with write_session(eng) as s:
        users = [User(username=f"b{i}", password_hash="!", role="trader", risk_profile="conservative",
                      disabled=False, failed_logins=0) for i in range(2)]
        s.add_all(users)
        s.flush()
        uid, uid2 = users[0].id, users[1].id
    w = Wallet(eng)
    t = time.perf_counter()
    for i in range(n):
        w.deposit(uid, "USDT", Decimal("1.25"), f"d{i}")
    dt = time.perf_counter() - t
    print(f"{label:10s} deposits            {n / dt:8.0f} /s  ({dt / n * 1000:.2f} ms each, {n} in one thread)")
    w.deposit(uid2, "USDT", 100, "seed")
    ok, gate = [], threading.Barrier(20)

    def one(i):
        gate.wait()
        try:
            w.withdraw(uid2, "USDT", 10, f"w{i}")
            ok.append(i)
        except InsufficientFunds:
            pass

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    t = time.perf_counter()
    [th.start() for th in threads]
    [th.join() for th in threads]
    dt = time.perf_counter() - t
    print(f"{label:10s} 20 withdrawals      {dt * 1000:8.0f} ms  ({len(ok)} succeeded, balance "
          f"{w.balances(uid2)['USDT']['available'].normalize()})")
    t = time.perf_counter()
    report = verify_journal(eng)
    dt = time.perf_counter() - t
    print(f"{label:10s} verify_journal      {dt / report.links * 1000 * 1000:8.0f} ms per 1,000 links "
          f"({report.links} links, ok={report.ok})")
    eng.dispose()


def bench_contract() -> None:
    from perpbot.platform.contract import Policy, PolicyChain, compile_policy

    t = time.perf_counter()
    compile_policy()
    print(f"contract   vyper compile       {time.perf_counter() - t:8.2f} s")
    t = time.perf_counter()
    chain = PolicyChain.in_process(Policy())
    print(f"contract   deploy (in process) {time.perf_counter() - t:8.2f} s  (EVM start, deploy, 1 symbol)")
    t = time.perf_counter()
    for _ in range(20):
        chain.validate(1, "SOL/USDT:USDT", Decimal("1"), Decimal("150"), Decimal("2"), Decimal("150"))
    print(f"contract   validate call       {(time.perf_counter() - t) / 20 * 1000:8.1f} ms")
    t = time.perf_counter()
    for i in range(1, 11):
        chain.record_fill(f"{i:064x}", i, f"{i:064x}")
    print(f"contract   record_fill tx      {(time.perf_counter() - t) / 10 * 1000:8.1f} ms")


def bench_login() -> None:
    from pwdlib import PasswordHash

    ph = PasswordHash.recommended()
    h = ph.hash("a long enough password")
    t = time.perf_counter()
    for _ in range(3):
        ph.verify("a long enough password", h)
    print(f"login      argon2id verify     {(time.perf_counter() - t) / 3 * 1000:8.0f} ms  (m=64 MiB, t=3, p=4)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500, help="deposits per database")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_wallet("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", args.n)
    pg = os.environ.get("PERPBOT_TEST_POSTGRES_URL")
    if pg:
        url, drop = _pg_schema(pg)
        try:
            bench_wallet("postgresql", url, args.n)
        finally:
            drop()
    bench_contract()
    bench_login()


if __name__ == "__main__":
    main()
