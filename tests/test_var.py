"""Historical VaR / expected shortfall and the stress report (perpbot.risk.var) on the real SOLUSDT 5m
candles, against an independent computation: the raw Parquet file resampled to UTC days with
pandas, PnL = side x qty x mark x r, np.quantile (linear) and the Hyndman-Fan type-7 formula by hand;
and the figures in ``perpbot status`` (a live run with an open position in the ledger)."""

from __future__ import annotations

import re
import numpy as np
import pandas as pd
import pytest

from perpbot.risk.var import OpenPosition, daily_returns, position_from, risk_report, var_es
from perpbot.sim.accounting import liquidation_price

SYM = "SOL/USDT:USDT"
MARK = 105.45  # the last close of the file (2026-01-31 23:55)
QTY = 10.0


def hand_returns(raw: pd.DataFrame) -> pd.Series:
    """Close-to-close UTC daily returns of a gap-free file that ends on a complete day."""
    return raw.set_index("timestamp")["close"].resample("1D").last().pct_change().dropna()


def type7(x: np.ndarray, p: float) -> float:
    """The p-quantile by linear interpolation between order statistics (Hyndman & Fan type 7)."""
    s = np.sort(x)
    h = (len(s) - 1) * p
    lo = int(np.floor(h))
    return float(s[lo] + (h - lo) * (s[min(lo + 1, len(s) - 1)] - s[lo]))


@pytest.fixture(scope="module")
def rets(sol5m):
    return hand_returns(sol5m)


def test_daily_returns_are_the_resampled_closes(c5, rets):
    got = daily_returns(c5)
    assert len(got) == len(rets) == 299
    assert list(got.index) == list(rets.index) and got.to_numpy() == pytest.approx(rets.to_numpy(), rel=1e-12)
    assert got.loc["2025-10-10"] == pytest.approx(-0.1501358695652174, rel=1e-12)  # the worst day of the file
    # a partial last day is not a day yet; a missing day breaks the chain (no two-day "daily" return)
    assert daily_returns(c5.iloc[:-1]).index[-1] == pd.Timestamp("2026-01-30", tz="UTC")
    gap = c5[c5.timestamp.dt.floor("D") != pd.Timestamp("2025-10-10", tz="UTC")]
    g = daily_returns(gap)
    assert len(g) == 297 and not {"2025-10-10", "2025-10-11"} & {d.strftime("%Y-%m-%d") for d in g.index}


@pytest.mark.parametrize("side", [1, -1])
def test_var_es_and_worst_days_equal_a_hand_computation(c5, rets, side):
    liq = liquidation_price(side, QTY, MARK, QTY * MARK / 10, 0.01, 0.0006)  # 10x isolated
    rep = risk_report([OpenPosition(SYM, side, QTY, MARK, liq)], {SYM: daily_returns(c5)})
    pnl = side * QTY * MARK * rets.to_numpy()
    assert rep["n_days"] == 299 and (rep["first_day"], rep["last_day"]) == ("2025-04-08", "2026-01-31")
    assert rep["exposure"] == pytest.approx(QTY * MARK) and rep["horizon_days"] == 1
    for got, level in zip(rep["levels"], (0.95, 0.99)):
        q = np.quantile(pnl, 1 - level)
        assert q == pytest.approx(type7(pnl, 1 - level), rel=1e-12)
        assert got["level"] == level
        assert got["var"] == pytest.approx(-q, rel=1e-12) and got["es"] == pytest.approx(-pnl[pnl <= q].mean(), rel=1e-12)
        assert got["es"] >= got["var"] > 0  # losses are positive
    worst = (side * rets).nsmallest(5)  # the largest moves against the position
    assert [d["day"] for d in rep["stress"]] == [d.strftime("%Y-%m-%d") for d in worst.index]
    assert [d["legs"][0]["ret"] for d in rep["stress"]] == pytest.approx(list(rets[worst.index]), rel=1e-12)
    assert [d["pnl"] for d in rep["stress"]] == pytest.approx(list(side * QTY * MARK * rets[worst.index]), rel=1e-12)
    assert all(d["pnl"] < 0 for d in rep["stress"])
    move = (liq - MARK) / MARK
    assert [d["liquidated"] for d in rep["stress"]] == [bool(side * r <= side * move) for r in rets[worst.index]]


