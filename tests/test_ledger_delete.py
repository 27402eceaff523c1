"""``Ledger.delete_runs`` (``perpbot runs delete``) on SQLite and PostgreSQL: a run and every row it
owns go, other runs stay whole, an unknown id deletes nothing."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from _ledger_urls import db_url  # noqa: F401  (fixture: a fresh SQLite file / PostgreSQL schema)
from test_storage import make_trades

from perpbot.storage.ledger import Ledger, UnknownRunError
from perpbot.storage.models import TABLES


def _counts(led: Ledger, run_id: int) -> dict[str, int]:
    with led.engine.connect() as conn:
        return {name: conn.execute(sa.select(sa.func.count()).select_from(t).where(t.c.run_id == run_id)).scalar_one()
                for name, t in TABLES.items() if "run_id" in t.c}


def test_delete_runs_removes_the_run_and_its_rows_only(db_url, sol5m):  # noqa: F811
    led = Ledger(db_url)
    try:
        trades = make_trades(sol5m)
        eq = pd.Series(1000.0, index=sol5m["timestamp"][:500])
        runs = []
        for _ in range(3):
            run = led.start_run("backtest", "ema-cross", "SOL/USDT:USDT", "5m")
            led.record_run_bulk(run, trades=trades, equity=eq,
                                predictions=pd.DataFrame({"time": sol5m["timestamp"][:10], "p_up": 0.5}))
            led.finish_run(run)
            runs.append(run)
        before = _counts(led, runs[0])
        # 2 trades -> 4 orders and 4 fills (entry and exit of each), 500 equity rows, 10 predictions
        assert (before["trades"], before["orders"], before["fills"], before["equity"], before["predictions"]) == \
            (2, 4, 4, 500, 10)
        with pytest.raises(UnknownRunError):
            led.delete_runs([runs[1], 999])
        assert list(led.runs()["id"]) == runs  # nothing deleted
        assert led.delete_runs([runs[1], runs[2]]) == 2
        assert list(led.runs()["id"]) == [runs[0]]
        assert set(_counts(led, runs[1]).values()) == {0} and set(_counts(led, runs[2]).values()) == {0}
        assert _counts(led, runs[0]) == before
    finally:
        led.close()
