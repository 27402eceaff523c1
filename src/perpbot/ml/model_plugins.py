"""Models as plug-ins: any scikit-learn classifier, named by an entry point or by its file.

The interface is the scikit-learn estimator protocol (``docs/COOKBOOK.md`` writes one in 20 lines):
a *factory* (a class, or a function returning an estimator) is called with the model's
hyperparameters (``model_params``) and returns an estimator with

* ``fit(X, y)``: ``X`` float64 (n, k) standardised features, ``y`` int64 (n,) class codes
  ``0 .. c-1`` (the labels -1/0/+1 present in the window, in order); returns the estimator;
* ``classes_`` after fitting: ``[0, 1, .., c-1]``;
* ``predict_proba(X)``: float (n, c) probabilities in the order of ``classes_``;
* ``get_params()`` / ``set_params()`` so :func:`sklearn.base.clone` copies it (subclassing
  :class:`sklearn.base.BaseEstimator` gives both).

``random_state`` and ``n_jobs`` are passed too when the factory's signature names them and
``model_params`` does not set them. :func:`perpbot.ml.models.make_model` wraps the estimator like
a built-in one (``Pipeline([StandardScaler, ThreeClassClassifier(estimator)])``), so training,
calibration, walk-forward, saving and the backtest treat it alike.

A plug-in is named wherever a model name goes (``model`` setting, ``--model``):

* an installed entry point of the group ``perpbot.models`` — a package declares
  ``[project.entry-points."perpbot.models"] shrunk-nb = "mypkg.models:ShrunkNB"`` and
  ``model = "shrunk-nb"`` selects it (built-in names win over a plug-in of the same name);
* a file ``path/to/file.py:Factory``, or ``path/to/file.py`` when the file defines exactly one
  class with ``fit`` and ``predict_proba``.

Saved models: the pickle refers to the plug-in's class by module, so the bundle records where it
came from (:func:`plugin_record`, in the bundle and its ``.json`` sidecar as ``model_plugin``).
Before unpickling, :func:`prepare_unpickle` re-imports a file plug-in from its recorded absolute
path under the same module name, refusing a missing file or one whose SHA-256 changed since
training (retrain, or restore the file); an entry-point plug-in's package must be installed
(a bundle that cannot be unpickled without it says so: :func:`missing_module_message`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from perpbot.config_values import (
    BUILTIN_MODELS, MODEL_ENTRY_POINT_GROUP, is_model_file_ref, model_entry_point_names, unknown_model_message,
)
from perpbot.ml.metadata import ModelError

__all__ = ["ENTRY_POINT_GROUP", "PROTOCOL", "build_estimator", "is_model_file_ref", "load_factory",
           "missing_module_message", "model_entry_points", "plugin_defaults", "plugin_record", "prepare_unpickle"]

ENTRY_POINT_GROUP = MODEL_ENTRY_POINT_GROUP
#: The methods a plug-in's estimator must have.
PROTOCOL = ("fit", "predict_proba", "get_params", "set_params")
_MODULE_PREFIX = "perpbot_model_plugin_"
_INJECTED = ("random_state", "n_jobs")
_LOADED: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {}


def model_entry_points() -> dict[str, EntryPoint]:
    """Installed model plug-ins: entry-point name -> :class:`importlib.metadata.EntryPoint`."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _file_module_name(path: Path, digest: str) -> str:
    """The module name a plug-in file is imported as: the same in every process (pickles refer to
    it), and a new one when the file's content changes (a long-lived process or worker then
    imports the new code instead of reusing the old module)."""
    return _MODULE_PREFIX + hashlib.sha1(f"{path}\0{digest}".encode()).hexdigest()[:16]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def import_file(path: Path, module_name: str, what: str = "model"):
    """Import the Python file ``path`` as ``module_name`` (once per process: a module already imported
    under that name is returned). Raises ValueError, one line naming the ``what`` file and the cause,
    when it cannot be loaded or its code raises (the half-imported module is forgotten)."""
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot load {what} file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's code: one line, the cause named
        del sys.modules[module_name]
        raise ValueError(f"{what} file {path} failed to load: {type(exc).__name__}: {exc}") from None
    return module


def _load_file(ref: str) -> tuple[Callable[..., Any], dict[str, Any]]:
    path_text, _, name = ref.partition(".py:")
    path = Path(path_text + ".py" if name else path_text).expanduser()
    if not path.is_file():
        raise ValueError(f"model file not found: {path}")
    path = path.resolve()
    digest = _sha256(path)
    module_name = _file_module_name(path, digest)
    module = import_file(path, module_name)  # imported once per process and content
    if name:
        factory = getattr(module, name, None)
        if not callable(factory):
            raise ValueError(f"{path} has no model factory {name!r} (a class or function)")
    else:
        found = [n for n, c in inspect.getmembers(module, inspect.isclass)
                 if c.__module__ == module_name
                 and all(callable(getattr(c, m, None)) for m in ("fit", "predict_proba"))]
        if len(found) != 1:
            raise ValueError(f"{path} defines {len(found)} estimator classes with fit and predict_proba "
                             f"({', '.join(found) or 'none'}): name the factory as FILE.py:Factory")
        name = found[0]
        factory = getattr(module, name)
    return factory, {"ref": ref, "kind": "file", "path": str(path), "factory": name, "module": module_name,
                     "sha256": digest}


