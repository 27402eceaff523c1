"""One live node per account and symbol (issue 10, "running for months").

A second ``perpbot run --mode live`` on the same exchange account and symbol stops with one
line before it sends anything: a file lock (``flock``) with a SQLite ledger, a PostgreSQL
advisory lock with a PostgreSQL ledger. Killing the holder (``kill -9``) frees the lock.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

import pytest
import typer

from perpbot.storage.instance_lock import InstanceLock, InstanceLockedError, lock_key
from _ledger_urls import db_url  # noqa: F401  (fixture: a fresh SQLite file / PostgreSQL schema)

SYM = "SOL/USDT:USDT"

HOLDER = """
import sys, time
from pathlib import Path
from perpbot.storage.instance_lock import InstanceLock
lock = InstanceLock(sys.argv[1], sys.argv[2], lock_dir=Path(sys.argv[3])).acquire()
print("held", flush=True)
time.sleep(120)
"""


def test_lock_key_names_venue_mode_account_digest_and_symbol():
    assert lock_key("bitget", {"trading_mode": "demo", "account": "0123456789abcdef"}, SYM) == \
        "bitget|demo|0123456789abcdef|SOL/USDT:USDT"


def test_a_second_holder_is_refused_until_the_first_process_is_killed(db_url, tmp_path):
    key = f"bitget|demo|{uuid.uuid4().hex[:16]}|{SYM}"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, db_url, key, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(InstanceLockedError) as err:
            InstanceLock(db_url, key, lock_dir=tmp_path).acquire()
        msg = str(err.value)
        assert key in msg and "another perpbot node already trades" in msg
        if db_url.startswith("sqlite"):
            assert f"PID {holder.pid}" in msg
        # another symbol of the same account is another lock
        InstanceLock(db_url, key.replace(SYM, "BTC/USDT:USDT"), lock_dir=tmp_path).acquire().release()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
    with InstanceLock(db_url, key, lock_dir=tmp_path):  # the dead process's lock is gone
        with pytest.raises(InstanceLockedError):  # and the lock excludes a second holder in one process too
            InstanceLock(db_url, key, lock_dir=tmp_path).acquire()
    InstanceLock(db_url, key, lock_dir=tmp_path).acquire().release()  # released on exit


def test_a_second_live_node_on_the_same_account_exits_with_one_line_and_sends_nothing(
        tmp_path, sol5m_path, sol_funding_path, sol_mark8h_path, capsys):
    from perpbot.cli.live import run_live
    from perpbot.config import load_settings
    from perpbot.exchange.ccxt_adapter import make_exchange
    from perpbot.exchange.reconcile import account_identity
    from perpbot.storage import Ledger
    from _sim_fixtures import quiet_loggers, running_sim, sim_data

    data = sim_data(sol5m_path, sol_funding_path, sol_mark8h_path, 1200)
    url = f"sqlite:///{tmp_path / 'live.db'}"
    with quiet_loggers("ccxt", "aiohttp", "asyncio", "perpbot.live"), running_sim(data, 1100) as sim:
        s = load_settings(None, api_key=sim.api_key, api_secret=sim.api_secret, api_passphrase=sim.passphrase,
                          leverage=5, output_dir=tmp_path, warmup_bars=0, live_window=1000, ledger_url=url)
        ex = make_exchange(s, config={"enableRateLimit": False})
        sim.point(ex)
        first = InstanceLock(url, lock_key(ex.id, account_identity(ex), SYM)).acquire()  # the running node
        try:
            with pytest.raises(typer.Exit) as stop:
                run_live(s, real_money=False, strategy="ema-cross", exchange=ex)
        finally:
            first.release()
        assert stop.value.exit_code == 1
        assert sim.requests == []  # not even the account set-up reached the venue
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "another perpbot node already trades bitget|demo|" in lines[0], err
    assert sim.api_key not in err  # the key never appears, only its digest
    assert len(Ledger(url).runs()) == 0  # no run was started
