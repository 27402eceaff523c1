"""The Bitget simulator trading two symbols (SOLUSDT + BTCUSDT) on ONE account, driven by the real,
unpatched ccxt 4.5 ``bitget`` / ``ccxt.pro.bitget`` clients over 127.0.0.1.

Real data: SOLUSDT 5m candles, funding and 8h mark prices; BTCUSDT 1m candles resampled to 5m
(:func:`perpbot.data.resample.resample_candles`) and cut to SOL's timestamps, BTC funding and
1h mark prices. The replay starts at 2025-05-05 07:45 UTC so that both positions carry the
08:00 UTC funding. Every money figure is recomputed by hand from the fill prices, the taker fee
(0.06 %), the leverage (SOL 10x default, BTC set to 5x) and the raw funding / mark files.
"""

from __future__ import annotations

import asyncio

import ccxt
import ccxt.pro as ccxtpro
import numpy as np
import pandas as pd
import pytest

from _sim_fixtures import quiet_loggers

from perpbot.data import load_candles, load_funding
from perpbot.data.resample import resample_candles
from perpbot.devtools.bitget_sim import BitgetSim

SOL, BTC, ETH = "SOL/USDT:USDT", "BTC/USDT:USDT", "ETH/USDT:USDT"
OPTIONS = {"defaultType": "swap", "uta": False, "fetchMarkets": {"types": ["swap"]}}
FIRST = pd.Timestamp("2025-05-04 15:35", tz="UTC")  # the first complete 5m bucket of the BTC 1m file
N_ROWS = 1200
START = 194          # bar 194 opens 2025-05-05 07:45 UTC: the entries fill at its open
FUND_BAR = 197       # bar 197 opens 08:00 UTC: a funding event for both symbols
TAKER = 0.0006
CAPITAL = 1000.0
Q_SOL, Q_BTC = 2.0, 0.01


@pytest.fixture(scope="module", autouse=True)
def _quiet_ccxt():
    with quiet_loggers("ccxt", "urllib3", "aiohttp", "asyncio"):
        yield


@pytest.fixture(scope="module")
def data(data_dir):
    d = data_dir  # .../binance-usdm
    sol = load_candles(d / "SOLUSDT-5m.parquet")
    sol = sol[sol.timestamp >= FIRST].iloc[:N_ROWS].reset_index(drop=True)
    btc = resample_candles(load_candles(d / "BTCUSDT-1m.parquet"), "5m")
    btc = btc.set_index("timestamp").reindex(sol.timestamp).reset_index()
    assert not btc[["open", "high", "low", "close", "volume"]].isna().any().any()  # no gap in the cut
    return {"sol": (sol, load_funding(d / "SOLUSDT-funding.parquet"), load_candles(d / "SOLUSDT-8h-mark.parquet")),
            "btc": (btc, load_funding(d / "BTCUSDT-funding.parquet"), load_candles(d / "BTCUSDT-1h-mark.parquet"))}


@pytest.fixture
def sim(data):
    sol, btc = data["sol"], data["btc"]
    s = BitgetSim(candles=sol[0], funding=sol[1], mark=sol[2], start_bar=START, capital=CAPITAL,
                  tradable={"BTCUSDT": btc})
    s.start()
    yield s
    s.stop()


def client(sim, cls=ccxt.bitget):
    ex = cls({"apiKey": sim.api_key, "secret": sim.api_secret, "password": sim.passphrase,
              "options": dict(OPTIONS), "enableRateLimit": False})
    ex.set_sandbox_mode(True)
    sim.point(ex)
    return ex


def _at(frame: pd.DataFrame, t: pd.Timestamp, col: str) -> float:
    (v,) = frame.loc[frame.timestamp == t, col].to_numpy()
    return float(v)


