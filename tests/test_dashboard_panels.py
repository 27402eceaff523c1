"""The dashboard's panels in headless Chromium (same setup as tests/test_dashboard.py): strategy
indicator lines, daily profit bars and drawdown ticks, the log view, live risk figures of a running
paper run with its mode and stopped state, and the backtest form. Expected numbers come from the
ledger, the candles file and TA-Lib / pandas, independently of the API and the page. Screenshots:
test-artifacts/dashboard-live.png (a running bot) and dashboard-backtest.png (a report opened by the form).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _dashboard_helpers import (ARTIFACTS, LOAD_TIMEOUT_MS, N_CANDLES, TOKEN, _day_key, _traces,  # noqa: F401
                                backtest, browser, dash, server)


def test_indicator_overlays_daily_profit_and_drawdown_ticks(dash, backtest, sol5m):
    """EMA 20/50 (the ema-cross rule) over the candles, one profit bar per UTC day, readable drawdown ticks."""
    import talib

    page, _ = dash
    s, ledger, run_id = backtest
    upto = sol5m[sol5m["timestamp"] <= ledger.get_run(run_id)["data_range_end"]]
    tr = _traces(page, "candles-chart")
    assert {"ind-ema-20", "ind-ema-50"} <= set(tr)
    for period in (20, 50):  # TA-Lib over the whole file up to the run's end (the page's lines start 500 bars later)
        want = talib.EMA(upto["close"].to_numpy(), timeperiod=period)[-N_CANDLES:]
        line = tr[f"ind-ema-{period}"]
        assert line["x"] == tr["candles"]["x"] and line["y"] == pytest.approx(want.tolist(), rel=1e-9)

    eq = ledger.equity(run_id)
    close = eq.groupby(_day_key(eq.index)).last()
    pnl = close - close.shift(1).fillna(s.starting_capital)
    bars = _traces(page, "daily-chart")["daily"]
    assert bars["x"] == [d.strftime("%Y-%m-%d") for d in close.index] and len(bars["x"]) >= 60
    assert bars["y"] == pytest.approx(pnl.tolist(), abs=1e-9)
    assert sum(bars["y"]) == pytest.approx(float(eq.iloc[-1]) - s.starting_capital, abs=1e-6)

    labels = page.eval_on_selector_all("#drawdown-chart .ytick text", "ts => ts.map(t => t.textContent)")
    assert len(labels) >= 3 and len(set(labels)) == len(labels), labels  # never "0 %, 0 %, -1 %"
    for lowest, dtick, decimals in ((-0.004, 0.001, 1), (-0.0025, 0.001, 1), (-0.0006, 0.0002, 2), (-0.12, 0.05, 0),
                                    (-0.6, 0.2, 0)):
        got = page.evaluate(f"window.PB.ddTicks({lowest})")
        assert got["dtick"] == pytest.approx(dtick) and got["decimals"] == decimals, (lowest, got)

def test_log_view_tails_the_log_file_without_secrets(dash, backtest):
    page, _ = dash
    s = backtest[0]
    log = Path(s.output_dir) / "logs" / "perpbot.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"timestamp": f"2025-01-01T00:{i // 60:02d}:{i % 60:02d}Z", "level": "info", "event": "cycle", "bar": i}
            for i in range(300)]
    rows[-2] = {"timestamp": "2025-01-01T00:04:58Z", "level": "warning", "event": "api_request",
                "url": f"/api/v1/status?token={TOKEN}", "api_key": "bitget-key-123456"}
    log.write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json at all\n")
    assert page.text_content("#log-label") == "· no log file yet (logs/perpbot.jsonl in the output directory)"
    page.select_option("#log-lines", "50")
    page.wait_for_function("document.querySelectorAll('#log-view li').length === 50", timeout=5000)
    items = page.eval_on_selector_all("#log-view li", "ls => ls.map(l => l.textContent)")
    assert items[-1] == "not json at all" and items[0].startswith("2025-01-01 00:04:11 INFO cycle bar=251")
    assert items[-3] == "2025-01-01 00:04:58 WARNING api_request url=/api/v1/status?token=*** api_key=***"
    assert TOKEN not in page.content() and "bitget-key-123456" not in page.content()
    assert "last 50 lines (older lines not shown)" in page.text_content("#log-label")

def test_live_risk_mode_and_stopped_state_of_a_running_bot(dash, backtest, server, browser, sol5m):
    """A paper run in progress (equity in the ledger up to a point, the latest in the bot's status):
    the risk card shows its figures now, /config says paper, the header says live, the buttons work;
    once the run stops the header says stopped and the buttons are disabled."""
    s, ledger, bt_run = backtest
    base, ctx, _ = server
    ctl = ctx.control
    eq = ledger.equity(bt_run).iloc[-700:-100]  # 50 hours of real equity, recorded as the paper run's so far
    rid = ledger.start_run("paper", "ema-cross", s.symbol, s.timeframe, config={"starting_capital": 1000.0},
                           data_range=(eq.index[0] - pd.Timedelta(minutes=5), eq.index[-1]))
    ledger.record_equity(rid, eq)
    halt_time = eq.index[-30]
    ledger.record_risk_events(rid, pd.DataFrame({"time": [halt_time], "bar": [19_900], "event": ["daily_loss_halt"],
                                                 "value": [-0.051]}))
    last_candle = eq.index[-1]  # the bot's latest cycle: the candle opening at the last recorded close
    close = float(sol5m.loc[sol5m["timestamp"] == last_candle, "close"].iloc[0])
    pos = {"side": 1, "qty": 2.5, "entry_price": 140.0, "stop_loss": 138.0, "take_profit": 144.0,
           "liquidation_price": 95.0, "margin": 116.7, "entry_bar": 19_990}
    before = ctl.status()
    ctl.update_status(run_id=rid, mode="paper", running=True, equity=987.65, position=pos,
                      last_candle_time=last_candle.isoformat())
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    try:
        page.goto(f"{base}/dashboard?token={TOKEN}")
        page.wait_for_selector("body[data-loaded='1'][data-ws='live']", timeout=LOAD_TIMEOUT_MS)
        # expected, by hand from the ledger rows: the live point is the close of the latest candle
        t_now = last_candle + pd.Timedelta(minutes=5)
        day = _day_key(pd.DatetimeIndex([t_now]))[0]
        start = float(eq[eq.index <= day].iloc[-1])
        peak = max(1000.0, float(eq.max()))
        daily = 987.65 - start
        risk = lambda k: page.text_content(f"#live-risk [data-risk={k}]")  # noqa: E731
        page.wait_for_function("document.querySelector('#live-risk [data-risk=daily_pnl]').textContent !== '—'",
                               timeout=5000)
        assert risk("daily_pnl") == f"{daily:+,.2f} USDT ({100 * daily / start:+.2f} %)"
        assert risk("drawdown") == f"{(987.65 / peak - 1) * 100:.2f} %"
        assert risk("peak_equity") == f"{peak:,.2f} USDT"
        assert risk("notional") == f"{2.5 * close:,.2f} USDT long"
        assert risk("leverage") == f"{2.5 * close / 987.65:.2f}× / {s.leverage:.0f}×"
        in_force = " (in force)" if halt_time.floor("D") >= day else ""
        assert risk("halts") == f"1 · last daily loss halt {halt_time.strftime('%Y-%m-%d %H:%M')}{in_force}"
        dd = (pd.concat([eq, pd.Series([987.65], index=[t_now])]) /
              pd.concat([eq, pd.Series([987.65], index=[t_now])]).cummax().clip(lower=1000.0) - 1).min()
        metric = lambda k: page.text_content(f"#metrics [data-metric={k}]")  # noqa: E731
        assert metric("max_drawdown") == f"{dd * 100:.2f} %"  # the run has no stored metrics yet
        assert metric("total_return") == f"{(987.65 / 1000 - 1) * 100:.2f} %" and metric("sharpe") == "—"
        assert "live" in page.text_content("#risk-label")
        # 1-day VaR / ES 99 % and the worst days replayed on the position, by hand: daily closes of the
        # candles up to the bot's latest (its day unfinished), np.quantile, PnL = 2.5 x mark x r
        seen = sol5m[sol5m["timestamp"] <= last_candle].set_index("timestamp")["close"]
        rets = seen.resample("1D").last().iloc[:-1].pct_change().dropna()
        pnl = 2.5 * close * rets.to_numpy()
        q = np.quantile(pnl, 0.01)
        assert risk("var99") == f"{-q:,.2f} USDT" and risk("es99") == f"{-pnl[pnl <= q].mean():,.2f} USDT"
        worst = rets.nsmallest(5)
        assert page.text_content("#stress-label") == f"({len(rets)} days {rets.index[0]:%Y-%m-%d} – {rets.index[-1]:%Y-%m-%d})"
        assert page.eval_on_selector_all("#stress-list li", "ls => ls.map(l => l.textContent)") == [
            f"{d:%Y-%m-%d} · {100 * r:+.2f} % · {2.5 * close * r:+,.2f} USDT" for d, r in worst.items()]
        assert (95.0 - close) / close < worst.min()  # liquidation at 95: no day of the data reaches it
        cfg = page.evaluate("fetch('/api/v1/config').then(r => r.json())")  # the dashboard cookie authorises it
        assert cfg["mode"] == "paper" and s.mode == "backtest"
        assert page.text_content("#ws-label") == "live" and page.text_content("#state [data-field=mode]") == "paper"
        assert not page.is_disabled("#btn-pause") and not page.is_disabled("#btn-force-exit")
        assert page.is_disabled("#btn-resume")  # not paused
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-live.png"), full_page=True)

        ctl.update_status(running=False)  # the replay ended: no event, the WebSocket pushes the status
        page.wait_for_function("document.querySelector('#ws-label').textContent === 'stopped'", timeout=5000)
        assert page.text_content("#state [data-field=run-state]") == "stopped"
        assert all(page.is_disabled(b) for b in ("#btn-pause", "#btn-resume", "#btn-force-exit"))
        assert page.get_attribute("#ws-dot", "class") == "dot dot-off"
    finally:
        page.context.close()
        ctl.update_status(**{k: before[k] for k in ("run_id", "mode", "running", "equity", "position",
                                                   "last_candle_time")})

def test_a_real_paper_replay_drives_the_risk_card_then_stops(dash, backtest, server, browser, sol5m, sol5m_path):
    """The paper bot (perpbot.app.paper.paper_job) replays 800 candles with the server's control; held at
    candle 500, the page shows its live risk from the ledger + status; when the replay ends the header
    says stopped, the buttons are disabled and the run's stored metrics appear."""
    import threading

    from perpbot.app.paper import paper_job
    from perpbot.config import load_settings
    from perpbot.data.market import load_market

    s, ledger, _ = backtest
    base, ctx, _ = server
    ctl = ctx.control
    rs = load_settings(None, output_dir=s.output_dir, funding=False, candles_file=sol5m_path, max_drawdown=60,
                       warmup_bars=60)
    market = load_market(sol5m_path, "5m").slice(15_000, 15_800)
    reached, release, out = threading.Event(), threading.Event(), {}

    def gate(done: int, _total: int) -> None:
        if done == 500:
            reached.set()
            assert release.wait(90)

    def replay() -> None:
        try:
            out["bot"], out["run_id"] = paper_job(rs, market, "ema-cross", ledger=ledger, control=ctl, progress=gate)
        except BaseException as exc:  # noqa: BLE001 (reported by the test thread)
            out["error"] = exc
            reached.set()

    before = ctl.status()
    ctl.update_status(mode="paper")
    thread = threading.Thread(target=replay, daemon=True)
    thread.start()
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    try:
        assert reached.wait(120) and "error" not in out, out.get("error")
        page.goto(f"{base}/dashboard?token={TOKEN}")
        page.wait_for_selector("body[data-loaded='1'][data-ws='live']", timeout=LOAD_TIMEOUT_MS)
        st = ctl.status()
        rid = int(st["run_id"])
        eq = ledger.equity(rid)  # rows flushed every 100 candles; the status has the latest equity
        t_now = pd.Timestamp(st["last_candle_time"]) + pd.Timedelta(minutes=5)
        series = pd.concat([eq[eq.index < t_now], pd.Series([st["equity"]], index=pd.DatetimeIndex([t_now]))])
        day = _day_key(pd.DatetimeIndex([t_now]))[0]
        start = float(series[series.index <= day].iloc[-1]) if (series.index <= day).any() else 1000.0
        daily, peak = st["equity"] - start, max(1000.0, float(series.max()))
        pos = st["position"]
        close = float(sol5m.loc[sol5m.timestamp == pd.Timestamp(st["last_candle_time"]), "close"].iloc[0])
        want = {"daily_pnl": f"{daily:+,.2f} USDT ({100 * daily / start:+.2f} %)",
                "drawdown": f"{(st['equity'] / peak - 1) * 100:.2f} %",
                "notional": "flat" if not pos else f"{pos['qty'] * close:,.2f} USDT {'long' if pos['side'] > 0 else 'short'}"}
        page.wait_for_function("document.querySelector('#risk-label').textContent.includes('live')", timeout=5000)
        got = {k: page.text_content(f"#live-risk [data-risk={k}]") for k in want}
        assert got == want and st["cycles"] == 500 and len(eq) >= 400
        assert page.text_content("#ws-label") == "live" and not page.is_disabled("#btn-force-exit")

        release.set()
        thread.join(120)
        assert "error" not in out, out.get("error")
        page.wait_for_function("document.querySelector('#ws-label').textContent === 'stopped'", timeout=5000)
        assert all(page.is_disabled(b) for b in ("#btn-pause", "#btn-resume", "#btn-force-exit"))
        run = ledger.get_run(rid)
        assert run["status"] == "finished" and run["kind"] == "paper"
        page.wait_for_function(f"document.querySelector('#metrics [data-metric=trade_count]').textContent === "
                               f"'{len(ledger.trades(rid))}'", timeout=15_000)  # the stored metrics, read after the stop
        assert page.text_content("#metrics [data-metric=sharpe]") == f"{run['metrics']['sharpe']:.2f}"
        final = ledger.equity(rid)
        want_dd = f"{(final.iloc[-1] / max(1000.0, final.max()) - 1) * 100:.2f} %"
        try:  # the card re-reads /risk about 1 s after the stop: wait for that read, then compare exactly
            page.wait_for_function(f"document.querySelector('#live-risk [data-risk=drawdown]').textContent === "
                                   f"'{want_dd}'", timeout=10_000)
        except Exception:  # noqa: BLE001 (the assertion below shows what the page says instead)
            pass
        assert page.text_content("#live-risk [data-risk=drawdown]") == want_dd
    finally:
        release.set()
        thread.join(120)
        page.context.close()
        ctl.update_status(**{k: before[k] for k in ("run_id", "mode", "running", "equity", "position", "last_signal",
                                                   "last_candle_time", "last_cycle_time", "cycles")})


def test_backtest_form_runs_a_job_and_opens_its_report(dash, backtest):
    page, _ = dash
    ledger = backtest[1]
    page.select_option("#bt-strategy", "donchian")
    page.fill("#bt-bars", "3000")
    with page.expect_request(lambda r: r.url.endswith("/api/v1/backtests") and r.method == "POST") as sent:
        page.click("#bt-submit")
    assert sent.value.post_data_json == {"strategy": "donchian", "last_bars": 3000}
    page.wait_for_selector("#bt-status[data-status=finished]", timeout=180_000)
    run = ledger.last_run(strategy="donchian")
    trades = ledger.trades(run["id"])
    m = run["metrics"]
    assert run["kind"] == "backtest" and (run["data_range_end"] - run["data_range_start"]) == pd.Timedelta(minutes=5 * 2999)
    assert page.text_content("#bt-status") == (
        f"donchian finished · run #{run['id']} · return {m['total_return'] * 100:.2f} % · max drawdown "
        f"{m['max_drawdown'] * 100:.2f} % · {len(trades)} trades · Sharpe {m['sharpe']:.2f}")
    src = page.get_attribute("#bt-report-frame", "src")
    assert re.fullmatch(r"/api/v1/backtests/[0-9a-f]{32}/report", src) and page.is_visible("#bt-report-frame")
    assert page.get_attribute("#bt-report-link", "href") == src and page.is_visible("#bt-report-link")
    frame = page.frame_locator("#bt-report-frame")
    frame.locator("h1#summary").wait_for(timeout=30_000)  # the report itself, loaded with the dashboard cookie
    assert "donchian" in frame.locator("body").text_content()


def test_no_console_errors_and_the_panels_screenshot(dash):
    page, errors = dash
    page.wait_for_timeout(300)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-backtest.png"), full_page=True)
    assert errors == [] and page.is_hidden("#error-banner")
