"""Meta-labelling (Lopez de Prado, *Advances in Financial Machine Learning*, 2018, ch. 3.6).

A primary rule (``ema-cross``, ``donchian`` or ``scoring``, :mod:`perpbot.strategy.signals`)
proposes the side at its signal bars (*events*); a secondary, binary model learns whether to
take each proposed trade, and its calibrated probability sizes it.

* **Meta-label** of an event bar ``t`` with side ``s``: ``+1`` ("take") when the trade entered
  at ``close[t]`` on side ``s`` hits its take-profit before its stop-loss within ``horizon``
  bars (the triple barrier on the primary's side, :func:`perpbot.ml.labels.side_outcomes`),
  ``-1`` ("skip") when it hits the stop-loss first or reaches the vertical barrier; NaN on
  bars without an event and where the horizon runs past the data.
* **Features**: the model's usual features plus ``primary_side`` (the proposed side, +1/-1;
  NaN on non-event bars, so only events are trained on and predicted).
* The model is trained walk-forward and calibrated like the three-class model
  (:func:`perpbot.ml.train.walk_forward_train`); its probabilities are (p_skip, 0, p_take) in
  the (p_down, p_flat, p_up) columns, and the EV rule of :mod:`perpbot.ml.decision`
  (``kind="meta"``) decides and sizes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perpbot.ml.labels import SideOutcomes

__all__ = ["META_FEATURE", "meta_labels", "meta_frame", "meta_feature_names", "meta_features_hash"]

META_FEATURE = "primary_side"


def meta_labels(primary, outcomes: SideOutcomes) -> np.ndarray:
    """Meta-labels (module docstring): float64 (n,) +1 take, -1 skip, NaN no event / no label.

    Args:
        primary: (n,) the primary rule's signal (-1/0/+1) per bar.
        outcomes: :func:`perpbot.ml.labels.side_outcomes` of the same bars and barriers.

    Raises:
        ValueError: lengths differ or ``primary`` holds other values than -1/0/+1.
    """
    side = np.asarray(primary)
    n = outcomes.code.shape[0]
    if side.shape != (n,):
        raise ValueError(f"primary must have shape ({n},) like the outcomes, got {side.shape}")
    if not np.isin(side, (-1, 0, 1)).all():
        raise ValueError("primary must hold -1, 0 or +1")
    code = np.where(side > 0, outcomes.code[:, 0], outcomes.code[:, 1])
    out = np.where(code == 1.0, 1.0, -1.0)
    out[(side == 0) | ~np.isfinite(code)] = np.nan
    return out


def meta_frame(X: pd.DataFrame, primary) -> pd.DataFrame:
    """``X`` with the ``primary_side`` column appended (+1/-1 on events, NaN elsewhere)."""
    side = np.asarray(primary, dtype=np.float64)
    if side.shape != (len(X),):
        raise ValueError(f"primary must have one value per row of X ({len(X)}), got {side.shape}")
    out = X.copy()
    out[META_FEATURE] = np.where(side != 0, side, np.nan)
    return out


def meta_feature_names(base_names: list[str]) -> list[str]:
    """Feature columns of a meta model: the base features then ``primary_side``."""
    return list(base_names) + [META_FEATURE]


def meta_features_hash(base_names: list[str], primary_rule: str) -> str:
    """Fingerprint of a meta model's inputs: the features, ``primary_side`` and the primary rule
    (a model for one rule is refused for another)."""
    from perpbot.features.build import features_hash

    return features_hash(meta_feature_names(base_names) + [f"meta-primary:{primary_rule}"])
