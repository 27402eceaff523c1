"""Configuration: one validated settings object from a TOML file and ``PERPBOT_*`` variables.

Precedence (highest first): explicit overrides (CLI flags) > environment variables ``PERPBOT_<FIELD>`` > the
TOML file (``perpbot.toml`` in the working directory, or the file named by ``--config`` / ``PERPBOT_CONFIG``) >
defaults. Percent fields are percents (``risk_per_trade = 1.0`` means 1 % of equity); the ``*_frac`` properties
give the fractions the engine uses. Field groups: ``config_values``, ``config_risk``, ``config_portfolio``.

The TOML file holds its settings either all at top level or all under a ``[perpbot]`` table; mixing both is an
error naming the stray keys (nothing is silently dropped). A UTF-8 byte-order mark at the start of the file is
accepted. Unknown keys are errors whatever their source — a TOML key, or a ``PERPBOT_*`` environment variable that
names no setting (with a "did you mean" suggestion) — except the variables perpbot reads for itself
(:data:`perpbot.config_sources.NON_SETTING_ENV` and ``..._PREFIXES``).

Values: numbers must be finite and inside each field's documented range; a boolean is never taken as a number
(``leverage = true`` is refused); optional files (``funding_file``, ``mark_file``, ``intrabar_file``, ``model_path``)
accept ``"none"`` (TOML has no null) to mean "not used"; ``telegram_chat_ids`` accepts a list of integers or, from
the environment, ``"123,-456"`` / ``"[123, -456]"``; ``ledger_url`` must be a SQLAlchemy URL of an installed dialect.
``exchange`` must suit ``market_type``: a spot venue (Indodax, Tokocrypto) only with ``"spot"``, a perpetual
venue (Bitget, Binance USDⓈ-M, Bybit, OKX, MEXC, WEEX) only with ``"futures"`` (``check_venue_market``).

Secrets (:data:`SECRET_FIELDS`: ``api_key``, ``api_secret`` ..., and the multi-user platform's ``master_key``,
``jwt_secret``, ``chain_private_key``; its other settings are :class:`perpbot.config_values.PlatformSettings`) are read
only from the environment (``PERPBOT_API_KEY`` ...); a secret found in a TOML file is an error, and secrets are never
included in :meth:`Settings.public_dict` (what logs, the ledger, the API and reports see), where the password of
``ledger_url`` is masked as ``***`` too (:attr:`Settings.ledger_display` is the masked URL every banner prints).

An invalid value raises :class:`ConfigError`: one line naming the field, the value (secrets as ``***``), the range.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from perpbot.config_derived import DerivedValues
from perpbot.config_sources import ConfigError, env_settings_names, is_numeric, parse_chat_ids, read_toml
from perpbot.config_risk import TradeRiskSettings
from perpbot.config_portfolio import PortfolioSettings
from perpbot.config_values import (  # noqa: F401  (BUILTIN_MODELS, ModelName re-exported)
    BUILTIN_MODELS, PLATFORM_SECRET_FIELDS, ExecutionSettings, ModelName, ModelRef, PlatformSettings, check_ledger_url,
    check_pair_weights, check_venue_market, parse_addresses, parse_feature_groups)
from perpbot.config_sources import format_validation_error as _format_error
from perpbot.masking import mask_url, redact_text, remember

SECRET_FIELDS = ("api_key", "api_secret", "api_passphrase", "telegram_token", "smtp_password", "api_token",
                 "coinglass_api_key", "signal_bot_token", *PLATFORM_SECRET_FIELDS)
DEFAULT_CONFIG_FILE = "perpbot.toml"

#: Optional file settings for which the string "none" (or "") means "not used".
OPTIONAL_FILES = ("funding_file", "mark_file", "intrabar_file", "model_path")

#: Feature groups (perpbot.features.groups.GROUP_NAMES, in its order; a test keeps them equal).
FEATURE_GROUPS = ("candles", "htf", "cross_asset", "funding_basis", "regime")


class Settings(DerivedValues, ExecutionSettings, TradeRiskSettings, PlatformSettings, PortfolioSettings, BaseSettings):
    """All perpbot settings. Units are in each field's description."""

    model_config = SettingsConfigDict(env_prefix="PERPBOT_", extra="forbid", validate_default=True, allow_inf_nan=False)

    # --- market ---------------------------------------------------------------------------
    exchange: str = Field("bitget", description="ccxt exchange id")
    market_type: Literal["futures", "spot"] = Field(
        "futures", description="futures: a USDT-M perpetual (leverage, funding, shorts); spot: coins bought with "
                               "the quote currency (1x, no funding, no shorts; e.g. Indodax SOL/IDR)")
    symbol: str = Field("SOL/USDT:USDT", description="ccxt unified symbol: a linear perpetual (SOL/USDT:USDT) or, "
                                                     "with market_type spot, a spot pair (SOL/IDR)")
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
    stop_mode: Literal["percent", "atr", "levels"] = "percent"
    stop_loss: float = Field(1.0, gt=0, le=50, description="percent from entry (stop_mode=percent)")
    take_profit: float = Field(2.0, gt=0, le=200, description="percent from entry (stop_mode=percent)")
    stop_loss_atr: float = Field(1.5, gt=0, le=50, description="ATR multiple (stop_mode=atr)")
    take_profit_atr: float = Field(3.0, gt=0, le=100, description="ATR multiple (stop_mode=atr)")
    atr_period: int = Field(14, ge=2, le=500, description="bars")
    trailing_stop: float | None = Field(None, gt=0, le=50, description="percent trailing distance; None = off")

    # --- fees, market rules (Bitget SOLUSDT defaults; the venue's own from the market cache) ----
    taker_fee: float = Field(0.06, ge=0, le=1, description="percent of notional")
    maker_fee: float = Field(0.02, ge=-1, le=1, description="percent of notional")
    slippage: float = Field(0.02, ge=0, le=5, description="percent, adverse, on every market fill")
    funding: bool = Field(True, description="apply funding payments")
    lot_size: float = Field(0.1, ge=1e-9, le=1e6, description="quantity step, base asset")
    tick_size: float = Field(0.001, ge=1e-12, le=1e4, description="price step, USDT")
    min_qty: float = Field(0.1, ge=0, le=1e9, description="minimum order quantity, base asset")
    min_notional: float = Field(5.0, ge=0, le=1e6, description="minimum order value, USDT")
    markets_dir: Path | None = Field(None, description="cache of the venue's market rules (perpbot markets refresh): "
                                                       "<markets_dir>/<exchange>.json; default <output_dir>/markets")
    markets_max_age: float = Field(24.0, gt=0, le=8760, description="hours before a cached market entry is refreshed")

    # --- model ----------------------------------------------------------------------------
    model: ModelRef = Field("lightgbm", description="built-in (logreg, random_forest, xgboost, lightgbm, "
                                                    "ensemble, lstm), a plug-in's entry point (perpbot.models) "
                                                    "or FILE.py[:Factory]")
    model_params: dict[str, Any] = Field(default_factory=dict, description="the model's hyperparameters over its "
                                         "defaults, e.g. {num_leaves = 31} (checked by the model at training)")
    confidence_threshold: float = Field(0.6, ge=0.34, le=1.0,
                                        description="probability a call must reach (decision=threshold)")
    decision: Literal["ev", "threshold"] = Field(
        "ev", description="ev: enter when the expected return after costs clears the margin, size by fractional "
                          "Kelly; threshold: enter when p_up / p_down >= confidence_threshold, configured size")
    ev_margin: float = Field(0.0, ge=0, le=5, description="percent of notional: EV margin used where the nested "
                                                          "selection has too few signals (e.g. the first fold)")
    ev_margin_grid: list[float] = Field([0.0, 0.05, 0.1, 0.2, 0.3, 0.5], min_length=1,
                                        description="percent of notional: margins the nested selection chooses from")
    ev_min_signals: int = Field(30, ge=1, le=100_000, description="signals a margin needs to be chosen")
    kelly_fraction: float = Field(0.5, gt=0, le=1, description="multiple of the Kelly fraction (0.5 = half Kelly); "
                                                               "the risk stays capped by risk_per_trade")
    calibration: Literal["isotonic", "sigmoid", "none"] = Field(
        "isotonic", description="probability calibration fitted on the last slice of each training window")
    calibration_fraction: float = Field(0.2, gt=0, le=0.5, description="share of each training window used "
                                                                       "for calibration")
    label_horizon: int = Field(48, ge=1, le=10_000, description="triple-barrier vertical barrier, bars")
    train_days: float = Field(30.0, gt=0, le=3650, description="first walk-forward training window, days")
    test_days: float = Field(14.0, gt=0, le=3650, description="walk-forward test window, days")
    n_jobs: int = Field(2, ge=1, le=64, description="CPU threads for model training")
    warmup_bars: int = Field(300, ge=0, le=100_000, description="bars before the first trade (feature warm-up)")
    live_window: int = Field(1000, ge=100, le=100_000, description="trailing bars the live/paper loop computes on")
    features: Annotated[list[str], NoDecode] = Field(
        ["candles"], description="feature groups: candles, htf, cross_asset, funding_basis, regime "
                                 "(perpbot.features.groups); from the environment 'candles,htf'")
    btc_file: Path = Field(Path("../shared/data/binance-usdm/BTCUSDT-1h.parquet"),
                           description="BTC candles Parquet (feature group cross_asset)")
    eth_file: Path = Field(Path("../shared/data/binance-usdm/ETHUSDT-1h.parquet"),
                           description="ETH candles Parquet (feature group cross_asset)")
    importance_rows: int = Field(500, ge=0, le=1_000_000, description="test rows per walk-forward fold scored "
                                                                      "by permutation importance (0: off)")

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
    telegram_chat_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list, description="chat ids allowed to command the bot (integers; groups are negative)")
    telegram_base_url: str = Field("https://api.telegram.org/bot", description="Bot API base URL")
    telegram_cooldown: float = Field(1.0, ge=0, le=3600, description="seconds between commands per chat")
    smtp_host: str | None = Field(None, description="SMTP server for e-mail notifications")
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_starttls: bool = False
    email_from: str | None = None
    email_to: Annotated[list[str], NoDecode] = Field(default_factory=list, description="addresses, or 'a@x,b@y'")
    api_host: str = Field("127.0.0.1", description="REST API bind address")
    api_port: int = Field(8000, ge=1, le=65535)

    # --- market intelligence (perpbot.intel): CoinGlass, Fear & Greed, venue, micro-metrics, sentiment --
    intel_timeout: float = Field(3.0, gt=0, le=60, description="seconds one request to an outside source may take")
    intel_deadline: float = Field(8.0, gt=0, le=120, description="seconds one part of a market snapshot may take, "
                                                                 "retries included; then it is reported missing")
    intel_retries: int = Field(1, ge=0, le=5, description="retries of a request after a connection error, timeout "
                                                          "or HTTP 429/5xx (exponential backoff)")
    intel_cache_ttl: float = Field(60.0, ge=0, le=86400, description="seconds a real-time answer is cached "
                                                                      "(history of 4 h bars or coarser: its interval)")
    intel_cooldown: float = Field(30.0, ge=0, le=3600, description="seconds before the same source is asked again "
                                                                    "for the same symbol (last answer reused)")
    intel_coinglass: bool = Field(True, description="use CoinGlass (needs PERPBOT_COINGLASS_API_KEY)")
    intel_coinglass_base_url: str = Field("https://open-api-v4.coinglass.com", description="CoinGlass API v4 root")
    intel_coinglass_plan: Literal["hobbyist", "startup", "standard", "professional", "enterprise"] = Field(
        "hobbyist", description="CoinGlass plan: sets the finest history interval (hobbyist 4h, startup 30m)")
    intel_coinglass_exchanges: list[str] = Field(["Binance", "OKX", "Bybit", "Bitget", "MEXC"],
                                                 description="venues CoinGlass aggregates liquidations over")
    intel_long_short_ranges: list[Literal["5m", "15m", "30m", "1h", "4h", "12h", "24h"]] = Field(
        ["4h", "1h", "12h", "24h"], min_length=1, description="taker long/short ranges tried in order until one "
                                                              "has data")
    intel_liquidation_interval: str = Field("4h", pattern=r"^\d+[mhdw]$",
                                            description="liquidation bar interval (raised to the plan's minimum)")
    intel_fear_greed: bool = Field(True, description="use the alternative.me Fear & Greed Index")
    intel_fear_greed_base_url: str = Field("https://api.alternative.me", description="Fear & Greed API root")
    intel_fear_greed_ttl: float = Field(3600.0, ge=0, le=86400,
                                        description="seconds the index is cached when the source gives no "
                                                    "time_until_update")
    intel_venue: bool = Field(True, description="ask the signal venue (ccxt) for ticker, funding, OI and book")
    intel_venue_ttl: float = Field(5.0, ge=0, le=3600, description="seconds a venue answer is cached")
    micro_metrics: bool = Field(True, description="keep 1m micro-metrics (ATR(1m), volume profile)")
    micro_retention_minutes: int = Field(720, ge=30, le=10_080, description="1m candles kept per symbol")
    micro_buckets: int = Field(24, ge=4, le=500, description="volume-profile price buckets")
    micro_value_area: float = Field(70.0, gt=0, le=100, description="percent of volume in the value area")
    micro_atr_period: int = Field(14, ge=2, le=500, description="ATR(1m) period, 1m candles")
    micro_state_file: Path | None = Field(None, description="Parquet state of the micro-metrics; default "
                                                            "<output_dir>/intel/micro_1m.parquet")
    micro_save_interval: float = Field(60.0, ge=0, le=86400, description="minimum seconds between state writes")
    micro_refresh_interval: float = Field(60.0, ge=5, le=3600, description="seconds between background refreshes")
    micro_symbol_limit: int = Field(20, ge=1, le=500, description="most recently asked symbols kept fresh")
    sentiment: bool = Field(True, description="score news and social posts per symbol")
    sentiment_feeds: list[str] = Field(
        ["https://www.coindesk.com/arc/outboundfeeds/rss/", "https://cointelegraph.com/rss"],
        description="RSS/Atom feed URLs")
    sentiment_subreddits: list[str] = Field(["CryptoCurrency", "solana", "Bitcoin", "ethereum"],
                                            description="subreddits read through Reddit's public JSON listings")
    sentiment_reddit_base_url: str = Field("https://www.reddit.com", description="Reddit root")
    sentiment_keywords: dict[str, list[str]] = Field(
        {"BTC": ["bitcoin", "btc", "$btc"], "ETH": ["ethereum", "eth", "$eth", "ether"],
         "SOL": ["solana", "$sol"]},
        description="coin -> whole-word keywords a post must contain to count for it (case-insensitive); "
                    "a coin not listed matches its own name")
    sentiment_scorer: str = Field("vader", description="sentiment scorer: 'vader' or an installed "
                                                       "perpbot.sentiment_scorers entry point")
    sentiment_window_hours: float = Field(24.0, gt=0, le=720, description="hours of posts a sentiment score covers")
    sentiment_retention_hours: float = Field(72.0, gt=0, le=2160, description="hours of posts kept")
    sentiment_cache_ttl: float = Field(300.0, ge=0, le=86400, description="seconds a feed or listing is cached")
    sentiment_user_agent: str = Field("perpbot-intel/0.1 (market sentiment reader)",
                                      description="User-Agent sent to feeds and Reddit")

    # --- signal bot, collector, pair selection (perpbot signal-bot / collect / pairs) ------------
    signal_exchange: str = Field("mexc", description="ccxt id of the venue whose USDT-M perpetuals the signal bot, "
                                                     "the collector and pair selection read")
    signal_chat_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list, description="chats allowed to use the signal bot (empty: telegram_chat_ids)")
    signal_cooldown: float = Field(30.0, ge=0, le=3600, description="seconds a symbol's answer is reused before "
                                                                    "it is computed again from fresh data")
    signal_max_message_chars: int = Field(3500, ge=200, le=4096, description="longest signal-bot message "
                                                                             "(UTF-16 units, as Telegram counts)")
    signal_scalp_volume_profile: bool = Field(True, description="show POC / HVN / LVN in /scalp")
    signal_explain_volume_profile: bool = Field(True, description="use POC and ATR(1m) in the market explanation")
    signal_candles: int = Field(200, ge=60, le=1000, description="closed candles fetched per timeframe")
    signal_scalp_stop_atr: float = Field(1.5, gt=0, le=50, description="/scalp stop-loss distance, ATR(1m) multiples")
    signal_scalp_take_profit_atr: float = Field(3.0, gt=0, le=100,
                                                description="/scalp take-profit distance, ATR(1m) multiples")
    signal_models: dict[str, Path] = Field(default_factory=dict,
                                           description="coin -> trained model file for the model's call in /signal "
                                                       "(the traded symbol's coin defaults to model_file)")
    collect_symbols: list[str] = Field(["BTC", "ETH", "SOL"], min_length=1, description="symbols perpbot collect "
                                                                                       "records")
    collect_interval: float = Field(300.0, ge=1, le=86400, description="seconds between two collector snapshots")
    collect_dir: Path = Field(Path("data"), description="Parquet store root of the collector")
    pairs_weights: dict[str, float] = Field(
        {"volatility": 1.0, "volume": 1.0, "momentum": 0.5, "trend": 1.0, "funding": -0.5, "oi_change": 0.5,
         "spread": -1.0}, description="factor -> weight of the pair ranking (negative: lower is better)")
    pairs_min_quote_volume: float = Field(5_000_000.0, ge=0, le=1e13, description="minimum 24 h quote volume, USDT")
    pairs_max_spread_bps: float = Field(10.0, gt=0, le=10_000, description="maximum bid/ask spread, basis points")
    pairs_min_listing_days: float = Field(30.0, ge=0, le=10_000, description="minimum days since listing")
    pairs_max_candidates: int = Field(60, ge=1, le=2000, description="most liquid perpetuals whose candles are "
                                                                     "fetched after the ticker filters")

    # --- secrets (environment only) -------------------------------------------------------
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    api_passphrase: SecretStr | None = None
    telegram_token: SecretStr | None = None
    smtp_password: SecretStr | None = None
    api_token: SecretStr | None = Field(None, description="bearer token of the REST API / dashboard")
    coinglass_api_key: SecretStr | None = Field(None, description="CoinGlass API v4 key (PERPBOT_COINGLASS_API_KEY)")
    signal_bot_token: SecretStr | None = Field(None, description="Telegram token of the signal bot "
                                                                 "(PERPBOT_SIGNAL_BOT_TOKEN; default telegram_token)")

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_as_number(cls, value: Any, info: ValidationInfo) -> Any:
        """``leverage = true`` must not become 1: booleans are refused for numeric fields."""
        if isinstance(value, bool) and is_numeric(cls.model_fields[info.field_name].annotation):
            raise ValueError("expected a number, got a boolean")
        return value

    @field_validator(*OPTIONAL_FILES, mode="before")
    @classmethod
    def _none_string(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("", "none"):
            return None
        return value

    @field_validator("features", mode="before")
    @classmethod
    def _feature_groups(cls, value: Any) -> Any:
        return parse_feature_groups(value, FEATURE_GROUPS)

    @field_validator("telegram_chat_ids", "signal_chat_ids", mode="before")
    @classmethod
    def _chat_ids(cls, value: Any) -> Any:
        """A list of integers; from the environment "123,-456", "[123, -456]" or "123"."""
        return parse_chat_ids(value)

    @field_validator("pairs_weights")
    @classmethod
    def _pair_weights(cls, value: dict[str, float]) -> dict[str, float]:
        return check_pair_weights(value)

    @field_validator("email_to", mode="before")
    @classmethod
    def _addresses(cls, value: Any) -> Any:
        return parse_addresses(value)

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("market_type") == "spot":
            if value.count("/") != 1 or ":" in value:
                raise ValueError("not a ccxt spot symbol like 'SOL/IDR'")
        elif value.count("/") != 1 or ":" not in value:
            raise ValueError("not a ccxt linear perpetual symbol like 'SOL/USDT:USDT'")
        return value

    @field_validator("ledger_url")
    @classmethod
    def _ledger_url(cls, value: str | None) -> str | None:
        return check_ledger_url(value)

    @model_validator(mode="after")
    def _check(self) -> "Settings":
        if self.stop_mode == "percent" and self.take_profit <= 0:
            raise ValueError("take_profit must be > 0")
        largest = self.starting_capital * self.leverage
        if self.min_notional > largest:
            raise ValueError(f"min_notional = {self.min_notional:g} USDT is more than the largest position "
                             f"starting_capital x leverage = {largest:g} USDT: no order could ever be placed")
        if any(not 0 <= m <= 5 for m in self.ev_margin_grid):
            raise ValueError(f"ev_margin_grid values must be percents in [0, 5], got {self.ev_margin_grid}")
        if self.market_type == "futures" and (not self.symbol.count("/") == 1 or ":" not in self.symbol):
            raise ValueError(f"symbol {self.symbol!r} is not a ccxt linear perpetual symbol like 'SOL/USDT:USDT'")
        check_venue_market(self.exchange, self.market_type)
        return self

    def public_dict(self) -> dict[str, Any]:
        """Settings as JSON-safe values for logs, the ledger, the API and reports: secrets left
        out, and the password of ``ledger_url`` (or of any other URL) masked as ``***``."""
        data = self.model_dump(mode="json", exclude=set(SECRET_FIELDS))
        return {k: mask_url(v) if isinstance(v, str) and ("://" in v or k == "ledger_url") else v
                for k, v in data.items()}

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)


