"""A backtest on real BTCUSDT 1h candles trades with the venue's rules from the market cache:
quantities in the cached 0.001 lot (shipped: 0.0001) and the cached maintenance margin rate in
the liquidation price; and the ``perpbot markets`` commands and the backtest's rules line."""

from __future__ import annotations

import math

import numpy as np
import pytest

from perpbot.app.jobs import backtest_job
from perpbot.config import load_settings
from perpbot.data.market import load_market
from perpbot.exchange.market_cache import make_client, refresh_markets
from _cli_helpers import perpbot
from _market_payloads import BTC, CONTRACTS_PATH, TIERS_PATH, bitget_routes, bitget_venue
from _sim_fixtures import quiet_loggers
from _venue_stub import VenueStub, point_at


@pytest.fixture(scope="module")
def btc_market(data_dir):
    return load_market(data_dir / "BTCUSDT-1h.parquet", "1h").slice(50_000, 53_000)


def liquidation(side: int, qty: float, entry: float, margin: float, mmr: float, fee: float = 0.0006) -> float:
    """Bitget's isolated liquidation price L = (M - S*P*d) / (S*(MMR + fee - d))."""
    return (margin - qty * entry * side) / (qty * (mmr + fee - side))


def test_backtest_trades_with_the_cached_venue_rules(tmp_path, btc_market):
    with VenueStub(bitget_routes(bitget_venue())) as stub, quiet_loggers("ccxt", "urllib3"):
        ex = make_client("bitget", timeout_ms=2000)
        ex.enableRateLimit = False
        point_at(ex, stub.base_url)
        base = dict(symbol=BTC, timeframe="1h", funding=False, output_dir=tmp_path)
        cached = load_settings(None, **base, markets_dir=tmp_path / "markets")
        assert refresh_markets(cached, [BTC], ex=ex)[0].status == "fetched"
    # the venue is gone: the backtest reads the file
    shipped = load_settings(None, **base, markets_dir=tmp_path / "empty")
    a = backtest_job(shipped, ["ema-cross"], market=btc_market).runs["ema-cross"].result.trades
    b = backtest_job(cached, ["ema-cross"], market=btc_market).runs["ema-cross"].result.trades
    assert len(a) >= 20 and len(b) >= 20
    lots_a, lots_b = a.qty / 0.001, b.qty / 0.001
    assert not np.allclose(np.round(lots_a), lots_a)  # the shipped 0.0001 lot: quantities between 0.001 steps
    assert np.allclose(np.round(lots_b), lots_b, rtol=0, atol=1e-9) and (b.qty >= 0.002 - 1e-12).all()
    # the first entry: same bar and price, its quantity the shipped one rounded down to the 0.001 lot
    # (floor to 0.0001 then to 0.001 = floor to 0.001), its liquidation price with the cached 0.4 % MMR
    first_a, first_b = a.iloc[0], b.iloc[0]
    assert (first_b.entry_time, first_b.entry_price, first_b.side) == (first_a.entry_time, first_a.entry_price,
                                                                       first_a.side)
    assert first_b.qty == pytest.approx(math.floor(first_a.qty / 0.001 + 1e-9) * 0.001, abs=1e-12)
    assert first_b.qty < first_a.qty
    for t, mmr in ((first_a, 0.005), (first_b, 0.004)):  # SOLUSDT's first tier vs the cached BTCUSDT one
        assert t.liquidation_price == pytest.approx(liquidation(int(t.side), t.qty, t.entry_price, t.margin, mmr),
                                                    rel=1e-12)


def test_markets_commands_and_the_backtest_rules_line(tmp_path, btc_market):
    env = {"PERPBOT_SYMBOL": BTC, "PERPBOT_TIMEFRAME": "1h", "PERPBOT_FUNDING": "false"}
    cache = tmp_path / "runs" / "markets" / "bitget.json"
    with VenueStub(bitget_routes(bitget_venue())) as stub:
        r = perpbot(["markets", "refresh", "--api-url", stub.base_url], tmp_path, env)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["BTC/USDT:USDT:", "fetched", "from", "bitget:", "lot", "0.001,", "tick", "0.1,",
                                    "min", "qty", "0.002,", "min", "notional", "10.0", "USDT,", "4", "margin",
                                    "tiers", "->", "runs/markets/bitget.json"]
        assert len(stub.requests(CONTRACTS_PATH)) == 6 and len(stub.requests(TIERS_PATH)) == 1
        stub.clear()
        again = perpbot(["markets", "refresh", "--api-url", stub.base_url], tmp_path, env)
        assert again.returncode == 0 and again.stdout.startswith("BTC/USDT:USDT: cached 0.0 h ago") and stub.seen == []
    assert cache.exists()
    shown = perpbot(["markets", "show"], tmp_path, env)
    assert shown.returncode == 0, shown.stderr
    row = next(ln.split() for ln in shown.stdout.splitlines() if ln.split()[:1] == [BTC])
    assert row[1:5] == ["0.001", "0.1", "0.002", "10.0"]
    assert "market rules of BTC/USDT:USDT: lot_size 0.001, tick_size 0.1, min_qty 0.002, min_notional 10, 4 margin " \
           "tiers from the bitget venue cache fetched " in shown.stdout
    btc_market.candles.to_parquet(tmp_path / "BTCUSDT-1h.parquet")
    bt = perpbot(["backtest", "--strategy", "ema-cross", "--no-baselines", "--no-ledger", "--candles",
                  tmp_path / "BTCUSDT-1h.parquet"], tmp_path, env)
    assert bt.returncode == 0, bt.stderr
    line = next(ln for ln in bt.stdout.splitlines() if ln.startswith("market rules of"))
    assert line.startswith("market rules of BTC/USDT:USDT: lot_size 0.001, tick_size 0.1, min_qty 0.002, "
                           "min_notional 10, 4 margin tiers from the bitget venue cache fetched ")
    assert line.endswith("(runs/markets/bitget.json)")
    # the venue is down: the cached rules stand, one warning, exit code 1
    down = perpbot(["markets", "refresh", "--force", "--api-url", "http://127.0.0.1:9"], tmp_path, env)
    assert down.returncode == 1 and cache.exists()
    warn = [ln for ln in down.stderr.splitlines() if ln.strip()]
    assert len(warn) == 1 and warn[0].startswith("warning: could not refresh the bitget market rules of BTC/USDT:USDT")
    assert "using the cached ones fetched" in warn[0]
