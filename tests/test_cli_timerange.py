"""``--timerange`` (freqtrade syntax) and ``--symbol`` on the real ../shared/data files.

The SOLUSDT 5m file runs from 2025-04-07 00:00 to 2026-01-31 23:55 UTC (its README); a month of
5m candles is 30 x 288 = 8,640 rows, and 300 warm-up candles are 25 h.
"""

from __future__ import annotations

import pandas as pd
import pytest
from _cli_helpers import error_lines, perpbot

from perpbot.cli.common import UsageError
from perpbot.cli.timerange import parse_timerange, select, symbol_id, unified

UTC = "UTC"


def test_parse_every_form():
    tr = parse_timerange("20250601-20251201")
    assert (tr.start, tr.end) == (pd.Timestamp("2025-06-01", tz=UTC), pd.Timestamp("2025-12-01", tz=UTC))
    assert parse_timerange("20250601-").end is None and parse_timerange("-20251201").start is None
    assert parse_timerange("1748736000-").start == pd.Timestamp("2025-06-01", tz=UTC)  # Unix seconds
    assert parse_timerange(None) is None


@pytest.mark.parametrize("text, needle", [
    ("2025-06-01", "not START-END"), ("-", "not START-END"), ("20251301-", "not a date"),
    ("20251201-20250601", "not before the end"), ("20250601-20250601", "not before the end"),
])
def test_malformed_ranges_are_usage_errors(text, needle):
    with pytest.raises(UsageError, match=needle):
        parse_timerange(text)


def test_select_cuts_to_the_range_with_the_warm_up_before_it(sol5m_path):
    from perpbot.data.market import load_market

    market = load_market(sol5m_path, "5m")
    june = select(market, parse_timerange("20250601-20250701"))
    ts = june.candles["timestamp"]
    assert len(june.candles) == 8640
    assert (ts.iloc[0], ts.iloc[-1]) == (pd.Timestamp("2025-06-01 00:00", tz=UTC),
                                         pd.Timestamp("2025-06-30 23:55", tz=UTC))
    warm = select(market, parse_timerange("20250601-20250701"), warmup_bars=300)
    assert len(warm.candles) == 8940 and warm.candles["timestamp"].iloc[0] == pd.Timestamp("2025-05-30 23:00", tz=UTC)
    tail = select(market, parse_timerange("20260131-"))
    assert len(tail.candles) == 288
    head = select(market, parse_timerange("-20250408"), warmup_bars=300)  # nothing before the file: from row 0
    assert len(head.candles) == 288 and head.candles["timestamp"].iloc[0] == pd.Timestamp("2025-04-07", tz=UTC)


def test_symbol_names():
    assert [symbol_id(s) for s in ("SOL/USDT:USDT", "solusdt", "BTC")] == ["SOLUSDT", "SOLUSDT", "BTCUSDT"]
    assert unified("BTCUSDT") == "BTC/USDT:USDT" and unified("ETH") == "ETH/USDT:USDT"


@pytest.fixture()
def cfg(tmp_path, sol5m_path, sol_funding_path, sol_mark8h_path):
    (tmp_path / "perpbot.toml").write_text(
        f'candles_file = "{sol5m_path}"\nfunding_file = "{sol_funding_path}"\nmark_file = "{sol_mark8h_path}"\n'
        'output_dir = "out"\n')
    return tmp_path


def _led(folder):
    from perpbot.storage.ledger import Ledger

    return Ledger(f"sqlite:///{folder / 'out' / 'perpbot.db'}")


def test_backtest_over_a_timerange_records_that_range(cfg):
    proc = perpbot(["backtest", "--strategy", "ema-cross", "--no-baselines", "--timerange", "20250601-20250603"], cfg)
    assert proc.returncode == 0, proc.stderr
    run = _led(cfg).get_run(1)
    assert run["data_range_start"] == pd.Timestamp("2025-05-30 23:00", tz=UTC)  # 300 warm-up candles before
    assert run["data_range_end"] == pd.Timestamp("2025-06-02 23:55", tz=UTC)


@pytest.mark.parametrize("args, code, needles", [
    (["--timerange", "20270101-"], 1, ["holds no candle", "2025-04-07 00:00 to 2026-01-31 23:55 UTC"]),
    (["--timerange", "-20240101"], 1, ["holds no candle"]),
    (["--timerange", "2025-06-01"], 2, ["--timerange '2025-06-01' is not START-END"]),
    (["--symbol", "BTC/USDT:USDT"], 1, ["no 5m candles of BTCUSDT", "15m, 1h, 1m"]),
    (["--symbol", "DOGE/USDT:USDT"], 1, ["no 5m candles of DOGEUSDT", "list-data"]),
])
def test_range_outside_the_data_or_unknown_symbol_is_one_line(cfg, args, code, needles):
    proc = perpbot(["backtest", "--strategy", "ema-cross", "--no-baselines", *args], cfg)
    assert proc.returncode == code, proc.stderr
    lines = error_lines(proc)
    assert len(lines) == 1 and all(n in lines[0] for n in needles), lines
    assert not (cfg / "out" / "perpbot.db").exists()


def test_symbol_picks_that_symbols_files(cfg):
    proc = perpbot(["backtest", "--strategy", "ema-cross", "--no-baselines", "--symbol", "BTC/USDT:USDT",
                    "--timerange", "20250601-20250615"], cfg, {"PERPBOT_TIMEFRAME": "1h"})
    assert proc.returncode == 0, proc.stderr
    run = _led(cfg).get_run(1)
    assert run["symbol"] == "BTC/USDT:USDT" and run["config"]["candles_file"].endswith("BTCUSDT-1h.parquet")
    assert run["config"]["funding_file"].endswith("BTCUSDT-funding.parquet")
    assert run["data_range_end"] == pd.Timestamp("2025-06-14 23:00", tz=UTC)
    proc = perpbot(["run", "--symbol", "SOL/USDT:USDT", "--timerange", "20250601-20250602", "--strategy", "ema-cross"],
                   cfg)
    assert proc.returncode == 0, proc.stderr
    paper = _led(cfg).get_run(2)
    assert paper["kind"] == "paper" and paper["data_range_end"] == pd.Timestamp("2025-06-01 23:55", tz=UTC)
