"""Market rules from the venue, cached on disk with an expiry (issue 10, item 4).

The real, unpatched ccxt clients built by perpbot's factory ask a recording stub on 127.0.0.1
that answers the venues' real public endpoints (payloads: ``_market_payloads``). Every expected
rule is worked out by hand from the payload: Bitget lot = ``sizeMultiplier``, tick =
``priceEndStep x 10^-pricePlace``, min qty = ``minTradeNum``, min notional = ``minTradeUSDT``,
tiers = (``endUnit``, ``keepMarginRate``); Bybit lot = ``qtyStep``, tick = ``tickSize``, min =
``minOrderQty``, min notional = ``minNotionalValue``, tiers = (``riskLimitValue``,
``maintenanceMargin``); OKX amounts are contracts of ``ctVal`` coins.
"""

from __future__ import annotations

import json
import socket

import ccxt
import pytest
from structlog.testing import capture_logs

from perpbot.config import load_settings
from perpbot.exchange.market_cache import make_client, market_entry, refresh_markets
from perpbot.sim.config import SOLUSDT_TIERS, AccountConfig
from perpbot.sim.market_rules import SHIPPED_RULES, account_rules, rules_for, rules_note
from _market_payloads import (
    BTC, CONTRACTS_PATH, ETH, HOUR_MS, SOL, T0, TIERS_PATH, bitget_routes, bitget_venue, bybit_routes, okx_routes,
)
from _sim_fixtures import quiet_loggers
from _venue_stub import VenueStub, point_at

BTC_TIERS = ((150_000.0, 0.004), (900_000.0, 0.005), (2_400_000.0, 0.0065), (9_000_000.0, 0.01))


@pytest.fixture(scope="module", autouse=True)
def _quiet():
    with quiet_loggers("ccxt", "urllib3"):
        yield


def settings(tmp_path, **kw):
    return load_settings(None, **{"markets_dir": tmp_path / "markets", "output_dir": tmp_path, **kw})


def client(venue: str, base_url: str, timeout_ms: int = 2000):
    ex = make_client(venue, timeout_ms=timeout_ms)  # perpbot's factory: the venue's swap options
    ex.enableRateLimit = False  # ccxt's throttle only slows a local test down
    point_at(ex, base_url)
    return ex


