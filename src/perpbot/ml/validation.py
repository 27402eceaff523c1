"""Walk-forward splits with purging and embargo (out-of-sample evaluation of models).

Rows are bars in time order. Fold ``k`` tests on the window ``[test_start, test_end)``
and trains on rows before it:

* ``expanding=True``: training rows ``[start, test_start)``; ``expanding=False``
  (rolling): ``[max(start, test_start - train_size), test_start)``;
* **purge** (= the label horizon ``h``): the label of row ``i`` looks at bars
  ``i+1 .. i+h``, i.e. its information window is ``[i, i + h]``. A training row whose
  window reaches into the test window (``i + h >= test_start`` and ``i < test_end``)
  is dropped, so no training label has seen a test-window price;
* **embargo**: rows ``[test_end, test_end + embargo)`` right after a test window are
  excluded from that fold's training rows (Lopez de Prado 2018, ch. 7.4.2). In a
  strictly forward walk-forward (all training rows before the test window) this
  removes nothing; it matters only for folds that train on rows after their test
  window (e.g. purged k-fold built with :func:`purged_train_indices`).

The first test window starts at ``start + train_size``; windows follow each other
with step ``test_size``; the last one may be shorter (it ends at ``n``).
Reference: Lopez de Prado, *Advances in Financial Machine Learning* (2018), ch. 7.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Fold", "walk_forward_splits", "purged_train_indices"]


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold: positional row indices (int64) and the test window ``[test_start, test_end)``."""

    train_idx: np.ndarray
    test_idx: np.ndarray
    test_start: int
    test_end: int


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def purged_train_indices(candidates, test_start: int, test_end: int, purge: int, embargo: int = 0) -> np.ndarray:
    """Drop from ``candidates`` the rows that would leak into the test window ``[test_start, test_end)``.

    A row ``i`` is dropped when it is in the test window, when its label window
    ``[i, i + purge]`` overlaps the test window (``test_start - purge <= i < test_end``),
    or when it lies in the embargo ``[test_end, test_end + embargo)``.

    Returns:
        sorted int64 array (a subset of ``candidates``).
    """
    idx = np.asarray(candidates, dtype=np.int64)
    lo = test_start - purge
    hi = test_end + embargo
    return np.sort(idx[(idx < lo) | (idx >= hi)])


def walk_forward_splits(n: int, *, train_size: int, test_size: int, purge: int, embargo: int = 0,
                        expanding: bool = True, start: int = 0) -> list[Fold]:
    """Walk-forward folds over ``n`` rows (see the module docstring for the exact rule).

    Args:
        n: number of rows (bars).
        train_size: rows before the first test window (and the rolling window length
            when ``expanding=False``), counted before purging.
        test_size: rows per test window (the last one may be shorter).
        purge: label horizon in bars (>= 0).
        embargo: bars after each test window excluded from that fold's training (>= 0).
        expanding: expanding (True) or rolling (False) training window.
        start: first row that may be used (e.g. the end of a feature warm-up).

    Returns:
        list of :class:`Fold`, in time order, non-empty.

    Raises:
        ValueError: a size is not a positive integer, ``train_size <= purge`` (every
            training row would be purged) or ``n`` too small for one fold.
    """
    n = _check_int("n", n, 0)
    train_size = _check_int("train_size", train_size, 1)
    test_size = _check_int("test_size", test_size, 1)
    purge = _check_int("purge", purge, 0)
    embargo = _check_int("embargo", embargo, 0)
    start = _check_int("start", start, 0)
    if train_size <= purge:
        raise ValueError(f"train_size ({train_size}) must exceed purge ({purge}): every training row would be purged")
    first = start + train_size
    if first >= n:
        raise ValueError(f"not enough rows for one walk-forward fold: n={n} but start + train_size = {first}")
    folds: list[Fold] = []
    for test_start in range(first, n, test_size):
        test_end = min(test_start + test_size, n)
        lo = start if expanding else max(start, test_start - train_size)
        train = purged_train_indices(np.arange(lo, test_start, dtype=np.int64), test_start, test_end, purge, embargo)
        folds.append(Fold(train_idx=train, test_idx=np.arange(test_start, test_end, dtype=np.int64),
                          test_start=test_start, test_end=test_end))
    return folds