def _open_both(ex, sim, data):
    """SOL long 2.0 (10x) and BTC short 0.01 (5x), each with TP/SL presets, placed at the close of
    bar START - 1; returns the SOL / BTC order ids and the levels."""
    sol, btc = data["sol"][0], data["btc"][0]
    ex.load_markets()
    for sym in (SOL, BTC):
        ex.set_margin_mode("isolated", sym)
    ex.set_leverage(5, BTC)
    last_sol, last_btc = sol.close[START - 1], btc.close[START - 1]
    lv = {"sol_sl": round(float(last_sol) * 0.99, 3), "sol_tp": round(float(last_sol) * 1.03, 3),
          "btc_sl": round(float(last_btc) * 1.03, 1), "btc_tp": round(float(last_btc) * 0.97, 1)}
    o_sol = ex.create_order(SOL, "market", "buy", Q_SOL, params={
        "marginMode": "isolated", "stopLoss": {"triggerPrice": lv["sol_sl"]}, "takeProfit": {"triggerPrice": lv["sol_tp"]}})
    o_btc = ex.create_order(BTC, "market", "sell", Q_BTC, params={
        "marginMode": "isolated", "stopLoss": {"triggerPrice": lv["btc_sl"]}, "takeProfit": {"triggerPrice": lv["btc_tp"]}})
    return o_sol["id"], o_btc["id"], lv