def _load_entry_point(ref: str) -> tuple[Callable[..., Any], dict[str, Any]]:
    ep = model_entry_points().get(ref)
    if ep is None:
        raise ValueError(unknown_model_message(ref, BUILTIN_MODELS, model_entry_point_names()))
    try:
        factory = ep.load()
    except Exception as exc:  # noqa: BLE001 - a third party's package: one line, the cause named
        raise ValueError(f"model plug-in {ref!r} ({ENTRY_POINT_GROUP} entry point {ep.value}) failed to load: "
                         f"{type(exc).__name__}: {exc}") from None
    if not callable(factory):
        raise ValueError(f"model plug-in {ref!r} ({ep.value}) is not a class or function")
    dist = getattr(ep, "dist", None)
    return factory, {"ref": ref, "kind": "entry_point", "value": ep.value, "module": ep.module,
                     "distribution": f"{dist.name} {dist.version}" if dist is not None else None}


def load_factory(ref: str) -> tuple[Callable[..., Any], dict[str, Any]]:
    """(factory, source record) of the plug-in ``ref`` (a file reference or an entry-point name),
    loaded once per process (a file: once per process and content of the file).

    Raises:
        ValueError: an unknown name (the valid names listed), a missing file, a file or package
            that fails to import (its first line), no or several estimator classes in a file
            without ``:Factory``, or a factory that is not callable.
    """
    if is_model_file_ref(ref):
        return _load_file(ref)
    if ref not in _LOADED:
        _LOADED[ref] = _load_entry_point(ref)
    return _LOADED[ref]


def _named_parameters(factory: Callable[..., Any]) -> set[str]:
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return set()
    return {n for n, p in sig.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def build_estimator(ref: str, params: dict | None = None, n_jobs: int = 1, random_state: int = 42):
    """A new, unfitted estimator of the plug-in ``ref``: ``factory(**params)``, plus ``random_state``
    / ``n_jobs`` when the factory names them and ``params`` does not.

    Raises:
        ValueError: see :func:`load_factory`; ``bad parameters for model ...`` (the factory's
            TypeError); an estimator without a method of :data:`PROTOCOL` or that
            :func:`sklearn.base.clone` cannot copy.
    """
    from sklearn.base import clone

    factory, _ = load_factory(ref)
    kwargs = dict(params or {})
    named = _named_parameters(factory)
    for key, value in (("random_state", random_state), ("n_jobs", n_jobs)):
        if key in named and key not in kwargs:
            kwargs[key] = value
    try:
        est = factory(**kwargs)
    except TypeError as exc:
        raise ValueError(f"bad parameters for model {ref!r}: {exc}") from exc
    missing = [m for m in PROTOCOL if not callable(getattr(est, m, None))]
    if missing:
        raise ValueError(f"model plug-in {ref!r} built a {type(est).__name__} without {', '.join(missing)}: "
                         "a model must follow the scikit-learn classifier protocol (fit, predict_proba, "
                         "get_params, set_params)")
    try:
        clone(est)
    except Exception as exc:  # noqa: BLE001 - whatever the third party's get_params does
        raise ValueError(f"model plug-in {ref!r}: sklearn.base.clone cannot copy its {type(est).__name__} "
                         f"({type(exc).__name__}: {exc})") from None
    return est


def plugin_defaults(ref: str, params: dict | None = None) -> dict[str, Any]:
    """The hyperparameters a plug-in's estimator is built with: its ``get_params(deep=False)``
    after ``params`` (``random_state`` / ``n_jobs`` left out unless ``params`` sets them, as for
    the built-in models). What a model bundle records as ``params``."""
    est = build_estimator(ref, params)
    given = set(params or {})
    return {k: v for k, v in est.get_params(deep=False).items() if k not in _INJECTED or k in given}


def plugin_record(name: str) -> dict[str, Any]:
    """Where the model ``name`` comes from, as a saved bundle records it: ``{}`` for a built-in;
    for a file ``{ref, kind: "file", path (absolute), factory, module, sha256}``; for an entry
    point ``{ref, kind: "entry_point", value: "pkg.mod:Factory", module, distribution}``."""
    if name in BUILTIN_MODELS:
        return {}
    return dict(load_factory(name)[1])


def prepare_unpickle(record: dict | None, model_path) -> None:
    """Make a file plug-in a saved bundle needs importable before it is unpickled (module docstring).

    Raises:
        ModelError: the plug-in file is missing, changed since training (SHA-256), or fails to import.
    """
    if not record or record.get("kind") != "file":
        return
    path = Path(str(record.get("path")))
    if not path.is_file():
        raise ModelError(f"model {model_path} needs its plug-in file {path} (model {record.get('ref')!r}), which is "
                         "missing; restore it or retrain")
    digest = _sha256(path)
    if digest != record.get("sha256"):
        raise ModelError(f"model {model_path}: its plug-in file {path} changed since the model was trained "
                         f"(SHA-256 {str(record.get('sha256'))[:12]} -> {digest[:12]}); retrain, or restore the file")
    try:
        import_file(path, str(record["module"]))
    except ValueError as exc:
        raise ModelError(f"model {model_path}: {exc}") from None


def missing_module_message(record: dict | None, model_path, exc: ModuleNotFoundError) -> str | None:
    """The line for a bundle that cannot be unpickled because a module is missing, when the module
    is its plug-in's (else None): an entry point's package not installed, or a file plug-in's
    bundle without its ``.json`` record."""
    name = str(exc.name or "")
    if name.startswith(_MODULE_PREFIX):
        return (f"model {model_path} was trained with a model plug-in file, and its metadata {model_path}.json "
                "(which records that file) is missing or unreadable")
    if record and record.get("kind") == "entry_point" and name.split(".")[0] == str(record.get("module")).split(".")[0]:
        return (f"model {model_path} needs the model plug-in {record.get('ref')!r} ({record.get('value')}, from "
                f"{record.get('distribution') or 'its package'}): module {name} is not installed")
    return None
