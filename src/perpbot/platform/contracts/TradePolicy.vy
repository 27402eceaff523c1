# pragma version ~=0.4.3
"""
@title TradePolicy
@notice perpbot's trade validation policy and fill record. The owner (the platform operator's
        key) sets the policy; anyone can call validate() (a view: it reverts with the reason
        when an order breaks the policy); only the owner records fills and anchors the
        journal's hash-chain head.
@dev Units: qty, price, leverage, notional and oracle median are fixed-point with 18
     decimals (1e18 = 1; qty in base asset, prices and notional in USDT, leverage in x);
     the price band is in basis points of the oracle median. Symbols are keyed by
     keccak256 of their ccxt symbol ("SOL/USDT:USDT").
"""

WAD: constant(uint256) = 10 ** 18
BPS: constant(uint256) = 10000

event PolicyChanged:
    what: String[32]
    value: uint256

event SymbolChanged:
    symbol: String[64]
    allowed: bool

event FillRecorded:
    fill_hash: indexed(bytes32)
    seq: uint256
    chain_head: bytes32

event ChainAnchored:
    seq: uint256
    chain_head: bytes32

owner: public(address)
allowed_symbol: public(HashMap[bytes32, bool])
max_leverage: public(uint256)
default_max_notional: public(uint256)
user_max_notional: public(HashMap[uint256, uint256])
price_band_bps: public(uint256)

fill_seq: public(HashMap[bytes32, uint256])
fill_count: public(uint256)
head_seq: public(uint256)
head_hash: public(bytes32)


@deploy
def __init__(max_leverage: uint256, default_max_notional: uint256, price_band_bps: uint256):
    self.owner = msg.sender
    self.max_leverage = max_leverage
    self.default_max_notional = default_max_notional
    self.price_band_bps = price_band_bps


@internal
def _only_owner():
    assert msg.sender == self.owner, "only the owner"


@external
def set_symbol(symbol: String[64], allowed: bool):
    self._only_owner()
    self.allowed_symbol[keccak256(symbol)] = allowed
    log SymbolChanged(symbol=symbol, allowed=allowed)


@external
def set_max_leverage(new_value: uint256):
    self._only_owner()
    assert new_value >= WAD, "max leverage below 1x"
    self.max_leverage = new_value
    log PolicyChanged(what="max_leverage", value=new_value)


@external
def set_default_max_notional(new_value: uint256):
    self._only_owner()
    self.default_max_notional = new_value
    log PolicyChanged(what="default_max_notional", value=new_value)


@external
def set_user_max_notional(user_id: uint256, new_value: uint256):
    self._only_owner()
    self.user_max_notional[user_id] = new_value
    log PolicyChanged(what="user_max_notional", value=new_value)


@external
def set_price_band_bps(new_value: uint256):
    self._only_owner()
    self.price_band_bps = new_value
    log PolicyChanged(what="price_band_bps", value=new_value)


@view
@external
def max_notional_of(user_id: uint256) -> uint256:
    cap: uint256 = self.user_max_notional[user_id]
    if cap == 0:
        return self.default_max_notional
    return cap


@view
@external
def validate(user_id: uint256, symbol: String[64], qty: uint256, price: uint256, leverage: uint256,
             oracle_median: uint256) -> bool:
    assert self.allowed_symbol[keccak256(symbol)], "symbol not allowed"
    assert qty > 0, "quantity must be positive"
    assert leverage >= WAD, "leverage below 1x"
    assert leverage <= self.max_leverage, "leverage above the policy maximum"
    notional: uint256 = qty * price // WAD
    cap: uint256 = self.user_max_notional[user_id]
    if cap == 0:
        cap = self.default_max_notional
    assert notional <= cap, "notional above the user's maximum"
    assert oracle_median > 0, "no oracle median"
    diff: uint256 = 0
    if price > oracle_median:
        diff = price - oracle_median
    else:
        diff = oracle_median - price
    assert diff * BPS <= oracle_median * self.price_band_bps, "price outside the oracle band"
    return True


@external
def record_fill(fill_hash: bytes32, seq: uint256, chain_head: bytes32):
    self._only_owner()
    assert self.fill_seq[fill_hash] == 0, "fill already recorded"
    assert seq > self.head_seq, "chain head must advance"
    self.fill_count += 1
    self.fill_seq[fill_hash] = seq
    self.head_seq = seq
    self.head_hash = chain_head
    log FillRecorded(fill_hash=fill_hash, seq=seq, chain_head=chain_head)


@external
def anchor(seq: uint256, chain_head: bytes32):
    self._only_owner()
    assert seq > self.head_seq, "chain head must advance"
    self.head_seq = seq
    self.head_hash = chain_head
    log ChainAnchored(seq=seq, chain_head=chain_head)