def test_two_symbols_share_one_wallet_fill_fund_and_stop_independently(sim, data):
    sol, sol_f, sol_m = data["sol"]
    btc, btc_f, btc_m = data["btc"]
    ex = client(sim)
    id_sol, id_btc, lv = _open_both(ex, sim, data)
    assert ex.fetch_positions() == []  # market orders fill at the next candle's open
    assert [o["id"] for o in ex.fetch_open_orders(SOL)] == [id_sol]  # per symbol
    assert [o["id"] for o in ex.fetch_open_orders(BTC)] == [id_btc]
    sim.advance()
    # (1) each fills at the open of its own candle; free = capital - both margins - both entry fees
    p_sol, p_btc = float(sol.open[START]), float(btc.open[START])
    assert (p_sol, p_btc) == (146.79, 94642.5)
    f_sol, f_btc = ex.fetch_order(id_sol, SOL), ex.fetch_order(id_btc, BTC)
    assert (f_sol["average"], f_sol["filled"], f_btc["average"], f_btc["filled"]) == (p_sol, Q_SOL, p_btc, Q_BTC)
    m_sol, m_btc = Q_SOL * p_sol / 10, Q_BTC * p_btc / 5
    fee_sol, fee_btc = Q_SOL * p_sol * TAKER, Q_BTC * p_btc * TAKER
    assert f_sol["fee"]["cost"] == pytest.approx(fee_sol, abs=1e-9)
    assert f_btc["fee"]["cost"] == pytest.approx(fee_btc, abs=1e-9)
    bal = ex.fetch_balance()["USDT"]
    assert bal["free"] == pytest.approx(CAPITAL - m_sol - m_btc - fee_sol - fee_btc, abs=1e-8)
    assert bal["free"] == pytest.approx(1000.0 - 29.358 - 189.285 - 0.176148 - 0.567855, abs=1e-8)
    upnl = Q_SOL * (sol.close[START] - p_sol) - Q_BTC * (btc.close[START] - p_btc)
    assert bal["total"] == pytest.approx(CAPITAL - fee_sol - fee_btc + upnl, abs=1e-8)
    # (3) fetch_positions() without symbols lists both, each with its own leverage and margin
    pos = {p["symbol"]: p for p in ex.fetch_positions()}
    assert sorted(pos) == [BTC, SOL]
    assert (pos[SOL]["side"], pos[SOL]["contracts"], pos[SOL]["entryPrice"], pos[SOL]["leverage"]) == ("long", Q_SOL, p_sol, 10)
    assert (pos[BTC]["side"], pos[BTC]["contracts"], pos[BTC]["entryPrice"], pos[BTC]["leverage"]) == ("short", Q_BTC, p_btc, 5)
    assert pos[SOL]["initialMargin"] == pytest.approx(m_sol, abs=1e-9)
    assert pos[BTC]["initialMargin"] == pytest.approx(m_btc, abs=1e-9)
    plans = {s: sorted(p["triggerPrice"] for p in ex.fetch_open_orders(s, params={"planType": "profit_loss"}))
             for s in (SOL, BTC)}
    assert plans == {SOL: [lv["sol_sl"], lv["sol_tp"]], BTC: [lv["btc_tp"], lv["btc_sl"]]}
    assert [p["symbol"] for p in sim.state_of("BTCUSDT")["plans"]] == ["BTCUSDT", "BTCUSDT"]
    # (4) funding at 08:00 UTC, per symbol: qty x mark x rate (long pays, short receives when rate > 0)
    sim.advance(FUND_BAR - START)  # closes bars START+1 .. FUND_BAR: bar FUND_BAR's open carries the funding
    t = sol.timestamp[FUND_BAR]
    assert t == pd.Timestamp("2025-05-05 08:00", tz="UTC")
    pay_sol = Q_SOL * _at(sol_m, t, "open") * _at(sol_f, t, "funding_rate")
    pay_btc = -Q_BTC * _at(btc_m, t, "open") * _at(btc_f, t, "funding_rate")
    assert (_at(sol_m, t, "open"), _at(sol_f, t, "funding_rate")) == (146.8, 1.617e-05)
    assert (_at(btc_m, t, "open"), _at(btc_f, t, "funding_rate")) == (94697.80169565, 3.636e-05)
    assert pay_sol == 2.0 * 146.8 * 1.617e-05 and pay_btc == -0.01 * 94697.80169565 * 3.636e-05  # the short receives
    ms = int(t.value // 1_000_000)
    assert [(b["time"], b["amount"]) for b in sim.state_of("SOLUSDT")["bills"]] == [(ms, pytest.approx(-pay_sol, abs=1e-12))]
    assert [(b["time"], b["amount"]) for b in sim.state_of("BTCUSDT")["bills"]] == [(ms, pytest.approx(-pay_btc, abs=1e-12))]
    hist = {s: [(h["timestamp"], h["amount"]) for h in ex.fetch_funding_history(s)] for s in (SOL, BTC)}
    assert hist == {SOL: [(ms, pytest.approx(-pay_sol, abs=1e-9))], BTC: [(ms, pytest.approx(-pay_btc, abs=1e-9))]}
    wallet = CAPITAL - fee_sol - fee_btc - pay_sol - pay_btc
    assert sim.wallet.balance == pytest.approx(wallet, abs=1e-9)
    assert sim.state["balance"] == sim.state_of("BTCUSDT")["balance"] == sim.wallet.balance
    # (2) the SOL stop: the first later bar whose low reaches it; BTC's levels are untouched until then
    k = next(i for i in range(FUND_BAR + 1, N_ROWS) if sol.low[i] <= lv["sol_sl"])
    assert k == 224 and not (btc.high[START:k + 1] >= lv["btc_sl"]).any() and not (btc.low[START:k + 1] <= lv["btc_tp"]).any()
    assert sol_f.timestamp.isin(sol.timestamp[FUND_BAR + 1:k + 1]).sum() == 0  # no funding in between
    assert btc_f.timestamp.isin(btc.timestamp[FUND_BAR + 1:k + 1]).sum() == 0
    sim.advance(k - 1 - FUND_BAR)  # bar k - 1 closed: both still open
    assert len(ex.fetch_positions()) == 2
    before = sim.wallet.balance
    btc_before = sim.state_of("BTCUSDT")["position"]
    sim.advance()
    exit_px = min(float(sol.open[k]), lv["sol_sl"])  # a gap through the stop fills at the open
    pnl = Q_SOL * (exit_px - p_sol) - Q_SOL * exit_px * TAKER
    assert sim.wallet.balance - before == pytest.approx(pnl, abs=1e-9)
    assert sim.wallet.balance == pytest.approx(wallet + pnl, abs=1e-9)
    (left,) = ex.fetch_positions()
    assert (left["symbol"], left["side"], left["contracts"]) == (BTC, "short", Q_BTC)
    assert sim.state_of("BTCUSDT")["position"] == btc_before  # BTC untouched by SOL's stop
    assert ex.fetch_open_orders(SOL, params={"planType": "profit_loss"}) == []  # SOL's plans went with it
    assert len(ex.fetch_open_orders(BTC, params={"planType": "profit_loss"})) == 2
    exits = [t for t in ex.fetch_my_trades(SOL) if t["info"]["tradeSide"] == "close"]
    assert [(t["price"], t["amount"]) for t in exits] == [(exit_px, Q_SOL)]
    assert ex.fetch_my_trades(BTC)[0]["price"] == p_btc and len(ex.fetch_my_trades(BTC)) == 1
    bal = ex.fetch_balance()["USDT"]
    assert bal["free"] == pytest.approx(wallet + pnl - (m_btc - pay_btc), abs=1e-8)  # funding moved BTC's margin


def test_unknown_symbol_is_refused_with_40034(sim):
    ex = client(sim)
    ex.load_markets()
    assert ETH in ex.markets  # a Bitget contract, but this account does not trade it
    calls = [lambda: ex.create_order(ETH, "market", "buy", 0.1, params={"marginMode": "isolated"}),
             lambda: ex.set_leverage(5, ETH), lambda: ex.fetch_open_orders(ETH), lambda: ex.fetch_position(ETH)]
    for call in calls:
        with pytest.raises(ccxt.ExchangeError, match="40034"):
            call()
    assert sim.state["orders"] == [] and sim.state_of("BTCUSDT")["orders"] == []


def test_cancel_and_margin_mode_are_per_symbol(sim, data):
    ex = client(sim)
    ex.load_markets()
    ex.set_margin_mode("isolated", BTC)
    btc_last = float(data["btc"][0].close[START - 1])
    limit = ex.create_order(BTC, "limit", "buy", Q_BTC, round(btc_last * 0.9, 1), params={"marginMode": "isolated"})
    frozen = Q_BTC * round(btc_last * 0.9, 1) * (1 / 10 + TAKER)  # margin + fee at the limit price, 10x
    assert ex.fetch_balance()["USDT"]["free"] == pytest.approx(CAPITAL - frozen, abs=1e-8)
    with pytest.raises(ccxt.ExchangeError, match="45117"):  # BTC has an order: its margin mode is locked
        ex.set_margin_mode("crossed", BTC)
    ex.set_margin_mode("isolated", SOL)  # SOL's is not
    with pytest.raises(ccxt.ExchangeError):
        ex.cancel_order(limit["id"], SOL)  # the order is BTC's
    ex.cancel_order(limit["id"], BTC)
    assert ex.fetch_order(limit["id"], BTC)["status"] == "canceled"
    assert ex.fetch_balance()["USDT"]["free"] == CAPITAL


def test_websockets_carry_both_symbols(sim, data):
    sol, btc = data["sol"][0], data["btc"][0]

    async def advance_while(*coros):
        tasks = [asyncio.ensure_future(c) for c in coros]
        await asyncio.sleep(0.1)
        await asyncio.get_running_loop().run_in_executor(None, sim.advance)
        return await asyncio.wait_for(asyncio.gather(*tasks), 10)

    async def main():
        ex = client(sim, ccxtpro.bitget)
        try:
            await ex.load_markets()
            for sym in (SOL, BTC):
                await ex.set_margin_mode("isolated", sym)
            first = await ex.watch_ohlcv(BTC, "5m")
            assert len(first) == 100 and first[-1][1:5] == btc.iloc[START - 1][["open", "high", "low", "close"]].tolist()
            await ex.watch_ohlcv(SOL, "5m")
            await ex.watch_ticker(BTC)
            b_btc, b_sol, tick = await advance_while(ex.watch_ohlcv(BTC, "5m"), ex.watch_ohlcv(SOL, "5m"),
                                                     ex.watch_ticker(BTC))
            cols = ["open", "high", "low", "close", "volume"]  # volumes are written with 10 decimals
            assert b_btc[-1][1:] == pytest.approx(btc.iloc[START][cols].tolist(), rel=0, abs=1e-9)
            assert b_sol[-1][1:] == pytest.approx(sol.iloc[START][cols].tolist(), rel=0, abs=1e-9)
            assert b_btc[-1][1:5] == btc.iloc[START][cols[:4]].tolist()  # prices exact
            assert tick["symbol"] == BTC and tick["last"] == btc.close[START]
            await ex.create_order(SOL, "market", "buy", Q_SOL, params={"marginMode": "isolated"})
            await ex.create_order(BTC, "market", "sell", Q_BTC, params={"marginMode": "isolated"})
            assert await ex.watch_positions() == []  # the subscription's snapshot: flat
            (positions,) = await advance_while(ex.watch_positions())
            last = {p["symbol"]: p for p in positions}
            assert sorted(last) == [BTC, SOL]
            assert (last[SOL]["side"], last[SOL]["entryPrice"]) == ("long", float(sol.open[START + 1]))
            assert (last[BTC]["side"], last[BTC]["entryPrice"]) == ("short", float(btc.open[START + 1]))
        finally:
            await ex.close()

    asyncio.run(main())
    assert np.isclose(sim.wallet.balance, CAPITAL - Q_SOL * sol.open[START + 1] * TAKER - Q_BTC * btc.open[START + 1] * TAKER,
                      rtol=0, atol=1e-9)


def test_lists_without_symbol_cover_both_and_plans_stay_per_symbol(sim, data):
    sol, btc = data["sol"][0], data["btc"][0]
    ex = client(sim)
    ex.load_markets()
    for sym, qty in ((SOL, Q_SOL), (BTC, Q_BTC)):
        ex.set_margin_mode("isolated", sym)
        ex.create_order(sym, "market", "buy", qty, params={"marginMode": "isolated"})
    sim.advance()
    sol_limit = ex.create_order(SOL, "limit", "buy", Q_SOL, 100.0, params={"marginMode": "isolated"})
    btc_limit = ex.create_order(BTC, "limit", "buy", Q_BTC, 50000.0, params={"marginMode": "isolated"})
    assert sorted((o["symbol"], o["id"]) for o in ex.fetch_open_orders()) == sorted(
        [(SOL, sol_limit["id"]), (BTC, btc_limit["id"])])  # orders-pending without a symbol: every symbol
    stop = ex.create_order(BTC, "market", "sell", Q_BTC, params={"stopLossPrice": 80000.0})  # place-tpsl-order
    assert [(o["symbol"], o["triggerPrice"]) for o in ex.fetch_open_orders(params={"planType": "profit_loss"})] == [
        (BTC, 80000.0)]
    assert ex.fetch_open_orders(SOL, params={"planType": "profit_loss"}) == []
    ex.cancel_order(stop["id"], BTC, params={"trigger": True})  # cancel-plan-order on BTC's engine
    assert [(p["planType"], p["planStatus"]) for p in sim.state_of("BTCUSDT")["plans"]] == [("pos_loss", "cancelled")]
    p_btc, p_sol = float(btc.open[START]), float(sol.open[START])
    one = ex.fetch_position(BTC)  # single-position
    assert (one["symbol"], one["contracts"], one["entryPrice"], one["leverage"]) == (BTC, Q_BTC, p_btc, 10)
    frozen = Q_SOL * 100.0 * (0.1 + TAKER) + Q_BTC * 50000.0 * (0.1 + TAKER)
    margins = Q_SOL * p_sol / 10 + Q_BTC * p_btc / 10
    fees = (Q_SOL * p_sol + Q_BTC * p_btc) * TAKER
    assert ex.fetch_balance()["USDT"]["free"] == pytest.approx(CAPITAL - fees - margins - frozen, abs=1e-8)
    assert sim.state["available"] == sim.state_of("BTCUSDT")["available"] == pytest.approx(
        CAPITAL - fees - margins - frozen, abs=1e-9)


def test_tradable_candles_must_align(data):
    sol, btc = data["sol"][0], data["btc"][0]
    with pytest.raises(ValueError, match="timestamps must equal"):
        BitgetSim(candles=sol, start_bar=START, tradable={"BTCUSDT": btc.iloc[1:].reset_index(drop=True)})
    with pytest.raises(ValueError, match="already the traded symbol"):
        BitgetSim(candles=sol, start_bar=START, tradable={"SOLUSDT": sol})
    s = BitgetSim(candles=sol, start_bar=START, tradable={"BTCUSDT": btc})  # a bare frame: no funding
    assert list(s.engines) == ["SOLUSDT", "BTCUSDT"] and s.engine is s.engines["SOLUSDT"]
    assert s.advance(2)[-1]["open"] == sol.open[START + 1]
    assert s.engines["BTCUSDT"].market.last == btc.close[START + 1]  # the same clock
