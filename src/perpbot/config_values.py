"""Parsing and checks of single setting values (the bodies of :class:`perpbot.config.Settings`'
field validators; each raises ValueError with a one-line message that never repeats a secret), and two
groups of its fields: :class:`ExecutionSettings` and :class:`PlatformSettings`."""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, Field, SecretStr

from perpbot.masking import remember

#: the factors ``perpbot pairs`` can weight (``pairs_weights``)
PAIR_FACTORS = ("volatility", "volume", "momentum", "trend", "funding", "oi_change", "spread")

#: ccxt ids of the venue modules of :mod:`perpbot.exchange` by the markets perpbot trades there: spot
#: (``market_type = "spot"``) and USDT-M linear perpetuals (``"futures"``); a test keeps them equal
#: to the registry :data:`perpbot.exchange.clients.VENUES`.
SPOT_VENUES = ("indodax", "tokocrypto")
PERPETUAL_VENUES = ("bitget", "binanceusdm", "bybit", "okx", "mexc", "weex")


def check_venue_market(exchange: str, market_type: str) -> None:
    """Raise ValueError when venue ``exchange`` does not trade ``market_type`` in perpbot: a spot
    venue with "futures", or a perpetual venue with "spot" (other ccxt ids are not checked)."""
    if market_type == "futures" and exchange in SPOT_VENUES:
        raise ValueError(f"exchange {exchange!r} is a spot venue: set market_type = \"spot\" and a spot symbol "
                         f"like 'SOL/IDR' (linear-perpetual venues: {', '.join(PERPETUAL_VENUES)})")
    if market_type == "spot" and exchange in PERPETUAL_VENUES:
        raise ValueError(f"exchange {exchange!r} trades linear perpetuals in perpbot, not spot: market_type "
                         f"\"spot\" needs a spot venue ({', '.join(SPOT_VENUES)})")


def parse_feature_groups(value: Any, known: tuple[str, ...]) -> list[str]:
    """Group names (a list, or "candles,htf" from the environment), in ``known`` order.
    Raises ValueError for an unknown group or none."""
    if isinstance(value, str):
        value = value.strip().removeprefix("[").removesuffix("]").replace('"', "").replace("'", "").split(",")
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"expected a list of feature groups from {', '.join(known)}")
    wanted = [str(v).strip() for v in value if str(v).strip()]
    bad = [v for v in wanted if v not in known]
    if bad or not wanted:
        what = f"unknown feature group {bad[0]!r}" if bad else "no feature group selected"
        raise ValueError(f"{what}; choose from {', '.join(known)}")
    return [g for g in known if g in wanted]


def check_pair_weights(value: dict[str, float]) -> dict[str, float]:
    """Factor -> weight of the pair selector; raises ValueError for an unknown factor or all-zero weights."""
    bad = sorted(set(value) - set(PAIR_FACTORS))
    if bad:
        raise ValueError(f"unknown factor(s) {', '.join(bad)}; known: {', '.join(PAIR_FACTORS)}")
    if not any(w != 0 for w in value.values()):
        raise ValueError("at least one factor needs a non-zero weight")
    return value


def parse_addresses(value: Any) -> Any:
    """E-mail addresses: a list, or "a@x, b@y" / '["a@x"]' from the environment."""
    if isinstance(value, str):
        text = value.strip().removeprefix("[").removesuffix("]")
        value = [p.strip().strip("\"'") for p in text.split(",") if p.strip()]
    return value


def check_ledger_url(value: str | None) -> str | None:
    """A SQLAlchemy URL whose dialect is installed (None / blank: the default SQLite file); its
    password is remembered for masking. The message never repeats the URL."""
    if value is None or not value.strip():
        return None
    from sqlalchemy.engine import make_url

    try:
        url = make_url(value)
    except Exception:
        raise ValueError("not a database URL; expected e.g. sqlite:///runs/perpbot.db or "
                         "postgresql+psycopg://user@host/db") from None
    remember(url.password if isinstance(url.password, str) else None)
    try:
        url.get_dialect()
    except Exception:
        raise ValueError(f"unknown database dialect {url.drivername!r}; use sqlite:/// or "
                         "postgresql+psycopg://") from None
    return value


#: Entry-point group of model plug-ins (:mod:`perpbot.ml.model_plugins`).
MODEL_ENTRY_POINT_GROUP = "perpbot.models"
#: The built-in models (:data:`perpbot.ml.models.MODEL_NAMES`; a test keeps them equal).
ModelName = Literal["logreg", "random_forest", "xgboost", "lightgbm", "ensemble", "lstm"]
BUILTIN_MODELS: tuple[str, ...] = get_args(ModelName)


def is_model_file_ref(name: str) -> bool:
    """True when ``name`` names a model plug-in file (``FILE.py`` or ``FILE.py:Factory``)."""
    return name.endswith(".py") or ".py:" in name


def model_entry_point_names() -> list[str]:
    """Names of the installed model plug-ins (entry points of :data:`MODEL_ENTRY_POINT_GROUP`), sorted."""
    from importlib.metadata import entry_points

    return sorted({ep.name for ep in entry_points(group=MODEL_ENTRY_POINT_GROUP)})


