"""PSR / DSR (Bailey & López de Prado, 2014) and PBO by CSCV (Bailey, Borwein, López de Prado & Zhu, 2017).

Exact numbers: the DSR paper's own worked example, PSR values worked by hand through
``math.erf`` (independent of scipy), sample moments worked by hand, and a 4 x 3 CSCV case
whose logits are worked by hand. Statistical checks are seeded and state their tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from perpbot.ml.honesty.pbo import probability_of_backtest_overfitting
from perpbot.ml.honesty.sharpe import (deflated_sharpe_ratio, expected_max_sharpe, probabilistic_sharpe_ratio,
                                       sharpe_stats)


def phi(z: float) -> float:
    """Standard normal CDF through math.erf (independent of scipy)."""
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


# ------------------------------------------------------------------------------------ DSR / PSR
def test_deflated_sharpe_ratio_reproduces_the_papers_worked_example():
    # Bailey & López de Prado (2014): annualised SR 2.5 over 1,250 daily returns (250 a year), skew -3,
    # kurtosis 10, 100 trials whose annualised Sharpe ratios have variance 0.5 -> E[max SR] 0.1132 (daily)
    # and DSR 0.9004.
    sr_daily = 2.5 / math.sqrt(250)
    var_daily = 0.5 / 250
    sr0 = expected_max_sharpe(100, var_daily)
    assert round(sr0, 4) == 0.1132
    dsr = deflated_sharpe_ratio(sr_daily, 1250, -3.0, 10.0, n_trials=100, sharpe_variance=var_daily)
    assert round(dsr, 4) == 0.9004
    # the DSR is the PSR against E[max SR]
    assert dsr == probabilistic_sharpe_ratio(sr_daily, 1250, -3.0, 10.0, benchmark=sr0)


def test_probabilistic_sharpe_ratio_against_hand_worked_values():
    # SR 0.2, T 26, skew 0.4, kurtosis 9: 1 - 0.4*0.2 + (9-1)/4*0.04 = 1 - 0.08 + 0.08 = 1 -> z = 0.2*sqrt(25) = 1
    assert probabilistic_sharpe_ratio(0.2, 26, 0.4, 9.0) == pytest.approx(phi(1.0), abs=1e-12)
    assert round(phi(1.0), 6) == 0.841345  # the normal table value
    # SR 0.1, T 101, skew -1, kurtosis 5: 1 + 0.1 + 4/4*0.01 = 1.11 -> z = 0.1*10/sqrt(1.11) = 0.949158
    assert probabilistic_sharpe_ratio(0.1, 101, -1.0, 5.0) == pytest.approx(phi(1.0 / math.sqrt(1.11)), abs=1e-12)
    # fat left tail lowers the PSR below the normal case (z = 1/sqrt(1.005))
    assert probabilistic_sharpe_ratio(0.1, 101, -1.0, 5.0) < probabilistic_sharpe_ratio(0.1, 101) \
        == pytest.approx(phi(1.0 / math.sqrt(1.005)), abs=1e-12)
    # observed SR equal to the benchmark -> exactly one half
    assert probabilistic_sharpe_ratio(0.15, 500, -2.0, 12.0, benchmark=0.15) == 0.5


def test_expected_max_sharpe_edges_and_dsr_of_one_trial():
    assert expected_max_sharpe(1, 0.3) == 0.0 and expected_max_sharpe(50, 0.0) == 0.0
    # grows with the number of trials and with sqrt(variance)
    assert expected_max_sharpe(10, 0.01) < expected_max_sharpe(100, 0.01) < expected_max_sharpe(1000, 0.01)
    assert expected_max_sharpe(100, 0.04) == pytest.approx(2 * expected_max_sharpe(100, 0.01), rel=1e-12)
    one = deflated_sharpe_ratio(0.08, 365, -0.5, 6.0, n_trials=1, sharpe_variance=0.0)
    assert one == probabilistic_sharpe_ratio(0.08, 365, -0.5, 6.0)


def test_sharpe_stats_hand_worked_moments():
    # r = [0.01, -0.01, 0.02, 0.0]: mean 0.005, deviations +-0.005, +-0.015 -> sum sq 5e-4,
    # std(ddof=1) = sqrt(5e-4/3); population m2 = 1.25e-4, m4 = 2.5625e-8 -> kurtosis 1.64, skew 0
    st = sharpe_stats([0.01, -0.01, 0.02, 0.0])
    assert st.sharpe == pytest.approx(0.005 / math.sqrt(5e-4 / 3), rel=1e-12)
    assert st.skew == pytest.approx(0.0, abs=1e-12)
    assert st.kurtosis == pytest.approx(1.64, rel=1e-12)
    assert st.n_obs == 4
    flat = sharpe_stats([0.001] * 10)
    assert math.isnan(flat.sharpe) and math.isnan(flat.kurtosis)


def test_sharpe_stats_match_trading_metrics_on_real_data(sol5m):
    """The daily Sharpe ratio of buy-and-hold SOL equals trading_metrics' annualised one / sqrt(365)."""
    from perpbot.ml.trading_metrics import daily_returns, trading_metrics

    marks = pd.DatetimeIndex(sol5m["timestamp"] + pd.Timedelta(minutes=5))
    equity = pd.Series(1000.0 * sol5m["close"].to_numpy() / sol5m["open"].iloc[0], index=marks)
    empty = pd.DataFrame(columns=["pnl", "fees", "funding", "qty", "entry_price", "entry_bar", "exit_bar"])
    m = trading_metrics(equity, empty, 1000.0)
    r = daily_returns(equity, 1000.0)
    st = sharpe_stats(r)
    assert st.n_obs == len(r) and 299 <= len(r) <= 301  # 86,400 5m candles = 300 days
    assert st.sharpe * math.sqrt(365) == pytest.approx(m["sharpe"], rel=1e-12)
    assert st.kurtosis > 3.0  # crypto daily returns are fat-tailed


