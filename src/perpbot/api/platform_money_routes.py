"""Platform endpoints, part 2: the caller's wallet and orders, the oracle guard, the TradePolicy
contract (policy, validate, record) and the journal check. Every wallet and order route acts on
the caller's own account only; there is no user id parameter to read anyone else's.

Money moves only with an ``idempotency_key``: a retried request with the same key and body
returns the first result (``replayed: true``) and moves nothing; the same key with another body
is 409.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from sqlalchemy.orm import Session

from perpbot.api import platform_models as pm
from perpbot.api.platform_auth import ERRORS, PREFIX, client_of, role_dependency
from perpbot.platform import chain as journal
from perpbot.platform.access import Principal
from perpbot.platform.db import MONEY_CONTEXT
from perpbot.platform.contract import PolicyRefused
from perpbot.platform.ledger_models import PlatformOrder
from perpbot.platform.trading import OrderRequest

MONEY_ERRORS = {409: {"description": "insufficient funds, or the idempotency key was used for another request"},
                422: {"description": "invalid amount, currency or key"}}
NO_CHAIN = "no TradePolicy contract is configured (set PERPBOT_CHAIN_RPC_URL, or start the platform with one)"


def _entry_out(e) -> dict:
    return {"id": e.id, "kind": e.kind, "currency": e.currency, "amount": e.amount, "order_ref": e.order_ref,
            "memo": e.memo, "created_at": e.created_at, "replayed": e.replayed}


def _order_out(o: PlatformOrder) -> dict:
    return {k: getattr(o, k) for k in ("id", "client_order_id", "symbol", "side", "qty", "price", "leverage", "margin",
                                       "status", "reason", "created_at")}


def money_router(platform) -> APIRouter:
    """Routes of the wallet, orders, oracle, contract and journal."""
    role = role_dependency(platform)
    r = APIRouter(prefix=PREFIX, responses=ERRORS)
    viewer, trader, admin = role("viewer"), role("trader"), role("admin")

    def need_chain():
        if platform.policy is None:
            raise HTTPException(503, NO_CHAIN)
        return platform.policy

    # ------------------------------------------------------------------ wallet
    @r.get("/wallet", response_model=pm.WalletOut, tags=["platform: wallet"], summary="My balances")
    def wallet(who: Principal = Depends(viewer)):
        bal = platform.wallet.balances(who.user_id)
        return {"user_id": who.user_id, "balances": [{"currency": c, **v} for c, v in bal.items()]}

    @r.get("/wallet/balances", response_model=pm.WalletBalancesOut, tags=["platform: wallet"],
           summary="My balances valued in USDT")
    def balances(who: Principal = Depends(viewer)):
        rows, total, unpriced = [], Decimal(0), []
        with localcontext(MONEY_CONTEXT):
            for cur, v in platform.wallet.balances(who.user_id).items():
                rows.append(_valued(cur, v))
                if rows[-1]["usdt_value"] is None:
                    unpriced.append(cur)
                else:
                    total += rows[-1]["usdt_value"]
        return {"user_id": who.user_id, "balances": rows, "total_usdt": total, "unpriced": unpriced}

    def _valued(cur: str, v: dict) -> dict:
        amount = v["available"] + v["locked"]
        price = platform.prices(cur)
        value = None if price is None else (amount * price).quantize(Decimal("1e-18"))
        return {"currency": cur, **v, "total": amount, "usdt_price": price, "usdt_value": value}

    @r.post("/wallet/deposit", response_model=pm.EntryOut, tags=["platform: wallet"], summary="Deposit",
            responses=MONEY_ERRORS)
    def deposit(body: pm.MoveIn, request: Request, who: Principal = Depends(trader)):
        e = platform.wallet.deposit(who.user_id, body.currency, body.amount, body.idempotency_key, body.memo)
        if not e.replayed:
            platform.access.audit("deposit", actor_id=who.user_id, target=f"wallet_entry:{e.id}",
                                  client=client_of(request), detail={"currency": e.currency, "amount": str(e.amount)})
        return _entry_out(e)

    @r.post("/wallet/withdraw", response_model=pm.EntryOut, tags=["platform: wallet"],
            summary="Withdraw (checks the available balance under a row lock)", responses=MONEY_ERRORS)
    def withdraw(body: pm.MoveIn, request: Request, who: Principal = Depends(trader)):
        e = platform.wallet.withdraw(who.user_id, body.currency, body.amount, body.idempotency_key, body.memo)
        if not e.replayed:
            platform.access.audit("withdraw", actor_id=who.user_id, target=f"wallet_entry:{e.id}",
                                  client=client_of(request), detail={"currency": e.currency, "amount": str(e.amount)})
        return _entry_out(e)

    @r.get("/wallet/transactions", response_model=pm.EntriesOut, tags=["platform: wallet"],
           summary="My last movements (newest first)")
    def transactions(limit: int = Query(50, ge=1, le=1000), who: Principal = Depends(viewer)):
        return {"user_id": who.user_id, "transactions": [_entry_out(e) for e in
                                                         platform.wallet.transactions(who.user_id, limit)]}

    # ------------------------------------------------------------------ orders
    @r.post("/user/orders", response_model=pm.PlatformOrderOut, status_code=201, tags=["platform: trading"],
            summary="Place an order: profile, oracle and contract checks, margin locked, sent when a venue is set",
            responses={409: {"description": "refused (profile, oracle, policy or wallet) with the reason"}})
    def place_order(body: pm.OrderIn, who: Principal = Depends(trader)):
        try:
            order = platform.desk.open_order(who.user_id, OrderRequest(
                body.symbol, body.side, body.qty, body.leverage, body.price, body.client_order_id))
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        except sa.exc.IntegrityError:
            raise HTTPException(409, "client_order_id already used") from None
        if platform.sender is not None:
            platform.desk.send(order.id, platform.sender)
        with Session(platform.engine) as s:
            return _order_out(s.get(PlatformOrder, order.id))

    @r.get("/user/orders", response_model=pm.PlatformOrdersOut, tags=["platform: trading"], summary="My orders")
    def my_orders(limit: int = Query(50, ge=1, le=1000), who: Principal = Depends(viewer)):
        with Session(platform.engine) as s:
            rows = s.execute(sa.select(PlatformOrder).where(PlatformOrder.user_id == who.user_id)
                             .order_by(PlatformOrder.id.desc()).limit(limit)).scalars().all()
        return {"orders": [_order_out(o) for o in rows]}

    # ------------------------------------------------------------------ oracle
    @r.get("/oracle/{symbol:path}", response_model=pm.OracleOut, tags=["platform: oracle"],
           summary="Cross-check a symbol's price now (sources, median, verdict; not recorded)",
           responses={404: {"description": "the oracle does not watch this symbol"},
                      503: {"description": "no oracle configured"}})
    def oracle(symbol: str = Path(..., max_length=64), _who: Principal = Depends(viewer)):
        if platform.oracle is None:
            raise HTTPException(503, "no oracle guard is configured")
        allowed = platform.oracle_symbols
        if symbol not in allowed:
            raise HTTPException(404, f"the oracle watches {', '.join(allowed)}, not {symbol!r}")
        return platform.oracle.check(symbol, record=False).as_dict()

    # ------------------------------------------------------------------ contract and journal
    @r.get("/chain/policy", response_model=pm.PolicyOut, tags=["platform: chain"],
           summary="The TradePolicy contract's policy", responses={503: {"description": NO_CHAIN}})
    def get_policy(_who: Principal = Depends(viewer)):
        return need_chain().policy()

    @r.put("/chain/policy", response_model=pm.PolicyOut, tags=["platform: chain"], summary="Change the policy (admin)",
           responses={503: {"description": NO_CHAIN}})
    def put_policy(body: pm.PolicyIn, request: Request, who: Principal = Depends(admin)):
        chain = need_chain()
        chain.set_policy(max_leverage=body.max_leverage, default_max_notional=body.default_max_notional,
                         price_band_bps=body.price_band_bps)
        for sym in dict.fromkeys(body.allow_symbols):
            chain.set_symbol(sym, True)
        for sym in dict.fromkeys(body.deny_symbols):
            chain.set_symbol(sym, False)
        platform.access.audit("policy_changed", actor_id=who.user_id, target="chain:policy",
                              client=client_of(request), detail=body.model_dump(mode="json"))
        return chain.policy()

    @r.post("/chain/validate", response_model=pm.ValidateOut, tags=["platform: chain"],
            summary="Check an order against the contract (a call: nothing is sent or locked)",
            responses={503: {"description": NO_CHAIN}})
    def validate(body: pm.ValidateIn, who: Principal = Depends(trader)):
        chain = need_chain()
        try:
            chain.validate(who.user_id, body.symbol, body.qty, body.price, body.leverage,
                           body.oracle_median or body.price)
        except PolicyRefused as exc:
            return {"valid": False, "reason": exc.reason}
        return {"valid": True, "reason": None}

    @r.post("/chain/record", response_model=pm.AnchorOut, tags=["platform: chain"],
            summary="Record the journal chain's head on the contract (admin)",
            responses={409: {"description": "nothing new to record"}, 503: {"description": NO_CHAIN}})
    def record(request: Request, who: Principal = Depends(admin)):
        chain = need_chain()
        seq, head = journal.head(platform.engine)
        if seq <= chain.head()[0]:
            raise HTTPException(409, f"the chain head (link {seq}) is already recorded")
        tx = chain.anchor(seq, head)
        platform.access.audit("chain_anchored", actor_id=who.user_id, target=f"chain:{seq}", client=client_of(request))
        return {"seq": seq, "hash": head, "transaction": tx}

    @r.get("/journal/verify", response_model=pm.JournalOut, tags=["platform: chain"],
           summary="Verify the journal hash chain and its on-chain anchor (admin)")
    def verify(_who: Principal = Depends(admin)):
        anchor = platform.policy.head() if platform.policy is not None else None
        return journal.verify_journal(platform.engine, anchor).as_dict()

    return r
