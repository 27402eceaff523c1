"""perpbot.ml: triple-barrier labels, models, walk-forward validation and training, model registry, metrics.

Classes everywhere: -1 (down / short wins), 0 (flat), +1 (up / long wins); probability
arrays are float64 (n, 3) with columns (p_down, p_flat, p_up) and NaN rows where no
prediction exists.
"""

from __future__ import annotations

import importlib

# Names resolve lazily (PEP 562) so that importing one light module (e.g. perpbot.ml.signals)
# does not pull in scikit-learn, LightGBM and XGBoost.
_EXPORTS = {
    "atr_barriers": "labels", "label_horizon_end": "labels", "triple_barrier_labels": "labels",
    "model_metrics": "metrics", "DEFAULT_MODEL": "models", "MODEL_NAMES": "models", "make_model": "models",
    "ModelBundle": "registry", "ModelError": "metadata", "ModelMismatchError": "metadata",
    "features_hash": "registry", "load_bundle": "registry", "make_bundle": "registry", "save_bundle": "registry",
    "confidence": "signals", "proba_to_signal": "signals", "FoldModel": "train", "WalkForwardResult": "train",
    "walk_forward_train": "train", "Fold": "validation", "walk_forward_splits": "validation",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'perpbot.ml' has no attribute {name!r}")
    return getattr(importlib.import_module(f"perpbot.ml.{module}"), name)