def test_long_and_short_see_opposite_tails(c5):
    r = {SYM: daily_returns(c5)}
    long = risk_report([OpenPosition(SYM, 1, QTY, MARK)], r)
    short = risk_report([OpenPosition(SYM, -1, QTY, MARK)], r)
    # the long fears the crash of 2025-10-10, the short the rally of 2025-04-09 (+13.0 %)
    assert long["stress"][0]["day"] == "2025-10-10" and long["stress"][0]["legs"][0]["ret"] < -0.15
    assert short["stress"][0]["day"] == "2025-04-09" and short["stress"][0]["legs"][0]["ret"] > 0.129
    assert short["stress"][0]["pnl"] == pytest.approx(-QTY * MARK * 0.12998, rel=1e-3)
    assert long["levels"][1]["var"] == pytest.approx(97.4421783867305, rel=1e-9)
    assert short["levels"][1]["var"] == pytest.approx(117.03231239774846, rel=1e-9)
    assert long["stress"][0]["liquidated"] is None  # no liquidation price, no verdict


def test_the_liquidation_flag_on_a_high_leverage_long_reaches_on_the_minus_15_percent_day(c5, rets):
    r = {SYM: daily_returns(c5)}
    flags = {}
    for lev in (5, 7, 10, 15):
        liq = liquidation_price(1, QTY, MARK, QTY * MARK / lev, 0.01, 0.0006)
        rep = risk_report([OpenPosition(SYM, 1, QTY, MARK, liq)], r)
        assert rep["stress"][0]["legs"][0]["liquidation_move"] == pytest.approx(liq / MARK - 1, rel=1e-12)
        flags[lev] = [d["liquidated"] for d in rep["stress"]]
    # liquidation 13.4 % below at 7x: only the -15.0 % day reaches it; 9.0 % below at 10x: -15.0, -11.6,
    # -10.3 and -9.2 % do, -8.9 % not; 5x (-19 %) never, 15x (-5.7 %) always
    assert flags == {5: [False] * 5, 7: [True, False, False, False, False], 10: [True, True, True, True, False],
                     15: [True] * 5}


def test_several_positions_are_aligned_on_common_days(c5, rets, data_dir):
    from perpbot.data.loader import load_candles

    btc_file = data_dir / "BTCUSDT-1h.parquet"
    b = hand_returns(pd.read_parquet(btc_file))
    both = pd.concat([rets, b], axis=1, join="inner")
    btc = "BTC/USDT:USDT"
    positions = [OpenPosition(SYM, 1, QTY, MARK), OpenPosition(btc, -1, 0.01, 78000.0)]
    rep = risk_report(positions, {SYM: daily_returns(c5), btc: daily_returns(load_candles(btc_file))})
    pnl = QTY * MARK * both.iloc[:, 0].to_numpy() - 0.01 * 78000.0 * both.iloc[:, 1].to_numpy()
    assert rep["n_days"] == len(both) == 299 and rep["exposure"] == pytest.approx(QTY * MARK + 780.0)
    q = np.quantile(pnl, 0.01)
    assert rep["levels"][1]["var"] == pytest.approx(-q, rel=1e-12)
    assert rep["levels"][1]["es"] == pytest.approx(-pnl[pnl <= q].mean(), rel=1e-12)
    first = rep["stress"][0]
    assert first["day"] == both.index[int(np.argmin(pnl))].strftime("%Y-%m-%d") and first["pnl"] == pytest.approx(pnl.min())
    assert [g["symbol"] for g in first["legs"]] == [SYM, btc]
    assert sum(g["pnl"] for g in first["legs"]) == pytest.approx(first["pnl"], rel=1e-12)
    # a hedged book: long and short the same size has no risk
    hedge = risk_report([OpenPosition(SYM, 1, QTY, MARK), OpenPosition(SYM, -1, QTY, MARK)], {SYM: daily_returns(c5)})
    assert [lv["var"] for lv in hedge["levels"]] == [0.0, 0.0]


def test_flat_account_and_bad_input(c5):
    flat = risk_report([], {})
    assert flat["levels"] == [{"level": 0.95, "var": 0.0, "es": 0.0}, {"level": 0.99, "var": 0.0, "es": 0.0}]
    assert flat["stress"] == [] and flat["n_days"] == 0 and flat["exposure"] == 0.0
    assert risk_report([OpenPosition(SYM, 1, 0.0, MARK)], {})["stress"] == []  # a zero quantity is flat too
    assert position_from(SYM, {"side": "flat", "qty": 0.0}, None) == []
    assert position_from(SYM, {"side": -1, "qty": -2.0, "liquidation_price": float("nan")}, 100.0) == [
        OpenPosition(SYM, -1, 2.0, 100.0, None)]
    month = c5[c5.timestamp < pd.Timestamp("2025-05-01", tz="UTC")]  # 24 daily returns
    with pytest.raises(ValueError, match="at least 30 daily returns, the data has 23"):
        risk_report([OpenPosition(SYM, 1, QTY, MARK)], {SYM: daily_returns(month)})
    with pytest.raises(ValueError, match="no daily returns for BTC"):
        risk_report([OpenPosition("BTC", 1, QTY, MARK)], {SYM: daily_returns(c5)})
    with pytest.raises(ValueError, match="side must be"):
        OpenPosition(SYM, 0, QTY, MARK)
    with pytest.raises(ValueError, match="mark price"):
        OpenPosition(SYM, 1, QTY, 0.0)
    with pytest.raises(ValueError, match="no mark price"):
        position_from(SYM, {"side": "long", "qty": 1.0}, None)
    with pytest.raises(ValueError, match="confidence level"):
        var_es(np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="tz-aware"):
        daily_returns(c5.assign(timestamp=c5.timestamp.dt.tz_localize(None)))
    with pytest.raises(ValueError, match="strictly increasing"):
        daily_returns(c5.iloc[::-1])


