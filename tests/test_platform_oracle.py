"""The oracle guard (perpbot.platform.oracle) against local venues spoken to by real ccxt clients:
the Bitget simulator replaying real SOLUSDT 5m candles (last, index and mark price) and two tiny
stubs of Binance USDⓈ-M's and OKX's public ticker routes. Vetoes (a venue 2 % off, a stale one,
too few sources) are recorded in the ledger with every source's deviation; agreeing sources pass."""

from __future__ import annotations

from decimal import Decimal

import ccxt
import pytest
import sqlalchemy as sa

from _platform_db import db_url, engine, make_user  # noqa: F401  (fixtures)
from _sim_fixtures import quiet_loggers, running_sim, sim_data
from fake_venues import FakeVenue

from perpbot.platform.ledger_models import PlatformOrder
from perpbot.platform.models import OracleCheck
from perpbot.platform.oracle import OracleGuard
from perpbot.platform.profiles import Profiles
from perpbot.platform.trading import OrderRefused, OrderRequest, TradeDesk
from perpbot.platform.wallet import Wallet

SYMBOL = "SOL/USDT:USDT"


@pytest.fixture
def venues(sol5m_path, sol_funding_path, sol_mark8h_path):
    data = sim_data(sol5m_path, sol_funding_path, sol_mark8h_path, 1600)
    with quiet_loggers("aiohttp.access"), running_sim(data, 1500) as sim:
        bitget = ccxt.bitget({"options": {"defaultType": "swap", "uta": False, "fetchMarkets": {"types": ["swap"]}}})
        sim.point(bitget)
        last = float(data[0]["close"].iloc[1499])  # the last closed candle at start_bar 1500
        now = sim.market.now_ms
        with FakeVenue("binanceusdm", last, now) as binance, FakeVenue("okx", last, now) as okx:
            yield {"sim": sim, "bitget": bitget, "binance": binance, "okx": okx, "last": last}


def guard(v, engine=None, **kw):
    return OracleGuard(("bitget", v["bitget"]), {"binanceusdm": v["binance"].client(), "okx": v["okx"].client()},
                       clock=lambda: v["sim"].market.now_ms, engine=engine, **kw)


def test_agreeing_sources_pass(venues, engine):
    v = venues
    v["binance"].price = v["last"] * 1.0005  # 5 bps
    g = guard(v, engine, max_deviation_bps=50, max_age_s=30, min_sources=3)
    verdict = g.check(SYMBOL)
    assert verdict.verdict == "pass" and verdict.reasons == []
    # sources: bitget index = mark = last (the simulator's documented rule), binance +5 bps, okx = last
    assert [(q.name, q.fresh) for q in verdict.sources] == [("bitget", True), ("bitget:index", True),
                                                           ("bitget:mark", True), ("binanceusdm", True), ("okx", True)]
    assert verdict.median == pytest.approx(v["last"]) and verdict.venue_price == pytest.approx(v["last"])
    assert verdict.sources[3].deviation_bps == pytest.approx(5.0, abs=0.01)
    with engine.connect() as c:
        row = c.execute(sa.select(OracleCheck)).one()
    assert row.verdict == "pass" and row.id == verdict.check_id and len(row.sources) == 5
    g.close()


def test_a_venue_two_percent_off_and_a_stale_one_are_vetoed_and_recorded(venues, engine):
    v = venues
    v["binance"].price = v["last"] * 1.02
    v["okx"].time_ms = v["sim"].market.now_ms - 120_000  # last trade two minutes ago
    g = guard(v, engine, max_deviation_bps=50, max_age_s=30, min_sources=3)
    verdict = g.check(SYMBOL, user_id=None)
    assert verdict.verdict == "veto"
    assert verdict.reasons == [
        "stale: okx price is 120 s old (max 30 s)",
        f"deviation: binanceusdm {v['last'] * 1.02:g} is 200.0 bps from the median {v['last']:g} (max 50 bps)"]
    with engine.connect() as c:
        row = c.execute(sa.select(OracleCheck).where(OracleCheck.id == verdict.check_id)).one()
    assert row.verdict == "veto" and row.reasons == verdict.reasons and row.max_deviation_bps == pytest.approx(200.0)
    by_name = {s["name"]: s for s in row.sources}
    assert by_name["binanceusdm"]["deviation_bps"] == pytest.approx(200.0) and by_name["okx"]["fresh"] is False
    assert by_name["okx"]["age_s"] == 120.0 and by_name["bitget:index"]["deviation_bps"] == 0.0
    # the same prices once they agree again: pass
    v["binance"].price, v["okx"].time_ms = v["last"], v["sim"].market.now_ms
    assert g.check(SYMBOL).passed
    g.close()


def test_too_few_sources_is_a_veto(venues, engine):
    v = venues
    g = guard(v, engine, min_sources=4, timeout_s=5)
    v["okx"].__exit__()  # the okx server is gone: connection refused
    verdict = g.check(SYMBOL)
    assert verdict.verdict == "veto"
    assert verdict.reasons == ["quorum: 3 fresh independent sources answered, 4 needed"]
    assert verdict.sources[-1].name == "okx" and verdict.sources[-1].error.startswith("NetworkError")
    g.close()


def test_an_oracle_veto_refuses_the_order_and_locks_nothing(venues, engine):
    v = venues
    v["binance"].price = v["last"] * 0.98
    v["okx"].time_ms = v["sim"].market.now_ms - 120_000
    uid = make_user(engine, "oracle-user")
    wallet = Wallet(engine)
    wallet.deposit(uid, "USDT", 1000, "d")
    desk = TradeDesk(engine, wallet, Profiles(engine), oracle=guard(v, engine))
    with pytest.raises(OrderRefused) as err:
        desk.open_order(uid, OrderRequest(SYMBOL, "buy", Decimal("0.5"), Decimal("2"), client_order_id="o-veto"))
    assert err.value.source == "oracle" and err.value.reason.startswith("stale: okx")
    assert err.value.verdict.check_id is not None
    assert wallet.balances(uid)["USDT"] == {"available": Decimal(1000), "locked": Decimal(0)}
    with engine.connect() as c:
        status, reason = c.execute(sa.select(PlatformOrder.status, PlatformOrder.reason)).one()
        checks = c.execute(sa.select(OracleCheck.verdict, OracleCheck.user_id)).all()
    assert status == "refused" and reason.startswith("oracle: stale: okx") and checks == [("veto", uid)]


def test_the_guard_is_built_from_settings_with_injected_clients(venues):
    from perpbot.config import load_settings
    from perpbot.platform.service import oracle_from_settings

    v = venues
    s = load_settings(None, oracle_venues=["binanceusdm", "okx"], oracle_max_deviation_bps=25, oracle_max_age_s=10,
                      oracle_min_sources=4)
    g = oracle_from_settings(s, ("bitget", v["bitget"]), clients={"binanceusdm": v["binance"].client(),
                                                                  "okx": v["okx"].client()})
    g.clock = lambda: v["sim"].market.now_ms
    assert (g.max_deviation_bps, g.max_age_s, g.min_sources) == (25.0, 10.0, 4) and list(g.others) == ["binanceusdm", "okx"]
    assert g.check(SYMBOL, record=False).passed
    with pytest.raises(ValueError, match="not a ccxt exchange id"):
        oracle_from_settings(load_settings(None, oracle_venues=["nope"]), ("bitget", v["bitget"]))
    g.close()
