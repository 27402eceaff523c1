"""The verdict saved beside a model: ``<model file>.verdict.json``.

Written whenever a backtest or an optimisation judges a model (:func:`save_verdict`), read by
the real-money gate of ``perpbot run --mode live --real-money`` (:func:`load_verdict`). The file
holds one entry per source ("optimize", "backtest"), each with the model version it judged,
the time, the :class:`~perpbot.ml.honesty.verdict.Verdict` and a short summary. The verdict
that counts (:func:`model_verdict`) is the optimisation's when there is one for this model
version (only an optimisation has trials, a PBO and an inner hold-out, so only it can confirm
an edge), else the backtest's.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pandas as pd

from perpbot.ml.honesty.verdict import Verdict, json_safe

__all__ = ["model_verdict", "load_verdict", "save_verdict", "verdict_path"]

SOURCES = ("optimize", "backtest")


def verdict_path(model_path) -> Path:
    """``<model file>.verdict.json``."""
    return Path(str(model_path) + ".verdict.json")


def load_verdict(model_path) -> dict:
    """The saved entries ``{source: {model_version, time, verdict, summary}}``; {} when there is no
    file. Raises ``ValueError`` for an unreadable file."""
    p = verdict_path(model_path)
    if not p.exists():
        return {}
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"verdict file {p} is unreadable ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ValueError(f"verdict file {p} is not a JSON object")
    return data


def save_verdict(model_path, verdict: Verdict, *, source: str, model_version: str | None,
                 summary: dict | None = None) -> Path:
    """Write (atomically) the ``source`` entry of the model's verdict file, keeping the other entries
    (``summary``: JSON-able figures; NaN/inf are stored as null)."""
    if source not in SOURCES:
        raise ValueError(f"source: one of {SOURCES}, got {source!r}")
    p = verdict_path(model_path)
    try:
        data = load_verdict(model_path)
    except ValueError:
        data = {}
    data[source] = {"model_version": model_version, "time": pd.Timestamp.now(tz="UTC").isoformat(),
                    "verdict": verdict.to_dict(), "summary": _clean(summary or {})}
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True, allow_nan=False)
    os.replace(tmp, p)
    return p


def _clean(v):
    """JSON-safe copy: NaN/inf -> None, numpy scalars -> Python numbers, nested dicts/lists cleaned."""
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return json_safe(v) if v is None or isinstance(v, (bool, str, int, float)) or hasattr(v, "dtype") else str(v)


def model_verdict(model_path, model_version: str | None) -> tuple[Verdict | None, str | None]:
    """(verdict, source) that counts for the model of ``model_version`` (module docstring);
    (None, None) when none was saved for that version."""
    data = load_verdict(model_path)
    for source in SOURCES:
        entry = data.get(source)
        if isinstance(entry, dict) and entry.get("model_version") == model_version and "verdict" in entry:
            return Verdict.from_dict(entry["verdict"]), source
    return None, None
