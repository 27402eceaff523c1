"""The HTML report of a real backtest: every element checked against the backtest's own frames.

Setup: the first 30,000 real SOL/USDT 5m candles (2025-04-07 .. 2025-07-21) with funding; a
small LightGBM walk-forward model (15 trees, learning rate 0.3, 20-day first training window,
20-day test windows: 5 folds)
gives the AI's out-of-sample probabilities; the AI runs beside the three baselines with the
default risk settings (20 % max drawdown, 5 % daily loss limit), under which ema-cross and scoring
are halted. Expected numbers come from the frames and from independent pandas / sklearn
computations, never from the report code. The browser part opens the file in headless Chromium
(Debian's /usr/bin/chromium driven by playwright, as tests/test_dashboard.py) and saves
screenshots to ``test-artifacts/report-*.png``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perpbot.backtest.honesty import honesty_for_runs, label_barriers_for
from perpbot.ml.trading_metrics import drawdown_series
from perpbot.backtest.report_tables import monthly_returns
from perpbot.backtest.runner import run_strategies, write_report
from perpbot.config import load_settings
from perpbot.data.market import load_market
from perpbot.strategy.signals import BASELINES

N = 30_000
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
_DT = {"f4": "<f4", "f8": "<f8", "i1": "<i1", "u1": "<u1", "i2": "<i2", "u2": "<u2", "i4": "<i4", "u4": "<u4"}


def arr(v) -> np.ndarray:
    """A plotly data array from the page's JSON (typed array {"dtype", "bdata"} or list)."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=_DT[v["dtype"]])
    return np.asarray(v)


def figure(text: str, div_id: str) -> dict:
    """The data and layout that the page passes to Plotly.newPlot for ``div_id``."""
    start = text.index(f'Plotly.newPlot("{div_id}", ') + len(f'Plotly.newPlot("{div_id}", ')
    dec = json.JSONDecoder()
    data, end = dec.raw_decode(text, start)
    layout, _ = dec.raw_decode(text, end + 2)
    return {"data": data, "layout": layout}


def page_data(text: str) -> dict:
    """The page's data block (deflate-compressed JSON, base64), inflated with zlib."""
    m = re.search(r'<script type="application/octet-stream" id="perpbot-report-data" '
                  r'data-encoding="deflate\+base64">([A-Za-z0-9+/=]+)</script>', text)
    return json.loads(zlib.decompress(base64.b64decode(m.group(1))))


