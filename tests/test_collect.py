"""``perpbot collect`` against the fakes and the three-symbol simulator: a simulated day driven
by an injected clock (no duplicates, no gaps, values equal to the venue's), a resume after the
collector is killed mid-round, the command itself (``--once``, repeated in the same slot), and
the context features built from the stored rows (NaN before the first row, no look-ahead)."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from _intel_world import COINS, fakes, sim_exchange, three_symbol_sim, world_settings
from perpbot.features.context import CONTEXT_NAMES, compute_with_context, context_features
from perpbot.intel.collect import Collector, context_file, read_collected
from perpbot.intel.context import MarketContext

INTERVAL = 3600           # hourly snapshots: 24 slots a day
START_BAR = 16_000


class SimClock:
    """Wall clock = the simulator's replay clock; sleeping closes the candles of that time."""

    def __init__(self, sim):
        self.sim = sim

    def __call__(self) -> float:
        return self.sim.market.now_ms / 1000.0

    async def sleep(self, seconds: float) -> None:
        await asyncio.to_thread(self.sim.advance, int(round(seconds / 60)))


def _context(s, sim):
    return MarketContext.from_settings(s.model_copy(update={"micro_metrics": False}), exchange=sim_exchange(sim))


async def _close(ctx):
    await ctx.aclose()
    await ctx.venue.exchange.close()


def _settings(tmp_path, cg, fg, feeds):
    return world_settings(tmp_path, cg, fg, feeds, intel_cache_ttl=0, intel_venue_ttl=0, collect_dir=tmp_path / "store")


def _check_grid(df: pd.DataFrame, first_ms: int, n: int) -> None:
    expect = pd.to_datetime(first_ms + INTERVAL * 1000 * np.arange(n), unit="ms", utc=True)
    assert not df.duplicated(["symbol", "timestamp"]).any()
    assert list(df["timestamp"]) == list(expect)


