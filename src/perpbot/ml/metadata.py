"""Saved-model metadata and the model errors, without the ML libraries.

:func:`load_metadata` reads the JSON written beside a model by
:func:`perpbot.ml.registry.save_bundle` and checks its features hash, so a command can refuse a
model from another feature set (or use cached probabilities) without unpickling the model,
which would import scikit-learn and LightGBM.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace


class ModelError(ValueError):
    """A model file is missing, unreadable or not a perpbot model bundle."""


class ModelMismatchError(ModelError):
    """A model bundle was trained on other features than the running configuration computes."""


def mismatch_message(bundle, expected_hash: str, expected_names) -> str:
    """One line naming the model, both feature hashes and the differing features (``bundle``: any
    object with version, feature_names, features_hash)."""
    head = (f"model {bundle.version} was trained on {len(bundle.feature_names)} features "
            f"(hash {bundle.features_hash[:12]}) but the running config computes ")
    if expected_names is None:
        return head + f"other features (hash {expected_hash[:12]}); retrain the model or restore its feature config"
    expected = list(expected_names)
    missing = [c for c in bundle.feature_names if c not in set(expected)]
    extra = [c for c in expected if c not in set(bundle.feature_names)]
    if missing or extra:
        diff = f"missing {missing}, extra {extra}"
    elif expected != bundle.feature_names:
        diff = "the same features in a different order"
    else:
        diff = "the same feature names with different settings"
    return head + f"{len(expected)} features (hash {expected_hash[:12]}): {diff}; retrain the model"


def load_metadata(path, expected_features_hash: str | None = None,
                  expected_feature_names: list[str] | None = None) -> dict:
    """The JSON metadata written beside a model by :func:`perpbot.ml.registry.save_bundle`, checked like
    :func:`perpbot.ml.registry.load_bundle`
    (without unpickling the model, so without importing scikit-learn or LightGBM).

    Raises:
        ModelError: the model or its metadata file is missing or unreadable.
        ModelMismatchError: features hash differs from ``expected_features_hash``.
    """
    path = Path(path)
    meta_path = Path(str(path) + ".json")
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        meta = json.loads(meta_path.read_text())
        info = SimpleNamespace(version=meta["version"], feature_names=list(meta["feature_names"]),
                               features_hash=meta["features_hash"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"model metadata {meta_path} is missing or unreadable ({type(exc).__name__})") from None
    if expected_features_hash is not None and info.features_hash != expected_features_hash:
        raise ModelMismatchError(mismatch_message(info, expected_features_hash, expected_feature_names))
    return meta


def model_groups(settings, path) -> list[str]:
    """The feature groups of the saved model at ``path`` (its metadata; ``["candles"]`` for models
    saved before groups existed; ``settings.features`` when there is no readable metadata).

    Raises ModelMismatchError when the settings name other groups explicitly (``--features``,
    the config file or the environment): the model is refused rather than fed other columns.
    """
    try:
        meta = json.loads(Path(str(path) + ".json").read_text())
        saved = list(meta.get("feature_groups") or ["candles"])
    except (OSError, ValueError, AttributeError):
        return list(settings.features)
    if "features" in settings.model_fields_set and list(settings.features) != saved:
        raise ModelMismatchError(f"model {path} was trained on feature groups {','.join(saved)}, but the settings "
                                 f"ask for {','.join(settings.features)}; retrain with --features "
                                 f"{','.join(settings.features)} or drop the features setting")
    return saved
