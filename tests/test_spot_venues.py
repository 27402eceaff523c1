"""The Indonesian spot venues Indodax and Tokocrypto (issue 12, item 6): settings pair each venue
with its market type, the spot market check, and the exact signed requests each venue receives
from :mod:`perpbot.exchange.spot_orders` through perpbot's real ccxt client (built by
:func:`perpbot.exchange.ccxt_adapter.make_exchange`, unpatched) against a recording stub on
127.0.0.1: market and limit buys and sells, cancel, balance, one order, and the look-up by
client id after a timeout before any resend. Signatures are recomputed with the test secret
(Indodax HMAC-SHA512 of the form body; Tokocrypto HMAC-SHA256 of the query, Binance style). A
candle download from Indodax stores exactly the real SOL prices x 16,000 IDR the stub served."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from perpbot.config import load_settings
from perpbot.config_sources import ConfigError
from perpbot.exchange import indodax, spot_orders, tokocrypto, venue_params
from perpbot.exchange.ccxt_adapter import ExchangeSetupError, make_exchange
from perpbot.exchange.executor import RetryPolicy
from perpbot.exchange.venue import LiveStartupError
from _sim_fixtures import quiet_loggers
from _spot_payloads import INDODAX_PAIRS, routes
from _venue_harness import KEY, KEY_HEADER, SECRET, signed, venue_client, without
from _venue_stub import VenueStub, point_at

REAL = {"PERPBOT_CONFIRM_REAL_MONEY": "yes"}  # Tokocrypto has no demo: real-money clients only
FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02, lookup_attempts=2)
MODULES = {"indodax": indodax, "tokocrypto": tokocrypto}
#: (symbol, reference price, limit buy, limit sell) per venue: SOL/IDR on Indodax, SOL/USDT on Tokocrypto
MARKET = {"indodax": ("SOL/IDR", 2_400_000.0, 2_376_000.0, 2_424_000.0),
          "tokocrypto": ("SOL/USDT", 150.0, 148.5, 151.5)}
CREATE = {"indodax": ("POST", "/tapi"), "tokocrypto": ("POST", "/open/v1/orders")}


@pytest.fixture(scope="module", autouse=True)
def _quiet():
    with quiet_loggers("ccxt", "aiohttp", "asyncio", "perpbot.live", "perpbot.spot"):
        yield


def spot_settings(venue: str, tmp_path, **kw):
    return load_settings(None, exchange=venue, market_type="spot", symbol=MARKET[venue][0], timeframe="1h",
                         api_key=KEY, api_secret=SECRET, output_dir=tmp_path, **kw)


def params(r) -> dict:
    """The request's parameters less the per-request fields (timestamp, signature)."""
    return without(r.form if r.method == "POST" else r.query, "timestamp", "signature")


def private(stub, venue: str) -> list:
    out = [r for r in stub.seen if KEY_HEADER[venue] in r.headers]
    assert all(signed(venue, r) for r in out), [(r.method, r.path) for r in out]
    return out


def drive(venue: str, tmp_path, steps, state: dict | None = None, timeout_ms: int = 2000, delays=None):
    """perpbot's client of ``venue`` (Indodax demo, Tokocrypto real money) on a fresh stub, markets
    loaded and checked; ``await steps(ex, market)``; (result, stub)."""
    state = {} if state is None else state
    with VenueStub(routes(venue, state), {}) as stub:
        async def go():
            ex = venue_client(spot_settings(venue, tmp_path), stub, real_money=venue == "tokocrypto", environ=REAL,
                              timeout_ms=timeout_ms)
            try:
                market, _ = await spot_orders.check_spot_market(ex, MARKET[venue][0], "1h")
                stub.clear()
                stub.delays.update(delays or {})
                return await steps(ex, market)
            finally:
                await ex.close()
        return asyncio.run(go()), stub


