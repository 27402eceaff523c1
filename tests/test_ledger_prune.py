"""``perpbot ledger prune --keep-days N``: per-cycle rows older than N days go, the money record stays."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pytest

from perpbot.storage import Ledger
from perpbot.storage.retention import prune_cutoff, prune_ledger
from _cli_helpers import perpbot
from _ledger_urls import db_url  # noqa: F401  (fixture: a fresh SQLite file / PostgreSQL schema)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def _filled(url: str, last=pd.Timestamp("2026-12-01 12:00", tz="UTC")) -> tuple[Ledger, int]:
    led = Ledger(url)
    rid = led.start_run("live", "ai", "SOL/USDT:USDT", "5m")
    # one prediction and one position snapshot per day for 41 days up to ``last`` (2026-10-22 .. 2026-12-01 12:00)
    times = pd.date_range(end=last, periods=41, freq="1D")
    led.record_predictions(rid, pd.DataFrame({"time": times, "p_down": 0.2, "p_flat": 0.5, "p_up": 0.3,
                                              "confidence": 0.5, "signal": 0, "decision": "hold"}))
    for t in times:
        led.record_position(rid, time=t, side="flat", qty=0.0)
    led.record_trades(rid, pd.DataFrame({
        "trade_id": [1], "entry_time": [times[0]], "exit_time": [times[1]], "side": ["long"], "qty": [1.0],
        "entry_price": [150.0], "exit_price": [151.0], "pnl": [1.0], "fees": [0.18], "funding": [0.0],
        "exit_reason": ["take_profit"]}))
    led.record_equity(rid, pd.Series([1000.0] * len(times), index=times))
    return led, rid


def test_prune_keeps_the_last_n_days_of_cycle_rows_and_every_trade_and_equity_row(db_url):
    led, rid = _filled(db_url)
    # cut-off 2026-11-01 12:00: the 10 days 2026-10-22 .. 2026-10-31 are older (11-01 12:00 itself stays)
    assert prune_cutoff(30, NOW) == datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
    assert prune_ledger(led, 30, now=NOW, dry_run=True) == {"predictions": 10, "positions": 10}
    assert len(led.predictions(rid)) == 41  # a dry run deletes nothing
    assert prune_ledger(led, 30, now=NOW) == {"predictions": 10, "positions": 10}
    assert len(led.predictions(rid)) == 31 and len(led.positions(rid)) == 31
    assert led.predictions(rid)["time"].min() == pd.Timestamp("2026-11-01 12:00", tz="UTC")
    assert len(led.trades(rid)) == 1 and len(led.equity(rid)) == 41  # the money record is kept
    assert prune_ledger(led, 30, now=NOW) == {"predictions": 0, "positions": 0}  # idempotent
    led.close()


@pytest.mark.parametrize("days", [0, -3])
def test_prune_refuses_less_than_one_day(days, tmp_path):
    with pytest.raises(ValueError, match="keep-days must be a whole number of days >= 1"):
        prune_cutoff(days, NOW)
    r = perpbot(["ledger", "prune", "--keep-days", days], cwd=tmp_path)
    assert r.returncode == 2 and "error: --keep-days must be a whole number of days >= 1" in r.stderr


def test_prune_command_reports_what_it_deleted(tmp_path):
    url = f"sqlite:///{tmp_path / 'runs' / 'perpbot.db'}"
    # the last rows 12 h before now: rows k days older are pruned when k days + 12 h > 30 days, k = 30..40
    led, rid = _filled(url, last=pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=12))
    led.close()
    r = perpbot(["ledger", "prune", "--keep-days", "30"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("deleted 11 predictions, 11 positions older than"), r.stdout
    led = Ledger(url)
    assert len(led.predictions(rid)) == 30 and len(led.trades(rid)) == 1
    led.close()