def closed_url() -> str:
    """A 127.0.0.1 url nobody listens on (the venue is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def bitget():
    venue = bitget_venue()
    with VenueStub(bitget_routes(venue)) as stub:
        stub.venue = venue
        yield stub


def test_bitget_rules_parsed_exactly_and_cached(tmp_path, bitget):
    s = settings(tmp_path, symbol=BTC)
    done = refresh_markets(s, [SOL, BTC, ETH], ex=client("bitget", bitget.base_url), now_ms=T0)
    assert [(r.symbol, r.status, r.warning) for r in done] == [(SOL, "fetched", None), (BTC, "fetched", None),
                                                               (ETH, "fetched", None)]
    # one market load (the coins, the contracts of each of ccxt's six product types), one tier request per symbol
    assert len(bitget.requests(CONTRACTS_PATH)) == 6 and len(bitget.requests("/api/v2/spot/public/coins")) == 1
    assert [(r.query["symbol"], r.query["productType"]) for r in bitget.requests(TIERS_PATH)] == [
        ("SOLUSDT", "USDT-FUTURES"), ("BTCUSDT", "USDT-FUTURES"), ("ETHUSDT", "USDT-FUTURES")]
    doc = json.loads(s.markets_file().read_text())
    assert (doc["version"], doc["exchange"], sorted(doc["markets"])) == (1, "bitget", [BTC, ETH, SOL])
    btc = doc["markets"][BTC]
    assert {k: btc[k] for k in ("id", "fetched_ms", "fetched", "lot", "tick", "min_qty", "min_notional",
                                "contract_size", "max_leverage", "taker", "maker", "precision_mode")} == {
        "id": "BTCUSDT", "fetched_ms": T0, "fetched": "2025-12-02T00:00:00Z", "lot": 0.001, "tick": 0.1,
        "min_qty": 0.002, "min_notional": 10.0, "contract_size": 1.0, "max_leverage": 125.0, "taker": 0.0006,
        "maker": 0.0002, "precision_mode": "tick_size"}
    assert btc["tiers"][1] == {"min_notional": 150_000.0, "max_notional": 900_000.0, "mmr": 0.005, "max_leverage": 100.0}
    # ETH: priceEndStep 5 x 10^-2 = 0.05 (not 10^-pricePlace = 0.01)
    assert (doc["markets"][ETH]["tick"], doc["markets"][SOL]["tick"]) == (0.05, 0.001)
    assert not [p for p in s.markets_file().parent.iterdir() if p.name != "bitget.json"]  # no temporary file left

    # the account reads the file, without the network
    rules = account_rules(s, now_ms=T0 + HOUR_MS)
    assert rules.values == {"lot_size": 0.001, "tick_size": 0.1, "min_qty": 0.002, "min_notional": 10.0}
    assert rules.tiers == BTC_TIERS and set(rules.origin.values()) == {"cache"} and not rules.stale
    cfg = AccountConfig.from_settings(s)
    assert (cfg.lot_size, cfg.tick_size, cfg.min_qty, cfg.min_notional, cfg.tiers) == (0.001, 0.1, 0.002, 10.0,
                                                                                      BTC_TIERS)
    assert rules_for(settings(tmp_path, symbol=ETH))["tick_size"] == 0.05
    assert rules_note(s, now_ms=T0 + HOUR_MS) == (
        "market rules of BTC/USDT:USDT: lot_size 0.001, tick_size 0.1, min_qty 0.002, min_notional 10, 4 margin "
        f"tiers from the bitget venue cache fetched 2025-12-02 00:00 UTC ({s.markets_file()})")


def test_expiry_refetches_and_a_fresh_entry_asks_nothing(tmp_path, bitget):
    s = settings(tmp_path, markets_max_age=24)
    refresh_markets(s, [SOL], ex=client("bitget", bitget.base_url), now_ms=T0)
    bitget.clear()
    bitget.venue["contracts"]["SOLUSDT"]["minTradeNum"] = "1"  # the venue raises SOL's minimum
    # 23 h later (a new process: a new client): younger than 24 h, nothing is asked
    fresh = refresh_markets(s, [SOL], ex=client("bitget", bitget.base_url), now_ms=T0 + 23 * HOUR_MS)[0]
    assert (fresh.status, fresh.age_hours, fresh.entry["min_qty"]) == ("fresh", 23.0, 0.1) and bitget.seen == []
    # 25 h later: expired, fetched again (one market load + one tier request) and rewritten
    again = refresh_markets(s, [SOL], ex=client("bitget", bitget.base_url), now_ms=T0 + 25 * HOUR_MS)[0]
    assert (again.status, again.entry["min_qty"], again.entry["fetched_ms"]) == ("fetched", 1.0, T0 + 25 * HOUR_MS)
    assert len(bitget.requests(CONTRACTS_PATH)) == 6 and len(bitget.requests(TIERS_PATH)) == 1
    assert account_rules(s).values["min_qty"] == 1.0
    # --force asks even for a fresh entry
    bitget.clear()
    forced = refresh_markets(s, [SOL], ex=client("bitget", bitget.base_url), force=True, now_ms=T0 + 26 * HOUR_MS)
    assert forced[0].status == "fetched" and len(bitget.requests(TIERS_PATH)) == 1


def test_venue_down_with_a_stale_cache_uses_it_with_a_warning(tmp_path, bitget):
    s = settings(tmp_path, symbol=BTC)
    refresh_markets(s, [BTC], ex=client("bitget", bitget.base_url), now_ms=T0)
    before = s.markets_file().read_bytes()
    with capture_logs() as logs:
        r = refresh_markets(s, [BTC], ex=client("bitget", closed_url()), now_ms=T0 + 48 * HOUR_MS)[0]
    assert (r.status, r.age_hours, r.entry["lot"]) == ("stale", 48.0, 0.001)
    assert r.warning.startswith("could not refresh the bitget market rules of BTC/USDT:USDT (") and \
        r.warning.endswith("); using the cached ones fetched 2025-12-02 00:00 UTC (48 h old)")
    assert [(e["event"], e["log_level"], e["age_hours"]) for e in logs] == [("market_rules_stale", "info", 48.0)]
    assert s.markets_file().read_bytes() == before  # nothing rewritten
    rules = account_rules(s, now_ms=T0 + 48 * HOUR_MS)
    assert rules.values["lot_size"] == 0.001 and rules.stale
    assert rules_note(s, now_ms=T0 + 48 * HOUR_MS).endswith(
        "(stale: 48 h old, markets_max_age 24 h: perpbot markets refresh)")


def test_no_cache_and_offline_gives_the_shipped_rules(tmp_path):
    s = settings(tmp_path, symbol=BTC)
    r = refresh_markets(s, [BTC], ex=client("bitget", closed_url()), now_ms=T0)[0]
    assert (r.status, r.entry) == ("shipped", None)
    assert r.warning.endswith(f"no cache at {s.markets_file()}: using the shipped Bitget rules")
    assert not s.markets_file().exists()
    rules = account_rules(s)
    shipped = SHIPPED_RULES["BTC"]
    assert rules.values == {"lot_size": shipped.lot, "tick_size": shipped.tick, "min_qty": shipped.min_qty,
                            "min_notional": 5.0}
    assert set(rules.origin.values()) == {"shipped"} and rules.tiers is None
    assert AccountConfig.from_settings(s).tiers == SOLUSDT_TIERS
    assert rules_note(s) == ("market rules of BTC/USDT:USDT: lot_size 0.0001, tick_size 0.1, min_qty 0.0001, "
                             "min_notional 5, SOLUSDT's margin tiers from the shipped Bitget tables "
                             f"(no venue cache at {s.markets_file()}: perpbot markets refresh)")


def test_unlisted_symbol_and_cache_of_other_symbols_kept(tmp_path, bitget):
    s = settings(tmp_path)
    refresh_markets(s, [SOL], ex=client("bitget", bitget.base_url), now_ms=T0)
    done = refresh_markets(s, [BTC, "XRP/USDT:USDT"], ex=client("bitget", bitget.base_url), now_ms=T0 + HOUR_MS)
    assert [(r.status, r.warning) for r in done] == [("fetched", None), (
        "none", "could not fetch the bitget market rules of XRP/USDT:USDT (bitget does not list XRP/USDT:USDT); "
                f"no cache at {s.markets_file()}: using the settings' rules")]
    markets = json.loads(s.markets_file().read_text())["markets"]
    assert sorted(markets) == [BTC, SOL] and markets[SOL]["fetched_ms"] == T0  # SOL's entry kept as it was


def test_explicit_settings_win_then_cache_then_shipped(tmp_path, bitget):
    s = settings(tmp_path, symbol=BTC, min_qty=0.005)
    refresh_markets(s, [BTC], ex=client("bitget", bitget.base_url), now_ms=T0)
    rules = account_rules(s, now_ms=T0)
    assert rules.values == {"lot_size": 0.001, "tick_size": 0.1, "min_qty": 0.005, "min_notional": 10.0}
    assert rules.origin == {"lot_size": "cache", "tick_size": "cache", "min_qty": "settings", "min_notional": "cache",
                            "tiers": "cache"}
    assert "; min_qty 0.005 from the settings" in rules_note(s, now_ms=T0)
    # a corrupt cache file is ignored (logged): the shipped rules stand
    s.markets_file().write_text("{not json")
    with capture_logs() as logs:
        assert rules_for(settings(tmp_path, symbol=BTC)) == {"lot_size": 0.0001, "tick_size": 0.1, "min_qty": 0.0001}
    assert [e["event"] for e in logs] == ["market_cache_unreadable"]
    # another venue's file is not this venue's cache
    assert account_rules(settings(tmp_path, symbol=BTC, exchange="bybit")).origin["lot_size"] == "shipped"


def test_bybit_rules_and_risk_limits(tmp_path):
    with VenueStub(bybit_routes()) as stub:
        s = settings(tmp_path, exchange="bybit")
        r = refresh_markets(s, [SOL], ex=client("bybit", stub.base_url), now_ms=T0)[0]
        assert [q.query for q in stub.requests("/v5/market/risk-limit")] == [{"category": "linear", "symbol": "SOLUSDT"}]
    assert r.status == "fetched" and s.markets_file().name == "bybit.json"
    rules = account_rules(s, now_ms=T0)
    # qtyStep 0.1, tickSize 0.010, minOrderQty 0.1, minNotionalValue 5; riskLimitValue / maintenanceMargin
    assert rules.values == {"lot_size": 0.1, "tick_size": 0.01, "min_qty": 0.1, "min_notional": 5.0}
    assert rules.tiers == ((200_000.0, 0.01), (400_000.0, 0.015))
    assert r.entry["max_leverage"] == 100.0


def test_okx_contracts_become_base_asset_and_its_contract_tiers_are_not_cached(tmp_path):
    with VenueStub(okx_routes()) as stub:
        s = settings(tmp_path, exchange="okx", symbol=ETH)
        r = refresh_markets(s, [ETH], ex=client("okx", stub.base_url), now_ms=T0)[0]
        assert not stub.requests("/api/v5/public/position-tiers")
    # lotSz 0.01 contracts x ctVal 0.1 ETH = 0.001 ETH; minSz the same; tickSz 0.01
    assert (r.entry["lot"], r.entry["min_qty"], r.entry["tick"], r.entry["contract_size"]) == (0.001, 0.001, 0.01, 0.1)
    assert r.entry["tiers"] is None and "tier bounds are contracts" in r.entry["tiers_note"]
    rules = account_rules(s)
    assert rules.values == {"lot_size": 0.001, "tick_size": 0.01, "min_qty": 0.001, "min_notional": 5.0}
    assert rules.origin["min_notional"] == "shipped" and rules.origin["tiers"] == "shipped"  # OKX gives no minimum value


def test_precision_modes_and_contract_size():
    m = {"id": "X", "contractSize": 10.0, "precision": {"amount": 3, "price": 1},
         "limits": {"amount": {"min": 2}, "cost": {"min": 5}, "leverage": {"max": 20}}}
    dec = market_entry(m, ccxt.DECIMAL_PLACES, None, T0)
    assert (dec["lot"], dec["tick"], dec["min_qty"], dec["precision_mode"]) == (0.01, 0.1, 20.0, "decimal_places")
    sig = market_entry(m, ccxt.SIGNIFICANT_DIGITS, None, T0)
    assert (sig["lot"], sig["tick"]) == (None, None)  # no fixed step: the shipped rule stands
    tick = market_entry({**m, "precision": {"amount": 0.5, "price": 0.25}}, ccxt.TICK_SIZE, None, T0)
    assert (tick["lot"], tick["tick"]) == (5.0, 0.25)


def test_tiers_refused_are_left_out_but_lost_on_the_network_fail_the_refresh(tmp_path, bitget):
    s = settings(tmp_path, symbol=ETH)
    del bitget.venue["tiers"]["ETHUSDT"]  # the venue answers 40034 for ETHUSDT's tiers
    r = refresh_markets(s, [ETH], ex=client("bitget", bitget.base_url), now_ms=T0)[0]
    assert r.status == "fetched" and r.entry["tiers"] is None and "40034" in r.entry["tiers_note"]
    assert account_rules(s).origin == {"lot_size": "cache", "tick_size": "cache", "min_qty": "cache",
                                       "min_notional": "cache", "tiers": "shipped"}
    s2 = settings(tmp_path / "other")
    bitget.delays[("GET", TIERS_PATH)] = 1.5  # longer than the client's timeout: lost on the network
    r2 = refresh_markets(s2, [SOL], ex=client("bitget", bitget.base_url, timeout_ms=700), now_ms=T0)[0]
    assert r2.status == "shipped" and "RequestTimeout" in r2.warning and not s2.markets_file().exists()
