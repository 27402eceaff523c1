"""Cache of a saved model's probabilities over one candle history.

Research means backtesting the same model on the same candles again and again with other
risk settings; the model's output does not change, so it is computed once and kept beside
the model file as ``<model>.proba.npz`` (float64 (n, 3) p_down, p_flat, p_up + the key).
The key is a SHA-256 over the model file's own bytes (:func:`model_digest`, streamed), the model
version and features hash of its metadata, the candles (open times and OHLCV bytes) and the
funding history the features read: a retrained, replaced or corrupted model file, another candle
file, or a corrected candle or funding rate gives another key, and the caller recomputes (and
so loads the model, which reports a corrupt file). Reading needs neither the model nor
scikit-learn / LightGBM. Writes are atomic.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd


def cache_path(model_path: str | Path) -> Path:
    return Path(str(model_path) + ".proba.npz")


def model_digest(model_path: str | Path) -> str:
    """Hex SHA-256 of the model file's bytes, read in chunks (never whole into memory).
    Raises OSError (e.g. FileNotFoundError) when the file cannot be read."""
    with open(model_path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def data_key(model_sha256: str, model_version: str, features_hash: str, candles: pd.DataFrame,
             funding: pd.DataFrame | None) -> str:
    """Hex SHA-256 of the model (file digest from :func:`model_digest`, version, features hash)
    and the exact data its features are computed from."""
    h = hashlib.sha256()
    h.update(json.dumps([model_sha256, model_version, features_hash]).encode())
    h.update(candles["timestamp"].astype("datetime64[ms, UTC]").astype("int64").to_numpy().tobytes())
    for col in ("open", "high", "low", "close", "volume"):
        h.update(np.ascontiguousarray(candles[col].to_numpy(np.float64)).tobytes())
    if funding is not None:
        h.update(funding["timestamp"].astype("datetime64[ms, UTC]").astype("int64").to_numpy().tobytes())
        h.update(np.ascontiguousarray(funding["funding_rate"].to_numpy(np.float64)).tobytes())
    return h.hexdigest()


def load(model_path: str | Path, key: str, n: int) -> np.ndarray | None:
    """The cached (n, 3) probabilities for ``key``, or None (no file, other key, unreadable)."""
    path = cache_path(model_path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key or z["proba"].shape != (n, 3):
                return None
            return z["proba"].astype(np.float64)
    except (OSError, KeyError, ValueError):
        return None


def save(model_path: str | Path, key: str, proba: np.ndarray) -> Path:
    """Write the cache atomically (temp file + os.replace) next to the model."""
    path = cache_path(model_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, key=np.array(key), proba=np.asarray(proba, dtype=np.float64))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
