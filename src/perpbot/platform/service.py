"""The platform wired together: one :class:`Platform` object the API (and later the CLI and the
bot) use, configured by the main :class:`perpbot.config.Settings` (its platform group,
:class:`perpbot.config_values.PlatformSettings`: ``PERPBOT_TOKEN_TTL_S`` ... or the config file).

Secrets come only from the environment: ``PERPBOT_MASTER_KEY`` (Fernet key(s) of the exchange-key
store), ``PERPBOT_JWT_SECRET`` (>= 32 characters), ``PERPBOT_CHAIN_PRIVATE_KEY`` (owner of the
TradePolicy contract on a real chain). The real chain is used only when ``chain_rpc_url``
(``PERPBOT_CHAIN_RPC_URL``) is set, with ``chain_contract``; otherwise the caller may pass an
in-process :class:`~perpbot.platform.contract.PolicyChain` or none.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from perpbot.config import Settings, load_settings
from perpbot.platform.access import Access
from perpbot.platform.contract import PolicyChain
from perpbot.platform.db import open_engine
from perpbot.platform.keystore import KeyStore, master_key_from_env
from perpbot.platform.oracle import OracleGuard
from perpbot.platform.profiles import Profiles
from perpbot.platform.stats import user_stats
from perpbot.platform.trading import TradeDesk
from perpbot.platform.wallet import Wallet

#: ``currency -> price in USDT`` (Decimal), or None when unknown. USDT itself is 1.
PriceFn = Callable[[str], Decimal | None]


def oracle_from_settings(settings: Settings, venue: tuple[str, Any], engine: Any = None,
                         clients: dict[str, Any] | None = None) -> OracleGuard:
    """An :class:`OracleGuard` for ``venue`` (name, ccxt client) with the settings' N / M / K and one
    public ccxt client per ``oracle_venues`` id (``clients`` overrides any of them, e.g. for tests).

    Raises:
        ValueError: an ``oracle_venues`` entry that is not a ccxt exchange id.
    """
    from perpbot.exchange.clients import make_price_client, unknown_exchange

    others: dict[str, Any] = {}
    for vid in settings.oracle_venues:
        if clients and vid in clients:
            others[vid] = clients[vid]
        elif unknown_exchange(vid) is None:
            others[vid] = make_price_client(vid)
        else:
            raise ValueError(f"oracle venue {vid!r} is not a ccxt exchange id")
    return OracleGuard(venue, others, max_deviation_bps=settings.oracle_max_deviation_bps,
                       max_age_s=settings.oracle_max_age_s, min_sources=settings.oracle_min_sources, engine=engine)


def _usdt_only(currency: str) -> Decimal | None:
    return Decimal(1) if currency in ("USDT", "USD") else None


class Platform:
    """Every platform service over one database.

    Args:
        url: SQLAlchemy URL (the ledger's database; migrated to the newest schema here).
        settings: the main :class:`~perpbot.config.Settings` (default: :func:`~perpbot.config.load_settings`,
            i.e. the config file and the environment).
        oracle: an :class:`OracleGuard` (injected: it holds ccxt clients), or None.
        policy: a :class:`PolicyChain`, or None to connect to ``chain_rpc_url`` when set.
        prices: ``currency -> USDT price`` for ``/wallet/balances`` (default: USDT only).
        sender: ``order -> FillReport | None`` used to send orders (None: orders stay ``locked``).
        oracle_symbols: the ccxt symbols ``GET /api/v1/oracle/{symbol}`` answers for.

    Raises:
        KeyStoreError: no / malformed ``PERPBOT_MASTER_KEY``; ValueError: JWT secret missing or short;
        ConfigError (a ValueError): invalid settings when none are passed.
    """

    def __init__(self, url: str, settings: Settings | None = None, *, oracle: OracleGuard | None = None,
                 policy: PolicyChain | None = None, prices: PriceFn | None = None, sender: Any = None,
                 oracle_symbols: list[str] | None = None, hasher: Any = None) -> None:
        self.settings = settings if settings is not None else load_settings()
        s = self.settings
        fernet = master_key_from_env({"PERPBOT_MASTER_KEY": s.master_key.get_secret_value() if s.master_key else ""})
        if s.jwt_secret is None:
            raise ValueError("set PERPBOT_JWT_SECRET (at least 32 characters) to run the platform")
        self.engine = open_engine(url)
        self.access = Access(self.engine, s.jwt_secret.get_secret_value(), token_ttl_s=s.token_ttl_s,
                             max_failures=s.login_max_failures, lockout_s=s.login_lockout_s,
                             rate_limit=s.login_rate_limit, hasher=hasher)
        self.keys = KeyStore(self.engine, fernet)
        self.wallet = Wallet(self.engine)
        self.profiles = Profiles(self.engine)
        if policy is None and s.chain_rpc_url:
            if not (s.chain_contract and s.chain_private_key):
                raise ValueError("PERPBOT_CHAIN_RPC_URL needs PERPBOT_CHAIN_CONTRACT and PERPBOT_CHAIN_PRIVATE_KEY")
            policy = PolicyChain.connect(s.chain_rpc_url.get_secret_value(), s.chain_contract,
                                         s.chain_private_key.get_secret_value())
        self.policy = policy
        self.oracle = oracle
        self.oracle_symbols = list(oracle_symbols or ["SOL/USDT:USDT"])
        self.prices: PriceFn = prices or _usdt_only
        self.sender = sender
        self.desk = TradeDesk(self.engine, self.wallet, self.profiles, policy=policy, oracle=oracle,
                              currency=s.currency)

    def start(self) -> list[dict[str, Any]]:
        """Startup reconciliation of orders a crash left between locking margin and the fill."""
        return self.desk.reconcile(self.settings.lock_timeout_s)

    def stats(self, user_id: int) -> dict[str, Any]:
        return user_stats(self.engine, user_id, self.settings.currency)

    def close(self) -> None:
        if self.oracle is not None:
            self.oracle.close()
        self.engine.dispose()
