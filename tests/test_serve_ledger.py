"""`perpbot serve --replay` beside backtest jobs queued through the API, on one SQLite ledger.

Before: the replay thread died within seconds with "database is locked" when backtests were
queued while it ran; /status then said running: false, errors: 0, and the paper run stayed
``running`` in the ledger forever. Now the replay finishes equal to the batch backtest of its
candles, every job finishes, /status tells the truth, and no run is left ``running``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from perpbot.storage.ledger import Ledger
from _api_helpers import AUTH, TOKEN
from _paper_reference import assert_run_equals_backtest, env_for, reference

REPLAY = 1500
JOB_BARS = 20_000
JOBS = ["ema-cross", "scoring", "buy-and-hold", "ema-cross"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_replay_and_queued_backtests_all_finish_and_status_tells_the_truth(tmp_path, sol5m_path):
    port = _free_port()
    env = env_for(tmp_path, PERPBOT_API_TOKEN=TOKEN, PERPBOT_CANDLES_FILE=str(sol5m_path))
    proc = subprocess.Popen([sys.executable, "-m", "perpbot", "serve", "--port", str(port), "--replay", str(sol5m_path),
                             "--last", str(REPLAY), "--strategy", "ema-cross", "--speed", "0"],
                            env=env, cwd=tmp_path, stdout=(tmp_path / "out.txt").open("w"),
                            stderr=(tmp_path / "err.txt").open("w"))
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=AUTH, trust_env=False, timeout=30) as c:
            deadline = time.monotonic() + 90
            while True:
                assert proc.poll() is None, (tmp_path / "err.txt").read_text()[-3000:]
                try:
                    if c.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
            # all at once, while the replay writes
            posted = [c.post("/api/v1/backtests", json={"strategy": s, "last_bars": JOB_BARS}) for s in JOBS]
            assert [r.status_code for r in posted] == [202] * len(JOBS), [r.text for r in posted]
            ids = [r.json()["job_id"] for r in posted]
            deadline = time.monotonic() + 600
            while True:
                jobs = [c.get(f"/api/v1/backtests/{i}").json() for i in ids]
                st = c.get("/api/v1/status").json()
                if all(j["status"] in ("finished", "failed") for j in jobs) and not st["running"] \
                        and (st["cycles"] or st["errors"]):  # the replay ran and ended (or died)
                    break
                assert proc.poll() is None and time.monotonic() < deadline, (st, jobs)
                time.sleep(0.25)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert [j["status"] for j in jobs] == ["finished"] * len(JOBS), [j["error"] for j in jobs]
    assert st["errors"] == 0 and not st.get("last_error") and st["cycles"] == REPLAY, st

    led = Ledger(f"sqlite:///{tmp_path / 'perpbot.db'}")
    try:
        runs = led.runs().set_index("id")
        assert "running" not in set(runs["status"])
        paper = runs[runs["kind"] == "paper"]
        assert list(paper.index) == [st["run_id"]] and paper["status"].iloc[0] == "finished"
        _, _, bt = reference(tmp_path, sol5m_path, REPLAY)
        assert_run_equals_backtest(led, st["run_id"], bt)
        for job, strategy in zip(jobs, JOBS):
            rid = job["run_ids"][strategy]
            assert runs.loc[rid, "status"] == "finished" and runs.loc[rid, "kind"] == "backtest"
            assert len(led.equity(rid)) == JOB_BARS
            assert runs.loc[rid, "metrics"]["trade_count"] == len(led.trades(rid))
    finally:
        led.close()
    assert TOKEN not in (tmp_path / "out.txt").read_text() + (tmp_path / "err.txt").read_text()


def test_a_replay_that_cannot_open_its_ledger_is_counted_and_shown_in_status(tmp_path, sol5m_path):
    """A fatal replay error (here: the ledger's folder is a file) ends the replay thread only:
    /status shows running false, errors 1 and the reason; an error event is published."""
    from perpbot.bot.control import BotControl
    from perpbot.cli.serve import _replay
    from perpbot.config import load_settings
    from perpbot.data.market import load_market_for

    (tmp_path / "afile").write_text("not a folder")
    s = load_settings(None, output_dir=tmp_path, funding=False, warmup_bars=60,
                      ledger_url=f"sqlite:///{tmp_path / 'afile' / 'perpbot.db'}")
    market = load_market_for(s, sol5m_path).slice(86_000)
    control = BotControl(mode="paper", strategy="ema-cross")
    control.update_status(running=True)

    class Started:
        started = True

    thread = threading.Thread(target=_replay, args=(s, market, "ema-cross", None, control, Started(),
                                                    threading.Event(), 0.0))
    thread.start()
    thread.join(60)
    assert not thread.is_alive()
    st = control.status()
    assert st["running"] is False and st["errors"] == 1, st
    assert st["last_error"].startswith("replay failed: ") and "afile" in st["last_error"]
    assert [e.data["message"] for e in control.events.recent(kind="error")] == [st["last_error"]]


def test_a_backtest_job_refused_by_a_locked_ledger_fails_alone_and_the_next_job_runs(tmp_path, sol5m_path):
    """The ledger stays locked past the writer's retries during the first job: that job is
    ``failed`` with a one-line reason (no SQL), no run of it is left ``running``, and the worker
    runs the next job once the lock is gone."""
    import sqlite3

    from perpbot.api.jobs import BacktestJobs
    from perpbot.bot.context import BotContext
    from perpbot.bot.control import BotControl
    from perpbot.config import load_settings

    s = load_settings(None, output_dir=tmp_path, funding=False, warmup_bars=60, candles_file=sol5m_path)
    ctx = BotContext(s, BotControl())
    ctx._ledger = Ledger(s.ledger, busy_timeout_ms=50, retry_seconds=0.5)
    blocker = sqlite3.connect(tmp_path / "perpbot.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    jobs = BacktestJobs(ctx)
    try:
        first = jobs.submit("ema-cross", last_bars=2000)
        deadline = time.monotonic() + 120
        while jobs.get(first.job_id)["status"] in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        blocker.execute("COMMIT")
        second = jobs.submit("ema-cross", last_bars=2000)
        while jobs.get(second.job_id)["status"] in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        jobs.close(timeout=30)
        blocker.close()
    failed, done = jobs.get(first.job_id), jobs.get(second.job_id)
    assert failed["status"] == "failed" and failed["error"] == "OperationalError: database is locked"
    assert done["status"] == "finished" and done["error"] is None
    runs = ctx.ledger.runs()
    assert list(runs["status"]) == ["finished"] and list(runs["id"]) == [done["run_ids"]["ema-cross"]]
    assert len(ctx.ledger.equity(done["run_ids"]["ema-cross"])) == 2000
    ctx.ledger.close()
