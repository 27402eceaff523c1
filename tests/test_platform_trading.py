"""The platform's order flow (perpbot.platform.trading): a real process killed with SIGKILL
between locking margin and sending the order (and while sending) leaves no money stuck after the
restart's reconciliation; risk-profile refusals; user stats from the ledger; a backtest per risk
profile on real SOLUSDT candles."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from _platform_db import db_url, engine, make_user  # noqa: F401  (fixtures)

from perpbot.platform.chain import verify_journal
from perpbot.platform.ledger_models import PlatformOrder
from perpbot.platform.profiles import DEFAULTS, Profiles, backtest_profiles, settings_overrides
from perpbot.platform.stats import user_stats
from perpbot.platform.trading import FillReport, OrderRefused, OrderRequest, TradeDesk
from perpbot.platform.wallet import Wallet

D = Decimal
SYMBOL = "SOL/USDT:USDT"
CHILD = Path(__file__).with_name("_platform_crash.py")


@pytest.fixture(scope="module")
def price(sol5m):
    return D(str(sol5m["close"].to_numpy()[2000]))


def crash_child(url, uid, price, stage, marker):
    """Run the child until it prints ``marker``, then SIGKILL it."""
    env = {**os.environ, "PYTHONPATH": str(CHILD.parent)}
    proc = subprocess.Popen([sys.executable, str(CHILD), url, str(uid), str(price), stage], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        for line in proc.stdout:
            if line.startswith(marker):
                break
        else:
            pytest.fail(f"child ended without {marker}: {proc.stderr.read()[-2000:]}")
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def test_kill_9_between_lock_and_send_leaves_no_money_stuck(db_url, price):
    from perpbot.platform.db import open_engine

    engine = open_engine(db_url)
    wallet = Wallet(engine)
    uid = make_user(engine, "crash")
    wallet.deposit(uid, "USDT", 1000, "d")
    margin = (D("0.5") * price / 2).quantize(D("1e-18"))
    crash_child(db_url, uid, price, "lock", "LOCKED")
    assert wallet.balances(uid)["USDT"] == {"available": 1000 - margin, "locked": margin}  # stuck
    desk = TradeDesk(engine, wallet, Profiles(engine))
    assert desk.reconcile(max_age_s=3600) == []  # a fresh lock may belong to a live process: kept
    acted = desk.reconcile(max_age_s=0)  # the restart: locks older than N seconds without an order sent
    assert [(a["client_order_id"], a["status_before"], a["action"]) for a in acted] == [("crash-lock", "locked", "released")]
    assert wallet.balances(uid)["USDT"] == {"available": D(1000), "locked": D(0)}
    assert desk.reconcile(max_age_s=0) == []  # idempotent
    assert wallet.check_books() == [] and verify_journal(engine).ok
    engine.dispose()


def test_kill_9_while_sending_is_settled_by_a_venue_lookup(db_url, price):
    from perpbot.platform.db import open_engine

    engine = open_engine(db_url)
    wallet = Wallet(engine)
    uid = make_user(engine, "crash2")
    wallet.deposit(uid, "USDT", 1000, "d")
    margin = (D("0.5") * price / 2).quantize(D("1e-18"))
    crash_child(db_url, uid, price, "send", "SENDING")
    desk = TradeDesk(engine, wallet, Profiles(engine))
    assert [a["action"] for a in desk.reconcile(max_age_s=0)] == ["left: needs a venue lookup"]
    assert wallet.balances(uid)["USDT"]["locked"] == margin  # unknown at the venue: not released blindly
    asked = []
    acted = desk.reconcile(max_age_s=0, lookup=lambda coid: asked.append(coid))  # the venue never got it
    assert asked == ["crash-send"] and [a["action"] for a in acted] == ["released"]
    assert wallet.balances(uid)["USDT"] == {"available": D(1000), "locked": D(0)}
    assert wallet.check_books() == [] and verify_journal(engine).ok
    engine.dispose()


def test_profiles_cap_leverage_and_margin_and_stats_come_from_the_ledger(engine, sol5m):
    closes = [D(str(x)) for x in sol5m["close"].to_numpy()[3000:3003]]
    wallet, profiles = Wallet(engine), Profiles(engine)
    uid = make_user(engine, "stats")  # conservative: 2x, 10 % of available as margin
    wallet.deposit(uid, "USDT", 1000, "d")
    desk = TradeDesk(engine, wallet, profiles)
    with pytest.raises(OrderRefused, match="leverage 3x above the conservative profile's 2x"):
        desk.open_order(uid, OrderRequest(SYMBOL, "buy", D("1"), D("3"), price=closes[0]))
    qty_too_big = (D(201) * 2 / closes[0]).quantize(D("0.01"))  # margin > 100 USDT
    with pytest.raises(OrderRefused, match="above the conservative profile's 10% of available"):
        desk.open_order(uid, OrderRequest(SYMBOL, "buy", qty_too_big, D("2"), price=closes[0]))
    profiles.update("conservative", actor_id=None, max_position_frac=0.5)  # an admin's edit applies at once
    nets = []
    for i, (side, exit_) in enumerate([("buy", closes[1]), ("sell", closes[2])]):
        o = desk.open_order(uid, OrderRequest(SYMBOL, side, qty_too_big, D("2"), price=closes[0], client_order_id=f"s{i}"))
        desk.send(o.id, lambda o: FillReport(o.qty, o.price, D("0.1"), datetime.now(timezone.utc)))
        nets.append(desk.settle(o.id, exit_, fee=D("0.1")) - D("0.1"))  # net after both fees
    st = user_stats(engine, uid)
    # by hand: long then short of qty at closes[0], out at closes[1] / closes[2], 0.1 USDT fee per leg
    want = [qty_too_big * (closes[1] - closes[0]) - D("0.2"), qty_too_big * (closes[0] - closes[2]) - D("0.2")]
    assert nets == want
    assert st["total_trades"] == 2 and st["total_profit"] == sum(want) and st["best_trade"] == max(want)
    assert st["win_rate"] == sum(1 for x in want if x > 0) / 2 and st["days_active"] == 1
    with engine.connect() as c:
        statuses = c.execute(sa.select(PlatformOrder.status).order_by(PlatformOrder.id)).scalars().all()
    assert statuses == ["refused", "refused", "closed", "closed"]


def test_a_backtest_per_profile_on_real_candles(sol5m_path):
    from perpbot.config import load_settings
    from perpbot.data.market import load_market

    settings = load_settings(None, candles_file=sol5m_path, funding=False, leverage=4.0)
    market = load_market(sol5m_path, "5m").slice(20_000, 26_000)
    c = market.candles["close"].to_numpy()
    # a causal stand-in for model probabilities: the 12-bar return mapped into [0.4, 0.9]
    r = np.zeros_like(c)
    r[12:] = c[12:] / c[:-12] - 1
    up = np.clip(0.5 + r * 40, 0.05, 0.9)
    proba = np.column_stack([(1 - up) * 0.8, (1 - up) * 0.2, up]).astype(np.float64)
    runs = backtest_profiles(settings, market, ["ai", "ema-cross"], proba=proba)
    assert set(runs) == {"conservative", "moderate", "aggressive"}
    assert settings_overrides(DEFAULTS["aggressive"], settings)["leverage"] == 4.0  # min(settings 4x, cap 5x)
    calls = {}
    for name, p in DEFAULTS.items():
        lev = min(4.0, p.max_leverage)
        for strat in ("ai", "ema-cross"):
            t = runs[name][strat].result.trades
            assert len(t) > 0
            assert np.allclose(t["leverage"].to_numpy(), lev)
            # equity sizing (risk.sizing): the first entry, at equity 1000, posts margin + fee = frac x 1000,
            # i.e. margin = frac x 1000 / (1 + fee x leverage), less lot rounding and the gap to the fill price
            want = p.max_position_frac * 1000 / (1 + 0.0006 * lev)
            one_lot = 0.1 * float(t["entry_price"].iloc[0]) / lev  # margin of one 0.1 SOL lot
            got = float(t["margin"].iloc[0])
            assert want * 0.99 - one_lot <= got <= want * 1.01, (name, strat, got, want, one_lot)
        calls[name] = int(np.count_nonzero(runs[name]["ai"].signal))
    # the confidence thresholds 0.75 / 0.65 / 0.55 on the same probabilities: fewer calls when stricter
    conf = proba.max(axis=1)
    for name, p in DEFAULTS.items():
        assert calls[name] == int(np.count_nonzero((conf >= p.min_confidence) & (np.argmax(proba, axis=1) != 1)))
    assert calls["conservative"] < calls["moderate"] < calls["aggressive"]
