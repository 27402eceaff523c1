"""Model registry: a trained model bundle, its out-of-sample prediction rule, and safe save/load.

A :class:`ModelBundle` holds the walk-forward fold models (each with the time range
it is out of sample on), the final model for live trading, and everything needed
to check that the running configuration matches the one it was trained with
(feature names and hash, label settings, library versions).

Files: ``save_bundle(bundle, path)`` writes ``path`` (joblib pickle) and
``path + ".json"`` (human-readable metadata), each atomically (temporary file in
the same directory + ``os.replace``). Only load bundles you created: joblib/pickle
files can run code when loaded. A model plug-in's bundle records the plug-in's source
(``model_plugin``); :func:`load_bundle` makes it importable again before unpickling
(:func:`perpbot.ml.model_plugins.prepare_unpickle`).
"""

from __future__ import annotations

import json
import math
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from perpbot.config_derived import model_stem
from perpbot.data.store import atomic_write
from perpbot.features.build import features_hash
from perpbot.ml.metadata import ModelError, ModelMismatchError, mismatch_message  # noqa: F401 (re-exported)
from perpbot.ml.model_plugins import missing_module_message, plugin_record, prepare_unpickle
from perpbot.ml.train import FoldModel, WalkForwardResult, feature_matrix, timestamps_ns

__all__ = ["ModelError", "ModelMismatchError", "ModelBundle", "features_hash", "make_bundle",
           "save_bundle", "load_bundle", "library_versions", "LABEL_SETTING_KEYS"]

LABEL_SETTING_KEYS = ("take_profit", "stop_loss", "horizon", "barrier_mode")


_hash_features = features_hash


def library_versions() -> dict[str, str]:
    """Versions of python, numpy, pandas, sklearn, lightgbm, xgboost, joblib and perpbot."""
    import lightgbm
    import sklearn

    import perpbot

    try:  # the optional xgboost extra
        import xgboost

        xgb = xgboost.__version__
    except ModuleNotFoundError:
        xgb = "not installed"
    return {"python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__,
            "sklearn": sklearn.__version__, "lightgbm": lightgbm.__version__, "xgboost": xgb,
            "joblib": joblib.__version__, "perpbot": perpbot.__version__}


