"""Shared by the dashboard browser tests: the real app over a real backtest ledger, served by
uvicorn on 127.0.0.1, and the page opened in Debian's headless Chromium through ``playwright``
(module-scoped fixtures ``backtest``, ``server``, ``browser``, ``dash``; see tests/test_dashboard.py).
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from perpbot.bot.context import BotContext
from perpbot.bot.control import BotControl
from perpbot.bot.events import EventBus
from perpbot.app.jobs import backtest_job
from perpbot.config import load_settings
from perpbot.data.market import load_market
from perpbot.storage.ledger import Ledger

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
TOKEN = "dash-" + secrets.token_hex(16)
N_CANDLES = 1000  # the dashboard's default price-chart window
N_TRADES = 200  # trades the dashboard asks for (table rows and markers)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LOAD_TIMEOUT_MS = 30_000  # plotly.min.js (4.8 MB) + the first API reads, generous for a busy CI machine
EXIT_REASONS = ("take_profit", "stop_loss", "signal", "liquidation", "end_of_data", "trailing_stop", "manual")


def _need_browser() -> None:
    why = None
    if not CHROMIUM.exists():
        why = f"headless Chromium not found at {CHROMIUM} (apt install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            why = "the python package 'playwright' is not installed"
    if why:
        if os.environ.get("PERPBOT_REQUIRE_BROWSER") == "1":
            pytest.fail(why + "; PERPBOT_REQUIRE_BROWSER=1 makes this a failure")
        pytest.skip(why)


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def backtest(tmp_path_factory, sol5m_path):
    """(settings, ledger, ema-cross run id). max_drawdown=60 % keeps it trading to the last candle."""
    _need_browser()
    tmp = tmp_path_factory.mktemp("dashboard")
    s = load_settings(None, output_dir=tmp, funding=False, candles_file=sol5m_path, max_drawdown=60)
    market = load_market(sol5m_path, "5m").slice(0, 20000)
    ledger = Ledger(s.ledger)
    out = backtest_job(s, ["ema-cross", "buy-and-hold"], market=market, ledger=ledger)
    return s, ledger, out.run_ids["ema-cross"]


@pytest.fixture(scope="module")
def server(backtest):
    """The real app on 127.0.0.1:<free port> in a thread: yields (base_url, ctx, uvicorn.Server)."""
    import uvicorn

    from perpbot.api.app import create_app

    s, _, run_id = backtest
    control = BotControl(EventBus(), mode="backtest", strategy="ema-cross", symbol=s.symbol, timeframe=s.timeframe)
    control.update_status(run_id=run_id)  # the bot's own run = the ema-cross backtest
    ctx = BotContext(s, control)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(ctx, TOKEN), log_level="warning", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", ctx, srv
    srv.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture(scope="module")
def browser():
    _need_browser()
    from playwright.sync_api import sync_playwright

    # launch() gives every run a fresh temporary user-data-dir (playwright refuses --user-data-dir here)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def dash(browser, server, backtest):
    """The dashboard opened as /dashboard?token=...&run_id=...; yields (page, console error list)."""
    base, run_id = server[0], backtest[2]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.goto(f"{base}/dashboard?token={TOKEN}&run_id={run_id}")
    page.wait_for_selector("body[data-loaded='1'][data-ws='live']", timeout=LOAD_TIMEOUT_MS)
    yield page, errors
    context.close()


def _traces(page, chart: str) -> dict[str, dict]:
    """The Plotly graph div's traces by uid: {uid: {x, y, ...}} (read from the live page)."""
    data = page.evaluate(f"""() => document.getElementById({chart!r}).data.map(t => ({{
        uid: t.uid, type: t.type, x: Array.from(t.x || []), y: Array.from(t.y || []),
        open: Array.from(t.open || []), close: Array.from(t.close || []), low: Array.from(t.low || [])}}))""")
    return {t["uid"]: t for t in data}


def _num(text: str) -> float:
    return float(re.sub(r"[^0-9.+-]", "", text))


def _plot_time(ts: pd.Timestamp) -> str:
    return ts.tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S")


# ------------------------------------------------------------------------------ tests

def _day_key(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The UTC day an equity point closes (a point stamped 00:00 closes the day before)."""
    return (index - pd.Timedelta(1, "ns")).floor("D")


