"""Trading decisions by expected value after costs, sized by fractional Kelly.

**Expected return of a trade** entered at a bar (fractions of the notional, before leverage)::

    EV(side) = p_TP * TP - p_SL * SL + p_other * E[r | other, side]
               - 2 * (taker_fee + slippage)                     # round trip: two fills
               - side * funding_rate * E[holding bars] / bars per funding interval

The outcome probabilities come from the model, per side:

* three-class triple-barrier model (``kind="triple"``, classes -1/0/+1, TP >= SL): for a long,
  ``p_TP = p_up``, ``p_SL = p_down``, ``p_other = p_flat``; for a short, ``p_TP = p_down``,
  ``p_SL = p_up``, ``p_other = p_flat``. The mapping is exact (see
  :func:`perpbot.ml.labels.side_outcomes`): given label +1 the long made +TP, given -1 it lost SL;
  given 0 neither side took profit and the long ended at its stop-loss or at the vertical
  barrier, so ``E[r | other, side]`` is the mean of the side's realised return over the training
  window's flat-labelled bars (it is E[return | vertical barrier] where flat means vertical,
  and also counts the stops a flat bar can hold).
* meta-labelling model (``kind="meta"``, labels +1 take / -1 skip): only the primary rule's side
  is scored; ``p_TP = p_up``, ``p_SL = 0``, ``p_other = p_down`` and ``E[r | other, side]`` is
  the mean realised return of the primary's trades that did not take profit (stop-loss or
  vertical barrier).

``E[holding bars] = sum_c p_c * H_c`` with ``H_c`` the mean bars to the barrier per outcome on
the training window; ``funding_rate`` is the last settled rate known at the bar's close
(positive: longs pay). Costs follow the simulator: a taker fee and adverse slippage on both fills.

**Decision.** Long when ``EV(long) > margin`` and ``EV(long) >= EV(short)``, short when
``EV(short) > margin`` and ``EV(short) > EV(long)``, else hold. The margin is chosen per
walk-forward fold inside its training window only (:func:`perpbot.ml.decision_fit.fit_decision`,
which also estimates ``E[r | other, side]`` and the holding times): on the earlier folds'
out-of-sample bars whose labels end before the fold's test window, the margin of ``grid`` whose
signals earned the largest size-weighted realised return after costs (at least ``min_signals``
signals); ``default_margin`` when no margin has that many signals (e.g. the first fold), the
largest margin of the grid when none earned money. The test fold's own bars never enter.

**Size.** Fractional Kelly for a binary bet with win probability ``p`` and payoff ``b = TP/SL``
(Kelly, 1956; Thorp, 2006): ``f* = p - (1 - p) / b`` of equity at risk; the entry risks
``min(kelly_fraction * f*, risk_per_trade)``, i.e. a size scale ``min(1, kelly_fraction * f* /
risk_per_trade)`` of the configured size (0 -> no trade). ``p = p_TP / (p_TP + p_SL)`` for the
three-class model (the barrier hit is a TP rather than an SL), ``p = p_TP`` for meta.

Units: all returns, costs, margins are fractions of the notional (0.001 = 0.1 %); holding time
in bars; timestamps UTC.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["FUNDING_INTERVAL_HOURS", "DEFAULT_MARGIN_GRID", "round_trip_cost", "expected_returns",
           "kelly_fraction", "kelly_scale", "ev_decisions", "side_probabilities", "decision_rows",
           "known_funding_rate", "barrier_fractions", "decide", "win_probability"]

FUNDING_INTERVAL_HOURS = 8.0
#: Candidate margins (fractions of notional) the nested selection chooses from.
DEFAULT_MARGIN_GRID = (0.0, 0.0005, 0.001, 0.002, 0.003, 0.005)
KINDS = ("triple", "meta")
#: Outcome order of the (p_TP, p_SL, p_other) arrays and of the holding-time tables.
OUTCOMES = ("tp", "sl", "other")
_TP, _SL, _OTHER = 0, 1, 2


def round_trip_cost(taker_fee: float, slippage: float) -> float:
    """Cost of a round trip as a fraction of the notional: ``2 * (taker_fee + slippage)``
    (a taker fee and adverse slippage on the entry and on the exit fill).

    Raises:
        ValueError: a negative fee or slippage.
    """
    if taker_fee < 0 or slippage < 0:
        raise ValueError(f"taker_fee and slippage must be >= 0, got {taker_fee}, {slippage}")
    return 2.0 * (float(taker_fee) + float(slippage))


def expected_returns(p_tp, p_sl, p_other, tp, sl, r_other, hold, side: int, funding_rate, cost: float,
                     bars_per_funding: float) -> np.ndarray:
    """EV of one side per bar (module docstring), float64 (n,).

    Args:
        p_tp, p_sl, p_other: (n,) outcome probabilities of this side.
        tp, sl: take-profit / stop-loss distances, fractions of the entry (scalar or (n,)).
        r_other: mean return of the "other" outcome (scalar or (n,)).
        hold: (3,) or (n, 3) mean holding bars given TP, SL, other.
        side: +1 long, -1 short.
        funding_rate: funding rate per interval known at the bar (scalar or (n,), > 0 longs pay).
        cost: round-trip cost (:func:`round_trip_cost`).
        bars_per_funding: bars in one funding interval (96 for 5m and 8 h).
    """
    h = np.asarray(hold, dtype=np.float64)
    e_hold = p_tp * h[..., _TP] + p_sl * h[..., _SL] + p_other * h[..., _OTHER]
    return (p_tp * tp - p_sl * sl + p_other * r_other - cost
            - side * np.asarray(funding_rate, dtype=np.float64) * e_hold / bars_per_funding)


def kelly_fraction(p, payoff) -> np.ndarray:
    """Kelly fraction of a binary bet: ``f* = p - (1 - p) / b`` (may be negative: do not bet).

    ``p``: win probability; ``payoff`` ``b``: amount won per unit lost (TP / SL). Float64 arrays.
    """
    p = np.asarray(p, dtype=np.float64)
    b = np.asarray(payoff, dtype=np.float64)
    return p - (1.0 - p) / b


def kelly_scale(p, payoff, fraction: float, risk: float) -> np.ndarray:
    """Size scale of the configured entry: ``clip(fraction * f* / risk, 0, 1)`` (NaN p -> 0).

    ``fraction``: the Kelly multiple (0.5 = half Kelly); ``risk``: ``risk_per_trade`` as a
    fraction of equity, the cap.
    """
    if risk <= 0:
        raise ValueError(f"risk must be > 0, got {risk}")
    f = fraction * kelly_fraction(p, payoff)
    return np.nan_to_num(np.clip(f / risk, 0.0, 1.0), nan=0.0)


def side_probabilities(proba, kind: str, primary=None) -> tuple[np.ndarray, np.ndarray]:
    """(long, short) outcome probabilities, each float64 (n, 3) = (p_TP, p_SL, p_other).

    ``kind="triple"``: from (p_down, p_flat, p_up). ``kind="meta"``: p_TP = p_up, p_other =
    p_down on the bars where ``primary`` ((n,) -1/0/+1) proposes that side, NaN elsewhere.
    """
    p = np.asarray(proba, dtype=np.float64)
    down, flat, up = p[:, 0], p[:, 1], p[:, 2]
    if kind == "triple":
        return np.column_stack([up, down, flat]), np.column_stack([down, up, flat])
    if kind != "meta":
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if primary is None:
        raise ValueError("meta decisions need the primary rule's side per bar")
    side = np.asarray(primary)
    zero = np.zeros_like(up)
    both = np.column_stack([up, zero, down])
    long = np.where((side > 0)[:, None], both, np.nan)
    short = np.where((side < 0)[:, None], both, np.nan)
    return long, short


def ev_decisions(ev_long, ev_short, margin, p_win_long, p_win_short, payoff, kelly: float,
                 risk: float) -> tuple[np.ndarray, np.ndarray]:
    """Signals (int8 (n,): +1/-1/0) and size scales (float64 (n,), 0 when flat) from the EVs.

    Long where ``ev_long > margin`` and ``ev_long >= ev_short``; short where ``ev_short > margin``
    and ``ev_short > ev_long``; the size is :func:`kelly_scale` of the chosen side's win
    probability, and a bar whose scale is 0 holds. NaN EVs or margins never trade.
    """
    el = np.nan_to_num(np.asarray(ev_long, dtype=np.float64), nan=-np.inf)
    es = np.nan_to_num(np.asarray(ev_short, dtype=np.float64), nan=-np.inf)
    m = np.nan_to_num(np.broadcast_to(np.asarray(margin, dtype=np.float64), el.shape), nan=np.inf)
    go_long = (el > m) & (el >= es)
    go_short = (es > m) & (es > el)
    size = np.zeros(el.shape, dtype=np.float64)
    size[go_long] = kelly_scale(np.broadcast_to(p_win_long, el.shape)[go_long],
                                np.broadcast_to(payoff, el.shape)[go_long], kelly, risk)
    size[go_short] = kelly_scale(np.broadcast_to(p_win_short, el.shape)[go_short],
                                 np.broadcast_to(payoff, el.shape)[go_short], kelly, risk)
    signal = np.zeros(el.shape, dtype=np.int8)
    signal[go_long & (size > 0)] = 1
    signal[go_short & (size > 0)] = -1
    size[signal == 0] = 0.0
    return signal, size


def win_probability(sp: np.ndarray, kind: str) -> np.ndarray:
    """Kelly win probability of a side from its (p_TP, p_SL, p_other) (n, 3): p_TP / (p_TP + p_SL)
    for the three-class model, p_TP for meta."""
    if kind == "meta":
        return sp[:, _TP]
    with np.errstate(invalid="ignore", divide="ignore"):
        return sp[:, _TP] / (sp[:, _TP] + sp[:, _SL])


def decide(proba, kind: str, tp, sl, r_other, hold, margin, funding_rate, *, cost: float,
           bars_per_funding: float, kelly: float, risk: float, primary=None) -> dict[str, np.ndarray]:
    """The whole rule on ``n`` bars: EV of both sides, signal and size.

    Args:
        proba: (n, 3) (p_down, p_flat, p_up); NaN rows hold.
        kind, primary: see :func:`side_probabilities`.
        tp, sl: barrier distances (fractions), scalar or (n,).
        r_other: (n, 2) mean "other" return of (long, short); hold: (n, 2, 3) mean holding bars
            of (long, short) given (TP, SL, other); margin: (n,) — from :func:`decision_rows`.
        funding_rate: (n,) or scalar; cost, bars_per_funding, kelly, risk: see above.

    Returns:
        dict with float64 ``ev_long``, ``ev_short``, ``size`` and int8 ``signal`` (all (n,)).
    """
    pl, ps = side_probabilities(proba, kind, primary)
    r = np.asarray(r_other, dtype=np.float64)
    h = np.asarray(hold, dtype=np.float64)
    ev_long = expected_returns(pl[:, 0], pl[:, 1], pl[:, 2], tp, sl, r[:, 0], h[:, 0], 1, funding_rate, cost,
                               bars_per_funding)
    ev_short = expected_returns(ps[:, 0], ps[:, 1], ps[:, 2], tp, sl, r[:, 1], h[:, 1], -1, funding_rate, cost,
                                bars_per_funding)
    with np.errstate(invalid="ignore", divide="ignore"):
        payoff = np.asarray(tp, dtype=np.float64) / np.asarray(sl, dtype=np.float64)
    signal, size = ev_decisions(ev_long, ev_short, margin, win_probability(pl, kind), win_probability(ps, kind), payoff,
                                kelly, risk)
    return {"ev_long": ev_long, "ev_short": ev_short, "signal": signal, "size": size}


def decision_rows(decision: dict, timestamps) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bar (r_other (n, 2), hold (n, 2, 3), margin (n,)) of a model's decision tables.

    A bar at time ``t`` gets the table of the fold whose test window holds ``t``, or the final
    table from its ``from_time`` on (the same routing as the model's probabilities); bars
    before the first test window get NaN (no trade).
    """
    ts = pd.DatetimeIndex(timestamps)
    n = len(ts)
    r = np.full((n, 2), np.nan)
    h = np.full((n, 2, 3), np.nan)
    m = np.full(n, np.nan)
    segments = [(f, pd.Timestamp(f["test_start_time"]), pd.Timestamp(f["test_end_time"])) for f in decision["folds"]]
    fin = decision["final"]
    segments.append((fin, pd.Timestamp(fin["from_time"]), None))
    for seg, start, end in segments:
        rows = ts >= start
        if end is not None:
            rows &= ts < end
        if rows.any():
            r[rows] = seg["stats"]["r_other"]
            h[rows] = seg["stats"]["hold"]
            m[rows] = seg["margin"]
    return r, h, m