def unknown_model_message(name: str, builtins: tuple[str, ...], plugins: list[str]) -> str:
    """One line for a model name that is neither built in, nor an installed plug-in, nor a file."""
    close = difflib.get_close_matches(name, [*builtins, *plugins], n=1, cutoff=0.6)
    suggest = f" (did you mean {close[0]!r}?)" if close else ""
    return (f"unknown model {name!r}{suggest}; valid names: {', '.join(builtins)}; "
            f"plug-ins ({MODEL_ENTRY_POINT_GROUP} entry points): {', '.join(plugins) or 'none installed'}; "
            "or a model file FILE.py[:Factory]")


def check_model(value: Any, builtins: tuple[str, ...] = BUILTIN_MODELS) -> str:
    """A built-in model name, an installed plug-in's entry-point name (built-in names win), or a
    plug-in file reference (loaded, and its file checked, only when a model is built). Raises
    ValueError (:func:`unknown_model_message`) otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a model name or a model file FILE.py[:Factory]")
    name = value.strip()
    if name in builtins or is_model_file_ref(name):
        return name
    plugins = model_entry_point_names()  # read only for a name that is not built in
    if name in plugins:
        return name
    raise ValueError(unknown_model_message(name, builtins, plugins))


#: The type of the ``model`` setting: a built-in or a plug-in (:func:`check_model`).
ModelRef = Annotated[str, BeforeValidator(lambda value: check_model(value))]


class ExecutionSettings(BaseModel):
    """How entries are sent (fields of :class:`perpbot.config.Settings`, kept here to keep that file small).

    ``entry_order = "limit"``: a post-only limit entry at the signal candle's close minus (buy) / plus
    (sell) ``limit_offset`` percent, resting ``limit_timeout_bars`` candles; it fills only in a candle
    that trades through its price, at that price, with the maker fee (:func:`perpbot.sim.kernel._work_limit`);
    unfilled, it is cancelled or (``limit_fallback = "market"``) replaced by a market entry at the next
    open. Backtest, paper and live (:meth:`perpbot.bot.live_orders.LiveOrders._limit_step`)."""

    # --- execution (entry orders) -------------------------------------------------------------
    entry_order: Literal["market", "limit"] = Field("market", description="market | limit (post-only)")
    limit_offset: float = Field(0.05, gt=0, le=5, description="percent from the signal candle's close (limit entries)")
    limit_timeout_bars: int = Field(1, ge=1, le=1000, description="candles a limit entry rests before it expires")
    limit_fallback: Literal["cancel", "market"] = Field("cancel", description="an unfilled limit entry: cancel | "
                                                                           "market (at the next open)")


#: The multi-user platform's secrets (environment only, like every secret; never printed). The chain's
#: RPC URL is one: hosted RPC URLs carry their API key (``https://…/v2/<key>``).
PLATFORM_SECRET_FIELDS = ("master_key", "jwt_secret", "chain_rpc_url", "chain_private_key")


class PlatformSettings(BaseModel):
    """The multi-user platform's settings (fields of :class:`perpbot.config.Settings`, kept here to keep
    that file small; read by :class:`perpbot.platform.service.Platform`). Environment variables
    ``PERPBOT_<NAME>`` (``PERPBOT_TOKEN_TTL_S`` ...) or the config file; the secrets
    (:data:`PLATFORM_SECRET_FIELDS`) only from the environment."""

    # --- multi-user platform (perpbot serve --platform) --------------------------------------
    master_key: SecretStr | None = Field(None, description="Fernet key(s) of the exchange-key store, comma "
                                                           "separated, the first encrypts (PERPBOT_MASTER_KEY)")
    jwt_secret: SecretStr | None = Field(None, description="HS256 key of access tokens, >= 32 characters "
                                                           "(PERPBOT_JWT_SECRET)")
    token_ttl_s: int = Field(900, ge=60, le=86_400, description="access-token lifetime, seconds")
    login_max_failures: int = Field(5, ge=1, le=100, description="wrong passwords before a lockout")
    login_lockout_s: int = Field(900, ge=1, le=86_400, description="lockout length, seconds")
    login_rate_limit: int = Field(20, ge=1, le=10_000, description="login attempts per client per minute")
    oracle_max_deviation_bps: float = Field(50.0, gt=0, le=10_000, description="oracle guard: largest deviation "
                                                                              "from the median, basis points (N)")
    oracle_max_age_s: float = Field(30.0, gt=0, le=3600, description="oracle guard: oldest usable quote, seconds (M)")
    oracle_min_sources: int = Field(3, ge=1, le=20, description="oracle guard: fresh independent sources needed (K)")
    oracle_venues: list[str] = Field(["binanceusdm", "okx"], description="ccxt ids of the other venues the oracle "
                                                                       "asks (environment: '[\"okx\"]')")
    lock_timeout_s: float = Field(60.0, gt=0, le=86_400, description="start-up reconciliation: margin locks older "
                                                                     "than this many seconds are released")
    currency: str = Field("USDT", pattern=r"^[A-Z0-9]{1,16}$", description="margin currency of the platform's "
                                                                          "wallets and orders (USDT)")
    chain_rpc_url: SecretStr | None = Field(None, description="RPC URL of a real chain with the TradePolicy "
                                                              "contract (PERPBOT_CHAIN_RPC_URL; unset: no chain)")
    chain_contract: str | None = Field(None, description="TradePolicy contract address on that chain")
    chain_private_key: SecretStr | None = Field(None, description="owner key of the contract "
                                                                  "(PERPBOT_CHAIN_PRIVATE_KEY)")
