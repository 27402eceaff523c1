"""perpbot.ml: triple-barrier labels, models, walk-forward validation and training, model registry, metrics.

Classes everywhere: -1 (down / short wins), 0 (flat), +1 (up / long wins); probability
arrays are float64 (n, 3) with columns (p_down, p_flat, p_up) and NaN rows where no
prediction exists.
"""

from __future__ import annotations

from perpbot.ml.labels import atr_barriers, label_horizon_end, triple_barrier_labels
from perpbot.ml.metrics import model_metrics
from perpbot.ml.models import DEFAULT_MODEL, MODEL_NAMES, make_model
from perpbot.ml.registry import (
    ModelBundle,
    ModelError,
    ModelMismatchError,
    features_hash,
    load_bundle,
    make_bundle,
    save_bundle,
)
from perpbot.ml.signals import confidence, proba_to_signal
from perpbot.ml.train import FoldModel, WalkForwardResult, walk_forward_train
from perpbot.ml.validation import Fold, walk_forward_splits

__all__ = [
    "DEFAULT_MODEL", "MODEL_NAMES", "Fold", "FoldModel", "ModelBundle", "ModelError", "ModelMismatchError",
    "WalkForwardResult", "atr_barriers", "confidence", "features_hash", "label_horizon_end", "load_bundle",
    "make_bundle", "make_model", "model_metrics", "proba_to_signal", "save_bundle", "triple_barrier_labels",
    "walk_forward_splits", "walk_forward_train",
]
