"""The platform's REST endpoints over real HTTP (uvicorn on 127.0.0.1): login and tokens, roles
(a viewer cannot trade or withdraw; nobody reads another user's wallet), the operator token and
platform credentials kept apart, idempotent deposits, concurrent withdrawals, orders through the
oracle guard and the TradePolicy contract, journal verification, and the OpenAPI documentation
of every new endpoint."""

from __future__ import annotations

import threading
from decimal import Decimal

import httpx
import pytest

from _platform_api import ALICE_MARKERS, OPERATOR_TOKEN, live_platform, login, spec_app
from _platform_db import BACKENDS

from perpbot.api.platform_auth import is_platform_path

P = "/api/v1"


@pytest.fixture(scope="module", params=BACKENDS)
def live(request, tmp_path_factory, sol5m_path, sol_funding_path, sol_mark8h_path):
    with live_platform(request.param, tmp_path_factory.mktemp("pfapi"),
                       (sol5m_path, sol_funding_path, sol_mark8h_path), sol5m_path) as lp:
        yield lp


def call(live, method, path, user=None, **kw):
    headers = live["headers"][user] if user else kw.pop("headers", {})
    return httpx.request(method, live["base"] + P + path, headers=headers, timeout=60, **kw)


def test_login_me_and_credentials_kept_apart(live):
    assert call(live, "GET", "/auth/me", "bob").json() == {"user_id": live["ids"]["bob"], "username": "bob",
                                                           "role": "trader", "via": "jwt"}
    r = call(live, "GET", "/auth/me", headers={"Authorization": f"Bearer {live['alice_key']}"})
    assert r.json()["via"] == "api_key" and r.json()["username"] == "alice"
    assert call(live, "GET", "/wallet").status_code == 401
    assert call(live, "GET", "/wallet", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}).status_code == 401
    assert call(live, "GET", "/status", "root").status_code == 401  # a platform token does not open operator routes
    assert call(live, "GET", "/status", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}).status_code == 200
    bad = httpx.post(live["base"] + P + "/auth/token", data={"username": "bob", "password": "wrong password!"})
    assert bad.status_code == 401 and bad.json() == {"detail": "wrong user name or password"}
    assert is_platform_path("/api/v1/wallet") and is_platform_path("/api/v1/user/orders")
    assert not is_platform_path("/api/v1/orders") and not is_platform_path("/api/v1/walletx")


def test_a_viewer_cannot_trade_or_withdraw(live):
    body = {"amount": "1", "idempotency_key": "vic-1"}
    for path, payload in (("/wallet/withdraw", body), ("/wallet/deposit", body),
                          ("/user/orders", {"symbol": "SOL/USDT:USDT", "side": "buy", "qty": "0.1", "leverage": "2"}),
                          ("/chain/validate", {"symbol": "SOL/USDT:USDT", "side": "buy", "qty": "0.1",
                                               "leverage": "2", "price": "100"})):
        r = call(live, "POST", path, "vic", json=payload)
        assert r.status_code == 403 and r.json()["detail"] == "this needs the trader role (you are viewer)", path
    assert call(live, "GET", "/wallet", "vic").json() == {"user_id": live["ids"]["vic"], "balances": []}
    assert call(live, "GET", "/users", "bob").status_code == 403


def test_no_user_reads_another_users_wallet_orders_or_keys(live):
    for user in ("bob", "vic"):
        for path in ("/wallet", "/wallet/balances", "/wallet/transactions", "/user/orders", "/user/stats",
                     "/user/profile", "/auth/api-keys", "/user/exchange-keys"):
            r = call(live, "GET", path, user)
            assert r.status_code in (200, 403), (path, r.text)
            assert not any(m in r.text for m in ALICE_MARKERS), (user, path, r.text)
    mine = call(live, "GET", "/wallet/balances", "alice").json()
    assert mine["balances"][0]["available"] == "777.123456789" and mine["total_usdt"] == "777.123456789"
    keys = call(live, "GET", "/user/exchange-keys", "alice").text
    assert "bitget" in keys and "ALICE-EXCHANGE-KEY" not in keys and "ALICE-SECRET" not in keys
    alice_key_id = call(live, "GET", "/auth/api-keys", "alice").json()["api_keys"][0]["id"]
    assert call(live, "DELETE", f"/auth/api-keys/{alice_key_id}", "bob").status_code == 404  # not bob's to revoke
    assert call(live, "GET", "/auth/me", headers={"Authorization": f"Bearer {live['alice_key']}"}).status_code == 200


def test_deposit_retry_and_twenty_concurrent_withdrawals(live):
    dep = {"amount": "100", "idempotency_key": "bob-seed"}
    first, again = call(live, "POST", "/wallet/deposit", "bob", json=dep), call(live, "POST", "/wallet/deposit", "bob", json=dep)
    assert first.status_code == again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.json()["replayed"] is True
    assert call(live, "POST", "/wallet/deposit", "bob", json={**dep, "amount": "101"}).status_code == 409
    start, codes = threading.Barrier(20), []

    def withdraw(i):
        start.wait()
        codes.append(call(live, "POST", "/wallet/withdraw", "bob", json={"amount": "10", "idempotency_key": f"bw{i}"})
                     .status_code)

    threads = [threading.Thread(target=withdraw, args=(i,)) for i in range(20)]
    [t.start() for t in threads]
    [t.join(120) for t in threads]
    assert sorted(codes) == [200] * 10 + [409] * 10
    assert call(live, "GET", "/wallet", "bob").json()["balances"] == [{"currency": "USDT", "available": "0",
                                                                       "locked": "0"}]
    assert live["platform"].wallet.check_books() == []


