"""``perpbot optimize``: the inner hold-out no trial sees, every trial counted in the DSR, and
two worker processes sharing one PostgreSQL study.

Real data: the first 14 days of SOLUSDT 5m (4,032 candles) with 4-day training / 2-day test
windows, so a trial takes seconds.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perpbot.config import load_settings
from perpbot.data.market import load_market

PG_URL = os.environ.get("PERPBOT_TEST_POSTGRES_URL")
PG_REQUIRED = os.environ.get("PERPBOT_REQUIRE_POSTGRES") == "1"
N_BARS = 4032  # 14 days of 5m candles


@pytest.fixture(scope="module")
def slice_file(tmp_path_factory, sol5m_path):
    path = tmp_path_factory.mktemp("optdata") / "SOLUSDT-5m-14d.parquet"
    pd.read_parquet(sol5m_path).iloc[:N_BARS].to_parquet(path)
    return path


def _settings(tmp_path, candles, **kw):
    return load_settings(None, candles_file=candles, output_dir=tmp_path, train_days=4, test_days=2, n_jobs=1,
                         warmup_bars=50, **kw)


def _market(s):
    return load_market(s.candles_file, "5m", funding_file=s.funding_file, mark_file=s.mark_file)


def test_holdout_split_by_hand(tmp_path, slice_file, sol_funding_path):
    from perpbot.optimize.objective import split_holdout

    s = _settings(tmp_path, slice_file)
    search, start = split_holdout(_market(s), 0.2)
    # round(4032 * 0.8) = 3226 -> 2025-04-07 00:00 + 3226 * 5 min = 2025-04-18 04:50, next UTC midnight
    assert start == pd.Timestamp("2025-04-19 00:00", tz="UTC")
    assert len(search.candles) == 12 * 24 * 12  # 12 full days before it
    assert search.candles["timestamp"].max() == pd.Timestamp("2025-04-18 23:55", tz="UTC")
    assert search.funding["timestamp"].max() < start and search.mark["timestamp"].max() < start


def test_trials_never_see_the_holdout(tmp_path, slice_file):
    """Three trials (pruning active) on an SQLite study: the latest candle any trial read closes
    before the hold-out starts, and scrambling the hold-out's candles changes no trial's score."""
    import optuna

    from perpbot.optimize.objective import evaluate, split_holdout
    from perpbot.optimize.space import trial_config
    from perpbot.optimize.study import open_storage, run_worker, storage_url, study_stats

    s = _settings(tmp_path, slice_file)
    market = _market(s)
    url = storage_url(s.ledger)
    assert url == f"sqlite:///{tmp_path / 'perpbot-optuna.db'}"
    study = run_worker(s, market, "hold", open_storage(url), 3, seed=3, timeframes=("5m", "15m"))
    _, start = split_holdout(market, 0.2)
    trials = study.get_trials()
    assert len(trials) == 3 and study_stats(study).n_trials == 3
    for t in trials:
        assert t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED), t.state
        tf = pd.Timedelta(t.user_attrs["config"]["timeframe"].replace("m", "min"))
        assert pd.Timestamp(t.user_attrs["max_timestamp"]) + tf <= start  # its last candle closed before
    # the same configuration on data whose hold-out candles are scrambled scores the same
    c = market.candles.copy()
    late = c["timestamp"] >= start
    rng = np.random.default_rng(0)
    factor = rng.uniform(0.5, 1.5, late.sum())
    for k in ("open", "high", "low", "close"):
        c.loc[late, k] = c.loc[late, k] * factor
    c.loc[late, "high"] = c.loc[late, ["open", "high", "low", "close"]].max(axis=1)
    c.loc[late, "low"] = c.loc[late, ["open", "high", "low", "close"]].min(axis=1)
    scrambled = type(market)(c, market.timeframe, market.funding, market.mark, None, market.source)
    best = max((t for t in trials if t.value is not None), key=lambda t: t.value)
    cfg = trial_config(best.params)
    a = evaluate(s, split_holdout(market, 0.2)[0], cfg)
    b = evaluate(s, split_holdout(scrambled, 0.2)[0], cfg)
    assert a.sharpe == b.sharpe == pytest.approx(best.value, abs=0)


def _hand_study():
    """6 finished trials: 4 complete with Sharpe ratios 0.5, 1.0, 1.5, 2.0 (the last, #3, the chosen one,
    whose 100 daily returns alternate +2 % / -1 %; the others N(0, 1 %) seeded), 1 pruned (last reported
    0.0), 1 failed. Returns (study, the chosen trial's daily returns)."""
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    days = pd.date_range("2025-01-01", periods=100, freq="D").strftime("%Y-%m-%d")
    chosen = {d: (0.02 if i % 2 == 0 else -0.01) for i, d in enumerate(days)}
    rng = np.random.default_rng(1)
    study = optuna.create_study(direction="maximize")
    dist = {"x": FloatDistribution(0, 1)}
    for k, v in enumerate((0.5, 1.0, 1.5, 2.0)):
        daily = chosen if v == 2.0 else {d: float(r) for d, r in zip(days, rng.normal(0, 0.01, 100))}
        study.add_trial(create_trial(params={"x": k / 10}, distributions=dist, value=v, user_attrs={"daily": daily}))
    study.add_trial(create_trial(params={"x": 0.9}, distributions=dist, state=TrialState.PRUNED,
                                 intermediate_values={0: 3.0, 1: 0.0}))
    study.add_trial(create_trial(params={"x": 0.8}, distributions=dist, state=TrialState.FAIL))
    return study, np.array(list(chosen.values()))


def test_trial_count_feeds_the_deflated_sharpe_ratio():
    """6 finished trials (4 complete, 1 pruned, 1 failed); Sharpe ratios 0.5, 1.0, 1.5, 2.0 and
    the pruned trial's last reported 0.0 -> variance 0.625 (annualised, ddof=1), N = 6.

    Hand-worked: V_daily = 0.625 / 365 = 0.00171233, sqrt = 0.0413803;
    Z^-1(1 - 1/6) = 0.967422, Z^-1(1 - 1/(6e)) = Z^-1(0.938687) = 1.543843;
    E[max SR] = 0.0413803 * (0.422784 * 0.967422 + 0.577216 * 1.543843) = 0.0413803 * 1.300141
    = 0.053800 (daily). The chosen trial's 100 daily returns alternate +2 % / -1 % (mean 0.5 %,
    std(ddof=1) 1.507557 %, SR 0.331662, skew 0, kurtosis 1, so the variance term
    1 - skew SR + (kurtosis - 1)/4 SR^2 is 1):
    DSR = Z((0.331662 - 0.053800) * sqrt(99)) = Z(2.764693) = 0.997151.
    """
    from perpbot.ml.honesty.block import honesty_block
    from perpbot.optimize.study import pbo_of, study_stats

    study, rets = _hand_study()
    st = study_stats(study)
    assert (st.n_trials, st.n_complete, st.n_pruned, st.n_failed) == (6, 4, 1, 1)
    assert st.sharpe_variance == pytest.approx(0.625, abs=1e-12)
    assert st.best.value == 2.0 and st.returns.shape == (100, 4)
    rep = honesty_block(trades=pd.DataFrame({"pnl": [1.0] * 120}), initial_capital=1000.0, daily_returns=rets,
                        n_trials=st.n_trials, trials_sharpe_variance=st.sharpe_variance, pbo=pbo_of(st.returns),
                        holdout_return=0.01)
    assert rep.sharpe["expected_max_sharpe_daily"] == pytest.approx(0.053800, abs=5e-6)
    assert rep.sharpe["dsr"] == pytest.approx(0.997151, abs=5e-6)
    assert rep.verdict.numbers["n_trials"] == 6
    # one trial fewer counted -> a lower bar, a higher DSR: the count matters
    rep5 = honesty_block(trades=pd.DataFrame({"pnl": [1.0] * 120}), initial_capital=1000.0, daily_returns=rets,
                         n_trials=5, trials_sharpe_variance=st.sharpe_variance)
    assert rep5.sharpe["dsr"] > rep.sharpe["dsr"] and math.isfinite(rep5.sharpe["dsr"])


def test_report_shows_the_trials_the_chosen_trial_its_holdout_dsr_and_pbo(tmp_path):
    """The optimisation report (terminal and ``report.txt``) of the hand-worked study above: every trial,
    the chosen one, its inner hold-out, the DSR and the PBO.

    PBO: 100 days -> S = 16 blocks of 6 days (the 4 oldest dropped), 12,870 combinations. The chosen
    trial's days alternate +2 % / -1 % in every block, so in every half its Sharpe is the same
    0.005 / 0.01516 = 0.33 per day, which none of the three N(0, 1 %) trials reaches over 48 days here:
    it is the in-sample best and ranks 4 of 4 out of sample in every combination -> w = 4/5,
    logit ln 4 = 1.3863 each time, PBO 0.
    """
    from perpbot.ml.honesty.block import honesty_block
    from perpbot.optimize.report import OptimizeResult, write_report
    from perpbot.optimize.study import pbo_of, study_stats, trial_rows

    study, rets = _hand_study()
    st = study_stats(study)
    pbo = pbo_of(st.returns)
    assert pbo.pbo == 0.0 and pbo.summary()["n_combinations"] == 12870
    assert pbo.logits == pytest.approx([math.log(4)] * 12870, abs=1e-12) and set(pbo.best_trial) == {3}
    rep = honesty_block(trades=pd.DataFrame({"pnl": [1.0] * 120}), initial_capital=1000.0, daily_returns=rets,
                        strategy="optimised ai (trial 3)", n_trials=st.n_trials,
                        trials_sharpe_variance=st.sharpe_variance, pbo=pbo, holdout_return=0.0123)
    res = OptimizeResult(study_name="hand", stats=st, holdout_start=pd.Timestamp("2025-04-11", tz="UTC"),
                         chosen={"number": 3, "value": 2.0, "config": {"timeframe": "15m"}, "trades": 120,
                                 "total_return": 0.25},
                         holdout={"total_return": 0.0123, "max_drawdown": -0.031, "trades": 120},
                         holdout_sharpe=1.234, honesty=rep, model_path=tmp_path / "m.joblib", model_version="v-hand",
                         trials=trial_rows(study), settings_update={"timeframe": "15m"})
    out = write_report(res, tmp_path / "report")
    lines = [" ".join(x.replace("│", " ").split()) for x in (out / "report.txt").read_text().splitlines()]
    text = "\n".join(lines)
    # the trials, best first: 4 complete, the pruned one at its last reported Sharpe, the failed one without
    assert "Trials (6)" in text
    rows = [x.split(" ")[:3] for x in lines if x.split(" ")[1:2] in (["complete"], ["pruned"], ["fail"])]
    assert rows == [["3", "complete", "2.00"], ["2", "complete", "1.50"], ["1", "complete", "1.00"],
                    ["0", "complete", "0.50"], ["4", "pruned", "n/a"], ["5", "fail", "n/a"]]
    for want in ("trials finished (complete / pruned / failed) 6 (4 / 1 / 1)",
                 "variance of the trials' Sharpe ratios (annualised) 0.6250",
                 'chosen trial #3: {"timeframe": "15m"}',
                 "chosen: OOS Sharpe of the search period 2.00",
                 "chosen: search-period trades / return 120 / 25.00 %",
                 "inner hold-out from (scored once) 2025-04-11 00:00 UTC",
                 "hold-out: return after costs 1.23 %",
                 "hold-out: Sharpe / max drawdown 1.23 / -3.10 %",
                 "hold-out: trades 120",
                 "trials (configurations tried) 6",
                 "DSR: P(true Sharpe > expected max of the trials) 0.9972",  # 0.997151, worked above
                 "PBO (share of logits <= 0) 0.0000",
                 "trials / splits / combinations 4 / 16 / 12,870",
                 "median logit 1.386"):
        assert want in lines, want
    # DSR 0.997 >= 0.95, PBO 0 < 0.5, hold-out +1.23 %, 120 trades >= 100
    assert "Verdict: edge confirmed — 120 trades (>= 100); deflated Sharpe ratio 0.997 >= 0.95;" in text
    result = json.loads((out / "result.json").read_text())
    assert (result["n_trials"], result["chosen"]["number"], result["holdout"]["total_return"]) == (6, 3, 0.0123)
    assert result["honesty"]["sharpe"]["dsr"] == pytest.approx(0.997151, abs=5e-6)
    assert result["honesty"]["pbo"]["pbo"] == 0.0


def _pg_url() -> str:
    if not PG_URL:
        msg = "set PERPBOT_TEST_POSTGRES_URL to run two optimize workers on one PostgreSQL study"
        if PG_REQUIRED:
            pytest.fail(msg + " (PERPBOT_REQUIRE_POSTGRES=1 makes this a failure)")
        pytest.skip(msg)
    import sqlalchemy as sa

    try:
        eng = sa.create_engine(PG_URL, poolclass=sa.pool.NullPool)
        with eng.connect():
            pass
    except sa.exc.OperationalError as exc:
        msg = f"PostgreSQL at PERPBOT_TEST_POSTGRES_URL unreachable: {str(exc.orig).strip().splitlines()[0]}"
        if PG_REQUIRED:
            pytest.fail(msg + " (PERPBOT_REQUIRE_POSTGRES=1 makes this a failure)")
        pytest.skip(msg)
    return PG_URL


def test_two_workers_share_one_postgres_study(tmp_path, slice_file):
    """Two ``perpbot optimize --study X`` processes at once (2 + 3 trials, own seeds): the study
    holds exactly 5 finished trials numbered 0..4, none lost, none run twice; then a third call
    with --trials 0 chooses, scores the hold-out and saves the model with its verdict."""
    import optuna

    from perpbot.optimize.study import open_storage

    url = _pg_url()
    name = f"test-{uuid.uuid4().hex[:10]}"
    env = {**os.environ, "PERPBOT_LEDGER_URL": url, "PERPBOT_OUTPUT_DIR": str(tmp_path),
           "PERPBOT_CANDLES_FILE": str(slice_file), "PERPBOT_TRAIN_DAYS": "4", "PERPBOT_TEST_DAYS": "2",
           "PERPBOT_N_JOBS": "1", "PERPBOT_WARMUP_BARS": "50"}
    cmd = [sys.executable, "-m", "perpbot", "optimize", "--study", name, "--no-final", "--timeframes", "5m,15m"]
    procs = [subprocess.Popen(cmd + ["--trials", str(n), "--seed", str(seed)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for n, seed in ((2, 1), (3, 2))]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    storage = open_storage(url)
    try:
        assert [p.returncode for p in procs] == [0, 0], outs
        trials = optuna.load_study(study_name=name, storage=storage).get_trials()
        assert len(trials) == 5
        assert sorted(t.number for t in trials) == [0, 1, 2, 3, 4]
        assert len({t._trial_id for t in trials}) == 5
        assert all(t.state.is_finished() for t in trials)
        done = subprocess.run(cmd[:-3] + ["--trials", "0"], env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "study " + name + ": 5 trials finished" in done.stdout
        assert "Verdict:" in done.stdout and "inner hold-out" in done.stdout
        model = tmp_path / "models" / f"optimized-{name}.joblib"
        assert model.exists() and Path(str(model) + ".verdict.json").exists()
    finally:
        optuna.delete_study(study_name=name, storage=storage)


@pytest.mark.parametrize("args, message", [
    (["--trials", "-1"], "--trials must be >= 0, got -1"),
    (["--holdout", "0"], "--holdout must be in (0, 0.9], got 0.0"),
    (["--workers", "0"], "--workers must be >= 1, got 0"),
    (["--timeframes", "5m,2m"], "--timeframes '5m,2m': choose among 5m, 15m, 1h"),
    (["--feature-sets", "candles;candles,vibes"],
     "--feature-sets 'candles;candles,vibes': groups are candles, htf, cross_asset, funding_basis, regime"),
])
def test_bad_options_are_one_line_usage_errors(tmp_path, args, message):
    from typer.testing import CliRunner

    from perpbot.cli.main import app

    res = CliRunner().invoke(app, ["optimize", *args], env={"PERPBOT_OUTPUT_DIR": str(tmp_path)})
    assert res.exit_code == 2 and res.output.strip() == f"error: {message}", res.output
    assert not (tmp_path / "perpbot-optuna.db").exists()


def test_a_backtest_of_an_optimised_model_is_deflated_by_its_trials(tmp_path):
    """The optimisation's saved verdict carries N and the trials' Sharpe variance; a later backtest of
    the same model version reads them (another version, or a verdict without them: one trial)."""
    from perpbot.cli.verdicts import _optimisation_trials
    from perpbot.ml.honesty.saved import save_verdict
    from perpbot.ml.honesty.verdict import Verdict

    model = tmp_path / "m.joblib"
    assert _optimisation_trials(model, "v1") is None
    save_verdict(model, Verdict("no edge shown", ["x"]), source="optimize", model_version="v1",
                 summary={"n_trials": 50, "trials_sharpe_variance": 3.4771})
    assert _optimisation_trials(model, "v1") == (50, 3.4771)
    assert _optimisation_trials(model, "v2") is None
    save_verdict(model, Verdict("no edge shown", ["x"]), source="optimize", model_version="v1",
                 summary={"n_trials": 50, "trials_sharpe_variance": float("nan")})
    assert _optimisation_trials(model, "v1") is None


def test_feature_groups_are_a_dimension_when_several_sets_are_given(slice_file, tmp_path):
    """--feature-sets with two sets: the trials sample the groups and train on those columns; one set
    (the default) adds no dimension, so a study's draws stay as they were."""
    import optuna

    from perpbot.config import load_settings
    from perpbot.data.market import load_market_for
    from perpbot.optimize.space import suggest, trial_config
    from perpbot.optimize.study import open_storage, run_worker

    one = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    cfg = suggest(one.ask(), ("5m",))
    assert cfg.features == ("candles",) and "features" not in one.trials[0].params
    assert trial_config({**one.trials[0].params, "features": "candles,regime"}).features == ("candles", "regime")
    s = load_settings(None, candles_file=slice_file, output_dir=tmp_path, train_days=4, test_days=2, n_jobs=1,
                      warmup_bars=50)
    market = load_market_for(s)
    study = run_worker(s, market, "groups", open_storage(f"sqlite:///{tmp_path / 'o.db'}"), 4, seed=5,
                       timeframes=("5m",), feature_sets=("candles", "candles,regime"))
    seen = {t.params["features"] for t in study.trials}
    assert seen == {"candles", "candles,regime"} and len(study.trials) == 4
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert done and all(t.user_attrs["config"]["features"] == t.params["features"] for t in done)
    from perpbot.ml.registry import load_bundle
    from perpbot.optimize.report import finalize

    res = finalize(s, market, study, tmp_path / "m.joblib")
    bundle = load_bundle(tmp_path / "m.joblib")
    assert ",".join(bundle.feature_groups) == study.best_trial.params["features"]
    assert res.settings_update["features"] == list(bundle.feature_groups)