# ---- settings and the market check ---------------------------------------------------------------
def test_settings_pair_each_venue_with_its_market_type(tmp_path):
    with pytest.raises(ConfigError, match="exchange 'indodax' is a spot venue: set market_type = \"spot\" and a spot "
                                          "symbol like 'SOL/IDR'"):
        load_settings(None, exchange="indodax")
    with pytest.raises(ConfigError, match="exchange 'bitget' trades linear perpetuals in perpbot, not spot: "
                                          "market_type \"spot\" needs a spot venue \\(indodax, tokocrypto\\)"):
        load_settings(None, market_type="spot", symbol="SOL/IDR")
    with pytest.raises(ConfigError, match="exchange 'weex' trades linear perpetuals"):
        load_settings(None, exchange="weex", market_type="spot", symbol="SOL/USDT")
    assert spot_settings("tokocrypto", tmp_path).symbol == "SOL/USDT"
    assert load_settings(None, exchange="weex").market_type == "futures"
    assert load_settings(None, exchange="kraken", market_type="spot", symbol="SOL/EUR").exchange == "kraken"  # no module


@pytest.mark.parametrize("venue", ["indodax", "tokocrypto"])
def test_spot_market_check_gives_the_venues_rules_and_refuses_what_perpbot_does_not_trade(venue, tmp_path):
    (m, rules), stub = drive(venue, tmp_path, lambda ex, market: spot_orders.check_spot_market(ex, market["symbol"],
                                                                                                "1h"))
    if venue == "indodax":  # taker: trade_fee_percent 0.3 is 0.3 % (ccxt files it as 0.3); minimum: 10,000 IDR
        assert (m["id"], rules.lot, rules.tick, rules.min_qty, rules.min_notional, rules.taker) == \
            ("solidr", 1e-8, 1.0, 0.001, 10_000.0, 0.003)
    else:
        assert (m["id"], rules.lot, rules.tick, rules.min_qty, rules.min_notional) == ("SOL_USDT", 0.001, 0.01, 0.001, 5)
    assert rules.max_leverage == 1.0 and stub.seen == []  # markets were cached: nothing more asked

    async def refusals(ex, market):
        out = []
        for symbol, tf in (("SOL/BTC", "1h"), ("SOL/USDT:USDT", "1h"), (market["symbol"], "5m" if venue == "indodax"
                                                                        else "2d")):
            try:
                await spot_orders.check_spot_market(ex, symbol, tf)
            except LiveStartupError as exc:
                out.append(str(exc))
        return out
    msgs, stub = drive(venue, tmp_path, refusals)
    if venue == "indodax":
        assert msgs[0] == ("SOL/BTC on indodax is quoted in BTC; perpbot trades indodax spot against IDR, USDT; "
                           "nothing was sent")
        assert msgs[2].startswith("indodax does not offer the timeframe '5m' (it has 1m, 15m, 30m, 1h")
    else:
        assert msgs[0].startswith("tokocrypto does not list SOL/BTC") and "'2d'" in msgs[2]
    assert msgs[1].startswith(f"{venue} does not list SOL/USDT:USDT") and len(msgs) == 3
    assert private(stub, venue) == []


def test_a_pair_in_maintenance_is_refused(tmp_path):
    pairs = [{**p, "is_maintenance": 1} if p["id"] == "solidr" else p for p in INDODAX_PAIRS]
    table = {**routes("indodax", {}), ("GET", "/api/pairs"): pairs}
    with VenueStub(table, {}) as stub:
        async def go():
            ex = venue_client(spot_settings("indodax", tmp_path), stub)
            try:
                await spot_orders.check_spot_market(ex, "SOL/IDR", "1h")
            finally:
                await ex.close()
        with pytest.raises(LiveStartupError, match="SOL/IDR on indodax is not trading now \\(maintenance\\)"):
            asyncio.run(go())


