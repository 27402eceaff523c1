"""Configuration: one validated settings object from a TOML file and ``PERPBOT_*`` variables.

Precedence (highest first): explicit overrides (CLI flags) > environment variables
``PERPBOT_<FIELD>`` > the TOML file (``perpbot.toml`` in the working directory, or the
file named by ``--config`` / ``PERPBOT_CONFIG``; keys at top level or under ``[perpbot]``)
> defaults. Percent fields are percents (``risk_per_trade = 1.0`` means 1 % of equity);
the ``*_frac`` properties give the fractions the engine uses.

Secrets (``api_key``, ``api_secret``, ``api_passphrase``, ``telegram_token``,
``smtp_password``, ``api_token``) are read only from the environment (``PERPBOT_API_KEY`` ...); a secret found in a TOML file is an error, and
secrets are never included in :meth:`Settings.public_dict` (what logs and the ledger see).

An invalid value raises :class:`ConfigError` whose message is one line naming the field,
the value and the allowed range.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

SECRET_FIELDS = ("api_key", "api_secret", "api_passphrase", "telegram_token", "smtp_password", "api_token")
DEFAULT_CONFIG_FILE = "perpbot.toml"

ModelName = Literal["logreg", "random_forest", "xgboost", "lightgbm", "ensemble", "lstm"]


class ConfigError(ValueError):
    """A configuration value is invalid; the message is one line for the user."""


class Settings(BaseSettings):
    """All perpbot settings. Units are in each field's description."""

    model_config = SettingsConfigDict(env_prefix="PERPBOT_", extra="forbid", validate_default=True)

    # --- market ---------------------------------------------------------------------------
    exchange: str = Field("bitget", description="ccxt exchange id")
    symbol: str = Field("SOL/USDT:USDT", description="ccxt unified symbol of a linear perpetual")
    timeframe: Literal["1m", "5m", "15m", "1h"] = Field("5m", description="candle timeframe")
    mode: Literal["backtest", "paper", "live"] = "backtest"

    # --- data -----------------------------------------------------------------------------
    candles_file: Path = Field(Path("../shared/data/binance-usdm/SOLUSDT-5m.parquet"), description="OHLCV Parquet")
    funding_file: Path | None = Field(Path("../shared/data/binance-usdm/SOLUSDT-funding.parquet"),
                                      description="funding-rate history Parquet (None: no funding)")
    mark_file: Path | None = Field(Path("../shared/data/binance-usdm/SOLUSDT-8h-mark.parquet"),
                                   description="mark-price candles Parquet, for the funding mark price")
    intrabar_file: Path | None = Field(None, description="1m candles used to resolve intrabar SL/TP order")

    # --- account and risk -----------------------------------------------------------------
    starting_capital: float = Field(1000.0, gt=0, le=1e9, description="USDT")
    leverage: float = Field(3.0, ge=1, le=125, description="exchange leverage (x)")
    margin_mode: Literal["isolated"] = "isolated"
    sizing: Literal["fixed_fraction", "atr", "equity"] = Field(
        "fixed_fraction",
        description="fixed_fraction: risk_per_trade of equity lost at the stop; atr: the same with the stop "
                    "distance = sizing_atr_mult x ATR; equity: notional = equity_fraction x equity x leverage")
    risk_per_trade: float = Field(1.0, gt=0, le=10, description="percent of equity risked per trade")
    equity_fraction: float = Field(1.0, gt=0, le=1, description="fraction of equity posted as margin (sizing=equity)")
    sizing_atr_mult: float = Field(2.0, gt=0, le=20, description="ATR multiple for sizing=atr")
    max_daily_loss: float = Field(5.0, gt=0, le=100, description="percent of the day's starting equity")
    max_drawdown: float = Field(20.0, gt=0, le=100, description="percent below the equity peak")
    cooldown_bars: int = Field(6, ge=0, le=10_000, description="bars without entries after a losing trade")
    stop_mode: Literal["percent", "atr"] = "percent"
    stop_loss: float = Field(1.0, gt=0, le=50, description="percent from entry (stop_mode=percent)")
    take_profit: float = Field(2.0, gt=0, le=200, description="percent from entry (stop_mode=percent)")
    stop_loss_atr: float = Field(1.5, gt=0, le=50, description="ATR multiple (stop_mode=atr)")
    take_profit_atr: float = Field(3.0, gt=0, le=100, description="ATR multiple (stop_mode=atr)")
    atr_period: int = Field(14, ge=2, le=500, description="bars")
    trailing_stop: float | None = Field(None, gt=0, le=50, description="percent trailing distance; None = off")

    # --- fees, market rules (Bitget SOLUSDT defaults; read from the exchange when online) ----
    taker_fee: float = Field(0.06, ge=0, le=1, description="percent of notional")
    maker_fee: float = Field(0.02, ge=-1, le=1, description="percent of notional")
    slippage: float = Field(0.02, ge=0, le=5, description="percent, adverse, on every market fill")
    funding: bool = Field(True, description="apply funding payments")
    lot_size: float = Field(0.1, gt=0, description="quantity step, base asset")
    tick_size: float = Field(0.001, gt=0, description="price step, USDT")
    min_qty: float = Field(0.1, ge=0, description="minimum order quantity, base asset")
    min_notional: float = Field(5.0, ge=0, description="minimum order value, USDT")

    # --- model ----------------------------------------------------------------------------
    model: ModelName = "lightgbm"
    confidence_threshold: float = Field(0.6, ge=0.34, le=1.0, description="probability a call must reach")
    label_horizon: int = Field(48, ge=1, le=10_000, description="triple-barrier vertical barrier, bars")
    train_days: float = Field(30.0, gt=0, le=3650, description="first walk-forward training window, days")
    test_days: float = Field(14.0, gt=0, le=3650, description="walk-forward test window, days")
    n_jobs: int = Field(2, ge=1, le=64, description="CPU threads for model training")
    warmup_bars: int = Field(300, ge=0, le=100_000, description="bars before the first trade (feature warm-up)")
    live_window: int = Field(1000, ge=100, le=100_000, description="trailing bars the live/paper loop computes on")

    # --- live trading safety ---------------------------------------------------------------
    max_entry_lag: float = Field(0.5, gt=0, le=100, description="live: no entry on a candle that closed more than "
                                                                "this many bars ago (fraction of a bar), e.g. "
                                                                "candles caught up after an outage")
    clock_skew_halt_cycles: int = Field(3, ge=1, le=10_000, description="live: consecutive cycles the venue refuses "
                                                                       "for an expired timestamp (after a clock "
                                                                       "re-sync) before new entries are halted")

    # --- outputs --------------------------------------------------------------------------
    output_dir: Path = Field(Path("runs"), description="reports, models and the default ledger")
    ledger_url: str | None = Field(None, description="SQLAlchemy URL; default sqlite:///<output_dir>/perpbot.db")
    model_path: Path | None = Field(None, description="default <output_dir>/models/<model>.joblib")
    language: Literal["en", "id"] = "en"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_max_bytes: int = Field(10_000_000, ge=10_000, le=10_000_000_000,
                               description="log file size (bytes) at which it is rotated")
    log_backup_count: int = Field(5, ge=1, le=1000, description="rotated log files kept (perpbot.jsonl.1 ... .N)")

    # --- operator interfaces -------------------------------------------------------------
    telegram_chat_ids: list[int] = Field(default_factory=list, description="chat ids allowed to command the bot")
    telegram_base_url: str = Field("https://api.telegram.org/bot", description="Bot API base URL")
    telegram_cooldown: float = Field(1.0, ge=0, le=3600, description="seconds between commands per chat")
    smtp_host: str | None = Field(None, description="SMTP server for e-mail notifications")
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_starttls: bool = False
    email_from: str | None = None
    email_to: list[str] = Field(default_factory=list)
    api_host: str = Field("127.0.0.1", description="REST API bind address")
    api_port: int = Field(8000, ge=1, le=65535)

    # --- secrets (environment only) -------------------------------------------------------
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    api_passphrase: SecretStr | None = None
    telegram_token: SecretStr | None = None
    smtp_password: SecretStr | None = None
    api_token: SecretStr | None = Field(None, description="bearer token of the REST API / dashboard")

    @model_validator(mode="after")
    def _check(self) -> "Settings":
        if self.stop_mode == "percent" and self.take_profit <= 0:
            raise ValueError("take_profit must be > 0")
        if not self.symbol.count("/") == 1 or ":" not in self.symbol:
            raise ValueError(f"symbol {self.symbol!r} is not a ccxt linear perpetual symbol like 'SOL/USDT:USDT'")
        return self

    # ------------------------------------------------------------------ derived values --
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
    def model_file(self) -> Path:
        return self.model_path or self.output_dir / "models" / f"{self.model}.joblib"

    def public_dict(self) -> dict[str, Any]:
        """Settings as JSON-safe values, secrets left out (for logs, the ledger, reports)."""
        data = self.model_dump(mode="json", exclude=set(SECRET_FIELDS))
        return data

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    data = dict(raw.get("perpbot", raw))
    data.pop("perpbot", None)
    for key in SECRET_FIELDS:
        if key in data:
            raise ConfigError(
                f"config file {path} contains '{key}': secrets are read only from the environment "
                f"(PERPBOT_{key.upper()}); remove it from the file")
    return data