@pytest.mark.parametrize("kwargs, match", [
    (dict(sharpe=0.1, n_obs=1, skew=0.0, kurtosis=3.0), "n_obs"),
    (dict(sharpe=0.1, n_obs=100, skew=0.0, kurtosis=0.5), "excess kurtosis"),
    (dict(sharpe=math.nan, n_obs=100, skew=0.0, kurtosis=3.0), "sharpe"),
])
def test_psr_refuses_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        probabilistic_sharpe_ratio(**kwargs)
    with pytest.raises(ValueError, match="n_trials"):
        expected_max_sharpe(0, 0.1)
    with pytest.raises(ValueError, match="sharpe_variance"):
        expected_max_sharpe(10, -0.1)


# ------------------------------------------------------------------------------------ PBO
def _two_block_case(consistent: bool) -> np.ndarray:
    """T=4 rows (2 blocks of 2), 3 trials. A: +2.12 Sharpe in block 0, -2.12 in block 1; B the mirror;
    C: 1.41 in both (rows 0.01, 0.03), or 4.24 in both (rows 0.05, 0.07) when ``consistent``."""
    c = [0.05, 0.07] if consistent else [0.01, 0.03]
    return np.array([[0.02, -0.02, c[0]], [0.04, -0.04, c[1]], [-0.02, 0.02, c[0]], [-0.04, 0.04, c[1]]])