# ---- orders ----------------------------------------------------------------------------------------
ORDERS = {
    "indodax": [
        {"method": "trade", "recvWindow": "5000", "pair": "solidr", "type": "buy", "price": "2400000.0",
         "idr": "1200000", "client_order_id": "pb0-7-0", "order_type": "market"},
        {"method": "trade", "recvWindow": "5000", "pair": "solidr", "type": "sell", "price": "2400000.0",
         "sol": "0.5", "client_order_id": "pb0-7-1", "order_type": "market"},
        {"method": "trade", "recvWindow": "5000", "pair": "solidr", "type": "buy", "price": "2376000.0",
         "idr": "1188000", "sol": "0.5", "client_order_id": "pb0-7-2"},
        {"method": "trade", "recvWindow": "5000", "pair": "solidr", "type": "sell", "price": "2424000.0",
         "sol": "0.5", "client_order_id": "pb0-7-3"}],
    "tokocrypto": [
        {"symbol": "SOL_USDT", "type": "2", "side": "0", "clientId": "pb0-7-0", "quoteOrderQty": "75",
         "recvWindow": "5000"},
        {"symbol": "SOL_USDT", "type": "2", "side": "1", "clientId": "pb0-7-1", "quantity": "0.5",
         "recvWindow": "5000"},
        {"symbol": "SOL_USDT", "type": "1", "side": "0", "clientId": "pb0-7-2", "quantity": "0.5", "price": "148.5",
         "timeInForce": "1", "recvWindow": "5000"},
        {"symbol": "SOL_USDT", "type": "1", "side": "1", "clientId": "pb0-7-3", "quantity": "0.5", "price": "151.5",
         "timeInForce": "1", "recvWindow": "5000"}],
}


@pytest.mark.parametrize("venue", ["indodax", "tokocrypto"])
def test_market_and_limit_buys_and_sells_are_sent_as_the_venue_expects(venue, tmp_path):
    """0.5 SOL each: market buy (sized in the quote currency at the reference price), market sell,
    limit buy below and limit sell above the reference price."""
    symbol, ref, low, high = MARKET[venue]

    async def steps(ex, market):
        mod, out = MODULES[venue], []
        for n, (side, price) in enumerate((("buy", None), ("sell", None), ("buy", low), ("sell", high))):
            out.append(await spot_orders.place_order(ex, mod, symbol, side, 0.5, cid=f"pb0-7-{n}", price=price,
                                                     ref_price=ref, retry=FAST))
        return out
    results, stub = drive(venue, tmp_path, steps)
    seen = private(stub, venue)
    assert [(r.method, r.path) for r in seen] == [CREATE[venue]] * 4
    assert [params(r) for r in seen] == ORDERS[venue]
    assert all(r.ok and r.attempts == 1 for r in results)
    assert {r.order["id"] for r in results} == {"59632813" if venue == "indodax" else "145265071"}


def test_a_market_order_sized_in_the_quote_currency_needs_a_reference_price():
    with pytest.raises(ValueError, match="indodax: a market sell needs ref_price"):
        spot_orders.order_call(indodax, "sell", 0.5, "pb0-7-0")
    with pytest.raises(ValueError, match="tokocrypto: a market buy needs ref_price"):
        spot_orders.order_call(tokocrypto, "buy", 0.5, "pb0-7-0")
    assert spot_orders.order_call(tokocrypto, "sell", 0.5, "pb0-7-0").price is None  # sized in coins
    with pytest.raises(ValueError, match="side must be 'buy' or 'sell'"):
        spot_orders.order_call(tokocrypto, "short", 0.5, "pb0-7-0")
    with pytest.raises(ValueError, match="not a spot venue of perpbot"):
        spot_orders.spot_venue("weex")


READS = {
    "indodax": [("POST", "/tapi", {"method": "cancelOrder", "recvWindow": "5000", "order_id": "4242",
                                   "pair": "solidr", "type": "buy"}),
                ("POST", "/tapi", {"method": "getInfo", "recvWindow": "5000"}),
                ("POST", "/tapi", {"method": "getOrder", "recvWindow": "5000", "pair": "solidr", "order_id": "4242"})],
    "tokocrypto": [("POST", "/open/v1/orders/cancel", {"orderId": "4242", "recvWindow": "5000"}),
                   ("GET", "/open/v1/account/spot", {"recvWindow": "5000"}),
                   ("GET", "/open/v1/orders", {"orderId": "4242", "recvWindow": "5000"})],
}


