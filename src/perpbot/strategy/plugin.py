"""Rule strategies as plug-ins: write a class in your own file, use it everywhere by its path.

The interface (the cookbook, ``docs/COOKBOOK.md``, writes one in 30 lines)::

    class MyRule(RuleStrategy):
        name = "my-rule"
        parameters = {"period": Param(20, 5, 100)}        # default, low, high (int when all are int)

        def signals(self, candles):                        # DataFrame: timestamp, open, high, low, close, volume
            ...                                            # -> int8 array (n,): +1 buy, -1 sell, 0 hold

Contract: ``signals`` is causal (the value at bar ``t`` may only use candles ``<= t``: the signal
is acted on at the next bar's open, in the backtest, the paper replay and live); parameters are
read as attributes (``self.period``) and stay inside their ranges (ValueError otherwise), which
is what the optimiser searches (:func:`perpbot.strategy.sweep.optimize_rule`).

A strategy is named by a reference wherever a strategy name goes (``--strategy``, the backtest,
paper replay, live): ``path/to/file.py`` (the file's one RuleStrategy subclass) or
``path/to/file.py:ClassName``. Stops, take-profits and sizes are the account's settings, as for
the built-in rules.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from perpbot.ml.model_plugins import import_file


@dataclass(frozen=True)
class Param:
    """One parameter: ``default`` and the inclusive range ``low .. high`` (integers when all three are)."""

    default: float
    low: float
    high: float

    @property
    def is_int(self) -> bool:
        return all(isinstance(v, int) and not isinstance(v, bool) for v in (self.default, self.low, self.high))


class RuleStrategy:
    """Base class of rule strategies (see the module docstring). Raises ValueError for an unknown
    parameter or a value outside its range."""

    name: str = "rule"
    parameters: dict[str, Param] = {}

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.parameters))
        if unknown:
            raise ValueError(f"{self.name}: unknown parameter(s) {', '.join(unknown)}; "
                             f"known: {', '.join(self.parameters) or 'none'}")
        for key, spec in self.parameters.items():
            value = params.get(key, spec.default)
            if not spec.low <= value <= spec.high:
                raise ValueError(f"{self.name}: {key} = {value} is outside {spec.low} .. {spec.high}")
            setattr(self, key, int(value) if spec.is_int else float(value))

    @property
    def values(self) -> dict[str, float]:
        """The parameter values in use."""
        return {k: getattr(self, k) for k in self.parameters}

    def signals(self, candles: pd.DataFrame) -> np.ndarray:  # pragma: no cover - the interface
        raise NotImplementedError

    def __call__(self, candles: pd.DataFrame) -> np.ndarray:
        """:meth:`signals` checked: int8, one per candle, values in {-1, 0, 1}."""
        out = np.asarray(self.signals(candles))
        if out.shape != (len(candles),):
            raise ValueError(f"{self.name}.signals returned shape {out.shape}, expected ({len(candles)},)")
        sig = np.nan_to_num(out.astype(np.float64)).astype(np.int8)
        if not np.isin(sig, (-1, 0, 1)).all():
            raise ValueError(f"{self.name}.signals must return -1, 0 or +1")
        return sig


def is_plugin_ref(name: str) -> bool:
    """True when ``name`` names a strategy file (``*.py`` or ``*.py:ClassName``)."""
    return name.endswith(".py") or ".py:" in name


_CLASSES: dict[str, type[RuleStrategy]] = {}


def strategy_class(ref: str) -> type[RuleStrategy]:
    """The :class:`RuleStrategy` subclass that ``ref`` names (loaded once per process).

    Raises ValueError: missing file, a file that fails to import (the error's first line), no or
    several RuleStrategy subclasses without ``:ClassName``, or an unknown class name.
    """
    if ref in _CLASSES:
        return _CLASSES[ref]
    path_text, _, cls_name = ref.partition(".py:")
    path = Path(path_text if not cls_name else path_text + ".py").expanduser()
    if not path.is_file():
        raise ValueError(f"strategy file not found: {path}")
    module_name = f"perpbot_plugin_{abs(hash(str(path.resolve())))}"
    module = import_file(path, module_name, "strategy")
    found = {n: c for n, c in inspect.getmembers(module, inspect.isclass)
             if issubclass(c, RuleStrategy) and c is not RuleStrategy and c.__module__ == module_name}
    if cls_name:
        if cls_name not in found:
            raise ValueError(f"{path} has no RuleStrategy subclass {cls_name!r} (has: {', '.join(found) or 'none'})")
        cls = found[cls_name]
    elif len(found) != 1:
        raise ValueError(f"{path} defines {len(found)} RuleStrategy subclasses ({', '.join(found) or 'none'}): "
                         "name one as FILE.py:ClassName")
    else:
        cls = next(iter(found.values()))
    _CLASSES[ref] = cls
    return cls


def load_strategy(ref: str, **params: Any) -> RuleStrategy:
    """An instance of the strategy ``ref`` names, with ``params`` (defaults otherwise)."""
    return strategy_class(ref)(**params)
