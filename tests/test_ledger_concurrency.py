"""Concurrent writers on one ledger: every writer finishes with every one of its rows.

Before: three paper runs at once (or a paper replay beside API backtest jobs) on one SQLite
ledger failed within seconds with "database is locked" although the timeout was 30 s: a
write transaction read first under a deferred BEGIN, and SQLite refuses at once, without
waiting, to upgrade a read lock that another writer made stale. Now writes start with BEGIN
IMMEDIATE, wait (busy_timeout), are retried with backoff, and the paper bot keeps any rows the
ledger refused until a later write takes them.

Expected rows are known exactly: each writer writes real SOLUSDT 5m closes as equity, and a
paper run's trades and equity equal the batch backtest of the same candles (the paper/backtest
parity of tests/test_paper_parity.py).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from perpbot.storage import Ledger
from _ledger_urls import db_url  # noqa: F401  (fixture: a fresh SQLite file / PostgreSQL schema)
from _paper_reference import assert_run_equals_backtest, env_for, reference

N_CYCLES = 60
TRADE_EVERY = 10


def _paper_like_writer(url: str, k: int, barrier: threading.Barrier, candles: pd.DataFrame) -> int:
    """One writer as a paper run writes: its own Ledger (migrating a fresh database), then per
    cycle a position snapshot, an equity row with a risk event, and every TRADE_EVERY cycles a
    closed trade with its orders and fills, each its own transaction."""
    led = Ledger(url)
    barrier.wait()
    rid = led.start_run("paper", f"writer-{k}", "SOL/USDT:USDT", "5m")
    bar = pd.Timedelta(minutes=5)
    for i in range(N_CYCLES):
        t, close = candles["timestamp"].iloc[i], float(candles["close"].iloc[i])
        led.record_position(rid, time=t + bar, side=1, qty=1.0 + k, entry_price=close, mark_price=close)
        led.record_run_bulk(rid, equity=pd.DataFrame({"time": [t + bar], "equity": [close * (k + 1)]}),
                            risk_events=pd.DataFrame({"time": [t], "bar": [i], "event": ["cooldown"], "value": [k]}))
        if i % TRADE_EVERY == TRADE_EVERY - 1:
            j = i - TRADE_EVERY + 1
            entry, exit_ = float(candles["open"].iloc[j]), float(candles["open"].iloc[i])
            led.record_trades(rid, pd.DataFrame([dict(
                trade_id=i // TRADE_EVERY + 1, side=1, qty=1.0 + k, entry_time=candles["timestamp"].iloc[j],
                entry_price=entry, exit_time=t, exit_price=exit_, exit_reason="signal", gross_pnl=exit_ - entry,
                fees=0.0, funding=0.0, pnl=exit_ - entry, entry_bar=j, exit_bar=i, leverage=5.0, margin=entry / 5,
                stop_loss=entry * 0.99, take_profit=entry * 1.02, liquidation_price=entry * 0.8)]))
    led.finish_run(rid, metrics={"cycles": N_CYCLES})
    led.close()
    return rid


def test_three_concurrent_writers_keep_every_row(db_url, sol5m):
    candles = sol5m.iloc[:N_CYCLES].reset_index(drop=True)
    barrier = threading.Barrier(3)
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(_paper_like_writer, db_url, k, barrier, candles) for k in range(3)]
        run_ids = [f.result(timeout=300) for f in futures]  # re-raises a writer's error
    led = Ledger(db_url)
    try:
        runs = led.runs().set_index("id")
        assert sorted(run_ids) == sorted(runs.index) and len(set(run_ids)) == 3
        closes = candles["close"].to_numpy()
        for k, rid in enumerate(run_ids):
            assert runs.loc[rid, "status"] == "finished" and runs.loc[rid, "metrics"] == {"cycles": N_CYCLES}
            eq = led.equity(rid)
            np.testing.assert_array_equal(eq.to_numpy(), closes * (k + 1))  # exactly what was written
            assert (eq.index == candles["timestamp"] + pd.Timedelta(minutes=5)).all()
            assert len(led.positions(rid)) == N_CYCLES and (led.positions(rid)["qty"] == 1.0 + k).all()
            assert (led.risk_events(rid)["value"] == k).sum() == N_CYCLES
            trades = led.trades(rid)
            assert list(trades["trade_id"]) == list(range(1, N_CYCLES // TRADE_EVERY + 1))
            assert len(led.orders(rid)) == len(led.fills(rid)) == 2 * N_CYCLES // TRADE_EVERY
    finally:
        led.close()


# ---------------------------------------------------------------------------------- paper runs

@pytest.mark.slow
def test_three_paper_runs_at_once_all_finish_with_all_their_rows(tmp_path, sol5m_path):
    last = 600
    cmd = [sys.executable, "-m", "perpbot", "run", "--mode", "paper", "--replay", str(sol5m_path), "--last",
           str(last), "--strategy", "ema-cross"]
    procs = [subprocess.Popen(cmd, env=env_for(tmp_path), cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
        assert "paper run" in out and "Traceback" not in err
    _, _, bt = reference(tmp_path, sol5m_path, last)
    led = Ledger(f"sqlite:///{tmp_path / 'perpbot.db'}")
    try:
        runs = led.runs()
        assert len(runs) == 3 and (runs["status"] == "finished").all()
        assert runs["owner_pid"].nunique() == 3  # three processes wrote
        for rid in runs["id"]:
            assert_run_equals_backtest(led, int(rid), bt)
            assert led.checkpoint(int(rid))["bars"] == last
    finally:
        led.close()


def test_a_locked_ledger_never_stops_the_paper_bot_and_loses_no_row(tmp_path, sol5m_path):
    """Another process holds the SQLite write lock for 300 of the 800 candles: the bot's writes
    fail (after the ledger's retries), are counted in the status, and every row reaches the
    ledger once the lock is gone; the run finishes equal to the backtest."""
    from perpbot.app.paper import paper_job
    from perpbot.bot.control import BotControl

    s, market, bt = reference(tmp_path, sol5m_path, 800)
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    led = Ledger(url, busy_timeout_ms=50, retry_seconds=0.3)
    blocker = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    control = BotControl(mode="paper", strategy="ema-cross")
    seen: dict = {}

    def progress(done: int, total: int) -> None:
        if done == 100:
            blocker.execute("BEGIN EXCLUSIVE")  # the write lock, held by another connection
        if done == 400:
            seen.update(control.status())
            blocker.execute("COMMIT")

    try:
        bot, rid = paper_job(s, market, "ema-cross", ledger=led, progress=progress, flush_every=50, control=control)
    finally:
        blocker.close()
    assert seen["errors"] >= 1 and seen["ledger_pending"] > 0
    assert "database is locked" in seen["last_error"] and "rows kept for the next write" in seen["last_error"]
    st = control.status()
    assert st["running"] is False and st["errors"] == seen["errors"] and st["ledger_pending"] == 0
    run = led.get_run(rid)
    assert run["status"] == "finished" and run["checkpoint"]["bars"] == 800 and run["checkpoint"]["closed"]
    assert_run_equals_backtest(led, rid, bt)
    assert run["metrics"]["trade_count"] == len(bt.result.trades)
    led.close()