def test_status_shows_var_es_and_the_worst_days_of_the_open_position(tmp_path, sol5m_path, rets):
    from rich.console import Console

    from perpbot.cli.live import render_status, status_report
    from perpbot.config import load_settings
    from perpbot.storage.ledger import Ledger

    s = load_settings(None, output_dir=tmp_path, candles_file=sol5m_path)
    led = Ledger(s.ledger)
    rid = led.start_run("live", "ema-cross", s.symbol, "5m", note="DEMO")
    liq = liquidation_price(1, QTY, 104.0, QTY * 104.0 / 10, 0.01, 0.0006)  # 10x, entered at 104
    led.record_position(rid, time=pd.Timestamp("2026-02-01", tz="UTC"), side="long", qty=QTY, entry_price=104.0,
                        mark_price=MARK, liquidation_price=liq)
    rep = status_report(s, led, rid)
    risk = rep["risk"]
    assert risk["error"] is None and risk["mark"] == MARK
    pnl = QTY * MARK * rets.to_numpy()
    var = {lv["level"]: lv for lv in risk["report"]["levels"]}
    for level in (0.95, 0.99):
        q = np.quantile(pnl, 1 - level)
        assert var[level]["var"] == pytest.approx(-q, rel=1e-12)
        assert var[level]["es"] == pytest.approx(-pnl[pnl <= q].mean(), rel=1e-12)
    out = Console(record=True, width=250)
    out.print(render_status(rep))
    text = out.export_text()
    q95, q99 = np.quantile(pnl, 0.05), np.quantile(pnl, 0.01)
    assert f"95 % {-q95:,.2f} USDT, 99 % {-q99:,.2f} USDT" in text
    assert f"95 % {-pnl[pnl <= q95].mean():,.2f} USDT, 99 % {-pnl[pnl <= q99].mean():,.2f} USDT" in text
    assert "299 days 2025-04-08..2026-01-31" in text
    move = 100 * (liq / MARK - 1)
    assert f"2025-10-10  -15.01 %  -{QTY * MARK * 0.1501358695652174:,.2f} USDT  REACHED (at {move:+.2f} %)" in text
    worst5 = rets.nsmallest(5)
    assert re.search(rf"{worst5.index[4]:%Y-%m-%d}\s+{100 * worst5.iloc[4]:+.2f} %\s+{QTY * MARK * worst5.iloc[4]:+,.2f} "
                     rf"USDT\s+no \(at {move:+.2f} %\)", text)

    # flat: VaR 0; a short without a recorded mark is marked at the file's last close
    led.record_position(rid, time=pd.Timestamp("2026-02-01 00:05", tz="UTC"), side="flat", qty=0.0)
    assert status_report(s, led, rid)["risk"]["report"]["levels"][1]["var"] == 0.0
    led.record_position(rid, time=pd.Timestamp("2026-02-01 00:10", tz="UTC"), side="short", qty=2.0, entry_price=106.0)
    short = status_report(s, led, rid)["risk"]
    assert short["mark"] == MARK and short["report"]["stress"][0]["day"] == "2025-04-09"
    assert short["report"]["levels"][1]["var"] == pytest.approx(np.quantile(2.0 * MARK * rets.to_numpy(), 0.99), rel=1e-12)
    # data that cannot give a VaR: one line, the rest of the status still there
    s2 = load_settings(None, output_dir=tmp_path, candles_file=tmp_path / "missing.parquet")
    rep2 = status_report(s2, led, rid)
    assert rep2["risk"]["report"] is None and "missing.parquet" in rep2["risk"]["error"]
    out = Console(record=True, width=250)
    out.print(render_status(rep2))
    assert re.search(r"value at risk\s+│?\s*not available: .*missing\.parquet", out.export_text())
    led.close()
