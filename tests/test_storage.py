"""Tests of the ledger (perpbot.storage): migrations == models, round trips on real SOLUSDT
timestamps and prices, derived orders/fills, JSON safety, redaction, errors, atomicity, speed.

Every test runs on SQLite (a file under tmp_path) and, when PERPBOT_TEST_POSTGRES_URL is set
(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test), on PostgreSQL in a fresh schema
that is dropped afterwards.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from perpbot.storage import (
    Ledger, LedgerConflictError, LedgerError, LedgerInputError, UnknownRunError, redact, split_fees,
)
from perpbot.storage.db import alembic_config
from perpbot.storage.models import metadata
from perpbot.platform.db import Base as PlatformBase  # the platform's tables share the database (migration 0003)
import perpbot.platform.ledger_models  # noqa: F401,E402  (registers the platform tables)
import perpbot.platform.models  # noqa: F401,E402
from perpbot.types import TRADE_COLUMNS, ExitReason, RiskEvent
from _ledger_urls import db_url  # noqa: F401  (fixture: a fresh SQLite file / PostgreSQL schema)

TABLE_NAMES = {"runs", "predictions", "orders", "fills", "trades", "positions", "equity", "risk_events",
               "funding_payments"}
PLATFORM_TABLES = set(PlatformBase.metadata.tables)
FEE_RATE = 0.0006  # Bitget taker fee


@pytest.fixture
def ledger(db_url):
    led = Ledger(db_url)
    yield led
    led.close()


def make_trades(sol5m: pd.DataFrame) -> pd.DataFrame:
    """Two trades entering and exiting at real 5m candle opens, Bitget taker fees on both legs."""
    ts, op = sol5m["timestamp"], sol5m["open"]
    rows = []
    for tid, side, qty, i, j, reason, lev in [(0, 1, 12.5, 1000, 1240, "signal", 5.0),
                                            (1, -1, 7.3, 2000, 2050, "stop_loss", 3.0)]:
        entry, exit_ = float(op[i]), float(op[j])
        fees = FEE_RATE * qty * entry + FEE_RATE * qty * exit_
        funding = 0.0123 * side
        gross = side * (exit_ - entry) * qty
        rows.append(dict(trade_id=tid, side=side, qty=qty, entry_time=ts[i], entry_price=entry,
                         exit_time=ts[j], exit_price=exit_, exit_reason=reason, gross_pnl=gross, fees=fees,
                         funding=funding, pnl=gross - fees - funding, entry_bar=i, exit_bar=j, leverage=lev,
                         margin=qty * entry / lev, stop_loss=exit_ if reason == "stop_loss" else entry * 0.98,
                         take_profit=entry * (1 + side * 0.04), liquidation_price=entry * (1 - side * 0.9 / lev)))
    return pd.DataFrame(rows, columns=list(TRADE_COLUMNS))


def _as_us(df: pd.DataFrame, cols) -> pd.DataFrame:
    return df.assign(**{c: df[c].dt.as_unit("us") for c in cols})


def test_migration_creates_exactly_the_models(ledger):
    with ledger.engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        assert tables == TABLE_NAMES | PLATFORM_TABLES | {"alembic_version"}
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == "0004"
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                 [metadata, PlatformBase.metadata])
        assert diffs == []
        # the comparison can fail: a model with one more column or index is reported
        drifted = sa.MetaData()
        for t in [*metadata.sorted_tables, *PlatformBase.metadata.sorted_tables]:
            t.to_metadata(drifted)
        drifted.tables["equity"].append_column(sa.Column("drawdown", sa.Double))
        sa.Index("ix_trades_entry_time", drifted.tables["trades"].c.entry_time)
        kinds = sorted(d[0] for d in compare_metadata(MigrationContext.configure(conn), drifted))
        assert kinds == ["add_column", "add_index"]


def test_upgrade_is_idempotent_and_keeps_data(db_url):
    led = Ledger(db_url)
    run = led.start_run("backtest", "ema-cross", "SOL/USDT:USDT", "5m")
    Ledger.upgrade(db_url)
    Ledger.upgrade(db_url)
    again = Ledger(db_url)
    assert again.get_run(run)["strategy"] == "ema-cross"
    with again.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    led.close()
    again.close()


def test_downgrade_to_base_and_upgrade_again(db_url):
    Ledger(db_url).close()
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    with engine.connect() as conn:
        assert set(sa.inspect(conn).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    again = Ledger(db_url)
    with again.engine.connect() as conn:
        assert set(sa.inspect(conn).get_table_names()) == TABLE_NAMES | PLATFORM_TABLES | {"alembic_version"}
    again.close()


def test_sqlite_parent_folder_is_created(tmp_path):
    path = tmp_path / "a" / "b" / "perpbot.db"
    Ledger(f"sqlite:///{path}").close()
    assert path.is_file()


def test_trades_round_trip_with_derived_orders_and_fills(ledger, sol5m):
    trades = make_trades(sol5m)
    run = ledger.start_run("backtest", "ema-cross", "SOL/USDT:USDT", "5m")
    assert ledger.record_trades(run, trades) == 2

    got = ledger.trades(run)
    assert list(got.columns) == list(TRADE_COLUMNS)
    for col in ("entry_time", "exit_time"):
        assert str(got[col].dtype) == "datetime64[us, UTC]"
    assert got["entry_time"].tolist() == [sol5m["timestamp"][1000], sol5m["timestamp"][2000]]
    assert got["side"].tolist() == [1, -1] and got["side"].dtype == np.int64
    pd.testing.assert_frame_equal(got, _as_us(trades, ["entry_time", "exit_time"]),
                                  check_exact=True, check_dtype=False)

    orders, fills = ledger.orders(run), ledger.fills(run)
    assert orders["client_order_id"].tolist() == [f"pb{run}-0-open", f"pb{run}-0-close",
                                                  f"pb{run}-1-open", f"pb{run}-1-close"]
    assert orders["side"].tolist() == ["buy", "sell", "sell", "buy"]
    assert orders["type"].tolist() == ["market", "market", "market", "stop"]
    assert orders["reduce_only"].tolist() == [False, True, False, True]
    assert orders["reason"].tolist() == ["entry", "signal", "entry", "stop_loss"]
    assert orders["status"].tolist() == ["filled"] * 4
    assert orders["trade_no"].tolist() == [0, 0, 1, 1]
    assert orders["price"].iloc[:3].isna().all() and orders["price"].iloc[3] == trades["stop_loss"][1]
    assert fills["order_id"].tolist() == orders["id"].tolist()
    assert fills["time"].tolist() == [trades["entry_time"][0], trades["exit_time"][0],
                                      trades["entry_time"][1], trades["exit_time"][1]]
    assert fills["qty"].tolist() == [12.5, 12.5, 7.3, 7.3]
    assert fills["price"].tolist() == [trades["entry_price"][0], trades["exit_price"][0],
                                       trades["entry_price"][1], trades["exit_price"][1]]
    assert fills["liquidity"].tolist() == ["taker"] * 4
    for k in (0, 1):
        entry_fee, exit_fee = fills["fee"][2 * k], fills["fee"][2 * k + 1]
        assert entry_fee + exit_fee == trades["fees"][k]  # exactly
        # same fee rate on both legs: the notional split gives back each leg's fee
        assert math.isclose(entry_fee, FEE_RATE * trades["qty"][k] * trades["entry_price"][k], rel_tol=1e-12)
        assert math.isclose(exit_fee, FEE_RATE * trades["qty"][k] * trades["exit_price"][k], rel_tol=1e-12)


def test_trades_with_leg_fees_and_exit_reason_codes(ledger, sol5m):
    trades = make_trades(sol5m)
    trades["exit_reason"] = [int(ExitReason.TAKE_PROFIT), int(ExitReason.LIQUIDATION)]
    trades["entry_fee"] = [0.25, 0.5]
    trades["exit_fee"] = [0.125, 0.0625]
    run = ledger.start_run("backtest", "ai", "SOL/USDT:USDT", "5m")
    ledger.record_trades(run, trades)
    assert ledger.trades(run)["exit_reason"].tolist() == ["take_profit", "liquidation"]
    orders, fills = ledger.orders(run), ledger.fills(run)
    assert orders["type"].tolist() == ["market", "take_profit", "market", "market"]
    assert orders["price"][1] == trades["take_profit"][0]
    assert fills["fee"].tolist() == [0.25, 0.125, 0.5, 0.0625]


def test_open_trade_gets_only_its_entry_order(ledger, sol5m):
    trade = make_trades(sol5m).iloc[:1].assign(exit_time=pd.NaT, exit_price=np.nan, exit_reason=None,
                                               exit_bar=np.nan, pnl=np.nan)
    run = ledger.start_run("paper", "ai", "SOL/USDT:USDT", "5m")
    ledger.record_trades(run, trade)
    got = ledger.trades(run)
    assert got["exit_time"].isna().all() and got["exit_bar"].isna().all() and got["exit_reason"].isna().all()
    assert got["entry_bar"].tolist() == [1000]
    assert ledger.orders(run)["client_order_id"].tolist() == [f"pb{run}-0-open"]
    assert ledger.fills(run)["fee"].tolist() == [trade["fees"].iloc[0]]


def test_split_fees_sums_exactly():
    rng = np.random.default_rng(7)
    for fees, qty, p0, p1 in rng.uniform([0.001, 0.01, 1, 1], [50, 1000, 500, 500], size=(2000, 4)):
        entry, exit_ = split_fees(fees, qty, p0, p1)
        assert entry + exit_ == fees
        assert math.isclose(entry, fees * p0 / (p0 + p1), rel_tol=1e-12)


def test_equity_86400_rows_round_trip(ledger, sol5m, db_url):
    close = sol5m["close"].to_numpy()
    eq = pd.DataFrame({"equity": 1000.0 * close / close[0], "balance": np.full(len(close), 1000.0),
                       "position_qty": np.where(np.arange(len(close)) % 7 == 0, np.nan, 1.5)},
                      index=pd.DatetimeIndex(sol5m["timestamp"]))
    run = ledger.start_run("backtest", "buy-and-hold", "SOL/USDT:USDT", "5m")
    assert ledger.record_equity(run, eq) == 86_400

    got = ledger.equity(run)
    assert got.name == "equity" and str(got.index.dtype) == "datetime64[us, UTC]"
    assert got.index.equals(pd.DatetimeIndex(sol5m["timestamp"]).as_unit("us"))
    assert np.array_equal(got.to_numpy(), eq["equity"].to_numpy())
    full = ledger.equity(run, full=True)
    assert np.array_equal(full["position_qty"].to_numpy(), eq["position_qty"].to_numpy(), equal_nan=True)
    # a Series works too, and times in another offset are stored as the same UTC instant
    run2 = ledger.start_run("backtest", "buy-and-hold", "SOL/USDT:USDT", "5m")
    ledger.record_equity(run2, eq["equity"].iloc[:3].tz_convert("Asia/Tokyo"))
    assert ledger.equity(run2).index.equals(eq.index[:3].as_unit("us"))


def test_predictions_risk_events_funding_round_trip(ledger, sol5m, sol_funding_path, sol_mark8h_path):
    ts = sol5m["timestamp"].iloc[500:505].reset_index(drop=True)
    p_up = np.array([0.5, 0.2, 0.7, 0.1, 0.34])
    preds = pd.DataFrame({"time": ts, "bar": range(500, 505), "p_down": 0.9 - p_up, "p_flat": 0.1, "p_up": p_up,
                          "confidence": np.maximum(p_up, 0.9 - p_up), "signal": [0, -1, 1, -1, 0],
                          "decision": ["hold", "sell", "vetoed:cooldown", "sell", "hold"],
                          "model_version": "lgbm-2025-01"})  # no features_hash: optional
    events = pd.DataFrame({"time": ts[:2], "bar": [501, 502], "event": [int(RiskEvent.COOLDOWN), "daily_loss_halt"],
                           "value": [3.0, -0.05]})
    funding = pd.read_parquet(sol_funding_path).iloc[:6]
    mark = pd.read_parquet(sol_mark8h_path)["open"].iloc[:6].to_numpy()
    qty = np.array([2.0, 2.0, -3.5, -3.5, 0.25, 0.25])
    funding = funding.assign(mark_price=mark, qty=qty, amount=qty * mark * funding["funding_rate"])
    run = ledger.start_run("paper", "ai", "SOL/USDT:USDT", "5m")
    counts = ledger.record_run_bulk(run, predictions=preds, risk_events=events, funding=funding)
    assert counts["predictions"] == 5 and counts["risk_events"] == 2 and counts["funding"] == 6

    got = ledger.predictions(run)
    unset = ["features_hash", "realised_label"]  # not given: NULL (the label comes once its horizon passed)
    pd.testing.assert_frame_equal(got.drop(columns=unset), _as_us(preds, ["time"])[got.columns.drop(unset)],
                                  check_exact=True, check_dtype=False)
    assert got[unset].isna().all().all()
    ev = ledger.risk_events(run)
    assert ev["event"].tolist() == ["cooldown", "daily_loss_halt"] and ev["value"].tolist() == [3.0, -0.05]
    assert ev["time"].tolist() == ts[:2].tolist() and ev["detail"].isna().all()
    fu = ledger.funding(run)
    assert fu["time"].tolist() == funding["timestamp"].tolist()
    assert fu["rate"].tolist() == funding["funding_rate"].tolist()
    assert fu["amount"].tolist() == (qty * mark * funding["funding_rate"].to_numpy()).tolist()


def test_config_and_metrics_are_json_safe(ledger, sol5m):
    first, last = sol5m["timestamp"].iloc[0], sol5m["timestamp"].iloc[-1]
    config = {"fee": np.float64(0.0006), "lev": np.int64(3), "nan": float("nan"), "inf": np.inf,
              "window": np.array([1, 2]), "start": first,
              "nested": {"exchange": {"api_key": "k", "x": np.float32(0.5)}}}
    run = ledger.start_run("backtest", "ai", "SOL/USDT:USDT", "5m", config=config, model_version="m1",
                           features_hash="abc", data_range=(first, last), note="smoke")
    ledger.finish_run(run, metrics={"sharpe": np.float64(1.25), "trades": np.int32(2), "pf": np.nan,
                                    "max_dd": -np.inf, "ok": np.bool_(True)})
    got = ledger.get_run(run)
    assert got["config"] == {"fee": 0.0006, "lev": 3, "nan": None, "inf": None, "window": [1, 2],
                             "start": "2025-04-07T00:00:00+00:00",
                             "nested": {"exchange": {"api_key": "***", "x": 0.5}}}
    assert got["metrics"] == {"sharpe": 1.25, "trades": 2, "pf": None, "max_dd": None, "ok": True}
    assert got["status"] == "finished" and got["data_range_start"] == first and got["data_range_end"] == last
    assert got["started_at"].tzinfo is not None and got["started_at"].utcoffset() == timedelta(0)
    assert got["started_at"] <= got["finished_at"] <= pd.Timestamp.now(tz="UTC")
    assert (got["model_version"], got["features_hash"], got["note"]) == ("m1", "abc", "smoke")
    with pytest.raises(LedgerInputError, match="config\\['bad'\\]"):
        ledger.start_run("backtest", "ai", "SOL/USDT:USDT", "5m", config={"bad": object()})


def test_redact_is_recursive_and_copies():
    cfg = {"exchange": {"API_KEY": "k", "secret": "s", "passphrase": "p", "name": "bitget"},
           "db": {"url": "sqlite://", "db-password": "pw"}, "telegram_token": "t",
           "accounts": [{"apiKey": "x", "label": "main"}], "max_leverage": 3, "token_budget": None}
    out = redact(cfg)
    assert out == {"exchange": {"API_KEY": "***", "secret": "***", "passphrase": "***", "name": "bitget"},
                   "db": {"url": "sqlite://", "db-password": "***"}, "telegram_token": "***",
                   "accounts": [{"apiKey": "***", "label": "main"}], "max_leverage": 3, "token_budget": None}
    assert cfg["exchange"]["API_KEY"] == "k"  # input untouched


def test_unknown_run_id_raises_clear_error(ledger, sol5m):
    with pytest.raises(LedgerError, match="run 999 is not in the ledger"):
        ledger.get_run(999)
    for call in (lambda: ledger.trades(999), lambda: ledger.finish_run(999),
                 lambda: ledger.record_equity(999, pd.Series([1.0], index=sol5m["timestamp"][:1]))):
        with pytest.raises(KeyError):
            call()
    assert isinstance(UnknownRunError("x"), KeyError) and str(UnknownRunError("x")) == "x"
    assert ledger.last_run() is None


def test_record_run_bulk_is_atomic(ledger, sol5m):
    trades = make_trades(sol5m)
    eq = pd.Series(1000.0, index=sol5m["timestamp"][:1000])
    preds = pd.DataFrame({"time": sol5m["timestamp"][:10], "p_up": 0.5})
    run = ledger.start_run("backtest", "ai", "SOL/USDT:USDT", "5m")
    ledger.record_trades(run, trades)
    # trades come last and clash with the ones already recorded: the database refuses them
    with pytest.raises(LedgerConflictError, match="nothing was written"):
        ledger.record_run_bulk(run, equity=eq, predictions=preds, trades=trades)
    assert ledger.equity(run).empty and ledger.predictions(run).empty
    assert len(ledger.trades(run)) == 2 and len(ledger.orders(run)) == 4 and len(ledger.fills(run)) == 4
    # bad input is refused before anything is written
    with pytest.raises(LedgerInputError, match="missing required column 'qty'"):
        ledger.record_run_bulk(run, equity=eq, trades=trades.drop(columns="qty"))
    with pytest.raises(LedgerInputError, match="naive"):
        ledger.record_run_bulk(run, equity=eq, predictions=preds.assign(time=preds["time"].dt.tz_localize(None)))
    assert ledger.equity(run).empty


def test_single_row_writers_for_the_live_loop(ledger, sol5m):
    t0, t1 = sol5m["timestamp"][10], sol5m["timestamp"][11]
    run = ledger.start_run("live", "ai", "SOL/USDT:USDT", "5m", exchange="bitget")
    other = ledger.start_run("paper", "ai", "SOL/USDT:USDT", "5m")
    oid = ledger.record_order(run, client_order_id="pb-live-1", time=t0, side="buy", type="limit", qty=1.2,
                              price=131.5, reason="entry", trade_no=0)
    with pytest.raises(LedgerConflictError, match="nothing was written"):
        ledger.record_order(run, client_order_id="pb-live-1", time=t0, side="buy", type="market", qty=1.2)
    with pytest.raises(LedgerInputError, match="order side 'long'"):
        ledger.record_order(run, client_order_id="pb-live-2", time=t0, side="long", type="market", qty=1)
    with pytest.raises(LedgerInputError, match="unknown fields \\['prce'\\]"):
        ledger.record_order(run, client_order_id="pb-live-3", time=t0, side="buy", type="limit", qty=1, prce=2)
    ledger.update_order("pb-live-1", status="filled", exchange_order_id="1234567")
    fid = ledger.record_fill(run, oid, t1, "buy", 1.2, 131.5, fee=0.03156, liquidity="maker")
    with pytest.raises(LedgerInputError, match="does not belong to run"):
        ledger.record_fill(other, oid, t1, "buy", 1.2, 131.5)
    with pytest.raises(LedgerInputError, match="naive"):
        ledger.record_fill(run, oid, datetime(2025, 5, 1), "buy", 1.2, 131.5)
    ledger.record_position(run, time=t1, side=1, qty=1.2, entry_price=131.5, mark_price=131.7,
                           unrealized_pnl=1.2 * 0.2)
    ledger.record_equity(run, pd.Series([1000.0], index=[t1]))  # bulk path, same instant as the position
    with ledger.engine.connect() as conn:  # both write paths store the same time the same way
        same = "SELECT count(*) FROM equity e JOIN positions p ON e.time = p.time AND e.run_id = p.run_id"
        assert conn.execute(sa.text(same)).scalar_one() == 1
    orders, fills, pos = ledger.orders(run), ledger.fills(run), ledger.positions(run)
    assert orders[["id", "status", "exchange_order_id", "price", "reduce_only"]].values.tolist() == [
        [oid, "filled", "1234567", 131.5, False]]
    assert fills[["id", "order_id", "fee", "liquidity"]].values.tolist() == [[fid, oid, 0.03156, "maker"]]
    assert fills["time"].tolist() == [t1] and pos["side"].tolist() == ["long"]
    assert pos["unrealized_pnl"].tolist() == [1.2 * 0.2] and np.isnan(pos["margin"][0])


def test_runs_and_last_run(ledger):
    a = ledger.start_run("backtest", "ema-cross", "SOL/USDT:USDT", "5m")
    b = ledger.start_run("paper", "ai", "SOL/USDT:USDT", "5m")
    c = ledger.start_run("backtest", "ai", "SOL/USDT:USDT", "1h")
    ledger.finish_run(a, status="failed")
    runs = ledger.runs()
    assert runs["id"].tolist() == [a, b, c] and runs["status"].tolist() == ["failed", "running", "running"]
    assert str(runs["started_at"].dtype) == "datetime64[us, UTC]"
    assert ledger.last_run()["id"] == c
    assert ledger.last_run(kind="paper")["id"] == b
    assert ledger.last_run(kind="backtest", strategy="ema-cross")["id"] == a
    assert ledger.last_run(kind="live") is None
    with pytest.raises(LedgerInputError, match="run kind 'walk'"):
        ledger.start_run("walk", "ai", "SOL/USDT:USDT", "5m")
    with pytest.raises(LedgerInputError, match="final run status"):
        ledger.finish_run(a, status="done")
    assert datetime.now(timezone.utc) >= ledger.get_run(a)["finished_at"]


def test_live_trades_are_written_without_derived_orders(tmp_path, sol5m):
    """Live runs record their real orders and fills as they happen: trades must not add synthetic ones."""
    led = Ledger(f"sqlite:///{tmp_path / 'live.db'}")
    run = led.start_run("live", "ai", "SOL/USDT:USDT", "5m")
    t = sol5m["timestamp"]
    trade = pd.DataFrame([{"trade_id": 1, "side": 1, "qty": 2.0, "entry_time": t.iloc[10], "entry_price": 100.0,
                           "exit_time": t.iloc[20], "exit_price": 101.0, "exit_reason": "take_profit",
                           "gross_pnl": 2.0, "fees": 0.2406, "funding": 0.0, "pnl": 1.7594}])
    counts = led.record_run_bulk(run, trades=trade, derive_orders=False)
    assert (counts["trades"], counts["orders"], counts["fills"]) == (1, 0, 0)
    assert len(led.trades(run)) == 1 and len(led.orders(run)) == 0 and len(led.fills(run)) == 0
    assert led.record_run_bulk(run, trades=trade.assign(trade_id=2))["orders"] == 2  # default: derived
