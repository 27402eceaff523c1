"""The verdict rules (every boundary), its JSON form, and the seed-target table."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from perpbot.ml.honesty.targets import SEED_TARGETS, seed_targets
from perpbot.ml.honesty.verdict import EDGE_CONFIRMED, NO_EDGE, TOO_FEW_TRADES, Verdict, judge

GOOD = dict(trade_count=100, dsr=0.95, pbo=0.49, holdout_return=0.001)


def test_edge_confirmed_only_when_every_condition_holds_at_its_boundary():
    v = judge(**GOOD, n_trials=40)
    assert v.verdict == EDGE_CONFIRMED and v.confirmed and v.missing == []
    assert v.reasons == ["100 trades (>= 100)", "deflated Sharpe ratio 0.950 >= 0.95",
                         "probability of backtest overfitting 0.490 < 0.5",
                         "inner hold-out profitable after costs (+0.10 %)"]
    assert v.numbers == {"dsr": 0.95, "pbo": 0.49, "holdout_return": 0.001, "trade_count": 100, "n_trials": 40}


@pytest.mark.parametrize("change, reason", [
    (dict(trade_count=99), "only 99 trades (< 100 needed)"),
    (dict(dsr=0.9499), "deflated Sharpe ratio 0.9499 < 0.95"),  # not "0.950 < 0.95"
    (dict(pbo=0.5), "probability of backtest overfitting 0.500 >= 0.5"),
    (dict(holdout_return=0.0), "inner hold-out not profitable after costs (+0.00 %)"),
    (dict(holdout_return=-0.0312), "inner hold-out not profitable after costs (-3.12 %)"),
])
def test_each_failed_condition_gives_no_edge_with_its_reason(change, reason):
    v = judge(**{**GOOD, **change})
    assert v.verdict == NO_EDGE and not v.confirmed
    assert v.reasons == [reason]


@pytest.mark.parametrize("change, missing", [
    (dict(pbo=None), ["pbo"]),
    (dict(holdout_return=None), ["holdout"]),
    (dict(dsr=math.nan), ["dsr"]),
    (dict(pbo=None, holdout_return=None), ["pbo", "holdout"]),
])
def test_missing_figures_are_named_and_never_confirm(change, missing):
    v = judge(**{**GOOD, "dsr": 0.999, "trade_count": 5000, **change})
    assert v.verdict == NO_EDGE and v.missing == missing
    text = " ".join(v.reasons)
    for m in missing:
        assert {"pbo": "probability of backtest overfitting not available", "holdout": "no inner hold-out",
                "dsr": "deflated Sharpe ratio not available"}[m] in text


def test_too_few_trades_below_30_and_judged_from_30():
    v = judge(trade_count=29, dsr=0.99, pbo=0.1, holdout_return=0.2)
    assert v.verdict == TOO_FEW_TRADES and v.reasons == ["only 29 trades (< 30)"]
    v = judge(trade_count=28, dsr=0.2, pbo=None, holdout_return=None)
    assert v.verdict == TOO_FEW_TRADES and v.reasons[0] == "only 28 trades (< 30)" and v.missing == ["pbo", "holdout"]
    v = judge(trade_count=30, dsr=0.99, pbo=0.1, holdout_return=0.2)
    assert v.verdict == NO_EDGE and v.reasons == ["only 30 trades (< 100 needed)"]


def test_verdict_json_round_trip_with_nan_as_null():
    v = judge(trade_count=np.int64(150), dsr=np.float64(math.nan), pbo=np.float64(0.25), holdout_return=0.05,
              n_trials=np.int64(7))
    text = v.to_json()
    d = json.loads(text)
    assert d["numbers"] == {"dsr": None, "pbo": 0.25, "holdout_return": 0.05, "trade_count": 150, "n_trials": 7}
    assert d["verdict"] == NO_EDGE and d["missing"] == ["dsr"]
    back = Verdict.from_json(text)
    assert back.verdict == v.verdict and back.reasons == v.reasons and back.numbers == d["numbers"]
    assert back.line() == "no edge shown: deflated Sharpe ratio not available"
    with pytest.raises(ValueError, match="unknown verdict"):
        Verdict.from_dict({"verdict": "probably fine"})


def test_verdict_refuses_impossible_inputs():
    with pytest.raises(ValueError, match="trade_count"):
        judge(trade_count=-1, dsr=0.5)
    with pytest.raises(ValueError, match="dsr"):
        judge(trade_count=10, dsr=1.2)
    with pytest.raises(ValueError, match="pbo"):
        judge(trade_count=10, dsr=0.5, pbo=-0.1)


# ------------------------------------------------------------------------------------ seed targets
def test_seed_targets_pass_fail_beside_baselines_and_base_rates():
    # the numbers of the issue: AI Sharpe 1.92 on 28 trades, accuracy 0.703 vs majority 0.711,
    # directional 0.515 vs 0.520
    strategy = {"sharpe": 1.92, "max_drawdown": -0.0553, "win_rate": 0.50, "profit_factor": math.nan}
    model = {"accuracy": 0.703, "accuracy_base": 0.711, "directional_accuracy": 0.515,
             "directional_accuracy_base": 0.520}
    baselines = {"buy-and-hold": {"sharpe": 0.32, "max_drawdown": -0.6039, "win_rate": 0.0, "profit_factor": 0.0},
                 "ema-cross": {"sharpe": -0.97, "max_drawdown": -0.2044, "win_rate": 0.3081, "profit_factor": 0.85}}
    rows = {r.key: r for r in seed_targets(strategy, model, baselines)}
    assert list(rows) == [t.key for t in SEED_TARGETS]

    s = rows["sharpe"]
    assert (s.value, s.passed, s.reference_label, s.reference, s.beats_reference) == \
        (1.92, True, "best baseline (buy-and-hold)", 0.32, True)
    assert s.baselines == {"buy-and-hold": 0.32, "ema-cross": -0.97}
    dd = rows["max_drawdown"]  # magnitudes: 5.53 % < 15 %; the shallowest baseline drawdown is ema-cross
    assert (dd.value, dd.passed, dd.reference_label, dd.reference) == (0.0553, True, "best baseline (ema-cross)", 0.2044)
    assert rows["win_rate"].passed is False and rows["win_rate"].reference == 0.3081
    pf = rows["profit_factor"]
    assert pf.passed is None and pf.beats_reference is None and math.isnan(pf.value)
    acc = rows["accuracy"]  # passes the 60 % target, yet below the majority-class rate
    assert (acc.passed, acc.reference_label, acc.reference, acc.beats_reference) == (True, "base rate", 0.711, False)
    da = rows["directional_accuracy"]
    assert (da.passed, da.reference, da.beats_reference) == (False, 0.520, False)

    bare = {r.key: r for r in seed_targets(strategy)}  # no model, no baselines: references n/a
    assert bare["accuracy"].passed is None and math.isnan(bare["sharpe"].reference)
    assert bare["sharpe"].reference_label == "best baseline"


def test_seed_target_thresholds_are_strict():
    rows = {r.key: r for r in seed_targets({"sharpe": 1.5, "max_drawdown": -0.15, "win_rate": 0.55,
                                            "profit_factor": 1.3}, {"accuracy": 0.6, "directional_accuracy": 0.65})}
    assert all(r.passed is False for r in rows.values())
