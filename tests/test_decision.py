"""The expected-value rule, Kelly sizing, the kernel's per-bar size scale and the nested margin,
with numbers worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from perpbot.ml import decision as D
from perpbot.ml import decision_fit as F

# ------------------------------------------------------------------ the worked example
# p = (p_down, p_flat, p_up) = (0.2, 0.5, 0.3); TP 2 %, SL 1 %; taker fee 0.06 % and slippage
# 0.02 % on both fills -> cost 2 * (0.0006 + 0.0002) = 0.0016; funding 0.01 % per 8 h = 96 bars
# of 5 m; flat-class mean returns: long +0.1 %, short -0.15 %; mean holding bars (TP, SL, flat):
# long (20, 10, 48), short (16, 8, 48).
#
# long : p_TP = p_up = 0.3, p_SL = p_down = 0.2, p_other = 0.5
#   E[hold] = 0.3*20 + 0.2*10 + 0.5*48 = 32 bars -> funding paid 0.0001 * 32/96 = 0.0000333...
#   EV = 0.3*0.02 - 0.2*0.01 + 0.5*0.001 - 0.0016 - 0.0000333... = 0.0028666...
# short: p_TP = p_down = 0.2, p_SL = p_up = 0.3, p_other = 0.5
#   E[hold] = 0.2*16 + 0.3*8 + 0.5*48 = 29.6 bars -> funding received 0.0001 * 29.6/96
#   EV = 0.2*0.02 - 0.3*0.01 + 0.5*(-0.0015) - 0.0016 + 0.0000308333... = -0.0013191666...
P = np.array([[0.2, 0.5, 0.3]])
R_OTHER = np.array([[0.001, -0.0015]])
HOLD = np.array([[[20.0, 10.0, 48.0], [16.0, 8.0, 48.0]]])
COST = D.round_trip_cost(0.0006, 0.0002)
KW = dict(cost=COST, bars_per_funding=96.0, kelly=0.5, risk=0.01)
EV_LONG = 0.006 - 0.002 + 0.0005 - 0.0016 - 0.0001 * 32 / 96
EV_SHORT = 0.004 - 0.003 - 0.00075 - 0.0016 + 0.0001 * 29.6 / 96


def test_worked_example_ev_and_decision():
    assert COST == pytest.approx(0.0016, abs=1e-18)
    assert EV_LONG == pytest.approx(0.00286666666667, abs=1e-14)
    assert EV_SHORT == pytest.approx(-0.00131916666667, abs=1e-14)
    out = D.decide(P, "triple", 0.02, 0.01, R_OTHER, HOLD, np.array([0.001]), 0.0001, **KW)
    assert out["ev_long"][0] == pytest.approx(EV_LONG, abs=1e-15)
    assert out["ev_short"][0] == pytest.approx(EV_SHORT, abs=1e-15)
    assert out["signal"][0] == 1
    # half Kelly on p = 0.3 / (0.3 + 0.2) = 0.6, b = 2: f* = 0.6 - 0.4/2 = 0.4 -> 0.2 of equity,
    # capped at risk_per_trade 1 % -> the configured size
    assert out["size"][0] == 1.0
    # a margin the EV does not clear: hold
    hold = D.decide(P, "triple", 0.02, 0.01, R_OTHER, HOLD, np.array([0.003]), 0.0001, **KW)
    assert hold["signal"][0] == 0 and hold["size"][0] == 0.0
    # the mirror probabilities: short, EV = 0.3*0.02 - 0.2*0.01 + 0.5*(-0.0015) - 0.0016 + 0.0001*30.4/96
    mirror = D.decide(P[:, ::-1], "triple", 0.02, 0.01, R_OTHER, HOLD, np.array([0.001]), 0.0001, **KW)
    assert mirror["signal"][0] == -1
    assert mirror["ev_short"][0] == pytest.approx(0.006 - 0.002 - 0.00075 - 0.0016 + 0.0001 * 30.4 / 96, abs=1e-15)
    # NaN probabilities or a NaN margin (no fold covers the bar) never trade
    nan = D.decide(np.array([[np.nan] * 3]), "triple", 0.02, 0.01, R_OTHER, HOLD, np.array([0.0]), 0.0, **KW)
    none = D.decide(P, "triple", 0.02, 0.01, R_OTHER, HOLD, np.array([np.nan]), 0.0, **KW)
    assert nan["signal"][0] == 0 and none["signal"][0] == 0


def test_kelly_sizes_exact():
    assert D.kelly_fraction(0.6, 2.0) == pytest.approx(0.4)
    # p = 0.34, b = 2: f* = 0.34 - 0.66/2 = 0.01; half Kelly 0.005 = half of a 1 % risk
    assert D.kelly_fraction(0.34, 2.0) == pytest.approx(0.01, abs=1e-15)
    np.testing.assert_allclose(D.kelly_scale([0.34, 0.6, 0.3, np.nan], 2.0, 0.5, 0.01), [0.5, 1.0, 0.0, 0.0],
                               atol=1e-12)
    # f* = 0.4, half = 0.2 against a 25 % cap: 0.8 of the configured size
    assert D.kelly_scale(0.6, 2.0, 0.5, 0.25) == pytest.approx(0.8)
    # inside the rule: p = 0.17 / (0.17 + 0.33) = 0.34 -> scale 0.5 (EV cleared with costs 0)
    out = D.decide(np.array([[0.33, 0.5, 0.17]]), "triple", 0.02, 0.01, np.array([[0.02, 0.0]]), HOLD,
                   np.array([0.0]), 0.0, cost=0.0, bars_per_funding=96.0, kelly=0.5, risk=0.01)
    # EV long = 0.17*0.02 - 0.33*0.01 + 0.5*0.02 = 0.0101 > 0
    assert out["signal"][0] == 1 and out["size"][0] == pytest.approx(0.5, abs=1e-12)


def test_meta_rule_scores_only_the_primary_side():
    # p_take = 0.45 on a long proposal: EV = 0.45*0.02 + 0.55*(-0.008) - 0.0016 - funding
    # (E[hold] = 0.45*12 + 0.55*30 = 21.9 bars, rate 0): 0.009 - 0.0044 - 0.0016 = 0.003
    proba = np.array([[0.55, 0.0, 0.45], [0.55, 0.0, 0.45], [0.55, 0.0, 0.45]])
    r = np.array([[-0.008, -0.008]] * 3)
    h = np.array([[[12.0, 0.0, 30.0], [12.0, 0.0, 30.0]]] * 3)
    out = D.decide(proba, "meta", 0.02, 0.01, r, h, np.zeros(3), 0.0, **KW, primary=np.array([1, 0, -1]))
    np.testing.assert_allclose(out["ev_long"][[0]], [0.003], atol=1e-15)
    assert np.isnan(out["ev_long"][1]) and np.isnan(out["ev_short"][0])
    np.testing.assert_array_equal(out["signal"], [1, 0, -1])
    # Kelly on p = 0.45, b = 2: f* = 0.45 - 0.55/2 = 0.175 -> half 0.0875 > 1 %: full size
    np.testing.assert_array_equal(out["size"], [1.0, 0.0, 1.0])


def test_outcome_stats_and_routing_by_hand():
    from perpbot.ml.labels import side_outcomes

    # rows: label +1 (long TP in 2 bars), -1 (long SL in 1), 0 twice (vertical, returns +0.5 % / -0.3 %)
    y = np.array([1.0, -1.0, 0.0, 0.0, np.nan])
    ret = np.array([[0.02, -0.01], [-0.01, 0.02], [0.005, -0.005], [-0.003, 0.003], [np.nan, np.nan]])
    hold = np.array([[2.0, 1.0], [1.0, 3.0], [4.0, 4.0], [4.0, 4.0], [np.nan, np.nan]])
    st = F.outcome_stats(y, ret, hold, np.arange(5), "triple")
    assert st["r_other"] == pytest.approx([0.001, -0.001])
    assert st["hold"][0] == pytest.approx([2.0, 1.0, 4.0]) and st["hold"][1] == pytest.approx([3.0, 1.0, 4.0])
    assert st["n"] == [[1, 1, 2], [1, 1, 2]]
    assert side_outcomes  # the real-data mapping is checked in test_meta.py

    ts = pd.date_range("2025-01-01", periods=6, freq="5min", tz="UTC")
    dec = {"folds": [{"test_start_time": ts[1].isoformat(), "test_end_time": ts[3].isoformat(), "margin": 0.001,
                      "stats": st}],
           "final": {"from_time": ts[4].isoformat(), "margin": 0.002, "stats": {**st, "r_other": [0.5, 0.5]}}}
    r, h, m = D.decision_rows(dec, ts)
    np.testing.assert_array_equal(m, [np.nan, 0.001, 0.001, np.nan, 0.002, 0.002])
    assert r[1].tolist() == pytest.approx([0.001, -0.001]) and r[5].tolist() == [0.5, 0.5]
    assert np.isnan(h[0]).all() and h[2, 1].tolist() == pytest.approx([3.0, 1.0, 4.0])


def test_known_funding_rate_is_the_last_settled_at_the_close():
    ts = pd.date_range("2025-01-01 07:50", periods=4, freq="5min", tz="UTC")  # closes 07:55 .. 08:10
    funding = pd.DataFrame({"timestamp": pd.to_datetime(["2025-01-01 00:00", "2025-01-01 08:00"], utc=True),
                            "funding_rate": [0.0001, -0.0002]})
    np.testing.assert_array_equal(D.known_funding_rate(ts, pd.Timedelta(minutes=5), funding),
                                  [0.0001, -0.0002, -0.0002, -0.0002])
    np.testing.assert_array_equal(D.known_funding_rate(ts, pd.Timedelta(minutes=5), None), np.zeros(4))


# ------------------------------------------------------------------ the kernel's size scale
def _round_to_step(x, step):
    return round(math.floor(x / step + 0.5) * step, 12)


def test_size_scale_sizes_the_entry_in_backtest_and_paper(c5):
    from perpbot.sim.config import AccountConfig
    from perpbot.sim.engine import MarketArrays, run_backtest
    from perpbot.exchange.simulated import SimulatedExchange

    candles = c5.iloc[:400].reset_index(drop=True)
    m = MarketArrays.build(candles, "5m")
    cfg = AccountConfig(capital=1000.0, risk=0.01, stop_loss=0.01, take_profit=0.02, taker_fee=0.0006, slippage=0.0002,
                    lot_size=0.1, tick_size=0.001, cooldown_bars=0)
    sig = np.zeros(400, dtype=np.int8)
    sig[350] = 1
    fill = candles["open"].iloc[351] * 1.0002
    dist = fill - _round_to_step(fill * 0.99, 0.001)
    qtys = {}
    for scale in (1.0, 0.5, 0.25):
        size = np.ones(400)
        size[350] = scale
        trades = run_backtest(m, sig, cfg, size=size).trades
        # fixed-fractional: qty = equity * risk * scale / (stop distance + round-trip fee per unit), lots of 0.1
        expected = math.floor(1000.0 * 0.01 * scale / (dist + 2 * fill * 0.0006) / 0.1 + 1e-9) * 0.1
        assert trades.qty.iloc[0] == pytest.approx(expected, abs=1e-9)
        qtys[scale] = trades.qty.iloc[0]
        # the paper exchange given the same size per candle fills the same trade
        ex = SimulatedExchange(cfg, "5m")
        for i, row in enumerate(candles.itertuples()):
            ex.on_candle(row.timestamp, row.open, row.high, row.low, row.close, m.atr[i])
            ex.set_signal(int(sig[i]), float(size[i]))
        ex.close_all()
        pd.testing.assert_frame_equal(ex.result().trades, run_backtest(m, sig, cfg, size=size).trades)
    assert qtys[1.0] > qtys[0.5] > qtys[0.25] > 0
    # no size array = 1.0 everywhere; a zero size is refused like a size below the minimum
    pd.testing.assert_frame_equal(run_backtest(m, sig, cfg).trades, run_backtest(m, sig, cfg, size=np.ones(400)).trades)
    zero = run_backtest(m, sig, cfg, size=np.zeros(400))
    assert len(zero.trades) == 0 and zero.risk_events.event.tolist() == ["below_min_size"]
    with pytest.raises(ValueError, match="size"):
        run_backtest(m, sig, cfg, size=np.full(400, -1.0))


# ------------------------------------------------------------------ the nested margin
@pytest.fixture(scope="module")
def nested(c5):
    from perpbot.features.build import compute_features
    from perpbot.ml.labels import side_outcomes, triple_barrier_labels

    c = c5.iloc[:14_000].reset_index(drop=True)
    X = compute_features(c)
    h, lo, cl = (c[k].to_numpy(np.float64) for k in ("high", "low", "close"))
    y = triple_barrier_labels(h, lo, cl, 0.006, 0.004, 24)
    return c, X, y, side_outcomes(h, lo, cl, 0.006, 0.004, 24)


def _fit(c, X, y, outcomes):
    from perpbot.ml.train import walk_forward_train

    wf = walk_forward_train(X, y, c["timestamp"], model_name="lightgbm", train_size=3000, test_size=2500,
                            params={"n_estimators": 20, "min_child_samples": 100}, horizon=24, n_jobs=1,
                            calibration="isotonic")
    dec = F.fit_decision(kind="triple", y=y, outcomes=outcomes, oos_proba=wf.oos_proba, timestamps=c["timestamp"],
                         folds=wf.folds, horizon=24, tp=0.006, sl=0.004, funding_rate=0.0, cost=0.0004,
                         bars_per_funding=96.0, kelly=0.5, risk=0.01, grid=(0.0, 0.0005, 0.001, 0.002),
                         min_signals=20, default_margin=0.0007)
    return wf, dec


def test_nested_margin_never_depends_on_the_test_fold(nested):
    from perpbot.ml.labels import SideOutcomes

    c, X, y, out = nested
    wf, dec = _fit(c, X, y, out)
    folds = dec["folds"]
    assert len(folds) == 5  # tests from row 49 + 3000 on, 2500 rows each (the last one shorter)
    assert folds[0]["margin"] == 0.0007 and folds[0]["margin_source"] == "default"  # nothing before it
    assert {f["margin_source"] for f in folds[1:]} <= {"nested", "strictest"}
    assert any(row[1] > 0 for f in folds[1:] for row in f["margin_table"])  # selections saw signals

    # rewrite the labels (and outcomes) of fold 2's test window and after: long <-> short
    k = 2
    start = int(c["timestamp"].searchsorted(wf.folds[k].test_start_time))
    y2 = y.copy()
    y2[start:] = -y2[start:]
    swap = lambda a: np.r_[a[:start], a[start:, ::-1]]  # noqa: E731
    out2 = SideOutcomes(swap(out.code), swap(out.ret), swap(out.hold))
    wf2, dec2 = _fit(c, X, y2, out2)
    for j in range(k + 1):  # folds up to k: the same margin, table and statistics
        assert dec2["folds"][j] == folds[j]
    np.testing.assert_array_equal(wf2.oos_proba[:start], wf.oos_proba[:start])
    # the perturbation is real: the next fold (which trains on fold k's window) sees it
    assert dec2["folds"][k + 1]["margin_table"] != folds[k + 1]["margin_table"]
    assert dec2["folds"][k + 1]["stats"] != folds[k + 1]["stats"]


def test_choose_margin_rules_by_hand():
    # four bars, long EVs 0.1 %, 0.3 %, 0.6 %, 0.9 %; realised net returns -1 %, +1 %, +2 %, -0.5 %
    ev_l = np.array([0.001, 0.003, 0.006, 0.009])
    ev_s = np.full(4, -1.0)
    p = np.full(4, 0.9)
    net = np.column_stack([[-0.01, 0.01, 0.02, -0.005], np.zeros(4)])
    rows = np.arange(4)
    kw = dict(min_signals=2, default=0.01, kelly=0.5, risk=0.01)
    m, src, table = F.choose_margin(ev_l, ev_s, p, p, 2.0, net, rows, (0.0, 0.002, 0.005), **kw)
    # margin 0: all four, total 0.015; 0.002: three, 0.025; 0.005: two, 0.015 -> 0.002
    assert (m, src) == (0.002, "nested")
    assert table == [[0.0, 4, pytest.approx(0.015)], [0.002, 3, pytest.approx(0.025)], [0.005, 2, pytest.approx(0.015)]]
    assert F.choose_margin(ev_l, ev_s, p, p, 2.0, net, rows, (0.0,), **{**kw, "min_signals": 5})[:2] == (0.01, "default")
    losing = np.column_stack([np.full(4, -0.01), np.zeros(4)])
    assert F.choose_margin(ev_l, ev_s, p, p, 2.0, losing, rows, (0.0, 0.002), **kw)[:2] == (0.002, "strictest")
