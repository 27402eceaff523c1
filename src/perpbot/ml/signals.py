"""Turn (p_down, p_flat, p_up) probabilities into trading signals and confidences."""

from __future__ import annotations

import numpy as np

__all__ = ["proba_to_signal", "confidence", "check_proba"]


def check_proba(proba) -> np.ndarray:
    """Validate and return ``proba`` as a float64 (n, 3) array (columns p_down, p_flat, p_up).

    Raises:
        ValueError: wrong shape.
    """
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"probabilities must have shape (n, 3) = (p_down, p_flat, p_up), got {p.shape}")
    return p


def proba_to_signal(proba, threshold: float = 0.6) -> np.ndarray:
    """Signal per row as int8: +1 (buy) if ``p_up >= threshold`` and ``p_up > p_down``,
    -1 (sell) if ``p_down >= threshold`` and ``p_down > p_up``, else 0 (hold).
    Rows with any NaN give 0.

    Args:
        proba: (n, 3) float64 probabilities (p_down, p_flat, p_up).
        threshold: minimum probability of the called direction, in [0, 1].

    Raises:
        ValueError: wrong shape or threshold outside [0, 1].
    """
    p = check_proba(proba)
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be a probability in [0, 1], got {threshold}")
    down, up = p[:, 0], p[:, 2]
    valid = np.isfinite(p).all(axis=1)
    out = np.zeros(p.shape[0], dtype=np.int8)
    out[valid & (up >= threshold) & (up > down)] = 1
    out[valid & (down >= threshold) & (down > up)] = -1
    return out


def confidence(proba) -> np.ndarray:
    """Confidence of the directional call: ``max(p_up, p_down)``, float64 (n,), NaN for NaN rows.

    Raises:
        ValueError: wrong shape.
    """
    p = check_proba(proba)
    out = np.maximum(p[:, 0], p[:, 2])
    out[~np.isfinite(p).all(axis=1)] = np.nan
    return out
