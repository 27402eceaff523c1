"""The real-money gate (issue 9, item 8), through real ``perpbot`` processes against the local
Bitget simulator: ``perpbot run --mode live --real-money`` refuses a model without an "edge
confirmed" verdict (exit 2, one line, no private request sent), starts with
``--accept-unproven-model`` (logged; shown in the banner, ``perpbot status`` and the daily
summary) and starts plainly with a confirmed verdict.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from _sim_fixtures import running_sim, sim_data

HERE = Path(__file__).resolve().parent
N_ROWS = 3000


@pytest.fixture(scope="module")
def world(tmp_path_factory, sol5m_path, sol_funding_path, sol_mark8h_path):
    """A tiny AI model trained by ``perpbot train`` on the simulator's first candles."""
    root = tmp_path_factory.mktemp("gate")
    candles = root / "sol5m.parquet"
    pd.read_parquet(sol5m_path).iloc[:N_ROWS].to_parquet(candles)
    env = {**os.environ, "PERPBOT_CANDLES_FILE": str(candles), "PERPBOT_OUTPUT_DIR": str(root),
           "PERPBOT_TRAIN_DAYS": "4", "PERPBOT_TEST_DAYS": "3", "PERPBOT_N_JOBS": "1",
           "PERPBOT_CONFIRM_REAL_MONEY": "yes", "PERPBOT_WARMUP_BARS": "0"}
    out = subprocess.run([sys.executable, "-m", "perpbot", "train"], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    model = root / "models" / "lightgbm.joblib"
    version = json.loads(Path(str(model) + ".json").read_text())["version"]
    return SimpleNamespace(root=root, env=env, model=model, version=version,
                           data=sim_data(sol5m_path, sol_funding_path, sol_mark8h_path, N_ROWS))


def _env(world, sim, ledger: Path) -> dict:
    return {**world.env, "PERPBOT_API_KEY": sim.api_key, "PERPBOT_API_SECRET": sim.api_secret,
            "PERPBOT_API_PASSPHRASE": sim.passphrase, "PERPBOT_LEDGER_URL": f"sqlite:///{ledger}",
            "SIM_BASE_URL": sim.base_url, "SIM_WS_PUBLIC": sim.ws_url_public, "SIM_WS_PRIVATE": sim.ws_url_private,
            "COLUMNS": "200"}


LIVE = [sys.executable, str(HERE / "_sim_cli.py"), "run", "--mode", "live", "--real-money", "--new-run"]


def _save(world, verdict: str):
    from perpbot.ml.honesty.saved import save_verdict
    from perpbot.ml.honesty.verdict import Verdict

    save_verdict(world.model, Verdict(verdict, ["set by the test"]), source="optimize", model_version=world.version)


def test_refused_without_or_with_a_failed_verdict(world, tmp_path):
    from perpbot.ml.honesty.saved import verdict_path

    verdict_path(world.model).unlink(missing_ok=True)
    with running_sim(world.data, start_bar=N_ROWS - 200) as sim:
        env = _env(world, sim, tmp_path / "ledger.db")
        res = subprocess.run(LIVE, env=env, capture_output=True, text=True, timeout=120)
        assert res.returncode == 2, res.stdout + res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: real money refused: no saved verdict for model "
                                                       + world.version)
        assert "--accept-unproven-model" in lines[0] and res.stdout == ""
        _save(world, "no edge shown")
        res = subprocess.run(LIVE, env=env, capture_output=True, text=True, timeout=120)
        assert res.returncode == 2, res.stdout + res.stderr
        assert res.stderr.strip() == (f"error: real money refused: model {world.version} verdict (optimize): no edge "
                                      f"shown; only an \"edge confirmed\" model trades real money (override: "
                                      f"--accept-unproven-model)")
        # a verdict saved for another model version does not count
        from perpbot.ml.honesty.saved import save_verdict
        from perpbot.ml.honesty.verdict import Verdict

        save_verdict(world.model, Verdict("edge confirmed", []), source="optimize", model_version="other-version")
        res = subprocess.run(LIVE, env=env, capture_output=True, text=True, timeout=120)
        assert res.returncode == 2 and "no saved verdict for model" in res.stderr
        assert sim.requests == []  # refused before any request reached the venue