@dataclass
class ModelBundle:
    """A trained model with its walk-forward fold models and metadata.

    Times are tz-aware UTC pandas Timestamps. ``folds[i].model`` is out of sample on
    ``[folds[i].test_start_time, folds[i].test_end_time)``; ``final_model`` was fitted
    on every usable row from ``train_start_time`` to ``train_end_time`` (inclusive) and
    is out of sample from ``final_from_time`` (end of the training data) on.
    ``label_settings`` holds take_profit, stop_loss (fractions or ATR multiples,
    see ``barrier_mode``), horizon (bars) and barrier_mode (e.g. "fixed", "atr").
    ``strategy`` is "ai" (three-class triple-barrier model) or "meta:<rule>" (meta-labelling);
    ``decision`` the expected-value tables and nested margins per fold; ``calibration`` the
    calibration method and its out-of-sample reliability (both JSON-able, also in the sidecar).
    ``model_plugin`` is where a plug-in model came from (:func:`perpbot.ml.model_plugins.plugin_record`;
    ``{}`` for a built-in model). ``version`` (default): ``<model>-<features hash, 8 hex>-<UTC creation time
    to the millisecond, YYYYmmddHHMMSSfff>``.
    """

    model_name: str
    params: dict
    feature_names: list[str]
    features_hash: str
    folds: list[FoldModel]
    final_model: Any
    train_start_time: pd.Timestamp
    train_end_time: pd.Timestamp
    final_from_time: pd.Timestamp
    label_settings: dict
    oos_metrics: dict = field(default_factory=dict)
    versions: dict = field(default_factory=library_versions)
    created_at: pd.Timestamp = field(default_factory=lambda: pd.Timestamp.now(tz="UTC"))
    version: str = ""
    walk_forward: dict = field(default_factory=dict)
    strategy: str = "ai"                                   # "ai" or "meta:<rule>"
    decision: dict = field(default_factory=dict)           # EV tables (perpbot.ml.decision.fit_decision)
    calibration: dict = field(default_factory=dict)        # method, out-of-sample ECE and reliability curves
    feature_groups: list = field(default_factory=lambda: ["candles"])  # perpbot.features.groups names
    importance: dict = field(default_factory=dict)         # permutation importance on the test folds
    model_plugin: dict = field(default_factory=dict)       # a plug-in model's source (file / entry point)
    market: dict = field(default_factory=dict)             # {"symbol", "timeframe"} it was trained for

    def __post_init__(self) -> None:
        if not self.version:  # to the millisecond: two models trained within one second (a retraining) differ
            t = self.created_at
            self.version = f"{model_stem(self.model_name)}-{self.features_hash[:8]}-{t:%Y%m%d%H%M%S}{t.microsecond // 1000:03d}"

    def predict_proba(self, X: pd.DataFrame, timestamps) -> np.ndarray:
        """Out-of-sample probabilities (p_down, p_flat, p_up), float64 (n, 3).

        A row at time ``t`` (bar open, UTC) is predicted by the fold model whose test range
        contains ``t``, by the final model when ``t >= final_from_time``, and is NaN before
        the first test window or when any of its features is NaN/inf. So a backtest over
        the training history is fully out of sample, and live bars use the final model.

        Args:
            X: DataFrame with (at least) the columns ``feature_names`` (extra columns ignored).
            timestamps: (n,) tz-aware timestamps of the rows.

        Raises:
            ModelMismatchError: X lacks some of the model's features.
            ValueError: lengths differ, naive timestamps or non-numeric features.
        """
        missing = [c for c in self.feature_names if c not in getattr(X, "columns", [])]
        if missing:
            raise ModelMismatchError(f"model {self.version} needs features missing from X: {missing}")
        feats, ok = feature_matrix(X, self.feature_names)
        ns = timestamps_ns(timestamps)
        if ns.shape[0] != feats.shape[0]:
            raise ValueError(f"timestamps have {ns.shape[0]} rows but X has {feats.shape[0]}")
        out = np.full((feats.shape[0], 3), np.nan)
        ranges = [(f.model, f.test_start_time, f.test_end_time) for f in self.folds]
        ranges.append((self.final_model, self.final_from_time, None))
        for model, start, end in ranges:
            rows = ok & (ns >= _ns(start))
            if end is not None:
                rows &= ns < _ns(end)
            if rows.any():
                out[rows] = model.predict_proba(feats[rows])
        return out

    def metadata(self) -> dict:
        """JSON-able summary (everything except the fitted models), as written to the ``.json`` sidecar."""
        return _jsonable({
            "version": self.version, "model_name": self.model_name, "params": self.params,
            "feature_names": self.feature_names, "features_hash": self.features_hash,
            "label_settings": self.label_settings, "walk_forward": self.walk_forward,
            "train_start_time": self.train_start_time, "train_end_time": self.train_end_time,
            "final_from_time": self.final_from_time, "created_at": self.created_at,
            "versions": self.versions, "oos_metrics": self.oos_metrics,
            "strategy": getattr(self, "strategy", "ai"), "decision": getattr(self, "decision", {}),
            "calibration": getattr(self, "calibration", {}),
            "feature_groups": list(getattr(self, "feature_groups", ["candles"])),
            "importance": getattr(self, "importance", {}), "model_plugin": getattr(self, "model_plugin", {}),
            "market": getattr(self, "market", {}),
            "folds": [{"test_start_time": f.test_start_time, "test_end_time": f.test_end_time,
                       "train_start_time": f.train_start_time, "train_end_time": f.train_end_time,
                       "n_train": f.n_train, "n_test": f.n_test,
                       "n_calibration": getattr(f, "n_calibration", 0),
                       "calibration_start_time": getattr(f, "calibration_start_time", None),
                       "fit_end_time": getattr(f, "fit_end_time", None)} for f in self.folds],
        })


