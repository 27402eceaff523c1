"""Micro-metrics layer: 1m history → ATR(1m) and volume profile, atomic persistence (a process
killed between write and rename leaves the previous file loadable), warm restart, the
background refresher, and the venue client feeding it from the exchange simulator."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import talib

from perpbot.data import load_funding
from perpbot.features.volume_profile import volume_profile
from perpbot.intel.micro import MINUTE_MS, MicroMetrics
from perpbot.intel.refresh import MicroRefresher

SYM = "SOL/USDT:USDT"


def rows_of(df: pd.DataFrame) -> list[list]:
    ts = (df["timestamp"].astype("int64") // 1_000_000).tolist()
    return [[t, o, h, lo, c, v] for t, o, h, lo, c, v in zip(ts, df["open"], df["high"], df["low"], df["close"],
                                                            df["volume"])]


@pytest.fixture(scope="module")
def sol1m(sol1m_path) -> pd.DataFrame:
    return pd.read_parquet(sol1m_path).iloc[:3000].reset_index(drop=True)


def test_micro_metrics_hand_worked_atr():
    # the six candles of test_volume_profile: true ranges 1.0, 0.8, 1.2, 1.4, 0.2 -> ATR(3) = 37/45
    candles = [[i * MINUTE_MS, c, h, lo, c, 1.0 + i] for i, (h, lo, c) in
               enumerate(zip([10.5, 11.0, 10.9, 10.6, 11.2, 11.1], [9.5, 10.2, 10.1, 9.4, 10.0, 10.9],
                             [10.0, 10.8, 10.3, 9.8, 11.0, 11.0]))]
    m = MicroMetrics(retention_minutes=60, atr_period=3, buckets=4)
    assert m.update(SYM, candles[:4]) == 4
    assert m.update(SYM, candles[2:]) == 2            # already-held candles are ignored
    snap = m.snapshot(SYM)
    assert snap.minutes == 6 and snap.last_close == 11.0 and snap.last_time_ms == 5 * MINUTE_MS
    assert snap.atr == pytest.approx(37 / 45)
    assert snap.atr_pct == pytest.approx(37 / 45 / 11.0 * 100)
    assert m.snapshot("ETH/USDT:USDT") is None
    bad = [[6 * MINUTE_MS, 11, 10.0, 12.0, 11, 1.0], [7 * MINUTE_MS, 11, float("nan"), 10, 11, 1.0]]
    assert m.update(SYM, bad) == 0                    # high < low, NaN: skipped
    short = MicroMetrics(atr_period=14)
    short.update(SYM, candles)
    assert np.isnan(short.snapshot(SYM).atr)          # 5 true ranges < 14: no ATR yet


def test_micro_metrics_on_real_candles_match_talib_and_the_profile(sol1m):
    m = MicroMetrics(retention_minutes=720, buckets=24, atr_period=14)
    rows = rows_of(sol1m.iloc[:800])
    for i in range(0, 800, 150):                      # in chunks that overlap the held history
        m.update(SYM, rows[max(0, i - 20):i + 150])
    snap = m.snapshot(SYM)
    held = sol1m.iloc[80:800]
    assert snap.minutes == 720 and snap.last_time_ms == rows[799][0]
    # the first held candle's true range uses candle 79's close: TA-Lib over candles 79..799
    window = sol1m.iloc[79:800]
    expected_atr = talib.ATR(*(window[k].to_numpy() for k in ("high", "low", "close")), timeperiod=14)[-1]
    assert snap.atr == pytest.approx(expected_atr, rel=1e-12)
    vp = volume_profile(held["close"].to_numpy(), held["volume"].to_numpy(), 24)
    assert snap.profile.poc == vp.poc and snap.profile.hvn == vp.hvn and snap.profile.lvn == vp.lvn
    assert (snap.profile.value_area_low, snap.profile.value_area_high) == (vp.value_area_low, vp.value_area_high)
    # a gap longer than the retention starts the history anew
    late = rows_of(sol1m.iloc[2500:2510])
    m.update(SYM, late)
    assert m.snapshot(SYM).minutes == 10


KILLER = textwrap.dedent("""
    import os, sys, time
    import pandas as pd
    from perpbot.intel.micro import MicroMetrics

    m = MicroMetrics(state_file=sys.argv[1])
    assert m.load() == 1
    df = pd.read_parquet(sys.argv[2]).iloc[700:760]
    ts = (df["timestamp"].astype("int64") // 1_000_000).tolist()
    m.update("SOL/USDT:USDT", [[t, o, h, l, c, v] for t, o, h, l, c, v in
                               zip(ts, df.open, df.high, df.low, df.close, df.volume)])

    def stalled_replace(src, dst):        # the new file is written and fsynced; die before the rename
        print("WRITTEN", src, flush=True)
        time.sleep(120)

    os.replace = stalled_replace
    m.save()
""")


def test_kill_between_write_and_rename_leaves_the_previous_state_loadable(sol1m, sol1m_path, tmp_path):
    state = tmp_path / "micro.parquet"
    before = MicroMetrics(state_file=state)
    before.update(SYM, rows_of(sol1m.iloc[:720]))
    before.save()
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    proc = subprocess.Popen([sys.executable, str(script), str(state), str(sol1m_path)], stdout=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("WRITTEN"), line
        tmp = line.split(maxsplit=1)[1].strip()
        assert tmp != str(state) and pd.read_parquet(tmp)["timestamp"].max() > before.last_time_ms(SYM)
    finally:
        proc.kill()
        proc.wait(10)
    assert proc.returncode < 0                       # killed, not finished
    after = MicroMetrics(state_file=state)
    assert after.load() == 1
    a, b = after.snapshot(SYM), before.snapshot(SYM)
    assert (a.last_time_ms, a.minutes, a.atr, a.profile.poc) == (b.last_time_ms, b.minutes, b.atr, b.profile.poc)
    state.write_bytes(b"PAR1 torn")                  # a file torn some other way: start cold, no crash
    assert MicroMetrics(state_file=state).load() == 0


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_warm_restart_fetches_only_new_candles_and_saves_at_most_every_interval(sol1m, tmp_path):
    clock = Clock()
    state = tmp_path / "intel" / "micro.parquet"
    first = MicroMetrics(state_file=state, save_interval=60, clock=clock)
    first.update(SYM, rows_of(sol1m.iloc[:720]))
    assert first.maybe_save() is True and state.exists()
    first.update(SYM, rows_of(sol1m.iloc[720:725]))
    clock.t = 30
    assert first.maybe_save() is False               # 30 s < 60 s since the last write
    clock.t = 61
    assert first.maybe_save() is True and first.maybe_save() is False   # nothing new since
    # restart: a new process loads the state and asks the venue only for what it missed
    second = MicroMetrics(state_file=state)
    assert second.load() == 1
    s1, s2 = first.snapshot(SYM), second.snapshot(SYM)
    assert (s2.minutes, s2.last_time_ms, s2.atr, s2.profile.poc) == (s1.minutes, s1.last_time_ms, s1.atr,
                                                                      s1.profile.poc)
    asked = []
    all_rows = rows_of(sol1m)
    last = s2.last_time_ms
    now = last + 6 * MINUTE_MS + 30_000              # 5 candles closed since, the 6th is forming

    async def fetch(symbol, since, limit):
        asked.append((symbol, since, limit))
        return [r for r in all_rows if r[0] >= since][:limit]

    refresher = MicroRefresher(second, fetch, now_ms=lambda: now, limit=200)
    assert refresher.symbols == [SYM]                # what was kept is kept fresh
    assert asyncio.run(refresher.refresh_all()) == {SYM: 6 - 1}
    assert asked == [(SYM, last + MINUTE_MS, 200)]   # not the cold start's now - retention
    assert second.last_time_ms(SYM) == last + 5 * MINUTE_MS
    assert refresher.is_fresh(SYM)


def test_refresher_keeps_the_most_recently_asked_symbols_and_survives_a_failing_one(sol1m, tmp_path):
    rows = rows_of(sol1m.iloc[:300])
    now = rows[-1][0] + MINUTE_MS
    calls: list[str] = []

    async def fetch(symbol, since, limit):
        calls.append(symbol)
        if symbol.startswith("BAD"):
            raise ConnectionError("venue unreachable")
        return [r for r in rows if r[0] >= since][:limit]

    async def main():
        store = MicroMetrics(retention_minutes=120, state_file=tmp_path / "m.parquet", save_interval=0)
        r = MicroRefresher(store, fetch, interval=0.05, max_symbols=2, now_ms=lambda: now, limit=50)
        r.touch("AAA/USDT:USDT")
        await r.refresh("AAA/USDT:USDT")
        r.touch(SYM)
        r.touch("BAD/USDT:USDT")                       # AAA is the least recently asked: dropped
        assert r.symbols == [SYM, "BAD/USDT:USDT"] and "AAA/USDT:USDT" not in store.symbols()
        r.start()
        for _ in range(200):
            if r.rounds >= 2:
                break
            await asyncio.sleep(0.02)
        await r.stop()
        return store, r
    store, r = asyncio.run(asyncio.wait_for(main(), 30))
    assert r.rounds >= 2
    assert store.snapshot(SYM).minutes == 120 and store.last_time_ms(SYM) == rows[-1][0]
    assert "ConnectionError: venue unreachable" in r.errors["BAD/USDT:USDT"]
    # 120 candles in pages of 50 the first round (3 pages), nothing new later; BAD asked every round
    assert calls.count(SYM) == 3 and calls.count("BAD/USDT:USDT") == r.rounds
    assert MicroMetrics(state_file=tmp_path / "m.parquet").load() == 1


# ----------------------------------------------------------------------- venue via ccxt --
def test_venue_client_and_micro_refresh_against_the_exchange_simulator(sol1m, sol_funding_path):
    import ccxt.async_support as ccxt_async
    from perpbot.devtools.bitget_sim import BitgetSim
    from perpbot.intel import MarketContext
    from perpbot.intel.venue import VenueClient

    candles = sol1m.iloc[:1200].reset_index(drop=True)
    sim = BitgetSim(candles=candles, funding=load_funding(sol_funding_path), start_bar=1000)
    sim.start()

    async def main():
        ex = ccxt_async.bitget({"options": {"defaultType": "swap", "uta": False,
                                            "fetchMarkets": {"types": ["swap"]}}})
        sim.point(ex)
        ex.rateLimit = 1
        venue = VenueClient(ex, ttl=60.0)
        store = MicroMetrics(retention_minutes=360)
        ctx = MarketContext(venue=venue, micro=MicroRefresher(store, venue.ohlcv_1m, now_ms=lambda: sim.market.now_ms),
                            timeout=10.0)
        try:
            snap = await ctx.snapshot("SOL")
            ticker_calls = sum(1 for q in sim.requests if q["path"].endswith("/market/ticker"))
            again = await venue.ticker(SYM)            # cached: the simulator is not asked again
            ticker_calls_after = sum(1 for q in sim.requests if q["path"].endswith("/market/ticker"))
            await asyncio.to_thread(sim.advance, 3)
            added = await ctx.micro.refresh(SYM)
            return snap, again, ticker_calls, ticker_calls_after, added
        finally:
            await ctx.aclose()
            await ex.close()
    try:
        snap, again, n1, n2, added = asyncio.run(asyncio.wait_for(main(), 60))
    finally:
        sim.stop()
    assert snap.missing == {}, snap.missing_line()
    last = candles.iloc[999]
    micro = snap.micro
    assert micro.minutes == 360 and micro.last_close == last["close"]
    assert micro.last_time_ms == int(last["timestamp"].value // 1_000_000)
    held = candles.iloc[640:1000]
    assert micro.profile.poc == volume_profile(held["close"].to_numpy(), held["volume"].to_numpy(), 24).poc
    assert snap.ticker.last == last["close"] and snap.order_book.bids[0][0] == last["close"]
    assert snap.order_book.spread_bps > 0 and snap.venue_open_interest.amount > 0
    # the simulator serves the last settled real funding rate (2025-05-05 08:00) and the next settlement
    funding = load_funding(sol_funding_path).set_index("timestamp")["funding_rate"]
    assert snap.venue_funding.funding_rate == pytest.approx(funding[pd.Timestamp("2025-05-05 08:00", tz="UTC")])
    assert snap.venue_funding.next_funding_time == pd.Timestamp("2025-05-05 16:00", tz="UTC")
    assert n1 == 1 and n2 == 1 and again == snap.ticker
    assert added == 3
    for part in ("funding", "fear_greed", "sentiment"):
        assert snap.statuses[part].state == "disabled"
