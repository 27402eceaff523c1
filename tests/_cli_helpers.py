"""Helpers of the command-line tests: run ``python -m perpbot`` as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def perpbot(args, cwd: Path, env: dict | None = None, timeout: int = 300,
            input: str | None = None) -> subprocess.CompletedProcess:
    """Run the CLI in ``cwd`` with the caller's environment minus every ``PERPBOT_*`` variable
    (but ``PERPBOT_DATA_DIR``), plus ``env``; ``input`` is written to its stdin."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PERPBOT_") or k == "PERPBOT_DATA_DIR"}
    full_env["COLUMNS"] = "200"
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "perpbot", *[str(a) for a in args]], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, input=input)


def error_lines(proc) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip()]


def written(folder: Path) -> list[str]:
    """Files under ``folder`` except the inputs a test put there (Parquet files, perpbot.toml)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.suffix != ".parquet"
                  and p.name != "perpbot.toml")
