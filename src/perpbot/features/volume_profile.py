"""A light volume profile from candle closes and volumes — pure function, no state.

Definitions (all prices in quote currency, USDT for linear perpetuals; volume in base asset):

- **Buckets**: ``n_buckets`` equal-width price buckets spanning [min close, max close]; edges
  ``numpy.linspace(min, max, n_buckets + 1)``. A close ``c`` falls in bucket *i* when
  ``edges[i] <= c < edges[i + 1]``; the maximum close falls in the last bucket (the same
  convention as ``numpy.histogram``). Each candle puts its whole volume in the bucket of its
  close ("bucketed closes × volume"; no spreading of a candle's volume over its range).
- **POC** (point of control): the bucket holding the most volume; its price is the bucket's
  midpoint. On a tie the lowest-priced bucket wins.
- **Value area**: the price range around the POC holding ``value_area`` (default 70 %) of the
  volume, grown the standard (CBOT Market Profile) way: start from the POC bucket; compare
  the combined volume of the next two buckets above the area with the next two below; add the
  larger pair (the pair above on a tie; a single bucket when only one is left on a side; only
  the other side once one side reaches the edge); stop as soon as the area holds at least
  ``value_area`` of the total. VAL / VAH are the lower edge of its lowest bucket and the upper
  edge of its highest bucket. **Value-area range %** = (VAH − VAL) / POC price × 100.
- **HVN** (high-volume node): a peak of the profile — a bucket with more volume than the
  bucket below it, at least as much as the bucket above it (the outside counts as zero), and
  at least ``hvn_mult`` × the mean bucket volume. Listed by volume, largest first.
- **LVN** (low-volume node): a trough inside the profile — a bucket that is neither the first
  nor the last, with less volume than the bucket below it, no more than the bucket above it,
  and at most ``lvn_mult`` × the mean bucket volume. Listed by volume, smallest first.
  (The strict/non-strict pair of comparisons marks one bucket per flat top or flat bottom.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["VolumeProfile", "volume_profile"]


@dataclass(frozen=True, eq=False)
class VolumeProfile:
    """Result of :func:`volume_profile`. Arrays: ``edges`` float64 (n+1,), ``volume`` float64 (n,)."""

    edges: np.ndarray
    volume: np.ndarray
    poc_index: int
    va_low_index: int
    va_high_index: int
    hvn_indices: tuple[int, ...]
    lvn_indices: tuple[int, ...]
    value_area: float

    @property
    def n_buckets(self) -> int:
        return len(self.volume)

    @property
    def bucket_width(self) -> float:
        """Price width of one bucket (quote currency)."""
        return float(self.edges[1] - self.edges[0])

    @property
    def total_volume(self) -> float:
        return float(self.volume.sum())

    def price(self, index: int) -> float:
        """Midpoint price of bucket ``index``."""
        return float((self.edges[index] + self.edges[index + 1]) / 2.0)

    @property
    def poc(self) -> float:
        return self.price(self.poc_index)

    @property
    def value_area_low(self) -> float:
        return float(self.edges[self.va_low_index])

    @property
    def value_area_high(self) -> float:
        return float(self.edges[self.va_high_index + 1])

    @property
    def value_area_range_pct(self) -> float:
        """(VAH − VAL) / POC price, in percent."""
        return (self.value_area_high - self.value_area_low) / self.poc * 100.0

    @property
    def value_area_volume_share(self) -> float:
        """Fraction of the total volume inside the value area (>= ``value_area``)."""
        return float(self.volume[self.va_low_index:self.va_high_index + 1].sum() / self.volume.sum())

    @property
    def hvn(self) -> tuple[float, ...]:
        return tuple(self.price(i) for i in self.hvn_indices)

    @property
    def lvn(self) -> tuple[float, ...]:
        return tuple(self.price(i) for i in self.lvn_indices)

    def to_dict(self) -> dict:
        """JSON-safe summary: prices in quote currency, ``value_area_range_pct`` in percent."""
        return {"poc": self.poc, "value_area_low": self.value_area_low, "value_area_high": self.value_area_high,
                "value_area_range_pct": self.value_area_range_pct, "hvn": list(self.hvn), "lvn": list(self.lvn),
                "bucket_width": self.bucket_width, "n_buckets": self.n_buckets, "total_volume": self.total_volume,
                "value_area": self.value_area}


def _grow_value_area(vol: np.ndarray, poc: int, share: float) -> tuple[int, int]:
    n = len(vol)
    total = float(vol.sum())
    target = share * total
    lo = hi = poc
    acc = float(vol[poc])
    eps = 1e-12 * total
    while acc + eps < target and (lo > 0 or hi < n - 1):
        up = float(vol[hi + 1:hi + 3].sum()) if hi < n - 1 else None
        down = float(vol[max(lo - 2, 0):lo].sum()) if lo > 0 else None
        if down is None or (up is not None and up >= down):
            hi = min(hi + 2, n - 1)
            acc += up
        else:
            lo = max(lo - 2, 0)
            acc += down
    return lo, hi


def volume_profile(close, volume, n_buckets: int = 24, value_area: float = 0.70,
                   hvn_mult: float = 1.5, lvn_mult: float = 0.5) -> VolumeProfile:
    """Volume profile of candles (module docstring for every definition).

    Args:
        close: closes, shape (n,), > 0, quote currency.
        volume: volumes, shape (n,), >= 0, base asset; their sum must be > 0.
        n_buckets: number of equal-width price buckets (>= 1). When every close is equal the
            profile has one bucket of zero width.
        value_area: fraction of the volume the value area holds, in (0, 1].
        hvn_mult, lvn_mult: HVN / LVN thresholds as multiples of the mean bucket volume.

    Raises:
        ValueError: empty or mismatched inputs, NaN/inf, a close <= 0, a negative volume, zero
            total volume, or a parameter out of range.
    """
    c = np.asarray(close, dtype=np.float64)
    v = np.asarray(volume, dtype=np.float64)
    if c.ndim != 1 or v.ndim != 1 or len(c) != len(v):
        raise ValueError(f"close and volume must be 1-D of equal length, got shapes {c.shape} and {v.shape}")
    if len(c) == 0:
        raise ValueError("volume profile of no candles")
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(v))):
        raise ValueError("close or volume contains NaN or infinite values")
    if np.any(c <= 0):
        raise ValueError("closes must be > 0")
    if np.any(v < 0):
        raise ValueError("volumes must be >= 0")
    if int(n_buckets) != n_buckets or n_buckets < 1:
        raise ValueError(f"n_buckets must be a positive integer, got {n_buckets!r}")
    if not 0 < value_area <= 1:
        raise ValueError(f"value_area must be a fraction in (0, 1], got {value_area!r}")
    if hvn_mult < 0 or lvn_mult < 0:
        raise ValueError("hvn_mult and lvn_mult must be >= 0")
    total = float(v.sum())
    if total <= 0:
        raise ValueError("volume profile needs a positive total volume")
    lo, hi = float(c.min()), float(c.max())
    n = int(n_buckets) if hi > lo else 1
    edges = np.linspace(lo, hi, n + 1)
    idx = np.clip(np.searchsorted(edges, c, side="right") - 1, 0, n - 1)
    vol = np.bincount(idx, weights=v, minlength=n).astype(np.float64)
    poc = int(np.argmax(vol))
    va_lo, va_hi = _grow_value_area(vol, poc, value_area)
    mean = total / n
    below = np.concatenate(([0.0], vol[:-1]))
    above = np.concatenate((vol[1:], [0.0]))
    hvn = np.flatnonzero((vol > below) & (vol >= above) & (vol >= hvn_mult * mean))
    interior = np.zeros(n, dtype=bool)
    interior[1:-1] = True
    lvn = np.flatnonzero(interior & (vol < below) & (vol <= above) & (vol <= lvn_mult * mean))
    hvn_sorted = tuple(int(i) for i in sorted(hvn, key=lambda i: (-vol[i], i)))
    lvn_sorted = tuple(int(i) for i in sorted(lvn, key=lambda i: (vol[i], i)))
    return VolumeProfile(edges=edges, volume=vol, poc_index=poc, va_low_index=va_lo, va_high_index=va_hi,
                         hvn_indices=hvn_sorted, lvn_indices=lvn_sorted, value_area=float(value_area))
