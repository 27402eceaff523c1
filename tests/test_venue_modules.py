"""The venue modules behind the seam (issue 10, item 5; WEEX, Indodax and Tokocrypto: issue 12,
item 6): registry, demo switch per venue, the MEXC and WEEX real-money-only warnings, client-id
forms, the contract-size guard and "already set" answers at start-up. Real ccxt clients from
:func:`perpbot.exchange.ccxt_adapter.make_exchange`; the start-up cases run against the
recording stub on 127.0.0.1."""

from __future__ import annotations

import asyncio
import re

import pandas as pd
import pytest
from rich.console import Console

from perpbot.config_values import PERPETUAL_VENUES, SPOT_VENUES
from perpbot.exchange import binance, bitget, bybit, indodax, mexc, okx, tokocrypto, venue_params, weex
from perpbot.exchange.ccxt_adapter import ExchangeSetupError, banner, make_exchange
from perpbot.exchange.clients import VENUES, capabilities, swap_options
from perpbot.exchange.executor import Executor, LiveStartupError, RetryPolicy
from _sim_fixtures import quiet_loggers
from _venue_harness import venue_client, venue_settings
from _venue_payloads import FALLBACK, MEXC_CONTRACT, WEEX, bybit_ok, mexc_ok, routes
from _venue_stub import VenueStub

REQUIRED = ("ID", "CCXT_OPTIONS", "CAPABILITIES", "DEMO", "enable_demo", "real_money_warning", "client_order_id",
            "margin_mode_params", "leverage_params", "entry_params", "protection_calls", "exit_params", "lookup",
            "cancel_params")
SPOT_REQUIRED = ("ID", "CCXT_OPTIONS", "CAPABILITIES", "DEMO", "QUOTES", "MARKET_NEEDS_PRICE", "enable_demo",
                 "real_money_warning", "client_order_id", "order_params", "cancel", "taker_fee", "min_notional",
                 "lookup")


@pytest.fixture(scope="module", autouse=True)
def _quiet():
    with quiet_loggers("ccxt", "aiohttp", "asyncio", "perpbot.live"):
        yield


def test_registry_holds_the_eight_venues_with_their_capabilities():
    assert list(VENUES) == ["bitget", "binanceusdm", "bybit", "okx", "mexc", "weex", "indodax", "tokocrypto"]
    for mod in (binance, bybit, okx, mexc, weex):
        assert all(hasattr(mod, name) for name in REQUIRED), mod.ID
    for mod in (indodax, tokocrypto):
        assert all(hasattr(mod, name) for name in SPOT_REQUIRED), mod.ID
    caps = {k: capabilities(k) for k in VENUES}
    assert [k for k, c in caps.items() if c.preset_tpsl_at_entry] == ["bitget", "bybit", "okx", "mexc", "weex"]
    assert [k for k, c in caps.items() if not c.demo] == ["mexc", "weex", "tokocrypto"]
    assert [k for k, c in caps.items() if not c.trailing_stop] == ["mexc", "weex", "indodax", "tokocrypto"]
    assert {k: c.candle_page for k, c in caps.items()} == {"bitget": 200, "binanceusdm": 1500, "bybit": 1000,
                                                           "okx": 300, "mexc": 2000, "weex": 1000, "indodax": 2000,
                                                           "tokocrypto": 1000}
    # the settings check (config layer, below the registry) knows the same venues by market type
    assert tuple(k for k, c in caps.items() if c.market_type == "spot") == SPOT_VENUES
    assert tuple(k for k, c in caps.items() if c.market_type == "swap") == PERPETUAL_VENUES
    assert swap_options("bybit") == {"defaultType": "swap", "enableUnifiedAccount": True, "enableUnifiedMargin": False,
                                     "defaultSubType": "linear", "fetchMarkets": {"types": ["linear"]},
                                     "fetchOrder": {"acknowledged": True}}
    assert swap_options("indodax") == swap_options("tokocrypto") == {"defaultType": "spot"}
    assert swap_options("weex") == {"defaultType": "swap"}
    assert capabilities("kraken") is None