def _ns(t: pd.Timestamp) -> int:
    return int(pd.Timestamp(t).tz_convert("UTC").as_unit("ns").value)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (pd.Timestamp, pd.Timedelta)):
        return obj.isoformat()
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return None if not math.isfinite(float(obj)) else float(obj)
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def make_bundle(result: WalkForwardResult, *, label_settings: dict, features_hash: str | None = None,
                oos_metrics: dict | None = None, created_at: pd.Timestamp | None = None, strategy: str = "ai",
                decision: dict | None = None, calibration: dict | None = None, feature_groups=("candles",),
                importance: dict | None = None) -> ModelBundle:
    """Build a :class:`ModelBundle` from a walk-forward result.

    Args:
        result: output of :func:`perpbot.ml.train.walk_forward_train`.
        label_settings: dict with keys :data:`LABEL_SETTING_KEYS`; its horizon must equal
            the result's purge horizon.
        features_hash: hash of the feature configuration (default:
            :func:`features_hash` of the result's feature names).
        oos_metrics: e.g. :func:`perpbot.ml.metrics.model_metrics` of the OOS probabilities.
        created_at: creation time (default now, UTC).
        strategy, decision, calibration, feature_groups, importance: see :class:`ModelBundle`.

    Raises:
        ValueError: missing label settings or a horizon that differs from the result's.
    """
    missing = [k for k in LABEL_SETTING_KEYS if k not in label_settings]
    if missing:
        raise ValueError(f"label_settings lacks {missing}")
    if int(label_settings["horizon"]) != result.horizon:
        raise ValueError(f"label_settings horizon {label_settings['horizon']} differs from the walk-forward "
                         f"purge horizon {result.horizon}")
    return ModelBundle(
        model_name=result.model_name, params=dict(result.params), feature_names=list(result.feature_names),
        features_hash=features_hash or _hash_features(result.feature_names), folds=list(result.folds),
        final_model=result.final_model, train_start_time=result.train_start_time,
        train_end_time=result.train_end_time, final_from_time=result.data_end_time,
        label_settings=dict(label_settings), oos_metrics=dict(oos_metrics or {}),
        created_at=created_at if created_at is not None else pd.Timestamp.now(tz="UTC"),
        walk_forward={"train_size": result.train_size, "test_size": result.test_size, "embargo": result.embargo,
                      "expanding": result.expanding, "bar_interval": result.bar_interval,
                      "n_train_final": result.n_train_final},
        strategy=strategy, decision=dict(decision or {}), calibration=dict(calibration or {}),
        feature_groups=list(feature_groups), importance=dict(importance or {}),
        model_plugin=result.extra["model_plugin"] if "model_plugin" in result.extra
        else plugin_record(result.model_name))


def save_bundle(bundle: ModelBundle, path) -> Path:
    """Write ``bundle`` to ``path`` (joblib, zlib-compressed) and ``path + ".json"`` (metadata), atomically.

    Parent directories are created. Returns the model path.
    """
    if not isinstance(bundle, ModelBundle):
        raise ValueError(f"save_bundle needs a ModelBundle, got {type(bundle).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: joblib.dump(bundle, fh, compress=3))
    text = json.dumps(bundle.metadata(), indent=2, sort_keys=False) + "\n"
    atomic_write(Path(str(path) + ".json"), lambda fh: fh.write(text.encode()))
    return path


def _sidecar(path: Path) -> dict:
    """The ``.json`` metadata beside a model, or {} when it is missing or unreadable."""
    try:
        meta = json.loads(Path(str(path) + ".json").read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def load_bundle(path, expected_features_hash: str | None = None,
                expected_feature_names: list[str] | None = None) -> ModelBundle:
    """Load a bundle written by :func:`save_bundle`.

    Args:
        path: the model file.
        expected_features_hash: hash the running configuration computes; a different
            hash in the bundle raises :class:`ModelMismatchError`.
        expected_feature_names: the running configuration's feature names, used to name
            the differing features in that error.

    Raises:
        ModelError: file missing, unreadable/corrupt, or not a ModelBundle; a plug-in model whose
            plug-in is missing or changed (:func:`perpbot.ml.model_plugins.prepare_unpickle`).
        ModelMismatchError: features hash differs from ``expected_features_hash``.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    plugin = _sidecar(path).get("model_plugin")
    prepare_unpickle(plugin, path)
    try:
        bundle = joblib.load(path)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt file
        missing = missing_module_message(plugin, path, exc) if isinstance(exc, ModuleNotFoundError) else None
        if missing:
            raise ModelError(missing) from None
        detail = " ".join(str(exc).split())[:200]
        raise ModelError(f"model file {path} is corrupt or unreadable ({type(exc).__name__}: {detail})") from exc
    if not isinstance(bundle, ModelBundle):
        raise ModelError(f"model file {path} does not hold a perpbot ModelBundle (got {type(bundle).__name__})")
    if expected_features_hash is not None and bundle.features_hash != expected_features_hash:
        raise ModelMismatchError(mismatch_message(bundle, expected_features_hash, expected_feature_names))
    return bundle