def format_validation_error(exc: ValidationError) -> str:
    """First error of a pydantic ValidationError of :class:`Settings` as one safe line
    (see :func:`perpbot.config_sources.format_validation_error`)."""
    return _format_error(exc, Settings.model_fields, SECRET_FIELDS)


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build :class:`Settings` from file, environment and ``overrides`` (None values ignored).

    Raises:
        ConfigError: unreadable file, a secret in the file, an unknown key in the file or an
            unknown ``PERPBOT_*`` variable, or any invalid value (one line, no secret value).
    """
    env_keys = env_settings_names(Settings.model_fields)
    path = config_file or os.environ.get("PERPBOT_CONFIG")
    file_values: dict[str, Any] = {}
    if path:
        file_values = read_toml(Path(path), Settings.model_fields, SECRET_FIELDS)
    elif Path(DEFAULT_CONFIG_FILE).exists():
        file_values = read_toml(Path(DEFAULT_CONFIG_FILE), Settings.model_fields, SECRET_FIELDS)
    clean = {k: v for k, v in overrides.items() if v is not None}
    # Environment beats the file: drop file keys that the environment sets.
    merged = {k: v for k, v in file_values.items() if k not in env_keys}
    merged.update(clean)
    try:
        settings = Settings(**merged)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
    except Exception as exc:  # pydantic-settings SettingsError: an environment value it cannot parse
        raise ConfigError(redact_text(f"config error: {exc}")) from None
    for key in SECRET_FIELDS:
        secret = getattr(settings, key)
        remember(secret.get_secret_value() if secret is not None else None)
    return settings
