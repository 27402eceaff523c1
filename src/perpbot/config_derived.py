"""Values derived from :class:`perpbot.config.Settings`: the fractions the engine uses (the
settings hold percents), the ledger URL, the model file and the market-rules cache file. One
place for every percent -> fraction conversion of the risk settings."""

from __future__ import annotations

import re
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, cast

from perpbot.masking import mask_url


def model_stem(name: str) -> str:
    """A file-name-safe label of a model: the name itself for built-ins and entry points
    (characters other than letters, digits, ``.``, ``_``, ``-`` replaced by ``_``), and
    ``<file stem>`` / ``<file stem>-<Factory>`` for a plug-in file (``models/nb.py:NB`` -> ``nb-NB``)."""
    if name.endswith(".py") or ".py:" in name:  # perpbot.config_values.is_model_file_ref
        path, _, factory = name.partition(".py:")
        name = PurePath(path if factory else path[:-3]).name + (f"-{factory}" if factory else "")
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "model"


class DerivedValues:
    """Mixin of :class:`~perpbot.config.Settings` (reads its fields)."""

    if TYPE_CHECKING:  # fields of Settings
        stop_mode: str
        stop_loss: float
        take_profit: float
        stop_loss_atr: float
        take_profit_atr: float
        trailing_stop: float | None
        max_daily_loss: float
        max_drawdown: float
        ev_margin: float
        ev_margin_grid: list[float]
        risk_per_trade: float
        taker_fee: float
        slippage: float
        ledger_url: str | None
        output_dir: Path
        markets_dir: Path | None
        exchange: str
        model_path: Path | None
        model: Any

    @property
    def ev_margin_frac(self) -> float:
        return self.ev_margin / 100.0

    @property
    def ev_margin_grid_frac(self) -> list[float]:
        return [m / 100.0 for m in self.ev_margin_grid]

    @property
    def risk_frac(self) -> float:
        return self.risk_per_trade / 100.0

    @property
    def taker_fee_frac(self) -> float:
        return self.taker_fee / 100.0

    @property
    def slippage_frac(self) -> float:
        return self.slippage / 100.0

    @property
    def ledger(self) -> str:
        return self.ledger_url or f"sqlite:///{self.output_dir / 'perpbot.db'}"

    @property
    def ledger_display(self) -> str:
        """:attr:`ledger` with its password masked: what banners, messages and logs show."""
        return cast(str, mask_url(self.ledger))

    @property
    def model_file(self) -> Path:
        """``model_path``, else ``<output_dir>/models/<model>.joblib`` (a plug-in file's stem for
        ``FILE.py[:Factory]``, :func:`model_stem`)."""
        return self.model_path or self.output_dir / "models" / f"{model_stem(self.model)}.joblib"

    def markets_file(self, exchange: str | None = None) -> Path:
        """The market-rules cache of ``exchange`` (default the settings' venue):
        ``<markets_dir>/<exchange>.json``, ``markets_dir`` defaulting to ``<output_dir>/markets``."""
        return (self.markets_dir or self.output_dir / "markets") / f"{exchange or self.exchange}.json"

    @property
    def stop_loss_frac(self) -> float:
        """Stop-loss distance: a fraction of the entry price (stop_mode "percent") or an ATR multiple."""
        return self.stop_loss_atr if self.stop_mode == "atr" else self.stop_loss / 100.0

    @property
    def take_profit_frac(self) -> float:
        """Take-profit distance: a fraction of the entry price (stop_mode "percent") or an ATR multiple."""
        return self.take_profit_atr if self.stop_mode == "atr" else self.take_profit / 100.0

    @property
    def trailing_stop_frac(self) -> float:
        return (self.trailing_stop or 0.0) / 100.0

    @property
    def max_daily_loss_frac(self) -> float:
        return self.max_daily_loss / 100.0

    @property
    def max_drawdown_frac(self) -> float:
        return self.max_drawdown / 100.0
