"""The torch side of :class:`perpbot.ml.lstm.LSTMClassifier`: network, training loop, inference.

Imported only when an LSTM is fitted or used (it imports torch at module level); everything
here works on float32 arrays already standardised by the estimator. All computation runs on
the CPU under :func:`deterministic`, so a fit with the same data, seed and thread count gives
bit-identical weights and probabilities on the same machine.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

__all__ = ["LSTMNet", "INFER_BATCH", "deterministic", "windows", "logits", "softmax", "log_loss", "train", "build"]

#: Rows per inference batch. Every batch is padded to exactly this many sequences, so the
#: float32 kernels see the same shapes whatever the length of X: the probability of a row
#: does not depend on which or how many other rows are predicted with it (measured: a
#: 1-row batch and a 5000-row batch differ by ~3e-8 without padding).
INFER_BATCH = 512


class LSTMNet(nn.Module):
    """``nn.LSTM`` (batch first) over a (batch, seq_len, n_features) float32 tensor; a linear
    head on the last step's hidden state gives (batch, n_classes) logits."""

    def __init__(self, n_features: int, hidden_size: int, num_layers: int, dropout: float, n_classes: int):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden_size, num_layers=num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.head = nn.Linear(hidden_size, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


@contextmanager
def deterministic(n_threads: int) -> Iterator[None]:
    """Run the block with ``n_threads`` intra-op threads and deterministic algorithms, then
    restore the previous process-wide settings (other torch users in the process keep theirs)."""
    prev_threads, prev_det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(int(n_threads))
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev_det)
        torch.set_num_threads(prev_threads)


def windows(Z: np.ndarray, ends: np.ndarray, seq_len: int) -> torch.Tensor:
    """(len(ends), seq_len, k) float32 tensor; sequence i holds rows ``ends[i]-seq_len+1 .. ends[i]`` of Z."""
    idx = ends[:, None] + np.arange(1 - seq_len, 1)[None, :]
    return torch.from_numpy(np.ascontiguousarray(Z[idx]))


def logits(net: LSTMNet, Z: np.ndarray, ends: np.ndarray, seq_len: int) -> np.ndarray:
    """float64 (len(ends), n_classes) logits of the sequences ending at ``ends`` (eval mode,
    no gradient, batches padded to :data:`INFER_BATCH`)."""
    net.eval()
    out = np.empty((ends.shape[0], net.head.out_features), dtype=np.float64)
    with torch.no_grad():
        for lo in range(0, ends.shape[0], INFER_BATCH):
            chunk = ends[lo:lo + INFER_BATCH]
            m = chunk.shape[0]
            if m < INFER_BATCH:  # pad with copies of the first sequence: same shapes every call
                chunk = np.concatenate([chunk, np.full(INFER_BATCH - m, chunk[0], dtype=chunk.dtype)])
            out[lo:lo + m] = net(windows(Z, chunk, seq_len))[:m].numpy().astype(np.float64)
    return out


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of float64 (n, c) logits (max-shifted)."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def log_loss(z: np.ndarray, codes: np.ndarray) -> float:
    """Mean negative log-likelihood (nats) of class codes under softmax(z), float64."""
    zs = z - z.max(axis=1, keepdims=True)
    lp = zs - np.log(np.exp(zs).sum(axis=1, keepdims=True))
    return float(-lp[np.arange(codes.shape[0]), codes].mean())


def train(Z: np.ndarray, codes: np.ndarray, train_ends: np.ndarray, val_ends: np.ndarray, *, n_classes: int,
          class_weights: np.ndarray, seq_len: int, hidden_size: int, num_layers: int, dropout: float,
          learning_rate: float, weight_decay: float, batch_size: int, max_epochs: int, patience: int,
          samples_per_epoch: int | None, random_state: int) -> tuple[dict[str, np.ndarray], list[dict], int]:
    """Fit an :class:`LSTMNet` with Adam on class-weighted cross-entropy; early stopping on the
    validation sequences.

    Each epoch visits a seeded random permutation of ``train_ends`` (at most
    ``samples_per_epoch`` of them) in mini-batches of ``batch_size``; gradients are clipped to
    norm 1. After each epoch the validation loss is the mean log loss (nats) of the validation
    labels under the prior-corrected probabilities (logits - log class weight, see
    :mod:`perpbot.ml.lstm`), i.e. the figure the walk-forward scores. Training stops after
    ``patience`` epochs without a strictly lower validation loss (or at ``max_epochs``), and the
    weights of the best epoch are returned.

    Args:
        Z: float32 (n, k) standardised features (rows that are not finite are never inside
            a sequence listed in ``train_ends`` / ``val_ends``).
        codes: int64 (n,) class codes 0..n_classes-1 (only read at the listed ends).
        train_ends, val_ends: int64 row indices at which a training / validation sequence ends.
        class_weights: float64 (n_classes,) cross-entropy weights.

    Returns:
        (state, history, best_epoch): the best epoch's ``state_dict`` as float32 numpy arrays,
        one ``{"epoch", "train_loss", "val_loss"}`` dict per epoch run (1-based epochs;
        train_loss = mean weighted cross-entropy of the epoch's batches) and the best epoch.
    """
    rng = np.random.default_rng(random_state)
    offset = -np.log(class_weights)
    val_codes = codes[val_ends]
    history: list[dict] = []
    best_loss, best_epoch, best_state = math.inf, 0, None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(random_state)
        net = LSTMNet(Z.shape[1], hidden_size, num_layers, dropout, n_classes)
        opt = torch.optim.Adam(net.parameters(), lr=learning_rate, weight_decay=weight_decay)
        weight = torch.from_numpy(class_weights.astype(np.float32))
        for epoch in range(1, max_epochs + 1):
            net.train()
            order = rng.permutation(train_ends)
            if samples_per_epoch is not None:
                order = order[:samples_per_epoch]
            total = 0.0
            for lo in range(0, order.shape[0], batch_size):
                batch = order[lo:lo + batch_size]
                opt.zero_grad()
                loss = nn.functional.cross_entropy(net(windows(Z, batch, seq_len)),
                                                   torch.from_numpy(codes[batch]), weight=weight)
                loss.backward()
                nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                opt.step()
                total += loss.item() * batch.shape[0]
            val_loss = log_loss(logits(net, Z, val_ends, seq_len) + offset, val_codes)
            history.append({"epoch": epoch, "train_loss": total / order.shape[0], "val_loss": val_loss})
            if val_loss < best_loss:
                best_loss, best_epoch = val_loss, epoch
                best_state = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
            elif epoch - best_epoch >= patience:
                break
    if best_state is None:  # validation loss was never finite (diverged from the first epoch)
        raise ValueError("LSTM training diverged: the validation loss was not finite in any epoch")
    return best_state, history, best_epoch


def build(state: dict[str, np.ndarray], n_features: int, hidden_size: int, num_layers: int, dropout: float,
          n_classes: int) -> LSTMNet:
    """An :class:`LSTMNet` with the weights of ``state`` (as returned by :func:`train`), in eval mode."""
    with torch.random.fork_rng(devices=[]):  # the throw-away initial weights leave the global RNG alone
        net = LSTMNet(n_features, hidden_size, num_layers, dropout, n_classes)
    net.load_state_dict({k: torch.from_numpy(np.array(v, copy=True)) for k, v in state.items()})
    return net.eval()
