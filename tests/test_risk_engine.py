"""The one risk engine: the account loop (kernel) and the live loop's risk object take the same
decisions and record the same reasons.

A property test (hypothesis) drives random paths — hourly bars over several UTC days, equity at
each close, entry attempts (side, price, ATR, equity) and trade closes (random exit prices, so
random wins and losses) — through both:

* the kernel: its own bar steps (``_new_day`` at the open, ``_try_entry``, ``_close``,
  ``_limits_at_close`` at the close) on one account state array;
* :class:`perpbot.bot.live_risk.LiveRisk`: ``plan_entry``, ``on_trade_closed`` (with the pnl of
  the kernel's trade row) and ``on_close``;

and asserts, bar by bar, the same veto (label and value) or the same allowed entry (qty,
stop-loss, take-profit), and the same halt events (label and value) at each close.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perpbot.bot.live_risk import EntryPlan, LiveRisk
from perpbot.risk import rules as R
from perpbot.sim import kernel as K
from perpbot.sim.config import AccountConfig
from perpbot.types import RiskEvent

HOUR = 3_600_000
DAY0 = 1_744_588_800_000 + 20 * HOUR  # 2025-04-14 20:00 UTC: the first midnight comes after 4 bars

bar_step = st.fixed_dictionaries({
    "equity": st.floats(600.0, 1400.0),
    "attempt": st.one_of(st.none(), st.tuples(st.sampled_from([-1, 1]), st.floats(50.0, 200.0),
                                              st.floats(0.1, 10.0), st.floats(-50.0, 1500.0))),
    "close_move": st.floats(-0.08, 0.08),
    # a portfolio's budget at the entry (perpbot.sim.portfolio_kernel / bot.live_budget): a margin cap (USDT,
    # None = no budget) and a veto of max positions (10) or correlation (12)
    "cap": st.one_of(st.none(), st.floats(-50.0, 600.0)),
    "budget_veto": st.sampled_from([0, 10, 12]),
    # stop_mode "levels": support / resistance as fractions below / above the price (negative: beyond it)
    "levels": st.tuples(st.floats(-0.01, 0.05), st.floats(-0.01, 0.08)),
})


def _kernel_account(cfg: AccountConfig, n: int):
    state = K.new_state(cfg.capital)
    trades = np.zeros((2 * n + 2, K.N_TRADE_COLS))
    events = np.zeros((2 * n + 2, K.N_EVENT_COLS))
    return state, trades, events


def _new_events(state, events, seen: int) -> tuple[list, int]:
    k = int(state[K.S_NEVENTS])
    return [(RiskEvent(int(events[j, K.E_CODE])).label, float(events[j, K.E_VALUE])) for j in range(seen, k)], k


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(bar_step, min_size=5, max_size=60),
       cooldown=st.integers(0, 5), max_daily=st.floats(0.01, 0.2), max_dd=st.floats(0.05, 0.4),
       sizing=st.sampled_from(["fixed_fraction", "atr", "equity"]),
       stop_mode=st.sampled_from(["percent", "atr", "levels"]))
def test_kernel_and_live_risk_take_identical_decisions(steps, cooldown, max_daily, max_dd, sizing, stop_mode):
    cfg = AccountConfig(capital=1000.0, leverage=5.0, slippage=0.0005, cooldown_bars=cooldown, max_daily_loss=max_daily,
                        max_drawdown=max_dd, sizing=sizing, equity_fraction=0.5, stop_mode=stop_mode,
                        stop_loss=0.02 if stop_mode == "percent" else 1.5,
                        take_profit=0.04 if stop_mode == "percent" else 3.0, min_notional=5.0)
    params, (tier_upper, tier_mmr) = cfg.params(), cfg.tier_arrays()
    state, trades, events = _kernel_account(cfg, len(steps))
    live = LiveRisk(cfg, HOUR)
    live.on_close(DAY0 - HOUR, cfg.capital)  # the account before the first bar: the kernel's new_state
    seen = 0
    decisions = {"veto": 0, "entry": 0, "halt": 0}
    for i, step in enumerate(steps):
        ts = DAY0 + i * HOUR
        K._new_day(state, ts)
        # a position entered earlier closes at this bar's open: a win or a loss, both sides see its pnl
        if state[K.S_SIDE] != 0:
            exit_price = state[K.S_ENTRY] * (1.0 + step["close_move"])
            K._close(state, params, trades, i, exit_price, K.X_SIGNAL)
            row = trades[int(state[K.S_NTRADES]) - 1]
            live.on_trade_closed(i, float(row[K.T_PNL]))
        if step["attempt"] is not None:
            side, price, atr, equity = step["attempt"]
            state[K.S_BALANCE] = equity
            # the kernel gets the other positions' margin, the live risk the cap the budget computes from it
            used = math.inf if step["cap"] is None else equity - step["cap"]
            cap = R.margin_budget(equity, used, 0.0, 0.0)
            state[K.S_BUDGET_USED], state[K.S_BUDGET_VETO], state[K.S_BUDGET_VALUE] = used, step["budget_veto"], 2.0
            below, above = step["levels"]
            sup, res = price * (1 - below), price * (1 + above)
            K._try_entry(state, params, events, i, side, price, atr, tier_upper, tier_mmr, 1.0, False, sup, res)
            veto = (RiskEvent(step["budget_veto"]).label, 2.0) if step["budget_veto"] else None
            got = live.plan_entry(i, side, price, atr, equity, 1.0, veto, cap, sup, res)
            vetoes, seen = _new_events(state, events, seen)
            if state[K.S_SIDE] != 0:
                assert isinstance(got, EntryPlan) and vetoes == []
                assert (got.qty, got.side, got.price) == (state[K.S_QTY], side, state[K.S_ENTRY])
                assert got.stop_loss == state[K.S_SL] or (math.isnan(got.stop_loss) and math.isnan(state[K.S_SL]))
                assert got.take_profit == state[K.S_TP] or (math.isnan(got.take_profit)
                                                            and math.isnan(state[K.S_TP]))
                decisions["entry"] += 1
            else:
                assert len(vetoes) == 1 and vetoes[0][0] == got[0]  # the same rule, and the same value (NaN: no levels)
                assert vetoes[0][1] == got[1] or (math.isnan(vetoes[0][1]) and math.isnan(got[1]))
                decisions["veto"] += 1
        K._limits_at_close(state, events, i, step["equity"], cfg.max_drawdown, cfg.max_daily_loss)
        halts, seen = _new_events(state, events, seen)
        assert live.on_close(ts, step["equity"]) == halts
        decisions["halt"] += len(halts)
    # the halts in force for the next bar's decision: the live side lifts a daily-loss halt at the last close of
    # the UTC day, the kernel at the next bar's open (step 1); compare them where they decide (hypothesis found
    # a daily-loss halt started by the last hourly close of a day: live False, kernel still True until then)
    after = state.copy()
    K._new_day(after, DAY0 + len(steps) * HOUR)
    assert (live.halt_dd, live.halt_day) == (after[K.S_HALT_DD] > 0, after[K.S_HALT_DAY] > 0)
    assert live.cooldown_until == state[K.S_COOLDOWN_UNTIL]


def test_the_property_test_meets_every_rule():
    """A worked path through both: halts, the cooldown after a loss, no equity and below the
    minimum size are each decided (the random test above cannot pass by never reaching them)."""
    cfg = AccountConfig(capital=1000.0, leverage=5.0, slippage=0.0, cooldown_bars=2, max_daily_loss=0.05,
                        max_drawdown=0.10, min_notional=5.0)
    live = LiveRisk(cfg, HOUR)
    live.on_close(DAY0 - HOUR, 1000.0)
    # fixed fraction, 1 % risk at a 1 % stop: 10 / (1 + 2 x 100 x 0.0006) = 8.93 -> lot 0.1 -> 8.9
    assert live.plan_entry(0, 1, 100.0, 1.0, 1000.0).qty == pytest.approx(8.9, abs=1e-12)
    live.on_trade_closed(3, -1.0)
    assert live.plan_entry(5, 1, 100.0, 1.0, 1000.0) == ("cooldown", 5.0)
    assert live.plan_entry(6, 1, 100.0, 1.0, 0.0) == ("no_equity", 0.0)
    assert live.plan_entry(6, 1, 100.0, 1.0, 0.5) == ("below_min_size", 0.0)
    assert live.on_close(DAY0, 949.0) == [("daily_loss_halt", 949.0 / 1000.0 - 1.0)]
    assert live.plan_entry(6, 1, 100.0, 1.0, 949.0) == ("halted", float(R.EV_DAILY_LOSS_HALT))
    assert live.on_close(DAY0 + HOUR, 899.0) == [("max_drawdown_halt", 899.0 / 1000.0 - 1.0)]
    assert live.plan_entry(7, 1, 100.0, 1.0, 899.0) == ("halted", float(R.EV_MAX_DD_HALT))
    # a portfolio's budget (checked after the halts, as in the kernel): a veto, no margin left, a cap that
    # shrinks the entry to the largest lot whose margin + fee (x 100 / 5 + x 100 x 0.0006) fits in 50 USDT: 2.4
    fresh = LiveRisk(cfg, HOUR)
    assert fresh.plan_entry(0, 1, 100.0, 1.0, 1000.0, 1.0, ("correlated", 0.9)) == ("correlated", 0.9)
    assert fresh.plan_entry(0, 1, 100.0, 1.0, 1000.0, 1.0, None, 0.0) == ("margin_budget", 0.0)
    assert fresh.plan_entry(0, 1, 100.0, 1.0, 1000.0, 1.0, None, 50.0).qty == pytest.approx(2.4, abs=1e-12)


def test_live_levels_by_hand():
    """stop_mode "levels" in the live risk: stop 0.25 ATR below the support, target at the resistance, refused
    below 1.5 R. Support 98, resistance 104, ATR 2 at 100: stop 97.5, target 104, 4 / 2.5 = 1.6 R; size
    10 / (2.5 + 2 x 100 x 0.0006) = 3.82 -> lot 0.1 -> 3.8. Resistance 103: 3 / 2.5 = 1.2 R, refused."""
    cfg = AccountConfig(capital=1000.0, leverage=5.0, slippage=0.0, stop_mode="levels", min_risk_reward=1.5,
                        levels_buffer_atr=0.25)
    live = LiveRisk(cfg, HOUR)
    plan = live.plan_entry(0, 1, 100.0, 2.0, 1000.0, 1.0, None, math.inf, 98.0, 104.0)
    assert (plan.stop_loss, plan.take_profit, plan.qty) == (97.5, 104.0, pytest.approx(3.8, abs=1e-12))
    assert live.plan_entry(0, 1, 100.0, 2.0, 1000.0, 1.0, None, math.inf, 98.0, 103.0) == \
        ("risk_reward", pytest.approx(1.2, abs=1e-12))
