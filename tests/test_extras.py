"""The lean install: the core runs without any extra, and a missing extra is one line naming it.

Real subprocesses of the command line in which the extras' packages are made unimportable (a
``sys.meta_path`` finder raises ModuleNotFoundError for them, exactly what ``import`` raises in a
venv without them), so the test venv (which has everything) checks what a core-only venv meets.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from perpbot.extras import EXTRA_OF

ROOT = Path(__file__).resolve().parents[1]
#: Every package an extra installs (import names), blocked together: the core must not need them.
ALL_EXTRAS = sorted(EXTRA_OF)


def _blocker(modules) -> str:
    return ("import sys\n"
            "class _Block:\n"
            "    @staticmethod\n"
            "    def find_spec(name, path=None, target=None):\n"
            f"        if name.split('.')[0] in {sorted(modules)!r}:\n"
            "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
            "sys.meta_path.insert(0, _Block)\n")


def without(modules, args, cwd, env=None) -> subprocess.CompletedProcess:
    code = (_blocker(modules) +
            "from perpbot.cli.main import app\n"
            f"app(prog_name='perpbot', args={[str(a) for a in args]!r})\n")
    full = {k: v for k, v in os.environ.items() if not k.startswith("PERPBOT_") or k == "PERPBOT_DATA_DIR"}
    full.update({"COLUMNS": "200", **(env or {})})
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=full, capture_output=True, text=True,
                          timeout=300)


def _one_line(proc, code: int, needle: str) -> None:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == code, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines
    assert "Traceback" not in proc.stderr


def test_core_commands_import_without_any_extra(tmp_path):
    code = (_blocker(ALL_EXTRAS) +
            "import perpbot.cli.main, perpbot.app.jobs, perpbot.backtest.runner, perpbot.backtest.report_page\n"
            "import perpbot.bot.paper, perpbot.storage.ledger, perpbot.ml.registry\n"
            "print(perpbot.ml.registry.library_versions()['xgboost'])\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "not installed"
    proc = without(ALL_EXTRAS, ["list-models"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    xgb = next(ln for ln in proc.stdout.splitlines() if ln.split()[:1] == ["xgboost"])
    assert 'pip install "perpbot[xgboost]"' in xgb and xgb.split()[-1] == "no"


@pytest.mark.parametrize("blocked, args, env, needle", [
    (["fastapi", "uvicorn"], ["serve"], {"PERPBOT_API_TOKEN": "x" * 32},
     'uvicorn is not installed (needed for perpbot serve): pip install "perpbot[api]"'),
    (["ccxt"], ["download", "--since", "2025-06-01"], {}, 'ccxt is not installed: pip install "perpbot[exchange]"'),
])
def test_missing_extra_is_one_line_naming_it(tmp_path, blocked, args, env, needle):
    _one_line(without(blocked, args, tmp_path, env), 1, needle)


def test_xgboost_model_without_the_extra(tmp_path, sol5m, sol_funding_path, sol_mark8h_path):
    sol5m.iloc[:3000].to_parquet(tmp_path / "candles.parquet")
    (tmp_path / "perpbot.toml").write_text(
        f'candles_file = "{tmp_path / "candles.parquet"}"\nfunding_file = "{sol_funding_path}"\n'
        f'mark_file = "{sol_mark8h_path}"\noutput_dir = "out"\ntrain_days = 5\ntest_days = 2\n')
    proc = without(["xgboost"], ["train", "--model", "xgboost"], tmp_path)
    _one_line(proc, 1, 'xgboost is not installed (needed for the xgboost model): pip install "perpbot[xgboost]"')
    assert not (tmp_path / "out" / "models").exists()


def test_pyproject_core_is_lean_and_test_has_everything():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(meta["dependencies"]).lower()
    for heavy in ("xgboost", "psycopg", "fastapi", "uvicorn", "telegram", "torch", "ccxt", "playwright", "pytest"):
        assert heavy not in core, heavy
    extras = meta["optional-dependencies"]
    assert extras["xgboost"] == ["xgboost-cpu>=2.1"] and extras["deep"] == ["torch==2.13.0"]
    assert set(EXTRA_OF.values()) <= set(extras)
    assert "perpbot[all]" in extras["test"]
    assert all(f"perpbot[{e}]" in extras["test"] or e in extras["all"][0] for e in extras if e not in ("all", "test",
                                                                                                      "dev"))
    assert (ROOT / "LICENSE").read_text().startswith("MIT License") and meta["license"] == {"text": "MIT"}


def test_a_missing_core_package_is_an_internal_error_line_with_the_log(tmp_path, sol5m, sol_funding_path,
                                                                       sol_mark8h_path):
    # a core dependency is no extra: "anything else (a bug)" of the README's table, traceback in the log
    sol5m.iloc[:3000].to_parquet(tmp_path / "candles.parquet")
    (tmp_path / "perpbot.toml").write_text(
        f'candles_file = "{tmp_path / "candles.parquet"}"\nfunding_file = "{sol_funding_path}"\n'
        f'mark_file = "{sol_mark8h_path}"\noutput_dir = "out"\ntrain_days = 5\ntest_days = 2\n')
    proc = without(["lightgbm"], ["train", "--model", "lightgbm"], tmp_path)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr[-2000:]
    # the traceback goes to the log file only: stderr holds the one line (before: the traceback too)
    assert "Traceback" not in proc.stderr and "internal_error" not in proc.stderr, proc.stderr[-2000:]
    assert lines[0].startswith("error: internal error (ModuleNotFoundError: No module named 'lightgbm'): this is a "
                               "bug, please report it; the traceback is in out/logs/perpbot.jsonl"), lines
    assert "Traceback" in (tmp_path / "out" / "logs" / "perpbot.jsonl").read_text()