def section(text: str, name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return re.search(rf'<section class="strategy" id="strategy-{slug}">(.*?)</section>', text, re.S).group(1)


def _ms(t) -> int:
    return int(pd.Timestamp(t).value // 1_000_000)


@pytest.fixture(scope="module")
def bt(tmp_path_factory, sol5m_path, sol_funding_path, sol_mark8h_path):
    from perpbot.features.build import compute_features, feature_names, features_hash
    from perpbot.ml.labels import triple_barrier_labels
    from perpbot.ml.registry import make_bundle
    from perpbot.ml.train import walk_forward_train

    tmp = tmp_path_factory.mktemp("report")
    s = load_settings(None, output_dir=tmp, candles_file=sol5m_path, funding_file=sol_funding_path,
                      mark_file=sol_mark8h_path, decision="threshold")  # a bare walk-forward model: no EV tables
    market = load_market(sol5m_path, "5m", funding_file=sol_funding_path, mark_file=sol_mark8h_path).slice(0, N)
    c = market.candles
    X = compute_features(c, market.funding)
    tp, sl = label_barriers_for(s, c)
    y = triple_barrier_labels(c["high"].to_numpy(np.float64), c["low"].to_numpy(np.float64),
                              c["close"].to_numpy(np.float64), tp, sl, s.label_horizon)
    wf = walk_forward_train(X, y, c["timestamp"], model_name="lightgbm",
                            params={"n_estimators": 15, "learning_rate": 0.3}, train_size=20 * 288,
                            test_size=20 * 288, horizon=s.label_horizon, n_jobs=1)
    labels = {"barrier_mode": s.stop_mode, "horizon": s.label_horizon, "take_profit": tp, "stop_loss": sl}
    bundle = make_bundle(wf, label_settings=labels, features_hash=features_hash(feature_names(True)))
    proba = bundle.predict_proba(X, c["timestamp"])
    runs = run_strategies(s, market, ["ai", *BASELINES], proba=proba)
    honesty = honesty_for_runs(s, market, runs, reps=200)
    out = write_report(tmp / "report.html", s, market, runs, model=bundle, honesty=honesty,
                       notes=["a small LightGBM model (15 trees, 5 folds) for the test"])
    return s, market, runs, bundle, y, out


@pytest.fixture(scope="module")
def text(bt):
    return bt[-1].read_text(encoding="utf-8")


def test_title_source_verdict_and_seed_targets_on_top(bt, text):
    s, market, runs, *_ = bt
    assert "<h1 id=\"summary\">perpbot backtest — SOLUSDT 5m (Binance USDS-M data, Bitget rules)</h1>" in text
    assert (f'<p class="source">data: Binance USDS-M SOLUSDT 5m ({market.source}) · simulated venue rules: Bitget'
            "</p>") in text
    order = [text.index('<p class="verdict'), text.index("<h3>Seed targets (ai)</h3>"),
             text.index("<h2>Strategy metrics</h2>"), text.index("<h2>Statistics against overfitting</h2>"),
             text.index("<h2>Charts</h2>"), text.index("<h2>Strategies</h2>"), text.index("<h2>Trade zoom</h2>"),
             text.index("<h2>Model</h2>")]
    assert order == sorted(order)
    assert text.count("<h3>Seed targets (ai)</h3>") == 1  # at the top only, not repeated in the statistics
    # offline and small: one inline plotly.js bundle, no external resource of any kind
    assert re.search(r"<(script|link|img)[^>]*\b(src|href)\s*=", text, re.IGNORECASE) is None
    assert text.count("* plotly.js (finance - minified) v") == 1
    assert text.count("Plotly.newPlot(") == 7  # equity, drawdown, rolling Sharpe, price, calibration, importance, calls


def test_trade_lists_equal_the_trades_frames(bt, text):
    _, _, runs, *_ = bt
    data = page_data(text)
    assert list(data["trades"]) == list(runs)
    for name, run in runs.items():
        t, got = run.result.trades, data["trades"][name]
        assert len(got["id"]) == len(t) > 0, name
        assert got["id"] == t["trade_id"].tolist()
        assert got["side"] == t["side"].tolist()
        assert got["entry_ms"] == [_ms(v) for v in t["entry_time"]]
        assert got["exit_ms"] == [_ms(v) for v in t["exit_time"]]
        assert got["reason"] == t["exit_reason"].tolist()
        for key, dp in (("qty", 8), ("entry_price", 8), ("exit_price", 8), ("pnl", 6), ("fees", 6), ("funding", 6)):
            assert got[key] == [round(v, dp) for v in t[key]], (name, key)
        assert got["ret"] == [round(v, 6) for v in t["pnl"] / (t["qty"] * t["entry_price"])]
        assert f"Trade list ({len(t):,} trades)" in section(text, name)
    assert len(runs["ai"].result.trades) >= 10 and len(runs["ema-cross"].result.trades) >= 100


def _hand_monthly(equity: pd.Series, capital: float) -> dict[str, float]:
    """Month returns by hand: the last mark at or before 00:00 UTC of the next month's first day."""
    out, prev = {}, capital
    first = equity.index[0] - pd.Timedelta(1, "ns")
    for m in pd.period_range(first.strftime("%Y-%m"), equity.index[-1].strftime("%Y-%m"), freq="M"):
        end = (m + 1).start_time.tz_localize("UTC")
        v = float(equity[equity.index <= end].iloc[-1])
        out[str(m)] = v / prev - 1.0
        prev = v
    return out


def test_monthly_returns_equal_a_hand_computation(bt, text):
    s, _, runs, *_ = bt
    cap = float(s.starting_capital)
    for name, run in runs.items():
        hand = _hand_monthly(run.result.equity, cap)
        assert list(hand) == ["2025-04", "2025-05", "2025-06", "2025-07"]
        table = monthly_returns(run.result.equity, cap)
        for month, r in hand.items():
            assert table.loc[2025, pd.Period(month).strftime("%b")] == pytest.approx(r, abs=1e-12), (name, month)
        assert table.loc[2025, "year"] == pytest.approx(run.result.equity.iloc[-1] / cap - 1.0, abs=1e-12)
        cells = re.search(r'<table class="tbl heat">.*?<tr><td>2025</td>(.*?)</tr>', section(text, name), re.S).group(1)
        shown = re.findall(r"<td[^>]*>([^<]*)</td>", cells)
        assert shown[3:7] == [f"{hand[m] * 100:.1f}%" for m in hand], name  # Apr..Jul
        assert shown[:3] == ["", "", ""] and shown[7:12] == [""] * 5


def test_long_short_and_exit_reason_breakdowns_count_the_trades(bt, text):
    _, _, runs, *_ = bt
    for name, run in runs.items():
        t = run.result.trades
        sec = section(text, name)
        reasons = dict(re.findall(r"<tr><td>([a-z_]+)</td><td>([\d,]+)</td>", sec.split("<b>Exit reasons</b>")[1]))
        assert {k: int(v) for k, v in reasons.items()} == t["exit_reason"].value_counts().to_dict(), name
        sides = sec.split("<b>Long vs short</b>")[1].split("</table>")[0]
        counts = dict(re.findall(r"<tr><td>(long|short|all)</td><td>([\d,]+)</td>", sides))
        assert counts == {"long": str((t["side"] > 0).sum()), "short": str((t["side"] < 0).sum()), "all": str(len(t))}
        pnl = re.search(r"<tr><td>all</td><td>[\d,]+</td><td>[^<]*</td><td>([^<]*)</td>", sides).group(1)
        assert pnl == f"{t['pnl'].sum():,.2f}"


def test_halt_markers_sit_at_the_halt_events(bt, text):
    _, _, runs, *_ = bt
    eq, dd = figure(text, "equity"), figure(text, "drawdown")
    expected = {"ema-cross": [("2025-05-31 05:25", "max_drawdown_halt")],
                "scoring": [("2025-04-14 12:30", "daily_loss_halt"), ("2025-04-15 13:55", "daily_loss_halt"),
                            ("2025-04-16 02:40", "max_drawdown_halt")]}
    for name, run in runs.items():
        ev = run.result.risk_events
        halts = ev[ev["event"].isin(["max_drawdown_halt", "daily_loss_halt"])]
        assert [(f"{t:%Y-%m-%d %H:%M}", e) for t, e in zip(halts["time"], halts["event"])] == expected.get(name, [])
        for fig, values in ((eq, run.result.equity), (dd, drawdown_series(run.result.equity,
                                                                            initial_capital=1000.0) * 100)):
            traces = [t for t in fig["data"] if t["name"].startswith(f"halt: {name} (")]
            if not len(halts):
                assert traces == []
                continue
            assert len(traces) == 1 and traces[0]["name"] == f"halt: {name} ({len(halts)})"
            assert traces[0]["x"] == [f"{t:%Y-%m-%d %H:%M}" for t in halts["time"]]
            # the marker sits on the curve at the close of the bar that breached the limit
            np.testing.assert_allclose(arr(traces[0]["y"]), values.to_numpy()[halts["bar"].to_numpy()], rtol=1e-12)
    rows = re.findall(r"<tr><td>([a-z-]+)</td><td>([a-z_]+)</td><td>([\d: -]+)</td><td>(-?[\d.]+)%</td></tr>",
                      text.split('id="halts"')[1].split("</table>")[0])
    assert rows == [("ema-cross", "max_drawdown_halt", "2025-05-31 05:25", "-20.12"),
                    ("scoring", "daily_loss_halt", "2025-04-14 12:30", "-5.02"),
                    ("scoring", "daily_loss_halt", "2025-04-15 13:55", "-5.08"),
                    ("scoring", "max_drawdown_halt", "2025-04-16 02:40", "-20.10")]


def test_drawdown_panels_and_decimated_series_keep_the_extremes(bt, text):
    _, _, runs, *_ = bt
    dd = figure(text, "drawdown")
    lines = [t for t in dd["data"] if t.get("mode") == "lines"]
    assert [t["name"] for t in lines] == list(runs)
    assert [t.get("yaxis", "y") for t in lines] == ["y", "y2", "y3", "y4"]  # one panel (own scale) each
    for t, run in zip(lines, runs.values()):
        worst = drawdown_series(run.result.equity, initial_capital=1000.0).min() * 100
        assert float(arr(t["y"]).min()) == pytest.approx(worst, rel=1e-6)  # float32 of the exact trough
        assert t["dx"] == 7_200_000.0  # 104 days = 2,500 hours -> one point per 2 h (auto rule: <= 2,000 points)
    eq = figure(text, "equity")
    ai = eq["data"][0]
    assert ai["name"] == "ai" and float(arr(ai["y"])[-1]) == pytest.approx(runs["ai"].result.equity.iloc[-1], rel=1e-7)
    price = figure(text, "price")
    names = [t["name"] for t in price["data"]]
    t = runs["ai"].result.trades
    x = arr(price["data"][0]["x"])  # candle open times as epoch ms (a typed array: fewer bytes than dates)
    assert names[0] == "price (2h candles)" and len(x) == N // 24 and price["layout"]["xaxis"]["type"] == "date"
    assert (x[0], x[1] - x[0]) == (pd.Timestamp("2025-04-07", tz="UTC").value / 1e6, 7_200_000.0)
    assert price["layout"]["title"]["text"] == "SOLUSDT 5m (Binance USDS-M data): price and the trades of ai"
    assert sum(len(arr(p["y"])) for p in price["data"][1:]) == 2 * len(t)  # every entry and exit, undecimated
    longs = next(p for p in price["data"] if p["name"].startswith("long entry"))
    entries = t.loc[t["side"] > 0, "entry_time"]
    assert [pd.Timestamp(v) for v in longs["x"]] == [pd.Timestamp(v).tz_localize(None) for v in entries]
    sharpe = figure(text, "rolling-sharpe")
    assert [t["name"] for t in sharpe["data"]] == list(runs) and sharpe["data"][0]["dx"] == 86_400_000.0


def test_zoom_windows_hold_the_exact_candles_around_every_trade(bt, text):
    _, market, runs, *_ = bt
    z = page_data(text)["zoom"]
    c = market.candles
    assert z["covered"] == list(runs) and z["pad"] == 24 and z["max_span"] == 288
    ints = {k: np.asarray(z[k], dtype=np.int64) for k in ("d_open", "body", "upper", "lower")}
    times, rows, k = [], [], 0
    for start, count, first_open in z["segments"]:  # decode as report.js does
        close = None
        for j in range(count):
            o = first_open if j == 0 else close + ints["d_open"][k]
            close = o + ints["body"][k]
            rows.append((o, max(o, close) + ints["upper"][k], min(o, close) - ints["lower"][k], close))
            times.append(start + j * z["bar_ms"])
            k += 1
    got = pd.DataFrame(rows, columns=["open", "high", "low", "close"], index=times) / 10.0 ** z["scale"]
    ts = c["timestamp"].astype("datetime64[ms, UTC]").astype("int64").to_numpy()
    pos = np.searchsorted(ts, got.index.to_numpy())
    assert (ts[pos] == got.index.to_numpy()).all()
    # the price step: cents, or 1/1000 when a window holds one of the few real candles with a third
    # decimal (e.g. 2025-04-17 08:50: high 133.700, low 133.195)
    prices = c[["open", "high", "low", "close"]].to_numpy()[pos]
    cents = np.abs(prices * 100 - np.round(prices * 100)).max() < 1e-6
    assert z["scale"] == (2 if cents else 3)
    for col in ("open", "high", "low", "close"):
        np.testing.assert_allclose(got[col].to_numpy(), c[col].to_numpy()[pos], rtol=0, atol=1e-9)
    have = set(pos.tolist())
    for name, run in runs.items():
        for e, x in zip(run.result.trades["entry_bar"], run.result.trades["exit_bar"]):
            need = range(max(0, e - 24), min(N, x + 25)) if x - e <= 288 else \
                [*range(max(0, e - 24), e + 25), *range(x - 24, min(N, x + 25))]
            assert have.issuperset(need), (name, e, x)
    assert len(have) < N / 2  # windows, not the whole slice


def test_model_section_folds_calibration_importance_and_calls(bt, text):
    from sklearn.calibration import calibration_curve

    from perpbot.ml.metrics import model_metrics

    s, market, runs, bundle, y, _ = bt
    proba, ts = runs["ai"].proba, market.candles["timestamp"]
    folds = re.findall(r"<tr><td>(\d+|final)</td><td>([\d: -]+)</td><td>([\d: -]+|open)</td><td>([\d,]+)</td>"
                       r"<td>([\d.]+) / ([\d.]+)</td>", text.split('id="folds"')[1].split("</table>")[0])
    assert [f[0] for f in folds] == [str(i + 1) for i in range(len(bundle.folds))] and len(folds) == 5
    for f, fm in zip(folds, bundle.folds):
        mask = ((ts >= fm.test_start_time) & (ts < fm.test_end_time)).to_numpy()
        m = model_metrics(y[mask], proba[mask], s.confidence_threshold)
        assert f[1] == f"{fm.test_start_time:%Y-%m-%d %H:%M}" and int(f[3].replace(",", "")) == mask.sum()
        assert (f[4], f[5]) == (f"{m['accuracy']:.4f}", f"{m['accuracy_base']:.4f}")
    cal = figure(text, "calibration")["data"]
    up = next(t for t in cal if t["name"] == "p_up vs label up")
    ok = np.isfinite(y) & np.isfinite(proba).all(axis=1)
    observed, predicted = calibration_curve((y[ok] == 1).astype(int), proba[ok, 2], n_bins=10, strategy="quantile")
    np.testing.assert_allclose(arr(up["x"]), predicted, rtol=1e-12)
    np.testing.assert_allclose(arr(up["y"]), observed, rtol=1e-12)
    imp = figure(text, "importance")["data"][0]
    gains = []
    for fm in bundle.folds:
        g = fm.model.steps[-1][1].estimator_.booster_.feature_importance(importance_type="gain")
        gains.append(g / g.sum())
    mean = np.mean(gains, axis=0)
    top = np.argsort(-mean, kind="stable")[:20]
    assert imp["y"][::-1] == [bundle.feature_names[i] for i in top]
    np.testing.assert_allclose(arr(imp["x"])[::-1], mean[top] * 100, rtol=1e-9)
    calls = {t["name"]: arr(t["y"]) for t in figure(text, "calls")["data"]}
    sig = runs["ai"].signal
    assert calls["long calls (bars)"].sum() == (sig > 0).sum() and calls["short calls (bars)"].sum() == (sig < 0).sum()
    assert calls["positions opened"].sum() == len(runs["ai"].result.trades)
    assert "not available" not in text.split("<h2>Model</h2>")[1]


def test_model_parts_missing_say_not_available(bt, tmp_path):
    """Without the model (and no saved model to read), the fold table and feature importance say why they are missing."""
    s, market, runs, *_ = bt
    rep = honesty_for_runs(s, market, {"ema-cross": runs["ema-cross"]}, reps=100)
    only_rules = write_report(tmp_path / "rules.html", s, market, {"ema-cross": runs["ema-cross"]}, honesty=rep)
    body = only_rules.read_text(encoding="utf-8").split("<h2>Model</h2>")[1]
    assert "Model charts: not available — no strategy of this report is driven by a model" in body
    ai = write_report(tmp_path / "ai.html", s, market, {"ai": runs["ai"]}, honesty=rep).read_text(encoding="utf-8")
    body = ai.split("<h2>Model</h2>")[1]
    assert "Per-fold metrics: not available — no model was given to the report" in body
    assert "Feature importance: not available — no model was given to the report" in body
    assert 'id="calibration"' in body and 'id="calls"' in body


# ----------------------------------------------------------------------------------- browser
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


def test_report_renders_in_chromium_offline_with_every_section(bt):
    _need_browser()
    from playwright.sync_api import sync_playwright

    _, _, runs, _, _, out = bt
    ARTIFACTS.mkdir(exist_ok=True)
    errors, requests = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
        page.on("request", lambda r: requests.append(r.url) if not r.url.startswith("file:") else None)
        page.goto(out.as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        for div in ("equity", "drawdown", "rolling-sharpe", "price", "calibration", "importance", "calls",
                    "zoom-chart"):
            page.wait_for_selector(f"#{div} .main-svg", timeout=30_000)
        # every section is on the page and visible
        for sel in ("p.verdict", "#halts", "#folds table", "table.heat", ".tradelist table", "#zoom-controls"):
            assert page.locator(sel).first.is_visible(), sel
        for name, run in runs.items():
            rows = page.locator(f'.tradelist[data-strategy="{name}"] tbody tr').count()
            assert rows == len(run.result.trades), name
        # the drawn traces: halt markers on the equity chart, the zoom's 5m candles around the first AI trade
        traces = page.evaluate("""() => document.getElementById('equity').data.map(t => t.name)""")
        assert "halt: ema-cross (1)" in traces and "halt: scoring (3)" in traces
        zoom = page.evaluate("""() => { const d = document.getElementById('zoom-chart').data;
                                        return {type: d[0].type, n: d[0].x.length, names: d.map(t => t.name)}; }""")
        first = runs["ai"].result.trades.iloc[0]
        assert zoom["type"] == "candlestick" and zoom["n"] == first["exit_bar"] - first["entry_bar"] + 49
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        for div in ("summary", "charts", "strategies", "zoom", "model"):  # one screen from each section's top
            page.evaluate(f"document.getElementById('{div}').scrollIntoView({{block: 'start'}})")
            page.screenshot(path=str(ARTIFACTS / f"report-{div}.png"))

        # sort the ema-cross list by pnl (descending on the second click), then open the best trade's zoom
        t = runs["ema-cross"].result.trades
        head = page.locator('.tradelist[data-strategy="ema-cross"] th', has_text="pnl (USDT)")
        head.click()
        head.click()
        top = page.locator('.tradelist[data-strategy="ema-cross"] tbody tr').first
        assert top.locator("td").nth(9).inner_text() == f"{t['pnl'].max():.2f}"
        top.click()
        page.wait_for_function("() => (document.getElementById('zoom-chart').layout.title.text || '')"
                               ".startsWith('ema-cross')")
        best = t.loc[t["pnl"].idxmax()]
        title = page.evaluate("() => document.getElementById('zoom-chart').layout.title.text")
        assert title.startswith(f"ema-cross trade #{best['trade_id']}: ")
        assert page.input_value("#zoom-strategy") == "ema-cross"
        page.wait_for_timeout(600)  # the smooth scroll to the zoom panel
        page.screenshot(path=str(ARTIFACTS / "report-zoom-clicked.png"))
        # buy-and-hold's one trade lasts the whole slice: its entry and exit windows, the gap hidden
        page.select_option("#zoom-strategy", "buy-and-hold")
        page.wait_for_function("() => document.getElementById('zoom-chart').layout.title.text"
                               ".startsWith('buy-and-hold')")
        bh = runs["buy-and-hold"].result.trades.iloc[0]
        shown = page.evaluate("""() => { const c = document.getElementById('zoom-chart');
                                         return {n: c.data[0].x.length, breaks: c.layout.xaxis.rangebreaks.length}; }""")
        assert bh["exit_bar"] == N - 1 and shown == {"n": 49 + 25, "breaks": 1}  # exit window cut by the data end
        assert "not embedded" in page.inner_text("#zoom-info")
        browser.close()
    assert errors == [] and requests == []
