"""The files that run the node unattended (issue 10): the systemd unit passes
``systemd-analyze verify``, the env example names only real settings, compose and the
Dockerfile start the same command with the ledger on the PostgreSQL service."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from perpbot.config import Settings
from perpbot.config_sources import env_settings_names

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "deploy" / "perpbot.service"


def _unit() -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str
    cp.read(UNIT)
    return cp


def test_unit_restarts_on_failure_reads_secrets_from_an_environment_file_and_stops_with_sigterm():
    svc = _unit()["Service"]
    assert svc["Restart"] == "on-failure"
    assert svc["EnvironmentFile"] == "/etc/perpbot/perpbot.env"
    assert svc["KillSignal"] == "SIGTERM" and int(svc["TimeoutStopSec"]) >= 30
    assert svc["ExecStart"] == "/opt/perpbot/.venv/bin/perpbot run --mode live"
    assert "SECRET" not in UNIT.read_text().upper().replace("SECRETS LIVE", "")


def _installed(unit: Path, tmp_path: Path) -> Path:
    """``unit`` as shipped, with its paths pointed at this checkout's venv, a temp env file and temp folders."""
    perpbot = Path(sys.executable).with_name("perpbot")
    assert perpbot.exists()
    env = tmp_path / "perpbot.env"
    env.write_text("PERPBOT_LEVERAGE=5\n")
    for d in ("runs", "data"):
        (tmp_path / d).mkdir(exist_ok=True)
    text = (unit.read_text().replace("/opt/perpbot/.venv/bin/perpbot", str(perpbot))
            .replace("/etc/perpbot/perpbot.env", str(env)).replace("/opt/perpbot", str(tmp_path))
            .replace("User=perpbot", "User=root").replace("Group=perpbot", "Group=root"))
    out = tmp_path / unit.name
    out.write_text(text)
    return out


def _verify(*units: Path) -> None:
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", *map(str, units)], capture_output=True, text=True,
                       timeout=60)
    problems = [ln for ln in (r.stdout + r.stderr).splitlines() if any(u.name in ln for u in units)]
    assert r.returncode == 0 and not problems, r.stdout + r.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    _verify(_installed(UNIT, tmp_path))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_the_retraining_schedule(tmp_path):
    """The timer starts the one-shot service weekly; the service downloads fresh candles, then retrains and
    promotes the model into the running node (perpbot models retrain); both pass systemd-analyze verify."""
    svc, timer = ROOT / "deploy" / "perpbot-retrain.service", ROOT / "deploy" / "perpbot-retrain.timer"
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str
    cp.read(timer)
    assert cp["Timer"]["OnCalendar"] == "Sun *-*-* 02:00:00 UTC" and cp["Timer"]["Persistent"] == "true"
    lines = [ln for ln in svc.read_text().splitlines() if ln.startswith("ExecStart=")]
    assert lines == ["ExecStart=/opt/perpbot/.venv/bin/perpbot download",
                     "ExecStart=/opt/perpbot/.venv/bin/perpbot models retrain"]
    assert "Type=oneshot" in svc.read_text() and "EnvironmentFile=/etc/perpbot/perpbot.env" in svc.read_text()
    _verify(_installed(svc, tmp_path), _installed(timer, tmp_path))


def test_env_example_names_only_settings_or_known_perpbot_variables():
    names = {}
    for line in (ROOT / "deploy" / "perpbot.env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key = line.split("=", 1)[0]
            names[key] = "x"
    perpbot_vars = {k: v for k, v in names.items() if k.startswith("PERPBOT_")}
    assert env_settings_names(Settings.model_fields, perpbot_vars) == {"api_key", "api_secret", "api_passphrase", "telegram_token",
                                                     "telegram_chat_ids"}


def test_compose_runs_the_image_command_with_the_ledger_on_the_postgres_service():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    node, db = compose["services"]["node"], compose["services"]["db"]
    assert node["env_file"] == ".env" and node["restart"] == "on-failure"
    assert node["environment"]["PERPBOT_LEDGER_URL"].startswith("postgresql+psycopg://perpbot:")
    assert node["environment"]["PERPBOT_LEDGER_URL"].endswith("@db:5432/perpbot")
    assert node["depends_on"]["db"]["condition"] == "service_healthy" and "healthcheck" in db
    docker = (ROOT / "Dockerfile").read_text()
    assert 'CMD ["run", "--mode", "live"]' in docker and node["command"] == ["run", "--mode", "live"]
    assert "USER perpbot" in docker
