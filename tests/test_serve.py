"""`perpbot serve`: refused without a token; with --replay it streams the paper bot live over the API."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from perpbot.storage.ledger import Ledger
from _api_helpers import AUTH, TOKEN, next_event, recv_json, ws


# ---------------------------------------------------------------------------------------- serve


def _env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERPBOT_")}
    env.update(PERPBOT_OUTPUT_DIR=str(tmp_path), PERPBOT_FUNDING="false", **extra)
    return env


def test_serve_without_a_token_is_one_error_line_and_exit_2(tmp_path, monkeypatch):
    import typer
    from typer.testing import CliRunner

    from perpbot.cli.serve import serve

    tiny = typer.Typer()
    tiny.command()(serve)
    for key in [k for k in os.environ if k.startswith("PERPBOT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PERPBOT_OUTPUT_DIR", str(tmp_path))
    r = CliRunner().invoke(tiny, ["--port", "8123"])
    assert r.exit_code == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: PERPBOT_API_TOKEN is not set")
    assert not (tmp_path / "perpbot.db").exists()  # refused before touching the ledger


def test_perpbot_serve_command_without_a_token(tmp_path):
    r = subprocess.run([sys.executable, "-m", "perpbot", "serve"], env=_env(tmp_path), capture_output=True, text=True,
                       timeout=60, cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert "PERPBOT_API_TOKEN" in r.stderr


@pytest.mark.slow
def test_serve_with_replay_streams_the_paper_bot_live(tmp_path, sol5m_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = _env(tmp_path, PERPBOT_API_TOKEN=TOKEN, PERPBOT_CANDLES_FILE=str(sol5m_path), PERPBOT_WARMUP_BARS="60")
    proc = subprocess.Popen([sys.executable, "-m", "perpbot", "serve", "--port", str(port), "--replay", str(sol5m_path),
                             "--last", "300", "--strategy", "ema-cross", "--speed", "0"],
                            env=env, stdout=(tmp_path / "out.txt").open("w"), stderr=(tmp_path / "err.txt").open("w"))
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, headers=AUTH, trust_env=False) as c:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, (tmp_path / "err.txt").read_text()
                try:
                    if c.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
            with ws(base) as conn:
                assert recv_json(conn)["type"] == "hello"
                first = next_event(conn, "cycle", timeout=10)
                assert next_event(conn, "cycle")["seq"] > first["seq"]
                assert c.get("/api/v1/config").json()["mode"] == "paper"  # the bot's mode, not the settings' "backtest"
                assert c.post("/api/v1/pause").json()["status"]["paused"] is True
                assert next_event(conn, "paused")["data"] == {"by": "api"}
                c.post("/api/v1/resume")
            deadline = time.monotonic() + 60
            while (st := c.get("/api/v1/status").json())["running"] or st["cycles"] < 300:
                assert time.monotonic() < deadline and proc.poll() is None, st
                time.sleep(0.2)
            led = Ledger(f"sqlite:///{tmp_path / 'perpbot.db'}")
            run = led.get_run(st["run_id"])
            assert run["kind"] == "paper" and run["status"] == "finished" and run["strategy"] == "ema-cross"
            trades = c.get("/api/v1/trades", params={"limit": 1000}).json()["trades"]
            assert [t["pnl"] for t in trades] == pytest.approx(list(led.trades(run["id"]).pnl), abs=1e-9)
            assert len(trades) > 0 and c.get("/api/v1/metrics").json()["metrics"] == run["metrics"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        print((tmp_path / "out.txt").read_text(), (tmp_path / "err.txt").read_text())
    assert TOKEN not in (tmp_path / "out.txt").read_text() + (tmp_path / "err.txt").read_text()
    assert "plain HTTP" not in (tmp_path / "err.txt").read_text()  # 127.0.0.1: no exposure warning


def test_serve_starts_notifications_and_the_telegram_bot_when_configured(tmp_path):
    """With a Telegram token and chat ids, serve's operator channels send events and answer commands."""
    from fake_telegram import FakeTelegram

    from perpbot.bot.context import BotContext
    from perpbot.bot.control import BotControl
    from perpbot.cli.serve import start_operator_channels
    from perpbot.config import load_settings

    with FakeTelegram() as fake:
        s = load_settings(None, output_dir=tmp_path, telegram_token="123:abc", telegram_chat_ids=[42],
                          telegram_base_url=fake.base_url, telegram_cooldown=0)
        ctx = BotContext(s, BotControl())
        notifier, telegram = start_operator_channels(s, ctx)
        try:
            assert notifier is not None and telegram is not None
            ctx.control.events.publish("risk_halt", event="daily_loss_halt", value=-0.051)
            sent = fake.wait_sent(42, 1)
            assert "daily loss" in sent[0]["text"].lower()
            fake.send_text(42, "/pause")
            assert fake.wait_for(lambda f: ctx.control.paused, timeout=10)
        finally:
            telegram.stop()
            notifier.stop()
    none = load_settings(None, output_dir=tmp_path)
    assert start_operator_channels(none, BotContext(none, BotControl())) == (None, None)