def test_a_simulated_day_without_duplicates_or_gaps(tmp_path):
    with three_symbol_sim(start_bar=START_BAR) as sim, fakes() as (cg, fg, feeds):
        # the first slot starts on the replay clock's 15-minute grid
        sim.advance((INTERVAL // 60) - (sim.market.now_ms // 60_000) % (INTERVAL // 60) or INTERVAL // 60)
        s, clock = _settings(tmp_path, cg, fg, feeds), SimClock(sim)
        first = sim.market.now_ms
        seen_last = {}

        async def main():
            ctx = _context(s, sim)
            col = Collector(ctx, COINS, s.collect_dir, "bitget", INTERVAL, now=clock, sleep=clock.sleep)
            try:
                for _ in range(24):
                    seen_last[sim.market.now_ms] = {m: sim.markets[f"{m}USDT"].last for m in COINS}
                    await col.round()
                    await clock.sleep(INTERVAL)
            finally:
                await _close(ctx)
        asyncio.run(asyncio.wait_for(main(), 300))
    for coin in COINS:
        df = read_collected(context_file(s.collect_dir, "bitget", coin))
        assert len(df) == 24
        _check_grid(df, first, 24)
        last = [seen_last[int(t.value // 1_000_000)][coin] for t in df["timestamp"]]
        assert df["last"].tolist() == last                      # the venue's last price at each slot
        assert df["venue_oi"].nunique() == 24                    # the simulator's open interest moves
        assert (df["fear_greed"] == 40).all() and (df["missing"] == ("funding (no_data)" if coin == "ETH" else "")).all()
        assert df["spread_bps"].gt(0).all() and df["book_imbalance"].abs().le(1).all()
        assert (df["taken_at"] >= df["timestamp"]).all()


class HangingFor:
    """A MarketContext whose snapshot of one symbol never answers (the process is killed meanwhile)."""

    def __init__(self, ctx, symbol):
        self.ctx, self.symbol = ctx, symbol

    async def snapshot(self, symbol, parts=None):
        if symbol.startswith(self.symbol):
            await asyncio.Event().wait()
        return await self.ctx.snapshot(symbol, parts)


def test_resume_after_a_kill_mid_round(tmp_path):
    with three_symbol_sim(start_bar=START_BAR) as sim, fakes() as (cg, fg, feeds):
        sim.advance((INTERVAL // 60) - (sim.market.now_ms // 60_000) % (INTERVAL // 60) or INTERVAL // 60)
        s, clock = _settings(tmp_path, cg, fg, feeds), SimClock(sim)
        first = sim.market.now_ms

        async def main():
            ctx = _context(s, sim)
            try:
                col = Collector(ctx, COINS, s.collect_dir, "bitget", INTERVAL, now=clock, sleep=clock.sleep)
                await col.run(3)
                await clock.sleep(INTERVAL)
                killed = Collector(HangingFor(ctx, "ETH"), COINS, s.collect_dir, "bitget", INTERVAL, now=clock,
                                   sleep=clock.sleep)
                with pytest.raises(asyncio.TimeoutError):          # "killed" while ETH is being asked
                    await asyncio.wait_for(killed.round(), 3)
                resumed = Collector(ctx, COINS, s.collect_dir, "bitget", INTERVAL, now=clock, sleep=clock.sleep)
                added = await resumed.round()                      # same slot: only ETH is missing
                again = await resumed.round()
                await resumed.run(2)                               # slot 3 again (nothing new), then slot 4
                return added, again
            finally:
                await _close(ctx)
        added, again = asyncio.run(asyncio.wait_for(main(), 120))
    assert added == {"SOL/USDT:USDT": 0, "BTC/USDT:USDT": 0, "ETH/USDT:USDT": 1}
    assert again == {c: 0 for c in added}
    for coin in COINS:
        _check_grid(read_collected(context_file(s.collect_dir, "bitget", coin)), first, 5)


def test_collect_command_once_is_idempotent_within_a_slot(tmp_path, monkeypatch):
    from perpbot.cli.main import app

    with three_symbol_sim() as sim, fakes() as (cg, fg, feeds):
        monkeypatch.chdir(tmp_path)
        env = {"PERPBOT_INTEL_COINGLASS_BASE_URL": cg.base_url, "PERPBOT_COINGLASS_API_KEY": "test-cg-key-123",
               "PERPBOT_INTEL_FEAR_GREED_BASE_URL": fg.base_url, "PERPBOT_SENTIMENT": "false"}
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        args = ["collect", "--exchange", "bitget", "--api-url", sim.base_url, "--symbols", "SOL,BTC", "--once",
                "--interval", "86400", "--collect-dir", str(tmp_path / "store")]
        first = CliRunner().invoke(app, args)
        second = CliRunner().invoke(app, args)
    assert first.exit_code == 0 and "2 row(s) added" in first.output, first.output
    assert second.exit_code == 0 and "0 row(s) added" in second.output, second.output
    df = read_collected(tmp_path / "store" / "bitget" / "SOLUSDT-context.parquet")
    assert len(df) == 1 and df["taker_buy_pct"].iloc[0] == 55.0 and df["funding_pct"].notna().all()


# ------------------------------------------------------------------------- context features --
def _collected(times: list[str], **cols) -> pd.DataFrame:
    t = pd.to_datetime(times, utc=True)
    base = {"timestamp": t, "symbol": "SOL/USDT:USDT", "taken_at": t + pd.Timedelta(seconds=5)}
    n = len(t)
    for c in ("funding_pct", "venue_funding", "oi_change_24h_pct", "taker_buy_pct", "liq_long_usd", "liq_short_usd",
              "fear_greed", "sentiment", "spread_bps", "book_imbalance"):
        base[c] = cols.get(c, np.linspace(1, 2, n))
    return pd.DataFrame(base)


def test_context_features_nan_until_the_first_observation_then_as_of(c5):
    candles = c5.iloc[1000:1100].reset_index(drop=True)
    t0 = candles["timestamp"].iloc[10]          # first observation: 5 s after the 11th candle's open
    rows = _collected([str(t0), str(t0 + pd.Timedelta(minutes=30))], fear_greed=[40.0, np.nan],
                      taker_buy_pct=[55.0, 60.0], liq_long_usd=[300.0, 0.0], liq_short_usd=[100.0, 0.0])
    f = context_features(candles, rows)
    assert list(f.columns) == list(CONTEXT_NAMES)
    assert f.iloc[:10].isna().all().all()                          # nothing known before the first row
    assert f["ctx_fear_greed"].iloc[10] == 40.0                    # known at the 11th candle's close
    assert f["ctx_taker_buy"].iloc[10:16].tolist() == [5.0] * 6 and f["ctx_taker_buy"].iloc[16] == 10.0
    assert f["ctx_fear_greed"].iloc[16] == 40.0                    # a missing value keeps the last one seen
    assert f["ctx_liq_imbalance"].iloc[10] == -0.5 and f["ctx_liq_imbalance"].iloc[16] == -0.5  # 0/0 -> missing
    stale = t0 + pd.Timedelta(minutes=30) + pd.Timedelta(hours=6)
    close = candles["timestamp"] + pd.Timedelta(minutes=5)
    assert f.loc[close - (t0 + pd.Timedelta(minutes=30, seconds=5)) > pd.Timedelta(hours=6)].isna().all().all()
    assert (close > stale).any()
    both = compute_with_context(candles.assign(), None, rows)
    assert list(both.columns[-len(CONTEXT_NAMES):]) == list(CONTEXT_NAMES) and len(both) == len(candles)


def test_context_features_never_look_ahead(c5):
    candles = c5.iloc[2000:2300].reset_index(drop=True)
    times = pd.date_range(candles["timestamp"].iloc[0] - pd.Timedelta(hours=2), candles["timestamp"].iloc[-1],
                          freq="7min")
    rng = np.random.default_rng(3)
    rows = _collected([str(t) for t in times], **{c: rng.normal(size=len(times)) for c in
                                                   ("funding_pct", "venue_funding", "oi_change_24h_pct",
                                                    "taker_buy_pct", "fear_greed", "sentiment", "spread_bps",
                                                    "book_imbalance")},
                      liq_long_usd=rng.uniform(0, 1, len(times)), liq_short_usd=rng.uniform(0, 1, len(times)))
    base = context_features(candles, rows)
    close = candles["timestamp"] + pd.Timedelta(minutes=5)
    for k in (50, 150, 290):
        t = close.iloc[k]
        later = rows.copy()
        after = later["taken_at"] > t
        for c in ("funding_pct", "sentiment", "taker_buy_pct", "liq_long_usd", "spread_bps"):
            later.loc[after, c] = later.loc[after, c] * -3 + 7
        got = context_features(candles, later)
        pd.testing.assert_frame_equal(got.iloc[:k + 1], base.iloc[:k + 1])
        assert not got.iloc[k + 1:].equals(base.iloc[k + 1:])       # the perturbation is seen later on