def known_funding_rate(timestamps, bar: pd.Timedelta, funding: pd.DataFrame | None) -> np.ndarray:
    """Last funding rate settled at or before each bar's close (open + ``bar``), float64 (n,);
    0 before the first event or without funding data."""
    ts = pd.DatetimeIndex(timestamps)
    if funding is None or len(funding) == 0:
        return np.zeros(len(ts))
    f_ns = pd.DatetimeIndex(funding["timestamp"]).as_unit("ns").asi8
    rate = funding["funding_rate"].to_numpy(np.float64)
    k = np.searchsorted(f_ns, (ts + bar).as_unit("ns").asi8, side="right") - 1
    return np.where(k >= 0, rate[np.maximum(k, 0)], 0.0)


def barrier_fractions(label_settings: dict, candles: pd.DataFrame, atr_period: int) -> tuple:
    """(take_profit, stop_loss) fractions per bar of the model's labels: scalars for fixed
    barriers, float64 (n,) ``multiple * ATR / close`` for ``barrier_mode == "atr"``."""
    if label_settings.get("barrier_mode") == "atr":
        import talib

        from perpbot.ml.labels import atr_barriers

        h, lo, c = (candles[k].to_numpy(np.float64) for k in ("high", "low", "close"))
        atr = talib.ATR(h, lo, c, timeperiod=atr_period)
        return atr_barriers(atr, c, float(label_settings["take_profit"]), float(label_settings["stop_loss"]))
    return float(label_settings["take_profit"]), float(label_settings["stop_loss"])
