"""Property-based fuzz of every platform operation from the API's own OpenAPI schema
(schemathesis 4.x: examples, coverage and random fuzzing), once per role — viewer, trader, admin —
over real HTTP: no request, valid or not, may get a 5xx; no response to bob or the viewer may carry
any of alice's data (wallet, keys, API keys, name), and none to the admin outside the user list
and the audit log; a viewer never moves money or places an order. Runs on PostgreSQL when
PERPBOT_TEST_POSTGRES_URL is set, else on a SQLite file."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from _platform_api import ALICE_MARKERS, live_platform, spec_app

SPEC = spec_app().openapi()
PLATFORM = r"^/api/v1/(auth|user|users|audit|risk-profiles|wallet|oracle|chain|journal)(/|$)"
schema = schemathesis.openapi.from_dict(SPEC).include(path_regex=PLATFORM)
schema.config.generation.update(with_security_parameters=False)  # every call sends the role's token
negative = schemathesis.openapi.from_dict(SPEC).include(method="PUT", path="/api/v1/chain/policy")
negative.config.generation.update(with_security_parameters=False, modes=[GenerationMode.NEGATIVE])
FUZZ = settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                database=None)
RESULTS: dict[str, dict[str, set[int]]] = {}
ADMIN_MAY_SEE = ("/api/v1/users", "/api/v1/users/{user_id}", "/api/v1/audit")  # user management


@pytest.fixture(scope="module")
def live(tmp_path_factory, sol5m_path, sol_funding_path, sol_mark8h_path):
    backend = "postgresql" if os.environ.get("PERPBOT_TEST_POSTGRES_URL") else "sqlite"
    with live_platform(backend, tmp_path_factory.mktemp("pffuzz"), (sol5m_path, sol_funding_path, sol_mark8h_path),
                       sol5m_path) as lp:
        yield lp


def no_cross_user_read(user):
    def check(ctx, response, case):
        if user == "root" and case.path in ADMIN_MAY_SEE:
            return None
        text = response.text
        leaked = [m for m in ALICE_MARKERS if m in text]
        assert not leaked, f"{user} got alice's data {leaked} from {case.method} {case.path}"
        return None
    return check


def viewer_moves_nothing(ctx, response, case):
    if case.method == "POST" and case.path in ("/api/v1/wallet/deposit", "/api/v1/wallet/withdraw",
                                               "/api/v1/user/orders", "/api/v1/chain/validate"):
        # 403 for a valid body; an unparsable or invalid one may be refused first (400 / 422): never a 2xx
        assert response.status_code in (400, 403, 422), f"viewer got {response.status_code} from {case.path}"
    return None


def run(case, live, user, extra=()):
    response = case.call_and_validate(base_url=live["base"], headers=live["headers"][user],
                                      checks=[not_a_server_error, no_cross_user_read(user), *extra])
    RESULTS.setdefault(user, {}).setdefault(case.operation.label, set()).add(response.status_code)


# The roles run in this order (pytest keeps the file order): the admin's fuzz may disable users.
@schema.parametrize()
@FUZZ
def test_viewer_fuzz(case, live):
    run(case, live, "vic", [viewer_moves_nothing])


@schema.parametrize()
@FUZZ
def test_trader_fuzz(case, live):
    run(case, live, "bob")


@schema.exclude(method="PUT", path="/api/v1/chain/policy").parametrize()
@FUZZ
def test_admin_fuzz(case, live):
    """Every operation but the policy change (one EVM transaction per field: test_platform_api covers it)."""
    run(case, live, "root")


@negative.parametrize()
@FUZZ
def test_admin_invalid_policy_changes_are_4xx(case, live):
    response = case.call_and_validate(base_url=live["base"], headers=live["headers"]["root"],
                                      checks=[not_a_server_error])
    assert 400 <= response.status_code < 500, (repr(case.body), response.status_code)
    RESULTS.setdefault("root", {}).setdefault(case.operation.label, set()).add(response.status_code)


def test_the_fuzz_reached_every_operation_and_left_alice_alone(live):
    """Guards the fuzz itself: every role reached every platform operation and got the answers the
    API gives; alice's wallet is what she deposited."""
    if len(RESULTS) < 3:
        pytest.skip("run the whole module: the fuzz tests above fill RESULTS")
    for user, by_op in RESULTS.items():
        assert len(by_op) == 30, (user, sorted(by_op))
        assert max(max(codes) for codes in by_op.values()) < 500
    seen = {u: set().union(*ops.values()) for u, ops in RESULTS.items()}
    assert {200, 401, 403, 422} <= seen["vic"] and 403 in RESULTS["vic"]["POST /api/v1/wallet/withdraw"]
    assert {200, 422} <= seen["bob"] and 200 in RESULTS["bob"]["POST /api/v1/wallet/deposit"]
    assert {200, 201, 404, 422} <= seen["root"]
    pf = live["platform"]
    assert pf.wallet.balances(live["ids"]["alice"])["USDT"] == {"available": Decimal("777.123456789"),
                                                                "locked": Decimal(0)}
    assert pf.wallet.balances(live["ids"]["vic"]) == {} and pf.wallet.check_books() == []
