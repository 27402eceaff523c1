"""Funding on the live venues other than Bitget (whose live == paper parity test covers it): a position held
through a funding time on the Binance, Bybit and OKX simulators, closed by the operator's force-exit.

ccxt passes each venue's own sign on (Binance ``income`` and OKX ``balChg`` < 0 when paid; Bybit ``execFee`` > 0
when paid):
the trade's funding must be what the venue charged (> 0 paid), its PnL = gross - fees - funding, and the
wallet must have changed by exactly that PnL (a wrong sign would be off by twice the funding)."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from _live_helpers import SYM, make_bot, ms, script, step
from _live_fixtures import _quiet, data, ledger  # noqa: F401  (fixtures)
from _sim_fixtures import running_sim
from _venue_profiles import PROFILES

N_ROWS = 2400


def entry_before_funding(candles: pd.DataFrame, funding: pd.DataFrame, after: int) -> tuple[int, float]:
    """(index of the candle closing 10 minutes before the first funding time with a rate != 0 after candle
    ``after``, that rate)."""
    times = candles.timestamp
    for t, rate in zip(funding.timestamp, funding.funding_rate):
        if t > times.iloc[after] and rate != 0 and t <= times.iloc[-1]:
            return int(times.searchsorted(t - pd.Timedelta(minutes=15))), float(rate)
    raise AssertionError("no funding time in the data")


@pytest.mark.parametrize("venue", PROFILES, ids=lambda p: p.ccxt_id)
def test_a_trade_held_through_funding_pays_what_the_venue_charged(venue, tmp_path, ledger, data):
    candles, funding, mark = data
    i, rate = entry_before_funding(candles, funding, 1000)
    side = 1 if rate > 0 else -1  # the side that pays
    with running_sim(data, i, cls=venue.sim) as sim:
        s = venue.settings(sim, tmp_path, stop_loss=5.0, take_profit=10.0)  # OKX keys have a passphrase
        rid = ledger.start_run("live", "ema-cross", SYM, "5m")

        async def go():
            bot = await make_bot(sim, s, ledger, rid)
            script(bot, {ms(candles, i): side})
            try:
                await step(sim, bot, 4)  # the entry at candle i's close; the funding time opens candle i + 3
                assert bot.trade is not None, "the position closed before the funding time"
                bot.control.request_force_exit()
                await step(sim, bot, 2)  # the exit at candle i + 4's close, then its fills read
                return bot.trade
            finally:
                await bot.ex.close()

        assert asyncio.run(go()) is None
        bills = sim.engine.bills
    assert len(bills) == 1 and bills[0]["rate"] == rate and bills[0]["amount"] < 0  # the venue charged the position
    paid = -bills[0]["amount"]
    assert paid == pytest.approx(abs(bills[0]["qty"]) * bills[0]["mark"] * abs(rate), abs=1e-12)
    trade = ledger.trades(rid).iloc[0]
    entry, exit_ = float(candles.close.iloc[i]), float(candles.close.iloc[i + 4])
    qty = float(trade.qty)
    fees = qty * (entry + exit_) * venue.taker
    gross = side * qty * (exit_ - entry)
    assert (trade.side, trade.entry_price, trade.exit_price, trade.exit_reason) == (side, entry, exit_, "manual")
    assert trade.funding == pytest.approx(paid, abs=1e-9) and trade.funding > 0
    assert trade.fees == pytest.approx(fees, abs=1e-9) and trade.gross_pnl == pytest.approx(gross, abs=1e-9)
    assert trade.pnl == pytest.approx(gross - fees - paid, abs=1e-9)
    assert sim.wallet.balance == pytest.approx(1000.0 + trade.pnl, abs=1e-9)