def test_orders_through_oracle_and_contract_and_the_journal(live):
    binance, okx = live["venues"]
    assert call(live, "POST", "/wallet/deposit", "alice", json={"amount": "1000", "idempotency_key": "a2"}).status_code == 200
    r = call(live, "GET", "/oracle/SOL/USDT:USDT", "vic")
    assert r.status_code == 200 and r.json()["verdict"] == "pass" and len(r.json()["sources"]) == 5
    assert call(live, "GET", "/oracle/BTC/USDT:USDT", "vic").status_code == 404
    order = {"symbol": "SOL/USDT:USDT", "side": "buy", "qty": "0.5", "leverage": "2", "client_order_id": "api-o1"}
    r = call(live, "POST", "/user/orders", "alice", json=order)
    assert r.status_code == 201, r.text
    o = r.json()
    price = Decimal(repr(live["last"]))
    assert o["status"] == "locked" and Decimal(o["price"]) == price and Decimal(o["margin"]) == price / 4
    r = call(live, "POST", "/user/orders", "alice", json={**order, "leverage": "3", "client_order_id": "api-o2"})
    assert r.status_code == 409 and r.json()["source"] == "profile"  # conservative: 2x
    binance.price = live["last"] * 1.02
    r = call(live, "POST", "/user/orders", "alice", json={**order, "client_order_id": "api-o3"})
    binance.price = live["last"]
    assert r.status_code == 409 and r.json()["source"] == "oracle" and "200.0 bps" in r.json()["detail"]
    r = call(live, "POST", "/chain/validate", "alice", json={**order, "leverage": "4", "price": str(price)})
    assert r.json() == {"valid": False, "reason": "leverage above the policy maximum"}
    assert call(live, "POST", "/chain/record", "alice").status_code == 403
    rec = call(live, "POST", "/chain/record", "root")
    assert rec.status_code == 200
    v = call(live, "GET", "/journal/verify", "root").json()
    assert v["ok"] and v["anchored_seq"] == rec.json()["seq"] == v["head_seq"]
    assert [x["status"] for x in call(live, "GET", "/user/orders", "alice").json()["orders"]] == \
        ["refused", "refused", "locked"]
    assert call(live, "GET", "/user/orders", "bob").json()["orders"] == []


def test_the_admin_changes_the_contract_policy(live):
    r = call(live, "PUT", "/chain/policy", "root", json={"max_leverage": "2.5", "price_band_bps": 80,
                                                         "allow_symbols": ["ETH/USDT:USDT", "ETH/USDT:USDT"]})
    assert r.status_code == 200, r.text
    p = r.json()
    assert (p["max_leverage"], p["price_band_bps"], p["symbols"]) == ("2.5", 80, ["ETH/USDT:USDT", "SOL/USDT:USDT"])
    assert call(live, "PUT", "/chain/policy", "bob", json={"max_leverage": "10"}).status_code == 403
    assert call(live, "PUT", "/chain/policy", "root", json={"deny_symbols": ["x"] * 6}).status_code == 422
    r = call(live, "PUT", "/chain/policy", "root", json={"max_leverage": "3", "price_band_bps": 50,
                                                         "deny_symbols": ["ETH/USDT:USDT"]})
    assert r.json()["symbols"] == ["SOL/USDT:USDT"] and r.json()["max_leverage"] == "3"


def test_openapi_documents_every_platform_endpoint():
    spec = spec_app().openapi()
    ops = {(m.upper(), p): op for p, item in spec["paths"].items() for m, op in item.items() if is_platform_path(p)}
    assert len(ops) == 30 and len(ops) + 21 == sum(len(i) for i in spec["paths"].values())
    for (method, path), op in ops.items():
        assert op.get("summary"), (method, path)
        ok = [c for c in op["responses"] if c.startswith("2")]
        assert len(ok) == 1, (method, path)
        if ok[0] != "204":
            schema = op["responses"][ok[0]]["content"]["application/json"]["schema"]
            assert "$ref" in schema, (method, path, schema)
        if path != "/api/v1/auth/token":
            assert op["security"] == [{"PlatformBearer": []}] and {"401", "403"} <= set(op["responses"]), (method, path)
    assert spec["components"]["securitySchemes"]["PlatformBearer"]["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"


def test_admin_manages_users_and_cannot_lock_themselves_out(live):
    vic = live["ids"]["vic"]
    r = call(live, "PATCH", f"/users/{vic}", "root", json={"risk_profile": "moderate"})
    assert r.status_code == 200 and r.json()["risk_profile"] == "moderate"
    assert call(live, "GET", "/user/profile", "vic").json()["risk_profile"]["max_leverage"] == 3.0
    r = call(live, "PATCH", f"/users/{live['ids']['root']}", "root", json={"role": "trader"})
    assert r.status_code == 409
    assert call(live, "PATCH", "/users/999999", "root", json={"disabled": True}).status_code == 404
    actions = [e["action"] for e in call(live, "GET", "/audit?limit=1000", "root").json()["events"]]
    assert {"user_created", "login_ok", "deposit", "api_key_created", "exchange_key_stored", "user_changed"} <= set(actions)
