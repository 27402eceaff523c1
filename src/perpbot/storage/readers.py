"""Readers of the ledger: runs and every per-run table back as frames (tz-aware UTC times).

Mixed into :class:`perpbot.storage.ledger.Ledger`; uses its ``_read_txn`` / ``_check_run``
helpers (reads are retried while the database is locked, like writes).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from perpbot.storage.convert import db_rows_to_frame
from perpbot.storage.db import read_rows, reader_cols
from perpbot.storage.models import TABLES
from perpbot.types import TRADE_COLUMNS


class LedgerReaders:
    """Read runs and their rows (see :class:`perpbot.storage.ledger.Ledger`)."""

    def runs(self) -> pd.DataFrame:
        """All runs, oldest first: the columns of the runs table (status running | finished |
        failed | abandoned; config, metrics and checkpoint as dicts; owner_host / owner_pid /
        owner_started: the process that writes the run; status_detail: why abandoned / when resumed)."""
        runs = TABLES["runs"]
        rows = self._read_txn(lambda conn: conn.execute(sa.select(runs).order_by(runs.c.id)).all())
        return db_rows_to_frame(rows, reader_cols("runs", with_id=True))

    def get_run(self, run_id: int) -> dict[str, Any]:
        """One run as a dict (timestamps as tz-aware UTC ``pd.Timestamp``); UnknownRunError if absent."""
        run = self._run_dict(sa.select(TABLES["runs"]).where(TABLES["runs"].c.id == run_id))
        if run is None:
            raise self._unknown(run_id)
        return run

    def last_run(self, kind: str | None = None, strategy: str | None = None) -> dict[str, Any] | None:
        """The most recently started run (optionally of this kind / strategy), or None."""
        runs = TABLES["runs"]
        stmt = sa.select(runs).order_by(runs.c.started_at.desc(), runs.c.id.desc()).limit(1)
        if kind is not None:
            stmt = stmt.where(runs.c.kind == kind)
        if strategy is not None:
            stmt = stmt.where(runs.c.strategy == strategy)
        return self._run_dict(stmt)

    def trades(self, run_id: int) -> pd.DataFrame:
        """Trades in the ``TRADE_COLUMNS`` format (trade_id, side +1/-1, ...), by trade_id."""
        df = self._read("trades", run_id, order_by="trade_no")
        df = df.rename(columns={"trade_no": "trade_id"})
        df["side"] = df["side"].map({"long": 1, "short": -1}).astype(np.int64)
        return df[list(TRADE_COLUMNS)]

    def equity(self, run_id: int, full: bool = False) -> pd.Series | pd.DataFrame:
        """Equity (USDT) as a float Series named "equity" indexed by tz-aware UTC time; with
        ``full`` the frame (time index; equity, balance, position_qty)."""
        df = self._read("equity", run_id).set_index("time")
        return df if full else df["equity"]

    def predictions(self, run_id: int) -> pd.DataFrame:
        """Predictions by time (columns of the predictions table)."""
        return self._read("predictions", run_id)

    def risk_events(self, run_id: int) -> pd.DataFrame:
        """Risk events by time: time, bar, event, value, detail."""
        return self._read("risk_events", run_id)

    def funding(self, run_id: int) -> pd.DataFrame:
        """Funding payments by time: time, rate, mark_price, qty, amount."""
        return self._read("funding_payments", run_id)

    def orders(self, run_id: int) -> pd.DataFrame:
        """Orders by time (with their ``id``, which fills refer to as ``order_id``)."""
        return self._read("orders", run_id, with_id=True)

    def fills(self, run_id: int) -> pd.DataFrame:
        """Fills by time (with ``id`` and ``order_id``)."""
        return self._read("fills", run_id, with_id=True)

    def positions(self, run_id: int) -> pd.DataFrame:
        """Position snapshots by time."""
        return self._read("positions", run_id)

    # ------------------------------------------------------------------ internals

    def _read(self, table: str, run_id: int, order_by: str = "time", with_id: bool = False) -> pd.DataFrame:
        cols = reader_cols(table, with_id)
        rows = self._read_txn(lambda conn: read_rows(conn, table, self._check_run(conn, run_id), cols, order_by))
        return db_rows_to_frame(rows, cols)

    def _run_dict(self, stmt: sa.Select) -> dict[str, Any] | None:
        row = self._read_txn(lambda conn: conn.execute(stmt).mappings().first())
        return None if row is None else self._run_values(row)

    @staticmethod
    def _run_values(row: Any) -> dict[str, Any]:
        """A runs row as a dict, timestamps as tz-aware UTC ``pd.Timestamp``."""
        return {k: (pd.Timestamp(v) if isinstance(v, datetime) else v) for k, v in dict(row).items()}
