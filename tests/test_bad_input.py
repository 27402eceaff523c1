"""Every bad input of the README's table, as a user meets it: real subprocesses of ``python -m perpbot``.

Each case must give exactly one ``error:`` line on stderr (never a traceback), the documented
exit code (2: usage or configuration, 1: data or runtime) and write nothing (no ledger, no
report, no log). The data is a slice of the real SOLUSDT 5m candles; broken files are made
from it by changing one value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _cli_helpers import error_lines, perpbot, written

from perpbot.strategy.signals import STRATEGIES

EMA = ["backtest", "--strategy", "ema-cross", "--no-baselines"]


@pytest.fixture(scope="module")
def real(tmp_path_factory, sol5m, sol_funding_path, sol_mark8h_path):
    """3,000 real 5m candles and the real funding / mark files (paths for a config)."""
    d = tmp_path_factory.mktemp("badinput")
    sol5m.iloc[:3000].to_parquet(d / "candles.parquet")
    return {"dir": d, "candles": d / "candles.parquet", "funding": sol_funding_path, "mark": sol_mark8h_path,
            "frame": sol5m.iloc[:3000].reset_index(drop=True)}


def folder(tmp_path, real, extra: str = "", candles=None, table: bool = True) -> "pathlib.Path":  # noqa: F821
    """tmp_path with a perpbot.toml over the real files (``extra`` lines added to the table)."""
    body = (f'candles_file = "{candles or real["candles"]}"\nfunding_file = "{real["funding"]}"\n'
            f'mark_file = "{real["mark"]}"\noutput_dir = "out"\n{extra}')
    (tmp_path / "perpbot.toml").write_text(("[perpbot]\n" if table else "") + body)
    return tmp_path


def fails(proc, code: int, *needles: str) -> str:
    """Assert exit ``code`` and one ``error:`` line containing every needle; return the line."""
    lines = error_lines(proc)
    assert proc.returncode == code, (proc.returncode, proc.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "Traceback" not in proc.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


# ------------------------------------------------------------------------ configuration (exit 2)
def test_config_path_that_is_a_folder_is_one_line_exit_2(tmp_path):
    (tmp_path / "conf").mkdir()
    fails(perpbot(["backtest", "-c", "conf"], tmp_path), 2, "config file conf is a folder")
    assert written(tmp_path) == []


def test_perpbot_key_that_is_not_a_table_is_one_line_exit_2(tmp_path):
    (tmp_path / "p.toml").write_text("perpbot = 5\n")
    fails(perpbot(["backtest", "-c", "p.toml"], tmp_path), 2, "p.toml", "'perpbot' must be a table", "an integer")


def test_top_level_keys_beside_a_perpbot_table_are_an_error_not_dropped(tmp_path, real):
    # before: the top-level risk settings were silently dropped and the run used the defaults
    folder(tmp_path, real, table=True)
    text = (tmp_path / "perpbot.toml").read_text()
    (tmp_path / "perpbot.toml").write_text("max_drawdown = 5.0\nrisk_per_trade = 0.5\n" + text)
    line = fails(perpbot(EMA, tmp_path), 2, "both under [perpbot] and at top level", "max_drawdown", "risk_per_trade")
    assert "[perpbot]" in line  # Rich markup does not eat the table name
    assert written(tmp_path) == []


def test_settings_all_at_top_level_still_work(tmp_path, real):
    folder(tmp_path, real, "leverage = 200\n", table=False)
    fails(perpbot(EMA, tmp_path), 2, "leverage = 200", "<= 125")


def test_unknown_environment_variable_is_an_error_with_a_suggestion(tmp_path, real):
    folder(tmp_path, real)
    # before: PERPBOT_STOPLOSS was ignored and the run traded with the default 1 % stop
    line = fails(perpbot(EMA, tmp_path, {"PERPBOT_STOPLOSS": "0.5", "PERPBOT_MAX_DRAWDWN": "3"}), 2,
                 "PERPBOT_STOPLOSS (did you mean PERPBOT_STOP_LOSS?)", "PERPBOT_MAX_DRAWDWN (did you mean "
                 "PERPBOT_MAX_DRAWDOWN?)")
    assert "0.5" not in line  # names only, never values (a mistyped secret would be printed)
    assert written(tmp_path) == []


def test_unknown_toml_key_is_an_error_with_a_suggestion(tmp_path, real):
    folder(tmp_path, real, "stoploss = 0.5\n")
    fails(perpbot(EMA, tmp_path), 2, "unknown setting 'stoploss' (did you mean 'stop_loss'?)")


def test_variables_perpbot_reads_for_itself_are_not_unknown_settings(tmp_path, real):
    folder(tmp_path, real)
    env = {"PERPBOT_CONFIRM_REAL_MONEY": "no", "PERPBOT_REQUIRE_DATA": "1", "PERPBOT_TEST_POSTGRES_URL": "x",
           "PERPBOT_CONFIG": str(tmp_path / "perpbot.toml"), "PERPBOT_STOP_LOSS": "0.8"}
    proc = perpbot([*EMA, "--no-ledger"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr


def test_boolean_is_refused_for_a_number(tmp_path, real):
    # before: leverage = true ran at 1x
    folder(tmp_path, real, "leverage = true\n")
    fails(perpbot(EMA, tmp_path), 2, "leverage", "expected a number, got a boolean")
    assert written(tmp_path) == []


def test_invalid_utf8_config_names_the_file_and_line(tmp_path):
    (tmp_path / "latin1.toml").write_bytes('model = "logreg"\n# caf\xe9\n'.encode("latin-1"))
    fails(perpbot(["backtest", "-c", "latin1.toml"], tmp_path), 2, "latin1.toml", "not UTF-8", "line 2")


def test_config_with_a_byte_order_mark_is_read(tmp_path, real):
    folder(tmp_path, real, "leverage = 200\n")
    toml = tmp_path / "perpbot.toml"
    toml.write_bytes(b"\xef\xbb\xbf" + toml.read_bytes())  # Windows Notepad's UTF-8
    fails(perpbot(EMA, tmp_path), 2, "leverage = 200")  # the file was read: its own value is refused


@pytest.mark.parametrize("where, value", [("env", "12,x"), ("toml", '["abc"]'), ("toml", "[true]")])
def test_non_integer_telegram_chat_ids_are_a_config_error(tmp_path, real, where, value):
    folder(tmp_path, real, f"telegram_chat_ids = {value}\n" if where == "toml" else "")
    env = {"PERPBOT_TELEGRAM_CHAT_IDS": value} if where == "env" else {}
    fails(perpbot(["trades"], tmp_path, env), 2, "telegram_chat_ids")
    assert written(tmp_path) == []


@pytest.mark.parametrize("line, needle", [
    ("lot_size = inf", "finite"), ("min_notional = inf", "finite"), ("tick_size = 1e-300", "tick_size"),
    ("min_notional = 50000.0", "no order could ever be placed"),
])
def test_absurd_market_rules_are_refused_before_simulating(tmp_path, real, line, needle):
    # before: lot_size = inf simulated the whole run and then failed on a non-finite equity
    folder(tmp_path, real, line + "\n")
    fails(perpbot(EMA, tmp_path), 2, needle)
    assert written(tmp_path) == []


def test_funding_file_none_runs_without_funding(tmp_path, real):
    folder(tmp_path, real)
    toml = tmp_path / "perpbot.toml"
    toml.write_text(toml.read_text().replace(f'funding_file = "{real["funding"]}"', 'funding_file = "none"'))
    proc = perpbot([*EMA, "--no-ledger"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    paid = [ln for ln in proc.stdout.splitlines() if "funding_paid" in ln]
    assert len(paid) == 1 and paid[0].split("│")[2].strip() == "0.00 USDT", paid


def test_missing_optional_file_says_how_to_turn_it_off(tmp_path, real):
    folder(tmp_path, real)
    toml = tmp_path / "perpbot.toml"
    toml.write_text(toml.read_text().replace(str(real["funding"]), str(tmp_path / "nope.parquet")))
    fails(perpbot(EMA, tmp_path), 1, "nope.parquet", 'set funding_file = "none"')


@pytest.mark.parametrize("url, code, needle", [
    ("garbage", 2, "ledger_url"), ("nosuchdb://x/y", 2, "unknown database dialect"),
    ("postgresql+psycopg://postgres@127.0.0.1:1/test", 1, "cannot open the ledger"),
])
def test_bad_or_unreachable_ledger_url_is_one_line(tmp_path, real, url, code, needle):
    folder(tmp_path, real)
    fails(perpbot(["trades"], tmp_path, {"PERPBOT_LEDGER_URL": url}), code, needle)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------- usage (exit 2)
@pytest.mark.parametrize("args", [
    ["backtest", "--strategy", "nope"], ["run", "--replay", "candles.parquet", "--strategy", "nope"],
    ["run", "--mode", "live", "--strategy", "nope"], ["serve", "--strategy", "nope"],
])
def test_unknown_strategy_is_refused_before_anything_is_sent_or_written(tmp_path, real, args):
    # before: paper failed after 299 candles with a half-written run; live connected and failed every cycle
    folder(tmp_path, real)
    (tmp_path / "candles.parquet").write_bytes(real["candles"].read_bytes())
    line = fails(perpbot(args, tmp_path, {"PERPBOT_API_TOKEN": "x" * 32}), 2, "'nope'")
    assert all(name in line for name in STRATEGIES)
    assert written(tmp_path) == []


def test_run_id_beyond_the_ledger_range_is_one_line(tmp_path, real):
    folder(tmp_path, real)
    fails(perpbot(["trades", "--run-id", str(10**30)], tmp_path), 2, "--run-id", str(10**30))


@pytest.mark.parametrize("args", [[*EMA, "--report", "reports"], ["report", "--output", "reports"]])
def test_output_path_that_is_a_folder_is_refused_before_any_work(tmp_path, real, args):
    # before: backtest --report DIR recorded its runs in the ledger, then crashed writing the report
    folder(tmp_path, real)
    (tmp_path / "reports").mkdir()
    fails(perpbot(args, tmp_path), 2, "reports is a folder")
    assert written(tmp_path) == []


def test_output_path_under_a_file_is_refused(tmp_path, real):
    folder(tmp_path, real)
    (tmp_path / "afile").write_text("x")
    fails(perpbot([*EMA, "--report", "afile/r.html"], tmp_path), 2, "afile is a file")
    assert written(tmp_path) == ["afile"]


# ----------------------------------------------------------------------------- data (exit 1)
@pytest.mark.parametrize("case, row, needle", [
    ("price 1e300", 1500, "outside [1e-12, 1e+09]"),
    ("mis-scaled row", 1500, "100x"),
    ("volume 1e300", 7, "volume above"),
])
def test_absurd_candle_is_refused_naming_file_and_row(tmp_path, real, case, row, needle):
    # before: a 1e300 candle was backtested without a word
    df = real["frame"].copy()
    if case == "price 1e300":
        df.loc[row, "high"] = 1e300
    elif case == "mis-scaled row":
        df.loc[row, ["open", "high", "low", "close"]] *= 1000
    else:
        df.loc[row, "volume"] = 1e300
    path = tmp_path / "broken.parquet"
    df.to_parquet(path)
    folder(tmp_path, real, candles=path)
    fails(perpbot(EMA, tmp_path), 1, str(path), needle, f"(row {row}")
    assert written(tmp_path) == []


def test_absurd_funding_rate_is_refused(tmp_path, real):
    # before: a funding rate of 5.0 per 8 h was applied and negative fees were recorded
    f = pd.read_parquet(real["funding"])
    f.loc[10, "funding_rate"] = 5.0
    f.to_parquet(tmp_path / "funding.parquet")
    folder(tmp_path, real)
    toml = tmp_path / "perpbot.toml"
    toml.write_text(toml.read_text().replace(str(real["funding"]), str(tmp_path / "funding.parquet")))
    fails(perpbot(EMA, tmp_path), 1, "funding.parquet", "funding_rate", "first 5 at", "row 10")
    assert written(tmp_path) == []


@pytest.mark.parametrize("rows, warmup, need", [(1, 300, 310), (50, 300, 310), (2000, 2500, 2510), (9, 0, 10)])
def test_too_few_candles_for_the_warm_up_is_refused(tmp_path, real, rows, warmup, need):
    # before: 0 trades and no word; warm-up longer than the data silently traded nothing
    path = tmp_path / "short.parquet"
    real["frame"].iloc[:rows].to_parquet(path)
    folder(tmp_path, real, f"warmup_bars = {warmup}\n", candles=path)
    fails(perpbot(EMA, tmp_path), 1, f"{rows} candle(s)", f"at least {need}")
    assert written(tmp_path) == []


def test_paper_replay_of_too_few_candles_writes_no_run(tmp_path, real):
    folder(tmp_path, real)
    proc = perpbot(["run", "--replay", real["candles"], "--last", "100", "--strategy", "ema-cross"], tmp_path)
    fails(proc, 1, "100 candle(s)", "at least 310")
    assert written(tmp_path) == []


def test_every_real_data_file_passes_the_sanity_limits(data_dir):
    from perpbot.data import load_candles, load_funding

    files = sorted(data_dir.glob("*.parquet"))
    assert len(files) >= 15
    for path in files:
        frame = load_funding(path) if "funding" in path.name else load_candles(path)
        assert len(frame) > 1000 and np.isfinite(frame.iloc[:, 1:].to_numpy()).all()


# ---------------------------------------------------- the rest of the README's table, and the grammar
@pytest.mark.parametrize("args, code, needles", [
    (["backtest", "-c", "missing.toml"], 2, ["config file missing.toml not found"]),
    (["trades", "--limit", "0"], 2, ["--limit must be >= 1, got 0"]),
    (["run", "--replay", "candles.parquet", "--last", "0"], 2, ["--last must be >= 1, got 0"]),
    (["run", "--mode", "dry"], 2, ["--mode 'dry'", "paper or live"]),
    (["train", "--model", "lgbm"], 2, ["'lgbm' is not a model", "lightgbm", "logreg"]),
    (["train", "--model", "ligthgbm"], 2, ["(did you mean 'lightgbm'?)"]),
    (["backtest", "--strategy", "ema_cross"], 2, ["(did you mean 'ema-cross'?)"]),
    (["train", "--strategy", "ema-cross"], 2, ["is not a model strategy", "meta:donchian"]),
    (["backtest", "--no-such-option"], 2, ["No such option", "--no-such-option", "perpbot backtest --help"]),
    (["bakctest"], 2, ["No such command", "bakctest"]),
    (["trades", "--limit", "many"], 2, ["'--limit'", "valid integer"]),
    (["backtest", "--report"], 2, ["--report", "requires an argument"]),
])
def test_usage_errors_are_one_line_exit_2_and_write_nothing(tmp_path, real, args, code, needles):
    folder(tmp_path, real)
    (tmp_path / "candles.parquet").write_bytes(real["candles"].read_bytes())
    fails(perpbot(args, tmp_path), code, *needles)
    assert written(tmp_path) == []


@pytest.mark.parametrize("body, needles", [
    ("leverage = = 3\n", ["p.toml is not valid TOML", "line 1"]),
    ('api_key = "abc123"\n', ["contains 'api_key'", "PERPBOT_API_KEY"]),
])
def test_config_file_not_toml_or_holding_a_secret_is_exit_2(tmp_path, body, needles):
    (tmp_path / "p.toml").write_text(body)
    line = fails(perpbot(["backtest", "-c", "p.toml"], tmp_path), 2, *needles)
    assert "abc123" not in line
    assert written(tmp_path) == ["p.toml"]


def test_missing_candles_file_is_a_data_error_exit_1(tmp_path, real):
    folder(tmp_path, real, candles=tmp_path / "gone.parquet")
    fails(perpbot(EMA, tmp_path), 1, "gone.parquet")
    assert written(tmp_path) == []


def test_version_and_the_choices_in_help(tmp_path):
    from importlib.metadata import version

    proc = perpbot(["--version"], tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == "perpbot 0.1.0" == f"perpbot {version('perpbot')}"
    proc = perpbot(["backtest", "--help"], tmp_path, {"COLUMNS": "300"})
    assert proc.returncode == 0 and "[ai|ema-cross|scoring|buy-and-hold|donchian|meta:ema-cross|" in proc.stdout
    proc = perpbot(["train", "--help"], tmp_path, {"COLUMNS": "300"})
    assert "[logreg|random_forest|xgboost|lightgbm|ensemble|lstm]" in proc.stdout


@pytest.mark.parametrize("case, needle", [
    ("unsorted", "not sorted"), ("duplicated", "duplicate"), ("nan", "NaN"),
])
def test_unsorted_duplicated_or_nan_candles_are_refused(tmp_path, real, case, needle):
    df = real["frame"].copy()
    if case == "unsorted":
        df.iloc[[100, 101]] = df.iloc[[101, 100]].to_numpy()
    elif case == "duplicated":
        df = pd.concat([df.iloc[:201], df.iloc[200:]], ignore_index=True)
    else:
        df.loc[200, "close"] = np.nan
    path = tmp_path / "broken.parquet"
    df.to_parquet(path)
    folder(tmp_path, real, candles=path)
    line = fails(perpbot(EMA, tmp_path), 1, "error: data: ", str(path))
    assert needle.lower() in line.lower(), line
    assert written(tmp_path) == []
