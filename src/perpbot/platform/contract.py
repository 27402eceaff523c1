"""The TradePolicy contract (``contracts/TradePolicy.vy``): compiled by ``vyper``, deployed and
called through ``web3.py``.

* :func:`compile_policy` compiles the shipped Vyper source (ABI + bytecode), once per process.
* :meth:`PolicyChain.in_process` deploys it on an in-process EVM (``eth-tester`` with ``py-evm``
  through web3's ``EthereumTesterProvider``): for tests and one-machine installs; its state
  lives as long as the process. :meth:`PolicyChain.connect` uses a real chain — only when an RPC
  URL is set (``PERPBOT_CHAIN_RPC_URL``, with the contract address and the owner's private key
  from the environment).
* :meth:`PolicyChain.validate` is a contract call (no transaction) made before an order is sent:
  it raises :class:`PolicyRefused` with the contract's revert reason ("leverage above the policy
  maximum" ...). :meth:`PolicyChain.record_fill` stores a fill's hash with the journal chain's
  head (storage + ``FillRecorded`` event); :meth:`PolicyChain.anchor` records the head alone.

Units on chain: fixed point with 18 decimals (``WAD``): qty (base asset), price and notional
(USDT), leverage (x); the price band in basis points of the oracle median.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from functools import lru_cache
from importlib import resources
from typing import Any

from perpbot.platform.db import MONEY_CONTEXT, to_money

WAD = 10**18
SOURCE = "TradePolicy.vy"


class PolicyRefused(Exception):
    """The contract refused an order; ``reason`` is its revert reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ChainError(RuntimeError):
    """The chain could not be reached or a transaction failed for another reason than the policy."""


def to_wad(value: Any) -> int:
    """Decimal / int / decimal string -> int with 18 implied decimals (exact). Raises ValueError if < 0."""
    d = to_money(value)
    if d < 0:
        raise ValueError(f"{value} is negative: the contract takes unsigned amounts")
    with localcontext(MONEY_CONTEXT):
        return int(d.scaleb(18))


def from_wad(value: int) -> Decimal:
    with localcontext(MONEY_CONTEXT):
        return Decimal(value).scaleb(-18)


@lru_cache(maxsize=1)
def compile_policy() -> tuple[list, str]:
    """(ABI, deploy bytecode hex) of the shipped TradePolicy.vy, compiled by the ``vyper`` package."""
    from vyper.compiler import compile_code

    source = resources.files("perpbot.platform").joinpath("contracts", SOURCE).read_text(encoding="utf-8")
    out = compile_code(source, contract_path=SOURCE, output_formats=["abi", "bytecode"])
    return out["abi"], out["bytecode"]


def _revert_reason(exc: BaseException) -> str | None:
    """The revert reason of a failed call/transaction (web3's ContractLogicError from a node,
    eth-tester's TransactionFailed in process); None for any other error."""
    from web3.exceptions import ContractLogicError

    kinds: list[type] = [ContractLogicError]
    try:
        from eth_tester.exceptions import TransactionFailed

        kinds.append(TransactionFailed)
    except ImportError:  # pragma: no cover - eth-tester comes with the platform extra
        pass
    if not isinstance(exc, tuple(kinds)):
        return None
    text = getattr(exc, "message", None) or (str(exc.args[0]) if exc.args else str(exc))
    prefix = "execution reverted: "
    return text[len(prefix):] if text.startswith(prefix) else text


@dataclass
class Policy:
    """The validation policy: allowed ccxt symbols, leverage cap (x), notional caps (USDT) and the
    price band around the oracle median (basis points). ``user_max_notional``: per-user caps
    (user id -> USDT) over ``default_max_notional``."""

    symbols: list[str] = field(default_factory=lambda: ["SOL/USDT:USDT"])
    max_leverage: Decimal = Decimal(5)
    default_max_notional: Decimal = Decimal(10_000)
    price_band_bps: int = 50
    user_max_notional: dict[int, Decimal] = field(default_factory=dict)