def test_demo_mode_is_each_venues_demo_trading(tmp_path):
    """Binance: demo-fapi (ccxt refuses the deprecated futures testnet); Bybit: api-demo; OKX: the
    x-simulated-trading header; Bitget: sandbox mode, its paptrading header (unchanged)."""
    async def build(venue):
        ex = make_exchange(venue_settings(venue, tmp_path))
        try:
            return dict(ex.urls["api"]), {**(ex.headers or {}), "sandboxMode": ex.options.get("sandboxMode")}
        finally:
            await ex.close()

    urls, _ = asyncio.run(build("binanceusdm"))
    assert urls["fapiPrivate"] == "https://demo-fapi.binance.com/fapi/v1"
    assert not any("testnet" in u for k, u in urls.items() if k != "ws")  # REST: no futures testnet
    urls, _ = asyncio.run(build("bybit"))
    assert urls["private"] == "https://api-demo.{hostname}"
    _, headers = asyncio.run(build("okx"))
    assert headers["x-simulated-trading"] == "1"
    _, headers = asyncio.run(build("bitget"))
    assert headers["sandboxMode"] is True  # ccxt signs with the paptrading: 1 header


def test_mexc_has_no_demo_and_its_banner_says_real_money_loudly(tmp_path):
    s = venue_settings("mexc", tmp_path)
    with pytest.raises(ExchangeSetupError, match="mexc has no demo/sandbox mode.*--real-money"):
        make_exchange(s)
    assert venue_params.real_money_warning("mexc") == mexc.WARNING
    assert all(venue_params.real_money_warning(v) is None for v in ("bitget", "binanceusdm", "bybit", "okx", "indodax"))
    console = Console(record=True, width=400)
    console.print(banner(s, True))
    text = console.export_text()
    assert "REAL MONEY" in text and "MEXC has NO demo or testnet account in ccxt" in text
    console = Console(record=True, width=400)
    console.print(banner(venue_settings("okx", tmp_path), False))
    text = console.export_text()
    assert "OKX demo trading (x-simulated-trading: 1)" in text and "NO demo" not in text


def test_client_order_ids_fit_each_venue():
    ids = [f"pb{r}-{b}-{n}" for r in (0, 1, 12, 123) for b in (5, 56, 5_905_123) for n in (0, 1, 12)]
    okx_ids = [okx.client_order_id(c) for c in ids]
    assert len(set(okx_ids)) == len(ids)  # one-to-one
    assert all(re.fullmatch(r"[A-Za-z0-9]{1,32}", c) for c in okx_ids)  # OKX clOrdId
    assert okx.client_order_id("pb7-2900-0") == "pb7x2900x0"
    for mod in (binance, bybit, mexc):
        assert [mod.client_order_id(c) for c in ids] == ids
    assert all(re.fullmatch(r"[.A-Z:/a-z0-9_-]{1,36}", c + "-sl") for c in ids)  # Binance, with the TP/SL suffix


def test_params_of_the_executor_stay_bitgets_for_bitget():
    assert venue_params.entry_params("bitget", "pb1-2-0", 140.0, 160.0, 5) == {
        "marginMode": "isolated", "clientOrderId": "pb1-2-0", "stopLoss": {"triggerPrice": 140.0},
        "takeProfit": {"triggerPrice": 160.0}}
    assert venue_params.exit_params("bitget", "pb1-2-1", 5) == {"marginMode": "isolated", "reduceOnly": True,
                                                                "clientOrderId": "pb1-2-1"}
    assert venue_params.preset_protection("bitget") and not venue_params.preset_protection("binanceusdm")
    # Binance: the executor's entry goes bare, its stops follow as reduce-only trigger orders
    assert venue_params.entry_params("binanceusdm", "pb1-2-0", 140.0, 160.0, 5) == {"clientOrderId": "pb1-2-0"}
    assert venue_params.protection_params("binanceusdm", "stop_loss", "pb1-2-1", 140.0) == {
        "stopLossPrice": 140.0, "reduceOnly": True, "workingType": "MARK_PRICE", "clientOrderId": "pb1-2-1"}
    assert venue_params.protection_params("bitget", "take_profit", "pb1-2-2", 160.0) == {
        "takeProfitPrice": 160.0, "clientOrderId": "pb1-2-2"}
    with pytest.raises(ValueError):
        binance.entry_params("pb1-2-0", 140.0, None, 5)
    assert bitget.ID in VENUES


def _startup(venue, tmp_path, state, patch):
    table = routes(venue, state)
    table.update(patch)
    with VenueStub(table, FALLBACK[venue]) as stub:
        async def go():
            s = venue_settings(venue, tmp_path)
            exe = Executor(venue_client(s, stub, real_money=venue == "mexc", environ={"PERPBOT_CONFIRM_REAL_MONEY": "yes"}),
                           s, retry=RetryPolicy(attempts=1, base_delay=0.01, lookup_attempts=1))
            try:
                return await exe.startup()
            finally:
                await exe.close()
        try:
            return asyncio.run(go()), stub
        except LiveStartupError as exc:
            return exc, stub


