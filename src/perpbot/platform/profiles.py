"""Risk profiles: what each user's profile lets the AI do, and a backtest per profile.

==============  ===============  ======================  ============
profile         min confidence   max position (margin)   max leverage
==============  ===============  ======================  ============
conservative    0.75             10 % of available       2x
moderate        0.65             20 % of available       3x
aggressive      0.55             30 % of available       5x
==============  ===============  ======================  ============

Confidence and position sizes are the users' design; the leverage caps are ours. With isolated
margin a position can lose at most its margin, so a profile's worst loss per trade is its position
cap (10 / 20 / 30 % of the available balance) whatever the leverage; leverage decides how far the
price may move before that happens: liquidation lies about 1 / leverage from entry (50 % / 33 % /
20 % at 2x / 3x / 5x, less the maintenance margin), far beyond the 1 % default stop-loss, so a
normal stop closes the position long before, and only a gap of that size can reach the cap.
An admin may edit every number (:meth:`Profiles.update`, stored in ``platform_risk_profiles``).

:func:`settings_overrides` maps a profile to the settings the risk engine uses: the model's
``confidence_threshold``, ``sizing = "equity"`` with ``equity_fraction`` = the position cap
(margin posted per entry as a fraction of equity, so notional = fraction x equity x leverage),
and ``leverage = min(settings.leverage, cap)``. :func:`backtest_profiles` runs
:func:`perpbot.backtest.runner.run_strategies` once per profile with those overrides.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from perpbot.platform.db import utcnow
from perpbot.platform.models import PROFILE_NAMES, RiskProfileRow
from perpbot.platform.wallet import write_session


@dataclass(frozen=True)
class RiskProfile:
    """``min_confidence`` probability (0.34-1), ``max_position_frac`` of the available balance posted as
    margin (fraction, 0-1], ``max_leverage`` x (1-125)."""

    name: str
    min_confidence: float
    max_position_frac: float
    max_leverage: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULTS: dict[str, RiskProfile] = {
    "conservative": RiskProfile("conservative", 0.75, 0.10, 2.0),
    "moderate": RiskProfile("moderate", 0.65, 0.20, 3.0),
    "aggressive": RiskProfile("aggressive", 0.55, 0.30, 5.0),
}


def check_profile(p: RiskProfile) -> RiskProfile:
    """Raises ValueError (one line) for an unknown name or a value out of range."""
    if p.name not in PROFILE_NAMES:
        raise ValueError(f"risk profile {p.name!r} is not one of {', '.join(PROFILE_NAMES)}")
    if not 0.34 <= p.min_confidence <= 1.0:
        raise ValueError(f"min_confidence {p.min_confidence} must be in [0.34, 1] (a probability)")
    if not 0.0 < p.max_position_frac <= 1.0:
        raise ValueError(f"max_position_frac {p.max_position_frac} must be in (0, 1] (a fraction, not a percent)")
    if not 1.0 <= p.max_leverage <= 125.0:
        raise ValueError(f"max_leverage {p.max_leverage} must be in [1, 125]")
    return p


class Profiles:
    """The three profiles, admin-editable; rows in ``platform_risk_profiles`` override :data:`DEFAULTS`."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def all(self) -> dict[str, RiskProfile]:
        out = dict(DEFAULTS)
        with Session(self.engine) as s:
            for r in s.execute(sa.select(RiskProfileRow)).scalars():
                out[r.name] = RiskProfile(r.name, r.min_confidence, r.max_position_frac, r.max_leverage)
        return out

    def get(self, name: str) -> RiskProfile:
        """Raises KeyError for an unknown profile name."""
        if name not in PROFILE_NAMES:
            raise KeyError(f"risk profile {name!r} is not one of {', '.join(PROFILE_NAMES)}")
        return self.all()[name]

    def update(self, name: str, *, actor_id: int | None, min_confidence: float | None = None,
               max_position_frac: float | None = None, max_leverage: float | None = None) -> RiskProfile:
        """Change a profile's numbers (None keeps one). Raises KeyError / ValueError."""
        old = self.get(name)
        new = check_profile(RiskProfile(name, old.min_confidence if min_confidence is None else float(min_confidence),
                                        old.max_position_frac if max_position_frac is None else float(max_position_frac),
                                        old.max_leverage if max_leverage is None else float(max_leverage)))
        with write_session(self.engine) as s:
            row = s.get(RiskProfileRow, name, with_for_update=True)
            if row is None:
                row = RiskProfileRow(name=name)
                s.add(row)
            row.min_confidence, row.max_position_frac, row.max_leverage = (new.min_confidence, new.max_position_frac,
                                                                            new.max_leverage)
            row.updated_at, row.updated_by = utcnow(), actor_id
        return new


def settings_overrides(profile: RiskProfile, settings: Any) -> dict[str, Any]:
    """Settings fields a profile sets (see the module doc): pass them to ``Settings.model_copy(update=...)``
    or ``load_settings(**overrides)``."""
    # a profile's minimum confidence is the fixed-threshold rule of the users' design
    return {"decision": "threshold", "confidence_threshold": profile.min_confidence, "sizing": "equity",
            "equity_fraction": profile.max_position_frac, "leverage": min(float(settings.leverage), profile.max_leverage)}


def profile_settings(profile: RiskProfile, settings: Any) -> Any:
    """A validated copy of ``settings`` with the profile's overrides applied."""
    return type(settings)(**{**settings.model_dump(), **settings_overrides(profile, settings)})


def backtest_profiles(settings: Any, market: Any, strategies: list[str], *, proba: Any = None,
                      profiles: dict[str, RiskProfile] | None = None) -> dict[str, dict[str, Any]]:
    """What each profile would have done: ``{profile: {strategy: StrategyRun}}`` from
    :func:`perpbot.backtest.runner.run_strategies` on the same ``market`` (and ``proba`` for "ai",
    float64 (n, 3)), each with :func:`profile_settings`. Buy-and-hold keeps its own 1x rule."""
    from perpbot.backtest.runner import market_arrays, run_strategies

    arrays = market_arrays(settings, market)  # depends on the ATR period only: shared
    return {name: run_strategies(profile_settings(p, settings), market, strategies, proba=proba, arrays=arrays)
            for name, p in (profiles or DEFAULTS).items()}
