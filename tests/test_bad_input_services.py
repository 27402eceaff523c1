"""An outside service that is down or refuses us is one ``error:`` line, never a traceback or an
"internal error ... this is a bug" (README, "Bad input"): real subprocesses of ``python -m perpbot``.

* ``signal-bot`` with the Telegram Bot API unreachable (a closed port), answering garbage (HTTP 502
  with an HTML page, as a proxy does), or refusing the token (HTTP 401): exit 1, one line naming the
  Bot API's address and what went wrong, the token nowhere in the output (before: ``internal error
  (NetworkError ...): this is a bug`` after two tracebacks on stderr).
"""

from __future__ import annotations

import socket

import pytest
from _cli_helpers import error_lines, perpbot
from fake_telegram import FakeTelegram

TOKEN = "424242:SignalBotToken-5ecret-9f3e"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is: nothing listens there


def _signal_bot(tmp_path, base_url: str):
    (tmp_path / "perpbot.toml").write_text('output_dir = "out"\n')
    env = {"PERPBOT_SIGNAL_BOT_TOKEN": TOKEN, "PERPBOT_TELEGRAM_CHAT_IDS": "42",
           "PERPBOT_TELEGRAM_BASE_URL": base_url, "PERPBOT_LEDGER_URL": f"sqlite:///{tmp_path / 'l.db'}"}
    return perpbot(["signal-bot"], tmp_path, env, timeout=120)


def _one_line(proc, *needles: str) -> str:
    lines = error_lines(proc)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-3000:])
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "internal error" not in lines[0]
    assert TOKEN not in proc.stdout + proc.stderr and "SignalBotToken" not in proc.stdout + proc.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def test_signal_bot_with_the_telegram_api_unreachable_is_one_line(tmp_path):
    port = _closed_port()
    _one_line(_signal_bot(tmp_path, f"http://127.0.0.1:{port}/bot"), "Telegram Bot API",
              f"http://127.0.0.1:{port}/bot", "cannot reach")


@pytest.mark.parametrize("status, needles", [
    (502, ["cannot reach", "Bad Gateway"]),
    (401, ["refused the bot token", "PERPBOT_SIGNAL_BOT_TOKEN"]),
])
def test_signal_bot_refused_or_answered_badly_by_telegram_is_one_line(tmp_path, status, needles):
    with FakeTelegram() as tg:
        tg.fail("getMe", status)
        line = _one_line(_signal_bot(tmp_path, tg.base_url), "Telegram Bot API", tg.base_url, *needles)
    assert len(line) < 400  # the server's page is not echoed


# ---- the operator's Telegram commands of a node (serve, run --mode live / paper): the same start-up ----
def _free_port() -> int:
    return _closed_port()


def _serve_env(tmp_path, base_url: str) -> dict:
    (tmp_path / "perpbot.toml").write_text('output_dir = "out"\n')
    return {"PERPBOT_TELEGRAM_TOKEN": TOKEN, "PERPBOT_TELEGRAM_CHAT_IDS": "42", "PERPBOT_TELEGRAM_BASE_URL": base_url,
            "PERPBOT_API_TOKEN": API_TOKEN, "PERPBOT_API_PORT": str(_free_port()),
            "PERPBOT_LEDGER_URL": f"sqlite:///{tmp_path / 'l.db'}"}


API_TOKEN = "operator-token-0123456789-abcdefghijklmnop"


def test_a_node_runs_on_without_the_telegram_commands_when_the_bot_api_is_down(tmp_path):
    """Before: ``perpbot serve`` / the live node stopped at start-up with ``internal error (NetworkError
    ...): this is a bug`` when the Telegram Bot API was unreachable. Now one warning line, and the node
    serves (a notification outage must not keep it from managing its positions)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import httpx

    port = _closed_port()
    env = _serve_env(tmp_path, f"http://127.0.0.1:{port}/bot")
    full = {k: v for k, v in os.environ.items() if not k.startswith("PERPBOT_") or k == "PERPBOT_DATA_DIR"}
    proc = subprocess.Popen([sys.executable, "-m", "perpbot", "serve"], cwd=tmp_path, env={**full, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, up = time.monotonic() + 90, False
        while time.monotonic() < deadline and proc.poll() is None and not up:
            try:
                up = httpx.get(f"http://127.0.0.1:{env['PERPBOT_API_PORT']}/health", timeout=2,
                               trust_env=False).status_code == 200
            except httpx.HTTPError:
                time.sleep(0.3)
        assert up, f"the node did not serve (exit {proc.poll()})"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    warnings = [ln for ln in err.splitlines() if ln.strip()]
    assert len(warnings) == 1 and warnings[0].startswith("warning: telegram commands: cannot reach the Telegram Bot "
                                                         f"API at http://127.0.0.1:{port}/bot"), err
    assert "running without the Telegram commands" in warnings[0] and "Traceback" not in err
    assert "telegram commands:" not in out  # (the line of a started command bot)
    assert TOKEN not in out + err and API_TOKEN not in out + err


def test_a_node_whose_telegram_token_is_refused_does_not_start(tmp_path):
    with FakeTelegram() as tg:
        tg.fail("getMe", 401)
        proc = perpbot(["serve"], tmp_path, _serve_env(tmp_path, tg.base_url), timeout=120)
    line = _one_line(proc, "telegram commands: the Telegram Bot API at", "refused the bot token (PERPBOT_TELEGRAM_TOKEN)")
    assert "perpbot API on" not in proc.stdout, line