def test_contracts_of_another_size_are_refused_before_anything_is_sent(tmp_path):
    detail = mexc_ok([{**MEXC_CONTRACT, "contractSize": 0.1}])
    out, stub = _startup("mexc", tmp_path, {}, {("GET", "/api/v1/contract/detail"): detail})
    assert isinstance(out, LiveStartupError)
    assert str(out) == ("SOL/USDT:USDT on mexc trades in contracts of 0.1 SOL; perpbot's executor sends base-asset "
                        "amounts (contract size 1 only); nothing was sent")
    assert [r.path for r in stub.seen if r.method == "POST"] == []


def test_bybit_already_set_answers_count_as_done(tmp_path):
    """110026 (margin mode not modified) and 110043 (leverage not modified) are "already so"."""
    out, stub = _startup("bybit", tmp_path, {}, {
        ("POST", "/v5/account/set-margin-mode"): {"retCode": 110026, "retMsg": "Cross/isolated margin mode is not modified",
                                                  "result": {}, "retExtInfo": {}, "time": 0},
        ("POST", "/v5/position/set-leverage"): {"retCode": 110043, "retMsg": "leverage not modified", "result": {},
                                                "retExtInfo": {}, "time": 0}})
    assert not isinstance(out, Exception) and out.lot == 0.1
    assert [r.path for r in stub.seen if r.method == "POST"] == ["/v5/account/set-margin-mode",
                                                                 "/v5/position/set-leverage"]


def test_a_refused_leverage_stops_the_startup_with_one_line(tmp_path):
    out, _ = _startup("bybit", tmp_path, {}, {("POST", "/v5/position/set-leverage"): {
        "retCode": 10001, "retMsg": "leverage invalid", "result": {}, "retExtInfo": {}, "time": 0}})
    assert isinstance(out, LiveStartupError) and "account set-up" in str(out) and "\n" not in str(out)
    assert bybit_ok({})["retCode"] == 0


@pytest.mark.parametrize("venue", ["mexc", "weex"])
def test_live_bot_refuses_other_venues_before_anything_is_sent(venue, tmp_path, capsys):
    """Reconciliation and stop management read Bitget's, Binance's, Bybit's and OKX's stop orders only: ``perpbot run
    --mode live`` and :meth:`LiveBot.start` refuse the other venues with one line, before any request."""
    import typer

    from perpbot.bot.live import LiveBot
    from perpbot.cli.live import run_live

    with VenueStub(routes(venue, {}), FALLBACK[venue]) as stub:
        s = venue_settings(venue, tmp_path, ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}")
        env = {"PERPBOT_CONFIRM_REAL_MONEY": "yes"}
        ex = venue_client(s, stub, real_money=venue in ("mexc", "weex"), environ=env)
        with pytest.raises(typer.Exit):
            run_live(s, real_money=venue in ("mexc", "weex"), strategy="ema-cross", environ=env, exchange=ex)
        err = capsys.readouterr().err
        assert "live trading runs on bitget, binanceusdm, bybit, okx only for now" in err and f"read {venue}'s stop orders" in err
        assert "nothing was sent" in err

        async def start():
            try:
                await LiveBot(s, Executor(ex, s), "ema-cross").start()
            finally:
                await ex.close()
        with pytest.raises(LiveStartupError, match=f"{venue}'s stop orders yet \\(its order calls exist"):
            asyncio.run(start())
    assert stub.seen == []
    venue_params.check_live("bitget")  # Bitget, Binance and OKX pass
    venue_params.check_live("binanceusdm")
    venue_params.check_live("okx")
    with pytest.raises(LiveStartupError, match="entry_order = 'limit' is not offered live on binanceusdm"):
        venue_params.check_live("binanceusdm", "limit")  # a resting limit would fill without its stop


