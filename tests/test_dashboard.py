"""The live web dashboard in headless Chromium, served by the real API over a real backtest ledger.

Setup: an ema-cross backtest on 20,000 real SOL/USDT 5m candles fills a ledger; ``create_app``
serves it with uvicorn on 127.0.0.1 (free port) in a thread; Debian's /usr/bin/chromium is driven
by the ``playwright`` package (sync API, never ``playwright install``). Expected numbers come from
the ledger and the candles file, independently of the API and the page.

Skipped with a reason when /usr/bin/chromium is missing; PERPBOT_REQUIRE_BROWSER=1 turns that into
a failure. Screenshots go to ``test-artifacts/`` at the repo root (dashboard.png, dashboard-phone.png):
test artifacts for a human to look at, not committed.
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
def test_charts_tables_and_panels_match_the_ledger(dash, backtest, sol5m):
    page, _ = dash
    s, ledger, run_id = backtest
    run = ledger.get_run(run_id)
    assert "token" not in page.url and page.url.endswith(f"/dashboard?run_id={run_id}")

    # candlesticks: the last 1000 candles of the file up to the run's last candle
    want = sol5m[sol5m["timestamp"] <= run["data_range_end"]].tail(N_CANDLES)
    tr = _traces(page, "candles-chart")
    c = tr["candles"]
    assert c["type"] == "candlestick" and len(c["x"]) == N_CANDLES
    assert c["x"][0] == _plot_time(want["timestamp"].iloc[0]) and c["x"][-1] == _plot_time(want["timestamp"].iloc[-1])
    assert c["close"] == pytest.approx(want["close"].tolist())

    # trade markers: the run's trades inside that window (all among the last 200 the page loaded)
    trades = ledger.trades(run_id)
    t0, t1 = want["timestamp"].iloc[0], want["timestamp"].iloc[-1]
    entries = trades[(trades.entry_time >= t0) & (trades.entry_time <= t1)]
    exits = trades[(trades.exit_time >= t0) & (trades.exit_time <= t1)]
    assert len(entries) >= 3 and entries.trade_id.min() > trades.trade_id.max() - N_TRADES
    for uid, side in (("entry-long", 1), ("entry-short", -1)):
        e = entries[entries.side == side]
        assert tr[uid]["x"] == [_plot_time(t) for t in e.entry_time]
        assert tr[uid]["y"] == pytest.approx(e.entry_price.tolist())
    shown = {uid[5:]: len(t["x"]) for uid, t in tr.items() if uid.startswith("exit-")}
    assert shown == exits.exit_reason.value_counts().to_dict() and set(shown) <= set(EXIT_REASONS)
    assert tr["signal-buy"]["x"] == [] and tr["signal-sell"]["x"] == []  # ema-cross records no predictions

    # equity and drawdown curves: last point = the ledger's last equity; drawdown from the full series
    eq = ledger.equity(run_id)
    dd_full = eq / eq.cummax().clip(lower=s.starting_capital) - 1  # the starting capital is the first peak
    e, d = _traces(page, "equity-chart")["equity"], _traces(page, "drawdown-chart")["drawdown"]
    assert 1000 <= len(e["y"]) <= 2001 and e["x"] == d["x"]
    assert e["y"][-1] == pytest.approx(float(eq.iloc[-1]), abs=1e-9)
    at = pd.to_datetime(e["x"]).tz_localize("UTC")
    assert e["y"] == pytest.approx(eq.loc[at].tolist())
    assert d["y"] == pytest.approx(dd_full.loc[at].tolist(), abs=1e-12)
    assert _num(page.text_content("#equity-value")) == pytest.approx(round(float(eq.iloc[-1]), 2), abs=0.005)
    assert _num(page.text_content("#pnl-value").split("USDT")[0]) == pytest.approx(
        round(float(eq.iloc[-1]) - s.starting_capital, 2), abs=0.005)

    # risk metrics panel = runs.metrics, rounded for display
    m = run["metrics"]
    metric = lambda k: page.text_content(f"#metrics [data-metric={k}]")  # noqa: E731
    assert metric("max_drawdown") == f"{m['max_drawdown'] * 100:.2f} %"
    assert metric("win_rate") == f"{m['win_rate'] * 100:.2f} %"
    assert metric("exposure") == f"{m['exposure'] * 100:.2f} %"
    assert metric("sharpe") == f"{m['sharpe']:.2f}" and metric("profit_factor") == f"{m['profit_factor']:.2f}"
    assert metric("trade_count") == str(len(trades))

    # trades table: the 200 most recent trades, newest first
    ids = page.eval_on_selector_all("#trades-table tbody tr", "rows => rows.map(r => +r.dataset.tradeId)")
    assert ids == trades.trade_id.tail(N_TRADES).tolist()[::-1] and len(ids) == min(N_TRADES, len(trades))
    first = page.eval_on_selector_all("#trades-table tbody tr:first-child td", "tds => tds.map(t => t.textContent)")
    last = trades.iloc[-1]
    assert first[1] == ("LONG" if last.side > 0 else "SHORT") and first[7] == last.exit_reason
    assert _num(first[8]) == pytest.approx(round(last.pnl, 2), abs=0.005)

    # bot state and position panels
    state = page.text_content("#state")
    assert "ema-cross" in state and "backtest" in state and "SOL/USDT:USDT" in state and "stopped" in state
    assert page.text_content("#position").strip() == "flat"
    assert page.is_hidden("#error-banner")


def test_websocket_events_update_the_page_without_reload(dash, server, backtest, sol5m):
    page, _ = dash
    _, ctx, _ = server
    _, ledger, run_id = backtest
    page.evaluate("window.__no_reload = 42")
    n_eq = len(_traces(page, "equity-chart")["equity"]["y"])

    # an entry: the page re-reads the position (the bot's status) and draws its entry / SL / TP lines
    pos = {"side": -1, "qty": 5.4, "entry_price": 150.0, "stop_loss": 151.5, "take_profit": 147.0,
           "liquidation_price": 199.25, "margin": 270.0, "entry_bar": 19999}
    ctx.control.update_status(position=pos)
    ctx.control.events.publish("entry", side="short", qty=5.4, price=150.0, stop_loss=151.5, take_profit=147.0,
                               liquidation_price=199.25)
    page.wait_for_selector("#position [data-field=stop_loss]", timeout=5000)
    shown = {k: page.text_content(f"#position [data-field={k}]") for k in pos if k not in ("entry_bar", "margin")}
    assert shown == {"side": "SHORT", "qty": "5.400", "entry_price": "150.000", "stop_loss": "151.500",
                     "take_profit": "147.000", "liquidation_price": "199.250"}
    lines = page.evaluate("document.getElementById('candles-chart').layout.shapes.map(s => s.y0)")
    assert sorted(lines) == [147.0, 150.0, 151.5]
    assert "SHORT 5.400 @ 150.000" in page.text_content("#events li[data-kind=entry]")

    ctx.control.update_status(position=None)
    with page.expect_request(re.compile(r"/api/v1/trades\?")):  # an exit makes the page re-read the trades
        ctx.control.events.publish("exit", trade_id=9001, side="short", qty=5.4, entry_price=150.0,
                                   exit_price=148.5, reason="take_profit", pnl=7.25)
    item = page.wait_for_selector("#events li[data-kind=exit]", timeout=5000)
    assert "#9001" in item.text_content() and "take_profit" in item.text_content() and "+7.25" in item.text_content()
    page.wait_for_function("document.querySelector('#position').textContent.trim() === 'flat'", timeout=5000)
    assert page.evaluate("document.getElementById('candles-chart').layout.shapes.length") == 0

    last = ledger.get_run(run_id)["data_range_end"]
    row = sol5m[sol5m.timestamp == last].iloc[0]
    ctx.control.events.publish("cycle", bar=20000, candle_time=last.isoformat(), signal=1, p_down=0.1, p_flat=0.2,
                               p_up=0.7, equity=901.23, position=0.0)
    page.wait_for_function("document.querySelector('#equity-value').textContent === '901.23'", timeout=5000)
    assert page.text_content("#state [data-field=signal]") == "BUY"
    assert page.text_content("#state [data-field=proba]").startswith("0.10 / 0.20 / 0.70")
    assert page.text_content("#state [data-field=candle-time]") == last.strftime("%Y-%m-%d %H:%M UTC")
    assert page.get_attribute("#events li:first-child", "data-kind") == "cycle"
    eq = _traces(page, "equity-chart")["equity"]
    assert len(eq["y"]) == n_eq + 1 and eq["y"][-1] == 901.23
    assert eq["x"][-1] == _plot_time(last + pd.Timedelta(minutes=5))  # equity is marked at the candle close
    buy = _traces(page, "candles-chart")["signal-buy"]  # the live buy signal, just below the candle's low
    assert buy["x"] == [_plot_time(last)] and buy["y"] == pytest.approx([row.low * 0.997])
    assert page.evaluate("window.__no_reload") == 42


def test_buttons_pause_resume_and_force_exit(dash, server):
    page, _ = dash
    ctl = server[1].control
    assert ctl.paused is False
    page.click("#btn-pause")
    deadline = time.monotonic() + 5
    while not ctl.paused:
        assert time.monotonic() < deadline, "BotControl.paused did not become True after clicking pause"
        time.sleep(0.05)
    page.wait_for_selector("#events li[data-kind=paused]", timeout=5000)
    assert page.text_content("#state [data-field=run-state]") == "paused" and page.is_disabled("#btn-pause")

    page.click("#btn-resume")
    page.wait_for_selector("#events li[data-kind=resumed]", timeout=5000)
    assert ctl.paused is False and page.text_content("#state [data-field=run-state]") == "stopped"

    page.once("dialog", lambda d: d.dismiss())  # cancelled confirm: nothing is sent
    page.click("#btn-force-exit")
    page.wait_for_timeout(300)
    assert ctl.take_force_exit() is False
    page.once("dialog", lambda d: d.accept())
    page.click("#btn-force-exit")
    page.wait_for_selector("#events li[data-kind=force_exit]", timeout=5000)
    assert ctl.take_force_exit() is True


ATTACK_PAGE = """<!doctype html><title>another program on this host</title><script>
const api = new URL(location.href).searchParams.get("api");
window.result = {fetches: [], ws: "pending"};
for (const path of ["/api/v1/pause", "/api/v1/force-exit"]) {
  fetch(api + path, {method: "POST", credentials: "include", mode: "no-cors"})
    .then(() => window.result.fetches.push(path + ": sent"), e => window.result.fetches.push(path + ": " + e));
}
const ws = new WebSocket(api.replace("http", "ws") + "/api/v1/ws");
ws.onmessage = () => { window.result.ws = "message"; ws.close(); };
ws.onerror = () => { if (window.result.ws === "pending") window.result.ws = "refused"; };
</script>"""


def test_a_page_on_another_port_cannot_use_the_dashboard_cookie(dash, server):
    """SameSite=Strict ignores ports: a page of another program on 127.0.0.1 gets the cookie attached to
    its requests. The API refuses them by Origin: the bot stays unpaused, the WebSocket says nothing."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Attack(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the stdlib name)
            body = ATTACK_PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    base, ctx, _ = server
    ctl = ctx.control
    assert ctl.paused is False and ctl.take_force_exit() is False
    attacker = ThreadingHTTPServer(("127.0.0.1", 0), Attack)
    thread = threading.Thread(target=attacker.serve_forever, daemon=True)
    thread.start()
    page = dash[0].context.new_page()  # the browser that holds the dashboard cookie
    try:
        page.goto(f"http://127.0.0.1:{attacker.server_address[1]}/?api={base}")
        page.wait_for_function("window.result.fetches.length === 2 && window.result.ws !== 'pending'", timeout=10_000)
        result = page.evaluate("window.result")
        assert sorted(result["fetches"]) == ["/api/v1/force-exit: sent", "/api/v1/pause: sent"]  # the cookie went along
        assert result["ws"] == "refused"
        assert ctl.paused is False and ctl.take_force_exit() is False
    finally:
        page.close()
        attacker.shutdown()
        attacker.server_close()
        ctl.resume(by="test")


