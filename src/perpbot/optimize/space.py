"""The search space of ``perpbot optimize``: what one Optuna trial may change, and how it maps onto settings.

Dimensions (all sampled by Optuna's TPE sampler, :func:`suggest`):

- LightGBM hyperparameters: ``num_leaves`` 7..63 (log), ``learning_rate`` 0.01..0.2 (log),
  ``n_estimators`` 50..300 (step 50), ``min_child_samples`` 50..1000 (log),
  ``colsample_bytree`` 0.3..1.0;
- triple-barrier widths (percent of the entry price): ``take_profit`` 0.5..4.0,
  ``stop_loss`` 0.3..2.0, and the vertical barrier ``horizon_hours`` 1..12 (converted to
  bars of the trial's timeframe, so the same wall-clock horizon means the same thing at
  5m, 15m and 1h);
- the EV rule's decision margin ``ev_margin`` 0..0.5 (percent of notional; the grid of the
  nested choice is this single value, so the trial's margin is the one applied);
- ``timeframe``: 5m, 15m or 1h (15m and 1h resampled from the 5m candles by
  :func:`perpbot.data.resample.resample_candles`).

- the feature groups (:mod:`perpbot.features.groups`), when more than one set is given
  (``perpbot optimize --feature-sets "candles;candles,htf,regime"``; default: ``candles`` only,
  not searched). The chosen model records its groups, so backtest, paper and live rebuild them.

The take-profit / stop-loss of the labels are also the trade's take-profit / stop-loss
(``stop_mode = "percent"``), as in ``perpbot train``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TIMEFRAMES", "TrialConfig", "suggest", "trial_config"]

TIMEFRAMES = ("5m", "15m", "1h")
_BAR_MINUTES = {"5m": 5, "15m": 15, "1h": 60}


@dataclass(frozen=True)
class TrialConfig:
    """One point of the search space.

    ``model_params``: LightGBM constructor overrides (merged over
    :func:`perpbot.ml.models.default_params`); ``take_profit`` / ``stop_loss`` percent of the
    entry price; ``horizon`` bars of ``timeframe``; ``ev_margin`` percent of notional.
    """

    model_params: dict
    take_profit: float
    stop_loss: float
    horizon: int
    ev_margin: float
    timeframe: str
    features: tuple = ("candles",)

    def settings_update(self) -> dict:
        """Keyword overrides of :class:`perpbot.config.Settings` for this trial."""
        return {"timeframe": self.timeframe, "take_profit": self.take_profit, "stop_loss": self.stop_loss,
                "stop_mode": "percent", "label_horizon": self.horizon, "decision": "ev",
                "ev_margin": self.ev_margin, "ev_margin_grid": [self.ev_margin], "model": "lightgbm",
                "features": list(self.features)}

    def to_dict(self) -> dict:
        return {"model_params": dict(self.model_params), "take_profit": self.take_profit, "stop_loss": self.stop_loss,
                "horizon": self.horizon, "ev_margin": self.ev_margin, "timeframe": self.timeframe,
                "features": ",".join(self.features)}


def horizon_bars(hours: float, timeframe: str) -> int:
    """Vertical barrier in bars of ``timeframe`` for ``hours`` of wall-clock time (>= 1)."""
    return max(1, int(round(hours * 60 / _BAR_MINUTES[timeframe])))


def trial_config(params: dict) -> TrialConfig:
    """:class:`TrialConfig` from a trial's ``params`` dict (the names :func:`suggest` uses)."""
    tf = params["timeframe"]
    return TrialConfig(
        model_params={"num_leaves": int(params["num_leaves"]), "learning_rate": float(params["learning_rate"]),
                      "n_estimators": int(params["n_estimators"]),
                      "min_child_samples": int(params["min_child_samples"]),
                      "colsample_bytree": float(params["colsample_bytree"])},
        take_profit=float(params["take_profit"]), stop_loss=float(params["stop_loss"]),
        horizon=horizon_bars(float(params["horizon_hours"]), tf), ev_margin=float(params["ev_margin"]),
        timeframe=tf, features=tuple(str(params.get("features", "candles")).split(",")))


def suggest(trial, timeframes=TIMEFRAMES, feature_sets=("candles",)) -> TrialConfig:
    """Sample every dimension of the module docstring on an ``optuna.trial.Trial``."""
    bad = [t for t in timeframes if t not in TIMEFRAMES]
    if bad or not timeframes:
        raise ValueError(f"timeframes: choose among {', '.join(TIMEFRAMES)}, got {list(timeframes)}")
    p = {
        "timeframe": trial.suggest_categorical("timeframe", list(timeframes)),
        "num_leaves": trial.suggest_int("num_leaves", 7, 63, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "n_estimators": trial.suggest_int("n_estimators", 50, 300, step=50),
        "min_child_samples": trial.suggest_int("min_child_samples", 50, 1000, log=True),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "take_profit": trial.suggest_float("take_profit", 0.5, 4.0),
        "stop_loss": trial.suggest_float("stop_loss", 0.3, 2.0),
        "horizon_hours": trial.suggest_float("horizon_hours", 1.0, 12.0),
        "ev_margin": trial.suggest_float("ev_margin", 0.0, 0.5),
    }
    if len(feature_sets) > 1:  # one set: not a dimension (the sampler's draws stay as they were)
        p["features"] = trial.suggest_categorical("features", list(feature_sets))
    else:
        p["features"] = feature_sets[0] if feature_sets else "candles"
    return trial_config(p)
