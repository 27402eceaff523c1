"""Shared fixtures: the real market data in ../shared/data.

Tests that need the data are skipped with a clear reason when it is absent, and fail
instead when PERPBOT_REQUIRE_DATA=1 (as .ci/run sets it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

DATA_DIR = Path(os.environ.get("PERPBOT_DATA_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
USDM = DATA_DIR / "binance-usdm"


def _need(path: Path) -> Path:
    if not path.exists():
        msg = f"real market data not found at {path} (set PERPBOT_DATA_DIR or place ../shared/data beside the repo)"
        if os.environ.get("PERPBOT_REQUIRE_DATA") == "1":
            pytest.fail(msg + "; PERPBOT_REQUIRE_DATA=1 makes this a failure")
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return _need(USDM)


@pytest.fixture(scope="session")
def sol5m_path() -> Path:
    return _need(USDM / "SOLUSDT-5m.parquet")


@pytest.fixture(scope="session")
def sol5m(sol5m_path) -> pd.DataFrame:
    return pd.read_parquet(sol5m_path)


@pytest.fixture(scope="session")
def sol1m_path() -> Path:
    return _need(USDM / "SOLUSDT-1m.parquet")


@pytest.fixture(scope="session")
def sol_funding_path() -> Path:
    return _need(USDM / "SOLUSDT-funding.parquet")


@pytest.fixture(scope="session")
def sol_mark8h_path() -> Path:
    return _need(USDM / "SOLUSDT-8h-mark.parquet")


@pytest.fixture(scope="session")
def c5(sol5m_path) -> pd.DataFrame:
    """The real SOLUSDT 5m candles, loaded and validated by perpbot.data.load_candles."""
    from perpbot.data import load_candles

    return load_candles(sol5m_path)


@pytest.fixture(scope="session")
def funding(sol_funding_path) -> pd.DataFrame:
    """The real SOLUSDT funding-rate history (perpbot.data.load_funding)."""
    from perpbot.data import load_funding

    return load_funding(sol_funding_path)


@pytest.fixture(scope="session", autouse=True)
def _quiet_logs():
    """Route structlog through the project's configuration (console: warnings only)."""
    from perpbot.logs import configure_logging

    configure_logging(None)