@pytest.mark.parametrize("venue", ["indodax", "tokocrypto"])
def test_cancel_balance_and_one_order(venue, tmp_path):
    symbol = MARKET[venue][0]

    async def steps(ex, market):
        canceled = await spot_orders.cancel(ex, MODULES[venue], symbol, "4242", "buy")
        bal = await spot_orders.balance(ex, market)
        order = await spot_orders.fetch_order(ex, symbol, "4242")
        return canceled, bal, order
    (canceled, bal, order), stub = drive(venue, tmp_path, steps)
    assert [(r.method, r.path, params(r)) for r in private(stub, venue)] == READS[venue]
    assert (canceled["id"], canceled["status"], order["id"], order["status"]) == ("4242", "canceled", "4242", "closed")
    if venue == "indodax":  # 1,200,000 IDR bought 0.4985 SOL (getOrder's receive_sol)
        assert (bal.quote, bal.quote_free, bal.quote_used, bal.base_free, bal.base_used) == \
            ("IDR", 5_000_000.0, 1_200_000.0, 1.25, 0.1)
        assert (order["cost"], order["filled"]) == (1_200_000.0, 0.4985)
        assert bal.equity(2_400_000.0) == 5_000_000 + 1_200_000 + 1.35 * 2_400_000
    else:
        assert (bal.quote, bal.quote_free, bal.quote_used, bal.base_free, bal.base_used) == ("USDT", 312.5, 75.0, 1.25,
                                                                                             0.1)
        assert (order["cost"], order["filled"], order["side"]) == (75.0, 0.5, "buy")


# ---- look-up by client id before any resend ------------------------------------------------------
LOOKUP = {"indodax": ("POST", "/tapi", {"method": "getOrderByClientOrderId", "recvWindow": "5000",
                                        "client_order_id": "pb0-7-0"}),
          "tokocrypto": ("GET", "/open/v1/orders", {"symbol": "SOL_USDT", "type": "-1", "recvWindow": "5000"})}


@pytest.mark.parametrize("venue", ["indodax", "tokocrypto"])
def test_timeout_is_looked_up_by_client_id_before_any_resend(venue, tmp_path):
    """The venue accepts the market buy but answers after the 0.5 s client timeout: the order is
    looked up by its client id, found, and nothing is sent again."""
    symbol, ref = MARKET[venue][:2]
    res, stub = drive(venue, tmp_path, lambda ex, m: spot_orders.place_order(
        ex, MODULES[venue], symbol, "buy", 0.5, cid="pb0-7-0", ref_price=ref, retry=FAST),
        {"has": {"pb0-7-0"}}, timeout_ms=500, delays={CREATE[venue]: 1.5})
    seen = private(stub, venue)
    assert [(r.method, r.path, params(r)) for r in seen[1:]] == [LOOKUP[venue]]  # create, look-up, no resend
    assert params(seen[0]) == ORDERS[venue][0]
    assert res.ok and res.attempts == 1 and res.order["clientOrderId"] == "pb0-7-0"


@pytest.mark.parametrize("venue", ["indodax", "tokocrypto"])
def test_timeout_of_an_order_the_venue_does_not_have_is_resent_once_with_the_same_id(venue, tmp_path):
    symbol, ref = MARKET[venue][:2]
    res, stub = drive(venue, tmp_path, lambda ex, m: spot_orders.place_order(
        ex, MODULES[venue], symbol, "buy", 0.5, cid="pb0-7-0", ref_price=ref, retry=FAST),
        {}, timeout_ms=500, delays={CREATE[venue]: 1.5})
    seen = private(stub, venue)
    assert [(r.method, r.path) for r in seen] == [CREATE[venue], LOOKUP[venue][:2], CREATE[venue]]
    assert params(seen[0]) == params(seen[2]) == ORDERS[venue][0] and params(seen[1]) == LOOKUP[venue][2]
    assert res.ok and res.attempts == 2


