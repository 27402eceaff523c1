"""Property-based fuzz of every REST operation from the API's own OpenAPI schema (schemathesis
4.x: examples, coverage (boundaries: limit=0/1001, run_id=0, wrong types ...) and random fuzzing):
with the token, no request, valid or not, may get a 5xx. Served over real HTTP by uvicorn on
127.0.0.1, over a ledger filled by a real backtest on 5,000 SOL 5m candles."""

from __future__ import annotations


import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from _api_helpers import serving

from perpbot.api import create_app
from perpbot.bot.context import BotContext
from perpbot.bot.control import BotControl
from perpbot.app.jobs import backtest_job
from perpbot.config import load_settings
from perpbot.data.market import load_market
from perpbot.storage.ledger import Ledger

TOKEN = "fuzz-token-0123456789abcdef0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                database=None)

# The schema exactly as the app publishes it (an in-memory ledger is enough to build the app).
SPEC = create_app(BotContext(load_settings(None, ledger_url="sqlite://")), "spec-only-" + "x" * 32).openapi()
schema = schemathesis.openapi.from_dict(SPEC)
schema.config.generation.update(with_security_parameters=False)  # every call sends the token
negative = schemathesis.openapi.from_dict(SPEC)
negative.config.generation.update(with_security_parameters=False, modes=[GenerationMode.NEGATIVE])
RESULTS: dict[str, set[int]] = {}


@pytest.fixture(scope="module")
def live(tmp_path_factory, sol5m_path):
    s = load_settings(None, output_dir=tmp_path_factory.mktemp("fuzz"), funding=False, candles_file=sol5m_path)
    backtest_job(s, ["ema-cross", "buy-and-hold"], market=load_market(sol5m_path, "5m").slice(0, 5000),
                 ledger=Ledger(s.ledger))
    app = create_app(BotContext(s, BotControl()), TOKEN)
    with serving(app) as base:
        yield {"base": base, "app": app}


def test_the_schema_lists_every_operation():
    ops = {f"{m.upper()} {p}" for p, item in SPEC["paths"].items() for m in item}
    assert len(ops) == 21 and {"GET /health", "GET /api/v1/equity", "POST /api/v1/backtests",
                               "GET /api/v1/backtests/{job_id}/report"} <= ops
    assert {"HTTPBearer", "APIKeyQuery", "APIKeyCookie"} == set(SPEC["components"]["securitySchemes"])


@schema.exclude(method="POST", path="/api/v1/backtests").parametrize()
@FUZZ
def test_no_operation_answers_5xx(case, live):
    """Valid and invalid requests to every operation but POST /api/v1/backtests (no backtest flood)."""
    response = case.call_and_validate(base_url=live["base"], headers=AUTH, checks=[not_a_server_error])
    RESULTS.setdefault(case.operation.label, set()).add(response.status_code)


@negative.include(method="POST", path="/api/v1/backtests").parametrize()
@FUZZ
def test_invalid_backtest_requests_are_4xx(case, live):
    """Only schema-violating bodies: each is refused with a 4xx and queues nothing."""
    response = case.call_and_validate(base_url=live["base"], headers=AUTH, checks=[not_a_server_error])
    assert 400 <= response.status_code < 500, (case.body, response.status_code, response.text)
    RESULTS.setdefault(case.operation.label, set()).add(response.status_code)


def test_the_fuzz_reached_every_operation_and_status(live):
    """Guards the fuzz itself: it ran, and it got the answers the API gives (200, 404, 422 ...)."""
    if not RESULTS:
        pytest.skip("run the whole module: the fuzz tests above fill RESULTS")
    assert len(RESULTS) == 21, sorted(RESULTS)
    seen = set().union(*RESULTS.values())
    assert {200, 404, 422} <= seen and max(seen) < 500
    assert {422} <= RESULTS["GET /api/v1/trades"] and 200 in RESULTS["GET /api/v1/equity"]
    assert live["app"].state.jobs.get("nothing-was-queued") is None
