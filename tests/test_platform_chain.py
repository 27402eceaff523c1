"""Trade validation and the on-chain record: the TradePolicy Vyper contract compiled by `vyper`
and deployed on an in-process EVM (eth-tester + py-evm through web3), orders refused with the
contract's revert reason, fill hashes recorded on chain, and verify_journal catching a changed
trade price, a deleted fill and an inserted row (each named), and a consistently rewritten chain
through the on-chain anchor. Prices are real SOLUSDT 5m closes."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from _platform_db import db_url, engine, make_user  # noqa: F401  (fixtures)

from perpbot.platform import chain as journal
from perpbot.platform.contract import Policy, PolicyChain, PolicyRefused, compile_policy, from_wad, to_wad
from perpbot.platform.ledger_models import ChainLink, PlatformFill, PlatformOrder, WalletEntry
from perpbot.platform.profiles import Profiles
from perpbot.platform.trading import FillReport, OrderRefused, OrderRequest, TradeDesk
from perpbot.platform.wallet import Wallet

D = Decimal
SYMBOL = "SOL/USDT:USDT"


@pytest.fixture(scope="module")
def prices(sol5m):
    """Three real closes (USDT, exact decimal strings as the file gives them)."""
    closes = sol5m["close"].to_numpy()
    return [D(str(closes[i])) for i in (1000, 1100, 1200)]


@pytest.fixture
def policy():
    return PolicyChain.in_process(Policy(symbols=[SYMBOL], max_leverage=D(3), default_max_notional=D(5000),
                                         price_band_bps=50))


def test_the_contract_compiles_deploys_and_holds_the_policy(policy):
    abi, bytecode = compile_policy()
    names = {x.get("name") for x in abi}
    assert {"validate", "record_fill", "anchor", "set_symbol", "FillRecorded"} <= names and bytecode.startswith("0x")
    assert len(policy.w3.eth.get_code(policy.contract.address)) > 1000
    p = policy.policy()
    assert p["symbols"] == [SYMBOL] and p["max_leverage"] == D(3) and p["default_max_notional"] == D(5000)
    assert p["price_band_bps"] == 50 and p["head_seq"] == 0 and p["fills_recorded"] == 0
    assert to_wad("1.5") == 1_500_000_000_000_000_000 and from_wad(to_wad("0.000000000000000001")) == D("1e-18")


def test_orders_breaking_the_policy_are_refused_with_the_contract_reason(policy, prices):
    p = prices[0]
    policy.validate(7, SYMBOL, D("10"), p, D(3), p)  # at the caps: accepted (no exception)
    cases = [((7, SYMBOL, D("10"), p, D("3.5"), p), "leverage above the policy maximum"),
             ((7, "BTC/USDT:USDT", D("1"), p, D(2), p), "symbol not allowed"),
             ((7, SYMBOL, D("100"), p, D(2), p), "notional above the user's maximum"),
             ((7, SYMBOL, D("1"), p * D("1.006"), D(2), p), "price outside the oracle band"),
             ((7, SYMBOL, D("1"), p, D("0.5"), p), "leverage below 1x")]
    for args, reason in cases:
        with pytest.raises(PolicyRefused) as err:
            policy.validate(*args)
        assert err.value.reason == reason
    # a per-user cap overrides the default
    policy.set_policy(user_max_notional={7: D(50)})
    with pytest.raises(PolicyRefused, match="notional above the user's maximum"):
        policy.validate(7, SYMBOL, D("1"), p, D(2), p)
    policy.validate(8, SYMBOL, D("1"), p, D(2), p)


def _history(engine, policy, prices):
    """One user: deposit, an order that fills and is settled, a second order refused by the policy."""
    wallet = Wallet(engine)
    profiles = Profiles(engine)
    uid = make_user(engine, "trader1")
    with engine.begin() as conn:  # the aggressive profile allows 5x: the contract's 3x must be what refuses
        conn.execute(sa.text("UPDATE platform_users SET risk_profile = 'aggressive' WHERE id = :u"), {"u": uid})
    wallet.deposit(uid, "USDT", 1000, "dep-1")
    desk = TradeDesk(engine, wallet, profiles, policy=policy)
    entry, exit_ = prices[0], prices[1]
    order = desk.open_order(uid, OrderRequest(SYMBOL, "buy", D("2"), D("3"), price=entry, client_order_id="ord-1"))
    assert order.margin == (D(2) * entry / 3).quantize(D("1e-18"))
    t0 = prices and order.created_at
    fee = (D("0.0006") * 2 * entry).quantize(D("1e-18"))
    fill = desk.send(order.id, lambda o: FillReport(o.qty, o.price, fee, t0 + timedelta(seconds=1), "v-1"))
    with pytest.raises(OrderRefused) as err:
        desk.open_order(uid, OrderRequest(SYMBOL, "buy", D("1"), D("4"), price=entry, client_order_id="ord-2"))
    assert (err.value.source, err.value.reason) == ("policy", "leverage above the policy maximum")
    net = desk.settle(order.id, exit_, fee=(D("0.0006") * 2 * exit_).quantize(D("1e-18")))
    return uid, wallet, fill, net, fee


def test_fills_are_recorded_on_chain_and_the_journal_verifies(engine, policy, prices):
    uid, wallet, fill, net, entry_fee = _history(engine, policy, prices)
    gross = 2 * (prices[1] - prices[0])
    assert net == gross - (D("0.0006") * 2 * prices[1]).quantize(D("1e-18"))
    assert wallet.balances(uid)["USDT"] == {"available": 1000 + net - entry_fee, "locked": D(0)}
    with engine.connect() as c:
        refused = c.execute(sa.select(PlatformOrder.status, PlatformOrder.reason)
                            .where(PlatformOrder.client_order_id == "ord-2")).one()
        link = c.execute(sa.select(ChainLink).where(ChainLink.table_name == "platform_fills",
                                                    ChainLink.row_id == fill.id)).one()
    assert refused == ("refused", "policy: leverage above the policy maximum")
    assert policy.fill_seq(link.hash) == link.seq  # the fill's link hash is on chain, with its seq
    anchored = policy.head()
    assert anchored == (link.seq, link.hash) == (link.seq, journal.link_at(engine, link.seq))
    logs = policy.contract.events.FillRecorded.get_logs(from_block=0)
    assert [(bytes(x["args"]["fill_hash"]).hex(), x["args"]["seq"]) for x in logs] == [(link.hash, link.seq)]
    report = journal.verify_journal(engine, anchor=anchored)
    # deposit, order 1, lock, fill, entry fee, refused order 2, release, pnl, exit fee: 9 links
    assert report.ok and report.links == 9 and report.anchored_seq == link.seq, report.problems


def test_verify_journal_names_a_changed_price_a_deleted_fill_and_an_inserted_row(engine, policy, prices):
    _uid, _wallet, fill, _net, _fee = _history(engine, policy, prices)
    anchor = policy.head()
    assert journal.verify_journal(engine, anchor).ok

    def problems():
        return [(p.kind, p.table, p.row_id) for p in journal.verify_journal(engine, anchor).problems]

    with engine.begin() as c:  # 1. a changed trade price
        c.execute(sa.update(PlatformFill).where(PlatformFill.id == fill.id).values(price=fill.price + D("0.01")))
    assert problems() == [("altered", "platform_fills", fill.id)]
    with engine.begin() as c:
        c.execute(sa.update(PlatformFill).where(PlatformFill.id == fill.id).values(price=fill.price))
    assert problems() == []
    with engine.begin() as c:  # 2. a deleted fill
        c.execute(sa.delete(PlatformFill).where(PlatformFill.id == fill.id))
    assert problems() == [("deleted", "platform_fills", fill.id)]
    with engine.begin() as c:
        c.execute(sa.insert(PlatformFill).values(id=fill.id, order_id=fill.order_id, time=fill.time, qty=fill.qty,
                                                 price=fill.price, fee=fill.fee, venue_fill_id=fill.venue_fill_id))
    assert problems() == []
    with engine.begin() as c:  # 3. an inserted row (a deposit that never happened)
        new_id = c.execute(sa.insert(WalletEntry).values(
            user_id=_uid, idempotency_key="forged", request_hash="0" * 64, kind="deposit", currency="USDT",
            amount=D(1_000_000), created_at=fill.time).returning(WalletEntry.id)).scalar_one()
    assert problems() == [("inserted", "wallet_entries", new_id)]
    with engine.begin() as c:
        c.execute(sa.delete(WalletEntry).where(WalletEntry.id == new_id))
    assert problems() == []
    # 4. the fill changed and the whole chain recomputed consistently: only the on-chain anchor sees it
    with engine.begin() as c:
        c.execute(sa.update(PlatformFill).where(PlatformFill.id == fill.id).values(price=fill.price * 2))
    from sqlalchemy.orm import Session
    with Session(engine) as s, s.begin():
        prev = journal.GENESIS
        for link in s.execute(sa.select(ChainLink).order_by(ChainLink.seq)).scalars():
            row = s.get(journal.TABLES[link.table_name], link.row_id)
            link.row_digest = journal.row_digest(s, link.table_name, row)
            link.prev_hash = prev
            link.hash = prev = journal.link_hash(prev, link.seq, link.table_name, link.row_id, link.row_digest)
    assert journal.verify_journal(engine).ok  # locally consistent again ...
    assert problems() == [("anchor", None, None)]  # ... but not what the contract recorded