class PolicyChain:
    """A deployed TradePolicy contract and the account that owns it. Calls are serialized (eth-tester
    is not thread-safe)."""

    def __init__(self, w3: Any, address: str, owner: str) -> None:
        abi, _ = compile_policy()
        self.w3 = w3
        self.contract = w3.eth.contract(address=address, abi=abi)
        self.owner = owner
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ construction
    @classmethod
    def deploy(cls, w3: Any, owner: str, policy: Policy) -> "PolicyChain":
        """Deploy a new TradePolicy from ``owner`` and apply ``policy``."""
        abi, bytecode = compile_policy()
        factory = w3.eth.contract(abi=abi, bytecode=bytecode)
        tx = factory.constructor(to_wad(policy.max_leverage), to_wad(policy.default_max_notional),
                                 int(policy.price_band_bps)).transact({"from": owner})
        receipt = w3.eth.wait_for_transaction_receipt(tx)
        chain = cls(w3, receipt.contractAddress, owner)
        for symbol in policy.symbols:
            chain.set_symbol(symbol, True)
        for user_id, cap in policy.user_max_notional.items():
            chain._transact("set_user_max_notional", int(user_id), to_wad(cap))
        return chain

    @classmethod
    def in_process(cls, policy: Policy | None = None) -> "PolicyChain":
        """Deploy on a fresh in-process EVM (eth-tester + py-evm); the first test account owns it."""
        from web3 import EthereumTesterProvider, Web3

        w3 = Web3(EthereumTesterProvider())
        return cls.deploy(w3, w3.eth.accounts[0], policy or Policy())

    @classmethod
    def connect(cls, rpc_url: str, address: str, private_key: str) -> "PolicyChain":
        """A contract already deployed on a real chain at ``address``, owned by ``private_key``'s
        account (transactions are signed locally). Raises :class:`ChainError` when unreachable."""
        from eth_account import Account
        from web3 import HTTPProvider, Web3
        from web3.middleware import SignAndSendRawMiddlewareBuilder

        w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": 10}))
        if not w3.is_connected():
            raise ChainError("the chain RPC URL does not answer")
        account = Account.from_key(private_key)
        w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(account), layer=0)
        return cls(w3, Web3.to_checksum_address(address), account.address)

    # ------------------------------------------------------------------ calls
    def _transact(self, fn: str, *args: Any) -> str:
        with self._lock:
            try:
                tx = getattr(self.contract.functions, fn)(*args).transact({"from": self.owner})
                receipt = self.w3.eth.wait_for_transaction_receipt(tx, timeout=60)
            except Exception as exc:
                reason = _revert_reason(exc)
                if reason is not None:
                    raise PolicyRefused(reason) from None
                raise ChainError(f"{fn} failed: {type(exc).__name__}") from None
        if receipt.status != 1:
            raise ChainError(f"{fn} transaction reverted")
        return receipt.transactionHash.hex()

    def _call(self, fn: str, *args: Any) -> Any:
        with self._lock:
            try:
                return getattr(self.contract.functions, fn)(*args).call()
            except Exception as exc:
                reason = _revert_reason(exc)
                if reason is not None:
                    raise PolicyRefused(reason) from None
                raise ChainError(f"{fn} failed: {type(exc).__name__}") from None

    def validate(self, user_id: int, symbol: str, qty: Any, price: Any, leverage: Any, oracle_median: Any) -> None:
        """Check an order against the policy (a call, no gas). Raises :class:`PolicyRefused` with the
        contract's reason. ``qty`` base asset, ``price``/``oracle_median`` USDT, ``leverage`` x."""
        self._call("validate", int(user_id), symbol, to_wad(qty), to_wad(price), to_wad(leverage),
                   to_wad(oracle_median))

    def record_fill(self, fill_hash: str, seq: int, head_hash: str) -> str:
        """Record a fill's link hash with the chain head (seq, hash hex); returns the transaction hash."""
        return self._transact("record_fill", bytes.fromhex(fill_hash), int(seq), bytes.fromhex(head_hash))

    def anchor(self, seq: int, head_hash: str) -> str:
        """Record the journal chain's head (seq, hash hex) without a fill."""
        return self._transact("anchor", int(seq), bytes.fromhex(head_hash))

    def head(self) -> tuple[int, str]:
        """(seq, hash hex) last recorded on chain; (0, 64 zeros) before the first record."""
        return int(self._call("head_seq")), bytes(self._call("head_hash")).hex()

    def fill_seq(self, fill_hash: str) -> int:
        """Chain seq recorded with ``fill_hash`` (0 = never recorded)."""
        return int(self._call("fill_seq", bytes.fromhex(fill_hash)))

    def set_symbol(self, symbol: str, allowed: bool) -> str:
        return self._transact("set_symbol", symbol, bool(allowed))

    def set_policy(self, *, max_leverage: Any = None, default_max_notional: Any = None,
                   price_band_bps: int | None = None, user_max_notional: dict[int, Any] | None = None) -> None:
        """Change parts of the policy (owner transactions); None leaves a part as it is."""
        if max_leverage is not None:
            self._transact("set_max_leverage", to_wad(max_leverage))
        if default_max_notional is not None:
            self._transact("set_default_max_notional", to_wad(default_max_notional))
        if price_band_bps is not None:
            self._transact("set_price_band_bps", int(price_band_bps))
        for user_id, cap in (user_max_notional or {}).items():
            self._transact("set_user_max_notional", int(user_id), to_wad(cap))

    def policy(self) -> dict[str, Any]:
        """The policy as the contract holds it: caps (Decimal), band (bps), allowed symbols (from the
        SymbolChanged events), fills recorded, chain head."""
        with self._lock:
            logs = self.contract.events.SymbolChanged.get_logs(from_block=0)
        allowed: dict[str, bool] = {}
        for log in logs:
            allowed[log["args"]["symbol"]] = bool(log["args"]["allowed"])
        seq, head = self.head()
        return {"contract": self.contract.address, "symbols": sorted(s for s, ok in allowed.items() if ok),
                "max_leverage": from_wad(self._call("max_leverage")),
                "default_max_notional": from_wad(self._call("default_max_notional")),
                "price_band_bps": int(self._call("price_band_bps")), "fills_recorded": int(self._call("fill_count")),
                "head_seq": seq, "head_hash": head}

    def max_notional_of(self, user_id: int) -> Decimal:
        return from_wad(self._call("max_notional_of", int(user_id)))
