"""The ccxt executor and reconciliation against the local Bitget simulator (real, unpatched ccxt.pro
client over 127.0.0.1, replaying real SOLUSDT 5m candles).

Checks: demo by default and the real-money gate; one clear start-up error and no private POST
for missing / wrong keys, an unlisted symbol, an unsupported timeframe; isolated margin and
leverage before the first order; entries with venue-side TP/SL on the tick grid, ledger row
written before the request, orders below the minimum not sent; faults: a timeout after the
venue accepted the order (exactly one order), 429 bursts (backoff, one order), 5xx on every
attempt (no forced entry, ledger ``failed``, ``order_failed`` event); reconciliation after a
crash (unsettled orders settled, position adopted, missing stop placed at the configured
distance, orphan reduce-only orders cancelled, a position already beyond its stop closed);
a request refused for an expired timestamp (clock skew) re-syncs the clock and is sent once more.
"""

from __future__ import annotations

import asyncio
import math

import ccxt
import pandas as pd
import pytest

from perpbot.bot.events import EventBus
from perpbot.config import load_settings
from perpbot.exchange.ccxt_adapter import (
    ExchangeSetupError, RealMoneyNotConfirmed, banner, describe_error, make_exchange,
)
from perpbot.exchange.executor import Executor, LiveStartupError, RetryPolicy
from perpbot.exchange.reconcile import account_identity, reconcile
from perpbot.storage.ledger import Ledger
from _sim_fixtures import sim_module_fixtures

SYM = "SOL/USDT:USDT"
N_ROWS, START = 2600, 2000
FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.04, lookup_attempts=2)


_quiet, data, sim = sim_module_fixtures(n_rows=N_ROWS, start=START,
                                        loggers=("ccxt", "aiohttp", "asyncio", "perpbot.live"))


def settings(sim, tmp_path, **kw):
    base = dict(api_key=sim.api_key, api_secret=sim.api_secret, api_passphrase=sim.passphrase, leverage=5,
                slippage=0.0, output_dir=tmp_path, stop_loss=1.0, take_profit=2.0)
    return load_settings(None, **{**base, **kw})


def client(sim, s):
    ex = make_exchange(s, config={"enableRateLimit": False})
    sim.point(ex)
    return ex


def run(coro):
    return asyncio.run(coro)


async def started(sim, s, ledger=None, run_id=None, events=None, startup=True) -> Executor:
    exe = Executor(client(sim, s), s, ledger=ledger, run_id=run_id, events=events, retry=FAST)
    if startup:
        await exe.startup()
    return exe


@pytest.fixture
def ledger(tmp_path):
    led = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield led
    led.close()


def new_run(ledger, identity: dict | None = None) -> int:
    """A live run; ``identity``: the account it was recorded with (as ``perpbot run --mode live`` does)."""
    return ledger.start_run("live", "ema-cross", SYM, "5m", config=None if identity is None else {"live_account": identity})


def posts(sim) -> list[dict]:
    return [r for r in sim.requests if r["method"] == "POST"]


def places(sim) -> list[dict]:
    return [r for r in sim.requests if r["path"].endswith("place-order")]


# ---- client factory --------------------------------------------------------------------------------
def test_client_is_demo_by_default_and_real_money_needs_flag_and_confirmation(tmp_path):
    s = load_settings(None, output_dir=tmp_path)
    ex = make_exchange(s)
    assert ex.options["sandboxMode"] is True and ex.options["uta"] is False
    assert ex.options["defaultType"] == "swap" and ex.options["fetchMarkets"] == {"types": ["swap"]}
    assert ex.request_sent_at == {} and not ex.perpbot_real_money
    with pytest.raises(RealMoneyNotConfirmed, match="PERPBOT_CONFIRM_REAL_MONEY=yes"):
        make_exchange(s, real_money=True, environ={})
    with pytest.raises(RealMoneyNotConfirmed):
        make_exchange(s, real_money=True, environ={"PERPBOT_CONFIRM_REAL_MONEY": "YES please"})
    real = make_exchange(s, real_money=True, environ={"PERPBOT_CONFIRM_REAL_MONEY": "yes"})
    assert not real.options.get("sandboxMode") and real.perpbot_real_money
    # the confirmation alone changes nothing: still demo
    assert make_exchange(s, environ={"PERPBOT_CONFIRM_REAL_MONEY": "yes"}).options["sandboxMode"] is True
    with pytest.raises(ExchangeSetupError, match="unknown exchange 'bitgett'.*did you mean bitget"):
        make_exchange(s.model_copy(update={"exchange": "bitgett"}))
    from rich.console import Console

    con = Console(record=True, width=200)
    con.print(banner(s, False))
    con.print(banner(s, True))
    text = con.export_text()
    assert "DEMO" in text and "REAL MONEY" in text and "no real money is used" in text
    for e in (ex, real):
        run(e.close())


