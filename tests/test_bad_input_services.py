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