# ---- demo, real money, the live bot -------------------------------------------------------------
def test_indodax_demo_is_its_demo_exchange_and_tokocrypto_is_real_money_only(tmp_path):
    async def urls():
        ex = make_exchange(spot_settings("indodax", tmp_path))
        try:
            return dict(ex.urls["api"]), ex.options["defaultType"]
        finally:
            await ex.close()
    assert asyncio.run(urls()) == ({"public": "https://demo-indodax.com", "private": "https://demo-indodax.com/tapi"},
                                   "spot")
    assert venue_params.demo_line("indodax") == indodax.DEMO and venue_params.real_money_warning("indodax") is None
    with pytest.raises(ExchangeSetupError, match="tokocrypto has no demo/sandbox mode in ccxt.*--real-money"):
        make_exchange(spot_settings("tokocrypto", tmp_path))
    assert venue_params.real_money_warning("tokocrypto") == tokocrypto.WARNING


@pytest.mark.parametrize("venue", ["indodax", "tokocrypto"])
def test_live_run_refuses_a_spot_venue_naming_it_before_anything_is_built(venue, tmp_path, capsys):
    import typer

    from perpbot.cli.live import run_live

    want = (f"live trading runs on bitget, binanceusdm, bybit, okx only for now: {venue} is a spot venue, whose orders perpbot sends "
            "through perpbot.exchange.spot_orders, not through the live bot; nothing was sent")
    with pytest.raises(LiveStartupError) as exc:
        venue_params.check_live(venue)
    assert str(exc.value) == want
    s = spot_settings(venue, tmp_path, ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}")
    with pytest.raises(typer.Exit):
        run_live(s, real_money=False, strategy="ema-cross", environ={})
    assert want in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "ledger.db").exists()  # refused before the ledger was opened


# ---- market data: a candle download ---------------------------------------------------------------
def test_indodax_candles_download_into_the_store_exactly_as_served(data_dir, tmp_path):
    """The stub serves 300 real SOLUSDT 1h candles x 16,000 IDR (Indodax's tradingview history,
    seconds); the store then holds exactly those candles under indodax/solidr."""
    from perpbot.data import load_candles
    from perpbot.data.store import store_path
    from perpbot.exchange.download import download, make_sync_exchange

    src = load_candles(data_dir / "SOLUSDT-1h.parquet", "1h").iloc[4000:4300].reset_index(drop=True)
    for k in ("open", "high", "low", "close"):
        src[k] = src[k] * 16_000.0
    secs = [int(t.timestamp()) for t in src.timestamp]
    rows = [{"Time": t, "Open": o, "High": h, "Low": lo, "Close": c, "Volume": str(v)}
            for t, o, h, lo, c, v in zip(secs, src.open, src.high, src.low, src.close, src.volume)]

    def history(r):
        lo, hi = int(r.query["from"]), int(r.query["to"])
        assert (r.query["symbol"], r.query["tf"]) == ("solidr", "60")
        return [row for row in rows if lo <= row["Time"] <= hi]

    table = {("GET", "/api/pairs"): INDODAX_PAIRS, ("GET", "/tradingview/history_v2"): history,
             ("GET", "/api/server_time"): {"timezone": "UTC", "server_time": (secs[-1] + 3600) * 1000 + 5000}}
    with VenueStub(table, {}) as stub:
        ex = make_sync_exchange("indodax")
        ex.rateLimit = 1
        point_at(ex, stub.base_url)
        res = download(ex, "SOL/IDR", "1h", tmp_path, kinds=["candles"], since=secs[0] * 1000)
    got = load_candles(store_path(tmp_path, "indodax", "solidr", "1h", "candles"), "1h")
    assert res.kinds["candles"].added == 300
    pd.testing.assert_frame_equal(got, src, check_exact=True)
    assert [r.path for r in stub.requests("/tradingview/history_v2")] == ["/tradingview/history_v2"]  # one page