def test_describe_error_is_one_line():
    e = ccxt.InsufficientFunds('bitget {"code":"40762","msg":"The order amount exceeds the balance","data":null}')
    assert describe_error(e, "entry") == "entry: InsufficientFunds: 40762 The order amount exceeds the balance"
    html = ccxt.ExchangeNotAvailable("bitget POST https://api.bitget.com/api/v2/mix/order/place-order?x=1 503 Service "
                                     "Unavailable <html><body><h1>503 Service Unavailable</h1></body>\n</html>")
    assert describe_error(html) == ("ExchangeNotAvailable: bitget HTTP 503 Service Unavailable "
                                    "(POST /api/v2/mix/order/place-order)")


# ---- start-up errors -----------------------------------------------------------------------------
@pytest.mark.parametrize("case, match", [
    ("missing_keys", r"^no bitget API credentials: set PERPBOT_API_KEY, PERPBOT_API_SECRET, PERPBOT_API_PASSPHRASE"),
    ("wrong_key", r"^API key rejected by bitget \(40006 .*\): check PERPBOT_API_KEY"),
    ("wrong_secret", r"^API key rejected by bitget \(40009 .*\)"),
    ("wrong_passphrase", r"^API key rejected by bitget \(40012 .*\)"),
    ("symbol", r"^bitget does not list DOGE/USDT:USDT; nothing was sent"),
    ("timeframe", r"^bitget does not offer the timeframe '2m' \(it has 1m, 3m, 5m.*\); nothing was sent"),
    ("leverage", r"^leverage 2.5 is not a whole number"),
])
def test_startup_refuses_with_one_clear_error_and_sends_nothing(sim, tmp_path, case, match):
    s = settings(sim, tmp_path)
    s = {"missing_keys": s.model_copy(update={"api_key": None, "api_secret": None, "api_passphrase": None}),
         "wrong_key": settings(sim, tmp_path, api_key="not-my-key"),
         "wrong_secret": settings(sim, tmp_path, api_secret="not-my-secret"),
         "wrong_passphrase": settings(sim, tmp_path, api_passphrase="not-my-pass"),
         "symbol": settings(sim, tmp_path, symbol="DOGE/USDT:USDT"),
         "timeframe": s.model_copy(update={"timeframe": "2m"}),
         "leverage": settings(sim, tmp_path, leverage=2.5)}[case]

    async def go():
        exe = await started(sim, s, startup=False)
        try:
            with pytest.raises(LiveStartupError, match=match) as info:
                await exe.startup()
        finally:
            await exe.close()
        return str(info.value)

    msg = run(go())
    assert "\n" not in msg and "not-my-" not in msg and sim.api_secret not in msg
    assert posts(sim) == []  # no order, no margin / leverage change
    private = [r for r in sim.requests if "/mix/account/" in r["path"] or "/mix/order/" in r["path"]]
    assert private == ([] if case in ("missing_keys", "symbol", "timeframe", "leverage") else private[:1])
    assert sim.state["margin_mode"] == "crossed"