def test_pbo_hand_worked_two_block_cases():
    # S=2 -> 2 combinations. Overfit case: the IS winner (A, then B) is the OOS loser: rank 1 of 3,
    # w = 1/4, logit ln(1/3) = -1.0986 both times -> PBO 1; its Sharpe goes from +2.1213 to -2.1213.
    res = probability_of_backtest_overfitting(_two_block_case(False), n_splits=2)
    assert res.pbo == 1.0 and res.n_trials == 3 and res.n_obs == 4 and len(res.logits) == 2
    assert res.logits == pytest.approx([math.log(1 / 3)] * 2, abs=1e-12)
    assert sorted(res.best_trial.tolist()) == [0, 1]
    assert res.is_perf == pytest.approx([0.03 / math.sqrt(2e-4)] * 2, rel=1e-9)
    assert res.oos_perf == pytest.approx([-0.03 / math.sqrt(2e-4)] * 2, rel=1e-9)
    assert res.prob_oos_loss == 1.0 and math.isnan(res.degradation_slope)  # IS scores all equal: no line
    # Consistent case: C wins in sample and ranks 3 of 3 out of sample: w = 3/4, logit ln 3 -> PBO 0
    res = probability_of_backtest_overfitting(_two_block_case(True), n_splits=2)
    assert res.pbo == 0.0 and res.best_trial.tolist() == [2, 2]
    assert res.logits == pytest.approx([math.log(3)] * 2, abs=1e-12)


def test_pbo_pure_noise_is_about_one_half():
    """Trials with no skill: the IS winner's OOS rank is uniform, so PBO ~ 0.5 on average.

    100 seeds (0..99) of 20 trials x 480 N(0, 1 %) returns, S = 10 (252 combinations). One seed's PBO
    varies widely (std ~0.21 across seeds), so the check is on the mean over seeds: within 0.05 of 0.5
    (about 2.4 standard errors).
    """
    values = []
    for seed in range(100):
        m = np.random.default_rng(seed).normal(0.0, 0.01, (480, 20))
        values.append(probability_of_backtest_overfitting(m, n_splits=10).pbo)
    assert abs(np.mean(values) - 0.5) < 0.05, np.mean(values)
    assert 0.2 < np.median(values) < 0.8


def test_pbo_planted_edge_is_near_zero():
    """19 noise trials and one (column 5) with a planted edge of +0.2 % a period (per-period Sharpe 0.2):
    seeds 0..4, PBO < 0.1 each, the edge is the IS winner in > 90 % of combinations."""
    for seed in range(5):
        m = np.random.default_rng(seed).normal(0.0, 0.01, (1000, 20))
        m[:, 5] += 0.002
        res = probability_of_backtest_overfitting(pd.DataFrame(m), n_splits=10)
        assert res.pbo < 0.1, (seed, res.pbo)
        assert np.mean(res.best_trial == 5) > 0.9
        assert res.prob_oos_loss < 0.1
        assert res.summary()["n_combinations"] == 252


def test_pbo_custom_score_matches_default_and_oldest_rows_dropped():
    rng = np.random.default_rng(11)
    m = rng.normal(0.0005, 0.01, (203, 6))  # 203 = 8 * 25 + 3: the 3 oldest rows are dropped
    default = probability_of_backtest_overfitting(m, n_splits=8)
    custom = probability_of_backtest_overfitting(m, n_splits=8, score=lambda x: x.mean(0) / x.std(0, ddof=1))
    assert default.n_obs == 200
    assert custom.pbo == default.pbo
    np.testing.assert_allclose(custom.logits, default.logits, rtol=1e-9)
    np.testing.assert_allclose(custom.is_perf, default.is_perf, rtol=1e-9)
    same = probability_of_backtest_overfitting(m[3:], n_splits=8)
    np.testing.assert_array_equal(same.logits, default.logits)


@pytest.mark.parametrize("matrix, splits, match", [
    (np.zeros((100, 1)), 4, "at least 2 trials"),
    (np.zeros(100), 4, "2-D"),
    (np.zeros((100, 3)), 5, "even"),
    (np.full((100, 3), np.nan), 4, "NaN"),
    (np.zeros((10, 3)), 8, "rows per block"),
])
def test_pbo_refuses_bad_input(matrix, splits, match):
    with pytest.raises(ValueError, match=match):
        probability_of_backtest_overfitting(matrix, n_splits=splits)
