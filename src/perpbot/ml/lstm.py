"""LSTM sequence classifier (PyTorch, CPU) with the scikit-learn interface of the other models.

``make_model("lstm")`` wraps :class:`LSTMClassifier` like every other estimator
(``Pipeline([StandardScaler, ThreeClassClassifier(LSTMClassifier(...))])``), so walk-forward
training, bundles, save and load work unchanged. Needs the optional extra
``pip install 'perpbot[deep]'`` (torch); this module imports without torch, and fitting or
predicting without it raises :class:`MissingExtraError` with one line saying so.

**Rows are consecutive bars.** The rows of ``X`` passed to ``fit`` and ``predict_proba`` are
taken as consecutive bars in time order. The probability at row ``t`` is computed from the
sequence of rows ``t-seq_len+1 .. t`` only (causal); a row without ``seq_len - 1`` earlier
rows in the same ``X``, or whose sequence holds a non-finite value, gets NaN probabilities,
the same "no prediction" that the pipeline gives rows whose features are still warming up
(no signal; left out of the metrics). So in a walk-forward the first ``seq_len - 1`` bars of
each test window get NaN, and a caller that predicts one bar must pass the bar with its
``seq_len - 1`` predecessors.

**Training** (``fit``): the last ``val_fraction`` of the rows is an inner validation slice;
the training sequences end at least ``purge`` rows (the label horizon) before it, so no
training label has seen a validation-slice price. Features are standardised with the mean and
standard deviation of the inner training rows only, then clipped to +-``clip``. A small LSTM
is fitted with Adam on cross-entropy weighted by inverse class frequency
(``class_weight="balanced"``: w_c = n / (n_classes * n_c) over the training sequences), with
early stopping on the validation slice's log loss (the weights of the best epoch are kept).

**Probabilities.** Minimising w_y-weighted cross-entropy makes the network estimate
q(c|x) proportional to w_c p(c|x); ``predict_proba`` undoes the weighting,
p(c|x) = (q(c|x) / w_c) / sum_j q(j|x) / w_j (the prior-shift correction of Saerens,
Latinne & Decaestecker, *Neural Computation* 14, 2002), so the probabilities are on the
scale of the real class frequencies, like the other models' (the early-stopping loss is
computed on these corrected probabilities).

**Reproducibility.** Torch's RNG is seeded with ``random_state`` (inside a forked RNG state,
so the process's global RNG is untouched), mini-batch order comes from a NumPy generator with
the same seed, and fitting and prediction run with ``n_threads`` threads and
``torch.use_deterministic_algorithms(True)``: two fits with the same data, parameters and
thread count give bit-identical probabilities on the same machine.

**Persistence.** The fitted weights are kept as float32 NumPy arrays (the network's
``state_dict``) next to the constructor parameters; pickling (joblib) stores only those, and
the network is rebuilt on first use after loading, giving identical probabilities without
re-training. A pickled model loads without torch; predicting then needs it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

__all__ = ["DEEP_EXTRA_MESSAGE", "MissingExtraError", "LSTMClassifier", "require_torch", "sequence_ends"]

DEEP_EXTRA_MESSAGE = 'torch is not installed (needed for the lstm model): pip install "perpbot[deep]"'


class MissingExtraError(ImportError, ValueError):
    """torch (the ``deep`` extra) is not installed. A ValueError too, so the command line
    prints its one-line message (exit code 1) instead of a traceback."""


def require_torch():
    """Import and return ``torch``.

    Raises:
        MissingExtraError: torch cannot be imported (message: :data:`DEEP_EXTRA_MESSAGE`).
    """
    try:
        import torch
    except ImportError:
        raise MissingExtraError(DEEP_EXTRA_MESSAGE) from None
    return torch


def sequence_ends(finite_rows: np.ndarray, seq_len: int, lo: int = 0, hi: int | None = None) -> np.ndarray:
    """Rows ``t`` in ``[lo, hi)`` whose sequence ``t-seq_len+1 .. t`` lies inside the array and
    has only finite rows, as sorted int64 indices.

    Args:
        finite_rows: bool (n,), True where the row's features are all finite.
        seq_len: sequence length (>= 1).
        lo, hi: half-open range of candidate end rows (``hi=None``: n).
    """
    n = finite_rows.shape[0]
    hi = n if hi is None else min(hi, n)
    lo = max(lo, seq_len - 1)
    if hi <= lo:
        return np.empty(0, dtype=np.int64)
    bad = np.concatenate([[0], np.cumsum(~finite_rows, dtype=np.int64)])
    t = np.arange(lo, hi, dtype=np.int64)
    return t[bad[t + 1] - bad[t + 1 - seq_len] == 0]


def _check_params(p: dict[str, Any]) -> None:
    ints = {"seq_len": 1, "hidden_size": 1, "num_layers": 1, "batch_size": 1, "max_epochs": 1, "patience": 1,
            "purge": 0, "n_threads": 1}
    for name, low in ints.items():
        v = p[name]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            raise ValueError(f"LSTM parameter {name} must be an integer >= {low}, got {v!r}")
    spe = p["samples_per_epoch"]
    if spe is not None and (isinstance(spe, bool) or not isinstance(spe, (int, np.integer)) or spe < 1):
        raise ValueError(f"LSTM parameter samples_per_epoch must be None or an integer >= 1, got {spe!r}")
    if not 0.0 < float(p["val_fraction"]) < 1.0:
        raise ValueError(f"LSTM parameter val_fraction must be in (0, 1), got {p['val_fraction']!r}")
    for name in ("learning_rate", "clip"):
        if not float(p[name]) > 0:
            raise ValueError(f"LSTM parameter {name} must be > 0, got {p[name]!r}")
    for name in ("weight_decay", "dropout"):
        if not 0.0 <= float(p[name]) < (1.0 if name == "dropout" else np.inf):
            raise ValueError(f"LSTM parameter {name} out of range, got {p[name]!r}")
    if p["class_weight"] not in ("balanced", None):
        raise ValueError(f"LSTM parameter class_weight must be 'balanced' or None, got {p['class_weight']!r}")


class LSTMClassifier(ClassifierMixin, BaseEstimator):
    """Sequence classifier: an LSTM over the last ``seq_len`` rows (see the module docstring).

    Args:
        seq_len: bars per sequence (the row itself and ``seq_len - 1`` before it).
        hidden_size, num_layers: LSTM size; ``dropout`` between layers (used when num_layers > 1).
        learning_rate, weight_decay: Adam settings.
        batch_size: training sequences per mini-batch.
        max_epochs, patience: at most ``max_epochs`` epochs; stop after ``patience`` epochs
            without a lower validation loss.
        samples_per_epoch: training sequences drawn (without replacement, seeded) per epoch;
            ``None`` = all. Caps the cost of an epoch on long training windows.
        val_fraction: share of the rows (the last ones) forming the inner validation slice.
        purge: rows between the last training sequence end and the validation slice: set it
            to the label horizon in bars (labels of row i look at bars i+1 .. i+purge).
        clip: standardised features are clipped to [-clip, clip].
        class_weight: "balanced" (inverse class frequency) or None (unweighted).
        n_threads: torch threads for fitting and prediction (results are reproducible for a
            given thread count).
        random_state: seed.

    Fitted attributes: ``classes_``, ``n_features_in_``, ``mean_``/``scale_`` (float64 (k,)),
    ``class_weights_`` (float64 (n_classes,)), ``state_`` (dict of float32 arrays),
    ``history_`` (per epoch: epoch, train_loss, val_loss), ``best_epoch_``, ``n_epochs_``,
    ``train_end_`` (training sequences end before this row), ``val_start_`` (first row of the
    validation slice), ``n_train_sequences_``, ``n_val_sequences_``, ``torch_version_``.
    """

    def __init__(self, seq_len: int = 16, hidden_size: int = 32, num_layers: int = 1, dropout: float = 0.0,
                 learning_rate: float = 1e-3, weight_decay: float = 0.0, batch_size: int = 256,
                 max_epochs: int = 30, patience: int = 3, samples_per_epoch: int | None = 16384,
                 val_fraction: float = 0.15, purge: int = 48, clip: float = 5.0,
                 class_weight: str | None = "balanced", n_threads: int = 1, random_state: int = 42):
        self.seq_len = seq_len
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.samples_per_epoch = samples_per_epoch
        self.val_fraction = val_fraction
        self.purge = purge
        self.clip = clip
        self.class_weight = class_weight
        self.n_threads = n_threads
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    def fit(self, X, y) -> LSTMClassifier:
        """Fit on ``X`` float (n, k), rows consecutive bars in time order, and labels ``y`` (n,).

        Raises:
            MissingExtraError: torch is not installed.
            ValueError: bad shapes, NaN labels, bad parameters, or too few rows for one
                training and one validation sequence (message gives the counts).
        """
        torch = require_torch()
        from perpbot.ml import lstm_net

        _check_params(self.get_params())
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y)
        if X.ndim != 2 or y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(f"X must be (n, k) and y (n,), got {X.shape} and {y.shape}")
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise ValueError("y contains NaN")
        self.classes_, codes = np.unique(y, return_inverse=True)
        codes = codes.astype(np.int64)
        n, L = X.shape[0], int(self.seq_len)
        self.n_features_in_ = X.shape[1]
        finite = np.isfinite(X).all(axis=1)
        self.val_start_ = n - max(1, int(round(float(self.val_fraction) * n)))
        self.train_end_ = self.val_start_ - int(self.purge)
        train_ends = sequence_ends(finite, L, 0, self.train_end_)
        val_ends = sequence_ends(finite, L, self.val_start_, n)
        if train_ends.size == 0 or val_ends.size == 0:
            raise ValueError(f"too few rows for the LSTM: {n} rows give {train_ends.size} training and "
                             f"{val_ends.size} validation sequences of {L} bars (val_fraction {self.val_fraction}, "
                             f"purge {self.purge})")
        fit_rows = X[: self.train_end_][finite[: self.train_end_]]
        self.mean_ = fit_rows.mean(axis=0)
        scale = fit_rows.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        k = self.classes_.shape[0]
        counts = np.bincount(codes[train_ends], minlength=k).astype(np.float64)
        if self.class_weight == "balanced":
            # a class absent from the training sequences keeps weight 1 (it is never a target)
            self.class_weights_ = np.where(counts > 0, train_ends.size / (k * np.maximum(counts, 1)), 1.0)
        else:
            self.class_weights_ = np.ones(k)
        self.torch_version_ = str(torch.__version__)  # a plain str: the pickle must not need torch
        with lstm_net.deterministic(self.n_threads):
            state, history, best = lstm_net.train(
                self._standardise(X), codes, train_ends, val_ends, n_classes=k, class_weights=self.class_weights_,
                seq_len=L, hidden_size=self.hidden_size, num_layers=self.num_layers, dropout=float(self.dropout),
                learning_rate=float(self.learning_rate), weight_decay=float(self.weight_decay),
                batch_size=self.batch_size, max_epochs=self.max_epochs, patience=self.patience,
                samples_per_epoch=self.samples_per_epoch, random_state=int(self.random_state))
        self.state_, self.history_, self.best_epoch_ = state, history, best
        self.n_epochs_ = len(history)
        self.n_train_sequences_, self.n_val_sequences_ = int(train_ends.size), int(val_ends.size)
        self.__dict__.pop("_net", None)
        return self

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        """float32 (n, k): (X - mean_) / scale_ clipped to +-clip; non-finite values become 0
        (rows holding one are never inside a sequence that is scored)."""
        Z = np.clip((X - self.mean_) / self.scale_, -self.clip, self.clip)
        return np.where(np.isfinite(Z), Z, 0.0).astype(np.float32)

    # ------------------------------------------------------------------ predict
    def _network(self):
        net = self.__dict__.get("_net")
        if net is None:
            require_torch()
            from perpbot.ml import lstm_net

            net = lstm_net.build(self.state_, self.n_features_in_, self.hidden_size, self.num_layers,
                                 float(self.dropout), self.classes_.shape[0])
            self._net = net
        return net

    def predict_proba(self, X) -> np.ndarray:
        """float64 (n, n_classes) probabilities in the order of ``classes_``; NaN rows where the
        row has fewer than ``seq_len - 1`` predecessors in X or its sequence is not all finite.

        Raises:
            MissingExtraError: torch is not installed.
            ValueError: not fitted, or X is not (n, n_features_in_).
        """
        if not hasattr(self, "state_"):
            raise ValueError("this LSTMClassifier is not fitted yet; call fit first")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X must have shape (n, {self.n_features_in_}), got {X.shape}")
        net = self._network()
        from perpbot.ml import lstm_net

        out = np.full((X.shape[0], self.classes_.shape[0]), np.nan)
        ends = sequence_ends(np.isfinite(X).all(axis=1), int(self.seq_len))
        if ends.size:
            with lstm_net.deterministic(self.n_threads):
                z = lstm_net.logits(net, self._standardise(X), ends, int(self.seq_len))
            out[ends] = lstm_net.softmax(z - np.log(self.class_weights_))
        return out

    def predict(self, X) -> np.ndarray:
        """Most probable class per row (rows without a prediction get ``classes_[0]``; use
        :meth:`predict_proba` to see them)."""
        p = self.predict_proba(X)
        return self.classes_[np.argmax(np.where(np.isfinite(p), p, -1.0), axis=1)]

    # ------------------------------------------------------------------ pickling
    def __getstate__(self):
        state = super().__getstate__()
        state = dict(state)
        state.pop("_net", None)  # the torch module is rebuilt from state_ on first use
        return state
