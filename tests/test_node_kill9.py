"""Kill -9 of the live node with the API attached, then restart (issue 10).

A real ``perpbot run --mode live --api`` process (``tests/_sim_cli.py``: the real ccxt client
pointed at the local Bitget simulator replaying real SOLUSDT 5m candles) trades a plug-in rule
that is long whenever it is flat. Once its position has its venue-side stop-loss and
take-profit, the process is killed with SIGKILL and the same command is started again (without
``--new-run``): it resumes the same ledger run, reconciles, keeps the position without sending
anything (no entry again, no stop placed or cancelled), and its dashboard API shows the
position exactly as the simulator holds it, from start-up on. SIGTERM then ends the run; the
stops stay on the venue.

Driving the node: its feed learns that a candle has closed when the next one arrives (its
clock is the local clock plus the venue's server time at start-up, and the replay clock jumps
a candle at a time), so after the simulator closes candle ``k`` the node processes candle
``k - 1``. A ccxt ``watch_ohlcv`` call returns one push; a push that arrives before the feed
waits again is handed over with the next one, so a candle may reach the node one close later:
the test closes candles until the state it waits for is reached (at most a few), and checks
the node's values against the simulator's, whichever candle the entry filled at.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from perpbot.storage import Ledger
from _sim_fixtures import running_sim, sim_data

HERE = Path(__file__).resolve().parent
START = 1100  # the first candle the node sees live
N_ROWS = 1300
MAX_CLOSES = 6  # candles closed per phase at most
TOKEN = "kill9-" + secrets.token_hex(16)

ALWAYS_LONG = '''
import numpy as np

from perpbot.strategy.plugin import RuleStrategy


class AlwaysLong(RuleStrategy):
    name = "always-long"

    def signals(self, candles):
        return np.ones(len(candles), dtype=np.int8)
'''


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _until(cond, what: str, timeout: float = 30.0, node: "Node | None" = None, soft: bool = False):
    """Wait for ``cond()``; fail after ``timeout`` s (``soft``: return False), or when ``node`` exits."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if node is not None and node.proc.poll() is not None:
            raise AssertionError(f"the node exited ({node.proc.returncode}) waiting for {what}:\n{node.text()[-4000:]}")
        if time.monotonic() >= deadline:
            assert soft, f"timed out waiting for {what}" + ("" if node is None else ":\n" + node.text()[-4000:])
            return False
        time.sleep(0.05)


class Node:
    """One ``perpbot run --mode live --api`` process; stdout and stderr go to the file ``out``."""

    def __init__(self, args: list[str], env: dict, out: Path) -> None:
        self.out = out
        with open(out, "w") as fh:
            self.proc = subprocess.Popen(args, env=env, stdout=fh, stderr=subprocess.STDOUT, text=True)

    def text(self) -> str:
        return self.out.read_text()

    def wait_for(self, needle: str, timeout: float = 90.0) -> str:
        _until(lambda: needle in self.text(), repr(needle), timeout, self)
        return next(ln for ln in self.text().splitlines() if needle in ln)


def _live_plans(sim) -> list[dict]:
    return sorted((p for p in sim.state["plans"] if p["planStatus"] == "live"), key=lambda p: p["orderId"])


def _ids(rows: list[dict], *extra: str) -> list[tuple]:
    return [tuple(r[k] for k in ("orderId", "clientOid", *extra)) for r in rows]


def _shows_the_venue(api, sim) -> bool:
    """The dashboard shows the simulator's position: /api/v1/positions (what the dashboard's
    position card reads) and /api/v1/status agree with the venue's side, qty, entry price and
    margin, and with its stop-loss and take-profit (the plan orders' trigger prices)."""
    shown = api.get("/api/v1/positions").json()["positions"]
    st = api.get("/api/v1/status").json()["position"]
    venue = sim.state["position"]
    if len(shown) != 1 or st is None or venue is None:
        return False
    (pos,) = shown
    trig = {p["planType"]: float(p["triggerPrice"]) for p in _live_plans(sim)}
    want = {"side": "long", "qty": venue["qty"], "entry_price": venue["entry_price"], "margin": venue["margin"],
            "stop_loss": trig.get("pos_loss"), "take_profit": trig.get("pos_profit")}
    return {k: pos[k] for k in want} == want and {k: st[k] for k in want} == {**want, "side": 1}


