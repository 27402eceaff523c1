"""Runs whose process died: marked ``abandoned`` at the next start, and resumed.

Before: kill -9 left a run ``running`` forever and a paper replay could only start over.
Now every run records its process (host, pid, start time); the next run started on the
ledger marks the ``running`` runs of dead processes ``abandoned`` (never one whose process is
alive, nor one of another host); ``perpbot run --mode paper --resume`` continues an abandoned
replay from its checkpoint and ends with exactly the trades, equity and metrics of the batch
backtest of the same candles (= an uninterrupted replay); ``perpbot run --mode live`` still
resumes its abandoned live run.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import threading
import time

import psutil
import pytest
import sqlalchemy as sa
from alembic import command

from perpbot.storage import Ledger, LedgerConflictError, to_jsonable
from perpbot.storage.db import alembic_config, make_engine
from _ledger_urls import db_url  # noqa: F401  (fixture: a fresh SQLite file / PostgreSQL schema)
from _paper_reference import assert_run_equals_backtest, env_for, reference

SYM = "SOL/USDT:USDT"


def _dead_pid() -> tuple[int, float]:
    """(pid, start time) of a process that has exited and been reaped."""
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.2)"])
    started = psutil.Process(p.pid).create_time()
    p.wait()
    return p.pid, started


def _set_owner(led: Ledger, run_id: int, **cols) -> None:
    runs = sa.table("runs", sa.column("id"), *(sa.column(k) for k in cols))
    with led.engine.begin() as conn:
        conn.execute(sa.update(runs).where(runs.c.id == run_id).values(**cols))


# ----------------------------------------------------------------------------- the abandon rule

def test_only_runs_of_provably_dead_processes_are_marked_abandoned(db_url):
    led = Ledger(db_url)
    me = psutil.Process()
    alive = led.start_run("paper", "ema-cross", SYM, "5m")  # this process: alive
    helper = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        other_alive = led.start_run("paper", "ema-cross", SYM, "5m")
        _set_owner(led, other_alive, owner_pid=helper.pid, owner_started=psutil.Process(helper.pid).create_time())
        dead = led.start_run("live", "ema-cross", SYM, "5m", note="DEMO")
        pid, started = _dead_pid()
        _set_owner(led, dead, owner_pid=pid, owner_started=started)
        reused = led.start_run("paper", "scoring", SYM, "5m")  # our pid, but another process's start time
        _set_owner(led, reused, owner_started=me.create_time() - 3600)
        remote = led.start_run("paper", "ema-cross", SYM, "5m")  # another host: not ours to judge
        _set_owner(led, remote, owner_host="another-host.example", owner_pid=pid)
        legacy = led.start_run("backtest", "ema-cross", SYM, "5m")  # written before owners were recorded
        _set_owner(led, legacy, owner_host=None, owner_pid=None, owner_started=None)
        done = led.start_run("paper", "ema-cross", SYM, "5m")
        _set_owner(led, done, owner_pid=pid, owner_started=started)
        led.finish_run(done)

        new = led.start_run("backtest", "buy-and-hold", SYM, "5m")  # the next start marks them
        status = led.runs().set_index("id")["status"]
        assert status.to_dict() == {alive: "running", other_alive: "running", dead: "abandoned",
                                    reused: "abandoned", remote: "running", legacy: "abandoned",
                                    done: "finished", new: "running"}
        dead_run = led.get_run(dead)
        assert f"pid {pid} on {dead_run['owner_host']}" in dead_run["status_detail"]
        assert dead_run["note"] == "DEMO"  # the note is left as it was
        assert "no owner recorded" in led.get_run(legacy)["status_detail"]
        assert led.mark_abandoned() == []  # idempotent

        helper.kill()
        helper.wait()
        assert led.mark_abandoned() == [other_alive]
        # resume: an abandoned run is claimed by this process; a live owner refuses the claim
        led.resume_run(dead)
        claimed = led.get_run(dead)
        assert (claimed["status"], claimed["owner_pid"]) == ("running", os.getpid())
        assert claimed["status_detail"].startswith("resumed at ")
        parent = psutil.Process(os.getppid())  # alive, on this host, not this process
        _set_owner(led, remote, owner_host=claimed["owner_host"], owner_pid=parent.pid,
                   owner_started=parent.create_time())
        with pytest.raises(LedgerConflictError, match=f"still running in pid {parent.pid}"):
            led.resume_run(remote)
        with pytest.raises(ValueError, match="is finished"):
            led.resume_run(done)
    finally:
        helper.kill()
        helper.wait()
        led.close()


def test_migration_0002_keeps_older_runs_and_marks_their_running_ones_abandoned(db_url):
    engine = make_engine(db_url)  # (creates the SQLite file's folder)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
        conn.execute(sa.text(
            "INSERT INTO runs (id, kind, strategy, exchange, symbol, timeframe, started_at, status) VALUES "
            "(1, 'paper', 'ema-cross', 'bitget', 'SOL/USDT:USDT', '5m', '2025-06-01 00:00:00.000000', 'running'), "
            "(2, 'backtest', 'scoring', 'bitget', 'SOL/USDT:USDT', '5m', '2025-06-01 00:00:00.000000', 'finished')"))
        conn.execute(sa.text("INSERT INTO equity (run_id, time, equity) VALUES (1, '2025-06-01 00:05:00.000000', 1000.5)"))
    led = Ledger(db_url)  # upgrades to 0002
    assert led.equity(1).tolist() == [1000.5] and led.get_run(2)["status"] == "finished"
    assert led.mark_abandoned() == [1]
    led.close()
    with engine.begin() as conn:  # and back: per-run rows survive (no table rebuild cascading deletes)
        command.downgrade(alembic_config(conn), "0001")
        assert conn.execute(sa.text("SELECT count(*) FROM equity")).scalar_one() == 1
        assert "checkpoint" not in {c["name"] for c in sa.inspect(conn).get_columns("runs")}
    engine.dispose()


# ----------------------------------------------------------------------------- paper resume

def test_an_interrupted_replay_is_left_abandoned_and_resumes_to_the_backtest_result(
        tmp_path, sol5m_path, sol_funding_path, sol_mark8h_path):
    """Stopped in the middle of a position that has already paid funding: the resumed run
    carries the position, its stops and the funding it paid, and ends equal to the backtest."""
    from perpbot.bot.paper import ReplayInterrupted
    from perpbot.app.paper import paper_job, resumable_paper_run
    from perpbot.sim import kernel as K

    s, market, bt = reference(tmp_path, sol5m_path, 800, funding_files=(sol_funding_path, sol_mark8h_path))
    first = bt.result.trades.iloc[0]
    paid = bt.result.funding[(bt.result.funding.bar > first.entry_bar) & (bt.result.funding.bar < first.exit_bar)]
    assert len(paid) >= 1, "the first trade must hold through a funding time for this test"
    stop = int(paid.bar.iloc[0]) + 3  # candles done when stopped: after that payment, before the exit
    assert stop - 1 < first.exit_bar
    led = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")

    def interrupt(done: int, total: int) -> None:
        if done == stop:
            raise ReplayInterrupted("operator stop")

    with pytest.raises(ReplayInterrupted):
        paper_job(s, market, "ema-cross", ledger=led, progress=interrupt, flush_every=50)
    (rid,) = led.runs()["id"]
    run = led.get_run(rid)
    assert run["status"] == "abandoned" and run["status_detail"] == "interrupted: ReplayInterrupted: operator stop"
    cp = run["checkpoint"]
    assert cp["bars"] == stop and len(led.equity(rid)) == stop  # the ledger is the run up to its checkpoint
    assert cp["state"][K.S_SIDE] == first.side and cp["state"][K.S_FUNDING] == pytest.approx(paid.amount.sum())
    assert len(led.trades(rid)) == 0 and len(led.funding(rid)) == len(paid)

    assert resumable_paper_run(led, s, "ema-cross") == rid
    assert resumable_paper_run(led, s, "scoring") is None
    bot, again = paper_job(s, market, "ema-cross", ledger=led, resume_run=rid, flush_every=50)
    assert again == rid and bot.resumed_at == stop and len(bot.decisions) == 800 - stop
    run = led.get_run(rid)
    assert run["status"] == "finished" and run["checkpoint"]["bars"] == 800
    assert_run_equals_backtest(led, rid, bt)
    assert led.trades(rid).funding.iloc[0] == first.funding  # funding paid before the stop, kept
    assert run["metrics"] == to_jsonable(bt.metrics)
    positions = led.positions(rid)
    assert positions["time"].is_unique and len(positions) >= 2 * len(bt.result.trades) - 1
    assert len(led.orders(rid)) == len(led.fills(rid)) == 2 * len(bt.result.trades)


def test_resume_refuses_other_candles_or_settings_in_one_line_and_changes_nothing(tmp_path, sol5m_path, monkeypatch):
    from typer.testing import CliRunner

    from perpbot.bot.paper import ReplayInterrupted
    from perpbot.app.paper import paper_job
    from perpbot.cli.main import app

    s, market, _ = reference(tmp_path, sol5m_path, 400)
    led = Ledger(f"sqlite:///{tmp_path / 'perpbot.db'}")

    def stop(done: int, total: int) -> None:
        if done == 150:
            raise ReplayInterrupted("stop")

    with pytest.raises(ReplayInterrupted):
        paper_job(s, market, "ema-cross", ledger=led, progress=stop)
    before = led.runs()
    for key in [k for k in os.environ if k.startswith("PERPBOT_")]:
        monkeypatch.delenv(key)
    env = env_for(tmp_path)
    base = ["run", "--mode", "paper", "--replay", str(sol5m_path), "--strategy", "ema-cross", "--resume"]
    cases = [(["--last", "500"], {}, "replayed the candles"),
             (["--last", "400"], {"PERPBOT_LEVERAGE": "7"}, "account / risk settings"),
             (["--last", "400"], {"PERPBOT_LIVE_WINDOW": "500"}, "live_window 1000 -> 500"),
             (["--last", "400", "--strategy", "scoring"], {}, "no abandoned paper run of scoring")]
    for args, extra, message in cases:
        r = CliRunner().invoke(app, base + args, env={**env, **extra})
        lines = r.stderr.strip().splitlines()
        assert r.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], \
            (args, r.stderr)
    after = led.runs()
    assert after[["id", "status", "owner_pid", "checkpoint"]].equals(before[["id", "status", "owner_pid", "checkpoint"]])
    led.close()


@pytest.mark.slow
def test_kill_9_mid_replay_is_marked_abandoned_at_the_next_start_and_resume_equals_the_backtest(tmp_path,
                                                                                                  sol5m_path):
    last = 1500
    cmd = [sys.executable, "-m", "perpbot", "run", "--mode", "paper", "--replay", str(sol5m_path), "--last",
           str(last), "--strategy", "ema-cross"]
    db = tmp_path / "perpbot.db"
    proc = subprocess.Popen(cmd, env=env_for(tmp_path), cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        bars = 0
        while bars < 300:  # a few checkpoints into the replay
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline
            time.sleep(0.2)
            if db.exists():
                with sqlite3.connect(db) as conn:
                    try:
                        row = conn.execute("SELECT json_extract(checkpoint, '$.bars') FROM runs").fetchone()
                    except sqlite3.OperationalError:  # not created yet
                        row = None
                bars = (row or [0])[0] or 0
    finally:
        proc.kill()  # SIGKILL: no handler runs, nothing is flushed
        proc.wait()
    assert proc.returncode == -9
    led = Ledger(f"sqlite:///{db}")
    (rid,) = led.runs()["id"]
    killed = led.get_run(rid)
    assert killed["status"] == "running" and killed["owner_pid"] == proc.pid  # what kill -9 leaves behind
    kept = killed["checkpoint"]["bars"]
    assert kept < last and len(led.equity(rid)) == kept  # the ledger is exactly the run up to its checkpoint

    other = led.start_run("backtest", "buy-and-hold", SYM, "5m")  # the next start
    marked = led.get_run(rid)
    assert marked["status"] == "abandoned" and f"pid {proc.pid} on " in marked["status_detail"]
    led.finish_run(other)

    r = subprocess.run(cmd + ["--resume"], env=env_for(tmp_path), cwd=tmp_path, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"paper run {rid}: resumed at candle {kept + 1}, " in r.stdout
    _, _, bt = reference(tmp_path, sol5m_path, last)
    run = led.get_run(rid)
    assert run["status"] == "finished" and run["checkpoint"]["bars"] == last
    assert_run_equals_backtest(led, rid, bt)
    assert run["metrics"] == to_jsonable(bt.metrics)
    led.close()


# ----------------------------------------------------------------------------- live resume

def test_run_live_resumes_its_abandoned_live_run(tmp_path, sol5m_path, sol_funding_path, sol_mark8h_path):
    """A live run whose process died and that a later start marked abandoned is still the run
    ``perpbot run --mode live`` resumes (crash recovery), now owned by the new process."""
    from rich.console import Console

    from perpbot.cli.live import run_live
    from perpbot.config import load_settings
    from perpbot.exchange.ccxt_adapter import make_exchange
    from perpbot.exchange.reconcile import account_identity
    from _sim_fixtures import quiet_loggers, running_sim, sim_data

    data = sim_data(sol5m_path, sol_funding_path, sol_mark8h_path, 1200)
    url = f"sqlite:///{tmp_path / 'live.db'}"
    led = Ledger(url)
    with quiet_loggers("ccxt", "aiohttp", "asyncio", "perpbot.live", "perpbot.bot"), running_sim(data, 1100) as sim:
        s = load_settings(None, api_key=sim.api_key, api_secret=sim.api_secret, api_passphrase=sim.passphrase,
                          leverage=5, output_dir=tmp_path, warmup_bars=0, live_window=1000, ledger_url=url)
        ex = make_exchange(s, config={"enableRateLimit": False})
        sim.point(ex)
        # a live run of this demo account (runs are tied to their trading mode and account)
        rid = led.start_run("live", "ema-cross", SYM, "5m", exchange="bitget", note="DEMO",
                            config={"live_account": account_identity(ex)})
        pid, started = _dead_pid()
        _set_owner(led, rid, owner_pid=pid, owner_started=started)
        assert led.mark_abandoned() == [rid]
        out = Console(record=True, width=200)
        handles: dict = {}

        def on_start(bot, feed):
            handles.update(feed=feed, loop=asyncio.get_running_loop())

        th = threading.Thread(target=lambda: handles.update(run_id=run_live(
            s, real_money=False, strategy="ema-cross", out=out, exchange=ex, on_start=on_start,
            feed_options=dict(clock=lambda: sim.market.now_ms, reconnect_base=0.05, poll_interval=0.05))))
        th.start()
        deadline = time.monotonic() + 30
        while "feed" not in handles:
            assert th.is_alive() and time.monotonic() < deadline
            time.sleep(0.02)
        handles["loop"].call_soon_threadsafe(handles["feed"].stop)
        th.join(30)
    assert not th.is_alive() and handles["run_id"] == rid
    assert f"ledger run {rid} (resumed after an unfinished run)" in out.export_text()
    run = led.get_run(rid)
    assert (run["status"], run["owner_pid"], run["note"]) == ("finished", os.getpid(), "DEMO")
    assert run["status_detail"].startswith("resumed at ")
    led.close()
