"""The command line as a user meets it: real subprocesses of ``python -m perpbot``.

Bad input (config values, secrets in a file, missing / corrupt / gapped data, a model from
another feature set, a corrupt model file) must give one ``error:`` line on stderr, a non-zero
exit code (2 for configuration) and write nothing: no ledger, no report, no model.
A small happy path trains, backtests and lists trades on a slice of the real data.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _cli_helpers import error_lines, perpbot, written


@pytest.fixture(scope="module")
def small(tmp_path_factory, sol5m, sol_funding_path, sol_mark8h_path):
    """A folder with 12,000 real 5m candles and a config pointing at them."""
    d = tmp_path_factory.mktemp("cli")
    sol5m.iloc[:12_000].to_parquet(d / "candles.parquet")
    (d / "perpbot.toml").write_text(
        "[perpbot]\n"
        f'candles_file = "{d / "candles.parquet"}"\n'
        f'funding_file = "{sol_funding_path}"\n'
        f'mark_file = "{sol_mark8h_path}"\n'
        'model = "logreg"\ntrain_days = 10\ntest_days = 10\noutput_dir = "out"\n')
    return d


def test_invalid_config_value_exits_2_and_writes_nothing(small, tmp_path):
    proc = perpbot(["backtest", "--strategy", "ema-cross"], small, {"PERPBOT_LEVERAGE": "500"})
    assert proc.returncode == 2
    lines = error_lines(proc)
    assert len(lines) == 1, lines
    assert "leverage" in lines[0] and "500" in lines[0] and "<= 125" in lines[0]
    assert not (small / "out").exists()


def test_unknown_timeframe_and_bad_toml(small, tmp_path):
    proc = perpbot(["backtest", "--strategy", "ema-cross"], small, {"PERPBOT_TIMEFRAME": "2m"})
    assert proc.returncode == 2 and "timeframe" in error_lines(proc)[0] and "'5m'" in error_lines(proc)[0]
    bad = tmp_path / "bad.toml"
    bad.write_text("leverage = [oops\n")
    proc = perpbot(["backtest", "--config", str(bad)], tmp_path)
    assert proc.returncode == 2 and len(error_lines(proc)) == 1 and "not valid TOML" in proc.stderr


def test_secret_in_config_file_is_refused(tmp_path):
    cfg = tmp_path / "secret.toml"
    cfg.write_text('api_secret = "abc123"\n')
    proc = perpbot(["backtest", "--config", str(cfg)], tmp_path)
    assert proc.returncode == 2
    assert "secrets are read only from the environment" in proc.stderr
    assert "abc123" not in proc.stderr + proc.stdout
    assert written(tmp_path) == ["secret.toml"]


@pytest.mark.parametrize("case", ["missing", "corrupt", "gap"])
def test_bad_data_file_one_line_nonzero_nothing_written(case, tmp_path, sol5m):
    path = tmp_path / "candles.parquet"
    if case == "corrupt":
        path.write_bytes(b"PAR1 this is not parquet at all")
    elif case == "gap":
        sol5m.iloc[:3000].drop(index=1234).to_parquet(path)
    proc = perpbot(["backtest", "--strategy", "ema-cross", "--candles", str(path)], tmp_path,
                   {"PERPBOT_OUTPUT_DIR": str(tmp_path / "out"), "PERPBOT_FUNDING": "false"})
    assert proc.returncode == 1
    lines = error_lines(proc)
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: data:") and str(path) in lines[0]
    expected = {"missing": "not found", "corrupt": "unreadable parquet", "gap": "gap"}[case]
    assert expected in lines[0].lower(), lines[0]
    assert not (tmp_path / "out").exists()


def test_train_backtest_trades_then_model_from_other_feature_set_is_refused(small):
    proc = perpbot(["train"], small)
    assert proc.returncode == 0, proc.stderr
    model = small / "out" / "models" / "logreg.joblib"
    assert model.exists() and Path(str(model) + ".json").exists()
    assert Path(str(model) + ".proba.npz").exists()  # training caches the model's probabilities
    assert "model saved" in proc.stdout

    proc = perpbot(["backtest", "--report", "out/report.html"], small)
    assert proc.returncode == 0, proc.stderr
    for name in ("ai", "buy-and-hold", "ema-cross", "scoring", "sharpe", "funding_paid"):
        assert name in proc.stdout
    assert (small / "out" / "report.html").exists() and (small / "out" / "perpbot.db").exists()

    # a backtest computing the probabilities afresh gives the same numbers as the cached ones
    Path(str(model) + ".proba.npz").unlink()
    again = perpbot(["backtest", "--no-ledger"], small)
    assert Path(str(model) + ".proba.npz").exists()
    assert again.returncode == 0 and again.stdout.split("ledger runs")[0] == proc.stdout.split("ledger runs")[0]

    proc = perpbot(["trades", "--limit", "5"], small)
    assert proc.returncode == 0 and "run 4" in proc.stdout  # ai=1, then three baselines

    # the same model under a config without funding features: refused, nothing recorded
    before = (small / "out" / "perpbot.db").stat().st_size
    proc = perpbot(["backtest", "--no-baselines"], small, {"PERPBOT_FUNDING": "false"})
    assert proc.returncode == 1
    lines = error_lines(proc)
    assert len(lines) == 1 and "trained on" in lines[0] and "funding_last" in lines[0], lines
    assert (small / "out" / "perpbot.db").stat().st_size == before

    # a corrupt model file
    bad = small / "out" / "broken.joblib"
    bad.write_bytes(b"not a model")
    proc = perpbot(["backtest", "--model-path", str(bad)], small)
    assert proc.returncode == 1 and "corrupt" in error_lines(proc)[0] and len(error_lines(proc)) == 1


def test_meta_strategy_train_and_backtest_beside_its_rule(small):
    proc = perpbot(["train", "--strategy", "meta:donchian"], small)
    assert proc.returncode == 0, proc.stderr
    model = small / "out" / "models" / "meta-donchian-logreg.joblib"
    assert model.exists() and Path(str(model) + ".json").exists() and "model saved" in proc.stdout
    proc = perpbot(["backtest", "--strategy", "meta:donchian", "--no-ledger"], small)
    assert proc.returncode == 0, proc.stderr
    header = next(line for line in proc.stdout.splitlines() if "meta:donchian" in line)
    for name in ("meta:donchian", "donchian", "buy-and-hold", "ema-cross", "scoring"):
        assert name in header
    # a rule has no model to train; an unknown strategy is refused before anything runs (usage error, exit 2)
    for args in (["train", "--strategy", "ema-cross"], ["backtest", "--strategy", "meta:macd"]):
        proc = perpbot(args, small)
        assert proc.returncode == 2 and len(error_lines(proc)) == 1 and "choose one of" in proc.stderr