# ---- orders ---------------------------------------------------------------------------------------
def test_startup_then_entry_with_tpsl_recorded_before_sending(sim, tmp_path, ledger, data):
    candles = data[0]
    rid = new_run(ledger)
    s = settings(sim, tmp_path)
    last = float(candles.close.iloc[START - 1])

    async def go():
        exe = await started(sim, s, ledger, rid)
        try:
            assert (sim.state["margin_mode"], sim.state["leverage"]) == ("isolated", 5)
            assert exe.rules.lot == 0.1 and exe.rules.tick == 0.001 and exe.rules.min_notional == 5.0
            bar = exe.bar_of(int(candles.timestamp.iloc[START - 1].value // 1_000_000))
            res = await exe.open_position(1, 2.06, last * 0.98765432, last * 1.0234567, bar=bar, ref_price=last)
            skipped = await exe.open_position(1, 0.03, last * 0.99, last * 1.02, bar=bar, ref_price=last)
            tiny = await exe.open_position(1, 0.1, 9.0, 11.0, bar=bar, ref_price=10.0)  # 1 USDT < 5 USDT
            return exe, bar, res, skipped, tiny
        finally:
            await exe.close()

    exe, bar, res, skipped, tiny = run(go())
    assert res.ok and res.cid == f"pb{rid}-{bar}-0" and res.attempts == 1
    assert (skipped.status, tiny.status) == ("skipped", "skipped")
    assert "below the minimum 0.1" in skipped.error and "below the minimum 5 USDT" in tiny.error
    (order,) = sim.state["orders"]
    assert (order["clientOid"], order["size"], order["side"], order["orderType"]) == (res.cid, "2", "buy", "market")
    assert order["marginMode"] == "isolated" and order["reduceOnly"] == "NO"
    # TP/SL attached, rounded to the 0.001 tick (half away from zero)
    assert float(order["presetStopLossPrice"]) == round(last * 0.98765432, 3)
    assert float(order["presetStopSurplusPrice"]) == round(last * 1.0234567, 3)
    assert len(places(sim)) == 1  # the two below the minimum were not sent
    row = ledger.orders(rid).set_index("client_order_id").loc[res.cid]
    assert (row["status"], row["exchange_order_id"], row["qty"], row["reason"]) == ("open", order["orderId"], 2.0, "entry")
    request = places(sim)[0]
    assert row["time"].timestamp() <= request["time"]  # in the ledger before the request reached the venue
    ev = ledger.risk_events(rid)
    assert list(ev["event"]) == ["below_min_size", "below_min_size"] and list(ev["value"]) == [0.0, 0.1]
    # paptrading: 1 on every request but the demo-market listings and the public server time (the
    # clock sync at start-up), which ccxt sends without it; they carry no account
    assert all(r["demo"] for r in sim.requests if "productType=S" not in r["query"] and r["path"] != "/api/v2/public/time")

    # fill, then a reduce-only exit
    sim.advance()

    async def close():
        exe2 = await started(sim, s, ledger, rid)
        try:
            return await exe2.close_position("signal", side=1, qty=2.0, bar=bar + 1)
        finally:
            await exe2.close()

    out = run(close())
    assert out.ok and sim.state["orders"][-1]["reduceOnly"] == "YES"
    sim.advance()
    assert sim.state["position"] is None


def test_timeout_after_accept_is_looked_up_not_resent(sim, tmp_path, ledger):
    rid = new_run(ledger)
    s = settings(sim, tmp_path)

    async def go():
        exe = await started(sim, s, ledger, rid)
        exe.ex.timeout = 300  # ms; the venue holds its answer for 1 s after accepting
        sim.faults.timeout_after_accept(delay=1.0)
        try:
            return await exe.open_position(-1, 1.0, 200.0, 100.0, bar=7, ref_price=127.0)
        finally:
            await exe.close()

    res = run(go())
    assert res.ok and res.attempts == 1 and res.order["clientOrderId"] == res.cid
    assert len(sim.state["orders"]) == 1 and len(places(sim)) == 1  # exactly one order, sent once
    assert ("timeout", "/api/v2/mix/order/place-order") in sim.faults.fired
    assert ledger.orders(rid).set_index("client_order_id").loc[res.cid, "status"] == "open"


def test_rate_limit_burst_backs_off_and_places_once(sim, tmp_path, ledger):
    rid = new_run(ledger)
    s = settings(sim, tmp_path)

    async def go():
        exe = await started(sim, s, ledger, rid)
        sim.faults.rate_limit(count=3, endpoint="place-order")
        try:
            return await exe.open_position(1, 1.0, 100.0, 200.0, bar=7, ref_price=127.0)
        finally:
            await exe.close()

    res = run(go())
    assert res.ok and res.attempts == 4
    assert [r["status"] for r in places(sim)] == [429, 429, 429, 200]
    assert len(sim.state["orders"]) == 1 and sim.state["orders"][0]["clientOid"] == res.cid


def test_5xx_on_every_attempt_skips_the_entry_and_says_so(sim, tmp_path, ledger):
    rid = new_run(ledger)
    s = settings(sim, tmp_path)
    bus = EventBus()
    sub = bus.subscribe()

    async def go():
        exe = await started(sim, s, ledger, rid, events=bus)
        try:
            sim.faults.server_error("place-order", count=4, status=503)
            failed = await exe.open_position(1, 1.0, 100.0, 200.0, bar=7, ref_price=127.0)
            sim.faults.server_error("place-order", count=1, status=502)
            ok = await exe.open_position(1, 1.0, 100.0, 200.0, bar=8, ref_price=127.0)
            return failed, ok
        finally:
            await exe.close()

    failed, ok = run(go())
    assert failed.status == "failed" and failed.attempts == 4
    assert failed.error == ("entry: ExchangeNotAvailable: bitget HTTP 503 Service Unavailable "
                            "(POST /api/v2/mix/order/place-order)")
    # the second order: one 502, looked up (absent), resent once with the same client id
    assert ok.ok and ok.attempts == 2 and ok.cid == f"pb{rid}-8-0"
    assert [r["status"] for r in places(sim)] == [503] * 4 + [502, 200]
    assert [o["clientOid"] for o in sim.state["orders"]] == [ok.cid]  # nothing of the failed entry
    orders = ledger.orders(rid).set_index("client_order_id")
    assert orders.loc[failed.cid, "status"] == "failed" and orders.loc[ok.cid, "status"] == "open"
    ev = sub.get(timeout=1)
    assert ev.kind == "order_failed" and failed.cid in ev.data["message"] and "503" in ev.data["message"]
    risk = ledger.risk_events(rid)
    assert list(risk["event"]) == ["order_failed"] and risk["value"].iloc[0] == 4


# ---- reconciliation ---------------------------------------------------------------------------------
def test_reconcile_after_a_crash_settles_adopts_protects_and_cleans(sim, tmp_path, ledger, data):
    candles = data[0]
    s = settings(sim, tmp_path)
    old = new_run(ledger, account_identity(client(sim, s)))  # the process that died: its run stays "running"
    lost, sent = f"pb{old}-9-0", f"pb{old}-9-1"
    for cid in (lost, sent):  # recorded before sending, then the process died
        ledger.record_order(old, client_order_id=cid, time=pd.Timestamp.now(tz="UTC"), side="buy", type="market",
                            qty=3.0, status="new", reason="entry", trade_no=1)

    async def crash():  # only the second one reached the venue, without its stop
        ex = client(sim, s)
        try:
            await ex.set_margin_mode("isolated", SYM)
            await ex.create_order(SYM, "market", "buy", 3.0, None, {"marginMode": "isolated", "clientOrderId": sent})
        finally:
            await ex.close()

    run(crash())
    sim.advance()  # it fills at the next open
    entry = float(candles.open.iloc[START])
    rid = new_run(ledger)

    async def restart():
        exe = await started(sim, s, ledger, rid)
        try:
            first = await reconcile(exe, ledger, rid, record="always")
            again = await reconcile(exe, ledger, rid, scan_ledger=False)
            return first, again
        finally:
            await exe.close()

    first, again = run(restart())
    assert {r["cid"]: (r["was"], r["now"]) for r in first.resolved} == {lost: ("new", "failed"), sent: ("new", "filled")}
    assert first.adopted == {"side": 1, "qty": 3.0, "entry_price": entry}
    stop = round(entry * 0.99, 3)
    assert first.stop_placed == stop and first.take_profit_placed == round(entry * 1.02, 3) and first.has_stop
    assert again.clean and again.has_stop  # nothing left to repair
    plans = {p["planType"]: float(p["triggerPrice"]) for p in sim.state["plans"] if p["planStatus"] == "live"}
    assert plans == {"pos_loss": stop, "pos_profit": round(entry * 1.02, 3)}
    assert [o["clientOid"] for o in sim.state["orders"]] == [sent]  # no duplicate entry
    orders = ledger.orders(old).set_index("client_order_id")
    assert orders.loc[lost, "status"] == "failed" and orders.loc[sent, "status"] == "filled"
    fills = ledger.fills(old)
    assert len(fills) == 1 and fills["qty"].iloc[0] == 3.0 and fills["price"].iloc[0] == entry
    assert fills["fee"].iloc[0] == pytest.approx(3.0 * entry * 0.0006, rel=1e-12)
    pos = ledger.positions(rid).iloc[-1]
    assert (pos["side"], pos["qty"], pos["entry_price"]) == ("long", 3.0, entry)
    rec = ledger.risk_events(rid)
    assert list(rec["event"]) == ["reconcile"] and rec["value"].iloc[0] == first.actions == 5


def test_reconcile_cancels_orphans_and_closes_a_position_beyond_its_stop(sim, tmp_path, ledger, data):
    candles = data[0]
    rid = new_run(ledger)
    s = settings(sim, tmp_path)
    entry = float(candles.open.iloc[START])
    # the first close 1 % away from the entry: a position on the losing side is beyond its stop there
    k = next(i for i in range(START, len(candles)) if abs(candles.close.iloc[i] / entry - 1) >= 0.01)
    side = -1 if candles.close.iloc[k] > entry else 1
    stop = round(entry * (1 - side * 0.01), 3)

    async def setup():
        ex = client(sim, s)
        try:
            await ex.set_margin_mode("isolated", SYM)
            await ex.create_order(SYM, "market", "buy" if side > 0 else "sell", 1.0, None, {"marginMode": "isolated"})
        finally:
            await ex.close()

    run(setup())
    sim.advance(k - START + 1)  # filled at the open of START, now after the close of k

    async def go():
        exe = await started(sim, s, ledger, rid)
        try:
            beyond = await reconcile(exe, ledger, rid)
            # a take-profit limit order (reduce-only) left behind once the position is gone
            await exe.ex.create_order(SYM, "limit", "sell" if side > 0 else "buy", 1.0,
                                      round(entry * (1 + side * 0.5), 3), {"marginMode": "isolated", "reduceOnly": True})
            sim.advance()  # the unprotected-position exit fills; the reduce-only limit stays open
            orphan = await reconcile(exe, ledger, rid, scan_ledger=False)
            return beyond, orphan
        finally:
            await exe.close()

    beyond, orphan = run(go())
    assert beyond.closed_unprotected and beyond.stop_placed is None
    assert f"beyond the stop {stop}" in beyond.warnings[0]
    assert sim.state["position"] is None
    exit_order = [o for o in sim.state["orders"] if o["clientOid"].startswith(f"pb{rid}-")]
    assert len(exit_order) == 1 and exit_order[0]["reduceOnly"] == "YES" and exit_order[0]["state"] == "filled"
    limit = [o for o in sim.state["orders"] if o["orderType"] == "limit"][0]
    assert orphan.cancelled == [limit["orderId"]] and limit["state"] == "canceled"
    assert ledger.orders(rid).set_index("reason").loc["unprotected", "status"] == "filled"
    assert math.isclose(ledger.fills(rid)["price"].iloc[0], float(candles.open.iloc[k + 1]))


def test_trailing_stop_is_a_bitget_moving_plan_and_protect_replaces_levels(sim, tmp_path, ledger, data):
    candles = data[0]
    rid = new_run(ledger)
    s = settings(sim, tmp_path)
    last = float(candles.close.iloc[START - 1])

    async def go():
        exe = await started(sim, s, ledger, rid)
        try:
            first = await exe.open_position(1, 1.0, last * 0.99, last * 1.02, bar=5, ref_price=last)
            sim.advance()
            entry = float(candles.open.iloc[START])
            moved = await exe.protect(1, 1.0, stop_loss=entry * 0.995, take_profit=entry * 1.01, bar=6)
            trail = await exe.trailing_stop(1, 1.0, entry, 0.005, bar=6)
            return first, moved, trail, entry
        finally:
            await exe.close()

    first, moved, trail, entry = run(go())
    assert first.ok and [m.ok for m in moved] == [True, True] and trail.ok
    live = {p["planType"]: p for p in sim.state["plans"] if p["planStatus"] == "live"}
    assert set(live) == {"pos_loss", "pos_profit", "moving_plan"}  # the presets were replaced, not doubled
    assert float(live["pos_loss"]["triggerPrice"]) == round(entry * 0.995, 3)
    assert float(live["pos_profit"]["triggerPrice"]) == round(entry * 1.01, 3)
    mp = live["moving_plan"]
    assert (float(mp["triggerPrice"]), float(mp["callbackRatio"]), mp["clientOid"]) == (entry, 0.005, trail.cid)
    orders = ledger.orders(rid).set_index("client_order_id")
    assert orders.loc[trail.cid, ["type", "reason", "status"]].tolist() == ["stop", "trailing_stop", "open"]
    assert orders.loc[moved[0].cid, ["type", "price"]].tolist() == ["stop", round(entry * 0.995, 3)]


# ---- clock skew ------------------------------------------------------------------------------------------
def time_requests(sim) -> list[dict]:
    return [r for r in sim.requests if r["path"] == "/api/v2/public/time"]


def test_order_refused_for_an_expired_timestamp_is_resent_after_a_clock_resync(sim, tmp_path, ledger):
    rid = new_run(ledger)
    s = settings(sim, tmp_path)

    async def go():
        exe = await started(sim, s, ledger, rid)
        try:
            before = exe.ex.options["timeDifference"]
            sim.faults.clock_skew(-90_000)  # the machine's clock jumps 90 s ahead of the venue's
            res = await exe.open_position(1, 1.0, 100.0, 200.0, bar=7, ref_price=127.0)
            return exe, before, res
        finally:
            await exe.close()

    exe, before, res = run(go())
    assert abs(before) < 2_000  # synced at start-up: the simulator's clock is the local one
    # refused once (40008, never processed), re-synced, the same client id sent again and accepted
    assert res.ok and res.attempts == 2 and [r["status"] for r in places(sim)] == [400, 200]
    assert exe.clock_syncs == 1 and abs(exe.ex.options["timeDifference"] - 90_000) < 2_000
    assert len(time_requests(sim)) == 2  # start-up + the re-sync
    assert [o["clientOid"] for o in sim.state["orders"]] == [res.cid]
    assert ledger.orders(rid).set_index("client_order_id").loc[res.cid, "status"] == "open"


def test_order_refused_for_its_timestamp_without_a_resync_fails_cleanly(sim, tmp_path, ledger):
    rid = new_run(ledger)
    s = settings(sim, tmp_path)

    async def go():
        exe = await started(sim, s, ledger, rid)
        try:
            sim.faults.clock_skew(-90_000)
            sim.faults.server_error("public/time", count=10)  # the venue's time cannot be read
            return exe, await exe.open_position(1, 1.0, 100.0, 200.0, bar=7, ref_price=127.0)
        finally:
            await exe.close()

    exe, res = run(go())
    # refused at authentication: certainly not at the venue, so "failed" without a look-up or a resend
    assert res.status == "failed" and res.attempts == 1 and "InvalidNonce" in res.error and "40008" in res.error
    assert [r["status"] for r in places(sim)] == [400]
    assert not [r for r in sim.requests if r["path"].endswith("/order/detail")]
    assert exe.clock_syncs == 0 and sim.state["orders"] == []
    assert ledger.orders(rid).set_index("client_order_id").loc[res.cid, "status"] == "failed"
