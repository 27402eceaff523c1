"""Feature groups selectable by name, and the one function that builds a model's columns.

| group | columns | inputs beyond the candles | built from a trailing window alone |
|---|---|---|---|
| ``candles`` | :func:`perpbot.features.build.feature_names` (TA-Lib set; + funding_last/mean3 with funding) | funding (optional) | yes |
| ``htf`` | :func:`perpbot.features.htf.htf_names` (closed 15m / 1h / 4h bars) | — | yes |
| ``cross_asset`` | :func:`perpbot.features.cross_asset.cross_asset_names` (BTC, ETH) | BTC and ETH candles | no: the live loop has no BTC/ETH feed |
| ``funding_basis`` | :data:`perpbot.features.funding_basis.FUNDING_BASIS_NAMES` | funding events, mark-price candles | paper (from files) only |
| ``regime`` | :data:`perpbot.features.regime.REGIME_NAMES` (volatility regime) | — | yes |

Columns come in :data:`GROUP_NAMES` order whatever order the groups were given in, so a set
of groups has one column order and one hash. ``("candles",)`` is today's feature set with
today's hash (models trained before groups existed load unchanged).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from perpbot.data.validate import DataError

__all__ = ["DEFAULT_GROUPS", "GROUP_NAMES", "GROUP_INPUTS", "FeatureInputs", "check_loop_inputs", "compute_groups",
           "group_of", "group_feature_names", "groups_hash", "inputs_digest", "load_inputs", "missing_inputs",
           "normalize_groups", "window_bars"]

GROUP_NAMES = ("candles", "htf", "cross_asset", "funding_basis", "regime")
DEFAULT_GROUPS = ("candles",)
#: Bump when a non-default group's definition changes (changes the hash of every model using it).
GROUPS_VERSION = "1"
#: Inputs each group needs beyond the candles ("funding" for ``candles`` is optional).
GROUP_INPUTS = {"candles": (), "htf": (), "cross_asset": ("btc", "eth"), "funding_basis": ("funding", "mark"),
                "regime": ()}


@dataclass
class FeatureInputs:
    """Series beside the traded candles: funding events, mark-price candles, BTC / ETH candles
    (validated frames, see :mod:`perpbot.data.loader`; None = not available)."""

    funding: pd.DataFrame | None = None
    mark: pd.DataFrame | None = None
    series: dict = field(default_factory=dict)  # "btc" / "eth" -> candles


def normalize_groups(groups: Iterable[str] | str | None) -> tuple[str, ...]:
    """Groups as a tuple in :data:`GROUP_NAMES` order, without repeats ("a,b" strings accepted).

    Raises ValueError for an unknown or empty selection.
    """
    if groups is None:
        return DEFAULT_GROUPS
    if isinstance(groups, str):
        groups = [g for g in groups.split(",")]
    wanted = [str(g).strip() for g in groups if str(g).strip()]
    bad = [g for g in wanted if g not in GROUP_NAMES]
    if bad:
        raise ValueError(f"unknown feature group {bad[0]!r}; choose from {', '.join(GROUP_NAMES)}")
    if not wanted:
        raise ValueError(f"no feature group selected; choose from {', '.join(GROUP_NAMES)}")
    return tuple(g for g in GROUP_NAMES if g in wanted)


def group_feature_names(groups, timeframe: str, with_funding: bool = True) -> list[str]:
    """Column names of :func:`compute_groups` for these groups and candle timeframe, in order."""
    from perpbot.features.build import feature_names
    from perpbot.features.cross_asset import cross_asset_names
    from perpbot.features.funding_basis import FUNDING_BASIS_NAMES
    from perpbot.features.htf import htf_names
    from perpbot.features.regime import REGIME_NAMES

    parts = {"candles": lambda: feature_names(with_funding=with_funding), "htf": lambda: htf_names(timeframe),
             "cross_asset": cross_asset_names, "funding_basis": lambda: list(FUNDING_BASIS_NAMES),
             "regime": lambda: list(REGIME_NAMES)}
    return [name for g in normalize_groups(groups) for name in parts[g]()]


def group_of(name: str) -> str:
    """The group a column belongs to (by its prefix)."""
    for prefix, g in (("htf", "htf"), ("xa_", "cross_asset"), ("fb_", "funding_basis"), ("reg_", "regime")):
        if name.startswith(prefix):
            return g
    return "candles"


def groups_hash(groups, names: list[str]) -> str:
    """Features hash of a model trained on ``groups`` with columns ``names``: the historical
    :func:`perpbot.features.build.features_hash` for ``("candles",)``, else that of the names
    plus the groups and :data:`GROUPS_VERSION`."""
    from perpbot.features.build import features_hash

    g = normalize_groups(groups)
    if g == DEFAULT_GROUPS:
        return features_hash(list(names))
    return features_hash([*names, f"groups-v{GROUPS_VERSION}:{','.join(g)}"])


def missing_inputs(groups, inputs: FeatureInputs) -> list[str]:
    """Inputs the groups need that ``inputs`` lacks (e.g. ``["btc", "eth"]``)."""
    have = {"funding": inputs.funding is not None, "mark": inputs.mark is not None,
            "btc": inputs.series.get("btc") is not None, "eth": inputs.series.get("eth") is not None}
    need = [i for g in normalize_groups(groups) for i in GROUP_INPUTS[g]]
    return [i for i in dict.fromkeys(need) if not have[i]]


def window_bars(groups, timeframe: str, other_timeframe: str = "1h") -> int:
    """Trailing candles the live/paper loop needs for the groups' values to equal the batch values."""
    from perpbot.features.build import RECOMMENDED_WINDOW
    from perpbot.features.cross_asset import cross_window_bars
    from perpbot.features.htf import htf_window_bars
    from perpbot.features.regime import regime_window_bars

    g = normalize_groups(groups)
    need = [RECOMMENDED_WINDOW if "candles" in g else 1]
    need += [htf_window_bars(timeframe)] if "htf" in g else []
    need += [cross_window_bars(timeframe, other_timeframe)] if "cross_asset" in g else []
    need += [regime_window_bars(timeframe)] if "regime" in g else []
    return max(need)