def _field_range(name: str) -> str:
    field = Settings.model_fields.get(name)
    if field is None:
        return ""
    parts = []
    for meta in field.metadata:
        for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            val = getattr(meta, attr, None)
            if val is not None:
                parts.append(f"{sym} {val}")
    ann = field.annotation
    args = getattr(ann, "__args__", None)
    if getattr(ann, "__origin__", None) is Literal or (args and all(isinstance(a, str) for a in args)):
        parts.append("one of " + ", ".join(repr(a) for a in args))
    return " and ".join(parts)


def format_validation_error(exc: ValidationError) -> str:
    """First error of a pydantic ValidationError as one line: field, value, allowed range."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ())) or "config"
    name = str(err.get("loc", ("",))[0]) if err.get("loc") else ""
    value = err.get("input")
    allowed = _field_range(name)
    msg = err.get("msg", "invalid value")
    where = f" (PERPBOT_{name.upper()} or '{name}' in the config file)" if name in Settings.model_fields else ""
    if err.get("type") == "extra_forbidden":
        return f"config error: unknown setting '{loc}'{where}"
    text = f"config error: {loc} = {value!r} is invalid: {msg}"
    if allowed:
        text += f"; allowed: {allowed}"
    return text + where


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build :class:`Settings` from file, environment and ``overrides`` (None values ignored).

    Raises:
        ConfigError: unreadable file, a secret in the file, or any invalid value (one line).
    """
    path = config_file or os.environ.get("PERPBOT_CONFIG")
    file_values: dict[str, Any] = {}
    if path:
        file_values = _read_toml(Path(path))
    elif Path(DEFAULT_CONFIG_FILE).exists():
        file_values = _read_toml(Path(DEFAULT_CONFIG_FILE))
    clean = {k: v for k, v in overrides.items() if v is not None}
    # Environment beats the file: drop file keys that the environment sets.
    env_keys = {k[len("PERPBOT_"):].lower() for k in os.environ if k.startswith("PERPBOT_")}
    merged = {k: v for k, v in file_values.items() if k not in env_keys}
    merged.update(clean)
    try:
        return Settings(**merged)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