def test_kill_9_of_the_node_then_restart_adopts_the_position_and_sends_nothing_twice(
        tmp_path, sol5m_path, sol_funding_path, sol_mark8h_path):
    data = sim_data(sol5m_path, sol_funding_path, sol_mark8h_path, N_ROWS)
    c = data[0]
    last = START + 2 * MAX_CLOSES + 1
    for j in range(START + 2, START + MAX_CLOSES + 2):  # any entry fill the test can see
        # the real candles keep the position open: none comes within 0.5 % of the 1 % stop or the 2 % take-profit
        assert c["low"].iloc[j:last].min() > c["open"].iloc[j] * 0.995
        assert c["high"].iloc[j:last].max() < c["open"].iloc[j] * 1.015
    strategy = tmp_path / "always_long.py"
    strategy.write_text(ALWAYS_LONG)
    db = tmp_path / "ledger.db"
    port = _port()
    with running_sim(data, START) as sim, httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"}, trust_env=False,
            timeout=10) as api:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PERPBOT_")}
        env.update({"PERPBOT_API_KEY": sim.api_key, "PERPBOT_API_SECRET": sim.api_secret,
                    "PERPBOT_API_PASSPHRASE": sim.passphrase, "PERPBOT_LEDGER_URL": f"sqlite:///{db}",
                    "PERPBOT_OUTPUT_DIR": str(tmp_path), "PERPBOT_WARMUP_BARS": "0", "PERPBOT_LEVERAGE": "5",
                    "PERPBOT_LIVE_WINDOW": "1000", "PERPBOT_STOP_LOSS": "1.0", "PERPBOT_TAKE_PROFIT": "2.0",
                    "PERPBOT_API_TOKEN": TOKEN, "PERPBOT_API_PORT": str(port),
                    "SIM_BASE_URL": sim.base_url, "SIM_WS_PUBLIC": sim.ws_url_public,
                    "SIM_WS_PRIVATE": sim.ws_url_private, "COLUMNS": "250"})
        cmd = [sys.executable, str(HERE / "_sim_cli.py"), "run", "--mode", "live", "--api", "--strategy", str(strategy)]

        def candle_subscribers() -> int:
            with sim.lock:
                return sum(arg.get("channel") == "candle5m" for conn in sim.hub.conns for arg in conn.subs.values())

        def start(node: Node) -> str:
            """The node's reconciliation line, once its feed has subscribed to the candles."""
            line = node.wait_for("reconciled:")
            _until(candle_subscribers, "the node's candle subscription", 30, node)
            return line

        def seen() -> pd.Timestamp | None:
            t = api.get("/api/v1/status").json().get("last_candle_time")
            return None if t is None else pd.Timestamp(t)

        def close_candles_until(node: Node, first_live: int, done, what: str) -> None:
            """Close candles one at a time, each time waiting for the node to process the candle
            before it (from ``first_live`` on: older ones were history when it started; a candle
            handed over late is processed after the next close), until ``done()``."""
            for _ in range(MAX_CLOSES):
                sim.advance()
                k = sim.market.closed - 2
                if k >= first_live:
                    _until(lambda: (seen() or pd.Timestamp(0, tz="UTC")) >= c["timestamp"].iloc[k],
                           f"the cycle of candle {k}", 8, node, soft=True)
                else:
                    time.sleep(0.5)  # the feed takes this push before the next one
                if _until(done, what, 1, node, soft=True):
                    return
            raise AssertionError(f"{what}: not after {MAX_CLOSES} candles:\n{node.text()[-4000:]}")

        # ---- the first node: enters long; the fill gets its stop-loss and take-profit
        first = Node(cmd + ["--new-run"], env, tmp_path / "first.txt")
        try:
            start(first)
            led = Ledger(f"sqlite:///{db}")  # (created by the node)
            (rid,) = map(int, led.runs()["id"])
            assert f"ledger run {rid} (new)" in first.text()
            close_candles_until(first, START, lambda: _shows_the_venue(api, sim) and (
                lambda p: len(p) and p["side"].iloc[-1] == "long")(led.positions(rid)),
                "the position with its stops, on the dashboard and in the ledger")
        finally:
            first.proc.kill()  # SIGKILL: no handler runs, nothing is flushed
            first.proc.wait(30)
        assert first.proc.returncode == -signal.SIGKILL
        killed = led.get_run(rid)
        assert killed["status"] == "running" and killed["owner_pid"] == first.proc.pid
        before, plans = sim.state, _live_plans(sim)
        assert sorted(p["planType"] for p in plans) == ["pos_loss", "pos_profit"]
        (entry,) = [o for o in before["orders"] if o["reduceOnly"] == "NO"]
        # the market order filled at the open of the candle after the one it was sent on
        filled_at = c.index[c["timestamp"] == pd.Timestamp(int(entry["cTime"]), unit="ms", tz="UTC")][0]
        assert entry["status"] == "filled" and float(entry["priceAvg"]) == c["open"].iloc[filled_at]
        pos = before["position"]
        assert pos["side"] == 1 and pos["qty"] == float(entry["baseVolume"]) > 0
        assert pos["entry_price"] == c["open"].iloc[filled_at]
        oids = [r["clientOid"] for r in before["orders"] + before["plans"]]
        assert len(oids) == len(set(oids))
        orders_before = led.orders(rid)
        assert orders_before["client_order_id"].is_unique
        assert sorted(orders_before["reason"]) == ["entry", "stop_loss", "take_profit"]
        assert set(orders_before.loc[orders_before["reason"] != "entry", "exchange_order_id"]) == {
            p["orderId"] for p in plans}
        n_requests, n_events = len(sim.requests), len(led.risk_events(rid))

        # ---- the restart: the same command without --new-run
        _until(lambda: not candle_subscribers(), "the killed node's websocket to close")
        restart_at = sim.market.closed
        second = Node(cmd, env, tmp_path / "second.txt")
        try:
            line = start(second)
            out = second.text()
            assert f"ledger run {rid} (resumed after an unfinished run)" in out
            # nothing to repair: the ledger holds this position and the venue its stop and take-profit
            assert line.strip() == f"reconciled: clean  equity {before['equity']:.2f} USDT"
            resumed = led.get_run(rid)
            assert resumed["status"] == "running" and resumed["owner_pid"] == second.proc.pid
            assert resumed["status_detail"].startswith("resumed at ")
            assert _shows_the_venue(api, sim)  # from start-up, before any candle
            close_candles_until(second, restart_at, lambda: (seen() or pd.Timestamp(0, tz="UTC"))
                                >= c["timestamp"].iloc[restart_at + 1], "two cycles after the restart")
            assert _shows_the_venue(api, sim)
            assert sim.state["position"] == pos
        finally:
            second.proc.send_signal(signal.SIGTERM)
            second.proc.wait(60)
        out = second.text()
        assert second.proc.returncode == 0, out
        assert f"live run {rid} stopped; open positions keep their exchange-side stops" in out

        # the restarted node took the position over as it is on the venue ...
        logs = [json.loads(x) for x in (tmp_path / "logs" / "perpbot.jsonl").read_text().splitlines()
                if x.startswith("{")]
        adopted = [(x["side"], x["qty"], x["entry"]) for x in logs if x.get("event") == "position_adopted"]
        assert adopted == [(1, pos["qty"], pos["entry_price"])]
        events = led.risk_events(rid).iloc[n_events:]
        rec = [json.loads(d) for d in events.loc[events["event"] == "reconcile", "detail"]]
        assert rec[0].pop("equity") == pytest.approx(before["equity"], rel=1e-12)  # (as the venue prints it)
        assert rec[0] == {"summary": "clean", "has_stop": True, "resolved": [], "adopted": None, "stop_placed": None,
                          "take_profit_placed": None, "cancelled": [], "warnings": []}
        cycles = events[events["event"] == "cycle_latency"]
        assert len(cycles) >= 2 and list(cycles["time"]) == [
            c["timestamp"].iloc[restart_at + k] + pd.Timedelta("5min") for k in range(len(cycles))]
        assert {(d["signal"], d["order_sent"]) for d in map(json.loads, cycles["detail"])} == {(1, False)}
        # ... and sent nothing: no order, no stop placed or cancelled, not even the leverage (the open
        # position keeps its own: exchange/leverage.py)
        posts = {r["path"] for r in sim.requests[n_requests:] if r["method"] == "POST"}
        assert posts == set()
        after = sim.state
        assert _ids(after["orders"], "status") == _ids(before["orders"], "status")
        assert _ids(after["plans"], "planStatus", "triggerPrice") == _ids(before["plans"], "planStatus",
                                                                          "triggerPrice")
        assert after["position"] == pos and _live_plans(sim) == plans  # the stops stay on the venue
    orders_after = led.orders(rid)
    assert orders_after.drop(columns="status").equals(orders_before.drop(columns="status"))
    assert list(orders_after["status"]) == ["filled", "open", "open"]
    # one run: resumed, then finished by SIGTERM
    assert list(led.runs()["id"]) == [rid]
    run = led.get_run(rid)
    assert run["status"] == "finished" and run["owner_pid"] == second.proc.pid
    assert led.positions(rid)["side"].iloc[-1] == "long"
    led.close()
