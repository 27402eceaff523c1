"""Classification metrics of model probabilities against triple-barrier labels, each beside its base rate.

All metrics are computed over the rows where both the label (-1/0/+1) and all three
probabilities (p_down, p_flat, p_up) are finite; ``n`` is their count. Class
frequencies ``f = (f_down, f_flat, f_up)`` are the label shares over those rows.

| key | definition | base rate (``*_base``) |
|---|---|---|
| ``accuracy`` | share of rows whose argmax class (ties -> the first of down, flat, up) equals the label | ``max(f)``: always predicting the most frequent class |
| ``directional_accuracy`` | over the ``n_directional`` rows with label != 0: share where ``sign(p_up - p_down)`` equals the label (a tie counts as wrong) | share of the majority direction among those rows |
| ``precision`` | over the ``n_calls`` confident calls (:func:`perpbot.ml.signals.proba_to_signal` at ``threshold``: ``max(p_up, p_down) >= threshold`` and beating the other direction): share whose label equals the call; NaN with no call | ``max(f_down, f_up)``: the precision of calling the most common non-flat label on every row |
| ``brier`` | multi-class Brier score: mean over rows of ``sum_k (p_k - onehot_k)^2`` (0 best, 2 worst) | the same score of the constant forecast ``f`` (= ``1 - sum_k f_k^2``) |
| ``log_loss`` | ``sklearn.metrics.log_loss`` with labels (-1, 0, 1) (natural log) | the same of the constant forecast ``f`` |

The base-rate forecasts use the class frequencies of the evaluated labels themselves
(no training), so they are slightly optimistic baselines: a model must beat them
out of sample to show skill. Brier (1950); log loss = cross-entropy.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import log_loss

from perpbot.ml.signals import check_proba, proba_to_signal

__all__ = ["model_metrics", "METRIC_KEYS"]

_CLASSES = np.array([-1, 0, 1])

METRIC_KEYS = ("n", "class_share_down", "class_share_flat", "class_share_up", "accuracy", "accuracy_base",
               "n_directional", "directional_accuracy", "directional_accuracy_base", "threshold", "n_calls",
               "call_rate", "precision", "precision_base", "brier", "brier_base", "log_loss", "log_loss_base")


def _share(mask: np.ndarray) -> float:
    return float(mask.mean()) if mask.size else float("nan")


def model_metrics(y_true, proba, threshold: float = 0.6) -> dict[str, float]:
    """Metrics of ``proba`` against ``y_true`` (see the module docstring for every definition).

    Args:
        y_true: (n,) labels -1/0/+1 as floats, NaN = no label.
        proba: (n, 3) float64 probabilities (p_down, p_flat, p_up), NaN rows = no prediction.
        threshold: confidence threshold of a call, in [0, 1].

    Returns:
        dict with the keys :data:`METRIC_KEYS`; counts are ints, the rest floats
        (NaN when undefined, e.g. every metric when ``n == 0``).

    Raises:
        ValueError: shapes differ, labels outside -1/0/+1 or threshold outside [0, 1].
    """
    y = np.asarray(y_true, dtype=np.float64)
    p = check_proba(proba)
    if y.shape != (p.shape[0],):
        raise ValueError(f"y_true must have shape ({p.shape[0]},) like proba, got {y.shape}")
    mask = np.isfinite(y) & np.isfinite(p).all(axis=1)
    y, p = y[mask], p[mask]
    if not np.isin(y, _CLASSES).all():
        raise ValueError("y_true must hold -1, 0, +1 or NaN")
    signal = proba_to_signal(p, threshold)  # validates threshold
    n = int(y.size)
    nan = float("nan")
    out: dict[str, float] = {k: nan for k in METRIC_KEYS}
    out.update(n=n, n_directional=0, n_calls=0, threshold=float(threshold))
    if n == 0:
        return out
    yi = y.astype(np.int64)
    onehot = (yi[:, None] == _CLASSES[None, :]).astype(np.float64)
    freq = onehot.mean(axis=0)
    out.update(class_share_down=float(freq[0]), class_share_flat=float(freq[1]), class_share_up=float(freq[2]))

    out["accuracy"] = _share(_CLASSES[np.argmax(p, axis=1)] == yi)
    out["accuracy_base"] = float(freq.max())

    directional = yi != 0
    yd = yi[directional]
    out["n_directional"] = int(yd.size)
    out["directional_accuracy"] = _share(np.sign(p[directional, 2] - p[directional, 0]) == yd)
    out["directional_accuracy_base"] = float(max((yd == 1).mean(), (yd == -1).mean())) if yd.size else nan

    calls = signal != 0
    out["n_calls"] = int(calls.sum())
    out["call_rate"] = float(calls.mean())
    out["precision"] = _share(yi[calls] == signal[calls])
    out["precision_base"] = float(max(freq[0], freq[2]))

    base = np.broadcast_to(freq, p.shape)
    out["brier"] = float(((p - onehot) ** 2).sum(axis=1).mean())
    out["brier_base"] = float(((base - onehot) ** 2).sum(axis=1).mean())
    out["log_loss"] = float(log_loss(yi, p, labels=_CLASSES))
    out["log_loss_base"] = float(log_loss(yi, base, labels=_CLASSES))
    return out
