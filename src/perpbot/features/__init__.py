"""perpbot.features: causal feature matrix (TA-Lib) from candles + funding, and causality checks.

Feature groups selectable by name (``candles``, ``htf``, ``cross_asset``, ``funding_basis``,
``regime``) live in :mod:`perpbot.features.groups` (one module per group beside it).

Re-exports :func:`compute_features`, :func:`compute_latest`, :func:`feature_names`,
:func:`features_hash`, :data:`FEATURE_SET_VERSION`, :data:`WARMUP_BARS`,
:data:`RECOMMENDED_WINDOW` (from :mod:`.build`) and :func:`lookahead_violations`,
:func:`recursive_violations`, :func:`perturb_after` (from :mod:`.causality`).
"""

from __future__ import annotations

from perpbot.features.build import (
    FEATURE_SET_VERSION,
    RECOMMENDED_WINDOW,
    WARMUP_BARS,
    compute_features,
    compute_latest,
    feature_names,
    features_hash,
)
from perpbot.features.causality import lookahead_violations, perturb_after, recursive_violations

__all__ = [
    "FEATURE_SET_VERSION",
    "RECOMMENDED_WINDOW",
    "WARMUP_BARS",
    "compute_features",
    "compute_latest",
    "feature_names",
    "features_hash",
    "lookahead_violations",
    "perturb_after",
    "recursive_violations",
]