def test_screenshot_and_no_console_errors(dash):
    page, errors = dash
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(500)  # let the last redraws settle
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    assert errors == []
    assert page.is_hidden("#error-banner")


def test_reload_on_a_phone_uses_the_cookie_and_fits_the_screen(dash):
    """The token left the address bar, so a reload authenticates with the cookie alone."""
    page, _ = dash
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        page.reload()
        page.wait_for_selector("body[data-loaded='1'][data-ws='live']", timeout=LOAD_TIMEOUT_MS)
        assert page.is_hidden("#error-banner") and len(_traces(page, "candles-chart")["candles"]["x"]) == N_CANDLES
        page.wait_for_function("document.getElementById('candles-chart').getBoundingClientRect().width <= 390",
                               timeout=5000)
        page.wait_for_timeout(300)  # Plotly's responsive relayout
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width}px wide on a 390px phone screen"
        for chart in ("candles-chart", "equity-chart", "drawdown-chart"):
            box = page.locator(f"#{chart} .main-svg").first.bounding_box()
            assert 300 <= box["width"] <= 390, f"#{chart} is {box['width']}px wide on a phone"
        assert page.locator("#btn-force-exit").bounding_box()["y"] < 120  # controls stay at the top
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-phone.png"), full_page=True)
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})


def test_401_shows_the_error_banner_until_the_token_works_again(dash, server):
    page, _ = dash
    bus = server[1].control.events
    unauthorised = re.compile(r"/api/v1/metrics")
    page.route(unauthorised, lambda r: r.fulfill(
        status=401, content_type="application/json", body='{"detail": "invalid or missing API token"}'))
    bus.publish("exit", trade_id=9002, side="long", qty=5.0, entry_price=150.0, exit_price=149.0,
                reason="stop_loss", pnl=-5.3)  # the page re-reads trades, positions, balance and metrics
    page.wait_for_selector("#error-banner:not([hidden])", timeout=5000)
    text = page.text_content("#error-banner")
    assert "401" in text and "token" in text
    page.unroute(unauthorised)
    bus.publish("exit", trade_id=9003, side="long", qty=5.0, entry_price=150.0, exit_price=151.0,
                reason="take_profit", pnl=4.7)
    page.wait_for_selector("#error-banner[hidden]", state="attached", timeout=5000)


def test_lost_websocket_shows_banner_and_reconnects(dash, server):
    """Stops the server, checks the banner, then serves the same app on the same port again."""
    import uvicorn

    page, _ = dash
    base, _, srv = server
    srv.should_exit = True
    page.wait_for_selector("body[data-ws='down']", timeout=10000)
    text = page.text_content("#error-banner")
    assert page.is_visible("#error-banner") and "Live connection is lost" in text and "Reconnecting in" in text
    assert page.text_content("#ws-label") == "offline"

    port = int(base.rsplit(":", 1)[1])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    again = uvicorn.Server(uvicorn.Config(srv.config.app, log_level="warning", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=again.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        page.wait_for_selector("body[data-ws='live']", timeout=LOAD_TIMEOUT_MS)
        page.wait_for_selector("#error-banner[hidden]", state="attached", timeout=10000)
        server[1].control.events.publish("error", message="still listening after the reconnect")
        page.wait_for_selector("#events li[data-kind=error]", timeout=5000)
    finally:
        again.should_exit = True
        thread.join(10)
        sock.close()