def test_mexc_funding_history_is_paged_back_by_page_num(funding, tmp_path):
    """MEXC's ``funding_page_param`` ("page_num"): the downloader pages newest-first (as in ccxt's
    sample answer) until it passes ``since``; the store then holds exactly the served rows from
    ``since`` on. The venue serves the last 250 real SOLUSDT settlements of ``../shared/data``."""
    from perpbot.data import load_funding
    from perpbot.exchange.download import download, make_sync_exchange

    rows = funding.tail(250).reset_index(drop=True)
    newest_first = [{"symbol": "SOL_USDT", "fundingRate": float(r.funding_rate),
                     "settleTime": int(r.timestamp.value // 1_000_000)} for r in rows.iloc[::-1].itertuples()]

    def history(r):
        size, page = int(r.query["page_size"]), int(r.query["page_num"])
        part = newest_first[(page - 1) * size: page * size]
        return mexc_ok({"pageSize": size, "totalCount": len(newest_first), "totalPage": -(-len(newest_first) // size),
                        "currentPage": page, "resultList": part})

    table = {("GET", "/api/v1/contract/detail"): mexc_ok([MEXC_CONTRACT]),
             ("GET", "/api/v1/contract/ping"): mexc_ok(int(rows.timestamp.iloc[-1].value // 1_000_000) + 3_600_000),
             ("GET", "/api/v1/contract/funding_rate/history"): history}
    since = rows.timestamp[60]
    with VenueStub(table, FALLBACK["mexc"]) as stub:
        ex = make_sync_exchange("mexc")
        ex.rateLimit = 1
        from _venue_stub import point_at

        point_at(ex, stub.base_url)
        res = download(ex, "SOL/USDT:USDT", "5m", tmp_path, kinds=["funding"], since=since.isoformat())
    pages = [r.query for r in stub.requests("/api/v1/contract/funding_rate/history")]
    assert pages == [{"symbol": "SOL_USDT", "page_size": "100", "page_num": str(n)} for n in (1, 2)]
    got = load_funding(tmp_path / "mexc" / "SOL_USDT-funding.parquet")  # named by the market id
    want = rows.iloc[60:].reset_index(drop=True)
    assert res.kinds["funding"].added == 190
    pd.testing.assert_frame_equal(got, want, check_exact=True)


@pytest.mark.parametrize("venue", ["bybit", "okx"])
def test_trailing_stop_is_skipped_where_perpbot_does_not_place_it(venue, tmp_path):
    """These venues offer trailing stops, but the executor places Bitget's and Binance's only: skipped, nothing sent."""
    with VenueStub(routes(venue, {}), FALLBACK[venue]) as stub:
        async def go():
            s = venue_settings(venue, tmp_path)
            exe = Executor(venue_client(s, stub), s)
            try:
                return await exe.trailing_stop(1, 2.0, 150.0, 0.005, bar=1)
            finally:
                await exe.close()
        res = asyncio.run(go())
    assert res.status == "skipped" and res.error == f"perpbot places trailing stops on bitget, binanceusdm, not {venue}"
    assert stub.seen == [] and capabilities(venue).trailing_stop


def test_weex_demo_lacks_the_calls_perpbot_needs_so_weex_is_real_money_only(tmp_path):
    """ccxt's WEEX sandbox mode reaches only the demo endpoints (capi/v3/sim): it refuses margin
    mode, leverage, cancel and the open-order read of the look-up before anything is sent, so
    perpbot offers no WEEX demo and its banner says REAL MONEY loudly."""
    import ccxt
    import ccxt.async_support as ccxt_async

    from _venue_harness import KEY, PASSPHRASE, SECRET
    from _venue_stub import point_at

    s = venue_settings("weex", tmp_path)
    with pytest.raises(ExchangeSetupError, match="weex has no demo/sandbox mode.*--real-money"):
        make_exchange(s)
    assert venue_params.real_money_warning("weex") == weex.WARNING
    console = Console(record=True, width=400)
    console.print(banner(s, True))
    text = console.export_text()
    assert "REAL MONEY" in text and "WEEX demo trading in ccxt (capi/v3/sim)" in text
    with VenueStub(WEEX, {}) as stub:
        async def go():
            ex = ccxt_async.weex({"apiKey": KEY, "secret": SECRET, "password": PASSPHRASE})
            ex.set_sandbox_mode(True)
            point_at(ex, stub.base_url)
            try:
                await ex.load_markets()
                for call in (lambda: ex.set_margin_mode("isolated", "SOL/USDT:USDT"),
                             lambda: ex.set_leverage(5, "SOL/USDT:USDT"), lambda: ex.cancel_order("1", "SOL/USDT:USDT"),
                             lambda: ex.fetch_open_orders("SOL/USDT:USDT")):
                    with pytest.raises(ccxt.NotSupported, match="is not available in sandbox mode"):
                        await call()
            finally:
                await ex.close()
        asyncio.run(go())
    assert "/capi/v3/market/exchangeInfo" in [r.path for r in stub.seen]
    assert [r.path for r in stub.seen if "access-key" in r.headers] == []  # nothing private was sent


def test_a_binance_demo_run_is_recorded_as_demo_and_a_real_one_as_real(tmp_path):
    """Runs belong to one account and mode: Binance demo trading (ccxt ``enable_demo_trading``, not sandbox
    mode) counts as demo, so a demo run's orders are never looked up on the real account."""
    from perpbot.exchange.ccxt_adapter import make_exchange
    from perpbot.exchange.reconcile import account_identity

    s = venue_settings("binanceusdm", tmp_path)
    demo = make_exchange(s)
    real = make_exchange(s, real_money=True, environ={"PERPBOT_CONFIRM_REAL_MONEY": "yes"})
    ids = account_identity(demo), account_identity(real)
    assert [i["trading_mode"] for i in ids] == ["demo", "real"] and ids[0]["account"] == ids[1]["account"]
    assert demo.urls["api"]["fapiPrivate"].startswith("https://demo-fapi.binance.com")
    asyncio.run(demo.close())
    asyncio.run(real.close())


def test_exit_reasons_and_protection_kinds_as_each_live_venue_says_them():
    """Bitget: ``planType`` of the plan and ``orderSource`` of the triggered order; Binance: ``orderType`` of
    the algo order and ``origType`` of the triggered market order, liquidation orders ``autoclose-...``."""
    def order(**info):
        return {"info": info}
    assert [venue_params.protection_kind("bitget", order(planType=t)) for t in
            ("pos_loss", "loss_plan", "pos_profit", "moving_plan", "normal_plan")] == \
        ["stop_loss", "stop_loss", "take_profit", "trailing_stop", None]
    assert [venue_params.protection_kind("binanceusdm", order(orderType=t)) for t in
            ("STOP_MARKET", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET", "LIMIT")] == \
        ["stop_loss", "take_profit", "trailing_stop", None]
    assert [venue_params.exit_reason("bitget", order(orderSource=t)) for t in
            ("pos_loss_market", "pos_profit_market", "moving_plan_market", "liquidation", "market")] == \
        ["stop_loss", "take_profit", "trailing_stop", "liquidation", None]
    assert [venue_params.exit_reason("binanceusdm", order(origType=t, clientOrderId=c)) for t, c in
            (("STOP_MARKET", "x"), ("TAKE_PROFIT_MARKET", "x"), ("TRAILING_STOP_MARKET", "x"),
             ("LIMIT", "autoclose-1764633600000"), ("MARKET", "pb1-2-3"))] == \
        ["stop_loss", "take_profit", "trailing_stop", "liquidation", None]
    assert venue_params.duplicate_codes("binanceusdm") == ("-4116", "-20132")
    assert venue_params.duplicate_codes("bitget") == ("40786",)


def test_okx_algo_orders_are_known_by_their_own_client_id_and_levels():
    """OKX: a pending algo order carries perpbot's id as ``algoClOrdId`` (``clOrdId`` names the order it places
    once triggered, empty before); the entry's OCO holds both levels; ``actualSide`` says which one fired."""
    algo = {"info": {"ordType": "conditional", "algoClOrdId": "pb1x2x3", "clOrdId": "", "slTriggerPx": "140"},
            "clientOrderId": None}
    oco = {"info": {"ordType": "oco", "algoClOrdId": "", "clOrdId": "", "slTriggerPx": "140", "tpTriggerPx": "160"}}
    assert venue_params.listed_client_id("okx", algo) == venue_params.client_id("okx", "pb1-2-3") == "pb1x2x3"
    assert venue_params.listed_client_id("okx", oco) is None
    assert venue_params.listed_client_id("binanceusdm", {"clientOrderId": "pb1-2-3"}) == "pb1-2-3"
    assert venue_params.protection_levels("okx", oco) == {"stop_loss": 140.0, "take_profit": 160.0}
    assert venue_params.protection_kind("okx", algo) == "stop_loss"
    assert [venue_params.exit_reason("okx", {"info": {"actualSide": s}}) for s in ("sl", "tp", "")] == \
        ["stop_loss", "take_profit", None]
