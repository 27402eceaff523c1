"""Several symbols on one account (issue 10, item 2): the portfolio backtest, its risk budget, and the
portfolio paper replay, on real SOL / BTC / ETH 1h candles and funding.

* A portfolio of one symbol is the single-symbol backtest, bit for bit (trades, funding, equity, halts):
  the shared-balance loop adds nothing of its own.
* Three symbols, ema-cross, budget max 2 positions / 50 % margin / correlation guard 0.85 over 288
  bars: the paper bot fed one candle of every symbol per cycle makes exactly the backtest's trades,
  funding, risk events and equity.
* The budget is checked from the trades and candles by hand: never more than 2 positions open; every
  ``correlated`` veto's r is the Pearson r of the two symbols' hourly returns (numpy) with a
  same-direction position open; a per-symbol margin cap of 10 % sizes the first entry to the largest
  lot whose margin + fee fits in 100 USDT.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from perpbot.app.portfolio import portfolio_backtest_job, portfolio_paper_job
from perpbot.cli.timerange import symbol_overrides
from perpbot.config import load_settings
from perpbot.data.market import align_markets, load_market_for
from perpbot.sim.config import AccountConfig
from perpbot.sim.engine import MarketArrays, run_backtest
from perpbot.sim.portfolio import PortfolioBudget, run_portfolio_backtest
from perpbot.strategy.signals import rule_signals
from _cli_helpers import perpbot

SYMBOLS = ["SOL/USDT:USDT", "BTC/USDT:USDT", "ETH/USDT:USDT"]
BARS = 1500


def _settings(data_dir, tmp, symbol, **kw):
    base = load_settings(None, timeframe="1h", candles_file=data_dir / "SOLUSDT-1h.parquet", output_dir=tmp)
    return load_settings(None, timeframe="1h", output_dir=tmp, warmup_bars=60, portfolio_max_positions=2, **kw,
                         **symbol_overrides(base, symbol))


@pytest.fixture(scope="module")
def portfolio(data_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pf")
    settings = {s: _settings(data_dir, tmp, s) for s in SYMBOLS}
    markets = align_markets({s: load_market_for(settings[s]) for s in SYMBOLS})
    markets = {s: m.slice(len(m.candles) - BARS) for s, m in markets.items()}
    return settings, markets


def test_one_symbol_portfolio_is_the_single_backtest(portfolio):
    settings, _ = portfolio
    m = load_market_for(settings[SYMBOLS[0]])  # the whole year of SOL
    arr = MarketArrays.build(m.candles, "1h", funding=m.funding, mark=m.mark)
    sig = rule_signals("ema-cross", m.candles)
    cfg = AccountConfig.for_strategy(settings[SYMBOLS[0]], "ema-cross", max_daily_loss=0.01, max_drawdown=0.12)
    single = run_backtest(arr, sig, cfg)
    pf = run_portfolio_backtest({"SOL": arr}, {"SOL": sig}, {"SOL": cfg}, PortfolioBudget(max_positions=0))
    assert len(single.trades) > 20
    pd.testing.assert_frame_equal(pf.per_symbol["SOL"].trades, single.trades)
    pd.testing.assert_frame_equal(pf.per_symbol["SOL"].funding, single.funding)
    assert np.array_equal(pf.equity.to_numpy(), single.equity.to_numpy())
    key = ["bar", "event", "value"]
    mine = pf.risk_events.drop(columns="symbol").sort_values(key).reset_index(drop=True)
    assert set(single.risk_events.event) >= {"daily_loss_halt", "halted"}  # the account's halts are exercised
    pd.testing.assert_frame_equal(mine, single.risk_events.sort_values(key).reset_index(drop=True))


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    from perpbot.storage import Ledger

    led = Ledger(f"sqlite:///{tmp_path_factory.mktemp('pfl') / 'ledger.db'}")
    yield led
    led.close()


@pytest.fixture(scope="module")
def control():
    from perpbot.bot.control import BotControl

    c = BotControl(mode="paper", strategy="ema-cross")
    c.sub = c.events.subscribe(maxsize=100_000)  # type: ignore[attr-defined]  # a notifier's subscription
    return c


@pytest.fixture(scope="module")
def both(portfolio, ledger, control):
    settings, markets = portfolio
    return (portfolio_backtest_job(settings, markets, "ema-cross"),
            portfolio_paper_job(settings, markets, "ema-cross", ledger=ledger, control=control))


def test_portfolio_replay_notifies_each_symbol(both, control, portfolio):
    from perpbot.notify.messages import render_entry

    settings, _ = portfolio
    events = []
    while (e := control.sub.get(timeout=0)) is not None:
        events.append(e)
    t = both[1].result.trades
    exits = [e.data for e in events if e.kind == "exit"]
    assert {s: sum(d["symbol"] == s for d in exits) for s in SYMBOLS} == t.symbol.value_counts().to_dict()
    entries = [e.data for e in events if e.kind == "entry"]
    assert len(entries) == len(t)  # every trade was opened in the replay (the last ones closed at its end)
    btc = next(d for d in entries if d["symbol"] == "BTC/USDT:USDT")
    first_btc = t[t.symbol == "BTC/USDT:USDT"].iloc[0]
    note = render_entry(btc, settings[SYMBOLS[0]], "en")  # the SOL node's settings: BTC's own lot and tick
    assert f"Qty: {first_btc.qty:.4f} BTC" in note.text and "opened: BTC/USDT:USDT" in note.text


def test_portfolio_paper_replay_equals_the_backtest(both):
    bt, paper = both
    t = bt.result.trades
    assert set(t.symbol) == set(SYMBOLS) and len(t) >= 30
    pd.testing.assert_frame_equal(paper.result.trades, t)
    pd.testing.assert_frame_equal(paper.result.risk_events, bt.result.risk_events)
    for s in SYMBOLS:
        pd.testing.assert_frame_equal(paper.result.per_symbol[s].funding, bt.result.per_symbol[s].funding)
    assert all(len(bt.result.per_symbol[s].funding) >= 1 for s in SYMBOLS)  # funding is charged on every symbol
    assert np.array_equal(paper.result.equity.to_numpy(), bt.result.equity.to_numpy())
    assert bt.metrics["final_equity"] == pytest.approx(1000 + t.pnl.sum(), abs=1e-9)
    events = set(bt.result.risk_events.event)
    assert {"correlated", "max_positions"} <= events


def test_portfolio_replay_is_in_the_ledger(both, ledger):
    _, paper = both
    assert set(paper.run_ids) == set(SYMBOLS)
    for s, rid in paper.run_ids.items():
        run = ledger.get_run(rid)
        assert (run["kind"], run["symbol"], run["status"]) == ("paper", s, "finished")
        mine = paper.result.per_symbol[s].trades
        got = ledger.trades(rid)
        assert len(got) == len(mine) > 0
        assert np.allclose(got["pnl"].to_numpy(), mine["pnl"].to_numpy(), rtol=0, atol=1e-9)
        assert np.allclose(got["exit_price"].to_numpy(), mine["exit_price"].to_numpy(), rtol=0, atol=1e-9)
        assert len(ledger.funding(rid)) == len(paper.result.per_symbol[s].funding)
        eq = ledger.equity(rid)  # the account's equity, every candle, the last one after the final close
        assert len(eq) == BARS and eq.iloc[-1] == pytest.approx(paper.result.equity.iloc[-1], abs=1e-9)


def test_budget_holds_by_hand(both, portfolio):
    _, markets = portfolio
    res = both[0].result
    t = res.trades
    n = len(markets[SYMBOLS[0]].candles)
    open_count = np.zeros(n + 1, dtype=int)
    for r in t.itertuples():  # a position is open from its entry bar until its exit bar
        open_count[r.entry_bar: r.exit_bar] += 1
    assert open_count.max() <= 2
    assert open_count.max() == 2  # the limit is reached, so it is what stops the third
    closes = {s: markets[s].candles["close"].to_numpy() for s in SYMBOLS}
    ev = res.risk_events[res.risk_events.event == "correlated"]
    assert len(ev)
    for e in ev.itertuples():
        b = int(e.bar)
        rets = {s: closes[s][b - 288: b] / closes[s][b - 289: b - 1] - 1 for s in SYMBOLS}
        # the other symbols holding a position at this open (entered before it, or at it by a symbol visited first)
        holders = [r.symbol for r in t.itertuples() if r.entry_bar <= b <= r.exit_bar and r.symbol != e.symbol]
        rs = [np.corrcoef(rets[e.symbol], rets[h])[0, 1] for h in holders]
        assert any(abs(r - e.value) < 1e-9 for r in rs), (e, rs)
        assert e.value >= 0.85


def test_symbol_margin_cap_sizes_the_first_entry(portfolio):
    settings, markets = portfolio
    capped = {s: settings[s].model_copy(update={"portfolio_max_symbol_margin": 10.0, "sizing": "equity"})
              for s in SYMBOLS}
    t = portfolio_backtest_job(capped, markets, "ema-cross").result.trades
    first = t.sort_values(["entry_bar", "symbol"]).iloc[0]
    cfg = AccountConfig.for_strategy(capped[first.symbol], "ema-cross")
    lev, fee, lot = cfg.leverage, cfg.taker_fee, cfg.lot_size

    def cost(q):  # initial margin + entry fee of q at the first entry's fill, USDT
        return q * first.entry_price / lev + q * first.entry_price * fee
    assert first.margin == pytest.approx(first.qty * first.entry_price / lev, rel=1e-12)
    assert cost(first.qty) <= 100.0 < cost(first.qty + lot)  # 10 % of the 1,000 USDT balance


def test_cli_backtest_symbols(tmp_path, data_dir):
    (tmp_path / "perpbot.toml").write_text(f'candles_file = "{data_dir / "SOLUSDT-1h.parquet"}"\n'
                                           f'output_dir = "{tmp_path}"\ntimeframe = "1h"\n')
    args = ["backtest", "--config", tmp_path / "perpbot.toml", "--strategy", "ema-cross", "--timerange",
            "20250601-20250901"]
    proc = perpbot(args + ["--symbols", "SOL/USDT:USDT,BTC/USDT:USDT", "--report", tmp_path / "pf.html"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Per symbol" in proc.stdout and "BTC/USDT:USDT" in proc.stdout and "SOL/USDT:USDT" in proc.stdout
    # the HTML report: a column per symbol (its contribution) and the account; contributions add up to it
    html = (tmp_path / "pf.html").read_text()
    assert "perpbot portfolio backtest — SOL/USDT:USDT, BTC/USDT:USDT 1h (ema-cross, one account)" in html
    table = pd.read_html(io.StringIO(html[html.index("Strategy metrics"):]), index_col=0)[0]
    assert list(table.columns) == ["SOL/USDT:USDT", "BTC/USDT:USDT", "portfolio"]
    final = table.loc["final_equity"].str.replace(" USDT", "").str.replace(",", "").astype(float)
    trades = table.loc["trade_count"].astype(int)
    assert final["SOL/USDT:USDT"] + final["BTC/USDT:USDT"] - 1000.0 == pytest.approx(final["portfolio"], abs=0.011)
    assert trades["SOL/USDT:USDT"] + trades["BTC/USDT:USDT"] == trades["portfolio"] > 0
    bad = perpbot(args + ["--symbols", "SOL/USDT:USDT,BTC/USDT:USDT", "--report", tmp_path], tmp_path)
    assert bad.returncode == 2 and "--report" in bad.stderr
    one = perpbot(args + ["--symbols", "SOL/USDT:USDT"], tmp_path)
    assert one.returncode == 2 and "--symbols needs at least two symbols" in one.stderr
    replay = perpbot(["run", "--mode", "paper", "--config", tmp_path / "perpbot.toml", "--strategy", "ema-cross",
                      "--symbols", "SOL/USDT:USDT,BTC/USDT:USDT", "--last", "400"], tmp_path)
    assert replay.returncode == 0, replay.stderr
    assert "Portfolio paper replay" in replay.stdout and "ledger runs: SOL/USDT:USDT=1, BTC/USDT:USDT=2" in replay.stdout


def test_portfolio_with_a_model_per_symbol(data_dir, tmp_path):
    """``--strategy ai`` over SOL and BTC: each symbol trades its own model (the settings' model for SOL,
    ``signal_models`` for BTC). Each symbol's signals are those of its single-symbol backtest with its model,
    the paper replay makes the backtest's trades, and a symbol without a model is refused with the setting
    to add."""
    from perpbot.app.jobs import backtest_job, train_job

    two = SYMBOLS[:2]
    kw = dict(model="logreg", train_days=30, test_days=30, warmup_bars=300, live_window=1000,
              confidence_threshold=0.4, decision="threshold", portfolio_max_positions=2, portfolio_corr_threshold=0.0)
    base = {s: _settings(data_dir, tmp_path, s).model_copy(update=kw) for s in two}
    full = align_markets({s: load_market_for(base[s]) for s in two})
    n = len(full[two[0]].candles)
    paths = {s: tmp_path / f"{s.split('/')[0].lower()}.joblib" for s in two}
    for s in two:  # each model learns on the candles before the last 600 (its own symbol's)
        train_job(base[s].model_copy(update={"model_path": paths[s]}), market=full[s].slice(0, n - 600))
    settings = {s: base[s].model_copy(update={"model_path": paths[two[0]], "signal_models": {"BTC": paths[two[1]]}})
                for s in two}
    window = {s: m.slice(n - 600) for s, m in full.items()}
    bt = portfolio_backtest_job(settings, window, "ai")
    for s in two:  # the symbol's own model decides: its single-symbol backtest's calls
        alone = backtest_job(settings[s].model_copy(update={"symbol": s}), ["ai"], market=window[s],
                             model_path=paths[s]).runs["ai"]
        assert (alone.signal != 0).sum() > 0
        assert np.array_equal(bt.signals[s], alone.signal)
        first_alone, first_mine = alone.result.trades.iloc[0], bt.result.per_symbol[s].trades.iloc[0]
        assert (first_mine.entry_bar, first_mine.side) == (first_alone.entry_bar, first_alone.side)
    paper = portfolio_paper_job(settings, window, "ai")
    pd.testing.assert_frame_equal(paper.result.trades, bt.result.trades)
    no_btc_model = {s: settings[s].model_copy(update={"signal_models": {}}) for s in two}
    with pytest.raises(ValueError, match=r"on BTC/USDT:USDT needs its own model: set signal_models = \{BTC = "):
        portfolio_backtest_job(no_btc_model, window, "ai")


def test_contribution_equity_by_hand():
    from perpbot.backtest.portfolio_report import contribution_equity

    idx = pd.date_range("2025-01-01 01:00", periods=4, freq="1h", tz="UTC")  # bar closes
    trades = pd.DataFrame({"exit_time": pd.to_datetime(["2025-01-01 01:00", "2025-01-01 01:00", "2025-01-01 03:00"],
                                                       utc=True), "pnl": [5.0, -2.0, -10.5]})
    # closes 01:00 (+3 from two exits at that bar), 02:00 (nothing new), 03:00 (-10.5), 04:00
    assert list(contribution_equity(idx, trades, 1000.0)) == [1003.0, 1003.0, 992.5, 992.5]
    assert list(contribution_equity(idx, trades.iloc[:0], 1000.0)) == [1000.0] * 4
