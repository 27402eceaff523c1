"""The honesty block of a real backtest, its JSON, its terminal text and its HTML section.

The AI here is deliberately leaky: its probabilities look 12 bars ahead on the real SOL
candles, so its backtest shows an absurd Sharpe ratio. A plain backtest has no optimisation
trials (no PBO) and no inner hold-out, so even this cheat must not be called "edge confirmed".
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from perpbot.backtest.honesty import ai_model_metrics, honesty_for_runs, label_barriers_for
from perpbot.backtest.runner import run_strategies, write_report
from perpbot.config import load_settings
from perpbot.data.market import load_market
from perpbot.ml.honesty.block import honesty_block
from perpbot.ml.honesty.render import honesty_text
from perpbot.ml.honesty.sharpe import expected_max_sharpe
from perpbot.ml.honesty.verdict import NO_EDGE, Verdict
from perpbot.strategy.signals import BASELINES


def leaky_proba(candles, horizon: int = 12, move: float = 0.006) -> np.ndarray:
    """p_up / p_down 0.7 when the close ``horizon`` bars ahead is ``move`` above / below (a look-ahead cheat)."""
    c = candles["close"].to_numpy(np.float64)
    fut = np.full(c.size, np.nan)
    fut[:-horizon] = c[horizon:] / c[:-horizon] - 1.0
    up = np.where(fut > move, 0.7, np.where(fut < -move, 0.1, 0.2))
    down = np.where(fut < -move, 0.7, np.where(fut > move, 0.1, 0.2))
    proba = np.column_stack([down, 1.0 - up - down, up])
    proba[~np.isfinite(fut)] = np.nan
    proba[:2000] = np.nan  # no prediction before the first test fold, as a walk-forward model
    return proba


@pytest.fixture(scope="module")
def bt(tmp_path_factory, sol5m_path):
    tmp = tmp_path_factory.mktemp("honesty")
    # the cheating probabilities are read by the fixed-threshold rule (no EV tables to go with them)
    # no funding file: funding off (the model features of the candles group then have no funding columns)
    s = load_settings(None, output_dir=tmp, candles_file=sol5m_path, funding_file=None, mark_file=None,
                      decision="threshold", funding=False)
    market = load_market(sol5m_path, "5m").slice(0, 30_000)
    runs = run_strategies(s, market, ["ai", *BASELINES], proba=leaky_proba(market.candles))
    return s, market, runs, tmp


def test_block_of_a_real_backtest_matches_the_metrics_and_refuses_to_confirm(bt):
    s, market, runs, _ = bt
    ai = runs["ai"]
    rep = honesty_for_runs(s, market, runs)
    assert rep.strategy == "ai" and ai.metrics["trade_count"] >= 100 and ai.metrics["sharpe"] > 5
    # the block's Sharpe ratio is trading_metrics' (daily returns, sqrt(365)); one trial: DSR = PSR
    assert rep.sharpe["sharpe"] == pytest.approx(ai.metrics["sharpe"], rel=1e-12)
    assert rep.sharpe["n_trials"] == 1 and rep.sharpe["dsr"] == rep.sharpe["psr"] > 0.99
    assert rep.sharpe["n_days"] == 105  # 30,000 5m candles = 104.2 days -> 105 UTC day ends
    # the verdict: DSR and trade count pass, but no PBO and no hold-out -> never "edge confirmed"
    assert rep.verdict.verdict == NO_EDGE and rep.verdict.missing == ["pbo", "holdout"]
    assert rep.verdict.numbers["trade_count"] == ai.metrics["trade_count"]
    # targets carry the run's own figures and the best baseline's
    rows = {r.key: r for r in rep.targets}
    assert rows["sharpe"].value == ai.metrics["sharpe"]
    assert rows["max_drawdown"].value == abs(ai.metrics["max_drawdown"])
    best = max(BASELINES, key=lambda b: runs[b].metrics["sharpe"])
    assert rows["sharpe"].reference_label == f"best baseline ({best})"
    assert rows["sharpe"].reference == runs[best].metrics["sharpe"]
    # bootstrap / Monte Carlo present and internally consistent
    assert set(rep.bootstrap) == {"sharpe", "max_drawdown", "profit_factor"}
    assert rep.bootstrap["sharpe"].low <= rep.bootstrap["sharpe"].point <= rep.bootstrap["sharpe"].high
    assert rep.bootstrap["profit_factor"].point == pytest.approx(ai.metrics["profit_factor"], rel=1e-12)
    assert rep.monte_carlo.n_trades == len(ai.result.trades)
    assert rep.monte_carlo.final_return == pytest.approx(ai.metrics["total_return"], rel=1e-9)
    # the cheat's confident calls beat the base rate beyond doubt
    pt = rep.precision_test
    assert pt.p_value < 1e-10 and pt.precision > 2 * pt.base_rate


def test_model_metrics_use_the_training_labels(bt):
    """ai_model_metrics labels the candles exactly as training does (app.jobs.dataset)."""
    from perpbot.app.jobs import dataset, label_barriers
    from perpbot.data.market import MarketData
    from perpbot.ml.metrics import model_metrics

    s, market, runs, _ = bt
    assert label_barriers_for(s, market.candles) == label_barriers(s, market.candles)
    atr = s.model_copy(update={"stop_mode": "atr"})
    for a, b in zip(label_barriers_for(atr, market.candles), label_barriers(atr, market.candles)):
        np.testing.assert_array_equal(a, b)
    small = MarketData(candles=market.candles.iloc[:5000].reset_index(drop=True), timeframe="5m")
    proba = runs["ai"].proba[:5000]
    _, y, _ = dataset(s, small)
    expected = model_metrics(y, proba, s.confidence_threshold)
    got = ai_model_metrics(s, small, proba)
    assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)


def test_trials_deflate_and_a_full_optimisation_can_confirm(bt):
    from perpbot.ml.honesty.pbo import probability_of_backtest_overfitting

    s, market, runs, _ = bt
    ai = runs["ai"]
    args = dict(trades=ai.result.trades, initial_capital=s.starting_capital, equity=ai.result.equity,
                strategy_metrics=ai.metrics, reps=200)
    ema = runs["ema-cross"]  # an honest rule: its modest PSR drops once 200 trials are accounted for
    ema_args = dict(trades=ema.result.trades, initial_capital=s.starting_capital, equity=ema.result.equity, reps=200)
    one = honesty_block(**ema_args)
    many = honesty_block(**ema_args, n_trials=200, trials_sharpe_variance=1.0)
    # annualised E[max SR] = sqrt(V_annual / 365) * z * sqrt(365) = E[max SR] computed on the annual variance
    assert many.sharpe["expected_max_sharpe"] == pytest.approx(expected_max_sharpe(200, 1.0), rel=1e-12)
    assert 0 < many.sharpe["dsr"] < one.sharpe["dsr"] == one.sharpe["psr"]
    unknown = honesty_block(**args, n_trials=200)
    assert math.isnan(unknown.sharpe["dsr"]) and unknown.verdict.missing[0] == "dsr"
    # with a PBO from the trials and a profitable hold-out, the (leaky) run meets every rule
    rng = np.random.default_rng(0)
    trials = rng.normal(0.0, 0.01, (400, 10))
    trials[:, 0] += 0.004
    pbo = probability_of_backtest_overfitting(trials, n_splits=8)
    full = honesty_block(**args, n_trials=10, trials_sharpe_variance=1.0, pbo=pbo, holdout_return=0.03)
    assert full.verdict.confirmed, full.verdict.reasons
    assert full.pbo["pbo"] == pbo.pbo and full.pbo["n_combinations"] == 70


def test_json_and_terminal_text(bt):
    s, market, runs, _ = bt
    rep = honesty_for_runs(s, market, runs, reps=200)
    d = json.loads(rep.to_json())  # strict JSON: no NaN
    assert d["verdict"]["verdict"] == NO_EDGE and Verdict.from_dict(d["verdict"]).reasons == rep.verdict.reasons
    assert [t["key"] for t in d["targets"]] == ["sharpe", "max_drawdown", "win_rate", "profit_factor", "accuracy",
                                                "directional_accuracy"]
    assert d["bootstrap"]["sharpe"]["point"] == pytest.approx(rep.sharpe["sharpe"])
    text = honesty_text(rep)
    assert "\x1b[" not in text  # plain text, no colour codes
    assert text.startswith("Verdict: no edge shown")
    for needle in ("Seed targets (ai)", "Sharpe ratio > 1.5", "DSR", "Bootstrap 95% intervals",
                   "Monte Carlo of the trade sequence", "Binomial test of the confident calls"):
        assert needle in text, needle


def test_report_shows_the_verdict_first_and_the_statistics(bt):
    s, market, runs, tmp = bt
    out = write_report(tmp / "report.html", s, market, runs)
    text = out.read_text(encoding="utf-8")
    verdict = text.index('<p class="verdict none">Verdict (ai): <b>no edge shown</b>')
    assert verdict < text.index("<h2>Strategy metrics</h2>") < text.index("<h2>Statistics against overfitting</h2>")
    assert text.index("<h2>Statistics against overfitting</h2>") < text.index("<h2>Charts</h2>")
    assert "probability of backtest overfitting not available" in text
    for needle in ("<h3>Seed targets (ai)</h3>", "DSR: P(true Sharpe &gt; expected max of the trials)",
                   "Bootstrap 95% intervals", "Monte Carlo of the trade sequence", "Binomial test"):
        assert needle in text, needle
    cells = re.findall(r'<td class="(pass|fail)">(pass|FAIL)</td>', text)
    assert cells and all((c == "pass") == (v == "pass") for c, v in cells)
    # equity, drawdown, rolling Sharpe, price, and the AI's calibration and calls per month
    assert text.count("Plotly.newPlot(") == 6
    # a precomputed block is used as given (no recomputation)
    rep = honesty_for_runs(s, market, runs, reps=200)
    again = write_report(tmp / "again.html", s, market, runs, honesty=rep).read_text(encoding="utf-8")
    assert f"<td>{rep.bootstrap['sharpe'].n_boot:,}</td>" in again and "<td>2,000</td>" not in again


def test_short_run_without_trades_is_too_few_to_judge(bt):
    """600 candles (~2 days, 300 of them warm-up): 6 ema-cross trades. Skipped statistics are named, nothing raises."""
    s, market, _, tmp = bt
    short = market.slice(0, 600)
    runs = run_strategies(s, short, ["ema-cross", "buy-and-hold"])
    rep = honesty_for_runs(s, short, runs)
    assert rep.verdict.verdict == "too few trades to judge"
    assert len(runs["ema-cross"].result.trades) == 6 and rep.verdict.reasons[0] == "only 6 trades (< 30)"
    # 3 daily returns: no daily bootstrap; 6 trades: profit factor bootstrap (iid, too short for blocks)
    assert list(rep.bootstrap) == ["profit_factor"] and rep.bootstrap["profit_factor"].block_size == 1.0
    assert rep.monte_carlo.n_trades == 6 and rep.precision_test is None
    assert rep.sharpe["n_days"] == 3 and "bootstrap of daily returns skipped: 3 days (need 10)" in rep.notes
    json.loads(rep.to_json())
    text = write_report(tmp / "short.html", s, short, runs).read_text(encoding="utf-8")
    assert "too few trades to judge" in text and "bootstrap of daily returns skipped" in text


def test_block_from_daily_returns_and_bad_input():
    import pandas as pd

    rets = np.random.default_rng(4).normal(0.001, 0.02, 60)
    trades = pd.DataFrame({"pnl": np.random.default_rng(5).normal(1.0, 10.0, 40)})
    rep = honesty_block(trades=trades, daily_returns=rets, initial_capital=1000.0, reps=200,
                        strategy_metrics={"sharpe": 1.0})
    assert rep.sharpe["n_days"] == 60 and rep.sharpe["sharpe_daily"] == pytest.approx(rets.mean() / rets.std(ddof=1))
    assert rep.verdict.verdict == NO_EDGE and rep.verdict.numbers["trade_count"] == 40
    with pytest.raises(ValueError, match="exactly one of equity or daily_returns"):
        honesty_block(trades=trades, initial_capital=1000.0)
    with pytest.raises(ValueError, match="n_trials"):
        honesty_block(trades=trades, daily_returns=rets, initial_capital=1000.0, n_trials=0)
    with pytest.raises(ValueError, match="pnl"):
        honesty_block(trades=pd.DataFrame({"x": [1.0]}), daily_returns=rets, initial_capital=1000.0)
