"""The platform wallet (perpbot.platform.wallet) on SQLite and PostgreSQL: balanced double-entry
movements, idempotency keys, row locks against concurrent overdrafts, and a hypothesis state
machine over random movements that keeps every journal balanced and no balance negative."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from _platform_db import db_url, engine, make_user  # noqa: F401  (fixtures)

from perpbot.platform.chain import verify_journal
from perpbot.platform.ledger_models import WalletAccount, WalletEntry, WalletLine
from perpbot.platform.wallet import IdempotencyConflict, InsufficientFunds, Wallet, WalletError

D = Decimal


def lines_of(engine, entry_id):
    with engine.connect() as conn:
        rows = conn.execute(sa.select(WalletAccount.kind, WalletLine.amount).join(WalletAccount)
                            .where(WalletLine.entry_id == entry_id).order_by(WalletLine.id)).all()
    return [(k, a) for k, a in rows]


def test_movements_are_balanced_entries_with_exact_amounts(engine):
    w = Wallet(engine)
    uid = make_user(engine, "alice")
    dep = w.deposit(uid, "USDT", "100.000000000000000001", "dep-1")
    assert lines_of(engine, dep.id) == [("external", D("-100.000000000000000001")),
                                        ("available", D("100.000000000000000001"))]
    w.lock(uid, "USDT", D("12.5"), "lock-1", order_ref="o-1")
    w.settle(uid, "USDT", "close-1", order_ref="o-1", margin=D("12.5"), pnl=D("-3.25"), fee=D("0.0375"),
             funding=D("-0.01"))
    # 100.000000000000000001 - 3.25 - 0.0375 + 0.01, worked by hand
    assert w.balances(uid) == {"USDT": {"available": D("96.722500000000000001"), "locked": D("0")}}
    kinds = [e.kind for e in w.transactions(uid, limit=10)]
    assert kinds == ["funding", "fee", "pnl", "release", "lock", "deposit"]
    with engine.connect() as conn:
        contra = dict(conn.execute(sa.select(WalletAccount.kind, WalletAccount.balance)
                                   .where(WalletAccount.user_id == uid)).all())
    assert contra == {"available": D("96.722500000000000001"), "locked": D(0), "external": D("-100.000000000000000001"),
                      "pnl": D("3.25"), "fees": D("0.0375"), "funding": D("-0.01")}
    assert sum(contra.values()) == 0
    assert w.check_books() == []
    assert verify_journal(engine).ok


def test_bad_requests_are_refused_with_one_line(engine):
    w = Wallet(engine)
    uid = make_user(engine, "bob")
    with pytest.raises(TypeError, match="not float"):
        w.deposit(uid, "USDT", 10.0, "k")
    for amount, msg in ((0, "must be > 0"), (-5, "must be > 0")):
        with pytest.raises(WalletError, match=msg):
            w.deposit(uid, "USDT", amount, "k")
    with pytest.raises(WalletError, match="currency"):
        w.deposit(uid, "usdt", 1, "k")
    with pytest.raises(WalletError, match="idempotency key"):
        w.deposit(uid, "USDT", 1, "has space")
    with pytest.raises(InsufficientFunds, match="withdraw of 1 USDT refused: available balance is 0 USDT"):
        w.withdraw(uid, "USDT", 1, "w")
    w.deposit(uid, "USDT", 5, "d")
    with pytest.raises(InsufficientFunds, match="release of 1 USDT refused: locked balance is 0"):
        w.release(uid, "USDT", 1, "r")
    assert w.transactions(uid) and len(w.transactions(uid)) == 1 and w.check_books() == []


def test_twenty_concurrent_withdrawals_of_ten_from_one_hundred(engine):
    w = Wallet(engine)
    uid = make_user(engine, "carol")
    w.deposit(uid, "USDT", 100, "seed")
    start = threading.Barrier(20)
    results: list[str] = []
    lock = threading.Lock()

    def withdraw(i):
        start.wait()
        try:
            w.withdraw(uid, "USDT", 10, f"w-{i}")
            out = "ok"
        except InsufficientFunds:
            out = "refused"
        with lock:
            results.append(out)

    threads = [threading.Thread(target=withdraw, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == ["ok"] * 10 + ["refused"] * 10
    assert w.balances(uid)["USDT"] == {"available": D(0), "locked": D(0)}
    with engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(WalletEntry)
                         .where(WalletEntry.kind == "withdraw")).scalar_one()
    assert n == 10
    assert w.check_books() == [] and verify_journal(engine).ok


def test_a_retried_deposit_moves_money_once(engine):
    w = Wallet(engine)
    uid = make_user(engine, "dave")
    first = w.deposit(uid, "USDT", "25.5", "dep-abc")
    again = w.deposit(uid, "USDT", D("25.50"), "dep-abc")
    assert again.id == first.id and again.replayed and not first.replayed
    # five concurrent retries of one new request: one entry
    start = threading.Barrier(5)
    seen: list[int] = []

    def retry():
        start.wait()
        seen.append(w.deposit(uid, "USDT", 10, "dep-concurrent").id)

    threads = [threading.Thread(target=retry) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(set(seen)) == 1 and len(seen) == 5
    assert w.balances(uid)["USDT"]["available"] == D("35.5")
    with pytest.raises(IdempotencyConflict, match="already used for a different request"):
        w.deposit(uid, "USDT", 26, "dep-abc")
    assert len(w.transactions(uid)) == 2
    # keys are per user: another user may use the same key
    other = make_user(engine, "erin")
    assert w.deposit(other, "USDT", 1, "dep-abc").id != first.id


AMOUNTS = st.decimals(min_value=D("0.000000000000000001"), max_value=D("500"), places=18, allow_nan=False,
                      allow_infinity=False)


def test_random_movements_keep_books_balanced_and_never_negative(engine):
    """Hypothesis state machine: deposits, withdrawals, locks, releases, settlements (PnL, fee,
    funding) in two currencies against a model of the expected balances."""
    w = Wallet(engine)
    counter = iter(range(10**9))

    class WalletMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.uid = make_user(engine, f"hyp{next(counter)}")
            self.model = {c: {"available": D(0), "locked": D(0)} for c in ("USDT", "IDR")}
            self.n = 0

        def key(self):
            self.n += 1
            return f"k{self.n}"

        def attempt(self, fn, cur, changes):
            """Run fn; it must succeed iff the model stays non-negative."""
            after = {k: self.model[cur][k] + d for k, d in changes.items()}
            ok = all(v >= 0 for v in after.values())
            try:
                fn()
            except InsufficientFunds:
                assert not ok, (changes, self.model)
                return
            assert ok, (changes, self.model)
            self.model[cur].update(after)

        @rule(cur=st.sampled_from(["USDT", "IDR"]), a=AMOUNTS)
        def deposit(self, cur, a):
            self.attempt(lambda: w.deposit(self.uid, cur, a, self.key()), cur, {"available": a})

        @rule(cur=st.sampled_from(["USDT", "IDR"]), a=AMOUNTS)
        def withdraw(self, cur, a):
            self.attempt(lambda: w.withdraw(self.uid, cur, a, self.key()), cur, {"available": -a})

        @rule(cur=st.sampled_from(["USDT", "IDR"]), a=AMOUNTS)
        def lock(self, cur, a):
            self.attempt(lambda: w.lock(self.uid, cur, a, self.key()), cur, {"available": -a, "locked": a})

        @rule(cur=st.sampled_from(["USDT", "IDR"]), a=AMOUNTS)
        def release(self, cur, a):
            self.attempt(lambda: w.release(self.uid, cur, a, self.key()), cur, {"available": a, "locked": -a})

        @rule(cur=st.sampled_from(["USDT", "IDR"]), frac=st.integers(0, 4), pnl=st.integers(-300, 300),
              fee=st.integers(-2, 20), funding=st.integers(-10, 10))
        def settle(self, cur, frac, pnl, fee, funding):
            margin = (self.model[cur]["locked"] * frac / 4).quantize(D("1e-18"))
            parts = [margin, D(pnl) / 10, D(fee) / 100, D(funding) / 100]
            if all(p == 0 for p in parts):
                return
            # each part is checked on the running balance: a loss beyond it refuses the whole settlement
            avail, ok = self.model[cur]["available"], True
            for delta in (margin, parts[1], -parts[2], -parts[3]):
                avail += delta
                ok = ok and avail >= 0
            try:
                w.settle(self.uid, cur, self.key(), order_ref="o", margin=margin, pnl=parts[1], fee=parts[2],
                         funding=parts[3])
            except InsufficientFunds:
                assert not ok
                return
            assert ok
            self.model[cur]["locked"] -= margin
            self.model[cur]["available"] = avail

        @invariant()
        def matches_model_and_books(self):
            got = w.balances(self.uid)
            for cur, want in self.model.items():
                assert got.get(cur, {"available": D(0), "locked": D(0)}) == want
            assert w.check_books() == []

    run_state_machine_as_test(WalletMachine, settings=settings(
        max_examples=10, stateful_step_count=20, deadline=None, derandomize=True, database=None,
        suppress_health_check=list(HealthCheck)))
    assert verify_journal(engine).ok


def test_amounts_keep_all_38_digits_and_the_range_is_enforced(engine):
    """Python's default decimal context (28 digits) would round 1e19 + 1e-18; the wallet does not."""
    w = Wallet(engine)
    uid = make_user(engine, "big")
    w.deposit(uid, "USDT", "10000000000000000000", "a")
    w.deposit(uid, "USDT", "0.000000000000000001", "b")
    assert w.balances(uid)["USDT"]["available"] == D("10000000000000000000.000000000000000001")
    w.deposit(uid, "USDT", "89999999999999999999.999999999999999998", "c")
    assert w.balances(uid)["USDT"]["available"] == D("99999999999999999999.999999999999999999")
    with pytest.raises(WalletError, match="would reach 1e20"):
        w.deposit(uid, "USDT", "0.000000000000000001", "d")
    with pytest.raises(ValueError, match=r"outside Numeric\(38, 18\)"):
        w.deposit(uid, "USDT", "1e20", "e")
    assert w.check_books() == [] and verify_journal(engine).ok
