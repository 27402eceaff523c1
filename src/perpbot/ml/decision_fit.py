"""Fitting the EV rule's tables on the walk-forward output: outcome statistics and nested margins.

For each walk-forward fold, on its training window only (labelled bars whose label ends
before the fold's test window): the mean return of the "other" outcome and the mean holding
bars per outcome and side (:func:`outcome_stats`), and the margin of the grid whose signals on
the earlier folds' out-of-sample bars inside that window earned the most after costs
(:func:`choose_margin`). The rule itself is :mod:`perpbot.ml.decision`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perpbot.ml.decision import (
    DEFAULT_MARGIN_GRID, KINDS, OUTCOMES, ev_decisions, expected_returns, side_probabilities, win_probability,
)

_TP, _SL, _OTHER = (OUTCOMES.index(k) for k in ("tp", "sl", "other"))  # columns of the holding-time tables

__all__ = ["outcome_stats", "realised_net_returns", "choose_margin", "fit_decision", "KINDS"]


def _categories(y: np.ndarray, kind: str, primary) -> np.ndarray:
    """(n, 2) outcome category per side: 0 TP, 1 SL, 2 other, -1 not applicable."""
    cat = np.full((y.shape[0], 2), -1, dtype=np.int64)
    if kind == "triple":
        for s, sign in ((0, 1.0), (1, -1.0)):
            cat[y == sign, s] = _TP
            cat[y == -sign, s] = _SL
            cat[y == 0.0, s] = _OTHER
        return cat
    side = np.asarray(primary)
    for s, sign in ((0, 1), (1, -1)):
        on = side == sign
        cat[on & (y == 1.0), s] = _TP
        cat[on & (y == -1.0), s] = _OTHER
    return cat


def outcome_stats(y, ret, hold, rows, kind: str, primary=None) -> dict:
    """Mean "other" return and mean holding bars per outcome and side, over ``rows``.

    Args:
        y: (n,) labels (-1/0/+1 triple-barrier, or meta +1/-1), NaN = none.
        ret, hold: (n, 2) realised return / holding bars of (long, short)
            (:class:`perpbot.ml.labels.SideOutcomes`).
        rows: int64 row indices of the estimation window (training rows only).
        kind, primary: see :func:`side_probabilities`.

    Returns:
        JSON-able ``{"r_other": [long, short], "hold": [[tp, sl, other] (long), [...] (short)],
        "n": [[counts] (long), [...] (short)]}``; an outcome without rows gets return 0 and the
        mean holding time of all rows of that side (or 0).
    """
    y = np.asarray(y, dtype=np.float64)
    rows = np.asarray(rows, dtype=np.int64)
    cat = _categories(y, kind, primary)[rows]
    r_other, holds, counts = [], [], []
    for s in range(2):
        rs, hs, cs = ret[rows, s], hold[rows, s], cat[:, s]
        ok = (cs >= 0) & np.isfinite(rs) & np.isfinite(hs)
        side_hold = float(hs[ok].mean()) if ok.any() else 0.0
        other = ok & (cs == _OTHER)
        r_other.append(float(rs[other].mean()) if other.any() else 0.0)
        hh, nn = [], []
        for c in (_TP, _SL, _OTHER):
            sel = ok & (cs == c)
            hh.append(float(hs[sel].mean()) if sel.any() else side_hold)
            nn.append(int(sel.sum()))
        holds.append(hh)
        counts.append(nn)
    return {"r_other": r_other, "hold": holds, "n": counts}


def realised_net_returns(ret, hold, funding_rate, cost: float, bars_per_funding: float) -> np.ndarray:
    """(n, 2) realised return of a long / short after costs and (approximate) funding:
    ``ret - cost - side * funding_rate * hold / bars_per_funding``."""
    fr = np.asarray(funding_rate, dtype=np.float64).reshape(-1, 1) if np.ndim(funding_rate) else funding_rate
    sides = np.array([1.0, -1.0])
    return ret - cost - sides * fr * hold / bars_per_funding


def choose_margin(ev_long, ev_short, p_win_long, p_win_short, payoff, net, rows, grid, *, min_signals: int,
                  default: float, kelly: float, risk: float) -> tuple[float, str, list]:
    """Pick the margin of ``grid`` whose signals on ``rows`` earned the most (size-weighted).

    ``net``: (n, 2) :func:`realised_net_returns`; ``rows``: the selection bars (inside the
    training window only). Margins with fewer than ``min_signals`` signals are not eligible;
    ties go to the larger margin. No eligible margin: ``default`` ("default"); the best one did
    not earn money (total <= 0): the largest margin of the grid ("strictest"). Returns (margin,
    source, table) where table is ``[[margin, n_signals, total_return], ...]``.
    """
    rows = np.asarray(rows, dtype=np.int64)
    table, best = [], None
    for m in sorted(float(g) for g in grid):
        sig, size = ev_decisions(ev_long[rows], ev_short[rows], m, p_win_long[rows], p_win_short[rows],
                                 payoff[rows] if np.ndim(payoff) else payoff, kelly, risk)
        taken = sig != 0
        side_col = np.where(sig > 0, 0, 1)
        got = net[rows, side_col]
        ok = taken & np.isfinite(got)
        total = float((size[ok] * got[ok]).sum())
        n_sig = int(ok.sum())
        table.append([m, n_sig, total])
        if n_sig >= min_signals and (best is None or total >= best[1]):
            best = (m, total)
    if best is None:
        return float(default), "default", table
    if best[1] <= 0.0:  # no margin earned money on the training window: the strictest one
        return float(max(grid)), "strictest", table
    return best[0], "nested", table


def fit_decision(*, kind: str, y, outcomes, oos_proba, timestamps, folds, horizon: int, tp, sl, funding_rate,
                 cost: float, bars_per_funding: float, kelly: float, risk: float, grid=DEFAULT_MARGIN_GRID,
                 min_signals: int = 30, default_margin: float = 0.0, primary=None,
                 primary_rule: str | None = None) -> dict:
    """Per-fold outcome statistics and nested margins for the EV rule (module docstring).

    Args:
        kind, primary: see :func:`side_probabilities`; ``primary_rule`` names the rule (meta).
        y: (n,) training labels; outcomes: :class:`perpbot.ml.labels.SideOutcomes` of the same
            barriers; oos_proba: (n, 3) walk-forward out-of-sample probabilities.
        timestamps: (n,) tz-aware UTC bar open times.
        folds: the :class:`perpbot.ml.train.FoldModel` list (their train / test times).
        horizon: label horizon (bars): a selection bar's label must end before the test window.
        tp, sl, funding_rate: per-bar barrier distances and known funding rates (scalars or (n,)).
        cost, bars_per_funding, kelly, risk, grid, min_signals, default_margin: see above.

    Returns:
        JSON-able dict: ``kind``, ``primary``, ``grid``, ``min_signals``, ``kelly_fraction``,
        ``cost``, ``folds`` (per fold: ``test_start_time``, ``test_end_time``, ``stats``, ``margin``,
        ``margin_source``, ``margin_table``) and ``final`` (the same for the final model, chosen on
        every out-of-sample bar, from ``from_time`` on = after the data).
    """
    ts = pd.DatetimeIndex(timestamps)
    y = np.asarray(y, dtype=np.float64)
    n = y.shape[0]
    tp_a = np.broadcast_to(np.asarray(tp, dtype=np.float64), (n,))
    sl_a = np.broadcast_to(np.asarray(sl, dtype=np.float64), (n,))
    fr = np.broadcast_to(np.asarray(funding_rate, dtype=np.float64), (n,))
    with np.errstate(invalid="ignore", divide="ignore"):
        payoff = tp_a / sl_a
    net = realised_net_returns(outcomes.ret, outcomes.hold, fr, cost, bars_per_funding)
    pl, ps = side_probabilities(oos_proba, kind, primary)
    pwl, pws = win_probability(pl, kind), win_probability(ps, kind)
    ev_long = np.full(n, np.nan)
    ev_short = np.full(n, np.nan)
    labelled = np.isfinite(y)
    has_oos = np.isfinite(np.asarray(oos_proba)).all(axis=1)
    common = dict(min_signals=min_signals, default=default_margin, kelly=kelly, risk=risk)

    def window(lo: int, hi: int) -> np.ndarray:  # labelled rows in [lo, hi) whose label ends before hi + horizon
        idx = np.arange(lo, max(lo, hi - horizon), dtype=np.int64)
        return idx[labelled[idx]]

    out_folds = []
    for f in folds:
        lo = int(ts.searchsorted(f.train_start_time)) if f.train_start_time is not None else 0
        t0 = int(ts.searchsorted(f.test_start_time))
        t1 = int(ts.searchsorted(f.test_end_time))
        train_rows = window(lo, t0)
        stats = outcome_stats(y, outcomes.ret, outcomes.hold, train_rows, kind, primary)
        select = train_rows[has_oos[train_rows]]
        margin, source, table = choose_margin(ev_long, ev_short, pwl, pws, payoff, net, select, grid, **common)
        rows = np.arange(t0, t1)
        ev_long[rows], ev_short[rows] = _evs(pl[rows], ps[rows], tp_a[rows], sl_a[rows], stats, fr[rows], cost,
                                             bars_per_funding)
        out_folds.append({"test_start_time": f.test_start_time.isoformat(), "test_end_time": f.test_end_time.isoformat(),
                          "stats": stats, "margin": margin, "margin_source": source, "margin_table": table})
    all_rows = window(0, n + horizon)
    stats = outcome_stats(y, outcomes.ret, outcomes.hold, all_rows, kind, primary)
    margin, source, table = choose_margin(ev_long, ev_short, pwl, pws, payoff, net, all_rows[has_oos[all_rows]],
                                          grid, **common)
    end = ts[-1] + (ts[-1] - ts[-2] if n > 1 else pd.Timedelta(0))
    return {"kind": kind, "primary": primary_rule, "grid": [float(g) for g in grid],
            "min_signals": int(min_signals), "default_margin": float(default_margin), "kelly_fraction": float(kelly),
            "cost": float(cost), "folds": out_folds,
            "final": {"from_time": end.isoformat(), "stats": stats, "margin": margin, "margin_source": source,
                      "margin_table": table}}


def _evs(pl, ps, tp, sl, stats, fr, cost, bars_per_funding):
    r = stats["r_other"]
    h = np.asarray(stats["hold"], dtype=np.float64)
    return (expected_returns(pl[:, 0], pl[:, 1], pl[:, 2], tp, sl, r[0], h[0], 1, fr, cost, bars_per_funding),
            expected_returns(ps[:, 0], ps[:, 1], ps[:, 2], tp, sl, r[1], h[1], -1, fr, cost, bars_per_funding))