def check_loop_inputs(groups, timeframe: str, live_window: int, *, mark=None, series: dict | None = None) -> None:
    """Refuse (ValueError) a model the paper/live loop cannot feed: its groups need mark-price or
    BTC/ETH candles the loop was not given, or more trailing candles than ``live_window``.
    (Funding events are not checked here: the live loop fetches them after it starts.)"""
    g = normalize_groups(groups)
    inputs = FeatureInputs(funding=pd.DataFrame(), mark=mark, series=dict(series or {}))
    lacking = missing_inputs(g, inputs)
    if lacking:
        users = [x for x in g if set(GROUP_INPUTS[x]) & set(lacking)]
        raise ValueError(f"the model uses feature group(s) {', '.join(users)}, which need {', '.join(lacking)} data "
                         "that this loop does not supply (live mode has no BTC/ETH or mark-price candle feed); "
                         "retrain with --features from candles, htf, regime")
    extra = [x for x in g if x != "candles"]  # the candles group's window is the setting's own business
    need = window_bars(extra, timeframe) if extra else 0
    if live_window < need:
        raise ValueError(f"feature groups {', '.join(g)} need {need} trailing candles at {timeframe}; "
                         f"live_window is {live_window}")


def compute_groups(candles: pd.DataFrame, groups, inputs: FeatureInputs | None = None,
                   with_funding: bool = True) -> pd.DataFrame:
    """Feature matrix of the selected groups for every candle (float64, index = ``candles.index``).

    ``with_funding`` adds the ``candles`` group's funding columns (needs ``inputs.funding``).
    Raises DataError when a group's input is missing (naming the setting to fix).
    """
    from perpbot.features.asof import candle_timeframe
    from perpbot.features.build import compute_features

    g = normalize_groups(groups)
    inputs = inputs or FeatureInputs()
    lacking = missing_inputs(g, inputs)
    if lacking:
        raise DataError(f"feature groups {', '.join(g)} need {', '.join(lacking)} data that is not loaded")
    parts = []
    if "candles" in g:
        if with_funding and inputs.funding is None:
            raise DataError("the candles group's funding columns need the funding-rate history (funding_file)")
        parts.append(compute_features(candles, inputs.funding if with_funding else None))
    if len(g) > 1 or g != ("candles",):
        c = candles
        if "timeframe" not in c.attrs and len(c) > 1:
            c = candles.copy()
            c.attrs["timeframe"] = candle_timeframe(candles)
        if "htf" in g:
            from perpbot.features.htf import htf_features
            parts.append(htf_features(c))
        if "cross_asset" in g:
            from perpbot.features.cross_asset import cross_asset_features
            parts.append(cross_asset_features(c, inputs.series))
        if "funding_basis" in g:
            from perpbot.features.funding_basis import funding_basis_features
            parts.append(funding_basis_features(c, inputs.funding, inputs.mark))
        if "regime" in g:
            from perpbot.features.regime import regime_features
            parts.append(regime_features(c))
    return parts[0] if len(parts) == 1 else pd.concat(parts, axis=1)


def inputs_digest(groups, inputs: FeatureInputs) -> str:
    """":" + SHA-256 (first 16 hex) of the mark / BTC / ETH candles the groups read, for cache keys
    (the candles and funding are keyed by the caller); "" when the groups read none of them."""
    import hashlib

    import numpy as np

    need = [i for g in normalize_groups(groups) for i in GROUP_INPUTS[g] if i in ("mark", "btc", "eth")]
    if not need:
        return ""
    h = hashlib.sha256()
    for key in dict.fromkeys(need):
        frame = inputs.mark if key == "mark" else inputs.series.get(key)
        if frame is None:
            continue
        h.update(key.encode())
        h.update(frame["timestamp"].astype("datetime64[ms, UTC]").astype("int64").to_numpy().tobytes())
        h.update(np.ascontiguousarray(frame["close"].to_numpy(np.float64)).tobytes())
    return ":" + h.hexdigest()[:16]


def load_inputs(settings, market, groups) -> FeatureInputs:
    """The inputs ``groups`` need for ``market`` (a :class:`perpbot.data.market.MarketData`):
    its funding and mark frames, and BTC / ETH candles from ``settings.btc_file`` /
    ``settings.eth_file`` (loaded once, kept in ``market.series``).

    Raises DataError for a missing or bad file.
    """
    from perpbot.data.loader import load_candles

    g = normalize_groups(groups)
    series = getattr(market, "series", None)
    if series is None:
        series = {}
    if "cross_asset" in g:
        for key in ("btc", "eth"):
            if series.get(key) is None:
                path = getattr(settings, f"{key}_file", None)
                if path is None or not Path(path).exists():
                    raise DataError(f"{path}: {key.upper()} candle file not found (feature group cross_asset; "
                                    f"setting {key}_file)")
                series[key] = load_candles(path)
        if hasattr(market, "series"):
            market.series = series
    funding = market.funding if getattr(settings, "funding", True) else None
    return FeatureInputs(funding=funding, mark=market.mark, series=series)
