"""Request/response models of the platform endpoints (:mod:`perpbot.api.platform_routes`).

Money is sent and returned as decimal strings (``"10.5"``; exact, never a binary float; a JSON
number is accepted on input), up to 18 decimal places; quantities in the base asset, prices in
USDT, leverage in x, fractions (not percents), times ISO-8601 UTC.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StrictBool, StrictInt

def _plain(d: Decimal) -> str:
    return format(d.normalize(), "f")


#: An exact amount in a response: a plain decimal string without exponent or trailing zeros ("100.5", "0").
Dec = Annotated[Decimal, PlainSerializer(_plain, return_type=str, when_used="json")]
Role = Literal["admin", "trader", "viewer"]
ProfileName = Literal["conservative", "moderate", "aggressive"]
Amount = Annotated[Decimal, Field(gt=0, lt=Decimal("1e20"), max_digits=38, decimal_places=18,
                                  description="decimal string, > 0, up to 18 decimal places")]
Currency = Annotated[str, Field(pattern=r"^[A-Z0-9]{1,16}$", description="currency code, e.g. USDT")]
IdemKey = Annotated[str, Field(pattern=r"^[\x21-\x7e]{1,128}$",
                               description="idempotency key: a retry with the same key moves money once")]
Symbol = Annotated[str, Field(min_length=3, max_length=64, pattern=r"^[A-Z0-9]+/[A-Z0-9]+(:[A-Z0-9]+)?$",
                              description="ccxt unified symbol, e.g. SOL/USDT:USDT")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds")


class MeOut(BaseModel):
    user_id: int
    username: str
    role: Role
    via: Literal["jwt", "api_key"]


class UserIn(Strict):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.-]{3,64}$")
    password: str = Field(min_length=10, max_length=256)
    role: Role = "trader"
    risk_profile: ProfileName = "conservative"


class UserPatch(Strict):
    role: Role | None = None
    disabled: StrictBool | None = None
    risk_profile: ProfileName | None = None


class UserOut(BaseModel):
    id: int
    username: str
    role: Role
    risk_profile: ProfileName
    disabled: bool
    created_at: datetime


class UsersOut(BaseModel):
    users: list[UserOut]


class AuditOut(BaseModel):
    id: int
    time: datetime
    actor_id: int | None
    action: str
    target: str | None
    client: str | None
    detail: dict[str, Any] | None


class AuditListOut(BaseModel):
    events: list[AuditOut]


class ApiKeyIn(Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")
    role: Role | None = Field(None, description="default: the owner's role; never above it")


class ApiKeyOut(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="first characters of the key, to recognise it")
    role: Role
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreatedOut(ApiKeyOut):
    key: str = Field(description="the key itself: shown this once, store it now")


class ApiKeysOut(BaseModel):
    api_keys: list[ApiKeyOut]


class ExchangeKeyIn(Strict):
    api_key: str = Field(min_length=1, max_length=512)
    secret: str = Field(min_length=1, max_length=512)
    password: str | None = Field(None, min_length=1, max_length=512, description="passphrase (Bitget, OKX)")
    label: str = Field("default", pattern=r"^[A-Za-z0-9 _.-]{1,64}$")


class ExchangeKeyOut(BaseModel):
    """What is shown of a stored credential: never the key or the secret."""

    id: int
    exchange: str
    label: str
    created_at: datetime
    rotated_at: datetime | None


class ExchangeKeysOut(BaseModel):
    exchange_keys: list[ExchangeKeyOut]


class RiskProfileOut(BaseModel):
    name: ProfileName
    min_confidence: float = Field(description="probability a model call must reach")
    max_position_frac: float = Field(description="fraction of the available balance posted as margin")
    max_leverage: float = Field(description="x")


class RiskProfilesOut(BaseModel):
    profiles: list[RiskProfileOut]


class RiskProfileIn(Strict):
    min_confidence: float | None = Field(None, ge=0.34, le=1.0)
    max_position_frac: float | None = Field(None, gt=0, le=1.0)
    max_leverage: float | None = Field(None, ge=1, le=125)


class ProfileOut(BaseModel):
    user_id: int
    username: str
    role: Role
    risk_profile: RiskProfileOut


class ProfileIn(Strict):
    risk_profile: ProfileName


class StatsOut(BaseModel):
    currency: str
    total_trades: int
    total_profit: Dec = Field(description="sum of net results (PnL - fees - funding), USDT")
    best_trade: Dec | None
    win_rate: float | None = Field(description="fraction of trades with a net result > 0")
    days_active: int = Field(description="distinct UTC days with a wallet movement or an order")


class WalletBalanceOut(BaseModel):
    currency: str
    available: Dec
    locked: Dec = Field(description="margin held for orders")


class WalletOut(BaseModel):
    user_id: int
    balances: list[WalletBalanceOut]


class ValuedBalanceOut(WalletBalanceOut):
    total: Dec
    usdt_price: Dec | None = Field(description="price of one unit in USDT (None: no price)")
    usdt_value: Dec | None


class WalletBalancesOut(BaseModel):
    user_id: int
    balances: list[ValuedBalanceOut]
    total_usdt: Dec = Field(description="sum of the valued balances (unpriced currencies left out)")
    unpriced: list[str]


class MoveIn(Strict):
    currency: Currency = "USDT"
    amount: Amount
    idempotency_key: IdemKey
    memo: str | None = Field(None, max_length=256, pattern=r"^[^\x00-\x1f\x7f]*$", description="one line")


class EntryOut(BaseModel):
    id: int
    kind: str
    currency: str
    amount: Dec
    order_ref: str | None
    memo: str | None
    created_at: datetime
    replayed: bool = Field(False, description="true: this key was used before; nothing moved this time")


class EntriesOut(BaseModel):
    user_id: int
    transactions: list[EntryOut]


class SourceOut(BaseModel):
    name: str
    price: float | None
    timestamp_ms: int | None
    age_s: float | None
    deviation_bps: float | None
    fresh: bool
    error: str | None


class OracleOut(BaseModel):
    symbol: str
    venue: str
    venue_price: float | None
    median: float | None
    max_deviation_bps: float | None
    verdict: Literal["pass", "veto"]
    reasons: list[str]
    sources: list[SourceOut]
    time: datetime
    limits: dict[str, float]


class PolicyOut(BaseModel):
    contract: str
    symbols: list[str]
    max_leverage: Dec
    default_max_notional: Dec = Field(description="USDT")
    price_band_bps: int
    fills_recorded: int
    head_seq: int
    head_hash: str


class PolicyIn(Strict):
    max_leverage: Decimal | None = Field(None, ge=1, le=125, max_digits=38, decimal_places=18)
    default_max_notional: Decimal | None = Field(None, ge=0, lt=Decimal("1e20"), max_digits=38, decimal_places=18)
    price_band_bps: StrictInt | None = Field(None, ge=0, le=10_000)
    allow_symbols: list[Symbol] = Field(default_factory=list, max_length=5, description="one transaction each")
    deny_symbols: list[Symbol] = Field(default_factory=list, max_length=5, description="one transaction each")


class OrderIn(Strict):
    symbol: Symbol
    side: Literal["buy", "sell"]
    qty: Amount
    leverage: Decimal = Field(ge=1, le=125, max_digits=38, decimal_places=18)
    price: Amount | None = Field(None, description="reference price, USDT (default: the oracle's venue price)")
    client_order_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")


class ValidateIn(OrderIn):
    price: Amount
    oracle_median: Amount | None = Field(None, description="default: the oracle's median, else the price")


class ValidateOut(BaseModel):
    valid: bool
    reason: str | None = Field(description="the contract's revert reason when not valid")


class PlatformOrderOut(BaseModel):
    id: int
    client_order_id: str
    symbol: str
    side: str
    qty: Dec
    price: Dec
    leverage: Dec
    margin: Dec = Field(description="qty x price / leverage, USDT, locked in the wallet")
    status: str
    reason: str | None
    created_at: datetime


class PlatformOrdersOut(BaseModel):
    orders: list[PlatformOrderOut]


class AnchorOut(BaseModel):
    seq: int
    hash: str
    transaction: str


class ProblemOut(BaseModel):
    kind: Literal["altered", "deleted", "inserted", "broken", "anchor"]
    table: str | None
    row_id: int | None
    seq: int | None
    detail: str


class JournalOut(BaseModel):
    ok: bool
    links: int
    head_seq: int
    head_hash: str
    anchored_seq: int | None
    anchored_hash: str | None
    problems: list[ProblemOut]