def _start_and_stop(cmd, env, ready: str, timeout: float = 90.0) -> tuple[int, str]:
    """Start the live bot, wait for ``ready`` on stdout, send SIGTERM, return (exit code, output)."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < timeout:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            seen.append(line)
            if ready in line:
                time.sleep(1.0)
                proc.send_signal(signal.SIGTERM)
                break
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, "".join(seen) + (rest or "")


def test_accept_unproven_model_is_logged_and_shown(world, tmp_path):
    from perpbot.notify.messages import render_summary
    from perpbot.notify.summary import daily_summary
    from perpbot.storage.ledger import Ledger

    _save(world, "too few trades to judge")
    ledger = tmp_path / "ledger.db"
    with running_sim(world.data, start_bar=N_ROWS - 200) as sim:
        env = _env(world, sim, ledger)
        code, out = _start_and_stop(LIVE + ["--accept-unproven-model"], env, "reconciled:")
        assert code == 0, out
        assert "REAL MONEY" in out and "UNPROVEN MODEL ACCEPTED" in out and "too few trades to judge" in out
        assert any("/api/v2/mix/account" in r["path"] for r in sim.requests)  # it did reach the venue
    logs = (world.root / "logs" / "perpbot.jsonl").read_text().splitlines()
    assert any(json.loads(x).get("event") == "unproven_model_accepted" for x in logs if x.startswith("{"))
    led = Ledger(f"sqlite:///{ledger}")
    run = led.last_run(kind="live")
    assert run["note"] == "REAL MONEY (unproven model)"
    assert "too few trades to judge" in run["config"]["unproven_model_accepted"]
    status = subprocess.run([sys.executable, "-m", "perpbot", "status", "--no-exchange", "--real-money"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "UNPROVEN MODEL ACCEPTED" in status.stdout
    ctx = SimpleNamespace(ledger=led, control=SimpleNamespace(status=lambda: {"run_id": int(run["id"])}),
                          run_id=lambda rid=None: int(run["id"]))
    d = daily_summary(ctx, pd.Timestamp.now(tz="UTC"))
    assert "too few trades to judge" in d["unproven_model"]
    note = render_summary(d, SimpleNamespace(language="en", notify_language="en"), "en")
    assert "UNPROVEN MODEL ACCEPTED" in note.text


def test_confirmed_verdict_passes_the_gate(world, tmp_path):
    _save(world, "edge confirmed")
    with running_sim(world.data, start_bar=N_ROWS - 200) as sim:
        code, out = _start_and_stop(LIVE, _env(world, sim, tmp_path / "ledger.db"), "reconciled:")
    assert code == 0, out
    assert "REAL MONEY" in out and "UNPROVEN" not in out and "reconciled:" in out


def test_backtest_prints_and_saves_its_verdict_which_the_gate_reads(world, tmp_path):
    """``perpbot backtest`` shows the verdict and the seed-target table in the terminal and saves the
    verdict beside the model (source "backtest"); a plain backtest can never confirm an edge, so the
    gate then refuses with that verdict."""
    from perpbot.ml.honesty.saved import load_verdict, verdict_path

    verdict_path(world.model).unlink(missing_ok=True)
    env = {**world.env, "PERPBOT_LEDGER_URL": f"sqlite:///{tmp_path / 'bt.db'}", "COLUMNS": "200"}
    res = subprocess.run([sys.executable, "-m", "perpbot", "backtest"], env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Verdict: " in res.stdout and "Seed targets (ai)" in res.stdout and "directional accuracy > 65 %" in res.stdout
    saved = load_verdict(world.model)
    assert list(saved) == ["backtest"] and saved["backtest"]["model_version"] == world.version
    verdict = saved["backtest"]["verdict"]["verdict"]
    assert verdict in ("no edge shown", "too few trades to judge")
    assert "probability of backtest overfitting not available" in " ".join(saved["backtest"]["verdict"]["reasons"])
    assert f"Verdict: {verdict}" in res.stdout
    with running_sim(world.data, start_bar=N_ROWS - 200) as sim:
        res = subprocess.run(LIVE, env=_env(world, sim, tmp_path / "ledger.db"), capture_output=True, text=True,
                             timeout=120)
    assert res.returncode == 2 and f"verdict (backtest): {verdict}" in res.stderr
