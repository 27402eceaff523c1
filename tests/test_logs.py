"""Logging (perpbot.logs): size-rotated JSON files, tracebacks without local variables, and secrets
(registered values, secret-named query parameters even when percent-encoded) redacted from every line."""

from __future__ import annotations

import json
import logging

import pytest

from perpbot.logs import configure_logging, get_logger, redact, register_secret

SECRET = "s3cr3t-" + "k" * 40  # a value that must never reach a log line


@pytest.fixture
def logs_to(tmp_path):
    """Configure logging into tmp_path/logs as every command does; console-only again afterwards."""
    yield tmp_path / "logs"
    configure_logging(None)


def _lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# ---------------------------------------------------------------------------------- rotation
def test_log_files_rotate_at_the_configured_size_and_count(logs_to):
    path = configure_logging(logs_to, "info", max_bytes=4000, backup_count=3)
    log = get_logger("perpbot.test")
    for i in range(400):  # ~100 bytes a line: ~40,000 bytes, ten times what 4 files of 4,000 bytes hold
        log.info("cycle", seq=i, note="x" * 20)
    files = sorted(p.name for p in logs_to.iterdir())
    assert files == ["perpbot.jsonl", "perpbot.jsonl.1", "perpbot.jsonl.2", "perpbot.jsonl.3"]
    sizes = [(logs_to / f).stat().st_size for f in files]
    assert max(sizes) <= 4000 and min(sizes[1:]) > 4000 - 200, sizes  # rotated files full (a line < 200 bytes)
    kept = [line["seq"] for f in reversed(files) for line in _lines(logs_to / f)]  # oldest file first
    assert kept == list(range(400 - len(kept), 400))  # contiguous, newest last: only the oldest were dropped
    assert _lines(path)[-1]["seq"] == 399 and len(kept) < 400


def test_rotation_settings_reach_the_log_file(tmp_path, logs_to):
    from perpbot.cli.common import settings_for

    s = settings_for(None, output_dir=tmp_path, log_max_bytes=10_000, log_backup_count=2)
    assert (s.log_max_bytes, s.log_backup_count) == (10_000, 2)
    log = get_logger("perpbot.test")
    for i in range(600):
        log.info("cycle", seq=i, note="y" * 20)
    files = sorted(p.name for p in logs_to.iterdir())
    assert files == ["perpbot.jsonl", "perpbot.jsonl.1", "perpbot.jsonl.2"]
    assert all((logs_to / f).stat().st_size <= 10_000 for f in files)
    defaults = settings_for(None, output_dir=tmp_path)
    assert (defaults.log_max_bytes, defaults.log_backup_count) == (10_000_000, 5)


def test_invalid_rotation_settings_are_refused(tmp_path):
    from perpbot.config import ConfigError, load_settings

    for bad in ({"log_max_bytes": 0}, {"log_max_bytes": 999}, {"log_backup_count": 0}):
        with pytest.raises(ConfigError):
            load_settings(None, output_dir=tmp_path, **bad)
    with pytest.raises(ValueError, match="max_bytes >= 1 and backup_count >= 1"):
        configure_logging(tmp_path, max_bytes=1000, backup_count=0)


# ---------------------------------------------------------------------------------- tracebacks
def _fails_with_a_secret_local():
    credentials = {"authorization": f"Bearer {SECRET}"}  # noqa: F841  (a local a pretty traceback would print)
    raise RuntimeError("ledger unreachable")


def test_tracebacks_never_print_local_variables(logs_to, capfd):
    path = configure_logging(logs_to, "info")
    try:
        _fails_with_a_secret_local()
    except RuntimeError as exc:
        get_logger("perpbot.test").error("cycle_failed", error=str(exc), exc_info=exc)
    try:
        _fails_with_a_secret_local()
    except RuntimeError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")  # a foreign record
    err = capfd.readouterr().err
    text = path.read_text(encoding="utf-8")
    for out in (err, text):
        assert SECRET not in out
        assert out.count("RuntimeError: ledger unreachable") == 2 and "_fails_with_a_secret_local" in out
    assert "raise RuntimeError" in err  # the plain traceback: file, line and source line
    assert all("exception" in line for line in _lines(path))
    from perpbot.cli.main import app

    assert app.pretty_exceptions_show_locals is False  # an uncaught CLI error prints no locals either


# ---------------------------------------------------------------------------------- redaction
@pytest.mark.parametrize("name", ["token", "%74oken", "%74%6F%6B%65%6E", "TOKEN", "to%6Ben", "api%5Fkey", "%2574oken",
                                  "telegram_token", "password"])
def test_secret_query_parameters_are_redacted_after_url_decoding(name):
    value = "v4lue-" + "q" * 30
    for text in (f"GET /api/v1/status?{name}={value} HTTP/1.1", f"https://h/x?a=1&{name}={value}&b=2",
                 json.dumps({"event": f"GET /ws?{name}={value}"})):
        out = redact(text)
        assert value not in out and f"{name}=***" in out, out
    assert redact(f"GET /x?limit=5&tokens_used=3&{name}={value}").startswith("GET /x?limit=5&tokens_used=***")
    assert redact("GET /api/v1/trades?limit=5&run_id=2") == "GET /api/v1/trades?limit=5&run_id=2"
    line = json.dumps({"error": f'bad url "https://h/x?{name}={value}" (retrying)'})
    assert value not in redact(line) and json.loads(redact(line))  # a JSON line stays valid JSON


def test_every_log_line_redacts_registered_secrets_and_secret_parameters(logs_to, capfd):
    path = configure_logging(logs_to, "info", console_level="info")
    register_secret(SECRET)
    other = "not-registered-" + "z" * 30
    get_logger("perpbot.live").info("request", url=f"https://api.example/v2?%74oken={other}", note=f"key {SECRET}")
    logging.getLogger("some.library").warning("GET /x?api%%5Fkey=%s and %s", other, SECRET)
    get_logger("perpbot.test").info("settings", config={"nested": {"smtp_password": other}, "symbol": "SOL"})
    err = capfd.readouterr().err
    text = path.read_text(encoding="utf-8")
    for out in (err, text):
        assert other not in out and SECRET not in out
        assert "%74oken=***" in out and "api%5Fkey=***" in out and "key ***" in out
    assert _lines(path)[-1]["config"] == {"nested": {"smtp_password": "***"}, "symbol": "SOL"}


def test_library_use_before_configure_logging_prints_no_locals():
    """perpbot imported as a library (no command ran configure_logging): structlog's default would
    render the exception with rich, every frame's locals included."""
    import subprocess
    import sys

    code = ("from perpbot.logs import get_logger\n"
            "def fail():\n"
            f"    credentials = {SECRET!r}\n"
            "    raise RuntimeError('ledger unreachable')\n"
            "try:\n"
            "    fail()\n"
            "except RuntimeError:\n"
            "    get_logger('perpbot.lib').exception('failed')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "RuntimeError: ledger unreachable" in out and "in fail" in out
    assert SECRET not in out
